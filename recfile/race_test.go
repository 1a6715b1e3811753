//go:build race

package recfile

func init() { raceEnabled = true }

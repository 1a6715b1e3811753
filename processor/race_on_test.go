//go:build race

package processor_test

// raceEnabled: the race detector's instrumentation allocates, so exact
// allocation counts are checked without -race only.
const raceEnabled = true

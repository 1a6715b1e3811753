//go:build race

package client_test

// raceEnabled scales cross-process tests down: the race detector slows the
// helper processes (built with -race too) by an order of magnitude.
const raceEnabled = true

//go:build race

package bridge_test

// raceEnabled scales the record counts down: the race detector slows the
// daemons, the embedded nats-server and the bridge processes ~10x.
const raceEnabled = true

package main

import (
	"time"

	"github.com/kaelix-io/kaelix/wire"
)

// TopicsStatsCmd is `kaelixctl topics stats [--watch]`: per partition, the
// ring counters the metrics expose, read straight from the rings' shared
// memory. It is `kaelixctl stat` without the slot table: it works with
// kaelixd answering, stopped or dead (see StatCmd).
type TopicsStatsCmd struct {
	Topic    string        `arg:"" optional:"" help:"Only this topic." predictor:"topic"`
	Watch    bool          `short:"w" help:"Refresh every --interval until Ctrl-C: redraws a terminal, one JSON object per line otherwise."`
	Interval time.Duration `help:"Refresh interval with --watch." default:"1s"`
	StateDir string        `name:"state-dir" help:"kaelixd's state directory, read when it does not answer (default: the socket's directory)." placeholder:"DIR"`
	ShmDir   string        `name:"shm-dir" help:"kaelixd's region directory name (its --shm-dir), when it does not answer (default kaelix as root, kaelix-UID otherwise)." placeholder:"NAME"`
}

// PartitionStats is one row: the typed snapshot both front ends render.
type PartitionStats struct {
	Topic     string        `json:"topic"`
	Partition int           `json:"partition"`
	Counters  wire.Counters `json:"counters"`
	// RatePerSec is records published per second since the previous sample
	// (-1 on the first).
	RatePerSec float64 `json:"rate_per_sec"`
}

// Run prints the stats once, or every --interval with --watch.
func (cmd *TopicsStatsCmd) Run(g *Globals) error {
	s := StatCmd{Topic: cmd.Topic, Watch: cmd.Watch, Interval: cmd.Interval, StateDir: cmd.StateDir, ShmDir: cmd.ShmDir,
		DaemonTimeout: time.Second, Slots: false}
	return s.Run(g)
}

package main

import (
	"fmt"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/wire"
)

// TopicsStatsCmd is `kaelixctl topics stats [--watch]`: per partition, the
// ring counters the metrics expose. The topic list and the region paths
// come from the daemon once (and again every 10 samples, to see new
// topics); every sample is read straight from the rings' shared memory
// (daemon.CounterReader, both regions of each partition mapped
// read-only), so watching costs the daemon nothing.
type TopicsStatsCmd struct {
	Topic    string        `arg:"" optional:"" help:"Only this topic."`
	Watch    bool          `short:"w" help:"Refresh until Ctrl-C."`
	Interval time.Duration `help:"Refresh interval with --watch." default:"1s"`
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
	var rd daemon.CounterReader
	defer rd.Close()
	var parts []wire.PartitionInfo
	var names []string
	prev := map[string]uint64{}
	last := time.Time{}
	for i := 0; ; i++ {
		if i%10 == 0 {
			var list wire.TopicList
			if err := g.controlTopics(&list); err != nil {
				return err
			}
			parts, names = parts[:0], names[:0]
			found := false
			for _, t := range list.Topics {
				if cmd.Topic != "" && t.Spec.Name != cmd.Topic {
					continue
				}
				found = true
				for _, p := range t.Partitions {
					parts = append(parts, p)
					names = append(names, t.Spec.Name)
				}
			}
			if cmd.Topic != "" && !found && i == 0 {
				// As info, delete, pub and sub do (exit 4).
				return &client.BrokerError{Op: "stats", Code: wire.CodeNotFound, Message: fmt.Sprintf("topic %q not found", cmd.Topic)}
			}
		}
		now := time.Now()
		rows := make([]PartitionStats, 0, len(parts))
		for j, p := range parts {
			c, err := rd.Read(p)
			if err != nil {
				continue // deleted since the list; the next refresh drops it
			}
			r := PartitionStats{Topic: names[j], Partition: p.Index, Counters: c, RatePerSec: -1}
			if old, ok := prev[p.Path]; ok && !last.IsZero() {
				r.RatePerSec = float64(c.Published-old) / now.Sub(last).Seconds()
			}
			prev[p.Path] = c.Published
			rows = append(rows, r)
		}
		last = now
		if err := cmd.print(g, rows, cmd.Watch); err != nil {
			return err
		}
		if !cmd.Watch {
			return nil
		}
		select {
		case <-g.ctx.Done():
			return nil
		case <-time.After(cmd.Interval):
		}
	}
}

func (cmd *TopicsStatsCmd) print(g *Globals, rows []PartitionStats, clear bool) error {
	if g.json() {
		return writeJSON(g.stdout, rows)
	}
	if clear {
		fmt.Fprint(g.stdout, "\x1b[H\x1b[2J")
		fmt.Fprintf(g.stdout, "kaelixctl topics stats, every %v (from shared memory)\n\n", cmd.Interval)
	}
	tw := newTable(g.stdout)
	fmt.Fprintln(tw, "TOPIC\tPART\tPUBLISHED\tRATE/S\tCONSUMED\tLOST\tBACKPRESS\tUNBLOCKED\tEVICTED\tPUBS\tSUBS\tLAG")
	for _, r := range rows {
		rate := "-"
		if r.RatePerSec >= 0 {
			rate = fmt.Sprintf("%.0f", r.RatePerSec)
		}
		c := r.Counters
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Topic, r.Partition, c.Published, rate, c.Consumed,
			c.Lost, c.BackPressure, c.Unblocked, c.Evicted, c.Publishers, c.Subscribers, humanBytes(c.SlowestLagBytes))
	}
	return tw.Flush()
}

// controlTopics lists the topics (with region paths) over the control
// socket.
func (g *Globals) controlTopics(out *wire.TopicList) error { return g.control(wire.TypeList, out) }

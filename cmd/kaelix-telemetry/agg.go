package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kaelix-io/kaelix/processor/builtin"
)

// The values configs/kaelix-proc.telemetry.toml has its window aggregate;
// AggCmd prints these.
const (
	aggCPU   = "json:cpu.busy_pct"
	aggMem   = "json:mem.used_pct"
	aggRx    = "json:net.rx_bytes_per_sec"
	aggTx    = "json:net.tx_bytes_per_sec"
	aggDiskW = "json:disk.write_bytes_per_sec"
	aggDiskR = "json:disk.read_bytes_per_sec"
)

// AggCmd prints the window aggregates a processor (kaelix-proc, built-in
// window) publishes from the samples: one line per window and host.
type AggCmd struct {
	Count int `short:"n" help:"Exit after this many aggregates (0: until interrupted)."`
}

// Run subscribes to --topic (the aggregates' topic) and prints.
func (cmd *AggCmd) Run(g *Globals) error {
	c, sub, err := g.subscribe()
	if err != nil || sub == nil {
		return err
	}
	defer c.Close()
	defer sub.Close()
	fmt.Fprintf(g.stdout, "kaelix-telemetry: subscribed to %s (window aggregates)\n", g.Topic)
	for n := 0; cmd.Count == 0 || n < cmd.Count; n++ {
		m, err := sub.Receive(g.ctx)
		if err != nil {
			if g.ctx.Err() != nil {
				return nil
			}
			return err
		}
		var a builtin.Aggregate
		line := ""
		if err := json.Unmarshal(m.Payload, &a); err != nil {
			line = fmt.Sprintf("%s  (not an aggregate: %d bytes)", m.ID, len(m.Payload))
		} else {
			line = formatAggregate(a)
		}
		if _, err := fmt.Fprintln(g.stdout, line); err != nil {
			return err
		}
	}
	return nil
}

// formatAggregate renders one window: its span, the samples and their
// rate, then mean [min-max] of CPU and the others' means.
func formatAggregate(a builtin.Aggregate) string {
	var b strings.Builder
	span := time.Duration(a.EndNS - a.StartNS)
	fmt.Fprintf(&b, "%s %s %s  %3d samples %5.1f/s", span, time.Unix(0, a.StartNS).Format("15:04:05"), a.Key, a.Count, a.RatePerSec)
	if v, ok := a.Values[aggCPU]; ok {
		fmt.Fprintf(&b, " | cpu avg %5.1f%% [%.1f-%.1f]", v.Mean, v.Min, v.Max)
	}
	if v, ok := a.Values[aggMem]; ok {
		fmt.Fprintf(&b, " | mem avg %4.1f%%", v.Mean)
	}
	rx, okr := a.Values[aggRx]
	tx, okt := a.Values[aggTx]
	if okr && okt {
		fmt.Fprintf(&b, " | net avg rx %s/s tx %s/s", humanBytes(rx.Mean), humanBytes(tx.Mean))
	}
	r, okr := a.Values[aggDiskR]
	w, okw := a.Values[aggDiskW]
	if okr && okw {
		fmt.Fprintf(&b, " | disk avg r %s/s w %s/s (max w %s/s)", humanBytes(r.Mean), humanBytes(w.Mean), humanBytes(w.Max))
	}
	return b.String()
}

package main

import (
	"fmt"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/kaelix-io/kaelix/client"
)

// LatencyCmd is `kaelixctl latency TOPIC`: publish-to-receive latency of
// live records, from each record's publish timestamp (CLOCK_MONOTONIC,
// comparable across processes on the host) to the moment this subscriber
// reads it, in an HDR histogram (1 ns to 1 h, 3 significant digits).
// Every --interval it prints the percentiles of that interval, and at the
// end those of the whole run. Records published without a timestamp are
// counted as untimed. The figure includes this process's own wake-up
// (--wait busy-spin measures the ring, the default backoff what an
// application with that wait strategy sees). JSON: one LatencyReport per
// line, the last with "final": true.
type LatencyCmd struct {
	Topic    string        `arg:"" help:"Topic to measure." predictor:"topic"`
	Interval time.Duration `help:"Report every this long." default:"1s"`
	consumeOpts
}

// LatencyReport is one report of `latency -o json`; latencies in ns.
type LatencyReport struct {
	TimeNS  int64 `json:"time_ns"`
	Final   bool  `json:"final,omitempty"` // the whole run, not one interval
	Records int64 `json:"records"`
	Untimed int64 `json:"untimed"`
	MinNS   int64 `json:"min_ns"`
	P50NS   int64 `json:"p50_ns"`
	P90NS   int64 `json:"p90_ns"`
	P99NS   int64 `json:"p99_ns"`
	P999NS  int64 `json:"p999_ns"`
	MaxNS   int64 `json:"max_ns"`
}

const latencyMaxNS = int64(time.Hour)

// Run measures until --count, --for or Ctrl-C.
func (cmd *LatencyCmd) Run(g *Globals) error {
	if cmd.Interval <= 0 {
		return invalidf("--interval must be positive")
	}
	interval := hdrhistogram.New(1, latencyMaxNS, 3)
	whole := hdrhistogram.New(1, latencyMaxNS, 3)
	var untimed, untimedAll int64
	due := time.Now().Add(cmd.Interval)
	report := func(h *hdrhistogram.Histogram, unt int64, final bool) error {
		r := LatencyReport{TimeNS: time.Now().UnixNano(), Final: final, Records: h.TotalCount(), Untimed: unt}
		if h.TotalCount() > 0 {
			r.MinNS, r.MaxNS = h.Min(), h.Max()
			r.P50NS, r.P90NS, r.P99NS, r.P999NS = h.ValueAtQuantile(50), h.ValueAtQuantile(90), h.ValueAtQuantile(99), h.ValueAtQuantile(99.9)
		}
		if g.json() {
			return writeJSONLine(g.stdout, r)
		}
		label := "interval"
		if final {
			label = "total   "
		}
		d := func(ns int64) time.Duration { return time.Duration(ns) }
		_, err := fmt.Fprintf(g.stdout, "%s %8d records  min %v  p50 %v  p90 %v  p99 %v  p99.9 %v  max %v", label, r.Records,
			d(r.MinNS), d(r.P50NS), d(r.P90NS), d(r.P99NS), d(r.P999NS), d(r.MaxNS))
		if unt > 0 {
			fmt.Fprintf(g.stdout, "  (%d untimed)", unt)
		}
		fmt.Fprintln(g.stdout)
		return err
	}
	tick := func() error {
		if !time.Now().Before(due) {
			due = time.Now().Add(cmd.Interval)
			err := report(interval, untimed, false)
			interval.Reset()
			untimed = 0
			return err
		}
		return nil
	}
	n := 0
	_, _, err := cmd.consume(g, cmd.Topic, cmd.Interval/4, func(m *client.Message) error {
		if m.TimestampNS == 0 {
			untimed++
			untimedAll++
		} else {
			lat := min(max(client.MonotonicNS()-m.TimestampNS, 1), latencyMaxNS)
			interval.RecordValue(lat)
			whole.RecordValue(lat)
		}
		if n++; n%256 == 0 {
			return tick()
		}
		return nil
	}, tick)
	if err != nil {
		return err
	}
	return report(whole, untimedAll, true)
}

package main

import (
	"fmt"
	"math"
	"time"

	"github.com/kaelix-io/kaelix/client"
)

// HzCmd is `kaelixctl hz TOPIC`: the rate at which records arrive (like
// `iox2 service hz` and `ros2 topic hz`), reported every --interval: the
// records received in that interval, their rate, and the gaps between
// consecutive records' publish timestamps (min, mean, max, standard
// deviation) over the last --window records. JSON: one HzReport per line.
type HzCmd struct {
	Topic    string        `arg:"" help:"Topic to measure." predictor:"topic"`
	Interval time.Duration `help:"Report every this long." default:"1s"`
	Window   int           `help:"Gaps kept for the statistics (the last N records)." default:"10000"`
	consumeOpts
}

// HzReport is one report of `hz -o json`.
type HzReport struct {
	TimeNS     int64   `json:"time_ns"` // unix ns
	Records    int     `json:"records"` // in this interval
	RatePerSec float64 `json:"rate_per_sec"`
	Total      int     `json:"total"`
	Window     int     `json:"window"` // gaps the statistics cover
	MinGapNS   int64   `json:"min_gap_ns"`
	MeanGapNS  float64 `json:"mean_gap_ns"`
	MaxGapNS   int64   `json:"max_gap_ns"`
	StdGapNS   float64 `json:"std_gap_ns"`
}

// Run measures until --count, --for or Ctrl-C.
func (cmd *HzCmd) Run(g *Globals) error {
	if cmd.Interval <= 0 || cmd.Window <= 0 {
		return invalidf("--interval and --window must be positive")
	}
	gaps := make([]int64, 0, cmd.Window)
	next := 0 // ring index in gaps once full
	var last int64
	count, total := 0, 0
	started := time.Now()
	due := started.Add(cmd.Interval)
	report := func(now time.Time) error {
		r := HzReport{TimeNS: now.UnixNano(), Records: count, Total: total, Window: len(gaps),
			RatePerSec: float64(count) / now.Sub(due.Add(-cmd.Interval)).Seconds()}
		if len(gaps) > 0 {
			r.MinGapNS, r.MaxGapNS = math.MaxInt64, math.MinInt64
			var sum float64
			for _, gp := range gaps {
				r.MinGapNS, r.MaxGapNS = min(r.MinGapNS, gp), max(r.MaxGapNS, gp)
				sum += float64(gp)
			}
			r.MeanGapNS = sum / float64(len(gaps))
			var ss float64
			for _, gp := range gaps {
				ss += (float64(gp) - r.MeanGapNS) * (float64(gp) - r.MeanGapNS)
			}
			r.StdGapNS = math.Sqrt(ss / float64(len(gaps)))
		}
		count = 0
		due = now.Add(cmd.Interval)
		if g.json() {
			return writeJSONLine(g.stdout, r)
		}
		if len(gaps) == 0 {
			_, err := fmt.Fprintf(g.stdout, "rate %s/s  (%d records, no gaps yet)\n", humanRate(r.RatePerSec), total)
			return err
		}
		_, err := fmt.Fprintf(g.stdout, "rate %s/s  gaps over %d: min %v  mean %v  max %v  std %v\n", humanRate(r.RatePerSec), r.Window,
			time.Duration(r.MinGapNS), time.Duration(r.MeanGapNS).Round(time.Nanosecond), time.Duration(r.MaxGapNS), time.Duration(r.StdGapNS).Round(time.Nanosecond))
		return err
	}
	tick := func() error {
		if now := time.Now(); !now.Before(due) {
			return report(now)
		}
		return nil
	}
	_, _, err := cmd.consume(g, cmd.Topic, cmd.Interval/4, func(m *client.Message) error {
		ts := m.TimestampNS
		if ts == 0 {
			ts = client.MonotonicNS() // no publish timestamp: arrival time
		}
		if last != 0 && ts >= last {
			if len(gaps) < cmd.Window {
				gaps = append(gaps, ts-last)
			} else {
				gaps[next] = ts - last
				next = (next + 1) % cmd.Window
			}
		}
		last = ts
		count++
		total++
		if total%256 == 0 {
			return tick()
		}
		return nil
	}, tick)
	if err != nil {
		return err
	}
	return report(time.Now())
}

package daemon

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// loopStats measures the daemon's housekeeping loop: the watcher
// goroutine that reaps dead clients, writes the heartbeat, sweeps every
// ring and evicts stalled subscribers. It is the loop that must never
// stall, so its time is exported before anything hangs:
//
//   - kaelix_daemon_loop_seconds (histogram): how long each housekeeping
//     pass (heartbeat, sweep, evictions) took. Passes that grow mean the
//     daemon is slowed down (lock contention, many rings, a slow /proc).
//   - kaelix_daemon_loop_lag_seconds (histogram): how late each pass
//     started against its schedule (the previous pass's end plus the
//     tick interval, min(daemon.heartbeat_interval,
//     daemon.sweep_interval)): time the loop spent reaping deaths, waiting
//     for the CPU, or stopped. A stopped (SIGSTOP) daemon shows the whole
//     stop here at its first pass after SIGCONT; one that is descheduled
//     on an overloaded host shows growing lags while it still answers.
//     Histograms, so that a scrape between two passes misses nothing.
type loopStats struct {
	passes prometheus.Histogram
	lag    prometheus.Histogram
	end    time.Time // the previous pass's end; the watcher goroutine's alone
}

func newLoopStats() *loopStats {
	return &loopStats{
		passes: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kaelix_daemon_loop_seconds",
			Help:    "Duration of each pass of kaelixd's housekeeping loop (heartbeat, sweep of every ring, evictions).",
			Buckets: prometheus.ExponentialBuckets(100e-6, 4, 9)}), // 100 µs .. 6.6 s
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kaelix_daemon_loop_lag_seconds",
			Help:    "How late each housekeeping pass started against its schedule (the previous pass's end plus the tick interval); 0 when on time.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 4, 9)}),
	}
}

// pass runs one housekeeping pass (fn) due every interval and records it.
// Called on the watcher goroutine only.
func (l *loopStats) pass(interval time.Duration, fn func(now time.Time)) {
	now := time.Now()
	if !l.end.IsZero() {
		l.lag.Observe(max(0, now.Sub(l.end.Add(interval)).Seconds()))
	}
	fn(now)
	l.end = time.Now()
	l.passes.Observe(l.end.Sub(now).Seconds())
}

package daemon

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/wire"
)

// errorRate keeps the figures of the error_rate health rule: control
// requests (all, failed) counted as they are answered, and samples of the
// running totals (those and the rings' published and error records) taken
// at most once a second when health is evaluated, so that the rate over
// the last minute is a difference of two samples.
type errorRate struct {
	requests, failed atomic.Uint64

	mu      sync.Mutex
	samples []errSample // oldest first, spanning at most errWindow
}

type errSample struct {
	at                                time.Time
	requests, failed, records, errors uint64
}

const errWindow = time.Minute

func (e *errorRate) request(failed bool) {
	e.requests.Add(1)
	if failed {
		e.failed.Add(1)
	}
}

// recordErrors is what a ring counts as error records.
func recordErrors(c ringbuf.Counters) uint64 { return c.Rejected + c.Unblocked + c.Tampered }

// observe adds a sample of the totals (records and error records summed
// over the rings) and returns the rate since the oldest sample kept.
func (e *errorRate) observe(now time.Time, records, errors uint64) wire.ErrorRate {
	s := errSample{at: now, requests: e.requests.Load(), failed: e.failed.Load(), records: records, errors: errors}
	e.mu.Lock()
	defer e.mu.Unlock()
	if n := len(e.samples); n == 0 || now.Sub(e.samples[n-1].at) >= time.Second {
		e.samples = append(e.samples, s)
	}
	for len(e.samples) > 1 && now.Sub(e.samples[1].at) >= errWindow {
		e.samples = e.samples[1:] // keep one sample at least errWindow old
	}
	old := e.samples[0]
	r := wire.ErrorRate{WindowNS: int64(now.Sub(old.at)), Requests: s.requests - old.requests, FailedRequests: s.failed - old.failed}
	// Ring totals can go down (a topic deleted): then count from 0.
	if s.records >= old.records {
		r.Records = s.records - old.records
	} else {
		r.Records = s.records
	}
	if s.errors >= old.errors {
		r.ErrorRecords = s.errors - old.errors
	} else {
		r.ErrorRecords = s.errors
	}
	if r.Requests > 0 {
		r.RequestShare = float64(r.FailedRequests) / float64(r.Requests)
	}
	if r.Records > 0 {
		r.RecordShare = float64(r.ErrorRecords) / float64(r.Records)
	}
	if r.WindowNS > 0 {
		r.PerMinute = float64(r.FailedRequests+r.ErrorRecords) / (float64(r.WindowNS) / float64(time.Minute))
	}
	return r
}

// errMinimum is the fewest errors in the window that can trip the rule.
const errMinimum = 5

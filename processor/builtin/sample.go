package builtin

import (
	"time"

	"github.com/kaelix-io/kaelix/processor"
	"github.com/kaelix-io/kaelix/ringbuf"
)

// Sample thins a stream. Exactly one of:
//
//	every    = 10        # keep records 0, N, 2N, ... (1 of every N), drop the rest
//	interval = "100ms"   # keep a record when at least interval passed since the last kept
//
// With interval, time is the record's publish timestamp (CLOCK_MONOTONIC),
// or the processing time for records without one. No allocation per record.
type Sample struct {
	cfg struct {
		Every    int    `toml:"every"`
		Interval string `toml:"interval"`
	}
	interval int64
	n        int
	last     int64
	kept     bool
	now      func() int64
}

func (*Sample) Name() string    { return "sample" }
func (*Sample) Version() string { return Version }
func (*Sample) Close() error    { return nil }

func (s *Sample) Init(ctx processor.Context) error {
	if err := config(ctx, &s.cfg, true); err != nil {
		return err
	}
	if s.now == nil {
		s.now = ringbuf.MonotonicNS
	}
	c := &s.cfg
	switch {
	case (c.Every > 0) == (c.Interval != ""):
		return badf("want exactly one of every (> 0) and interval")
	case c.Every < 0:
		return badf("every %d: want > 0", c.Every)
	case c.Interval != "":
		d, err := time.ParseDuration(c.Interval)
		if err != nil || d <= 0 {
			return badf("interval %q: want a positive duration like 100ms", c.Interval)
		}
		s.interval = int64(d)
	}
	return nil
}

func (s *Sample) Process(m *processor.Message) processor.Action {
	if s.cfg.Every > 0 {
		keep := s.n == 0
		s.n++
		if s.n == s.cfg.Every {
			s.n = 0
		}
		if keep {
			return processor.Continue
		}
		return processor.Drop
	}
	t := m.TimestampNS
	if t == 0 {
		t = s.now()
	}
	if !s.kept || t-s.last >= s.interval {
		s.kept, s.last = true, t
		return processor.Continue
	}
	return processor.Drop
}

package builtin

import (
	"time"

	"github.com/kaelix-io/kaelix/processor"
	"github.com/kaelix-io/kaelix/ringbuf"
)

// Stamp adds one header to every record and passes it on.
//
//	header = "processed_at"   # the header's name (default)
//	clock  = "wall"           # wall: unix ns; monotonic: CLOCK_MONOTONIC ns
//	                          # (comparable with records' timestamp_ns)
//	value  = ""               # if set, this fixed text instead of a time
//
// No allocation per record: the time's text lives in the Message's arena.
type Stamp struct {
	cfg struct {
		Header string `toml:"header"`
		Clock  string `toml:"clock"`
		Value  string `toml:"value"`
	}
	now func() int64
}

func (*Stamp) Name() string    { return "stamp" }
func (*Stamp) Version() string { return Version }
func (*Stamp) Close() error    { return nil }

func (s *Stamp) Init(ctx processor.Context) error {
	s.cfg.Header, s.cfg.Clock = "processed_at", "wall"
	if err := config(ctx, &s.cfg, false); err != nil {
		return err
	}
	switch {
	case s.cfg.Header == "":
		return badf("header: empty")
	case s.cfg.Clock == "wall":
		s.now = func() int64 { return time.Now().UnixNano() }
	case s.cfg.Clock == "monotonic":
		s.now = ringbuf.MonotonicNS
	default:
		return badf("clock %q: want wall or monotonic", s.cfg.Clock)
	}
	return nil
}

func (s *Stamp) Process(m *processor.Message) processor.Action {
	if s.cfg.Value != "" {
		m.SetHeader(s.cfg.Header, s.cfg.Value)
	} else {
		m.SetHeaderInt(s.cfg.Header, s.now())
	}
	return processor.Continue
}

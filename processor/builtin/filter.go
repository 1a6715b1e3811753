package builtin

import (
	"bytes"
	"slices"
	"strings"

	"github.com/kaelix-io/kaelix/processor"
)

// Filter keeps the records that match every predicate set and drops the
// others (invert = true: the reverse).
//
//	header           = "kind"           # the header the header predicates look at
//	equals           = ["a", "b"]       # its value is one of these
//	prefix           = "host."          # its value starts with this
//	absent           = false            # true: match records WITHOUT the header
//	payload_contains = "ERROR"          # the payload contains these bytes
//	payload_prefix   = "{"              # the payload starts with these bytes
//	min_bytes        = 0                # payload length bounds (max 0: none)
//	max_bytes        = 0
//	invert           = false
//
// A header set with no value predicate requires the header to be present.
// No allocation per record.
type Filter struct {
	cfg struct {
		Header          string   `toml:"header"`
		Equals          []string `toml:"equals"`
		Prefix          string   `toml:"prefix"`
		Absent          bool     `toml:"absent"`
		PayloadContains string   `toml:"payload_contains"`
		PayloadPrefix   string   `toml:"payload_prefix"`
		MinBytes        int      `toml:"min_bytes"`
		MaxBytes        int      `toml:"max_bytes"`
		Invert          bool     `toml:"invert"`
	}
	contains, prefix []byte
}

func (*Filter) Name() string    { return "filter" }
func (*Filter) Version() string { return Version }
func (*Filter) Close() error    { return nil }

func (f *Filter) Init(ctx processor.Context) error {
	if err := config(ctx, &f.cfg, true); err != nil {
		return err
	}
	c := &f.cfg
	switch {
	case c.Header == "" && (len(c.Equals) > 0 || c.Prefix != "" || c.Absent):
		return badf("equals, prefix and absent need header")
	case c.Absent && (len(c.Equals) > 0 || c.Prefix != ""):
		return badf("absent excludes equals and prefix")
	case c.MinBytes < 0 || c.MaxBytes < 0 || (c.MaxBytes > 0 && c.MinBytes > c.MaxBytes):
		return badf("min_bytes %d, max_bytes %d: want 0 <= min <= max (max 0: no bound)", c.MinBytes, c.MaxBytes)
	}
	if c.PayloadContains != "" {
		f.contains = []byte(c.PayloadContains)
	}
	if c.PayloadPrefix != "" {
		f.prefix = []byte(c.PayloadPrefix)
	}
	return nil
}

// Match reports whether m passes the predicates (before invert).
func (f *Filter) Match(m *processor.Message) bool {
	c := &f.cfg
	if c.Header != "" {
		v, ok := m.Header(c.Header)
		if c.Absent {
			if ok {
				return false
			}
		} else {
			if !ok {
				return false
			}
			if len(c.Equals) > 0 && !slices.Contains(c.Equals, v) {
				return false
			}
			if c.Prefix != "" && !strings.HasPrefix(v, c.Prefix) {
				return false
			}
		}
	}
	p := m.Payload()
	if f.contains != nil && !bytes.Contains(p, f.contains) {
		return false
	}
	if f.prefix != nil && !bytes.HasPrefix(p, f.prefix) {
		return false
	}
	if len(p) < c.MinBytes || (c.MaxBytes > 0 && len(p) > c.MaxBytes) {
		return false
	}
	return true
}

func (f *Filter) Process(m *processor.Message) processor.Action {
	if f.Match(m) != f.cfg.Invert {
		return processor.Continue
	}
	return processor.Drop
}

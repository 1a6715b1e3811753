package builtin

import (
	"slices"

	"github.com/kaelix-io/kaelix/processor"
)

// Route sends each record to a topic chosen by its key or a header's value.
//
//	by        = "header"                  # or "key" (Message.Key: the publisher's key, or PipelineConfig.KeyHeader's header)
//	header    = "symbol"                  # with by = "header"
//	routes    = { AAPL = "ticks.aapl", MSFT = "ticks.msft" }   # value -> topic
//	default   = "ticks.other"             # unmatched records go here; empty: see unmatched
//	unmatched = "continue"                # without default: continue (to the outputs) or drop
//
// The pipeline attaches to every topic named (RouteTargets). No allocation
// per record.
type Route struct {
	cfg struct {
		By        string            `toml:"by"`
		Header    string            `toml:"header"`
		Routes    map[string]string `toml:"routes"`
		Default   string            `toml:"default"`
		Unmatched string            `toml:"unmatched"`
	}
	unmatched processor.Action
}

func (*Route) Name() string    { return "route" }
func (*Route) Version() string { return Version }
func (*Route) Close() error    { return nil }

func (r *Route) Init(ctx processor.Context) error {
	r.cfg.By, r.cfg.Unmatched = "header", "continue"
	if err := config(ctx, &r.cfg, true); err != nil {
		return err
	}
	c := &r.cfg
	switch {
	case !oneOf(c.By, "header", "key"):
		return badf("by %q: want header or key", c.By)
	case c.By == "header" && c.Header == "":
		return badf("by = \"header\" needs header")
	case len(c.Routes) == 0:
		return badf("routes: empty")
	case !oneOf(c.Unmatched, "continue", "drop"):
		return badf("unmatched %q: want continue or drop", c.Unmatched)
	}
	for v, t := range c.Routes {
		if t == "" {
			return badf("routes.%s: empty topic", v)
		}
	}
	switch {
	case c.Default != "":
		r.unmatched = processor.Route(c.Default)
	case c.Unmatched == "drop":
		r.unmatched = processor.Drop
	default:
		r.unmatched = processor.Continue
	}
	return nil
}

// RouteTargets lists every topic the configuration names.
func (r *Route) RouteTargets() []string {
	var out []string
	for _, t := range r.cfg.Routes {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if r.cfg.Default != "" && !slices.Contains(out, r.cfg.Default) {
		out = append(out, r.cfg.Default)
	}
	slices.Sort(out)
	return out
}

func (r *Route) Process(m *processor.Message) processor.Action {
	var t string
	var ok bool
	if r.cfg.By == "key" {
		if m.Key != nil {
			t, ok = r.cfg.Routes[string(m.Key)] // no allocation: the compiler looks up without converting
		}
	} else if v, has := m.Header(r.cfg.Header); has {
		t, ok = r.cfg.Routes[v]
	}
	if ok {
		return processor.Route(t)
	}
	return r.unmatched
}

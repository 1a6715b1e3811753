// Package builtin holds the stream processors Kaelix ships: stamp, filter,
// route, sample and window. Each is a processor.StreamProcessor configured
// from its stage's TOML table (read in Init, so the stage needs
// can_read_config when it has a table; with none each uses its defaults or
// says what it needs).
//
//	stamp   adds a header: processed_at = wall-clock ns (or a fixed value)
//	filter  keeps records matching header and payload predicates, drops the rest
//	route   sends records to topics by key or by a header's value
//	sample  keeps 1 of every N records, or at most one per interval
//	window  counts, rates, first/min/max/last per key over fixed time windows
//	        (OHLC bars from ticks, per-second aggregates of telemetry)
//
// New makes one by kind name; Kinds lists them.
package builtin

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/kaelix-io/kaelix/processor"
)

// Version is the version every built-in reports.
const Version = "1.0.0"

var kinds = map[string]func() processor.StreamProcessor{
	"stamp":  func() processor.StreamProcessor { return &Stamp{} },
	"filter": func() processor.StreamProcessor { return &Filter{} },
	"route":  func() processor.StreamProcessor { return &Route{} },
	"sample": func() processor.StreamProcessor { return &Sample{} },
	"window": func() processor.StreamProcessor { return &Window{} },
}

// ErrUnknownKind: New was asked for a built-in that does not exist.
var ErrUnknownKind = errors.New("unknown plugin")

// New returns a new, uninitialised built-in of kind. Errors: ErrUnknownKind
// (the message lists the known kinds).
func New(kind string) (processor.StreamProcessor, error) {
	f := kinds[kind]
	if f == nil {
		return nil, fmt.Errorf("%w %q (built-ins: %v)", ErrUnknownKind, kind, Kinds())
	}
	return f(), nil
}

// Kinds returns the built-ins' names, sorted.
func Kinds() []string {
	out := make([]string, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// config reads the stage's configuration into v, or leaves v's defaults
// when the stage has none. A table without can_read_config is an error
// (the operator meant it to be used).
func config(ctx processor.Context, v any, required bool) error {
	c, err := ctx.Config()
	if err != nil {
		if required {
			return fmt.Errorf("%w (this plugin needs its configuration)", err)
		}
		return nil
	}
	if len(c) == 0 && required {
		return fmt.Errorf("%w: no configuration (this plugin needs one)", processor.ErrBadConfig)
	}
	return c.Decode(v)
}

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{processor.ErrBadConfig}, args...)...)
}

func oneOf(v string, allowed ...string) bool { return slices.Contains(allowed, v) }

package config

import (
	"errors"
	"strings"
)

var (
	// ErrInvalid: the configuration is invalid. Load and Validate return
	// Errors, which matches it; each entry names its key (and file line).
	// Remedy: fix every key listed; nothing was applied.
	ErrInvalid = errors.New("invalid configuration")

	// ErrNotLive: a reload changed keys that cannot change while the
	// daemon runs. Returned as a *NotLiveError listing each with its old and
	// new value; nothing was applied. Remedy: revert them, or restart.
	ErrNotLive = errors.New("not supported live")
)

// FieldError is one invalid key.
type FieldError struct {
	// Key is the key path ("network.port", "topics[2].capacity"); "" for a
	// file that did not parse.
	Key string
	// Where is the key's origin when known: "FILE:LINE", an environment
	// variable ("env KAELIX_NETWORK_PORT") or a flag ("flag --set
	// network.port=1"). Set by Load.
	Where string
	Msg   string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Where != "" {
		b.WriteString(e.Where)
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found at once, in key order of discovery. It
// matches ErrInvalid with errors.Is, and errors.As finds each *FieldError
// through Unwrap.
type Errors []*FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return "invalid configuration:\n  " + strings.Join(lines, "\n  ")
}

// Is makes errors.Is(err, ErrInvalid) hold.
func (es Errors) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns each *FieldError.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Change is one key whose value differs between two configurations.
type Change struct {
	Key      string
	Old, New string // values as config show prints them
}

// NotLiveError is ErrNotLive: the changes a running daemon cannot apply.
type NotLiveError struct {
	Changes []Change
}

func (e *NotLiveError) Error() string {
	parts := make([]string, len(e.Changes))
	for i, c := range e.Changes {
		parts[i] = c.Key + " not supported live: old=" + c.Old + ", new=" + c.New
	}
	return "reload refused: " + strings.Join(parts, "; ")
}

// Unwrap returns ErrNotLive.
func (e *NotLiveError) Unwrap() error { return ErrNotLive }

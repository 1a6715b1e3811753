package processor

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
)

// StageOptions is how a plugin is registered: its configuration and
// permissions.
type StageOptions struct {
	Config      Config
	Permissions Permissions
}

// Registry holds a chain of named plugins: registered in order, initialised
// together, run in order on each record, closed in reverse order.
//
// Register and InitAll and CloseAll are for one goroutine (set-up and
// tear-down); Process is for one goroutine at a time (a pipeline's), and
// Stats may be called from any goroutine meanwhile.
type Registry struct {
	stages []*stage
	byName map[string]*stage
	inited bool
	logger *slog.Logger
}

// stage is one registered plugin and its counters.
type stage struct {
	name    string
	plugin  Plugin
	proc    StreamProcessor // nil if plugin handles no records
	emitter Emitter         // nil unless it emits
	opts    StageOptions
	metrics Metrics
	inited  bool

	// Counters, written by the pipeline goroutine, read by Stats.
	passed, dropped, routed, failed atomic.Uint64 // In is their sum
	lastErr                         atomic.Pointer[error]
}

// NewRegistry returns an empty registry logging to logger (nil: discard).
func NewRegistry(logger *slog.Logger) *Registry {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Registry{byName: map[string]*stage{}, logger: logger}
}

// Register appends plugin p as stage name. Errors: ErrDuplicate for a
// name already registered; an error for an empty name or a nil plugin, or
// after InitAll.
func (r *Registry) Register(name string, p Plugin, opts StageOptions) error {
	switch {
	case name == "":
		return errors.New("processor: register: empty stage name")
	case p == nil:
		return fmt.Errorf("processor: register %q: nil plugin", name)
	case r.inited:
		return fmt.Errorf("processor: register %q: registry already initialised", name)
	}
	if _, ok := r.byName[name]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicate, name)
	}
	s := &stage{name: name, plugin: p, opts: opts}
	s.proc, _ = p.(StreamProcessor)
	s.emitter, _ = p.(Emitter)
	r.stages = append(r.stages, s)
	r.byName[name] = s
	return nil
}

// RouteTargets returns the topics the Router stages route to (after
// InitAll: they know them from their configuration), in chain order,
// without repeats.
func (r *Registry) RouteTargets() []string {
	var out []string
	for _, s := range r.stages {
		if rt, ok := s.plugin.(Router); ok {
			for _, t := range rt.RouteTargets() {
				if !slices.Contains(out, t) {
					out = append(out, t)
				}
			}
		}
	}
	return out
}

// Len returns the number of registered stages.
func (r *Registry) Len() int { return len(r.stages) }

// Names returns the stage names in chain order.
func (r *Registry) Names() []string {
	out := make([]string, len(r.stages))
	for i, s := range r.stages {
		out[i] = s.name
	}
	return out
}

// InitAll calls every plugin's Init in registration order. On the first
// failure it closes the plugins already initialised (reverse order) and
// returns a *PluginError naming the stage (Op "init"); the registry can
// then only be discarded.
func (r *Registry) InitAll() error {
	if r.inited {
		return errors.New("processor: InitAll called twice")
	}
	for i, s := range r.stages {
		ctx := Context{
			stage:   s.name,
			cfg:     s.opts.Config,
			perms:   s.opts.Permissions,
			metrics: &s.metrics,
			logger:  r.logger.With("stage", s.name, "plugin", s.plugin.Name()),
		}
		if err := initPlugin(s.plugin, ctx); err != nil {
			for j := i - 1; j >= 0; j-- {
				r.closeStage(r.stages[j])
			}
			return &PluginError{Stage: s.name, Plugin: s.plugin.Name(), Op: "init", Err: err}
		}
		s.inited = true
	}
	r.inited = true
	return nil
}

// initPlugin calls Init and turns a panic into an error.
func initPlugin(p Plugin, ctx Context) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return p.Init(ctx)
}

func (r *Registry) closeStage(s *stage) error {
	if !s.inited {
		return nil
	}
	s.inited = false
	if err := s.plugin.Close(); err != nil {
		return &PluginError{Stage: s.name, Plugin: s.plugin.Name(), Op: "close", Err: err}
	}
	return nil
}

// CloseAll closes every initialised plugin in reverse registration order,
// all of them even if some fail, and returns their errors joined (each a
// *PluginError, Op "close").
func (r *Registry) CloseAll() error {
	var errs []error
	for i := len(r.stages) - 1; i >= 0; i-- {
		if err := r.closeStage(r.stages[i]); err != nil {
			errs = append(errs, err)
		}
	}
	r.inited = false
	return errors.Join(errs...)
}

// Process runs m through the stages from the first. It returns the
// verdict that ended the chain (Continue if every stage continued) and
// the index of the stage that gave it (Len() for Continue). Counters are
// kept per stage. Before InitAll it returns Fail(ErrNotInitialized).
// No allocation of its own.
func (r *Registry) Process(m *Message) (Action, int) {
	if !r.inited {
		return Fail(ErrNotInitialized), 0
	}
	return r.processFrom(0, m)
}

// processFrom runs m through stages[from:].
func (r *Registry) processFrom(from int, m *Message) (Action, int) {
	for i := from; i < len(r.stages); i++ {
		s := r.stages[i]
		if s.proc == nil {
			continue
		}
		a := s.proc.Process(m)
		switch a.kind {
		case actContinue:
			s.passed.Add(1)
			continue
		case actDrop:
			s.dropped.Add(1)
		case actRoute:
			s.routed.Add(1)
		case actFail:
			s.failed.Add(1)
			if a.err != nil {
				err := a.err
				s.lastErr.Store(&err)
			}
		}
		return a, i
	}
	return Continue, len(r.stages)
}

// StageStats are one stage's counts of records (since the registry was
// made) and its plugin's metrics.
type StageStats struct {
	Name, Plugin, Version string
	In                    uint64 // records Process returned for: Passed+Dropped+Routed+Failed
	Passed                uint64 // Continue
	Dropped               uint64 // Drop
	Routed                uint64 // Route
	Failed                uint64 // Fail
	LastError             string // the last Fail's error ("" if none)
	Metrics               map[string]uint64
}

// Stats returns every stage's counts, in chain order.
func (r *Registry) Stats() []StageStats {
	out := make([]StageStats, len(r.stages))
	for i, s := range r.stages {
		st := StageStats{
			Name: s.name, Plugin: s.plugin.Name(), Version: s.plugin.Version(),
			Passed: s.passed.Load(), Dropped: s.dropped.Load(),
			Routed: s.routed.Load(), Failed: s.failed.Load(),
			Metrics: s.metrics.Snapshot(),
		}
		st.In = st.Passed + st.Dropped + st.Routed + st.Failed // one atomic add per record fewer
		if e := s.lastErr.Load(); e != nil {
			st.LastError = (*e).Error()
		}
		out[i] = st
	}
	return out
}

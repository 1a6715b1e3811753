package processor

import (
	"bytes"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/BurntSushi/toml"
)

// Plugin is a unit of processing with a lifecycle. Init is called once,
// before the first record, with the plugin's Context; Close once, after
// the last (also when a later plugin's Init failed). Neither is called
// concurrently with Process.
type Plugin interface {
	Name() string
	Version() string
	Init(ctx Context) error
	Close() error
}

// StreamProcessor is a Plugin that handles records. Process is called for
// every record that reached its stage, on the pipeline's goroutine (one at
// a time per pipeline: a plugin instance needs no locking unless it shares
// state with other goroutines). m and everything it references are valid
// only until Process returns for the last stage of the chain; copy what
// you keep (Message.Clone). Process must not block: it runs on the
// record's path.
type StreamProcessor interface {
	Plugin
	Process(m *Message) Action
}

// Emitter is implemented by stages that make records of their own (window
// aggregates). The pipeline calls Tick at least every PipelineConfig.Tick
// (default 10 ms) while records flow and while it waits for input, and
// once in NewPipeline before the first record; emit runs the record
// through the stages after this one and to the outputs. emit may be kept
// and called from Process too, never from another goroutine. nowNS is CLOCK_REALTIME
// nanoseconds (time.Now().UnixNano()).
type Emitter interface {
	Tick(nowNS int64, emit EmitFunc)
}

// Router is implemented by stages that Route to topics they know from
// their configuration (after Init): the pipeline attaches publishers to
// them in addition to PipelineConfig.RouteTopics, and refuses a target
// that is its own input (a cycle).
type Router interface {
	RouteTargets() []string
}

// EmitFunc sends a record made by a stage to the rest of the chain. The
// message is used only during the call.
type EmitFunc func(m *Message)

// actionKind is what happens to a record after a stage.
type actionKind uint8

const (
	actContinue actionKind = iota
	actDrop
	actRoute
	actFail
)

// Action is a stage's verdict on a record: a small value (no allocation
// to make or return one).
type Action struct {
	kind  actionKind
	topic string
	err   error
}

// Continue passes the record to the next stage; after the last, to every
// topic of PipelineConfig.Outputs.
var Continue = Action{}

// Drop ends the record's processing: it is counted dropped and published
// nowhere.
var Drop = Action{kind: actDrop}

// Route ends the chain and publishes the record to topic only (one of the
// pipeline's Outputs or RouteTopics; another topic fails the record with
// ErrUnknownRoute).
func Route(topic string) Action { return Action{kind: actRoute, topic: topic} }

// Fail ends the record's processing as failed: counted, err kept as the
// stage's last error (and logged at most once a second). err should be a
// preallocated value on a path that may fail often (formatting an error
// per record allocates).
func Fail(err error) Action { return Action{kind: actFail, err: err} }

// IsContinue, IsDrop, IsFail report the action's kind; RouteTopic returns
// the topic of a Route action and whether it is one.
func (a Action) IsContinue() bool { return a.kind == actContinue }
func (a Action) IsDrop() bool     { return a.kind == actDrop }
func (a Action) IsFail() bool     { return a.kind == actFail }
func (a Action) RouteTopic() (string, bool) {
	return a.topic, a.kind == actRoute
}

// Err returns a Fail action's error (nil for the others).
func (a Action) Err() error { return a.err }

func (a Action) String() string {
	switch a.kind {
	case actDrop:
		return "drop"
	case actRoute:
		return "route(" + a.topic + ")"
	case actFail:
		return fmt.Sprintf("fail(%v)", a.err)
	}
	return "continue"
}

// Permissions are what a plugin's Context hands out. The zero value grants
// nothing: no configuration, no metrics (a logger is always given).
// CanAccessNetwork is enforced only where the plugin runs in its own
// supervised process (a network namespace); in an embedding program it is
// recorded, not enforced.
type Permissions struct {
	CanReadConfig    bool `toml:"can_read_config"`
	CanWriteMetrics  bool `toml:"can_write_metrics"`
	CanAccessNetwork bool `toml:"can_access_network"`
}

// Config is a plugin's own configuration: the stage's TOML table (or any
// map of TOML-compatible values). Decode it into a struct with Decode.
type Config map[string]any

// Decode fills v (a pointer to a struct with toml tags) from c. A key v
// has no field for is an error naming it (ErrBadConfig), as is a value of
// the wrong type.
func (c Config) Decode(v any) error {
	if len(c) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(map[string]any(c)); err != nil {
		return fmt.Errorf("%w: %v", ErrBadConfig, err)
	}
	md, err := toml.NewDecoder(&buf).Decode(v)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadConfig, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return fmt.Errorf("%w: unknown key %v", ErrBadConfig, keys)
	}
	return nil
}

// Context is what Init gives a plugin: its name, its configuration and a
// metrics handle (each only with the permission), and a logger. A Context
// is a small value; copy it freely. Its methods are safe for concurrent use.
type Context struct {
	stage   string
	cfg     Config
	perms   Permissions
	metrics *Metrics
	logger  *slog.Logger
}

// Stage returns the name the plugin was registered under.
func (c Context) Stage() string { return c.stage }

// Permissions returns the permissions the plugin holds.
func (c Context) Permissions() Permissions { return c.perms }

// Config returns the plugin's configuration, or ErrNoPermission without
// CanReadConfig. An empty (nil) Config when none was declared.
func (c Context) Config() (Config, error) {
	if !c.perms.CanReadConfig {
		return nil, fmt.Errorf("%w: stage %q has no can_read_config", ErrNoPermission, c.stage)
	}
	return c.cfg, nil
}

// Metrics returns the plugin's metrics handle, or ErrNoPermission without
// CanWriteMetrics.
func (c Context) Metrics() (*Metrics, error) {
	if !c.perms.CanWriteMetrics {
		return nil, fmt.Errorf("%w: stage %q has no can_write_metrics", ErrNoPermission, c.stage)
	}
	return c.metrics, nil
}

// Logger returns a logger whose records carry stage=NAME. Never nil.
func (c Context) Logger() *slog.Logger { return c.logger }

// Metrics is a plugin's set of named counters. Counter is safe for
// concurrent use; take the *Counter once (in Init) and Add to it on the
// record path (one atomic add, no allocation).
type Metrics struct {
	mu       sync.Mutex
	counters map[string]*Counter
}

// Counter is a monotonically increasing uint64.
type Counter struct{ v atomic.Uint64 }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Load returns the current value.
func (c *Counter) Load() uint64 { return c.v.Load() }

// Counter returns the counter named name, creating it at 0.
func (m *Metrics) Counter(name string) *Counter {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counters == nil {
		m.counters = map[string]*Counter{}
	}
	c := m.counters[name]
	if c == nil {
		c = new(Counter)
		m.counters[name] = c
	}
	return c
}

// Snapshot returns every counter's current value.
func (m *Metrics) Snapshot() map[string]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]uint64, len(m.counters))
	for k, c := range m.counters {
		out[k] = c.Load()
	}
	return out
}

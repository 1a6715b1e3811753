package processor_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/processor"
	"github.com/kaelix-io/kaelix/processor/builtin"
)

// probe is a test plugin that logs its lifecycle into a shared list.
type probe struct {
	name    string
	log     *[]string
	initErr error
	action  processor.Action
	ctx     processor.Context
	closeEr error
}

func (p *probe) Name() string    { return "probe" }
func (p *probe) Version() string { return "0.1" }
func (p *probe) Init(ctx processor.Context) error {
	*p.log = append(*p.log, "init "+p.name)
	p.ctx = ctx
	return p.initErr
}
func (p *probe) Close() error {
	*p.log = append(*p.log, "close "+p.name)
	return p.closeEr
}
func (p *probe) Process(m *processor.Message) processor.Action {
	*p.log = append(*p.log, "process "+p.name)
	return p.action
}

func newReg(t *testing.T, log *[]string, ps ...*probe) *processor.Registry {
	t.Helper()
	r := processor.NewRegistry(nil)
	for _, p := range ps {
		p.log = log
		if err := r.Register(p.name, p, processor.StageOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func TestRegistryLifecycleOrder(t *testing.T) {
	var log []string
	r := newReg(t, &log, &probe{name: "a"}, &probe{name: "b"}, &probe{name: "c"})
	if err := r.InitAll(); err != nil {
		t.Fatal(err)
	}
	a, at := r.Process(processor.NewMessage([]byte("x"), nil))
	if !a.IsContinue() || at != 3 {
		t.Fatalf("Process = %v at %d, want continue at 3", a, at)
	}
	if err := r.CloseAll(); err != nil {
		t.Fatal(err)
	}
	want := []string{"init a", "init b", "init c", "process a", "process b", "process c", "close c", "close b", "close a"}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("log\n got %v\nwant %v", log, want)
	}
	if err := r.Register("a", &probe{name: "a", log: &log}, processor.StageOptions{}); err == nil {
		t.Fatal("Register after CloseAll of a used registry: want an error (duplicate)")
	}
}

func TestRegistryDuplicate(t *testing.T) {
	var log []string
	r := newReg(t, &log, &probe{name: "a"})
	err := r.Register("a", &probe{name: "a", log: &log}, processor.StageOptions{})
	if !errors.Is(err, processor.ErrDuplicate) || !strings.Contains(err.Error(), `"a"`) {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestRegistryInitFailureNamesPlugin(t *testing.T) {
	var log []string
	boom := errors.New("boom")
	r := newReg(t, &log, &probe{name: "a"}, &probe{name: "b", initErr: boom}, &probe{name: "c"})
	err := r.InitAll()
	var pe *processor.PluginError
	if !errors.As(err, &pe) || pe.Stage != "b" || pe.Op != "init" || !errors.Is(err, boom) {
		t.Fatalf("InitAll = %v, want a PluginError for stage b wrapping boom", err)
	}
	if !strings.Contains(err.Error(), `stage "b"`) {
		t.Fatalf("error %q does not name the stage", err)
	}
	want := []string{"init a", "init b", "close a"}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("log %v, want %v (c never initialised, a closed)", log, want)
	}
	if a, _ := r.Process(processor.NewMessage(nil, nil)); !errors.Is(a.Err(), processor.ErrNotInitialized) {
		t.Fatalf("Process after failed InitAll = %v", a)
	}
}

func TestRegistryCloseErrorsJoined(t *testing.T) {
	var log []string
	e1, e2 := errors.New("e1"), errors.New("e2")
	r := newReg(t, &log, &probe{name: "a", closeEr: e1}, &probe{name: "b"}, &probe{name: "c", closeEr: e2})
	if err := r.InitAll(); err != nil {
		t.Fatal(err)
	}
	err := r.CloseAll()
	if !errors.Is(err, e1) || !errors.Is(err, e2) || !strings.Contains(err.Error(), `stage "a"`) || !strings.Contains(err.Error(), `stage "c"`) {
		t.Fatalf("CloseAll = %v", err)
	}
	if log[len(log)-3] != "close c" || log[len(log)-1] != "close a" {
		t.Fatalf("close order %v", log)
	}
}

func TestRegistryActionsCounted(t *testing.T) {
	var log []string
	bad := errors.New("bad record")
	cases := []struct {
		act                             processor.Action
		passed, dropped, routed, failed uint64
	}{
		{processor.Continue, 1, 0, 0, 0},
		{processor.Drop, 0, 1, 0, 0},
		{processor.Route("x"), 0, 0, 1, 0},
		{processor.Fail(bad), 0, 0, 0, 1},
	}
	for _, c := range cases {
		r := newReg(t, &log, &probe{name: "s", action: c.act}, &probe{name: "after"})
		if err := r.InitAll(); err != nil {
			t.Fatal(err)
		}
		a, at := r.Process(processor.NewMessage(nil, nil))
		wantAt := 0
		if c.act.IsContinue() {
			wantAt = 2
		}
		if a != c.act || at != wantAt {
			t.Errorf("%v: Process = %v at %d", c.act, a, at)
		}
		st := r.Stats()[0]
		if st.In != 1 || st.Passed != c.passed || st.Dropped != c.dropped || st.Routed != c.routed || st.Failed != c.failed {
			t.Errorf("%v: stats %+v", c.act, st)
		}
		if c.failed == 1 && st.LastError != "bad record" {
			t.Errorf("LastError %q", st.LastError)
		}
		if after := r.Stats()[1]; (after.In == 1) != c.act.IsContinue() {
			t.Errorf("%v: the next stage saw %d records", c.act, after.In)
		}
	}
}

func TestContextPermissions(t *testing.T) {
	var log []string
	none, all := &probe{name: "none", log: &log}, &probe{name: "all", log: &log}
	r := processor.NewRegistry(nil)
	cfg := processor.Config{"k": "v"}
	r.Register("none", none, processor.StageOptions{Config: cfg})
	r.Register("all", all, processor.StageOptions{Config: cfg, Permissions: processor.Permissions{CanReadConfig: true, CanWriteMetrics: true}})
	if err := r.InitAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := none.ctx.Config(); !errors.Is(err, processor.ErrNoPermission) {
		t.Errorf("Config without can_read_config: %v", err)
	}
	if _, err := none.ctx.Metrics(); !errors.Is(err, processor.ErrNoPermission) {
		t.Errorf("Metrics without can_write_metrics: %v", err)
	}
	if none.ctx.Logger() == nil {
		t.Error("no logger")
	}
	c, err := all.ctx.Config()
	if err != nil || c["k"] != "v" {
		t.Errorf("Config = %v, %v", c, err)
	}
	m, err := all.ctx.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	m.Counter("seen").Add(3)
	if got := r.Stats()[1].Metrics["seen"]; got != 3 {
		t.Errorf("metric seen = %d", got)
	}
}

func TestConfigDecodeUnknownKey(t *testing.T) {
	var v struct {
		Every int `toml:"every"`
	}
	err := processor.Config{"every": 3, "evry": 4}.Decode(&v)
	if !errors.Is(err, processor.ErrBadConfig) || !strings.Contains(err.Error(), "evry") {
		t.Fatalf("Decode = %v, want ErrBadConfig naming evry", err)
	}
	if err := (processor.Config{"every": "x"}).Decode(&v); !errors.Is(err, processor.ErrBadConfig) {
		t.Fatalf("wrong type: %v", err)
	}
}

func TestMessageCopyOnWrite(t *testing.T) {
	in := map[string]string{"a": "1"}
	m := processor.NewMessage([]byte("p"), in)
	if v, ok := m.Header("a"); !ok || v != "1" || m.HeadersChanged() {
		t.Fatal("read")
	}
	m.SetHeader("b", "2")
	m.SetHeaderInt("n", -42)
	m.DelHeader("a")
	if len(in) != 1 || in["a"] != "1" {
		t.Fatalf("input headers changed: %v", in)
	}
	want := map[string]string{"b": "2", "n": "-42"}
	if !reflect.DeepEqual(m.Headers(), want) || !m.HeadersChanged() {
		t.Fatalf("headers %v, want %v", m.Headers(), want)
	}
	c := m.Clone()
	m.SetHeaderInt("n", 7)
	if v, _ := c.Header("n"); v != "-42" {
		t.Fatalf("clone's header changed with the original: %q", v)
	}
	buf := []byte("new")
	m.SetPayload(buf)
	if string(m.Payload()) != "new" || !m.PayloadChanged() || string(c.Payload()) != "p" {
		t.Fatal("payload")
	}
}

// TestProcessNoChangeZeroAllocs: a chain whose stages change nothing, and
// one that only adds a header (stamp), allocate nothing per record.
func TestProcessZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("exact allocation counts need a build without -race")
	}
	var log []string
	for _, withStamp := range []bool{false, true} {
		r := processor.NewRegistry(nil)
		f, _ := builtin.New("filter")
		r.Register("filter", f, processor.StageOptions{Config: processor.Config{"payload_prefix": "{"}, Permissions: processor.Permissions{CanReadConfig: true}})
		r.Register("probe", &passthrough{}, processor.StageOptions{})
		if withStamp {
			s, _ := builtin.New("stamp")
			r.Register("stamp", s, processor.StageOptions{})
		}
		if err := r.InitAll(); err != nil {
			t.Fatal(err)
		}
		payload, hs := []byte(`{"x":1}`), map[string]string{"h": "v"}
		m := processor.NewMessage(nil, nil)
		allocs := testing.AllocsPerRun(1000, func() {
			m.Reset(payload, hs)
			if a, _ := r.Process(m); !a.IsContinue() {
				t.Fatal(a)
			}
		})
		if withStamp {
			if v, ok := m.Header("processed_at"); !ok || len(v) < 10 {
				t.Errorf("stamp: processed_at = %q", v)
			}
		}
		if allocs != 0 {
			t.Errorf("stamp %v: %.2f allocs per record, want 0", withStamp, allocs)
		}
		// AllocsPerRun truncates its mean: count every allocation too
		// (a few are allowed for the runtime's own background work).
		if n := mallocs(10000, func() { m.Reset(payload, hs); r.Process(m) }); n > 5 {
			t.Errorf("stamp %v: %d allocations in 10000 records", withStamp, n)
		}
		_ = log
	}
}

// passthrough continues every record, touching nothing.
type passthrough struct{}

func (*passthrough) Name() string                                { return "passthrough" }
func (*passthrough) Version() string                             { return "1" }
func (*passthrough) Init(processor.Context) error                { return nil }
func (*passthrough) Close() error                                { return nil }
func (*passthrough) Process(*processor.Message) processor.Action { return processor.Continue }

func TestWaitStrategyFor(t *testing.T) {
	for _, c := range []struct {
		in   time.Duration
		want client.WaitStrategy
	}{{0, client.WaitDefault}, {5 * time.Microsecond, client.WaitBusySpin}, {10 * time.Microsecond, client.WaitBackoff}, {999 * time.Microsecond, client.WaitBackoff}, {time.Millisecond, client.WaitBlocking}} {
		if got := processor.WaitStrategyFor(c.in); got != c.want {
			t.Errorf("WaitStrategyFor(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

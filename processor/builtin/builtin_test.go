package builtin

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/processor"
	"pgregory.net/rapid"
)

// initStage registers p alone with cfg (can_read_config) and initialises it.
type fataler interface {
	Helper()
	Fatal(args ...any)
}

func initStage(t fataler, p processor.StreamProcessor, cfg processor.Config) error {
	t.Helper()
	r := processor.NewRegistry(nil)
	if err := r.Register(p.Name(), p, processor.StageOptions{Config: cfg, Permissions: processor.Permissions{CanReadConfig: true}}); err != nil {
		t.Fatal(err)
	}
	return r.InitAll()
}

func TestKinds(t *testing.T) {
	if got := Kinds(); !slices.Equal(got, []string{"filter", "route", "sample", "stamp", "window"}) {
		t.Fatalf("Kinds = %v", got)
	}
	for _, k := range Kinds() {
		p, err := New(k)
		if err != nil || p.Name() != k || p.Version() != Version {
			t.Fatalf("New(%s) = %v, %v", k, p, err)
		}
	}
}

func TestStamp(t *testing.T) {
	s := &Stamp{}
	if err := initStage(t, s, nil); err != nil {
		t.Fatal(err)
	}
	m := processor.NewMessage([]byte("x"), map[string]string{"a": "b"})
	before := time.Now().UnixNano()
	if a := s.Process(m); !a.IsContinue() {
		t.Fatal(a)
	}
	v, _ := m.Header("processed_at")
	ns, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ns < before || ns > time.Now().UnixNano() {
		t.Fatalf("processed_at %q", v)
	}
	if v, _ := m.Header("a"); v != "b" || m.PayloadChanged() {
		t.Fatal("stamp changed something else")
	}
	s2 := &Stamp{}
	if err := initStage(t, s2, processor.Config{"header": "via", "value": "proc-1"}); err != nil {
		t.Fatal(err)
	}
	s2.Process(m)
	if v, _ := m.Header("via"); v != "proc-1" {
		t.Fatalf("via %q", v)
	}
	if err := initStage(t, &Stamp{}, processor.Config{"clock": "sundial"}); err == nil || !strings.Contains(err.Error(), "sundial") {
		t.Fatalf("bad clock: %v", err)
	}
}

// filterModel is the filter's specification, written plainly.
func filterModel(cfg map[string]any, hs map[string]string, payload []byte) bool {
	ok := true
	if h, _ := cfg["header"].(string); h != "" {
		v, has := hs[h]
		if absent, _ := cfg["absent"].(bool); absent {
			ok = ok && !has
		} else {
			ok = ok && has
			if eq, _ := cfg["equals"].([]string); len(eq) > 0 {
				ok = ok && slices.Contains(eq, v)
			}
			if p, _ := cfg["prefix"].(string); p != "" {
				ok = ok && strings.HasPrefix(v, p)
			}
		}
	}
	if c, _ := cfg["payload_contains"].(string); c != "" {
		ok = ok && bytes.Contains(payload, []byte(c))
	}
	if p, _ := cfg["payload_prefix"].(string); p != "" {
		ok = ok && bytes.HasPrefix(payload, []byte(p))
	}
	if mn, _ := cfg["min_bytes"].(int); len(payload) < mn {
		ok = false
	}
	if mx, _ := cfg["max_bytes"].(int); mx > 0 && len(payload) > mx {
		ok = false
	}
	if inv, _ := cfg["invert"].(bool); inv {
		ok = !ok
	}
	return ok
}

func TestFilterModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		alpha := rapid.StringMatching(`[ab]{0,3}`)
		cfg := map[string]any{}
		if rapid.Bool().Draw(t, "useHeader") {
			cfg["header"] = rapid.SampledFrom([]string{"k", "j"}).Draw(t, "header")
			switch rapid.IntRange(0, 3).Draw(t, "hpred") {
			case 1:
				cfg["equals"] = rapid.SliceOfN(alpha, 1, 3).Draw(t, "equals")
			case 2:
				cfg["prefix"] = rapid.StringMatching(`[ab]{1,2}`).Draw(t, "prefix")
			case 3:
				cfg["absent"] = true
			}
		}
		if rapid.Bool().Draw(t, "useContains") {
			cfg["payload_contains"] = rapid.StringMatching(`[ab]{1,2}`).Draw(t, "contains")
		}
		if rapid.Bool().Draw(t, "usePrefix") {
			cfg["payload_prefix"] = rapid.StringMatching(`[ab]{1,2}`).Draw(t, "pprefix")
		}
		if rapid.Bool().Draw(t, "useLen") {
			mn := rapid.IntRange(0, 3).Draw(t, "min")
			cfg["min_bytes"] = mn
			cfg["max_bytes"] = rapid.IntRange(mn, 5).Draw(t, "max")
		}
		cfg["invert"] = rapid.Bool().Draw(t, "invert")
		if len(cfg) == 1 && !cfg["invert"].(bool) {
			cfg["min_bytes"] = 0
		}
		f := &Filter{}
		if err := initStage(t, f, processor.Config(cfg)); err != nil {
			t.Fatalf("config %v: %v", cfg, err)
		}
		for range 20 {
			hs := map[string]string{}
			if rapid.Bool().Draw(t, "hasK") {
				hs["k"] = alpha.Draw(t, "kv")
			}
			payload := []byte(rapid.StringMatching(`[ab]{0,6}`).Draw(t, "payload"))
			want := filterModel(cfg, hs, payload)
			got := f.Process(processor.NewMessage(payload, hs))
			if got.IsContinue() != want || (!want && !got.IsDrop()) {
				t.Fatalf("cfg %v headers %v payload %q: %v, model keeps=%v", cfg, hs, payload, got, want)
			}
		}
	})
}

func TestFilterBadConfig(t *testing.T) {
	for _, cfg := range []processor.Config{
		nil,
		{"equals": []string{"x"}},
		{"header": "h", "absent": true, "prefix": "p"},
		{"min_bytes": 5, "max_bytes": 2},
		{"heder": "h"},
	} {
		if err := initStage(t, &Filter{}, cfg); err == nil {
			t.Errorf("%v: no error", cfg)
		}
	}
}

func TestRouteModel(t *testing.T) {
	r := &Route{}
	if err := initStage(t, r, processor.Config{"header": "sym", "routes": map[string]any{"A": "t.a", "B": "t.b"}, "default": "t.other"}); err != nil {
		t.Fatal(err)
	}
	if got := r.RouteTargets(); !slices.Equal(got, []string{"t.a", "t.b", "t.other"}) {
		t.Fatalf("targets %v", got)
	}
	for _, c := range []struct {
		hs   map[string]string
		want string
	}{{map[string]string{"sym": "A"}, "t.a"}, {map[string]string{"sym": "B"}, "t.b"}, {map[string]string{"sym": "C"}, "t.other"}, {nil, "t.other"}} {
		if got, ok := r.Process(processor.NewMessage(nil, c.hs)).RouteTopic(); !ok || got != c.want {
			t.Errorf("%v: %q, want %q", c.hs, got, c.want)
		}
	}
	byKey := &Route{}
	if err := initStage(t, byKey, processor.Config{"by": "key", "routes": map[string]any{"k1": "t.1"}, "unmatched": "drop"}); err != nil {
		t.Fatal(err)
	}
	m := processor.NewMessage(nil, nil)
	m.Key = []byte("k1")
	if got, _ := byKey.Process(m).RouteTopic(); got != "t.1" {
		t.Fatalf("by key: %q", got)
	}
	m.Key = []byte("k2")
	if a := byKey.Process(m); !a.IsDrop() {
		t.Fatalf("unmatched key: %v", a)
	}
	m.Key = nil
	if a := byKey.Process(m); !a.IsDrop() {
		t.Fatalf("no key: %v", a)
	}
	cont := &Route{}
	initStage(t, cont, processor.Config{"header": "h", "routes": map[string]any{"x": "t"}})
	if a := cont.Process(processor.NewMessage(nil, nil)); !a.IsContinue() {
		t.Fatalf("unmatched default: %v", a)
	}
	for _, cfg := range []processor.Config{nil, {"by": "color", "routes": map[string]any{"a": "b"}}, {"header": "h"}, {"routes": map[string]any{"a": "b"}}, {"header": "h", "routes": map[string]any{"a": ""}}} {
		if err := initStage(t, &Route{}, cfg); err == nil {
			t.Errorf("%v: no error", cfg)
		}
	}
}

func TestSampleEveryModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 20).Draw(t, "every")
		s := &Sample{}
		if err := initStage(t, s, processor.Config{"every": n}); err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			if got := s.Process(processor.NewMessage(nil, nil)).IsContinue(); got != (i%n == 0) {
				t.Fatalf("every %d: record %d kept=%v", n, i, got)
			}
		}
	})
}

func TestSampleIntervalModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		iv := int64(rapid.IntRange(1, 50).Draw(t, "interval_ms")) * int64(time.Millisecond)
		s := &Sample{}
		if err := initStage(t, s, processor.Config{"interval": time.Duration(iv).String()}); err != nil {
			t.Fatal(err)
		}
		ts := int64(1e9)
		var last int64 = -1
		for range 200 {
			ts += int64(rapid.IntRange(0, 20).Draw(t, "gap_ms")) * int64(time.Millisecond)
			m := processor.NewMessage(nil, nil)
			m.TimestampNS = ts
			want := last < 0 || ts-last >= iv
			if want {
				last = ts
			}
			if got := s.Process(m).IsContinue(); got != want {
				t.Fatalf("interval %v at %d (last kept %d): kept=%v", time.Duration(iv), ts, last, got)
			}
		}
	})
	for _, cfg := range []processor.Config{nil, {"every": 2, "interval": "1s"}, {"every": -1}, {"interval": "soon"}} {
		if err := initStage(t, &Sample{}, cfg); err == nil {
			t.Errorf("%v: no error", cfg)
		}
	}
}

// tick is one record for the window model: time, key, price.
type tick struct {
	at    int64
	key   string
	price float64
}

// TestWindowOHLCModel feeds random ticks to a window with a fake clock and
// compares the bars it emits with bars computed plainly.
func TestWindowOHLCModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const iv = int64(time.Second)
		var clock int64 = 1_700_000_000 * iv
		w := &Window{now: func() int64 { return clock }}
		if err := initStage(t, w, processor.Config{"interval": "1s", "key_header": "sym", "values": []string{"header:px"}}); err != nil {
			t.Fatal(err)
		}
		var got []Aggregate
		emit := func(m *processor.Message) {
			var a Aggregate
			if err := json.Unmarshal(m.Payload(), &a); err != nil {
				t.Fatal(err)
			}
			if k, _ := m.Header("window_key"); k != a.Key || string(m.Key) != a.Key {
				t.Fatalf("window_key %q, Key %q, payload key %q", k, m.Key, a.Key)
			}
			got = append(got, a)
		}
		w.Tick(clock, emit)
		var ticks []tick
		for range rapid.IntRange(0, 120).Draw(t, "n") {
			clock += int64(rapid.IntRange(0, 400).Draw(t, "gap_ms")) * int64(time.Millisecond)
			tk := tick{at: clock, key: rapid.SampledFrom([]string{"A", "B", "C"}).Draw(t, "sym"), price: float64(rapid.IntRange(1, 1000).Draw(t, "px")) / 4}
			ticks = append(ticks, tk)
			m := processor.NewMessage(nil, map[string]string{"sym": tk.key, "px": strconv.FormatFloat(tk.price, 'f', -1, 64)})
			if a := w.Process(m); !a.IsDrop() {
				t.Fatalf("window passed an input: %v", a)
			}
			if rapid.Bool().Draw(t, "tick") {
				w.Tick(clock, emit)
			}
		}
		clock += 2 * iv
		w.Tick(clock, emit)

		// The model: bars per (window, key) in time order, keys sorted.
		type bk struct {
			start int64
			key   string
		}
		bars := map[bk]*Aggregate{}
		var order []bk
		for _, tk := range ticks {
			k := bk{tk.at - tk.at%iv, tk.key}
			a := bars[k]
			if a == nil {
				a = &Aggregate{Key: tk.key, StartNS: k.start, EndNS: k.start + iv, Values: map[string]ValueAggregate{"header:px": {First: tk.price, Min: tk.price, Max: tk.price}}}
				bars[k] = a
				order = append(order, k)
			}
			v := a.Values["header:px"]
			a.Count++
			v.N++
			v.Min, v.Max, v.Last, v.Sum = math.Min(v.Min, tk.price), math.Max(v.Max, tk.price), tk.price, v.Sum+tk.price
			v.Mean = v.Sum / float64(v.N)
			a.Values["header:px"] = v
			a.RatePerSec = float64(a.Count)
		}
		slices.SortStableFunc(order, func(a, b bk) int {
			if a.start != b.start {
				return int(a.start/iv - b.start/iv)
			}
			return strings.Compare(a.key, b.key)
		})
		if len(got) != len(order) {
			t.Fatalf("%d bars, model %d", len(got), len(order))
		}
		for i, k := range order {
			w := *bars[k]
			g := got[i]
			gv, wv := g.Values["header:px"], w.Values["header:px"]
			if g.Key != w.Key || g.StartNS != w.StartNS || g.EndNS != w.EndNS || g.Count != w.Count || g.RatePerSec != w.RatePerSec ||
				gv.N != wv.N || gv.First != wv.First || gv.Min != wv.Min || gv.Max != wv.Max || gv.Last != wv.Last || math.Abs(gv.Sum-wv.Sum) > 1e-9 || math.Abs(gv.Mean-wv.Mean) > 1e-9 {
				t.Fatalf("bar %d:\n got %+v\nwant %+v", i, g, w)
			}
		}
	})
}

// TestWindowTelemetry: per-second aggregates of JSON fields, one series;
// a record without the field still counts.
func TestWindowTelemetry(t *testing.T) {
	for _, pass := range []bool{false, true} {
		clock := int64(5 * time.Second)
		w := &Window{now: func() int64 { return clock }}
		if err := initStage(t, w, processor.Config{"values": []string{"json:cpu.busy_pct", "payload"}, "pass": pass}); err != nil {
			t.Fatal(err)
		}
		var got []Aggregate
		emit := func(m *processor.Message) {
			var a Aggregate
			if err := json.Unmarshal(m.Payload(), &a); err != nil {
				t.Fatal(err)
			}
			got = append(got, a)
		}
		w.Tick(clock, emit)
		for i, p := range []string{`{"cpu":{"busy_pct":10}}`, `{"cpu":{"busy_pct":30}}`, `{"mem":1}`, ` 42 `} {
			clock += int64(100 * time.Millisecond)
			if a := w.Process(processor.NewMessage([]byte(p), nil)); a.IsContinue() != pass || a.IsDrop() == pass {
				t.Fatalf("pass=%v record %d: %v", pass, i, a)
			}
		}
		w.Tick(clock, emit)
		if len(got) != 0 {
			t.Fatal("emitted before the window ended")
		}
		clock += int64(time.Second)
		w.Tick(clock, emit)
		if len(got) != 1 {
			t.Fatalf("%d aggregates, want 1", len(got))
		}
		a := got[0]
		cpu, pl := a.Values["json:cpu.busy_pct"], a.Values["payload"]
		if a.Count != 4 || a.RatePerSec != 4 || a.StartNS != int64(5*time.Second) || a.EndNS != int64(6*time.Second) ||
			cpu.N != 2 || cpu.Mean != 20 || cpu.Min != 10 || cpu.Max != 30 || cpu.First != 10 || cpu.Last != 30 || pl.N != 1 || pl.Last != 42 {
			t.Fatalf("aggregate %+v", a)
		}
		clock += int64(3 * time.Second)
		w.Tick(clock, emit)
		if len(got) != 1 {
			t.Fatal("an empty window emitted")
		}
	}
	for _, cfg := range []processor.Config{nil, {"interval": "0s"}, {"values": []string{"head:x"}}, {"max_keys": 0}} {
		if err := initStage(t, &Window{}, cfg); err == nil {
			t.Errorf("%v: no error", cfg)
		}
	}
}

func TestWindowMaxKeys(t *testing.T) {
	w := &Window{now: func() int64 { return 1 }}
	if err := initStage(t, w, processor.Config{"key_header": "k", "max_keys": 2}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{false, false, true, false} {
		k := []string{"a", "b", "c", "a"}[i]
		if a := w.Process(processor.NewMessage(nil, map[string]string{"k": k})); a.IsFail() != want {
			t.Fatalf("key %s: %v", k, a)
		}
	}
}

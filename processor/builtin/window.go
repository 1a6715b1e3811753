package builtin

import (
	"encoding/json"
	"errors"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kaelix-io/kaelix/processor"
)

// Window aggregates records over fixed, back-to-back time windows
// (tumbling: [k*interval, (k+1)*interval) of wall-clock time) and, when a
// window ends, emits one record per key seen in it: a JSON Aggregate.
//
//	interval   = "1s"
//	key_header = "symbol"          # one series per value of this header; empty: one series
//	values     = ["header:price", "json:cpu.busy_pct", "payload"]
//	                               # numbers to aggregate: a header's value, a field of a
//	                               # JSON payload (dot path), or the payload as a number
//	max_keys   = 10000             # more keys in one window: the record fails (ErrTooManyKeys)
//	pass       = false             # true: input records also continue down the chain
//
// For each value it gives first, min, max, last (open, high, low, close
// of ticks), sum, mean and how many records carried it; for each key the
// record count and rate (records per second of window). Emitted records
// carry the headers kind=kaelix.window and window_key=KEY, have Key set to
// the key (so they partition by it) and go through the stages after this
// one. A window with no records emits nothing; the partial window at Close
// is discarded. A value that is missing or not a number is skipped (the
// record still counts).
//
// Cost per record: a map lookup, and for json: values a JSON decode (it
// allocates); header: and payload values parse in place.
type Window struct {
	cfg struct {
		Interval  string   `toml:"interval"`
		KeyHeader string   `toml:"key_header"`
		Values    []string `toml:"values"`
		MaxKeys   int      `toml:"max_keys"`
		Pass      bool     `toml:"pass"`
	}
	interval int64
	values   []valueSpec
	anyJSON  bool
	series   map[string]*series
	start    int64 // current window's start (unix ns); 0: none open
	emit     processor.EmitFunc
	now      func() int64
	jsonDoc  map[string]any
}

// ErrTooManyKeys: a window saw more keys than max_keys; the record fails.
var ErrTooManyKeys = errors.New("window: more keys than max_keys in one window")

type valueSpec struct {
	name   string   // as configured
	source string   // header, json, payload
	arg    string   // header name
	path   []string // json path
}

type series struct {
	count uint64
	aggs  []ValueAggregate
}

// Aggregate is the JSON payload Window emits.
type Aggregate struct {
	Key        string                    `json:"key"`
	StartNS    int64                     `json:"start_ns"` // unix ns, inclusive
	EndNS      int64                     `json:"end_ns"`   // exclusive
	Count      uint64                    `json:"count"`
	RatePerSec float64                   `json:"rate_per_sec"`
	Values     map[string]ValueAggregate `json:"values,omitempty"`
}

// ValueAggregate is one value's figures in a window.
type ValueAggregate struct {
	N     uint64  `json:"n"`
	First float64 `json:"first"`
	Min   float64 `json:"min"`
	Max   float64 `json:"max"`
	Last  float64 `json:"last"`
	Sum   float64 `json:"sum"`
	Mean  float64 `json:"mean"`
}

func (*Window) Name() string    { return "window" }
func (*Window) Version() string { return Version }
func (*Window) Close() error    { return nil }

func (w *Window) Init(ctx processor.Context) error {
	w.cfg.Interval, w.cfg.MaxKeys = "1s", 10000
	if err := config(ctx, &w.cfg, true); err != nil {
		return err
	}
	d, err := time.ParseDuration(w.cfg.Interval)
	if err != nil || d < time.Millisecond {
		return badf("interval %q: want a duration of at least 1ms", w.cfg.Interval)
	}
	if w.cfg.MaxKeys <= 0 {
		return badf("max_keys %d: want > 0", w.cfg.MaxKeys)
	}
	w.interval = int64(d)
	w.values = w.values[:0]
	for _, v := range w.cfg.Values {
		src, arg, _ := strings.Cut(v, ":")
		s := valueSpec{name: v, source: src, arg: arg}
		switch {
		case src == "payload" && arg == "":
		case src == "header" && arg != "":
		case src == "json" && arg != "":
			s.path = strings.Split(arg, ".")
			w.anyJSON = true
		default:
			return badf("values: %q: want header:NAME, json:PATH or payload", v)
		}
		w.values = append(w.values, s)
	}
	w.series = map[string]*series{}
	if w.now == nil {
		w.now = func() int64 { return time.Now().UnixNano() }
	}
	return nil
}

func (w *Window) windowStart(t int64) int64 { return t - t%w.interval }

// Tick closes the window if its end has passed.
func (w *Window) Tick(now int64, emit processor.EmitFunc) {
	w.emit = emit
	if w.start != 0 && now >= w.start+w.interval {
		w.flush()
	}
}

func (w *Window) Process(m *processor.Message) processor.Action {
	t := w.now()
	if w.start != 0 && t >= w.start+w.interval {
		w.flush()
	}
	if w.start == 0 {
		w.start = w.windowStart(t)
	}
	key := ""
	if w.cfg.KeyHeader != "" {
		key, _ = m.Header(w.cfg.KeyHeader)
	}
	s := w.series[key]
	if s == nil {
		if len(w.series) >= w.cfg.MaxKeys {
			return processor.Fail(ErrTooManyKeys)
		}
		s = &series{aggs: make([]ValueAggregate, len(w.values))}
		w.series[string(append([]byte(nil), key...))] = s // key may alias the arena or the ring
	}
	s.count++
	if w.anyJSON {
		clear(w.jsonDoc)
		if json.Unmarshal(m.Payload(), &w.jsonDoc) != nil {
			clear(w.jsonDoc)
		}
	}
	for i := range w.values {
		if v, ok := w.value(&w.values[i], m); ok {
			a := &s.aggs[i]
			if a.N == 0 {
				a.First, a.Min, a.Max = v, v, v
			}
			a.N++
			a.Min = math.Min(a.Min, v)
			a.Max = math.Max(a.Max, v)
			a.Last = v
			a.Sum += v
		}
	}
	if w.cfg.Pass {
		return processor.Continue
	}
	return processor.Drop
}

func (w *Window) value(s *valueSpec, m *processor.Message) (float64, bool) {
	var text string
	switch s.source {
	case "header":
		v, ok := m.Header(s.arg)
		if !ok {
			return 0, false
		}
		text = v
	case "payload":
		text = strings.TrimSpace(string(m.Payload()))
	case "json":
		var cur any = w.jsonDoc
		for _, p := range s.path {
			obj, ok := cur.(map[string]any)
			if !ok {
				return 0, false
			}
			if cur, ok = obj[p]; !ok {
				return 0, false
			}
		}
		f, ok := cur.(float64)
		return f, ok && !math.IsNaN(f)
	}
	f, err := strconv.ParseFloat(text, 64)
	return f, err == nil && !math.IsNaN(f)
}

// flush emits the open window's aggregates (keys in sorted order) and
// resets it.
func (w *Window) flush() {
	start, end := w.start, w.start+w.interval
	keys := make([]string, 0, len(w.series))
	for k := range w.series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	secs := float64(w.interval) / float64(time.Second)
	for _, k := range keys {
		s := w.series[k]
		a := Aggregate{Key: k, StartNS: start, EndNS: end, Count: s.count, RatePerSec: float64(s.count) / secs}
		if len(w.values) > 0 {
			a.Values = make(map[string]ValueAggregate, len(w.values))
			for i, v := range w.values {
				va := s.aggs[i]
				if va.N == 0 {
					continue
				}
				va.Mean = va.Sum / float64(va.N)
				a.Values[v.name] = va
			}
		}
		payload, err := json.Marshal(a)
		if err != nil || w.emit == nil {
			continue // cannot happen: plain numbers and strings; emit set by the first Tick
		}
		out := processor.NewMessage(payload, map[string]string{"kind": "kaelix.window", "window_key": k})
		out.Key = []byte(k)
		w.emit(out)
	}
	clear(w.series)
	w.start = 0
}

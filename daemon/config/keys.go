package config

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// KeyInfo describes one configuration key.
type KeyInfo struct {
	// Path is the key path: TOML tables and key joined by dots.
	Path string
	// Env is the environment variable that sets it ("" for tables, which
	// come from the file only).
	Env string
	// Table is true for Topics and Security.Access: arrays of tables,
	// settable from the file only.
	Table bool
	// Live is true when a running daemon applies a change of the key on
	// reload; any other change makes the reload refused.
	Live bool

	index []int
}

// EnvPrefix starts every environment variable that sets a key.
const EnvPrefix = "KAELIX_"

// liveKeys are applied by a running daemon on reload. Topics is live for
// additions only (see Diff).
var liveKeys = map[string]bool{
	"daemon.max_clients":                   true,
	"daemon.evict_stalled_after":           true,
	"shm.max_topic_share":                  true,
	"shm.max_topic_bytes":                  true,
	"runtime.wait_strategy":                true,
	"runtime.target_latency_us":            true,
	"telemetry.enabled":                    true,
	"telemetry.logging.level":              true,
	"telemetry.metrics.prometheus.enabled": true,
	"telemetry.health.lag_ratio":           true,
	"telemetry.health.recent_window":       true,
	"telemetry.health.heartbeat_stale":     true,
	"telemetry.health.error_share":         true,
	"security.access":                      true,
	"topics":                               true,
	"bridges":                              true,
	"processors":                           true,
}

var keyList, keyByPath = buildKeys()

// Keys lists every configuration key in file order.
func Keys() []KeyInfo { return append([]KeyInfo(nil), keyList...) }

// LookupKey returns the key of a path.
func LookupKey(path string) (KeyInfo, bool) {
	k, ok := keyByPath[path]
	return k, ok
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	textType     = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func buildKeys() ([]KeyInfo, map[string]KeyInfo) {
	var list []KeyInfo
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := f.Tag.Get("toml")
			if name == "" || name == "-" {
				continue
			}
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			idx := append(append([]int(nil), index...), i)
			ft := f.Type
			switch {
			case ft.Kind() == reflect.Struct && ft != durationType && !reflect.PointerTo(ft).Implements(textType):
				walk(ft, path, idx)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				list = append(list, KeyInfo{Path: path, Table: true, Live: liveKeys[path], index: idx})
			default:
				env := EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
				list = append(list, KeyInfo{Path: path, Env: env, Live: liveKeys[path], index: idx})
			}
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	m := make(map[string]KeyInfo, len(list))
	for _, k := range list {
		m[k.Path] = k
	}
	return list, m
}

func (k KeyInfo) field(c *Config) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(k.index)
}

// Get returns the value of key path in c as config show prints it.
func (c Config) Get(path string) (string, bool) {
	k, ok := keyByPath[path]
	if !ok {
		return "", false
	}
	return formatValue(k.field(&c)), true
}

// Set parses text into key path of c, as an environment variable or flag
// would set it. Tables cannot be set this way.
func (c *Config) Set(path, text string) error {
	k, ok := keyByPath[path]
	if !ok {
		return fmt.Errorf("unknown key %q", path)
	}
	if k.Table {
		return fmt.Errorf("%s is a table; set it in the file", path)
	}
	return setValue(k.field(c), text)
}

func setValue(v reflect.Value, text string) error {
	if v.CanAddr() {
		if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
			return u.UnmarshalText([]byte(text))
		}
	}
	if v.Type() == durationType {
		d, err := time.ParseDuration(text)
		if err != nil {
			if _, nerr := strconv.ParseFloat(text, 64); nerr == nil {
				// ParseDuration takes a bare "0"; any other number is refused.
				return fmt.Errorf("%q: a number has no unit: want a duration such as %ss or 250ms", text, text)
			}
			return fmt.Errorf("%q: want a duration such as 250ms or 1m", text)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(text)
	case reflect.Bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return fmt.Errorf("%q: want true or false", text)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil || v.OverflowInt(n) {
			return fmt.Errorf("%q: want an integer", text)
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return fmt.Errorf("%q: want a number", text)
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("cannot set a %s from text", v.Type())
	}
	return nil
}

func formatValue(v reflect.Value) string {
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		b, _ := m.MarshalText()
		return string(b)
	}
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.String:
		return strconv.Quote(v.String())
	case reflect.Slice:
		b, _ := json.Marshal(tomlNames(v))
		return string(b)
	}
	return fmt.Sprint(v.Interface())
}

// tomlNames turns a table value into plain maps and slices keyed by the
// TOML names, for printing; empty lists and absent values are left out.
func tomlNames(v reflect.Value) any {
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		b, _ := m.MarshalText()
		return string(b)
	}
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return tomlNames(v.Elem())
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = tomlNames(v.Index(i))
		}
		return out
	case reflect.Struct:
		out := map[string]any{}
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			if (f.Kind() == reflect.Slice || f.Kind() == reflect.Pointer) && (f.IsNil() || (f.Kind() == reflect.Slice && f.Len() == 0)) {
				continue
			}
			out[v.Type().Field(i).Tag.Get("toml")] = tomlNames(f)
		}
		return out
	}
	return v.Interface()
}

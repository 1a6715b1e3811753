package config

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// SourceKind says which layer set a key. Higher kinds win: Flag over Env
// over File over Default.
type SourceKind int

// Sources, lowest precedence first.
const (
	FromDefault SourceKind = iota
	FromFile
	FromEnv
	FromFlag
)

func (k SourceKind) String() string {
	return [...]string{"default", "file", "env", "flag"}[k]
}

// Source is where a key's effective value came from.
type Source struct {
	Kind SourceKind
	// Where is "FILE:LINE" for the file, the variable name for env, the
	// flag as given for flags, "" for defaults.
	Where string
}

func (s Source) String() string {
	if s.Where == "" {
		return s.Kind.String()
	}
	return s.Kind.String() + " " + s.Where
}

// Setting is one key set on the command line.
type Setting struct {
	Key   string // key path
	Value string // text, parsed as for environment variables
	Flag  string // the flag as the user wrote it, for messages ("--port")
}

// Loader builds the effective configuration from its four sources, highest
// first: Flags, the environment (KAELIX_*), the TOML file at Path, and Base
// (Default() when nil). Load may be called again (a reload): flags and
// environment keep their precedence over the re-read file. A Loader is a
// plain value; Load does not modify it and is safe for concurrent use.
type Loader struct {
	// Path is the TOML file; "" means none (defaults, env and flags only).
	Path string
	// Environ is the environment as KEY=VALUE pairs; nil means os.Environ().
	Environ []string
	// Flags are command-line settings, applied last.
	Flags []Setting
	// Base replaces Default() as the lowest layer when non-nil.
	Base *Config
}

// Loaded is one load's result.
type Loaded struct {
	Config Config
	// Sources maps every key path (Keys) to where its value came from.
	Sources map[string]Source
	// File is the file read ("" if none); Digest is the SHA-256 of its
	// bytes, so a watcher can skip events that changed nothing.
	File   string
	Digest [32]byte
	// Warnings are problems that do not block (unknown KAELIX_ variables).
	Warnings []string
	At       time.Time
}

// Load reads and merges every source and validates the result. On any
// error it returns nil and Errors (errors.Is ErrInvalid) listing every
// problem at once, each with its key path and origin: "FILE:LINE" for the
// file (syntax errors, unknown keys, type mismatches, invalid values), the
// variable for env, the flag for flags. A file that cannot be read is an
// error too.
func (l *Loader) Load() (*Loaded, error) {
	base := Default()
	if l.Base != nil {
		base = l.Base.Clone()
	}
	out := &Loaded{Sources: map[string]Source{}, At: time.Now()}
	var errs Errors
	var lines map[string]int
	cfg := base
	if l.Path != "" {
		data, err := os.ReadFile(l.Path)
		if err != nil {
			return nil, Errors{{Where: l.Path, Msg: fmt.Sprintf("cannot read: %v", err)}}
		}
		out.File, out.Digest = l.Path, sha256.Sum256(data)
		var defined map[string]bool
		cfg, defined, lines, errs = decode(l.Path, data, base)
		for p := range defined {
			out.Sources[p] = Source{Kind: FromFile, Where: l.Path + ":" + strconv.Itoa(lineOf(lines, p))}
		}
	}
	environ := l.Environ
	if environ == nil {
		environ = os.Environ()
	}
	// Aliases first, so that a key's own variable overrides its alias.
	environ = slices.Clone(environ)
	slices.SortStableFunc(environ, func(a, b string) int {
		_, ia := envAliases[strings.SplitN(a, "=", 2)[0]]
		_, ib := envAliases[strings.SplitN(b, "=", 2)[0]]
		switch {
		case ia && !ib:
			return -1
		case ib && !ia:
			return 1
		}
		return 0
	})
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || envOthers[name] {
			continue
		}
		k, known := envKey(name)
		if !known {
			out.Warnings = append(out.Warnings, fmt.Sprintf("env %s is not a configuration key; ignored", name))
			continue
		}
		if err := setValue(k.field(&cfg), val); err != nil {
			errs = append(errs, &FieldError{Key: k.Path, Where: "env " + name, Msg: err.Error()})
			continue
		}
		out.Sources[k.Path] = Source{Kind: FromEnv, Where: name}
	}
	for _, s := range l.Flags {
		if err := cfg.Set(s.Key, s.Value); err != nil {
			errs = append(errs, &FieldError{Key: s.Key, Where: "flag " + s.Flag, Msg: err.Error()})
			continue
		}
		out.Sources[s.Key] = Source{Kind: FromFlag, Where: s.Flag}
	}
	for _, k := range keyList {
		if _, ok := out.Sources[k.Path]; !ok {
			out.Sources[k.Path] = Source{Kind: FromDefault}
		}
	}
	if err := cfg.Validate(); err != nil {
		var verrs Errors
		errors.As(err, &verrs)
		for _, e := range verrs {
			e.Where = whereOf(out.Sources, lines, e.Key)
		}
		errs = append(errs, consequences(errs, verrs)...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	out.Config = cfg
	return out, nil
}

var envIndex = func() map[string]KeyInfo {
	m := map[string]KeyInfo{}
	for _, k := range keyList {
		if k.Env != "" {
			m[k.Env] = k
		}
	}
	return m
}()

func envKey(name string) (KeyInfo, bool) {
	if alias, ok := envAliases[name]; ok {
		name = alias
	}
	k, ok := envIndex[name]
	return k, ok
}

// envAliases are variables shared with kaelixctl and the client library
// that name a configuration key: KAELIX_SOCKET is the socket both sides
// use. The key's own variable, if also set, is applied after and wins.
var envAliases = map[string]string{
	"KAELIX_SOCKET": "KAELIX_DAEMON_SOCKET_PATH",
}

// envOthers are KAELIX_ variables of the project's scripts and tests,
// not configuration: ignored without a warning.
var envOthers = map[string]bool{
	"KAELIX_BIN": true, "KAELIX_SYSFS": true, "KAELIX_TEST_HUGEPAGES": true, "KAELIX_CRASH_ROUNDS": true,
}

// whereOf finds the origin of an invalid key: its own source, or for a key
// inside a table ("topics[1].capacity") the file line of that entry.
func whereOf(src map[string]Source, lines map[string]int, key string) string {
	if s, ok := src[key]; ok && s.Kind != FromDefault {
		return s.Where
	}
	if lines != nil && strings.ContainsRune(key, '[') {
		if s, ok := src[tableOf(key)]; ok && s.Kind == FromFile {
			file, _, _ := strings.Cut(s.Where, ":")
			return file + ":" + strconv.Itoa(lineOf(lines, key))
		}
	}
	if s, ok := src[key]; ok {
		return s.String()
	}
	return ""
}

func tableOf(key string) string {
	i := strings.IndexByte(key, '[')
	return key[:i]
}

// LoadBytes decodes one TOML document over base and validates it, without
// environment or flags: what `kaelixctl config validate` and the fuzz test
// use. name labels errors ("kaelixd.toml:12: ...").
func LoadBytes(name string, data []byte, base Config) (Config, error) {
	cfg, defined, lines, errs := decode(name, data, base)
	if err := cfg.Validate(); err != nil {
		var verrs Errors
		errors.As(err, &verrs)
		for _, e := range verrs {
			if defined[e.Key] || defined[strings.SplitN(e.Key, "[", 2)[0]] {
				e.Where = name + ":" + strconv.Itoa(lineOf(lines, e.Key))
			}
		}
		errs = append(errs, consequences(errs, verrs)...)
	}
	if len(errs) > 0 {
		return Config{}, errs
	}
	return cfg, nil
}

// consequences returns the validation errors verrs without those of keys
// that already failed to decode (a name of the wrong type is also an
// empty name: one error says it).
func consequences(errs, verrs Errors) Errors {
	bad := map[string]bool{}
	for _, e := range errs {
		bad[e.Key] = true
	}
	return slices.DeleteFunc(verrs, func(e *FieldError) bool { return bad[e.Key] })
}

// decode parses data over base. It returns the merged config, the key
// paths the file set (scalar keys, and tables as a whole), the line of each
// key, and every syntax error, type mismatch and unknown key.
//
// A syntax error stops the parse (nothing after it can be read). Anything
// else is checked key by key: the document is decoded to a generic tree
// (toml.Primitive values) and each key is matched against Config's fields
// (the key table) and decoded into its field alone, so that a key of the
// wrong type, or an unknown one, is reported along with every other error
// and the other keys still apply (and get validated).
func decode(name string, data []byte, base Config) (Config, map[string]bool, map[string]int, Errors) {
	cfg := base.Clone()
	lines := keyLines(data)
	var root map[string]toml.Primitive
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&root)
	if err != nil {
		var pe toml.ParseError
		fe := &FieldError{Where: name, Msg: err.Error()}
		if errors.As(err, &pe) {
			fe.Where = name + ":" + strconv.Itoa(pe.Position.Line)
			fe.Key = pe.LastKey
			fe.Msg = pe.Message
		}
		return base, nil, lines, Errors{fe}
	}
	w := &treeWalker{md: md, name: name, lines: lines, defined: map[string]bool{}}
	// Tables in the file replace the base's rather than extending them.
	w.table(root, reflect.ValueOf(&cfg).Elem(), "", "")
	return cfg, w.defined, lines, w.errs
}

// treeWalker decodes a generic TOML tree into a struct key by key.
type treeWalker struct {
	md      toml.MetaData
	name    string
	lines   map[string]int
	defined map[string]bool // key paths set, tables (arrays of tables) as a whole
	errs    Errors
}

// fail records an error for key at the line of lineKey (the indexed path,
// "topics[1].name") or, from the decoder, at line.
func (w *treeWalker) fail(key, lineKey string, line int, format string, args ...any) {
	if line == 0 {
		line = lineOf(w.lines, lineKey)
	}
	w.errs = append(w.errs, &FieldError{Key: key, Where: w.name + ":" + strconv.Itoa(line), Msg: fmt.Sprintf(format, args...)})
}

// table decodes the keys of one TOML table into the struct v. path names
// keys for Defined ("network.port", "" at the top; array entries are not
// in Defined key by key), ipath for messages and lines ("topics[1]").
func (w *treeWalker) table(tab map[string]toml.Primitive, v reflect.Value, path, ipath string) {
	keys := make([]string, 0, len(tab))
	for k := range tab {
		keys = append(keys, k)
	}
	// In file order, so that errors read top to bottom.
	slices.SortStableFunc(keys, func(a, b string) int {
		return firstLine(w.lines, join(ipath, a)) - firstLine(w.lines, join(ipath, b))
	})
	for _, k := range keys {
		prim := tab[k]
		kp, kip := join(path, k), join(ipath, k)
		f, ok := fieldByTag(v, k)
		if !ok {
			w.unknown(prim, kip)
			continue
		}
		ft := f.Type()
		switch {
		case isTable(ft):
			var sub map[string]toml.Primitive
			if !w.is(prim, kip, "a table", func(a any) bool { _, ok := a.(map[string]any); return ok }) {
				continue
			}
			w.md.PrimitiveDecode(prim, &sub)
			w.table(sub, f, kp, kip)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			if !w.is(prim, kip, "an array of tables ([["+kp+"]])", func(a any) bool { _, ok := a.([]map[string]any); return ok }) {
				continue
			}
			var entries []map[string]toml.Primitive
			w.md.PrimitiveDecode(prim, &entries)
			out := reflect.MakeSlice(ft, len(entries), len(entries))
			for i, e := range entries {
				w.table(e, out.Index(i), "", kip+"["+strconv.Itoa(i)+"]")
			}
			f.Set(out)
			if ipath == path {
				w.defined[kp] = true
			}
		default:
			if ft == durationType && !w.durationString(prim, k, kip) {
				continue
			}
			nv := reflect.New(ft)
			if err := w.md.PrimitiveDecode(prim, nv.Interface()); err != nil {
				line, msg := 0, err.Error()
				var pe toml.ParseError
				var ppe *toml.ParseError
				switch {
				case errors.As(err, &pe):
					line, msg = pe.Position.Line, pe.Message
				case errors.As(err, &ppe):
					line, msg = ppe.Position.Line, ppe.Message
				}
				if strings.Contains(msg, "incompatible types") || strings.Contains(msg, "type mismatch") || ft == durationType {
					var a any
					w.md.PrimitiveDecode(prim, &a)
					msg = fmt.Sprintf("want %s, got %s", wantOf(ft), describe(a))
				}
				w.fail(kip, kip, line, "%s", msg)
				continue
			}
			f.Set(nv.Elem())
			if ipath == path {
				w.defined[kp] = true
			}
		}
	}
}

// durationString checks that the duration key k (at kip) holds a string:
// the decoder would read a bare integer as nanoseconds, so that
// evict_stalled_after = 7 would mean 7ns. A number is a type error that
// names the fix (k = "7s"); false if it was recorded.
func (w *treeWalker) durationString(prim toml.Primitive, k, kip string) bool {
	var a any
	w.md.PrimitiveDecode(prim, &a)
	if _, ok := a.(string); ok {
		return true
	}
	fix := ""
	switch n := a.(type) {
	case int64:
		fix = fmt.Sprintf(" (a number has no unit: write %s = \"%ds\" for seconds, or \"%dms\")", k, n, n)
	case float64:
		fix = fmt.Sprintf(" (a number has no unit: write %s = \"%gs\" for seconds)", k, n)
	}
	w.fail(kip, kip, 0, "want %s, got %s%s", wantOf(durationType), describe(a), fix)
	return false
}

// is checks that prim decodes generically to what ok accepts, else
// records a type error wanting want.
func (w *treeWalker) is(prim toml.Primitive, kip, want string, ok func(any) bool) bool {
	var a any
	w.md.PrimitiveDecode(prim, &a)
	if ok(a) {
		return true
	}
	w.fail(kip, kip, 0, "want %s, got %s", want, describe(a))
	return false
}

// unknown records an unknown key; for a table, each key inside it (or
// the table itself when empty).
func (w *treeWalker) unknown(prim toml.Primitive, kip string) {
	var a any
	w.md.PrimitiveDecode(prim, &a)
	var leaves func(a any, p string) int
	leaves = func(a any, p string) int {
		switch t := a.(type) {
		case map[string]any:
			n := 0
			for _, k := range slices.Sorted(maps.Keys(t)) {
				n += leaves(t[k], join(p, k))
			}
			if n == 0 && p != kip {
				w.fail(p, p, 0, "unknown key")
				return 1
			}
			return n
		case []map[string]any:
			n := 0
			for i, e := range t {
				n += leaves(e, p+"["+strconv.Itoa(i)+"]")
			}
			return n
		}
		w.fail(p, p, 0, "unknown key")
		return 1
	}
	if leaves(a, kip) == 0 {
		w.fail(kip, kip, 0, "unknown table")
	}
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// isTable reports whether t is read from a TOML table (a struct that is
// not a duration and reads no text).
func isTable(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t != durationType && !reflect.PointerTo(t).Implements(textType)
}

// fieldByTag returns the field of struct v with toml tag k.
func fieldByTag(v reflect.Value, k string) (reflect.Value, bool) {
	for i := 0; i < v.NumField(); i++ {
		if v.Type().Field(i).Tag.Get("toml") == k {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// wantOf says what TOML value a field of type t takes.
func wantOf(t reflect.Type) string {
	switch {
	case t == durationType:
		return `a duration string such as "250ms"`
	case t == reflect.TypeFor[Size]():
		return `a size (an integer, or a string such as "64KiB")`
	case t == reflect.TypeFor[FileMode]():
		return "a permission (an integer such as 0o660)"
	case reflect.PointerTo(t).Implements(textType):
		return "a string"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return wantOf(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(wantOf(t.Elem()), "an "), "a ") + "s"
	}
	return t.String()
}

// describe names a generically decoded TOML value for messages:
// `the string "x"`.
func describe(a any) string {
	switch v := a.(type) {
	case string:
		return "the string " + strconv.Quote(v)
	case int64:
		return "the integer " + strconv.FormatInt(v, 10)
	case float64:
		return "the float " + strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return "the boolean " + strconv.FormatBool(v)
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("a %T (%v)", a, a)
}

// lineOf returns the line of key, or of its closest enclosing key or
// table, or 0.
func lineOf(lines map[string]int, key string) int {
	for key != "" {
		if n, ok := lines[key]; ok {
			return n
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

// firstLine returns the first line of key or of any key inside it (a
// table known only by its sub-tables, [telemetry.health]), else lineOf.
func firstLine(lines map[string]int, key string) int {
	first := 0
	for k, n := range lines {
		if (k == key || strings.HasPrefix(k, key+".") || strings.HasPrefix(k, key+"[")) && (first == 0 || n < first) {
			first = n
		}
	}
	if first == 0 {
		return lineOf(lines, key)
	}
	return first
}

// keyLines maps key paths to the line that sets them, by a line scan of the
// TOML text (the toml package reports positions of errors only). Keys in
// arrays of tables are recorded with their index ("topics[1].name") and,
// for the first entry, without ("topics.name", as Undecoded names them).
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	count := map[string]int{}
	prefix, plain := "", ""
	put := func(k string, n int) {
		if _, ok := lines[k]; !ok {
			lines[k] = n
		}
	}
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		line := strings.TrimSpace(stripComment(raw))
		switch {
		case line == "":
		case strings.HasPrefix(line, "[["):
			name := cleanKey(strings.TrimSuffix(strings.TrimPrefix(line, "[["), "]]"))
			iname := name // an array inside an array entry: [[processors.stages]]
			for arr, c := range count {
				if !strings.Contains(arr, "[") && strings.HasPrefix(name, arr+".") {
					iname = arr + "[" + strconv.Itoa(c-1) + "]" + strings.TrimPrefix(name, arr)
				}
			}
			prefix = iname + "[" + strconv.Itoa(count[iname]) + "]"
			plain = name
			count[iname]++
			put(prefix, n)
			put(name, n)
		case strings.HasPrefix(line, "["):
			name := cleanKey(strings.TrimSuffix(strings.TrimPrefix(line, "["), "]"))
			prefix, plain = name, name
			for arr, c := range count { // a sub-table of an array entry
				if !strings.Contains(arr, "[") && strings.HasPrefix(name, arr+".") {
					prefix = arr + "[" + strconv.Itoa(c-1) + "]" + strings.TrimPrefix(name, arr)
				}
			}
			put(prefix, n)
			put(name, n)
		default:
			k, _, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			k = cleanKey(k)
			for _, p := range []string{prefix, plain} {
				if p != "" {
					put(p+"."+k, n)
				} else {
					put(k, n)
				}
			}
		}
	}
	return lines
}

func cleanKey(k string) string {
	parts := strings.Split(strings.TrimSpace(k), ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return strings.Join(parts, ".")
}

// stripComment drops a # comment that is not inside a string.
func stripComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quote != 0 && c == '\\' && quote == '"':
			i++
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote = c
		case quote == 0 && c == '#':
			return s[:i]
		}
	}
	return s
}

package config

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
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
		errs = append(errs, verrs...)
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
		errs = append(errs, verrs...)
	}
	if len(errs) > 0 {
		return Config{}, errs
	}
	return cfg, nil
}

// decode parses data over base. It returns the merged config, the key
// paths the file set (scalar keys, and tables as a whole), the line of each
// key, and every syntax error, type mismatch and unknown key.
func decode(name string, data []byte, base Config) (Config, map[string]bool, map[string]int, Errors) {
	cfg := base.Clone()
	// Tables in the file replace the base's rather than extending them.
	lines := keyLines(data)
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
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
	var errs Errors
	for _, k := range md.Undecoded() {
		p := k.String()
		errs = append(errs, &FieldError{Key: p, Where: name + ":" + strconv.Itoa(lineOf(lines, p)), Msg: "unknown key"})
	}
	defined := map[string]bool{}
	for _, k := range keyList {
		if md.IsDefined(strings.Split(k.Path, ".")...) {
			defined[k.Path] = true
		}
	}
	return cfg, defined, lines, errs
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
			prefix = name + "[" + strconv.Itoa(count[name]) + "]"
			plain = name
			count[name]++
			put(prefix, n)
			put(name, n)
		case strings.HasPrefix(line, "["):
			name := cleanKey(strings.TrimSuffix(strings.TrimPrefix(line, "["), "]"))
			prefix, plain = name, name
			for arr, c := range count { // a sub-table of an array entry
				if strings.HasPrefix(name, arr+".") {
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

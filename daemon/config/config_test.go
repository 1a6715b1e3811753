package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/daemon/config"
	"github.com/kaelix-io/kaelix/numa"
	"github.com/kaelix-io/kaelix/shm"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kaelixd.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPrecedence proves flags > env > file > defaults for every kind of
// scalar key: string, int, bool, duration, float, size, file mode and
// policy enum.
func TestPrecedence(t *testing.T) {
	kinds := []struct {
		key, section, tomlKey   string
		file, env, flag, defVal string // values as Get prints them, except file (TOML literal)
		fileGet                 string
	}{
		{"daemon.socket_path", "daemon", "socket_path", `"/tmp/file.sock"`, "/tmp/env.sock", "/tmp/flag.sock", "", `"/tmp/file.sock"`},
		{"network.port", "network", "port", "1001", "1002", "1003", "9090", "1001"},
		{"runtime.numa_aware", "runtime", "numa_aware", "false", "true", "false", "true", "false"},
		{"daemon.heartbeat_interval", "daemon", "heartbeat_interval", `"150ms"`, "160ms", "170ms", "100ms", "150ms"},
		{"telemetry.health.lag_ratio", "telemetry.health", "lag_ratio", "0.5", "0.6", "0.7", "0.8", "0.5"},
		{"shm.page_size", "shm", "page_size", `"1GiB"`, "2MiB", "1G", "2MiB", "1GiB"},
		{"security.socket_mode", "security", "socket_mode", "0o640", "0660", "0o600", "0o600", "0o640"},
		{"shm.hugepages", "shm", "hugepages", `"off"`, "required", "auto", "auto", "off"},
		{"telemetry.logging.level", "telemetry.logging", "level", `"warn"`, "error", "debug", "info", `"warn"`},
	}
	layers := []struct {
		name            string
		file, env, flag bool
		want            func(k int) string
		wantKind        config.SourceKind
	}{
		{"default", false, false, false, nil, config.FromDefault},
		{"file", true, false, false, nil, config.FromFile},
		{"env over file", true, true, false, nil, config.FromEnv},
		{"flag over env and file", true, true, true, nil, config.FromFlag},
		{"flag over file", true, false, true, nil, config.FromFlag},
		{"env over default", false, true, false, nil, config.FromEnv},
	}
	for _, k := range kinds {
		info, ok := config.LookupKey(k.key)
		if !ok {
			t.Fatalf("no key %s", k.key)
		}
		for _, l := range layers {
			t.Run(k.key+"/"+l.name, func(t *testing.T) {
				ld := config.Loader{Environ: []string{"HOME=/root"}}
				if l.file {
					ld.Path = writeFile(t, "# test\n["+k.section+"]\n"+k.tomlKey+" = "+k.file+"\n")
				}
				if l.env {
					ld.Environ = append(ld.Environ, info.Env+"="+k.env)
				}
				if l.flag {
					ld.Flags = []config.Setting{{Key: k.key, Value: k.flag, Flag: "--set " + k.key}}
				}
				res, err := ld.Load()
				if err != nil {
					t.Fatal(err)
				}
				got, _ := res.Config.Get(k.key)
				var want string
				switch l.wantKind {
				case config.FromDefault:
					want, _ = config.Default().Get(k.key)
				case config.FromFile:
					want = k.fileGet
				case config.FromEnv, config.FromFlag:
					v := k.env
					if l.wantKind == config.FromFlag {
						v = k.flag
					}
					var c config.Config
					if err := c.Set(k.key, v); err != nil {
						t.Fatal(err)
					}
					want, _ = c.Get(k.key)
				}
				if got != want {
					t.Errorf("%s = %s, want %s", k.key, got, want)
				}
				src := res.Sources[k.key]
				if src.Kind != l.wantKind {
					t.Errorf("source %v, want %v", src, l.wantKind)
				}
				if l.wantKind == config.FromFile && !strings.HasSuffix(src.Where, ":3") {
					t.Errorf("file source %q lacks line 3", src.Where)
				}
				if l.wantKind == config.FromEnv && src.Where != info.Env {
					t.Errorf("env source %q, want %s", src.Where, info.Env)
				}
			})
		}
	}
}

func TestEnvNames(t *testing.T) {
	for key, env := range map[string]string{
		"network.port":                         "KAELIX_NETWORK_PORT",
		"runtime.numa_aware":                   "KAELIX_RUNTIME_NUMA_AWARE",
		"telemetry.metrics.prometheus.enabled": "KAELIX_TELEMETRY_METRICS_PROMETHEUS_ENABLED",
	} {
		if k, _ := config.LookupKey(key); k.Env != env {
			t.Errorf("%s: env %q, want %s", key, k.Env, env)
		}
	}
	if k, _ := config.LookupKey("topics"); !k.Table || k.Env != "" {
		t.Errorf("topics: %+v", k)
	}
}

// TestValidationNamesKeys: every class of error names its key and, from a
// file, its line; all are reported at once.
func TestValidationNamesKeys(t *testing.T) {
	body := `[daemon]
socket_path = "relative.sock"
heartbeat_interval = "0s"

[shm]
dir_name = "../x"
page_size = "4KiB"
file_mode = 600

[network]
port = 70000
max_connections = 0

[runtime]
wait_strategy = "sleepy"
worker_threads = -1

[telemetry.logging]
level = "loud"
target = "syslog"

[telemetry.health]
lag_ratio = 1.5

[security.tls]
enabled = true

[[security.access]]
topics = "[bad"

[[topics]]
name = "ok.one"

[[topics]]
name = "bad name"
kind = "ring"
policy = "drop"
capacity = 5000
`
	p := writeFile(t, body)
	_, err := (&config.Loader{Path: p, Environ: []string{}}).Load()
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("Load: %v", err)
	}
	want := map[string]int{
		"daemon.socket_path": 2, "daemon.heartbeat_interval": 3, "shm.dir_name": 6, "shm.page_size": 7, "shm.file_mode": 8,
		"network.port": 11, "network.max_connections": 12, "runtime.wait_strategy": 15, "runtime.worker_threads": 16,
		"telemetry.logging.level": 19, "telemetry.logging.target": 20, "telemetry.health.lag_ratio": 23,
		"security.tls.cert_path": 0, "security.tls.key_path": 0, "security.access[0].topics": 29,
		"topics[1].name": 35, "topics[1].kind": 36, "topics[1].policy": 37,
	}
	var fes config.Errors
	errors.As(err, &fes)
	got := map[string]*config.FieldError{}
	for _, fe := range fes {
		got[fe.Key] = fe
	}
	for key, line := range want {
		fe, ok := got[key]
		if !ok {
			t.Errorf("no error for %s in:\n%v", key, err)
			continue
		}
		if line > 0 && fe.Where != p+":"+itoa(line) {
			t.Errorf("%s: where %q, want line %d", key, fe.Where, line)
		}
	}
	t.Log(err)
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestCapacityError(t *testing.T) {
	_, err := config.LoadBytes("f.toml", []byte("[[topics]]\nname = \"a\"\ncapacity = 5000\n"), config.Default())
	if err == nil || !strings.Contains(err.Error(), "f.toml:3: topics[0].capacity") {
		t.Fatalf("capacity: %v", err)
	}
}

func TestUnknownKeys(t *testing.T) {
	_, err := config.LoadBytes("k.toml", []byte("[network]\nport = 1\nprot = 2\n\n[nosuch]\nx = 1\n\n[[topics]]\nname = \"a\"\ncolour = \"red\"\n"), config.Default())
	for _, w := range []string{"k.toml:3: network.prot: unknown key", "k.toml:6: nosuch.x: unknown key", "k.toml:10: topics[0].colour: unknown key"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in %v", w, err)
		}
	}
	// Unknown KAELIX_ variables only warn (other tools share the prefix).
	res, err := (&config.Loader{Environ: []string{"KAELIX_NETWORK_PROT=1"}}).Load()
	if err != nil || len(res.Warnings) != 1 {
		t.Fatalf("unknown env: %v %v", res, err)
	}
	// KAELIX_SOCKET (kaelixctl's and the client's) names the daemon's
	// socket too; the key's own variable wins; the scripts' variables are
	// not warned about.
	res, err = (&config.Loader{Environ: []string{"KAELIX_SOCKET=/tmp/a.sock", "KAELIX_BIN=bin"}}).Load()
	if err != nil || res.Config.Daemon.SocketPath != "/tmp/a.sock" || len(res.Warnings) != 0 || res.Sources["daemon.socket_path"].Where != "KAELIX_SOCKET" {
		t.Fatalf("KAELIX_SOCKET: %v, socket %q, warnings %v, source %+v", err, res.Config.Daemon.SocketPath, res.Warnings, res.Sources["daemon.socket_path"])
	}
	res, err = (&config.Loader{Environ: []string{"KAELIX_DAEMON_SOCKET_PATH=/tmp/b.sock", "KAELIX_SOCKET=/tmp/a.sock"}}).Load()
	if err != nil || res.Config.Daemon.SocketPath != "/tmp/b.sock" {
		t.Fatalf("KAELIX_DAEMON_SOCKET_PATH beside KAELIX_SOCKET: %v, socket %q", err, res.Config.Daemon.SocketPath)
	}
	// A bad env value is an error naming the variable.
	_, err = (&config.Loader{Environ: []string{"KAELIX_NETWORK_PORT=http"}}).Load()
	if err == nil || !strings.Contains(err.Error(), "env KAELIX_NETWORK_PORT: network.port") {
		t.Fatalf("bad env: %v", err)
	}
	_, err = (&config.Loader{Environ: []string{}, Flags: []config.Setting{{Key: "network.nope", Value: "1", Flag: "--set network.nope=1"}}}).Load()
	if err == nil || !strings.Contains(err.Error(), "flag --set network.nope=1") {
		t.Fatalf("bad flag: %v", err)
	}
}

func TestSyntaxErrorLine(t *testing.T) {
	_, err := config.LoadBytes("s.toml", []byte("[network]\nport = 1\nhost = \"unterminated\n"), config.Default())
	if err == nil || !strings.Contains(err.Error(), "s.toml:3") {
		t.Fatalf("syntax: %v", err)
	}
}

func TestDiff(t *testing.T) {
	old := config.Default()
	old.Topics = []config.Topic{{Name: "a", Capacity: 1 << 20}}
	nw := old.Clone()
	nw.Telemetry.Logging.Level = "debug"
	nw.Daemon.SocketPath = "/run/other.sock"
	nw.Topics = append(nw.Topics, config.Topic{Name: "b"})
	nw.Topics[0].Capacity = 1 << 21
	live, refused := config.Diff(old, nw)
	var lk, rk []string
	for _, c := range live {
		lk = append(lk, c.Key)
	}
	for _, c := range refused {
		rk = append(rk, c.Key+"="+c.Old+"->"+c.New)
	}
	if strings.Join(lk, ",") != "telemetry.logging.level,topics[name=b]" {
		t.Errorf("live %v", lk)
	}
	if len(rk) != 2 || !strings.HasPrefix(rk[0], `daemon.socket_path="`) || rk[1] != "topics[name=a].capacity=1MiB->2MiB" {
		t.Errorf("refused %v", rk)
	}
	err := &config.NotLiveError{Changes: refused}
	if !errors.Is(err, config.ErrNotLive) || !strings.Contains(err.Error(), "daemon.socket_path not supported live: old=") {
		t.Errorf("%v", err)
	}
}

// TestCheck runs the environment checks against the numa fixture trees.
func TestCheck(t *testing.T) {
	node := func(n int) *int { return &n }
	fixture := func(name string) *numa.Topology {
		topo, err := numa.Load(filepath.Join("..", "..", "numa", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return topo
	}
	ok := func(string) error { return nil }
	cases := []struct {
		name  string
		tree  string
		mod   func(c *config.Config, h *config.Host)
		want  []string // "severity key substring"
		clean bool
	}{
		{"defaults on one node", "single-node", nil, nil, true},
		{"hugepages required, node1 has none", "hugepages-node0-only", func(c *config.Config, h *config.Host) {
			c.Shm.HugePages = shm.PolicyRequired
			c.Topics = []config.Topic{{Name: "a", NUMANode: node(1)}}
		}, []string{"error shm.hugepages no 2MiB pages are reserved on node 1"}, false},
		{"hugepages auto warns per node", "hugepages-node0-only", func(c *config.Config, h *config.Host) {
			c.Topics = []config.Topic{{Name: "a", NUMANode: node(1)}}
		}, []string{"warning shm.hugepages node 1"}, false},
		{"1GiB pool missing on node3", "two-socket-four-node", func(c *config.Config, h *config.Host) {
			c.Shm.HugePages = shm.PolicyRequired
			c.Topics = []config.Topic{{Name: "a", NUMANode: node(3)}}
		}, []string{"error shm.hugepages node 3"}, false},
		{"node that does not exist", "two-socket-four-node", func(c *config.Config, h *config.Host) {
			c.Topics = []config.Topic{{Name: "a", NUMANode: node(5)}}
		}, []string{"error topics[0].numa_node node 5 does not exist"}, false},
		{"worker threads above CPUs", "single-node", func(c *config.Config, h *config.Host) {
			c.Runtime.WorkerThreads = 64
		}, []string{"warning runtime.worker_threads exceeds the 8 CPUs"}, false},
		{"shm smaller than topics", "single-node", func(c *config.Config, h *config.Host) {
			c.Shm.HugePages = shm.PolicyOff
			c.Topics = []config.Topic{{Name: "a", Partitions: 4, Capacity: 1 << 24}}
			h.ShmTotalBytes, h.ShmFreeBytes = 32<<20, 32<<20
		}, []string{"error topics declared topics need"}, false},
		{"memlock below mlock need", "single-node", func(c *config.Config, h *config.Host) {
			c.Shm.Mlock = shm.PolicyRequired
			c.Topics = []config.Topic{{Name: "a"}}
			h.MemlockBytes = 64 << 10
		}, []string{"error shm.mlock RLIMIT_MEMLOCK is 64KiB"}, false},
		{"socket dir not writable", "single-node", func(c *config.Config, h *config.Host) {
			h.Writable = func(dir string) error { return errors.New("permission denied") }
		}, []string{"error daemon.socket_path is not writable", "error daemon.state_dir is not writable"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			h := config.Host{Topology: fixture(tc.tree), CPUs: 8, ShmTotalBytes: 1 << 30, ShmFreeBytes: 1 << 30, MemlockBytes: 1 << 40, Writable: ok}
			if tc.mod != nil {
				tc.mod(&c, &h)
			}
			fs := config.Check(c, h)
			var got []string
			for _, f := range fs {
				got = append(got, f.Severity.String()+" "+f.Key+" "+f.Msg)
			}
			if tc.clean && len(fs) != 0 {
				t.Fatalf("findings on a clean host: %v", got)
			}
			for _, w := range tc.want {
				sev, rest, _ := strings.Cut(w, " ")
				key, sub, _ := strings.Cut(rest, " ")
				found := false
				for _, f := range fs {
					if f.Severity.String() == sev && f.Key == key && strings.Contains(f.Msg, sub) {
						found = true
					}
				}
				if !found {
					t.Errorf("want %q in %v", w, got)
				}
			}
			if (config.CheckErrors(fs) != nil) != strings.HasPrefix(strings.Join(tc.want, ""), "error") {
				t.Errorf("CheckErrors mismatch: %v", got)
			}
		})
	}
}

func TestExampleFileValid(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "configs", "kaelixd.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.LoadBytes("kaelixd.example.toml", b, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if c.Daemon.HeartbeatInterval != 100*time.Millisecond || len(c.Topics) == 0 {
		t.Errorf("example decoded to %+v", c.Daemon)
	}
}

// FuzzLoadConfig: no input makes the loader panic; whatever it accepts
// validates, and every error names a key or a line.
func FuzzLoadConfig(f *testing.F) {
	for _, s := range []string{
		"", "[network]\nport = 9191\n", "[[topics]]\nname = \"a\"\ncapacity = \"1MiB\"\n",
		"[security]\nsocket_mode = 0o660\n[[security.access]]\ntopics = \"a.*\"\npublish = { uids = [1000] }\n",
		"[[security.access]]\ntopics = \"a.*\"\n[[security.access.groups]]\nnames = \"w*\"\njoin = { gids = [100] }\n",
		"[daemon\n", "[shm]\npage_size = -1\n", "x = 1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.LoadBytes("fuzz.toml", data, config.Default())
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("accepted an invalid config: %v", verr)
			}
			return
		}
		var fes config.Errors
		if !errors.As(err, &fes) || len(fes) == 0 {
			t.Fatalf("error is not Errors: %T %v", err, err)
		}
		for _, fe := range fes {
			if fe.Key == "" && fe.Where == "" {
				t.Fatalf("error names neither key nor place: %v", fe)
			}
		}
	})
}

// Queue-group entries of an access rule parse, and a bad one is an error
// naming its key.
func TestAccessGroups(t *testing.T) {
	good := "[[security.access]]\ntopics = \"jobs.*\"\nsubscribe = { uids = [7] }\n[[security.access.groups]]\nnames = \"workers\"\njoin = { uids = [7], gids = [100] }\n"
	c, err := config.LoadBytes("g.toml", []byte(good), config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if g := c.Security.Access[0].Groups; len(g) != 1 || g[0].Names != "workers" || len(g[0].Join.UIDs) != 1 || g[0].Join.GIDs[0] != 100 {
		t.Fatalf("groups parsed as %+v", g)
	}
	if cl := c.Clone(); &cl.Security.Access[0].Groups[0] == &c.Security.Access[0].Groups[0] {
		t.Fatal("Clone shares the groups")
	}
	bad := "[[security.access]]\ntopics = \"jobs.*\"\n[[security.access.groups]]\nnames = \"[\"\njoin = { uids = [-1] }\n"
	c, err = config.LoadBytes("g.toml", []byte(bad), config.Default())
	if err == nil {
		err = c.Validate()
	}
	if err == nil || !strings.Contains(err.Error(), "security.access[0].groups[0].names") || !strings.Contains(err.Error(), "security.access[0].groups[0].join") {
		t.Fatalf("bad group entry: %v", err)
	}
}

// TestDurationNumberRefused: a duration from the environment or a flag
// must carry a unit too; a bare number (which the file decoder would read
// as nanoseconds) is refused naming the key, the source and the fix, and
// every such error is reported at once. A bare "0" stays valid there
// (time.ParseDuration takes it: zero needs no unit).
func TestDurationNumberRefused(t *testing.T) {
	_, err := (&config.Loader{
		Environ: []string{"KAELIX_DAEMON_EVICT_STALLED_AFTER=7", "KAELIX_TELEMETRY_HEALTH_RECENT_WINDOW=0"},
		Flags:   []config.Setting{{Key: "daemon.sweep_interval", Value: "1.5", Flag: "--set"}},
	}).Load()
	compareErrors(t, err, []string{
		`env KAELIX_DAEMON_EVICT_STALLED_AFTER: daemon.evict_stalled_after: "7": a number has no unit: want a duration such as 7s or 250ms`,
		`flag --set: daemon.sweep_interval: "1.5": a number has no unit: want a duration such as 1.5s or 250ms`,
	})
	res, err := (&config.Loader{Environ: []string{"KAELIX_DAEMON_EVICT_STALLED_AFTER=7s"}}).Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Config.Daemon.EvictStalledAfter; got != 7*time.Second {
		t.Errorf("evict_stalled_after = %v, want 7s", got)
	}
}

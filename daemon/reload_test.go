package daemon_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/daemon/config"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
	"github.com/kaelix-io/kaelix/wire"
)

// fileDaemon is an in-process daemon configured from a TOML file, with the
// test's unique paths given as flags (so they also prove that flags keep
// precedence over a reloaded file).
type fileDaemon struct {
	d    *daemon.Daemon
	cfg  daemon.Config
	path string // the config file
}

const baseTOML = `[network]
port = 9090

[telemetry.logging]
level = "info"

[[topics]]
name = "cfg.a"
capacity = "64KiB"
`

func startFile(t *testing.T, body string, mod func(*daemon.Config)) *fileDaemon {
	t.Helper()
	dirs := testdaemon.NewDirs(t)
	path := filepath.Join(dirs.StateDir, "kaelixd.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	loader := &config.Loader{Path: path, Environ: []string{}, Flags: []config.Setting{
		{Key: "daemon.socket_path", Value: dirs.SocketPath, Flag: "--socket"},
		{Key: "shm.dir_name", Value: dirs.ShmDirName, Flag: "--shm-dir"},
		{Key: "network.port", Value: "0", Flag: "--http-port=0"},
	}}
	ld, err := loader.Load()
	if err != nil {
		t.Fatal(err)
	}
	cfg := daemon.Config{Config: ld.Config, Loader: loader, Loaded: ld, RemoveOnExit: true,
		Logger: slog.New(slog.DiscardHandler), ReloadDebounce: 30 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	d := testdaemon.StartConfig(t, cfg)
	return &fileDaemon{d: d.Daemon, cfg: cfg, path: path}
}

func (f *fileDaemon) write(t *testing.T, body string) {
	t.Helper()
	if err := os.WriteFile(f.path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReloadWhileTraffic applies a live change (a topic added, the log
// level, an access rule, the wait strategy) while a publisher and a
// subscriber run, and checks that no record is lost or reordered.
func TestReloadWhileTraffic(t *testing.T) {
	f := startFile(t, baseTOML, nil)
	ctx := context.Background()
	c, err := client.Connect(ctx, client.Options{SocketPath: f.d.SocketPath()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sub, err := c.Subscribe(ctx, "cfg.a", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := c.NewPublisher(ctx, "cfg.a", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	changes := make(chan daemon.ConfigChange, 4)
	cancelSub := f.d.OnConfigChange(func(ch daemon.ConfigChange) { changes <- ch })
	defer cancelSub()

	const n = 20000
	var wg sync.WaitGroup
	wg.Add(1)
	var pubErr error
	go func() {
		defer wg.Done()
		var b [8]byte
		for i := range n {
			binary.LittleEndian.PutUint64(b[:], uint64(i))
			if err := pub.Publish(ctx, client.NewMessage(b[:])); err != nil {
				pubErr = err
				return
			}
		}
	}()
	reloaded := make(chan error, 1)
	go func() {
		time.Sleep(5 * time.Millisecond)
		f.write(t, baseTOML+`
[runtime]
wait_strategy = "blocking"

[[security.access]]
topics = "cfg.*"
publish = { uids = [4242] }

[[topics]]
name = "cfg.b"
`)
		f.write(t, strings.Replace(f.readFile(t), `level = "info"`, `level = "debug"`, 1))
		_, err := f.d.Reload()
		reloaded <- err
	}()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i := range n {
		m, err := sub.Receive(rctx)
		if err != nil {
			t.Fatalf("receive %d: %v", i, err)
		}
		if got := binary.LittleEndian.Uint64(m.Payload); got != uint64(i) {
			t.Fatalf("record %d: got %d", i, got)
		}
	}
	wg.Wait()
	if pubErr != nil {
		t.Fatal(pubErr)
	}
	if err := <-reloaded; err != nil {
		t.Fatal(err)
	}
	ch := <-changes
	keys := []string{}
	for _, c := range ch.Changes {
		keys = append(keys, c.Key)
	}
	if got := strings.Join(keys, ","); got != "runtime.wait_strategy,telemetry.logging.level,security.access,topics[name=cfg.b]" {
		t.Errorf("changes %s", got)
	}
	if ch.Old.Telemetry.Logging.Level != "info" || ch.New.Telemetry.Logging.Level != "debug" || ch.At.IsZero() {
		t.Errorf("change old %q new %q at %v", ch.Old.Telemetry.Logging.Level, ch.New.Telemetry.Logging.Level, ch.At)
	}
	if _, err := c.TopicInfo(ctx, "cfg.b"); err != nil {
		t.Errorf("declared topic not created on reload: %v", err)
	}
	cur := f.d.Config()
	if cur.Network.Port != 0 || cur.Runtime.WaitStrategy != "blocking" || len(cur.Security.Access) != 1 {
		t.Errorf("after reload: port %d (flag must win over the file's 9090), wait %s", cur.Network.Port, cur.Runtime.WaitStrategy)
	}
	if h := f.d.Health(); !healthyHere(h) {
		t.Errorf("health after a good reload: %+v", h)
	}
}

func (f *fileDaemon) readFile(t *testing.T) string {
	b, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBadReloadsKeepLastGood: through the file watcher, a half-written
// file, a syntax error, an invalid value and a symlink swap to a bad file
// each leave the configuration unchanged, count a failure and make health
// degraded; a good file then recovers.
func TestBadReloadsKeepLastGood(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte(baseTOML), 0o600)
	f := startFile(t, baseTOML, func(c *daemon.Config) { c.WatchFile = true })
	// Make the config path a symlink to good.toml (a symlink swap to it
	// is itself a change the watcher must see).
	swap := func(target string) {
		tmp := f.path + ".tmp"
		os.Remove(tmp)
		if err := os.Symlink(target, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			t.Fatal(err)
		}
	}
	failures := func() int {
		n := 0
		for _, mf := range scrape(t, f.d) {
			if mf.name == "kaelix_config_reload_failures_total" {
				n = int(mf.value)
			}
		}
		return n
	}
	lastAt := func() int64 { return f.d.ConfigView().LastReload.AtNS }
	cases := []struct {
		name   string
		apply  func()
		errHas []string // every error is in the reload's message
	}{
		{"half-written", func() { f.write(t, baseTOML[:len(baseTOML)-12]) }, nil},
		{"syntax error", func() { f.write(t, "[network\nport = 1\n") }, nil},
		{"invalid value", func() { f.write(t, baseTOML+"\n[runtime]\nwait_strategy = \"nap\"\n") }, nil},
		// A bare-number duration (would be nanoseconds) and an unknown
		// table: both reported (issue 11.7).
		{"bare-number duration and unknown table", func() { f.write(t, baseTOML+"\n[daemon]\nevict_stalled_after = 7\n\n[bogus]\n") },
			[]string{":12: daemon.evict_stalled_after: want a duration string", `evict_stalled_after = "7s"`, ":14: bogus: unknown table"}},
		{"symlink swap to a bad file", func() {
			bad := filepath.Join(dir, "bad.toml")
			os.WriteFile(bad, []byte("[telemetry.logging]\nlevel = \"chatty\"\n"), 0o600)
			swap(bad)
		}, nil},
	}
	want := f.d.Config()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, at := failures(), lastAt()
			tc.apply()
			waitFor(t, "a failed reload", func() bool { return failures() > before && lastAt() != at })
			r := f.d.ConfigView().LastReload
			if r.OK || r.Trigger != "file" || r.Error == "" {
				t.Errorf("last reload %+v", r)
			}
			for _, s := range tc.errHas {
				if !strings.Contains(r.Error, s) {
					t.Errorf("reload error %q does not say %q", r.Error, s)
				}
			}
			got := f.d.Config()
			if got.Telemetry.Logging.Level != want.Telemetry.Logging.Level || got.Network.Port != want.Network.Port || len(got.Topics) != len(want.Topics) ||
				got.Daemon.EvictStalledAfter != want.Daemon.EvictStalledAfter {
				t.Errorf("config changed by a bad file: %+v", got)
			}
			h := hostless(f.d.Health())
			if h.Status != wire.HealthDegraded || len(h.Reasons) == 0 || h.Reasons[0].Rule != "reload" {
				t.Errorf("health %+v", h)
			}
			// Recover with a good file (a symlink swap for the last case).
			at = lastAt()
			body := strings.Replace(baseTOML, `level = "info"`, fmt.Sprintf(`level = %q`, []string{"debug", "warn", "error", "debug", "info"}[i]), 1)
			if i == len(cases)-1 {
				os.WriteFile(good, []byte(body), 0o600)
				swap(good)
			} else {
				f.write(t, body)
			}
			waitFor(t, "a good reload", func() bool { return lastAt() != at && f.d.ConfigView().LastReload.OK })
			if h := f.d.Health(); !healthyHere(h) {
				t.Errorf("health after a good file: %+v", h)
			}
			want = f.d.Config()
		})
	}
}

// TestReloadNotLive: a key that cannot change live is refused by name with
// its old and new values, and nothing else in the file is applied.
func TestReloadNotLive(t *testing.T) {
	f := startFile(t, baseTOML, nil)
	f.write(t, strings.Replace(baseTOML, `level = "info"`, `level = "debug"`, 1)+"\n[shm]\nprefault = true\n")
	_, err := f.d.Reload()
	var nl *config.NotLiveError
	if !errors.As(err, &nl) || !strings.Contains(err.Error(), "shm.prefault not supported live: old=false, new=true") {
		t.Fatalf("reload: %v", err)
	}
	if f.d.Config().Telemetry.Logging.Level != "info" {
		t.Error("a refused reload applied the live key")
	}
	// A declared topic whose parameters change is refused by name too.
	f.write(t, strings.Replace(baseTOML, "64KiB", "128KiB", 1))
	if _, err := f.d.Reload(); err == nil || !strings.Contains(err.Error(), "topics[name=cfg.a].capacity not supported live: old=64KiB, new=128KiB") {
		t.Fatalf("topic change: %v", err)
	}
}

// TestSIGHUP reloads through the signal table with a real SIGHUP sent to
// this process.
func TestSIGHUP(t *testing.T) {
	f := startFile(t, baseTOML, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := f.d.HandleSignals(ctx, func() {})
	defer release()
	f.write(t, strings.Replace(baseTOML, `level = "info"`, `level = "warn"`, 1))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SIGHUP reload", func() bool { return f.d.Config().Telemetry.Logging.Level == "warn" })
	if r := f.d.ConfigView().LastReload; !r.OK || r.Trigger != "signal" {
		t.Errorf("last reload %+v", r)
	}
}

// TestControlConfig: config show lists every key with its source; config
// reload over the control socket applies the file.
func TestControlConfig(t *testing.T) {
	f := startFile(t, baseTOML, nil)
	r := dial(t, f.cfg, true)
	var v wire.ConfigView
	if err := r.call(wire.TypeConfigShow, nil, &v); err != nil {
		t.Fatal(err)
	}
	src := map[string]string{}
	for _, e := range v.Entries {
		src[e.Key] = e.Source
	}
	if src["telemetry.logging.level"] != "file "+f.path+":5" || src["daemon.socket_path"] != "flag --socket" ||
		src["network.port"] != "flag --http-port=0" || src["runtime.wait_strategy"] != "default" || len(v.Entries) != len(config.Keys()) {
		t.Errorf("sources %v", src)
	}
	f.write(t, strings.Replace(baseTOML, `level = "info"`, `level = "error"`, 1))
	var rr wire.ConfigReload
	if err := r.call(wire.TypeConfigReload, nil, &rr); err != nil {
		t.Fatal(err)
	}
	if len(rr.Changes) != 1 || rr.Changes[0] != (wire.ConfigChange{Key: "telemetry.logging.level", Old: `"info"`, New: `"error"`}) {
		t.Errorf("changes %+v", rr.Changes)
	}
	f.write(t, "[network\n")
	if err := r.call(wire.TypeConfigReload, nil, nil); code(err) != wire.CodeConfig || !strings.Contains(err.Error(), f.path+":") || !strings.Contains(err.Error(), "to end table name") {
		t.Errorf("bad reload: %v", err)
	}
	var h wire.Health
	if err := r.call(wire.TypeHealth, nil, &h); err != nil || h.Status != wire.HealthDegraded {
		t.Errorf("health %+v %v", h, err)
	}
}

// noKeepAlive leaves no idle connection goroutines behind for goleak.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape GETs /metrics and parses it with the Prometheus text parser.
func scrape(t *testing.T, d *daemon.Daemon) []sample {
	t.Helper()
	resp, err := noKeepAlive.Get("http://" + d.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out []sample
	for name, mf := range fams {
		for _, m := range mf.GetMetric() {
			s := sample{name: name, labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				s.value = m.GetCounter().GetValue()
			case m.Gauge != nil:
				s.value = m.GetGauge().GetValue()
			case m.Untyped != nil:
				s.value = m.GetUntyped().GetValue()
			}
			out = append(out, s)
		}
	}
	return out
}

func find(ss []sample, name string, labels ...string) (float64, bool) {
next:
	for _, s := range ss {
		if s.name != name {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		return s.value, true
	}
	return 0, false
}

// TestMetricsScrape: published and consumed counts read from shared memory
// at scrape time equal what the test sent; daemon and process metrics are
// there; the live toggle turns /metrics off.
func TestMetricsScrape(t *testing.T) {
	f := startFile(t, baseTOML, nil)
	ctx := context.Background()
	c, err := client.Connect(ctx, client.Options{SocketPath: f.d.SocketPath()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: "m.two", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, "m.two", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := c.NewPublisher(ctx, "m.two", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sent := [2]int{}
	for i := range 300 {
		p := i % 3 % 2 // 200 to partition 0, 100 to partition 1
		if err := pub.Publish(ctx, client.NewMessage([]byte("x"), client.WithPartition(p))); err != nil {
			t.Fatal(err)
		}
		sent[p]++
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for range 300 {
		if _, err := sub.Receive(rctx); err != nil {
			t.Fatal(err)
		}
	}
	ss := scrape(t, f.d)
	for p, n := range sent {
		part := fmt.Sprint(p)
		if v, ok := find(ss, "kaelix_partition_published_records_total", "topic", "m.two", "partition", part); !ok || int(v) != n {
			t.Errorf("partition %d published %v (%v), want %d", p, v, ok, n)
		}
		if v, ok := find(ss, "kaelix_partition_consumed_records_total", "topic", "m.two", "partition", part); !ok || int(v) != n {
			t.Errorf("partition %d consumed %v (%v), want %d", p, v, ok, n)
		}
		if v, ok := find(ss, "kaelix_partition_consumed_payload_bytes_total", "topic", "m.two", "partition", part); !ok || int(v) != n {
			t.Errorf("partition %d consumed %v bytes (%v), want %d (1-byte payloads)", p, v, ok, n)
		}
		if v, _ := find(ss, "kaelix_partition_subscribers", "topic", "m.two", "partition", part); v != 1 {
			t.Errorf("partition %d subscribers %v", p, v)
		}
	}
	for _, name := range []string{"kaelix_config_reloads_total", "kaelix_config_reload_failures_total", "kaelix_clients",
		"kaelix_control_requests_total", "process_cpu_seconds_total", "kaelix_partition_back_pressure_total", "kaelix_numa_regions", "kaelix_health_status"} {
		if _, ok := find(ss, name); !ok {
			t.Errorf("no %s", name)
		}
	}
	if v, ok := find(ss, "kaelix_control_requests_total", "type", "attach", "result", "ok"); !ok || v != 2 {
		t.Errorf("attach requests %v", v)
	}
	f.write(t, baseTOML+"\n[telemetry.metrics.prometheus]\nenabled = false\n")
	if _, err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	resp, err := noKeepAlive.Get("http://" + f.d.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics while disabled: %s", resp.Status)
	}
}

func getHealth(t *testing.T, client *http.Client, url string) (int, wire.Health) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h wire.Health
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return resp.StatusCode, h
}

// TestHealthzLag: /healthz turns degraded when a subscriber falls behind
// more than lag_ratio of its ring, and healthy again when it catches up.
func TestHealthzLag(t *testing.T) {
	f := startFile(t, baseTOML, nil)
	url := "http://" + f.d.HTTPAddr() + "/healthz"
	if code, h := getHealth(t, noKeepAlive, url); code != 200 || !healthyHere(h) {
		t.Fatalf("fresh daemon: %d %+v", code, h)
	}
	ctx := context.Background()
	c, err := client.Connect(ctx, client.Options{SocketPath: f.d.SocketPath()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sub, err := c.Subscribe(ctx, "cfg.a", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := c.NewPublisher(ctx, "cfg.a", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for pub.TryPublish(client.NewMessage(make([]byte, 512))) == nil { // block policy: fills the ring
		n++
	}
	code, h := getHealth(t, noKeepAlive, url)
	h = hostless(h)
	if code != 200 || h.Status != wire.HealthDegraded || len(h.Reasons) != 1 || h.Reasons[0].Rule != "subscriber_lag" || !strings.Contains(h.Reasons[0].Message, `topic "cfg.a" partition 0`) {
		t.Fatalf("lagging subscriber: %d %+v", code, h)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for range n {
		if _, err := sub.Receive(rctx); err != nil {
			t.Fatal(err)
		}
	}
	if code, h := getHealth(t, noKeepAlive, url); code != 200 || !healthyHere(h) {
		t.Fatalf("after catching up: %d %+v", code, h)
	}
}

// TestHealthNotRunning: a daemon not serving is unknown.
func TestHealthNotRunning(t *testing.T) {
	cfg := daemon.Default()
	cfg.Logger = slog.New(slog.DiscardHandler)
	d, err := daemon.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if h := d.Health(); h.Status != wire.HealthUnknown || h.Reasons[0].Rule != "not_running" {
		t.Fatalf("%+v", h)
	}
	if _, err := d.Reload(); !errors.Is(err, daemon.ErrNoConfigSource) {
		t.Fatalf("reload without a loader: %v", err)
	}
}

// TestTLS serves /healthz over TLS with a self-signed certificate made here.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kaelixd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	f := startFile(t, baseTOML+fmt.Sprintf("\n[security.tls]\nenabled = true\ncert_path = %q\nkey_path = %q\n", certPath, keyPath), nil)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	if code, h := getHealth(t, hc, "https://"+f.d.HTTPAddr()+"/healthz"); code != 200 || !healthyHere(h) {
		t.Fatalf("%d %+v", code, h)
	}
	// Plain HTTP to the TLS port gets net/http's 400, never a health body.
	if resp, err := noKeepAlive.Get("http://" + f.d.HTTPAddr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS listener: %s", resp.Status)
		}
	}
}

// hostless is h without the host's huge-page reason (see
// onlyHostHugepages), its status recomputed when nothing else is left.
func hostless(h wire.Health) wire.Health {
	var keep []wire.HealthReason
	for _, r := range h.Reasons {
		if r.Rule != "hugepages" {
			keep = append(keep, r)
		}
	}
	if len(keep) == 0 && h.Status == wire.HealthDegraded {
		h.Status = wire.HealthHealthy
	}
	h.Reasons = keep
	return h
}

// healthyHere reports whether h is healthy but for the host's huge pages
// (onlyHostHugepages).
func healthyHere(h wire.Health) bool {
	return h.Status == wire.HealthHealthy || onlyHostHugepages(h)
}

// onlyHostHugepages reports whether h is degraded for one reason only:
// the host's huge pages are all in use, which other test packages running
// beside this one (and other daemons) cause, and which says nothing about
// the reload.
func onlyHostHugepages(h wire.Health) bool {
	if h.Status != wire.HealthDegraded || len(h.Reasons) == 0 {
		return false
	}
	for _, r := range h.Reasons {
		if r.Rule != "hugepages" {
			return false
		}
	}
	return true
}

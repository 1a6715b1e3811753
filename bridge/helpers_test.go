package bridge_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/kaelix-io/kaelix/bridge"
	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// Helper processes: the test binary re-executes itself with roleEnv set
// to run a bridge from the TOML file named by configEnv until SIGTERM.
const (
	roleEnv   = "KAELIX_BRIDGE_TEST_ROLE"
	configEnv = "KAELIX_BRIDGE_TEST_CONFIG"
)

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "bridge" {
		os.Exit(runBridgeChild(os.Getenv(configEnv)))
	}
	os.Exit(m.Run())
}

func runBridgeChild(path string) int {
	cfg, err := bridge.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	b, err := bridge.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := b.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// host is one "host": its own kaelixd (socket, state and region
// directories), embedded in the test process.
type host struct {
	name, socket, dir string
	c                 *client.Client
}

func startHost(t testing.TB, name string) *host {
	t.Helper()
	d := testdaemon.Start(t, testdaemon.WithConfig(func(c *daemon.Config) {
		c.Shm.HugePages = shm.PolicyOff // tmpfs: the tests must not depend on (or take) the host's huge pages
	}))
	h := &host{name: name, socket: d.SocketPath(), dir: d.StateDir()}
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	var err error
	h.c, err = client.Connect(cctx, client.Options{SocketPath: h.socket, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.c.Close() })
	return h
}

func (h *host) topic(t testing.TB, name string, policy string, capacity uint64) {
	t.Helper()
	spec := client.TopicConfig{Name: name, Partitions: 2, Policy: wire.Policy(policy), CapacityBytes: capacity}
	if _, err := h.c.CreateTopic(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
}

// natsServer is an embedded nats-server with JetStream, restartable on
// the same port and store.
type natsServer struct {
	t     testing.TB
	store string
	port  int
	mu    sync.Mutex
	s     *server.Server
}

func startNATS(t testing.TB) *natsServer {
	t.Helper()
	ns := newNATS(t)
	ns.start()
	return ns
}

// newNATS picks a port and a store for a server it does not start yet.
func newNATS(t testing.TB) *natsServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ns := &natsServer{t: t, store: t.TempDir(), port: port}
	t.Cleanup(ns.stop)
	return ns
}

func (ns *natsServer) url() string { return "nats://127.0.0.1:" + strconv.Itoa(ns.port) }

func (ns *natsServer) start() {
	ns.t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: ns.port, JetStream: true, StoreDir: ns.store, NoLog: true, NoSigs: true}
	var s *server.Server
	var err error
	for try := 0; try < 50; try++ { // the port may linger briefly after a stop
		if s, err = server.NewServer(opts); err == nil {
			go s.Start()
			if s.ReadyForConnections(10 * time.Second) {
				break
			}
			s.Shutdown()
			err = fmt.Errorf("not ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		ns.t.Fatalf("nats-server: %v", err)
	}
	ns.mu.Lock()
	ns.s = s
	ns.mu.Unlock()
}

func (ns *natsServer) stop() {
	ns.mu.Lock()
	s := ns.s
	ns.s = nil
	ns.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// rec makes record i's payload: its index, filler, and a CRC-32 of both.
func payload(i int, size int) []byte {
	b := make([]byte, size)
	binary.LittleEndian.PutUint64(b, uint64(i))
	for j := 8; j < size-4; j++ {
		b[j] = byte(i*7 + j)
	}
	binary.LittleEndian.PutUint32(b[size-4:], crc32.ChecksumIEEE(b[:size-4]))
	return b
}

func checkPayload(b []byte) (int, error) {
	if len(b) < 12 {
		return 0, fmt.Errorf("payload of %d bytes", len(b))
	}
	if crc32.ChecksumIEEE(b[:len(b)-4]) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return 0, fmt.Errorf("checksum mismatch")
	}
	return int(binary.LittleEndian.Uint64(b)), nil
}

// userHeaders are the headers every test record carries: one that
// travels verbatim, two that need the escaped form.
func userHeaders(i int) map[string]string {
	return map[string]string{"src": "test", "idx": strconv.Itoa(i), "Nats-Msg-Id": "not-a-dedup-key", "bin:key": "a\nb\x00c"}
}

// publishN publishes records from..to-1 on topic, alternating partitions
// by index, pacing every 'every' records by 'pause' (0: no pacing).
func publishN(ctx context.Context, t *testing.T, h *host, topic string, from, to int, every int, pause time.Duration) {
	pub, err := h.c.NewPublisher(ctx, topic, client.PublisherOptions{})
	if err != nil {
		t.Error(err)
		return
	}
	defer pub.Close()
	for i := from; i < to; i++ {
		m := client.NewMessage(payload(i, 64), client.WithHeaders(userHeaders(i)), client.WithPartition(i%2))
		if err := pub.Publish(ctx, m); err != nil {
			t.Errorf("publish %d: %v", i, err)
			return
		}
		if every > 0 && i%every == every-1 {
			time.Sleep(pause)
		}
	}
}

// collector reads a topic on a host and checks each record as it arrives.
type collector struct {
	mu    sync.Mutex
	seen  map[int]int // record index -> times seen
	order map[int]int // partition -> last index seen (order check)
	errs  []string
	count int
	// allowLocal accepts records without Kaelix-Origin (published on
	// the host itself) and checks only their own headers.
	allowLocal bool
}

// collect starts reading topic on h; records must come from origin (or,
// with allowLocal, from h itself).
func collect(ctx context.Context, t *testing.T, h *host, topic, origin string, allowLocal ...bool) (*collector, func()) {
	t.Helper()
	sub, err := h.c.Subscribe(ctx, topic, client.SubscribeOptions{Wait: client.WaitBackoff})
	if err != nil {
		t.Fatal(err)
	}
	col := &collector{seen: map[int]int{}, order: map[int]int{}, allowLocal: len(allowLocal) > 0 && allowLocal[0]}
	done := make(chan struct{})
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		defer close(done)
		defer sub.Close()
		for {
			m, err := sub.Receive(cctx)
			if err != nil {
				return
			}
			col.check(m, origin)
		}
	}()
	return col, func() { cancel(); <-done }
}

func (c *collector) fail(format string, args ...any) {
	if len(c.errs) < 20 {
		c.errs = append(c.errs, fmt.Sprintf(format, args...))
	}
}

func (c *collector) check(m client.Message, origin string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count++
	i, err := checkPayload(m.Payload)
	if err != nil {
		c.fail("record %v: %v", m.ID, err)
		return
	}
	c.seen[i]++
	want := userHeaders(i)
	if c.allowLocal && m.Headers[bridge.HdrOrigin] == "" {
		for k, v := range want {
			if m.Headers[k] != v {
				c.fail("local record %d: header %q = %q, want %q", i, k, m.Headers[k], v)
			}
		}
		return
	}
	o, err := bridge.ParseOrigin(m.Headers[bridge.HdrOrigin])
	switch {
	case err != nil:
		c.fail("record %d: %v", i, err)
	case !o.Kaelix || o.Host != origin || o.Partition != i%2 || o.Topic == "" || o.Subject == "":
		c.fail("record %d: origin %+v, want host %s partition %d", i, o, origin, i%2)
	}
	delete(m.Headers, bridge.HdrOrigin)
	if len(m.Headers) != len(want) {
		c.fail("record %d: headers %v, want %v and %s", i, m.Headers, want, bridge.HdrOrigin)
	}
	for k, v := range want {
		if m.Headers[k] != v {
			c.fail("record %d: header %q = %q, want %q", i, k, m.Headers[k], v)
		}
	}
	if m.Partition != i%2 {
		c.fail("record %d on partition %d, want %d", i, m.Partition, i%2)
	}
	if last, ok := c.order[m.Partition]; ok && i <= last && c.seen[i] == 1 {
		c.fail("record %d after %d on partition %d: out of order", i, last, m.Partition)
	}
	if last, ok := c.order[m.Partition]; !ok || i > last {
		c.order[m.Partition] = i
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// total returns how many distinct indexes were seen, duplicates, errors.
// result is summary with each error reported by t.Error.
func (c *collector) result(t *testing.T) (distinct, dups int) {
	t.Helper()
	distinct, dups, errs := c.summary()
	for _, e := range errs {
		t.Error(e)
	}
	return distinct, dups
}

// sawLast reports whether records n-2 and n-1, the last two of n, arrived.
func (c *collector) sawLast(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[n-1] > 0 && c.seen[n-2] > 0
}

func (c *collector) summary() (distinct, dups int, errs []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.seen {
		distinct++
		dups += n - 1
	}
	return distinct, dups, append([]string(nil), c.errs...)
}

// bridgeConfig builds a bridge configuration for host h.
func bridgeConfig(h *host, natsURL, stateDir string, rules ...bridge.Rule) bridge.Config {
	cfg := bridge.Default()
	cfg.Host = h.name
	cfg.Socket = h.socket
	cfg.StateDir = stateDir
	cfg.NATS.URLs = []string{natsURL}
	cfg.NATS.ReconnectWait = bridge.Duration(50 * time.Millisecond)
	cfg.NATS.MaxReconnectWait = bridge.Duration(500 * time.Millisecond)
	cfg.NATS.AckTimeout = bridge.Duration(2 * time.Second)
	cfg.Rules = rules
	return cfg
}

// runBridge runs a bridge in this process until the test ends.
func runBridge(t testing.TB, cfg bridge.Config) *bridge.Bridge {
	t.Helper()
	b, err := bridge.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	select {
	case <-b.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("bridge: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bridge Run: %v", err)
		}
	})
	return b
}

func waitRunning(t testing.TB, b *bridge.Bridge, rules ...string) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("status: %+v", b.Status())
		}
	}()
	waitFor(t, 30*time.Second, fmt.Sprintf("rules %v running", rules), func() bool {
		st := b.Status()
		for _, want := range rules {
			ok := false
			for _, r := range st.Rules {
				ok = ok || r.Name == want && r.State == bridge.StateRunning
			}
			if !ok {
				return false
			}
		}
		return true
	})
}

func ruleStatus(b *bridge.Bridge, name string) bridge.RuleStatus {
	for _, r := range b.Status().Rules {
		if r.Name == name {
			return r
		}
	}
	return bridge.RuleStatus{}
}

// bridgeProc is a bridge in a child process.
type bridgeProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func writeConfig(t *testing.T, cfg bridge.Config) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "bridge-*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := toml.NewEncoder(f).Encode(cfg); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return f.Name()
}

func startBridgeProc(t *testing.T, cfgPath string) *bridgeProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"=bridge", configEnv+"="+cfgPath)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &bridgeProc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *bridgeProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *bridgeProc) term(t *testing.T) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Error("bridge process did not stop on SIGTERM")
		p.kill()
	}
}

// twoHosts starts a NATS server and hosts A and B, each with a block
// topic of 1 MiB named topic.
func twoHosts(t testing.TB, topic string) (*natsServer, *host, *host) {
	t.Helper()
	ns := startNATS(t)
	a, b := hostsWithTopic(t, topic)
	return ns, a, b
}

// hostsWithTopic starts hosts A and B, each with a block topic of 1 MiB
// named topic.
func hostsWithTopic(t testing.TB, topic string) (a, b *host) {
	t.Helper()
	a, b = startHost(t, "hosta"), startHost(t, "hostb")
	a.topic(t, topic, "block", 1<<20)
	b.topic(t, topic, "block", 1<<20)
	return a, b
}

// natsConn is a plain nats.go connection, closed when the test ends.
func natsConn(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// publishWhileKilling publishes records 0..n-1 to topic on h in the
// background while it kills the bridge process proc (SIGKILL) kills
// times, each once col has made progress since the last start, and
// restarts it from cfgPath after a pause that varies per kill. It returns
// once col holds all n records and the last bridge process has been
// stopped with SIGTERM (after a short grace for late duplicates).
func publishWhileKilling(ctx context.Context, t *testing.T, h *host, topic string, n int, col *collector, proc *bridgeProc, cfgPath string, kills int) {
	t.Helper()
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		publishN(ctx, t, h, topic, 0, n, 200, 2*time.Millisecond)
	}()
	for k := 0; k < kills; k++ {
		before, _, _ := col.summary()
		waitFor(t, 60*time.Second, "progress before kill "+strconv.Itoa(k), func() bool {
			d, _, _ := col.summary()
			return d > before+n/(3*kills) || d >= n
		})
		proc.kill()
		time.Sleep(time.Duration(50+k*37) * time.Millisecond)
		proc = startBridgeProc(t, cfgPath)
	}
	<-pubDone
	waitFor(t, 120*time.Second, "every record on the far host", func() bool { d, _, _ := col.summary(); return d >= n })
	time.Sleep(300 * time.Millisecond)
	proc.term(t)
}

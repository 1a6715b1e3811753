package client_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
)

// Helper processes: the test binary re-executes itself with roleEnv set;
// TestMain then runs runHelper instead of the tests. Parameters travel in
// environment variables.
const (
	roleEnv   = "KAELIX_TEST_ROLE"
	socketEnv = "KAELIX_TEST_SOCKET"
	stateEnv  = "KAELIX_TEST_STATE"
	shmEnv    = "KAELIX_TEST_SHMDIR"
	topicEnv  = "KAELIX_TEST_TOPIC"
	idEnv     = "KAELIX_TEST_ID"
	countEnv  = "KAELIX_TEST_COUNT"
	pubsEnv   = "KAELIX_TEST_PUBS"
)

// env is one test's daemon locations: unique socket, state dir and shm
// base directory name (testdaemon.Dirs, in the names these tests use).
type env struct {
	socket, state, shmDir string
}

func newEnv(t testing.TB) env {
	t.Helper()
	d := testdaemon.NewDirs(t)
	return env{socket: d.SocketPath, state: d.StateDir, shmDir: d.ShmDirName}
}

func (e env) dirs() testdaemon.Dirs {
	return testdaemon.Dirs{SocketPath: e.socket, StateDir: e.state, ShmDirName: e.shmDir}
}

func (e env) config() daemon.Config { return e.dirs().Config() }

func (e env) environ(role string, kv ...string) []string {
	out := append(os.Environ(), roleEnv+"="+role, socketEnv+"="+e.socket, stateEnv+"="+e.state, shmEnv+"="+e.shmDir)
	return append(out, kv...)
}

// startDaemon runs a daemon in this process until the test ends.
func startDaemon(t testing.TB, e env, mod func(*daemon.Config)) *daemon.Daemon {
	t.Helper()
	return testdaemon.Start(t, testdaemon.WithDirs(e.dirs()), testdaemon.WithConfig(mod)).Daemon
}

func connect(t testing.TB, e env) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{SocketPath: e.socket, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// withTopic starts a daemon on a fresh env, connects to it and creates
// the topic cfg; ctx ends after 10 s or with the test.
func withTopic(t *testing.T, cfg client.TopicConfig) (env, *client.Client, context.Context) {
	t.Helper()
	e := newEnv(t)
	startDaemon(t, e, nil)
	c := connect(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	if _, err := c.CreateTopic(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	return e, c, ctx
}

// child is a helper process with its stdout readable line by line.
type child struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *testdaemon.Buffer
}

func startChild(t *testing.T, environ []string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = environ
	return runChild(t, cmd)
}

// runChild starts cmd with its stdout read line by line into child.lines
// and its stderr collected; the test's Cleanup kills it if it still runs.
func runChild(t *testing.T, cmd *exec.Cmd) *child {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	ch := &child{cmd: cmd, lines: make(chan string, 1024), stderr: &testdaemon.Buffer{}}
	cmd.Stderr = ch.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			ch.lines <- sc.Text()
		}
		close(ch.lines)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return ch
}

// expect waits for a line with the given prefix and returns it.
func (c *child) expect(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				c.cmd.Wait()
				t.Fatalf("helper exited before %q: %v\nstderr:\n%s", prefix, c.cmd.ProcessState, c.stderr)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-deadline:
			t.Fatalf("no %q from helper within %v\nstderr:\n%s", prefix, timeout, c.stderr)
		}
	}
}

// Payload format of the cross-process tests: publisher id u32, sequence
// u64, CRC-32 of the rest u32, then filler bytes derived from the sequence.
const payloadHeader = 16

func makePayload(buf []byte, pub uint32, seq uint64) []byte {
	n := 16 + int(seq%97)
	b := buf[:payloadHeader+n]
	binary.LittleEndian.PutUint32(b[0:], pub)
	binary.LittleEndian.PutUint64(b[4:], seq)
	for i := range n {
		b[payloadHeader+i] = byte(seq>>uint(i%8)) ^ byte(i)
	}
	binary.LittleEndian.PutUint32(b[12:], crc32.ChecksumIEEE(b[payloadHeader:]))
	return b
}

func checkPayload(b []byte) (pub uint32, seq uint64, err error) {
	if len(b) < payloadHeader {
		return 0, 0, fmt.Errorf("payload of %d bytes", len(b))
	}
	pub = binary.LittleEndian.Uint32(b[0:])
	seq = binary.LittleEndian.Uint64(b[4:])
	if crc32.ChecksumIEEE(b[payloadHeader:]) != binary.LittleEndian.Uint32(b[12:]) {
		return pub, seq, fmt.Errorf("checksum mismatch in record %d of publisher %d", seq, pub)
	}
	if len(b) != payloadHeader+16+int(seq%97) {
		return pub, seq, fmt.Errorf("record %d of publisher %d has %d bytes", seq, pub, len(b))
	}
	return pub, seq, nil
}

func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}

// runHelper is a helper process's main.
func runHelper(role string) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "helper %s: "+format+"\n", append([]any{role}, args...)...)
		return 1
	}
	e := env{socket: os.Getenv(socketEnv), state: os.Getenv(stateEnv), shmDir: os.Getenv(shmEnv)}
	if role == "daemon" {
		cfg := e.config()
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		cfg.RemoveOnExit = os.Getenv("KAELIX_TEST_EPHEMERAL") == "1"
		d, err := daemon.New(cfg)
		if err != nil {
			return fail("%v", err)
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		go func() {
			<-d.Ready()
			fmt.Println("ready")
		}()
		if err := d.Run(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
		return 0
	}
	if run := evictRoles[role]; run != nil { // evict_test.go
		return run(e)
	}
	if run := idleRoles[role]; run != nil { // idle_test.go
		return run(e)
	}
	if run := spinRoles[role]; run != nil { // spinwait_test.go
		return run(e)
	}
	if run := connectedRoles[role]; run != nil { // connected_test.go
		return run(e)
	}
	if run := toldRoles[role]; run != nil { // recreated_test.go
		return run(e)
	}
	if run := fdsRoles[role]; run != nil { // fds_test.go
		return run(e)
	}
	ctx := context.Background()
	c, err := client.Connect(ctx, client.Options{SocketPath: e.socket, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fail("%v", err)
	}
	defer c.Close()
	topic, id, count := os.Getenv(topicEnv), uint32(envInt(idEnv)), envInt(countEnv)
	switch role {
	case "pub":
		pub, err := c.NewPublisher(ctx, topic, client.PublisherOptions{})
		if err != nil {
			return fail("%v", err)
		}
		fmt.Println("ready")
		buf := make([]byte, 256)
		for seq := range uint64(count) {
			m := client.Message{Payload: makePayload(buf, id, seq)}
			if seq%10 == 0 {
				m.Headers = map[string]string{"pub": strconv.Itoa(int(id)), "seq": strconv.FormatUint(seq, 10)}
			}
			pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			err := pub.Publish(pctx, m)
			cancel()
			if err != nil {
				return fail("publish %d: %v", seq, err)
			}
		}
		fmt.Println("done", pub.Stats().Published)
		return 0
	case "sub", "stall":
		sub, err := c.Subscribe(ctx, topic, client.SubscribeOptions{From: client.FromOldest, Wait: client.WaitBackoff})
		if err != nil {
			return fail("%v", err)
		}
		fmt.Println("ready")
		if role == "stall" { // attach, read nothing, wait to be killed
			time.Sleep(time.Hour)
			return 0
		}
		pubs := envInt(pubsEnv)
		next := make([]uint64, pubs)
		total, want := 0, pubs*count
		var herr error
		h := func(m *client.Message) {
			if herr != nil {
				return
			}
			p, seq, err := checkPayload(m.Payload)
			if err != nil {
				herr = err
				return
			}
			if int(p) >= pubs || seq != next[p] {
				herr = fmt.Errorf("publisher %d: got record %d, want %d (order or loss)", p, seq, next[int(p)%pubs])
				return
			}
			next[p]++
			if seq%10 == 0 {
				if m.Headers["pub"] != strconv.Itoa(int(p)) || m.Headers["seq"] != strconv.FormatUint(seq, 10) {
					herr = fmt.Errorf("publisher %d record %d: headers %v", p, seq, m.Headers)
				}
			} else if m.Headers != nil {
				herr = fmt.Errorf("publisher %d record %d: unexpected headers %v", p, seq, m.Headers)
			}
			total++
		}
		deadline := time.Now().Add(5 * time.Minute)
		for total < want && herr == nil {
			n, err := sub.Poll(h, 256)
			if err != nil {
				return fail("poll: %v", err)
			}
			if n == 0 {
				if time.Now().After(deadline) {
					return fail("timed out with %d of %d", total, want)
				}
				time.Sleep(20 * time.Microsecond)
			}
		}
		if herr != nil {
			return fail("%v", herr)
		}
		fmt.Println("ok", total)
		return 0
	}
	return fail("unknown role")
}

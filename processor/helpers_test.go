package processor_test

import (
	"context"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
)

// Helper processes: the test binary re-executes itself with roleEnv set;
// TestMain runs runHelper instead of the tests.
const (
	roleEnv   = "KAELIX_PROC_TEST_ROLE"
	socketEnv = "KAELIX_PROC_TEST_SOCKET"
	idEnv     = "KAELIX_PROC_TEST_ID"
	quotaEnv  = "KAELIX_PROC_TEST_QUOTA" // group member: hold the record after this many
)

// env is one test's daemon: unique socket, state dir, region directory.
type env struct{ socket, state, shmDir string }

func newEnv(t testing.TB) env {
	t.Helper()
	d := testdaemon.NewDirs(t)
	return env{socket: d.SocketPath, state: d.StateDir, shmDir: d.ShmDirName}
}

// startDaemon runs a daemon in this process until the test ends.
func startDaemon(t testing.TB, e env) {
	t.Helper()
	testdaemon.Start(t, testdaemon.WithDirs(testdaemon.Dirs{SocketPath: e.socket, StateDir: e.state, ShmDirName: e.shmDir}))
}

func connect(t testing.TB, socket string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{SocketPath: socket, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func createTopics(t testing.TB, c *client.Client, specs ...client.TopicConfig) {
	t.Helper()
	for _, s := range specs {
		if _, err := c.CreateTopic(context.Background(), s); err != nil {
			t.Fatalf("create %s: %v", s.Name, err)
		}
	}
}

// receiveN reads n messages from sub (copied), failing the test after d.
func receiveN(t *testing.T, sub *client.Subscriber, n int, d time.Duration) []client.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	out := make([]client.Message, 0, n)
	for len(out) < n {
		m, err := sub.Receive(ctx)
		if err != nil {
			t.Fatalf("received %d of %d from %s: %v", len(out), n, sub.Topic(), err)
		}
		out = append(out, m)
	}
	return out
}

// expectNothing checks that sub receives nothing more within d.
func expectNothing(t *testing.T, sub *client.Subscriber, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if m, err := sub.Receive(ctx); err == nil {
		t.Fatalf("%s: unexpected record %q %v", sub.Topic(), m.Payload, m.Headers)
	}
}

// mallocs returns the heap allocations f makes over n calls (after one
// warm-up call): exact, unlike testing.AllocsPerRun's integer mean.
func mallocs(n int, f func()) uint64 {
	f()
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	for range n {
		f()
	}
	runtime.ReadMemStats(&b)
	return b.Mallocs - a.Mallocs
}

// runPipeline starts p.Run on a goroutine until the test ends.
func runPipeline(t *testing.T, p interface {
	Run(context.Context) error
	Close() error
}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("pipeline Run: %v", err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("pipeline Close: %v", err)
		}
	})
}

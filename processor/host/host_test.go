package host_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
	"github.com/kaelix-io/kaelix/processor/host"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startDaemon runs a daemon in this process and returns its socket.
func startDaemon(t *testing.T) string {
	t.Helper()
	return testdaemon.Start(t).SocketPath()
}

// TestHostRestKeepsRunning: of two pipelines, one whose input topic does
// not exist yet is reported (retrying, naming the topic) while the other
// moves records; once the topic exists the first starts too.
func TestHostRestKeepsRunning(t *testing.T) {
	socket := startDaemon(t)
	ctx := context.Background()
	c, err := client.Connect(ctx, client.Options{SocketPath: socket, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, n := range []string{"a.in", "a.out", "b.out"} {
		if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := host.LoadBytes("t.toml", []byte(`
[runtime]
worker_threads = 1
[[pipelines]]
name = "good"
input = "a.in"
outputs = ["a.out"]
  [[pipelines.stages]]
  plugin = "stamp"
[[pipelines]]
name = "late"
input = "b.in"
outputs = ["b.out"]
priority = 2
  [[pipelines.stages]]
  plugin = "stamp"
`))
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.New(cfg, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	hctx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- h.Run(hctx) }()
	defer func() { stop(); <-ran }()

	waitPhase := func(name, phase string) host.PipelineStatus {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			for _, s := range h.Status() {
				if s.Name == name && s.Phase == phase {
					return s
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("pipeline %s never %s: %+v", name, phase, h.Status())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	late := waitPhase("late", "retrying")
	if !strings.Contains(late.LastError, `"late"`) || !strings.Contains(late.LastError, `"b.in"`) {
		t.Fatalf("late's error %q does not name the pipeline and topic", late.LastError)
	}
	waitPhase("good", "running")
	flow := func(in, out string) {
		t.Helper()
		sub, err := c.Subscribe(ctx, out, client.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		pub, err := c.NewPublisher(ctx, in, client.PublisherOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close()
		if err := pub.Publish(ctx, client.NewMessage([]byte("x"))); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		m, err := sub.Receive(rctx)
		if err != nil || string(m.Payload) != "x" || m.Headers["processed_at"] == "" {
			t.Fatalf("%s -> %s: %v %q %v", in, out, err, m.Payload, m.Headers)
		}
	}
	flow("a.in", "a.out")
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: "b.in"}); err != nil {
		t.Fatal(err)
	}
	if s := waitPhase("late", "running"); s.Starts != 1 {
		t.Fatalf("late: %+v", s)
	}
	flow("b.in", "b.out")
}

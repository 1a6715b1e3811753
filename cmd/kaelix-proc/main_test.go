package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "proc.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheck(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"check", "--config", filepath.Join("..", "..", "configs", "kaelix-proc.telemetry.toml")}, &out, &errb); code != 0 {
		t.Fatalf("check of the shipped config: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "ok (1 pipelines: telemetry-1s)") {
		t.Fatalf("output %q", out.String())
	}
	bad := writeFile(t, `
[[pipelines]]
name = "A"
input = "x"
outputs = ["y"]
  [[pipelines.stages]]
  plugin = "nosuch"
`)
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"check", "--config", bad}, &out, &errb); code != 2 {
		t.Fatalf("bad config: exit %d, want 2", code)
	}
	if !strings.Contains(errb.String(), `pipeline "A": stage "nosuch": unknown plugin "nosuch"`) {
		t.Fatalf("stderr %q", errb.String())
	}
	if code := run(context.Background(), []string{"frobnicate"}, &out, &errb); code != 2 {
		t.Fatalf("unknown verb: exit %d", code)
	}
}

// TestRun runs the host against an embedded daemon until cancelled.
func TestRun(t *testing.T) {
	d := testdaemon.Start(t)
	socket := d.SocketPath()

	ctx := context.Background()
	c, err := client.Connect(ctx, client.Options{SocketPath: socket})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, n := range []string{"in", "out"} {
		c.CreateTopic(ctx, client.TopicConfig{Name: n})
	}
	conf := writeFile(t, `
[[pipelines]]
name = "p"
input = "in"
outputs = ["out"]
  [[pipelines.stages]]
  plugin = "sample"
  permissions = { can_read_config = true }
  config = { every = 2 }
`)
	sub, _ := c.Subscribe(ctx, "out", client.SubscribeOptions{})
	defer sub.Close()
	var out, errb bytes.Buffer
	rctx, stop := context.WithCancel(ctx)
	code := make(chan int, 1)
	go func() {
		code <- run(rctx, []string{"--socket", socket, "run", "--config", conf}, &out, &errb)
	}()
	// Wait for the pipeline to attach (a subscriber on "in").
	for deadline := time.Now().Add(20 * time.Second); ; {
		info, _ := c.TopicInfo(ctx, "in")
		if info.Subscribers > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pipeline never attached: %s", errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	pub, _ := c.NewPublisher(ctx, "in", client.PublisherOptions{})
	defer pub.Close()
	for i := range 6 {
		pub.Publish(ctx, client.NewMessage([]byte(fmt.Sprint(i))))
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, want := range []string{"0", "2", "4"} {
		m, err := sub.Receive(wctx)
		if err != nil || string(m.Payload) != want {
			t.Fatalf("got %q, %v; want %q", m.Payload, err, want)
		}
	}
	stop()
	if got := <-code; got != 0 {
		t.Fatalf("exit %d: %s", got, errb.String())
	}
	if !strings.Contains(out.String(), "pipeline p stopped in=6 out=3 dropped=3 failed=0 starts=1") {
		t.Fatalf("final status missing:\n%s", out.String())
	}
}

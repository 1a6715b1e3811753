package testdaemon_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
)

func connect(t *testing.T, socket string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{SocketPath: socket})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestStartStop: a started daemon answers on its socket, writes its
// regions under its own directory, and an ephemeral one leaves nothing
// there once stopped.
func TestStartStop(t *testing.T) {
	var mods int
	d := testdaemon.Start(t, testdaemon.WithConfig(func(c *daemon.Config) { mods++ }),
		testdaemon.WithConfig(func(c *daemon.Config) { mods++ }))
	if mods != 2 || !d.Config.RemoveOnExit {
		t.Fatalf("mods applied %d times, RemoveOnExit %v", mods, d.Config.RemoveOnExit)
	}
	if d.HTTPAddr() == "" || d.SocketPath() != d.Dirs().SocketPath {
		t.Fatalf("HTTPAddr %q, socket %q vs %q", d.HTTPAddr(), d.SocketPath(), d.Dirs().SocketPath)
	}
	c := connect(t, d.SocketPath())
	if _, err := c.CreateTopic(context.Background(), client.TopicConfig{Name: "td.a"}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if ents, err := os.ReadDir(d.ShmDir()); err != nil || len(ents) == 0 {
		t.Fatalf("region directory %s: %v, %d entries", d.ShmDir(), err, len(ents))
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(); err != nil { // a second Stop returns the first's result
		t.Fatal(err)
	}
	if _, err := os.Stat(d.ShmDir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ephemeral daemon left %s: %v", d.ShmDir(), err)
	}
}

// TestRestartPersistent: a persistent daemon's topic is re-adopted by the
// next daemon on the same Dirs; two Start calls get different Dirs.
func TestRestartPersistent(t *testing.T) {
	d := testdaemon.Start(t, testdaemon.Persistent())
	if other := testdaemon.NewDirs(t); other == d.Dirs() {
		t.Fatalf("two calls made the same Dirs %+v", other)
	}
	c := connect(t, d.SocketPath())
	if _, err := c.CreateTopic(context.Background(), client.TopicConfig{Name: "td.kept"}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	d = d.Restart()
	c = connect(t, d.SocketPath())
	defer c.Close()
	if _, err := c.TopicInfo(context.Background(), "td.kept"); err != nil {
		t.Fatalf("after Restart: %v", err)
	}
	if d.Status().Topics != 1 {
		t.Fatalf("after Restart %d topics, want 1", d.Status().Topics)
	}
}

// TestWithDirs: a daemon on given Dirs uses exactly those paths, and a
// second daemon on them while the first runs is refused.
func TestWithDirs(t *testing.T) {
	dirs := testdaemon.NewDirs(t)
	d := testdaemon.Start(t, testdaemon.WithDirs(dirs))
	if d.Dirs() != dirs || d.ShmDir() != dirs.ShmDir() {
		t.Fatalf("daemon on %+v (%s), want %+v", d.Dirs(), d.ShmDir(), dirs)
	}
	dd, err := daemon.New(dirs.Config())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := dd.Run(ctx); !errors.Is(err, daemon.ErrAlreadyRunning) {
		t.Fatalf("second daemon on the same Dirs: %v, want ErrAlreadyRunning", err)
	}
}

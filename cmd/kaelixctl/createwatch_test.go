package main

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
)

// TestWhileAnsweringOutlastsTimeout: a create that takes longer than
// --timeout is waited for while the daemon keeps answering (no per-size
// guess of how long it may take): the call, blocked for more than twice
// --timeout, returns its own result.
func TestWhileAnsweringOutlastsTimeout(t *testing.T) {
	d := testdaemon.Start(t)
	g := &Globals{Socket: d.SocketPath(), Timeout: 2 * time.Second, ctx: context.Background(), stderr: io.Discard}
	took := time.Now()
	err := g.whileAnswering("watched.topic", func(ctx context.Context) error {
		select {
		case <-time.After(2*g.Timeout + g.Timeout/4):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil)
	if err != nil {
		t.Fatalf("whileAnswering with a live daemon = %v, want the call's nil after %v", err, time.Since(took))
	}
}

// TestWhileAnsweringGivesUp: against a socket that accepts connections
// but never answers, the call is cancelled and whileAnswering fails with
// ErrBrokerNotAnswering (exit code 8), naming the topic.
func TestWhileAnsweringGivesUp(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "silent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	g := &Globals{Socket: sock, Timeout: 300 * time.Millisecond, ctx: context.Background(), stderr: io.Discard}
	cancelled := false
	err = g.whileAnswering("silent.topic", func(ctx context.Context) error {
		<-ctx.Done()
		cancelled = true
		return ctx.Err()
	}, nil)
	if !errors.Is(err, client.ErrBrokerNotAnswering) || exitCode(err) != exitNotAnswering {
		t.Fatalf("whileAnswering with a silent daemon = %v (exit %d), want ErrBrokerNotAnswering, exit %d", err, exitCode(err), exitNotAnswering)
	}
	if !cancelled {
		t.Fatal("the watched call was not cancelled")
	}
}

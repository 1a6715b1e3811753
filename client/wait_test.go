package client_test

import (
	"context"
	"testing"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
)

// TestDefaultWaitStrategy: a subscriber that names no wait strategy uses
// the daemon's [runtime] wait_strategy; one that names one keeps it.
func TestDefaultWaitStrategy(t *testing.T) {
	e := newEnv(t)
	startDaemon(t, e, func(c *daemon.Config) { c.Runtime.WaitStrategy = "blocking" })
	c := connect(t, e)
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: "wait.default"}); err != nil {
		t.Fatal(err)
	}
	def, err := c.Subscribe(ctx, "wait.default", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer def.Close()
	if w := def.WaitStrategy(); w != client.WaitBlocking {
		t.Fatalf("default subscriber waits with %v, want the daemon's blocking", w)
	}
	own, err := c.Subscribe(ctx, "wait.default", client.SubscribeOptions{Wait: client.WaitBusySpin})
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	if w := own.WaitStrategy(); w != client.WaitBusySpin {
		t.Fatalf("subscriber asking for busy-spin waits with %v", w)
	}
}

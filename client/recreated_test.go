package client_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
)

// TestEphemeralRestartTellsHandles: an --ephemeral daemon stops (its
// region files are removed) and a new one starts on the same socket with a
// topic of the same name. The old Publisher and Subscriber, once their
// Client has reconnected, get a *TopicRecreatedError that counts exactly
// the records published into the old ring after the connection broke;
// re-attaching reaches the new topic.
func TestEphemeralRestartTellsHandles(t *testing.T) {
	e := newEnv(t)
	const topic = "re.created"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ephemeral := func(cfg *daemon.Config) { cfg.RemoveOnExit = true }

	stop := runDaemon(t, e, ephemeral)
	c := connect(t, e)
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: topic}); err != nil {
		t.Fatal(err)
	}
	pub, err := c.NewPublisher(ctx, topic, client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, topic, client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := pub.Publish(ctx, client.Message{Payload: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	waitFor(t, "client notices the daemon is gone", func() bool { return !c.Connected() })
	// Records published now go into a ring no daemon knows (the stopped
	// daemon marked it deleted; a publisher sees that on its slow path).
	sent := uint64(0)
	for range 5 {
		err := pub.TryPublish(client.Message{Payload: []byte("void")})
		switch {
		case err == nil:
			sent++
		case errors.Is(err, client.ErrTopicDeleted):
		default:
			t.Fatalf("publish with no daemon: %v", err)
		}
	}

	runDaemon(t, e, ephemeral)
	c2 := connect(t, e)
	if _, err := c2.CreateTopic(ctx, client.TopicConfig{Name: topic}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "old client reconnects", c.Connected)

	var re *client.TopicRecreatedError
	err = pub.TryPublish(client.Message{Payload: []byte("after")})
	if !errors.As(err, &re) || !errors.Is(err, client.ErrTopicRecreated) {
		t.Fatalf("publisher after the restart: %v, want a *TopicRecreatedError", err)
	}
	if re.Topic != topic || re.Published != sent || re.Since.IsZero() {
		t.Fatalf("publisher's error %+v: want topic %q, Published %d", re, topic, sent)
	}
	t.Logf("publisher told: %v", err)
	// The subscriber reads what it still can (the records published after
	// the connection broke), then is told too.
	got := uint64(0)
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	for {
		_, err := sub.Receive(rctx)
		if err == nil {
			got++
			continue
		}
		if !errors.As(err, &re) {
			t.Fatalf("subscriber after the restart: %v (after %d records), want a *TopicRecreatedError", err, got)
		}
		break
	}
	if got != sent {
		t.Errorf("subscriber read %d records from the old ring, %d were published", got, sent)
	}
	t.Logf("subscriber told: %v", re)

	// Re-attaching reaches the daemon's topic.
	pub.Close()
	sub.Close()
	pub, err = c.NewPublisher(ctx, topic, client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub2, err := c2.Subscribe(ctx, topic, client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close()
	if err := pub.Publish(ctx, client.Message{Payload: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	if m, err := sub2.Receive(rctx); err != nil || string(m.Payload) != "new" {
		t.Fatalf("new topic: %q %v", m.Payload, err)
	}
}

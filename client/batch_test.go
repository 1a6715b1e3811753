package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
)

// TestPublishBatchInOrder: header-less runs go into the ring as batches,
// messages with headers one by one; a subscriber sees every message once,
// in batch order, headers intact, across runs that meet back-pressure.
func TestPublishBatchInOrder(t *testing.T) {
	e := newEnv(t)
	startDaemon(t, e, nil)
	c := connect(t, e)
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: "batched", CapacityBytes: 64 << 10, MaxMessageBytes: 512}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, "batched", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := c.NewPublisher(ctx, "batched", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const total = 5000
	var b client.Batch
	for i := range total {
		var opts []client.MessageOption
		if i%97 == 0 {
			opts = append(opts, client.WithHeader("i", fmt.Sprint(i)))
		}
		b = append(b, client.NewMessage([]byte(fmt.Sprintf("%06d", i)), opts...))
	}
	done := make(chan error, 1)
	go func() {
		_, err := pub.PublishBatch(ctx, b) // far more than the ring holds: must wait for the subscriber
		done <- err
	}()
	next := 0
	deadline := time.Now().Add(30 * time.Second)
	for next < total && time.Now().Before(deadline) {
		_, err := sub.Poll(func(m *client.Message) {
			if want := fmt.Sprintf("%06d", next); string(m.Payload) != want {
				t.Fatalf("got %q, want %q", m.Payload, want)
			}
			if next%97 == 0 && m.Headers["i"] != fmt.Sprint(next) {
				t.Fatalf("message %d lost its header: %v", next, m.Headers)
			}
			next++
		}, 256)
		if err != nil {
			t.Fatal(err)
		}
	}
	if next != total {
		t.Fatalf("received %d of %d", next, total)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

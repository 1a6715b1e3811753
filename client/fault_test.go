package client_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/kaelix-io/kaelix/client"
)

// TestHandlerPanicNotSwallowed: Poll's fault guard converts faults in
// the topic's own memory only; a nil dereference in the caller's handler
// stays a panic.
func TestHandlerPanicNotSwallowed(t *testing.T) {
	e := newEnv(t)
	startDaemon(t, e, nil)
	c := connect(t, e)
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: "fault.handler", CapacityBytes: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, "fault.handler", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	pub, err := c.NewPublisher(ctx, "fault.handler", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.TryPublish(client.Message{Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		r := recover()
		if _, ok := r.(runtime.Error); !ok {
			t.Fatalf("handler's nil dereference: recovered %v, want the runtime panic", r)
		}
	}()
	var p *int
	n, err := sub.Poll(func(*client.Message) { _ = *p }, 1)
	t.Fatalf("Poll returned (%d, %v) instead of panicking", n, err)
}

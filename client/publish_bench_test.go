package client_test

import (
	"context"
	"testing"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/wire"
)

// BenchmarkTryPublish is TryPublish of a 64-byte message with one
// subscriber attached (drained by Poll every 512 messages, so the cost is
// TryPublish plus a share of Poll), on an SPSC and an MPMC block topic:
// the connectedness check (one load of the subscriber epoch) is on this
// path. Run with -run='^$'.
func BenchmarkTryPublish(b *testing.B) {
	for _, kind := range []string{"spsc", "mpmc"} {
		b.Run(kind, func(b *testing.B) { benchTryPublish(b, kind) })
	}
}

func benchTryPublish(b *testing.B, kind string) {
	e := newEnv(b)
	startDaemon(b, e, nil)
	c := connect(b, e)
	ctx := context.Background()
	topic := "bench.trypublish." + kind
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: topic, Kind: wire.Kind(kind), CapacityBytes: 1 << 20, MaxMessageBytes: 256}); err != nil {
		b.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, topic, client.SubscribeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	pub, err := c.NewPublisher(ctx, topic, client.PublisherOptions{NoTimestamps: true})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	msg := client.Message{Payload: make([]byte, 64)}
	h := func(*client.Message) {}
	b.SetBytes(64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := pub.TryPublish(msg); err != nil {
			b.Fatal(err)
		}
		if i&511 == 511 {
			for n := 1; n > 0; {
				n, _ = sub.Poll(h, 512)
			}
		}
	}
}

package client_test

import (
	"context"
	"testing"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/wire"
)

// BenchmarkHotPath is the single-goroutine cost of TryPublish and Poll per
// record, 32-byte messages without headers or timestamps on an SPSC block
// topic (in-process daemon): "batch1" publishes one message and polls it
// (Poll limit 1), "batch64" publishes 64 one at a time and polls them with
// one Poll, "publishbatch64" publishes 64 with one PublishBatch and polls
// them with one Poll. It is the driver for instruction counts
// (bench/results/*-hotpath.md):
//
//	CGO_ENABLED=0 go test -c -o client.test ./client
//	GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind ./client.test \
//		-test.run='^$' -test.bench=BenchmarkHotPath -test.benchtime=100000x
//
// with --collect-atstart=no --toggle-collect='*hotPublish' (or hotPoll)
// counts one side alone.
func BenchmarkHotPath(b *testing.B) {
	for _, bc := range []struct {
		name  string
		batch int
		api   bool // PublishBatch
	}{{"batch1", 1, false}, {"batch64", 64, false}, {"publishbatch64", 64, true}} {
		batch := bc.batch
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b)
			startDaemon(b, e, nil)
			c := connect(b, e)
			ctx := context.Background()
			topic := "bench.hotpath." + bc.name
			if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: topic, Kind: wire.KindSPSC, CapacityBytes: 1 << 20, MaxMessageBytes: 256}); err != nil {
				b.Fatal(err)
			}
			sub, err := c.Subscribe(ctx, topic, client.SubscribeOptions{Wait: client.WaitBusySpin})
			if err != nil {
				b.Fatal(err)
			}
			defer sub.Close()
			pub, err := c.NewPublisher(ctx, topic, client.PublisherOptions{NoTimestamps: true})
			if err != nil {
				b.Fatal(err)
			}
			defer pub.Close()
			msg := client.Message{Payload: make([]byte, 32)}
			mb := make(client.Batch, batch)
			for i := range mb {
				mb[i] = msg
			}
			got := 0
			h := func(m *client.Message) { got += len(m.Payload) }
			b.SetBytes(32)
			b.ReportAllocs()
			growStack()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				var err error
				if bc.api {
					err = hotPublishBatch(ctx, pub, mb)
				} else {
					err = hotPublish(pub, msg, batch)
				}
				if err != nil {
					b.Fatal(err)
				}
				if k, err := hotPoll(sub, h, batch); k != batch || err != nil {
					b.Fatal(k, err)
				}
			}
			b.StopTimer()
			if want := 32 * ((b.N + batch - 1) / batch) * batch; got != want {
				b.Fatalf("handler saw %d payload bytes, want %d", got, want)
			}
		})
	}
}

// hotPublish and hotPoll are BenchmarkHotPath's two sides, kept out of
// line so that callgrind can count each alone (--toggle-collect).
//
//go:noinline
func hotPublish(pub *client.Publisher, m client.Message, n int) error {
	for j := 0; j < n; j++ {
		if err := pub.TryPublish(m); err != nil {
			return err
		}
	}
	return nil
}

//go:noinline
func hotPublishBatch(ctx context.Context, pub *client.Publisher, mb client.Batch) error {
	_, err := pub.PublishBatch(ctx, mb)
	return err
}

//go:noinline
func hotPoll(sub *client.Subscriber, h client.Handler, n int) (int, error) {
	return sub.Poll(h, n)
}

// growStack grows the goroutine's stack before the measured loop: Go
// copies a stack to grow it, which callgrind would see as calls that
// never return, so the toggled counts would run on past hotPoll.
//
//go:noinline
func growStack() byte {
	var pad [256 << 10]byte
	for i := range pad {
		pad[i] = byte(i)
	}
	return pad[len(pad)/2]
}

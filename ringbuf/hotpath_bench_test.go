package ringbuf

import (
	"fmt"
	"testing"
)

// BenchmarkHotPath is the single-goroutine cost of the ring's hot path,
// per record, for 32-byte records on an SPSC ring with no timestamps:
// "one" offers one record and polls it (Poll limit 1), "batch64" offers
// 64 records one at a time and polls them with one Poll. It is the
// driver for instruction counts (bench/results/*-hotpath.md):
//
//	CGO_ENABLED=0 go test -c -o ringbuf.test ./ringbuf
//	GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind ./ringbuf.test \
//		-test.run='^$' -test.bench=BenchmarkHotPath -test.benchtime=100000x
//
// with --collect-atstart=no --toggle-collect='*hotOffer' (or hotPoll) to
// count one side alone.
func BenchmarkHotPath(b *testing.B) {
	for _, kind := range []Kind{SPSC, MPMC} {
		for _, batch := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/batch%d", kind, batch), func(b *testing.B) {
				r, _, _ := newTestRing(b, benchConfig(kind, 32))
				pub, _ := r.NewPublisher(PublisherOptions{})
				sub, _ := r.NewSubscriber(SubscriberOptions{})
				msg := make([]byte, 32)
				h := func(Record) {}
				b.SetBytes(32)
				b.ReportAllocs()
				growStack()
				b.ResetTimer()
				for i := 0; i < b.N; i += batch {
					if err := hotOffer(pub, msg, batch); err != nil {
						b.Fatal(err)
					}
					if k, err := hotPoll(sub, h, batch); k != batch || err != nil {
						b.Fatal(k, err)
					}
				}
			})
		}
	}
}

// hotOffer and hotPoll are BenchmarkHotPath's two sides, kept out of line
// so that callgrind can count each alone (--toggle-collect).
//
//go:noinline
func hotOffer(pub *Publisher, msg []byte, n int) error {
	for j := 0; j < n; j++ {
		if err := pub.Offer(msg); err != nil {
			return err
		}
	}
	return nil
}

//go:noinline
func hotPoll(sub *Subscriber, h Handler, n int) (int, error) {
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

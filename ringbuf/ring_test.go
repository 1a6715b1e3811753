package ringbuf

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func smallConfig(kind Kind, policy Policy) Config {
	c := DefaultConfig(kind)
	c.Policy = policy
	c.CapacityBytes = 4096
	c.MaxPayloadBytes = 512
	return c
}

func TestOfferPollRoundTrip(t *testing.T) {
	for _, kind := range []Kind{SPSC, MPMC} {
		for _, pol := range []Policy{PolicyBlock, PolicyDropOldest, PolicyReject} {
			t.Run(fmt.Sprintf("%v/%v", kind, pol), func(t *testing.T) {
				r, _, _ := newTestRing(t, smallConfig(kind, pol))
				sub, err := r.NewSubscriber(SubscriberOptions{})
				if err != nil {
					t.Fatal(err)
				}
				pub, err := r.NewPublisher(PublisherOptions{Timestamps: true})
				if err != nil {
					t.Fatal(err)
				}
				var got [][]byte
				var seqs []uint64
				h := func(rec Record) {
					got = append(got, bytes.Clone(rec.Payload))
					seqs = append(seqs, rec.Sequence)
					if rec.TimestampNS == 0 {
						t.Errorf("record %d has no timestamp", rec.Sequence)
					}
				}
				for i := 0; i < 1000; i++ {
					msg := bytes.Repeat([]byte{byte(i)}, i%300)
					if err := pub.Offer(msg); err != nil {
						t.Fatalf("offer %d: %v", i, err)
					}
					n, err := sub.Poll(h, 10)
					if err != nil || n != 1 {
						t.Fatalf("poll %d: n=%d err=%v", i, n, err)
					}
					if !bytes.Equal(got[i], msg) || seqs[i] != uint64(i) {
						t.Fatalf("record %d: got %d bytes seq %d, want %d bytes seq %d", i, len(got[i]), seqs[i], len(msg), i)
					}
				}
				c := r.Counters()
				var bytesSent uint64
				for i := 0; i < 1000; i++ {
					bytesSent += uint64(i % 300)
				}
				if c.Published != 1000 || c.Consumed != 1000 || c.ConsumedBytes != bytesSent || c.Wakeups != 0 {
					t.Fatalf("counters: %+v (sent %d payload bytes)", c, bytesSent)
				}
			})
		}
	}
}

func TestBackPressureAndReject(t *testing.T) {
	for _, pol := range []Policy{PolicyBlock, PolicyReject} {
		r, _, _ := newTestRing(t, smallConfig(SPSC, pol))
		sub, _ := r.NewSubscriber(SubscriberOptions{})
		pub, _ := r.NewPublisher(PublisherOptions{})
		msg := make([]byte, 100) // span 136
		n := 0
		var err error
		for ; n < 100; n++ {
			if err = pub.Offer(msg); err != nil {
				break
			}
		}
		want := ErrBackPressured
		if pol == PolicyReject {
			want = ErrFull
		}
		if !errors.Is(err, want) {
			t.Fatalf("%v: after %d records err = %v, want %v", pol, n, err, want)
		}
		if n != 4096/136 {
			t.Fatalf("%v: %d records fit, want %d", pol, n, 4096/136)
		}
		if k, err := sub.Poll(func(Record) {}, 1); k != 1 || err != nil {
			t.Fatal(k, err)
		}
		if err := pub.Offer(msg); err != nil {
			t.Fatalf("%v: after one poll: %v", pol, err)
		}
	}
}

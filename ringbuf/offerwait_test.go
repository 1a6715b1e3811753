package ringbuf

import (
	"encoding/binary"
	"testing"
	"time"
)

// TestOfferWaitSpinMakesNoFutexCall: a publisher held back by a full ring
// and waiting with BusySpin or Yield (OfferWait) against a busy-spinning
// subscriber makes no futex call: the ring's counters show no sleep, no
// FUTEX_WAKE and no membarrier, while they show it was back-pressured
// (the subscriber starts reading only after the publisher has filled the
// ring, so it must have waited). Every record arrives, in order.
func TestOfferWaitSpinMakesNoFutexCall(t *testing.T) {
	for _, w := range []WaitStrategy{BusySpin, Yield} {
		t.Run(w.String(), func(t *testing.T) {
			c := DefaultConfig(SPSC)
			c.CapacityBytes = 4096
			c.MaxPayloadBytes = 64
			r, _, _ := newTestRing(t, c)
			pub, err := r.NewPublisher(PublisherOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sub, err := r.NewSubscriber(SubscriberOptions{Wait: BusySpin})
			if err != nil {
				t.Fatal(err)
			}
			const n = 20000
			done := make(chan error, 1)
			go func() {
				time.Sleep(20 * time.Millisecond) // the publisher fills the ring meanwhile
				next := uint64(0)
				var bad error
				h := func(rec Record) {
					if got := binary.LittleEndian.Uint64(rec.Payload); got != next && bad == nil {
						bad = &CorruptError{Position: rec.Position, Field: "test payload", Value: got, Detail: "out of order"}
					}
					next++
				}
				deadline := time.Now().Add(time.Minute)
				for next < n && bad == nil {
					if _, err := sub.Poll(h, 64); err != nil {
						done <- err
						return
					}
					if next&1023 == 0 && time.Now().After(deadline) {
						break
					}
				}
				if bad == nil && next != n {
					bad = &CorruptError{Field: "test count", Value: next, Detail: "not every record arrived within a minute"}
				}
				done <- bad
			}()
			payload := make([]byte, 32)
			for i := uint64(0); i < n; i++ {
				binary.LittleEndian.PutUint64(payload, i)
				if err := pub.OfferWait(0, payload, w, time.Minute); err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			ct := r.Counters()
			if ct.BackPressure == 0 {
				t.Fatalf("the publisher was never back-pressured (%d records into a 4 KiB ring read after 20 ms): the test proves nothing", n)
			}
			if ct.Waits != 0 || ct.Wakeups != 0 || ct.Fences != 0 {
				t.Errorf("%v publisher: %d futex sleeps, %d FUTEX_WAKE calls, %d membarriers; want none", w, ct.Waits, ct.Wakeups, ct.Fences)
			}
			if ct.Consumed != n {
				t.Errorf("consumed %d, want %d", ct.Consumed, n)
			}
		})
	}
}

// TestOfferWaitBlockingParks is the control: the same run with Blocking
// parks on the space doorbell (futex sleeps counted), so the counters the
// test above reads do see a publisher's sleeps.
func TestOfferWaitBlockingParks(t *testing.T) {
	c := DefaultConfig(SPSC)
	c.CapacityBytes = 4096
	c.MaxPayloadBytes = 64
	r, _, _ := newTestRing(t, c)
	pub, err := r.NewPublisher(PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := r.NewSubscriber(SubscriberOptions{Wait: BusySpin})
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 32)
	for pub.Offer(payload) == nil { // fill the ring
	}
	res := make(chan error, 1)
	go func() { res <- pub.OfferWait(0, payload, Blocking, time.Minute) }()
	// Wait until the publisher sleeps, then free space.
	deadline := time.Now().Add(time.Minute)
	for r.Counters().Waits == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a Blocking OfferWait on a full ring never slept on the space doorbell")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := sub.Poll(func(Record) {}, 1); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if ct := r.Counters(); ct.Wakeups == 0 {
		t.Errorf("the subscriber freed space under a sleeping publisher without a FUTEX_WAKE (counters %+v)", ct)
	}
}

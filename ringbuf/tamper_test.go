package ringbuf

import (
	"errors"
	"testing"
)

// A consumer area is writable by every consumer of the ring, so a hostile
// subscriber can write another's slot. The victim must notice on its next
// call, restore what it can, count exactly what it lost, and say so.
func TestSubscriberSlotTampering(t *testing.T) {
	c := DefaultConfig(MPMC)
	c.CapacityBytes, c.MaxPayloadBytes = 4096, 64
	newRing := func(t *testing.T) (*Ring, *Publisher, *Subscriber) {
		r, _, _ := newTestRing(t, c)
		pub, _ := r.NewPublisher(PublisherOptions{})
		victim, err := r.NewSubscriber(SubscriberOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r, pub, victim
	}
	var seqs []byte
	h := func(rec Record) { seqs = append(seqs, rec.Payload[0]) }
	drain := func(t *testing.T, s *Subscriber) error {
		for {
			n, err := s.Poll(h, 100)
			if err != nil || n == 0 {
				return err
			}
		}
	}

	t.Run("cursor moved back", func(t *testing.T) {
		r, pub, victim := newRing(t)
		seqs = nil
		for i := 0; i < 10; i++ {
			pub.Offer([]byte{byte(i)})
		}
		drain(t, victim)
		slot := r.subSlot(victim.Slot())
		slot.u64(subPositionOffset).Store(0) // holds every publisher back
		pub.Offer([]byte{10})
		_, err := victim.Poll(h, 100)
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Field != "subscriber position" {
			t.Fatalf("Poll after the cursor was moved: %v, want a *CorruptError for the subscriber position", err)
		}
		if got := slot.u64(subPositionOffset).Load(); got != victim.Position() {
			t.Fatalf("slot position %d after detection, want it restored to %d", got, victim.Position())
		}
		if err := drain(t, victim); err != nil {
			t.Fatalf("next Poll: %v", err)
		}
		if len(seqs) != 11 || victim.Lost() != 0 {
			t.Fatalf("got %v, lost %d; want records 0..10, none lost", seqs, victim.Lost())
		}
		if r.Counters().Tampered != 1 {
			t.Fatalf("tampered counter %d, want 1", r.Counters().Tampered)
		}
	})

	t.Run("cursor moved forward and records overwritten", func(t *testing.T) {
		r, pub, victim := newRing(t)
		seqs = nil
		for i := 0; i < 5; i++ {
			pub.Offer([]byte{byte(i)})
		}
		slot := r.subSlot(victim.Slot())
		// Far ahead: publishers now believe the victim has read everything
		// up to there and lap the records it has not read.
		slot.u64(subPositionOffset).Store(r.TailPosition() + 2*c.CapacityBytes)
		sent := 5
		for i := 0; i < 200; i++ {
			if err := pub.Offer([]byte{byte(sent)}); err != nil {
				t.Fatalf("offer %d: %v", i, err)
			}
			sent++
		}
		_, err := victim.Poll(h, 100)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Poll after the cursor was moved: %v, want ErrCorrupt", err)
		}
		if err := drain(t, victim); err != nil {
			t.Fatalf("Poll after detection: %v", err)
		}
		if victim.Lost() == 0 || uint64(len(seqs))+victim.Lost() != uint64(sent) {
			t.Fatalf("delivered %d + lost %d, want %d in all with some lost", len(seqs), victim.Lost(), sent)
		}
		for i := 1; i < len(seqs); i++ {
			if seqs[i] != seqs[i-1]+1 {
				t.Fatalf("records out of order after resync: %v", seqs)
			}
		}
	})

	t.Run("slot freed under the owner", func(t *testing.T) {
		r, pub, victim := newRing(t)
		pub.Offer([]byte{1})
		r.subSlot(victim.Slot()).u32(subStateOffset).Store(slotFree)
		for i := 0; i < 2; i++ {
			if _, err := victim.Poll(h, 1); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Poll %d with a freed slot: %v, want ErrCorrupt", i, err)
			}
			if _, _, err := victim.Read(make([]byte, 64)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Read %d with a freed slot: %v, want ErrCorrupt", i, err)
			}
		}
	})

	t.Run("owner rewritten", func(t *testing.T) {
		r, _, victim := newRing(t)
		r.subSlot(victim.Slot()).u32(subPIDOffset).Store(1)
		// The fast path checks only state and position; the owner is
		// checked on the full path, which an idle subscriber takes at least
		// every stuckCheckEvery+1 polls.
		var err error
		for i := 0; i <= stuckCheckEvery+1 && err == nil; i++ {
			_, err = victim.Poll(h, 1)
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Poll with a forged owner pid: %v, want ErrCorrupt", err)
		}
	})
}

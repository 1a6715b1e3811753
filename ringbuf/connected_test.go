package ringbuf

import (
	"errors"
	"os"
	"testing"
)

// TestPublisherSubscribers walks the subscriber count a publisher sees
// through every way a slot enters or leaves slotActive: join, close,
// eviction, a reservation (not counted until joined), the daemon's
// release, a queue-group member, and a dead owner reaped.
func TestPublisherSubscribers(t *testing.T) {
	c := DefaultConfig(MPMC)
	c.CapacityBytes, c.MaxPayloadBytes, c.MaxSubscribers, c.MaxGroups = 4096, 64, 4, 1
	r, _, subView := apartRing(t, c)
	pub, err := r.NewPublisher(PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := func(n, joining int, when string) {
		t.Helper()
		if got := pub.Subscribers(); got != n {
			t.Errorf("%s: Subscribers() = %d, want %d", when, got, n)
		}
		if cs := r.Counters(); cs.Subscribers != n || cs.Joining != joining {
			t.Errorf("%s: Counters Subscribers %d Joining %d, want %d %d", when, cs.Subscribers, cs.Joining, n, joining)
		}
	}
	want(0, 0, "fresh ring")
	pid, start := selfIdentity()
	k, err := r.ReserveSubscriberSlot(pid, start)
	if err != nil {
		t.Fatal(err)
	}
	want(0, 1, "reserved, not joined")
	s1, err := subView(k).NewSubscriber(SubscriberOptions{Slot: k + 1})
	if err != nil {
		t.Fatal(err)
	}
	want(1, 0, "joined")
	k2, _ := r.ReserveSubscriberSlot(pid, start)
	g, _, err := r.ReserveGroup(7, pid, start)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := subView(k2, g).NewSubscriber(SubscriberOptions{Slot: k2 + 1, Group: 7, GroupSlot: g + 1})
	if err != nil {
		t.Fatal(err)
	}
	want(2, 0, "a queue-group member joined")
	if !r.EvictSlot(k2, g) {
		t.Fatal("EvictSlot reported false")
	}
	want(1, 0, "member evicted")
	s2.Close()
	want(1, 0, "evicted member closed")
	s1.Close()
	want(0, 0, "closed")

	// The daemon's ReleaseSlot of a dead process's active slot.
	k3, _ := r.ReserveSubscriberSlot(pid, start)
	if _, err := subView(k3).NewSubscriber(SubscriberOptions{Slot: k3 + 1}); err != nil {
		t.Fatal(err)
	}
	want(1, 0, "joined again")
	if !r.ReleaseSlot(k3, -1) {
		t.Fatal("ReleaseSlot reported false")
	}
	want(0, 0, "released by the daemon")

	// A dead owner (a pid that cannot exist) reaped by ReapDead.
	k4, _ := r.ReserveSubscriberSlot(pid, start)
	if _, err := subView(k4).NewSubscriber(SubscriberOptions{Slot: k4 + 1}); err != nil {
		t.Fatal(err)
	}
	r.subSlot(k4).u32(subPIDOffset).Store(1 << 30)
	want(1, 0, "owner dead, not reaped yet")
	if n := r.ReapDead(); n != 1 {
		t.Fatalf("ReapDead freed %d slots, want 1", n)
	}
	want(0, 0, "dead owner reaped")
}

// TestSubscribersCheapWhenUnchanged: with no join or leave, Subscribers
// neither allocates nor rescans (the epoch does not move).
func TestSubscribersCheapWhenUnchanged(t *testing.T) {
	c := DefaultConfig(SPSC)
	c.CapacityBytes, c.MaxPayloadBytes = 4096, 64
	r, _, _ := newTestRing(t, c)
	pub, _ := r.NewPublisher(PublisherOptions{})
	sub, _ := r.NewSubscriber(SubscriberOptions{})
	defer sub.Close()
	e := r.m.cu32(subscriberEpochOffset).Load()
	if a := testing.AllocsPerRun(1000, func() {
		if pub.Subscribers() != 1 {
			t.Fatal("lost the subscriber")
		}
	}); a != 0 {
		t.Fatalf("Subscribers allocates %.1f times", a)
	}
	if r.m.cu32(subscriberEpochOffset).Load() != e {
		t.Fatal("the epoch moved without a join or leave")
	}
}

// TestSlowest names the consumer that holds the publisher back, with its
// lag in bytes and records.
func TestSlowest(t *testing.T) {
	c := DefaultConfig(MPMC)
	c.CapacityBytes, c.MaxPayloadBytes = 4096, 64
	r, _, _ := newTestRing(t, c)
	pub, _ := r.NewPublisher(PublisherOptions{})
	if _, ok := r.Slowest(); ok {
		t.Fatal("Slowest on a ring without consumers reported one")
	}
	fast, _ := r.NewSubscriber(SubscriberOptions{})
	slow, _ := r.NewSubscriber(SubscriberOptions{})
	msg := make([]byte, 24) // 56-byte records
	sent := 0
	for {
		err := pub.Offer(msg)
		if errors.Is(err, ErrBackPressured) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sent++
		if _, err := fast.Poll(func(Record) {}, 10); err != nil {
			t.Fatal(err)
		}
		if sent == 3 {
			slow.Poll(func(Record) {}, 3) // it reads 3 records, then stops
		}
	}
	s, ok := r.Slowest()
	if !ok {
		t.Fatal("Slowest found nobody")
	}
	if s.Slot != slow.Slot() || s.Group != -1 || s.PID != uint32(os.Getpid()) || s.Joining {
		t.Errorf("Slowest = %+v, want slot %d of pid %d", s, slow.Slot(), os.Getpid())
	}
	// The lag in bytes includes the wrap padding: the tail is a full ring ahead.
	if s.LagRecords != uint64(sent-3) || s.LagBytes != r.TailPosition()-s.Position || s.LagBytes != c.CapacityBytes || s.Position != 3*spanOf(24) {
		t.Errorf("Slowest lag %d records %d bytes at %d; want %d records %d bytes at %d",
			s.LagRecords, s.LagBytes, s.Position, sent-3, c.CapacityBytes, 3*spanOf(24))
	}
}

// TestSlowestGroup: a queue group whose only member stopped reading is
// the slowest consumer, reported with its group slot and its member.
func TestSlowestGroup(t *testing.T) {
	c := DefaultConfig(MPMC)
	c.CapacityBytes, c.MaxPayloadBytes = 4096, 64
	r, _, _ := newTestRing(t, c)
	pub, _ := r.NewPublisher(PublisherOptions{})
	fast, _ := r.NewSubscriber(SubscriberOptions{})
	member, err := r.NewSubscriber(SubscriberOptions{Group: 9})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := pub.Offer(make([]byte, 24)); err != nil {
			t.Fatal(err)
		}
	}
	fast.Poll(func(Record) {}, 100)
	member.Poll(func(Record) {}, 2)
	s, ok := r.Slowest()
	if !ok || s.Group != member.groupSlot() || s.Slot != member.Slot() || s.PID != uint32(os.Getpid()) || s.LagRecords != 8 || s.LagBytes != 8*spanOf(24) {
		t.Fatalf("Slowest = %+v (ok %v); want group %d member slot %d, 8 records (%d bytes) behind", s, ok, member.groupSlot(), member.Slot(), 8*spanOf(24))
	}
}

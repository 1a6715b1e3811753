package ringbuf

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestEvictSubscriber(t *testing.T) {
	c := DefaultConfig(MPMC)
	c.CapacityBytes, c.MaxPayloadBytes = 4096, 64
	r, _, _ := newTestRing(t, c)
	pub, _ := r.NewPublisher(PublisherOptions{})
	live, _ := r.NewSubscriber(SubscriberOptions{})
	stuck, _ := r.NewSubscriber(SubscriberOptions{})
	var got [][]byte
	h := func(rec Record) { got = append(got, bytes.Clone(rec.Payload)) }
	msg := make([]byte, 64)
	sent := 0
	for ; ; sent++ {
		msg[0] = byte(sent)
		err := pub.Offer(msg)
		if errors.Is(err, ErrBackPressured) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := live.Poll(h, 10); err != nil {
			t.Fatal(err)
		}
	}
	if sent == 0 || r.Counters().SlowestLag == 0 {
		t.Fatalf("the stalled subscriber should hold the publisher back: sent %d, lag %d", sent, r.Counters().SlowestLag)
	}
	slots := r.SubscriberSlots()
	if len(slots) != 2 || slots[1].Index != stuck.Slot() || slots[1].Evicted {
		t.Fatalf("slots before eviction: %+v", slots)
	}
	if !r.EvictSubscriber(stuck.Slot()) {
		t.Fatal("EvictSubscriber of an active slot reported false")
	}
	if r.EvictSubscriber(stuck.Slot()) || r.EvictSubscriber(-1) || r.EvictSubscriber(c.MaxSubscribers) {
		t.Fatal("EvictSubscriber of an evicted or missing slot reported true")
	}
	// Publishers stop waiting for it at once.
	for i := 0; i < 200; i++ {
		msg[0] = byte(sent)
		if err := pub.Offer(msg); err != nil {
			t.Fatalf("offer %d after eviction: %v", i, err)
		}
		sent++
		if _, err := live.Poll(h, 10); err != nil {
			t.Fatal(err)
		}
	}
	for n := 1; n > 0; {
		n, _ = live.Poll(h, 100)
	}
	if len(got) != sent {
		t.Fatalf("live subscriber got %d records, want %d", len(got), sent)
	}
	for i, g := range got {
		if g[0] != byte(i) {
			t.Fatalf("record %d carries %d", i, g[0])
		}
	}
	if _, err := stuck.Poll(h, 10); !errors.Is(err, ErrEvicted) {
		t.Fatalf("Poll by the evicted subscriber: %v, want ErrEvicted", err)
	}
	if _, _, err := stuck.Read(make([]byte, 64)); !errors.Is(err, ErrEvicted) {
		t.Fatalf("Read by the evicted subscriber: %v, want ErrEvicted", err)
	}
	if _, err := stuck.PollWait(h, 10, time.Second); !errors.Is(err, ErrEvicted) {
		t.Fatalf("PollWait by the evicted subscriber: %v, want ErrEvicted", err)
	}
	cs := r.Counters()
	if cs.Evicted != 1 || cs.Subscribers != 1 {
		t.Fatalf("counters after eviction: evicted %d, subscribers %d; want 1, 1", cs.Evicted, cs.Subscribers)
	}
	if slots := r.SubscriberSlots(); len(slots) != 2 || !slots[1].Evicted {
		t.Fatalf("slots after eviction: %+v", slots)
	}
	// The slot is not handed out again until its owner closes it.
	other, _ := r.NewSubscriber(SubscriberOptions{})
	if other.Slot() == stuck.Slot() {
		t.Fatal("an evicted slot was handed to a new subscriber before its owner closed it")
	}
	other.Close()
	stuck.Close()
	if slots := r.SubscriberSlots(); len(slots) != 1 {
		t.Fatalf("slots after the evicted subscriber closed: %+v", slots)
	}
	again, err := r.NewSubscriber(SubscriberOptions{})
	if err != nil {
		t.Fatalf("subscribing again after eviction: %v", err)
	}
	again.Close()
}

// A parked (Blocking) subscriber learns of its eviction when it is
// evicted, not at its next timeout.
func TestEvictWakesParkedSubscriber(t *testing.T) {
	c := DefaultConfig(SPSC)
	c.CapacityBytes, c.MaxPayloadBytes = 4096, 64
	c.UnblockTimeout = time.Minute // a park lasts up to 15 s
	r, _, _ := newTestRing(t, c)
	sub, _ := r.NewSubscriber(SubscriberOptions{Wait: Blocking})
	done := make(chan error, 1)
	go func() {
		_, err := sub.PollWait(func(Record) {}, 1, time.Minute)
		done <- err
	}()
	for r.m.cu32(dataWaitersOffset).Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	r.EvictSubscriber(sub.Slot())
	select {
	case err := <-done:
		if !errors.Is(err, ErrEvicted) {
			t.Fatalf("PollWait returned %v, want ErrEvicted", err)
		}
		t.Logf("parked subscriber learned of its eviction after %v", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("parked subscriber did not wake on eviction")
	}
}

func TestEvictGroupMember(t *testing.T) {
	c := DefaultConfig(MPMC)
	c.CapacityBytes, c.MaxPayloadBytes = 4096, 64
	r, _, _ := newTestRing(t, c)
	pub, _ := r.NewPublisher(PublisherOptions{})
	a, _ := r.NewSubscriber(SubscriberOptions{Group: 5})
	b, _ := r.NewSubscriber(SubscriberOptions{Group: 5})
	goff := r.groupSlot(0)
	if n := goff.u32(groupStateOffset).Load() & 0xffff; n != 2 {
		t.Fatalf("group has %d members, want 2", n)
	}
	if !r.EvictSubscriber(b.Slot()) {
		t.Fatal("evicting a group member reported false")
	}
	if n := goff.u32(groupStateOffset).Load() & 0xffff; n != 1 {
		t.Fatalf("group has %d members after eviction, want 1", n)
	}
	for i := 0; i < 100; i++ {
		if err := pub.Offer([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for n := 1; n > 0; {
		n, _ = a.Poll(func(Record) { got++ }, 16)
	}
	if got != 100 {
		t.Fatalf("remaining member got %d records, want 100", got)
	}
	if _, err := b.Poll(func(Record) {}, 1); !errors.Is(err, ErrEvicted) {
		t.Fatalf("evicted member's Poll: %v, want ErrEvicted", err)
	}
	b.Close()
	if n := goff.u32(groupStateOffset).Load() & 0xffff; n != 1 {
		t.Fatalf("closing the evicted member changed the group to %d members, want 1", n)
	}
	a.Close()
	if v := goff.u32(groupStateOffset).Load(); v != 0 {
		t.Fatalf("group slot state %#x after its last member left, want free", v)
	}
}

// A dead owner's evicted slot is freed by the reaper.
func TestReapEvictedSlot(t *testing.T) {
	c := DefaultConfig(MPMC)
	c.CapacityBytes, c.MaxPayloadBytes = 4096, 64
	r, _, _ := newTestRing(t, c)
	sub, _ := r.NewSubscriber(SubscriberOptions{})
	r.EvictSubscriber(sub.Slot())
	r.subSlot(sub.Slot()).u32(subPIDOffset).Store(deadPID(t))
	if n := r.ReapDead(); n != 1 {
		t.Fatalf("ReapDead freed %d slots, want 1", n)
	}
	if slots := r.SubscriberSlots(); len(slots) != 0 {
		t.Fatalf("slots after reaping: %+v", slots)
	}
}

// Slots the daemon must see to evict: one stuck in joining (a process
// stopped mid-join, or one that wrote the joining state itself), and a
// queue-group member holding a record, whose position is the record's.
func TestEvictJoiningAndHoldingSlots(t *testing.T) {
	c := DefaultConfig(MPMC)
	c.CapacityBytes, c.MaxPayloadBytes = 4096, 64
	r, _, _ := newTestRing(t, c)
	pub, _ := r.NewPublisher(PublisherOptions{})
	sub, _ := r.NewSubscriber(SubscriberOptions{})
	off := r.subSlot(sub.Slot())
	off.u32(subStateOffset).Store(slotClaiming)
	off.u64(subPositionOffset).Store(0)
	for i := 0; i < 3; i++ {
		pub.Offer([]byte{1})
	}
	slots := r.SubscriberSlots()
	if len(slots) != 1 || !slots[0].Joining {
		t.Fatalf("slots with one joining: %+v", slots)
	}
	if !r.EvictSubscriber(sub.Slot()) || r.Counters().SlowestLag != 0 {
		t.Fatalf("evicting a joining slot: lag %d after", r.Counters().SlowestLag)
	}

	member, _ := r.NewSubscriber(SubscriberOptions{Group: 3})
	mo := r.subSlot(member.Slot())
	pos := r.TailPosition()
	pub.Offer([]byte{2})
	// The member is reading the record at pos in place.
	mo.u64(subHoldOffset).Store(pos)
	for _, s := range r.SubscriberSlots() {
		if s.Index == member.Slot() && (!s.Holding || s.Position != pos) {
			t.Fatalf("holding member listed as %+v, want Holding at %d", s, pos)
		}
	}
	lost := r.Counters().Lost
	if !r.EvictSubscriber(member.Slot()) {
		t.Fatal("evicting a holding member reported false")
	}
	if got := r.Counters().Lost; got != lost+1 {
		t.Fatalf("lost %d -> %d after evicting a member holding a record, want one more", lost, got)
	}
	if _, err := member.Poll(func(Record) {}, 1); !errors.Is(err, ErrEvicted) {
		t.Fatalf("evicted member's Poll: %v", err)
	}
}

// A ring marked deleted (a topic deleted by force) tells its subscribers
// once they have read what was committed, including one asleep in
// PollWait, and its publishers on their slow path.
func TestMarkDeleted(t *testing.T) {
	c := DefaultConfig(MPMC)
	c.CapacityBytes, c.MaxPayloadBytes = 4096, 64
	c.UnblockTimeout = time.Minute // parks last up to 15 s: the wakeup must come from MarkDeleted
	r, _, _ := newTestRing(t, c)
	pub, _ := r.NewPublisher(PublisherOptions{})
	busy, _ := r.NewSubscriber(SubscriberOptions{})
	asleep, _ := r.NewSubscriber(SubscriberOptions{Wait: Blocking})
	done := make(chan error, 1)
	got := 0
	go func() {
		var err error
		for err == nil {
			_, err = asleep.PollWait(func(Record) { got++ }, 10, time.Minute)
		}
		done <- err
	}()
	pub.Offer([]byte("last"))
	for r.m.cu32(dataWaitersOffset).Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	r.MarkDeleted()
	select {
	case err := <-done:
		if !errors.Is(err, ErrDeleted) || got != 1 {
			t.Fatalf("sleeping subscriber: %v after %d records, want ErrDeleted after 1", err, got)
		}
		t.Logf("the sleeping subscriber learned of the deletion after %v", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("a sleeping subscriber was not told of the deletion")
	}
	var err error
	n, calls := 0, 0
	for ; err == nil && calls < 2*(stuckCheckEvery+1); calls++ {
		var k int
		k, err = busy.Poll(func(Record) {}, 10)
		n += k
	}
	if !errors.Is(err, ErrDeleted) || n != 1 {
		t.Fatalf("busy subscriber: %v after %d records and %d polls, want ErrDeleted after the 1 committed record", err, n, calls)
	}
	if _, _, err := busy.Read(make([]byte, 64)); !errors.Is(err, ErrDeleted) {
		t.Fatalf("Read after ErrDeleted: %v, want ErrDeleted at once", err)
	}
	for err = nil; err == nil; err = pub.Offer(make([]byte, 64)) {
	}
	if !errors.Is(err, ErrDeleted) {
		t.Fatalf("publisher: %v, want ErrDeleted once its cached limit runs out", err)
	}
}

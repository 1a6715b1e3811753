package ringbuf

import (
	"bytes"
	"errors"
	"runtime/debug"
	"testing"
	"time"
)

// apartRing makes a ring whose subscriber and queue-group slots are
// separate files, and returns the daemon's/publishers' view (everything
// mapped read-write), the slot files' mappings, and a function that
// attaches a subscriber's view: the data area read-only, the consumer
// area read-write, and only subscriber slot own (and, if given, group
// slot group) mapped, read-write; every other slot unmapped.
func apartRing(t *testing.T, c Config) (*Ring, [][]byte, func(own int, group ...int) *Ring) {
	t.Helper()
	pd, pc, sd, sc := splitMappings(t, c)
	n := c.MaxSubscribers + c.MaxGroups
	slots := make([][]byte, n)
	paths := make([]string, n)
	for i := range slots {
		slots[i], paths[i] = sharedMapping(t, 4096)
	}
	pr, err := Create(pd, pc, slots, c)
	if err != nil {
		t.Fatal(err)
	}
	subView := func(own int, group ...int) *Ring {
		t.Helper()
		areas := make([]SlotArea, n)
		for _, i := range append([]int{own}, func() []int {
			var g []int
			for _, x := range group {
				g = append(g, c.MaxSubscribers+x)
			}
			return g
		}()...) {
			b, err := mapFile(paths[i], 0, false) // a second, independent mapping of the slot's file
			if err != nil {
				t.Fatal(err)
			}
			areas[i] = SlotArea{Mem: b, Writable: true}
		}
		r, err := Attach(sd, sc, areas, true)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	return pr, slots, subView
}

func TestApartAttachErrors(t *testing.T) {
	c := DefaultConfig(MPMC)
	c.CapacityBytes, c.MaxPayloadBytes, c.MaxSubscribers, c.MaxGroups = 4096, 64, 2, 1
	pd, pc, _, _ := splitMappings(t, c)
	slots := [][]byte{}
	for i := 0; i < 3; i++ {
		b, _ := sharedMapping(t, 4096)
		slots = append(slots, b)
	}
	if _, err := Create(pd, pc, slots[:2], c); !errors.Is(err, ErrConfig) {
		t.Fatalf("Create with 2 slot areas for 3 slots (2 subscriber, 1 group): %v, want ErrConfig", err)
	}
	if _, err := Create(pd, pc, [][]byte{slots[0], slots[1], slots[2][:64]}, c); !errors.Is(err, ErrConfig) {
		t.Fatalf("Create with a 64-byte slot area: %v, want ErrConfig", err)
	}
	if _, err := Create(pd, pc, slots, c); err != nil {
		t.Fatal(err)
	}
	all := []SlotArea{{slots[0], true}, {slots[1], true}, {slots[2], true}}
	if _, err := Attach(pd, pc, all[:2], false); !errors.Is(err, ErrConfig) {
		t.Fatalf("Attach with 2 of 3 slot areas: %v, want ErrConfig", err)
	}
	stranger, _ := sharedMapping(t, 4096) // not this ring's slot
	if _, err := Attach(pd, pc, []SlotArea{all[0], {stranger, true}, all[2]}, false); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Attach with another ring's slot area: %v, want ErrCorrupt", err)
	}
	r, err := Attach(pd, pc, []SlotArea{all[0], {}, all[2]}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.NewPublisher(PublisherOptions{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("NewPublisher without every slot mapped: %v, want ErrConfig", err)
	}
}

// TestApartSubscriber runs a subscriber that has mapped its own slot and
// nothing else of other consumers' cursors, with the data area read-only:
// any access to an unmapped slot or write to the data area panics and
// fails the test. Covered: a reserved join, back-pressure through the
// apart slot, padding, aborts, a dead publisher's claim, eviction, and
// FromOldest starting at the reservation's position.
func TestApartSubscriber(t *testing.T) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	c := DefaultConfig(MPMC)
	c.CapacityBytes, c.MaxPayloadBytes, c.MaxSubscribers = 4096, 300, 4
	c.UnblockTimeout = 20 * time.Millisecond
	pr, _, subView := apartRing(t, c)
	defer func() {
		if v := recover(); v != nil {
			t.Fatalf("a subscriber path touched memory it has no mapping or no write access for: %v", v)
		}
	}()
	pub, err := pr.NewPublisher(PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pid, start := selfIdentity()
	// Another process's reservation cannot be taken.
	other, err := pr.ReserveSubscriberSlot(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := subView(other).NewSubscriber(SubscriberOptions{Slot: other + 1}); !errors.Is(err, ErrNoSlot) {
		t.Fatalf("joining a slot reserved for another process: %v, want ErrNoSlot", err)
	}
	if !pr.CancelReservation(other) || pr.CancelReservation(other) {
		t.Fatal("CancelReservation should free a reserved slot once")
	}

	for i := 0; i < 10; i++ { // retained for a FromOldest join (nobody reads them yet)
		pub.Offer([]byte{byte(i)})
	}
	k, err := pr.ReserveSubscriberSlot(pid, start)
	if err != nil {
		t.Fatal(err)
	}
	sr := subView(k)
	sub, err := sr.NewSubscriber(SubscriberOptions{Slot: k + 1, From: FromOldest})
	if err != nil {
		t.Fatal(err)
	}
	if sub.Slot() != k || sub.Position() != pr.TailPosition() {
		t.Fatalf("joined slot %d at %d, want slot %d at the tail %d (nothing was retained for absent subscribers)", sub.Slot(), sub.Position(), k, pr.TailPosition())
	}
	var got [][]byte
	h := func(rec Record) { got = append(got, bytes.Clone(rec.Payload)) }
	// Back-pressure: the publisher reads the subscriber's cursor in its
	// own file.
	sent := 0
	for ; sent < 1000; sent++ {
		if err := pub.Offer(bytes.Repeat([]byte{byte(sent)}, 1+sent%200)); errors.Is(err, ErrBackPressured) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if sent == 1000 {
		t.Fatal("the publisher was never back-pressured by the subscriber's apart slot")
	}
	for n := 1; n > 0; {
		if n, err = sub.Poll(h, 100); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != sent {
		t.Fatalf("got %d records, want %d", len(got), sent)
	}
	// Several laps with padding and aborts.
	for i := 0; i < 300; i++ {
		if err := pub.Offer(bytes.Repeat([]byte{byte(i)}, 1+i%200)); err != nil {
			t.Fatalf("offer %d: %v", i, err)
		}
		if i%7 == 0 {
			b, _ := pub.TryClaim(10)
			b[0] = 1
			pub.Abort()
		}
		if _, err := sub.Poll(h, 100); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != sent+300 {
		t.Fatalf("got %d records, want %d", len(got), sent+300)
	}
	// A publisher dies between claim and commit.
	dead, _ := pr.NewPublisher(PublisherOptions{})
	if _, err := dead.TryClaim(50); err != nil {
		t.Fatal(err)
	}
	pr.m.u32(dead.slotOff + pubPIDOffset).Store(deadPID(t))
	if err := pub.Offer([]byte("after")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !bytes.Equal(got[len(got)-1], []byte("after")) {
		if time.Now().After(deadline) {
			t.Fatalf("subscriber never stepped over the dead claim (lag %d)", sub.Lag())
		}
		sub.PollWait(h, 1, 50*time.Millisecond)
	}
	// The daemon's view sees the slot; eviction reaches the subscriber.
	slots := pr.SubscriberSlots()
	if len(slots) != 1 || slots[0].Index != k || slots[0].PID != pid {
		t.Fatalf("daemon's view of the slots: %+v", slots)
	}
	if !pr.EvictSubscriber(k) {
		t.Fatal("EvictSubscriber reported false")
	}
	if _, err := sub.Poll(h, 1); !errors.Is(err, ErrEvicted) {
		t.Fatalf("Poll after eviction: %v, want ErrEvicted", err)
	}
	sub.Close()
	if n := pr.Counters().Subscribers; n != 0 {
		t.Fatalf("%d subscribers after the evicted one closed, want 0", n)
	}
	// A reservation whose process died is freed by the reaper.
	pr.ReapDead() // the dead publisher's slot
	if _, err := pr.ReserveSubscriberSlot(deadPID(t), 1); err != nil {
		t.Fatal(err)
	}
	if n := pr.ReapDead(); n != 1 {
		t.Fatalf("ReapDead freed %d slots, want the dead reservation", n)
	}
}

// A FromOldest subscriber joining with a reservation starts where the
// reservation held the ring: at the slowest settled consumer.
func TestApartReservationHoldsFromOldest(t *testing.T) {
	c := DefaultConfig(MPMC)
	c.CapacityBytes, c.MaxPayloadBytes, c.MaxSubscribers = 4096, 64, 3
	pr, _, subView := apartRing(t, c)
	pub, _ := pr.NewPublisher(PublisherOptions{})
	slow, _ := pr.NewSubscriber(SubscriberOptions{}) // the daemon's view may subscribe too
	for i := 0; i < 5; i++ {
		pub.Offer([]byte{byte(i)})
	}
	pid, start := selfIdentity()
	k, err := pr.ReserveSubscriberSlot(pid, start)
	if err != nil {
		t.Fatal(err)
	}
	// The slow subscriber moves on; the reservation still holds record 0.
	for n := 1; n > 0; {
		n, _ = slow.Poll(func(Record) {}, 10)
	}
	sub, err := subView(k).NewSubscriber(SubscriberOptions{Slot: k + 1, From: FromOldest})
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	for n := 1; n > 0; {
		n, err = sub.Poll(func(r Record) { got = append(got, r.Payload[0]) }, 10)
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, []byte{0, 1, 2, 3, 4}) {
		t.Fatalf("FromOldest after a reservation got %v, want records 0..4", got)
	}
}

func TestEvictReservation(t *testing.T) {
	c := DefaultConfig(MPMC)
	c.CapacityBytes, c.MaxPayloadBytes, c.MaxSubscribers = 4096, 64, 2
	pr, _, subView := apartRing(t, c)
	pid, start := selfIdentity()
	if s, ok := ProcessStart(int(pid)); !ok || s != start {
		t.Fatalf("ProcessStart(self) = %d, %v; want %d, true", s, ok, start)
	}
	k, _ := pr.ReserveSubscriberSlot(pid, start)
	if slots := pr.SubscriberSlots(); len(slots) != 1 || !slots[0].Reserved || slots[0].Index != k {
		t.Fatalf("slots with one reservation: %+v", slots)
	}
	if !pr.EvictSubscriber(k) {
		t.Fatal("evicting a reservation reported false")
	}
	if len(pr.SubscriberSlots()) != 0 || pr.Counters().Evicted != 1 {
		t.Fatalf("after evicting the reservation: slots %+v, evicted %d", pr.SubscriberSlots(), pr.Counters().Evicted)
	}
	// Its process's join now fails: slots apart are joined only when
	// reserved for the joiner.
	if _, err := subView(k).NewSubscriber(SubscriberOptions{Slot: k + 1}); !errors.Is(err, ErrNoSlot) {
		t.Fatalf("joining an evicted reservation: %v, want ErrNoSlot", err)
	}
}

// TestSubscriberWritesOnlyItsSlot: with its slot apart, a broadcast
// subscriber's every path leaves the consumer area as it found it except
// for the two doorbell words (the ring's shared futex words): its
// cursor, counters and losses all go to its own slot.
func TestSubscriberWritesOnlyItsSlot(t *testing.T) {
	for _, pol := range []Policy{PolicyBlock, PolicyDropOldest} {
		t.Run(pol.String(), func(t *testing.T) {
			c := DefaultConfig(MPMC)
			c.Policy, c.CapacityBytes, c.MaxPayloadBytes, c.MaxSubscribers = pol, 4096, 300, 3
			c.UnblockTimeout = 20 * time.Millisecond
			pr, _, subView := apartRing(t, c)
			pub, _ := pr.NewPublisher(PublisherOptions{})
			pid, start := selfIdentity()
			k, _ := pr.ReserveSubscriberSlot(pid, start)
			sr := subView(k)
			sub, err := sr.NewSubscriber(SubscriberOptions{Slot: k + 1, Wait: Blocking})
			if err != nil {
				t.Fatal(err)
			}
			h := func(Record) {}
			cons := sr.m.cb
			doorbell := func(i int) bool {
				off := consOff(i)
				return off >= dataBellOffset && off < dataWaitersOffset+4 || off >= spaceBellOffset && off < spaceWaitersOffset+4
			}
			check := func(what string, f func()) {
				t.Helper()
				before := bytes.Clone(cons)
				f()
				for i := range cons {
					if cons[i] != before[i] && !doorbell(i) {
						t.Fatalf("%s: the subscriber wrote consumer-area byte %d (%#x -> %#x)", what, i, before[i], cons[i])
					}
				}
			}
			for round := 0; round < 5; round++ {
				for i := 0; i < 40; i++ { // padding and, under drop-oldest, laps
					pub.Offer(bytes.Repeat([]byte{byte(i)}, 1+(i*37)%250))
				}
				check("Poll", func() {
					for n := 1; n > 0; {
						n, _ = sub.Poll(h, 7)
					}
				})
				check("PollWait on an empty ring (parks)", func() {
					sub.PollWait(h, 1, 2*time.Millisecond)
				})
			}
			if pol == PolicyDropOldest && sub.Lost() == 0 {
				t.Fatal("the drop-oldest run never lapped the subscriber")
			}
			// A dead publisher's claim, stepped over by the subscriber.
			dead, _ := pr.NewPublisher(PublisherOptions{})
			dead.TryClaim(20)
			pr.m.u32(dead.slotOff + pubPIDOffset).Store(deadPID(t))
			pub.Offer([]byte("after"))
			var last []byte
			check("stepping over a dead claim", func() {
				deadline := time.Now().Add(10 * time.Second)
				for !bytes.Equal(last, []byte("after")) && time.Now().Before(deadline) {
					sub.PollWait(func(r Record) { last = bytes.Clone(r.Payload) }, 1, 10*time.Millisecond)
				}
			})
			if !bytes.Equal(last, []byte("after")) {
				t.Fatal("never stepped over the dead claim")
			}
			cs := pr.Counters()
			if cs.Waits == 0 || (pol == PolicyDropOldest && cs.Lapped == 0) {
				t.Fatalf("the subscriber's counters did not reach Counters: %+v", cs)
			}
		})
	}
}

// TestApartGroupMembers: queue-group members that map only their own
// subscriber slot and their group's slot share the group's records
// exactly once between them, write nothing of the consumer area but the
// doorbell words, and a group made for a process that died before
// joining is reaped.
func TestApartGroupMembers(t *testing.T) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	c := DefaultConfig(MPMC)
	c.CapacityBytes, c.MaxPayloadBytes, c.MaxSubscribers, c.MaxGroups = 4096, 64, 3, 2
	pr, _, subView := apartRing(t, c)
	defer func() {
		if v := recover(); v != nil {
			t.Fatalf("a member touched memory it has no mapping or no write access for: %v", v)
		}
	}()
	pub, _ := pr.NewPublisher(PublisherOptions{})
	pid, start := selfIdentity()
	g, made, err := pr.ReserveGroup(7, pid, start)
	if err != nil || !made {
		t.Fatal(made, err)
	}
	if again, made, _ := pr.ReserveGroup(7, pid, start); again != g || made {
		t.Fatalf("a second reservation of group 7 got slot %d (made %v), want the same %d", again, made, g)
	}
	// The reserved group holds publishers back from the moment it exists.
	tail := pr.TailPosition()
	if min, any := pr.consumerMin(); !any || min != tail {
		t.Fatalf("consumer min %d (%v) after the group's reservation, want the tail %d", min, any, tail)
	}
	var members []*Subscriber
	for m := 0; m < 2; m++ {
		k, err := pr.ReserveSubscriberSlot(pid, start)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := subView(k, g).NewSubscriber(SubscriberOptions{Slot: k + 1, Group: 7, GroupSlot: g + 1})
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, sub)
	}
	cons := members[0].r.m.cb
	before := bytes.Clone(cons)
	seen := map[byte]int{}
	for i := 0; i < 200; i++ {
		if err := pub.Offer([]byte{byte(i)}); err != nil {
			t.Fatalf("offer %d: %v", i, err)
		}
		for _, m := range members[i%2:] {
			if _, err := m.Poll(func(r Record) { seen[r.Payload[0]]++ }, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, m := range members {
		for n := 1; n > 0; {
			n, _ = m.Poll(func(r Record) { seen[r.Payload[0]]++ }, 16)
		}
	}
	if len(seen) != 200 {
		t.Fatalf("the group delivered %d distinct records, want 200", len(seen))
	}
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("record %d delivered %d times", v, n)
		}
	}
	for i := range cons {
		off := consOff(i)
		doorbell := off >= dataBellOffset && off < dataWaitersOffset+4 || off >= spaceBellOffset && off < spaceWaitersOffset+4
		if cons[i] != before[i] && !doorbell {
			t.Fatalf("a member wrote consumer-area byte %d", i)
		}
	}
	for _, m := range members {
		m.Close()
	}
	if v := pr.groupSlot(g).u32(groupStateOffset).Load(); v != 0 {
		t.Fatalf("group slot state %#x after its last member left, want free", v)
	}
	// Made for a process that died before joining: reaped.
	dg, _, err := pr.ReserveGroup(9, deadPID(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	pr.ReapDead()
	if v := pr.groupSlot(dg).u32(groupStateOffset).Load(); v != 0 {
		t.Fatalf("group made for a dead process: state %#x after ReapDead, want free", v)
	}
	// A member cannot join a slot holding another group.
	g2, _, _ := pr.ReserveGroup(11, pid, start)
	if g3, made, _ := pr.ReserveGroup(13, pid, start); !made || !pr.CancelGroup(g3) || pr.CancelGroup(g3) {
		t.Fatal("CancelGroup should free a group nobody joined, once")
	}
	k, _ := pr.ReserveSubscriberSlot(pid, start)
	if _, err := subView(k, g2).NewSubscriber(SubscriberOptions{Slot: k + 1, Group: 12, GroupSlot: g2 + 1}); !errors.Is(err, ErrNoSlot) {
		t.Fatalf("joining group 12 in group 11's slot: %v, want ErrNoSlot", err)
	}
}

package ringbuf

import (
	"bytes"
	"errors"
	"runtime/debug"
	"testing"
	"time"
)

// TestAdvSubscriberPathsWriteOnlyOwnSlot extends
// TestSubscriberWritesOnlyItsSlot to subscriber paths it does not run:
// joining FromOldest, Read (not Poll), the tamper-restore path, an
// eviction seen by the owner and its Close, a subscriber-run ReapDead
// with another (dead) subscriber's slot in the ring, Yield/Backoff waits,
// and a drop-oldest queue-group member lapped (resyncGroup) and reading
// with Read. The subscriber maps the data area read-only and only its own
// slot (and group slot): a write anywhere else faults (a panic fails the
// test), and the consumer area must be unchanged but for the doorbells.
func TestAdvSubscriberPathsWriteOnlyOwnSlot(t *testing.T) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			t.Fatalf("a subscriber path touched memory it has no mapping or no write access for: %v", v)
		}
	}()
	for _, pol := range []Policy{PolicyBlock, PolicyDropOldest} {
		c := DefaultConfig(MPMC)
		c.Policy, c.CapacityBytes, c.MaxPayloadBytes, c.MaxSubscribers, c.MaxGroups = pol, 4096, 300, 4, 2
		c.UnblockTimeout = 20 * time.Millisecond
		pr, _, subView := apartRing(t, c)
		pub, _ := pr.NewPublisher(PublisherOptions{})
		pid, start := selfIdentity()
		doorbell := func(i int) bool {
			off := consOff(i)
			return off >= dataBellOffset && off < dataWaitersOffset+4 || off >= spaceBellOffset && off < spaceWaitersOffset+4 ||
				off >= subscriberEpochOffset && off < subscriberEpochOffset+4 // a join or leave bumps the subscriber epoch
		}
		var cons []byte
		check := func(what string, f func()) {
			t.Helper()
			before := bytes.Clone(cons)
			f()
			for i := range cons {
				if cons[i] != before[i] && !doorbell(i) {
					t.Fatalf("%v %s: the subscriber wrote consumer-area byte %d (%#x -> %#x)", pol, what, i, before[i], cons[i])
				}
			}
		}
		// Another subscriber (slot of a dead process) for the subscriber-run reaper.
		other, _ := pr.ReserveSubscriberSlot(deadPID(t), 1)
		for i := 0; i < 10; i++ {
			pub.Offer([]byte{byte(i)})
		}
		k, err := pr.ReserveSubscriberSlot(pid, start)
		if err != nil {
			t.Fatal(err)
		}
		sr := subView(k)
		cons = sr.m.cb
		var sub *Subscriber
		check("NewSubscriber FromOldest", func() {
			sub, err = sr.NewSubscriber(SubscriberOptions{Slot: k + 1, From: FromOldest, Wait: Yield})
		})
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 300)
		for round := 0; round < 4; round++ {
			for i := 0; i < 30; i++ {
				pub.Offer(bytes.Repeat([]byte{byte(i)}, 1+(i*37)%250))
			}
			check("Read", func() {
				for i := 0; i < 1000 && sub.Lag() > 0; i++ {
					if _, _, err := sub.Read(buf); err != nil && !errors.Is(err, ErrLapped) {
						break
					}
				}
			})
			check("PollWait Yield", func() { sub.PollWait(func(Record) {}, 1, time.Millisecond) })
		}
		check("ReapDead by the subscriber", func() { sr.ReapDead() })
		if st := pr.subSlot(other).u32(subStateOffset).Load(); st != slotReserved {
			t.Fatalf("%v: the subscriber's ReapDead changed another subscriber's slot (state %d)", pol, st)
		}
		// Tampering by a process that may write the slot: the owner restores it.
		pr.subSlot(k).u64(subPositionOffset).Store(0)
		check("restoring a moved cursor", func() { sub.Poll(func(Record) {}, 10) })
		pr.EvictSubscriber(k)
		check("Poll after eviction", func() {
			if _, err := sub.Poll(func(Record) {}, 10); !errors.Is(err, ErrEvicted) {
				t.Fatalf("%v: Poll after eviction: %v", pol, err)
			}
		})
		check("Close after eviction", func() { sub.Close() })

		// A queue-group member, drop-oldest lapping and Read.
		g, _, err := pr.ReserveGroup(9, pid, start)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := pr.ReserveSubscriberSlot(pid, start)
		if err != nil {
			t.Fatal(err)
		}
		mr := subView(k2, g)
		cons = mr.m.cb
		var m *Subscriber
		check("join a group", func() {
			m, err = mr.NewSubscriber(SubscriberOptions{Slot: k2 + 1, Group: 9, GroupSlot: g + 1, Wait: Backoff, SpinBudget: 1, YieldBudget: 1})
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < (map[Policy]int{PolicyBlock: 10, PolicyDropOldest: 60})[pol]; i++ {
			pub.Offer(bytes.Repeat([]byte{byte(i)}, 200))
		}
		check("group Read", func() {
			for i := 0; i < 100; i++ {
				if n, _, err := m.Read(buf); n == 0 && err == nil {
					break
				}
			}
		})
		check("group PollWait Backoff", func() { m.PollWait(func(Record) {}, 1, 2*time.Millisecond) })
		check("group Close", func() { m.Close() })
		if pol == PolicyDropOldest && pr.Counters().Lapped == 0 {
			t.Fatalf("the drop-oldest group member was never lapped")
		}
	}
}

// TestAdvDeadJoinerNeverReaped: a subscriber killed in the middle of
// NewSubscriber (after its CAS to claiming, before the one to active)
// leaves a slot that ReapDead skips (it frees active, evicted and
// reserved slots only) and that keeps counting as a consumer at its
// position: publishers are held back after its death, for good.
func TestAdvDeadJoinerNeverReaped(t *testing.T) {
	c := DefaultConfig(MPMC)
	c.CapacityBytes, c.MaxPayloadBytes, c.MaxSubscribers, c.MaxGroups = 4096, 64, 2, 1
	pr, _, _ := apartRing(t, c)
	pub, _ := pr.NewPublisher(PublisherOptions{})
	dead := deadPID(t)
	k, err := pr.ReserveSubscriberSlot(dead, 1)
	if err != nil {
		t.Fatal(err)
	}
	// What NewSubscriber(Slot: k+1) of that process did before it died.
	off := pr.subSlot(k)
	if !off.u32(subStateOffset).CompareAndSwap(slotReserved, slotClaiming) {
		t.Fatal("cannot claim")
	}
	pr.ReapDead()
	sent := 0
	for i := 0; i < 200; i++ {
		if pub.Offer(make([]byte, 32)) != nil {
			break
		}
		sent++
	}
	if sent < 200 {
		t.Errorf("after the joiner's death and ReapDead, the publisher was held back after %d records (slot state %d)", sent, off.u32(subStateOffset).Load())
	}
}

// TestAdvEvictedReservationJoinFails: EvictSubscriber documents that a
// reserved slot it frees makes the owner's join fail with ErrNoSlot. The
// join with SubscriberOptions.Slot also takes a *free* slot, so the
// evicted owner joins the very slot it was evicted from (and any process
// holding the slot's descriptor may join a free slot without the daemon).
func TestAdvEvictedReservationJoinFails(t *testing.T) {
	c := DefaultConfig(MPMC)
	c.CapacityBytes, c.MaxPayloadBytes, c.MaxSubscribers, c.MaxGroups = 4096, 64, 2, 1
	pr, _, subView := apartRing(t, c)
	pid, start := selfIdentity()
	k, err := pr.ReserveSubscriberSlot(pid, start)
	if err != nil {
		t.Fatal(err)
	}
	if !pr.EvictSubscriber(k) {
		t.Fatal("not evicted")
	}
	if sub, err := subView(k).NewSubscriber(SubscriberOptions{Slot: k + 1}); err == nil {
		sub.Close()
		t.Errorf("the owner of an evicted reservation joined slot %d anyway (documented: ErrNoSlot)", k)
	} else if !errors.Is(err, ErrNoSlot) {
		t.Errorf("join after eviction: %v, want ErrNoSlot", err)
	}
}

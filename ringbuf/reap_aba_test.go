package ringbuf

import (
	"errors"
	"testing"

	"pgregory.net/rapid"
)

// A reaper that found a slot's owner dead (reapSubscribers reads /proc,
// microseconds or a preemption long) must not free the slot if, in the
// meantime, the daemon freed it, reserved it for a live subscriber and saw
// it join: that subscriber then found its slot free under it ("subscriber
// slot = 0x0: its state or owner was changed by another process"). The
// hook puts the successor's whole life into that window, every time.
func TestReapLeavesSuccessorsSlot(t *testing.T) {
	for _, joined := range []bool{false, true} {
		name := "reserved"
		if joined {
			name = "joined"
		}
		t.Run(name, func(t *testing.T) {
			pr, subView := oneSlotApart(t)
			pub, err := pr.NewPublisher(PublisherOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if k, err := pr.ReserveSubscriberSlot(deadPID(t), 1); err != nil || k != 0 {
				t.Fatalf("reserve for the dead owner: %d, %v", k, err)
			}
			pid, start := selfIdentity()
			var sub *Subscriber
			hooked := 0
			reapHook = func(group bool, i int) {
				if group || i != 0 || hooked > 0 {
					return
				}
				hooked++
				// The daemon frees the dead owner's slot by its record and
				// hands it to a live process, which joins.
				if !pr.ReleaseSlot(0, -1) {
					t.Error("ReleaseSlot of the dead owner's slot reported false")
				}
				if k, err := pr.ReserveSubscriberSlot(pid, start); err != nil || k != 0 {
					t.Errorf("reserve for the successor: %d, %v", k, err)
				}
				if joined {
					if sub, err = subView(0).NewSubscriber(SubscriberOptions{Slot: 1}); err != nil {
						t.Errorf("successor's join: %v", err)
					}
				}
			}
			defer func() { reapHook = nil }()
			if n := pr.ReapDead(); n != 0 {
				t.Errorf("the stale reaper freed %d slots; the only one is the live successor's", n)
			}
			if hooked != 1 {
				t.Fatalf("the reap hook ran %d times, want once", hooked)
			}
			slots := pr.SubscriberSlots()
			if len(slots) != 1 || slots[0].PID != pid || slots[0].Start != start || slots[0].Reserved == joined {
				t.Fatalf("after the stale reap: slots %+v, want slot 0 %s by pid %d", slots, name, pid)
			}
			if !joined {
				if sub, err = subView(0).NewSubscriber(SubscriberOptions{Slot: 1}); err != nil {
					t.Fatalf("joining the reservation the stale reaper left: %v", err)
				}
			}
			if err := pub.Offer([]byte("x")); err != nil {
				t.Fatal(err)
			}
			got := 0
			if _, err := sub.Poll(func(Record) { got++ }, 10); err != nil || got != 1 {
				t.Fatalf("successor's Poll: %d records, %v; want 1, nil", got, err)
			}
			if err := sub.Close(); err != nil {
				t.Fatal(err)
			}
			if n := len(pr.SubscriberSlots()); n != 0 {
				t.Fatalf("%d slots after the successor closed, want 0", n)
			}
		})
	}
}

// A subscriber's Close frees its slot only while the slot is still its
// own: one taken from it and given to another process is left alone.
func TestCloseLeavesAnotherOwnersSlot(t *testing.T) {
	pr, subView := oneSlotApart(t)
	pid, start := selfIdentity()
	if _, err := pr.ReserveSubscriberSlot(pid, start); err != nil {
		t.Fatal(err)
	}
	sub, err := subView(0).NewSubscriber(SubscriberOptions{Slot: 1})
	if err != nil {
		t.Fatal(err)
	}
	// The slot is taken from it (the daemon's release) and reserved for
	// another process.
	other := deadPID(t)
	pr.ReleaseSlot(0, -1)
	if _, err := pr.ReserveSubscriberSlot(other, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Poll(func(Record) {}, 1); err == nil {
		t.Fatal("Poll on a slot given to another process: nil error")
	}
	sub.Close()
	if slots := pr.SubscriberSlots(); len(slots) != 1 || !slots[0].Reserved || slots[0].PID != other || slots[0].Start != 7 {
		t.Fatalf("after the old owner's Close: %+v, want the other process's reservation", slots)
	}
}

// A join takes a reservation only while it names the joiner, in the same
// CAS: one made for another process is refused.
func TestJoinRefusesAnotherProcesssReservation(t *testing.T) {
	pr, subView := oneSlotApart(t)
	pid, start := selfIdentity()
	if _, err := pr.ReserveSubscriberSlot(pid, start+1); err != nil {
		t.Fatal(err)
	}
	if _, err := subView(0).NewSubscriber(SubscriberOptions{Slot: 1}); !errors.Is(err, ErrNoSlot) {
		t.Fatalf("joining a reservation for another start time: %v, want ErrNoSlot", err)
	}
	if slots := pr.SubscriberSlots(); len(slots) != 1 || !slots[0].Reserved {
		t.Fatalf("the reservation after the refused join: %+v", slots)
	}
}

// The same for a queue group made for a process that died before joining:
// a reaper must not free the group made again, in the same slot, for a
// live process.
func TestReapLeavesSuccessorsGroup(t *testing.T) {
	pr, _ := oneSlotApart(t)
	if g, fresh, err := pr.ReserveGroup(9, deadPID(t), 1); err != nil || g != 0 || !fresh {
		t.Fatalf("group for the dead process: %d, %v, %v", g, fresh, err)
	}
	pid, start := selfIdentity()
	hooked := 0
	reapHook = func(group bool, i int) {
		if !group || hooked > 0 {
			return
		}
		hooked++
		if !pr.CancelGroup(0) {
			t.Error("CancelGroup of the dead process's group reported false")
		}
		if g, fresh, err := pr.ReserveGroup(9, pid, start); err != nil || g != 0 || !fresh {
			t.Errorf("group for the successor: %d, %v, %v", g, fresh, err)
		}
	}
	defer func() { reapHook = nil }()
	if n := pr.ReapDead(); n != 0 {
		t.Errorf("the stale reaper freed %d slots; the only group is the live successor's", n)
	}
	gs := pr.GroupSlots()
	if hooked != 1 || len(gs) != 1 || gs[0].Members != 0 {
		t.Fatalf("hook ran %d times; groups %+v, want only the successor's, without members", hooked, gs)
	}
}

// oneSlotApart is apartRing for an MPMC ring of one subscriber slot and
// one queue-group slot.
func oneSlotApart(t *testing.T) (*Ring, func(own int, group ...int) *Ring) {
	t.Helper()
	c := DefaultConfig(MPMC)
	c.CapacityBytes, c.MaxPayloadBytes, c.MaxSubscribers, c.MaxGroups = 4096, 64, 1, 1
	pr, _, subView := apartRing(t, c)
	return pr, subView
}

// TestSlotOwnerProperty: random reservations (for this process and for
// two dead ones), joins, Closes, the daemon's releases and cancels, and
// releases by reapers holding an owner they read at some earlier step,
// against a model in which a slot is freed by an owner-checked release
// only while that owner still holds it. A Close frees only a joined slot
// of this process: a later reservation for this process is left alone,
// but (identity being per process) a later join by this process in the
// same slot is not told apart from the closing Subscriber's own (the
// daemon never takes a live process's slot but by eviction, which leaves
// it evicted until that Close).
func TestSlotOwnerProperty(t *testing.T) {
	c := DefaultConfig(MPMC)
	c.CapacityBytes, c.MaxPayloadBytes, c.MaxSubscribers = 4096, 64, 2
	pr, _, subView := apartRing(t, c)
	views := []*Ring{subView(0), subView(1)}
	pid, start := selfIdentity()
	dead := deadPID(t)
	ids := []Owner{{pid, start}, {dead, 1}, {dead, 2}}
	type slot struct {
		used, joined bool
		o            Owner
	}
	rapid.Check(t, func(rt *rapid.T) {
		for i := range 2 {
			pr.ReleaseSlot(i, -1)
		}
		var model [2]slot
		var subs []*Subscriber
		var seen []struct {
			i int
			o Owner
		}
		pick := func(label string) int { return rapid.IntRange(0, 1).Draw(rt, label) }
		rt.Repeat(map[string]func(*rapid.T){
			"reserve": func(rt *rapid.T) {
				id := ids[rapid.IntRange(0, len(ids)-1).Draw(rt, "id")]
				k, err := pr.ReserveSubscriberSlot(id.PID, id.Start)
				want := -1
				for pass := 0; pass < 2 && want < 0; pass++ {
					for i := range model {
						if !model[i].used {
							want = i
							break
						}
					}
					if want < 0 && pass == 0 { // the reserve reaps dead owners first
						for i := range model {
							if model[i].o != ids[0] {
								model[i] = slot{}
							}
						}
					}
				}
				if k != want || (err == nil) != (want >= 0) {
					rt.Fatalf("reserve for %+v: %d, %v; model says %d", id, k, err, want)
				}
				if want >= 0 {
					model[want] = slot{used: true, o: id}
				}
			},
			"join": func(rt *rapid.T) {
				i := pick("slot")
				s, err := views[i].NewSubscriber(SubscriberOptions{Slot: i + 1})
				ok := model[i].used && !model[i].joined && model[i].o == ids[0]
				if (err == nil) != ok {
					rt.Fatalf("join slot %d (%+v): %v", i, model[i], err)
				}
				if ok {
					model[i].joined = true
					subs = append(subs, s)
				}
			},
			"close": func(rt *rapid.T) {
				if len(subs) == 0 {
					rt.Skip("no subscriber")
				}
				j := rapid.IntRange(0, len(subs)-1).Draw(rt, "sub")
				s := subs[j]
				subs = append(subs[:j], subs[j+1:]...)
				s.Close()
				if m := &model[s.slot]; m.joined && m.o == ids[0] {
					*m = slot{}
				}
			},
			"look": func(rt *rapid.T) { // a reaper reads an owner (and finds it dead)
				i := pick("slot")
				if model[i].used {
					seen = append(seen, struct {
						i int
						o Owner
					}{i, model[i].o})
				}
			},
			"staleRelease": func(rt *rapid.T) {
				if len(seen) == 0 {
					rt.Skip("nothing looked at")
				}
				l := seen[rapid.IntRange(0, len(seen)-1).Draw(rt, "look")]
				freed := pr.releaseSubscriber(l.i, l.o, true)
				want := model[l.i].used && model[l.i].o == l.o
				if freed != want {
					rt.Fatalf("release of slot %d as %+v: %v; model %+v", l.i, l.o, freed, model[l.i])
				}
				if want {
					model[l.i] = slot{}
				}
			},
			"daemonRelease": func(rt *rapid.T) {
				i := pick("slot")
				if pr.ReleaseSlot(i, -1) != model[i].used {
					rt.Fatalf("ReleaseSlot %d disagrees with model %+v", i, model[i])
				}
				model[i] = slot{}
			},
			"cancel": func(rt *rapid.T) {
				i := pick("slot")
				id := ids[rapid.IntRange(0, len(ids)-1).Draw(rt, "id")]
				want := model[i].used && !model[i].joined && model[i].o == id
				if pr.CancelClaim(i, id) != want {
					rt.Fatalf("CancelClaim(%d, %+v) disagrees with model %+v", i, id, model[i])
				}
				if want {
					model[i] = slot{}
				}
			},
			"": func(rt *rapid.T) {
				got := map[int]SubscriberSlot{}
				for _, s := range pr.SubscriberSlots() {
					got[s.Index] = s
				}
				for i, m := range model {
					s, ok := got[i]
					if ok != m.used || ok && (s.PID != m.o.PID || s.Start != m.o.Start || s.Reserved == m.joined) {
						rt.Fatalf("slot %d: ring %+v (listed %v), model %+v", i, s, ok, m)
					}
				}
			},
		})
		for _, s := range subs {
			s.Close()
		}
	})
}

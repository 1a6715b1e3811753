package daemon

import (
	"errors"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/kaelix-io/kaelix/ringbuf"
)

// fakeRing is the slot mechanism of a ring, in memory: each subscriber
// slot is free, reserved, active (joined) or evicted, for an owner; each
// group slot is free or holds a group. It records the releases and
// evictions asked of it, with the group the caller named.
type fakeRing struct {
	subs    []fakeSub
	groups  []fakeGroup
	alive   func(procID) bool
	calls   []string // "release k g", "evict k g"
	reaped  int      // ReapDeadOwners calls
	written []int    // per subscriber slot, the group index its owner wrote (may be forged)
}

type fakeSub struct {
	state string // "", "reserved", "active", "evicted"
	o     ringbuf.Owner
}

type fakeGroup struct {
	used    bool
	id      uint32
	members int
	creator ringbuf.Owner
}

func newFakeRing(subs, groups int, alive func(procID) bool) *fakeRing {
	return &fakeRing{subs: make([]fakeSub, subs), groups: make([]fakeGroup, groups), alive: alive, written: make([]int, subs)}
}

func (f *fakeRing) ClaimSubscriberSlot(i int, o ringbuf.Owner) bool {
	if i < 0 || i >= len(f.subs) || f.subs[i].state != "" {
		return false
	}
	f.subs[i] = fakeSub{state: "reserved", o: o}
	return true
}

func (f *fakeRing) CancelClaim(i int, o ringbuf.Owner) bool {
	if i < 0 || i >= len(f.subs) || f.subs[i].state != "reserved" || f.subs[i].o != o {
		return false
	}
	f.subs[i] = fakeSub{}
	return true
}

func (f *fakeRing) FindGroup(id uint32) int {
	for i, g := range f.groups {
		if g.used && g.id == id {
			return i
		}
	}
	return -1
}

func (f *fakeRing) ClaimGroupSlot(i int, id uint32, o ringbuf.Owner) bool {
	if i < 0 || i >= len(f.groups) || f.groups[i].used {
		return false
	}
	f.groups[i] = fakeGroup{used: true, id: id, creator: o}
	return true
}

func (f *fakeRing) CancelGroup(i int) bool {
	if i < 0 || i >= len(f.groups) || !f.groups[i].used || f.groups[i].members != 0 {
		return false
	}
	f.groups[i] = fakeGroup{}
	return true
}

func (f *fakeRing) ReleaseSlot(i, group int) bool {
	f.calls = append(f.calls, "release "+itoa(i)+" "+itoa(group))
	if f.subs[i].state == "" {
		return false
	}
	f.subs[i] = fakeSub{}
	return true
}

func (f *fakeRing) EvictSlot(i, group int) bool {
	f.calls = append(f.calls, "evict "+itoa(i)+" "+itoa(group))
	if f.subs[i].state == "" || f.subs[i].state == "evicted" {
		return false
	}
	f.subs[i].state = "evicted"
	return true
}

// ReapDeadOwners frees the subscriber slots whose owner is dead, by the
// owner the slot names (as the ring does).
func (f *fakeRing) ReapDeadOwners(fn func(ringbuf.Owner)) int {
	f.reaped++
	n := 0
	for i, s := range f.subs {
		if s.state != "" && !f.alive(procID{int(s.o.PID), s.o.Start}) {
			f.subs[i] = fakeSub{}
			n++
			if fn != nil {
				fn(s.o)
			}
		}
	}
	return n
}

func (f *fakeRing) SubscriberSlots() []ringbuf.SubscriberSlot {
	var out []ringbuf.SubscriberSlot
	for i, s := range f.subs {
		if s.state != "" {
			out = append(out, ringbuf.SubscriberSlot{Index: i, PID: s.o.PID, Start: s.o.Start, Reserved: s.state == "reserved", Evicted: s.state == "evicted"})
		}
	}
	return out
}

func (f *fakeRing) GroupSlots() []ringbuf.GroupSlot {
	var out []ringbuf.GroupSlot
	for i, g := range f.groups {
		if g.used {
			out = append(out, ringbuf.GroupSlot{Index: i, ID: g.id, Members: g.members, Creator: g.creator})
		}
	}
	return out
}

// procs is a set of test processes and their liveness.
type procs struct{ dead map[procID]bool }

func (ps *procs) alive(id procID) bool { return !ps.dead[id] }

func (ps *procs) peer(pid int) (*peer, procID) {
	id := procID{pid, uint64(1000 + pid)}
	return &peer{pid: id.pid, start: id.start}, id
}

func testLedger(subs, groups int) (*ledger, *fakeRing, *procs) {
	ps := &procs{dead: map[procID]bool{}}
	l := newLedger(subs, groups)
	l.alive = ps.alive
	l.exiting = func(int) bool { return false }
	return l, newFakeRing(subs, groups, ps.alive), ps
}

// TestLedgerAvoidsLiveHolders: a free slot whose descriptor a live
// process was handed goes to nobody else until that process is dead; its
// own holder gets it back.
func TestLedgerAvoidsLiveHolders(t *testing.T) {
	l, r, ps := testLedger(2, 0)
	pa, a := ps.peer(1)
	pb, b := ps.peer(2)
	pc, c := ps.peer(3)
	if k, err := l.reserveSubscriber(r, pa, a, nil); k != 0 || err != nil {
		t.Fatalf("first reserve = %d, %v; want slot 0", k, err)
	}
	r.subs[0] = fakeSub{} // a closed its subscriber: the ring slot is free, a still maps it
	if k, err := l.reserveSubscriber(r, pb, b, nil); k != 1 || err != nil {
		t.Fatalf("reserve while a holds slot 0 = %d, %v; want slot 1", k, err)
	}
	if k, err := l.reserveSubscriber(r, pc, c, nil); !errors.Is(err, ringbuf.ErrNoSlot) {
		t.Fatalf("reserve with slot 0 held by live a and 1 reserved = %d, %v; want ErrNoSlot", k, err)
	}
	if k, err := l.reserveSubscriber(r, pa, a, nil); k != 0 || err != nil {
		t.Fatalf("a's own reserve = %d, %v; want its slot 0 back", k, err)
	}
	r.subs[0] = fakeSub{}
	ps.dead[a] = true
	if k, err := l.reserveSubscriber(r, pc, c, nil); k != 0 || err != nil {
		t.Fatalf("reserve once a is dead = %d, %v; want slot 0", k, err)
	}
	if l.holders[0][a] {
		t.Fatal("the dead holder was not forgotten")
	}
}

// TestLedgerCancelOnlyOwn: a cancel frees a reservation only while it is
// still the one made for that process.
func TestLedgerCancelOnlyOwn(t *testing.T) {
	l, r, ps := testLedger(1, 0)
	pa, a := ps.peer(1)
	_, b := ps.peer(2)
	k, _ := l.reserveSubscriber(r, pa, a, nil)
	if l.cancelSubscriber(r, k, b) || r.subs[k].state != "reserved" {
		t.Fatal("another process's cancel freed a's reservation")
	}
	if !l.cancelSubscriber(r, k, a) || r.subs[k].state != "" {
		t.Fatal("a's own cancel did not free its reservation")
	}
	if l.cancelSubscriber(r, k, a) {
		t.Fatal("a second cancel reported a free")
	}
}

// TestLedgerReleaseByRecord: a dead owner's slot is released with the
// queue-group slot the ledger handed along, not the one the owner wrote,
// and only by the connection that holds the lease.
func TestLedgerReleaseByRecord(t *testing.T) {
	l, r, ps := testLedger(2, 2)
	pa, a := ps.peer(1)
	pb, b := ps.peer(2)
	r.groups[0] = fakeGroup{used: true, id: 7, members: 1} // another group, in slot 0
	k, _ := l.reserveSubscriber(r, pa, a, nil)
	g, fresh, err := l.reserveGroup(r, k, 9, a, nil)
	if g != 1 || !fresh || err != nil {
		t.Fatalf("reserveGroup = %d, %v, %v; want a new group in slot 1", g, fresh, err)
	}
	if g2, fresh, err := l.reserveGroup(r, 1, 9, b, nil); g2 != 1 || fresh || err != nil {
		t.Fatalf("second reserveGroup of the same id = %d, %v, %v; want slot 1, joined", g2, fresh, err)
	}
	r.subs[k].state = "active"
	r.written[k] = 0 // a forges group 0's index in its slot
	if l.release(r, k, pb) {
		t.Fatal("a connection without the lease released the slot")
	}
	ps.dead[a] = true
	if !l.release(r, k, pa) || !slices.Equal(r.calls, []string{"release 0 1"}) {
		t.Fatalf("release by the lease holder: calls %v, want release 0 1", r.calls)
	}
	if l.release(r, k, pa) {
		t.Fatal("a second release of the same lease")
	}
}

// TestLedgerReapDead: reapDead releases the leases of dead connections
// (with their groups) and counts each, leaves live ones, then lets the
// ring free what else it finds dead.
func TestLedgerReapDead(t *testing.T) {
	l, r, ps := testLedger(3, 1)
	pa, a := ps.peer(1)
	pb, b := ps.peer(2)
	ka, _ := l.reserveSubscriber(r, pa, a, nil)
	l.reserveGroup(r, ka, 5, a, nil)
	kb, _ := l.reserveSubscriber(r, pb, b, nil)
	_, c := ps.peer(3)
	r.subs[2] = fakeSub{state: "active", o: owner(c)} // a slot the ring lists for c
	ps.dead[a], ps.dead[c] = true, true
	var noted []ringbuf.Owner
	if n := l.reapDead(r, func(o ringbuf.Owner) { noted = append(noted, o) }); n != 2 {
		t.Fatalf("reapDead freed %d slots, want a's and c's", n)
	}
	if !slices.Equal(r.calls, []string{"release " + itoa(ka) + " 0"}) || r.reaped != 1 {
		t.Fatalf("calls %v, ring reaps %d; want a's slot released with its group 0, then one ring reap", r.calls, r.reaped)
	}
	if len(noted) != 2 || noted[0] != owner(a) || noted[1] != owner(c) {
		t.Fatalf("deaths noted %v, want a then c", noted)
	}
	if _, ok := l.leaseOf(kb); !ok || r.subs[kb].state != "reserved" {
		t.Fatal("the live connection's lease or slot went")
	}
}

// TestLedgerReserveReapsOnce: with every slot held by a dead process, a
// reserve frees them (counting the deaths) and then succeeds.
func TestLedgerReserveReapsOnce(t *testing.T) {
	l, r, ps := testLedger(1, 0)
	pa, a := ps.peer(1)
	pb, b := ps.peer(2)
	l.reserveSubscriber(r, pa, a, nil)
	ps.dead[a] = true
	deaths := 0
	if k, err := l.reserveSubscriber(r, pb, b, func(ringbuf.Owner) { deaths++ }); k != 0 || err != nil || deaths != 1 {
		t.Fatalf("reserve over a dead owner's slot = %d, %v, %d deaths; want slot 0, 1 death", k, err, deaths)
	}
}

// TestLedgerEvict: eviction goes by the lease (holder and group), never
// by the slot's own fields.
func TestLedgerEvict(t *testing.T) {
	l, r, ps := testLedger(1, 1)
	pa, a := ps.peer(1)
	pb, _ := ps.peer(2)
	k, _ := l.reserveSubscriber(r, pa, a, nil)
	l.reserveGroup(r, k, 3, a, nil)
	r.subs[k].state = "active"
	if l.evict(r, k, []*peer{pb}) || len(r.calls) != 0 {
		t.Fatalf("evicted for a process without the lease (calls %v)", r.calls)
	}
	if g, ok := l.ownedBy(k, []*peer{pb, pa}); !ok || g != 0 {
		t.Fatalf("ownedBy = %d, %v; want group 0, owned", g, ok)
	}
	if !l.evict(r, k, []*peer{pb, pa}) || !slices.Equal(r.calls, []string{"evict 0 0"}) {
		t.Fatalf("evict by the owner's process: calls %v", r.calls)
	}
	if !l.unjoinedGroups(r) {
		t.Fatal("the group made for a, with no members, is not reported unjoined")
	}
}

// TestLedgerProperty drives a ledger and a fake ring with random
// reserves, closes, cancels, deaths and reaps of a few processes, and
// checks each reserve against a model: it succeeds exactly when some
// slot is free in the ring (after freeing dead owners' slots, if none is
// at first) and was handed to no live process but the asker, and then
// it takes the lowest such slot; a slot is never reserved while another
// live process holds it.
func TestLedgerProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		const subs = 3
		l, r, ps := testLedger(subs, 0)
		peers := map[int]*peer{}
		ids := map[int]procID{}
		handed := make([]map[procID]bool, subs) // the model's holders
		for k := range handed {
			handed[k] = map[procID]bool{}
		}
		next := 1
		pick := func(rt *rapid.T) int {
			if len(peers) == 0 || rapid.Bool().Draw(rt, "new") {
				p, id := ps.peer(next)
				peers[next], ids[next] = p, id
				next++
				return next - 1
			}
			keys := slices.Sorted(func(yield func(int) bool) {
				for k := range peers {
					if !yield(k) {
						return
					}
				}
			})
			return rapid.SampledFrom(keys).Draw(rt, "proc")
		}
		// firstUsable is the lowest slot free in slots and handed to no
		// live process but me, or -1.
		firstUsable := func(slots []fakeSub, me procID) int {
			for k := range slots {
				live := false
				for h := range handed[k] {
					live = live || h != me && ps.alive(h)
				}
				if !live && slots[k].state == "" {
					return k
				}
			}
			return -1
		}
		rt.Repeat(map[string]func(*rapid.T){
			"reserve": func(rt *rapid.T) {
				n := pick(rt)
				me := ids[n]
				want := firstUsable(r.subs, me)
				if want < 0 { // the ledger frees the dead owners' slots once, then looks again
					reaped := slices.Clone(r.subs)
					for k, sl := range reaped {
						if sl.state != "" && !ps.alive(procID{int(sl.o.PID), sl.o.Start}) {
							reaped[k] = fakeSub{}
						}
					}
					want = firstUsable(reaped, me)
				}
				got, err := l.reserveSubscriber(r, peers[n], me, nil)
				if (err == nil) != (want >= 0) || err == nil && got != want {
					rt.Fatalf("reserve for %v = %d, %v; model wants %d", me, got, err, want)
				}
				if err == nil {
					for h := range handed[got] {
						if h != me && ps.alive(h) {
							rt.Fatalf("slot %d given to %v while live %v holds it", got, me, h)
						}
					}
					handed[got][me] = true
				}
			},
			"close": func(rt *rapid.T) { // the owner frees its slot in the ring, keeps its mapping
				k := rapid.IntRange(0, subs-1).Draw(rt, "slot")
				r.subs[k] = fakeSub{}
			},
			"cancel": func(rt *rapid.T) {
				n := pick(rt)
				k := rapid.IntRange(0, subs-1).Draw(rt, "slot")
				want := r.subs[k].state == "reserved" && r.subs[k].o == owner(ids[n])
				if l.cancelSubscriber(r, k, ids[n]) != want {
					rt.Fatalf("cancel of slot %d by %v disagrees with the model (%+v)", k, ids[n], r.subs[k])
				}
			},
			"join": func(rt *rapid.T) {
				k := rapid.IntRange(0, subs-1).Draw(rt, "slot")
				if r.subs[k].state == "reserved" {
					r.subs[k].state = "active"
				}
			},
			"die": func(rt *rapid.T) {
				ps.dead[ids[pick(rt)]] = true
			},
			"reap": func(rt *rapid.T) {
				l.reapDead(r, nil)
				for k, s := range r.subs {
					if s.state != "" && !ps.alive(procID{int(s.o.PID), s.o.Start}) {
						rt.Fatalf("slot %d still held by dead %+v after reapDead", k, s.o)
					}
				}
			},
		})
	})
}

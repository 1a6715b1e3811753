package daemon

import (
	"fmt"

	"github.com/kaelix-io/kaelix/ringbuf"
)

// The slot ledger: the daemon's leasing policy for one partition's
// subscriber and queue-group slots. The ring (package ringbuf) provides
// the mechanism only, one atomic step on a slot it is told: claim slot i
// for a process, cancel that claim, make group g in slot i, release or
// evict slot i with the group the caller names. The ledger decides:
//
//   - reserve: which free slot a subscriber gets. Never one whose
//     descriptor a live process other than the asker was handed (it may
//     still map the slot writable and store into it after a new owner
//     took it over); a holder found dead is forgotten. When no slot can
//     be had, the dead processes' slots are freed once (reapDead) and the
//     choice made again.
//   - hold: who was handed which slot region's descriptor.
//   - cancel: a reservation is cancelled only while it is still the one
//     made for that process (never a later owner's).
//   - release and reap: a dead process's slots are freed by the ledger's
//     record of whom each was reserved for and which queue group slot was
//     handed along, never by what the owner wrote in its slot (a forged
//     live pid would keep a slot forever, a forged group index would take
//     a member off another group).
//   - evict: a slot is taken from its owner by the same record.
//
// Slot regions are numbered as the partition's slot files: subscriber
// slot k is region k, queue-group slot g is region subs+g. A ledger is
// guarded by Daemon.mu; its methods that touch the ring run under
// withRing (the caller's).

// slotRing is the ring mechanism a ledger drives (*ringbuf.Ring).
type slotRing interface {
	ClaimSubscriberSlot(i int, o ringbuf.Owner) bool
	CancelClaim(i int, o ringbuf.Owner) bool
	FindGroup(id uint32) int
	ClaimGroupSlot(i int, id uint32, o ringbuf.Owner) bool
	CancelGroup(i int) bool
	ReleaseSlot(i, group int) bool
	EvictSlot(i, group int) bool
	ReapDeadOwners(fn func(ringbuf.Owner)) int
	SubscriberSlots() []ringbuf.SubscriberSlot
	GroupSlots() []ringbuf.GroupSlot
}

var _ slotRing = (*ringbuf.Ring)(nil)

// ledger is one partition's leases. The zero value is not usable: see
// newLedger.
type ledger struct {
	subs, groups int // subscriber slots, queue-group slots
	// leases are, per subscriber slot, the latest reservation made for a
	// connection.
	leases map[int]lease
	// holders are, per slot region, the processes that were handed its
	// descriptor as subscribers and may still map it writable.
	holders map[int]map[procID]bool
	// alive and exiting judge processes (ringbuf.ProcessStart,
	// ringbuf.ProcessExiting); tests replace them.
	alive   func(procID) bool
	exiting func(pid int) bool
}

// lease is one subscriber slot's reservation: the connection it was made
// for and the queue-group slot handed along (-1: none).
type lease struct {
	p     *peer
	group int
}

// newLedger returns an empty ledger for subs subscriber and groups
// queue-group slots.
func newLedger(subs, groups int) *ledger {
	return &ledger{subs: subs, groups: groups, leases: map[int]lease{}, holders: map[int]map[procID]bool{},
		alive:   func(id procID) bool { start, ok := ringbuf.ProcessStart(id.pid); return ok && start == id.start },
		exiting: ringbuf.ProcessExiting}
}

func owner(id procID) ringbuf.Owner { return ringbuf.Owner{PID: uint32(id.pid), Start: id.start} }

// hold records that process id was handed slot region i's descriptor.
func (l *ledger) hold(i int, id procID) {
	if l.holders[i] == nil {
		l.holders[i] = map[procID]bool{}
	}
	l.holders[i][id] = true
}

// heldByOthers reports whether a live process other than id was handed
// slot region i's descriptor, forgetting the dead ones.
func (l *ledger) heldByOthers(i int, id procID) bool {
	for h := range l.holders[i] {
		if h == id {
			continue
		}
		if l.alive(h) {
			return true
		}
		delete(l.holders[i], h)
	}
	return false
}

// reserveSubscriber reserves a subscriber slot for p's process me and
// records the lease and the hold; note counts the deaths of the owners of
// the slots a reap frees (reapDead). Errors: ringbuf.ErrNoSlot.
func (l *ledger) reserveSubscriber(r slotRing, p *peer, me procID, note func(ringbuf.Owner)) (int, error) {
	for pass := 0; pass < 2; pass++ {
		for k := 0; k < l.subs; k++ {
			if !l.heldByOthers(k, me) && r.ClaimSubscriberSlot(k, owner(me)) {
				l.leases[k] = lease{p: p, group: -1}
				l.hold(k, me)
				return k, nil
			}
		}
		if pass == 0 {
			l.reapDead(r, note)
		}
	}
	return -1, fmt.Errorf("%w: all %d subscriber slots are held by live processes", ringbuf.ErrNoSlot, l.subs)
}

// cancelSubscriber cancels the reservation of slot k if it is still the
// one made for me (its process never joined).
func (l *ledger) cancelSubscriber(r slotRing, k int, me procID) bool {
	return r.CancelClaim(k, owner(me))
}

// reserveGroup finds queue group id, or makes it in a free group slot no
// live process but me was handed, for the subscriber slot k just reserved
// for me; it records the group in k's lease and the hold. fresh reports
// that it made the group (cancelGroup undoes that). Errors:
// ringbuf.ErrNoSlot.
func (l *ledger) reserveGroup(r slotRing, k int, id uint32, me procID, note func(ringbuf.Owner)) (g int, fresh bool, err error) {
	g = -1
	for pass := 0; pass < 2 && g < 0; pass++ {
		if g = r.FindGroup(id); g >= 0 {
			break
		}
		for i := 0; i < l.groups; i++ {
			if !l.heldByOthers(l.subs+i, me) && r.ClaimGroupSlot(i, id, owner(me)) {
				g, fresh = i, true
				break
			}
		}
		if g < 0 && pass == 0 {
			l.reapDead(r, note)
		}
	}
	if g < 0 {
		return -1, false, fmt.Errorf("%w: all %d queue-group slots are in use", ringbuf.ErrNoSlot, l.groups)
	}
	if ls, ok := l.leases[k]; ok {
		ls.group = g
		l.leases[k] = ls
	}
	l.hold(l.subs+g, me)
	return g, fresh, nil
}

// cancelGroup frees group slot g if its group still has no member.
func (l *ledger) cancelGroup(r slotRing, g int) bool { return r.CancelGroup(g) }

// adopt records that subscriber slot k is p's again with queue-group
// slot group (-1: none): a reconnecting client's resumed slot, which the
// caller checked names p's process. It refuses (false) while another
// connection that has not exited holds k's lease.
func (l *ledger) adopt(k int, p *peer, group int) bool {
	if ls, ok := l.leases[k]; ok && ls.p != nil && ls.p != p && !ls.p.exited {
		return false
	}
	l.leases[k] = lease{p: p, group: group}
	return true
}

// leaseOf returns slot k's lease, if it has one.
func (l *ledger) leaseOf(k int) (lease, bool) {
	ls, ok := l.leases[k]
	return ls, ok
}

// release frees slot k if its lease is p's: p's process is dead. It
// reports whether the ring slot was in use.
func (l *ledger) release(r slotRing, k int, p *peer) bool {
	ls, ok := l.leases[k]
	if !ok || ls.p != p {
		return false
	}
	delete(l.leases, k)
	return r.ReleaseSlot(k, ls.group)
}

// reapDead frees the slots of dead processes: first those whose lease
// names a connection whose process is dead (by the lease's group), then
// whatever else the ring finds dead (ringbuf.Ring.ReapDeadOwners). note,
// if not nil, is called with each freed slot's dead owner. It returns how
// many slots it freed.
func (l *ledger) reapDead(r slotRing, note func(ringbuf.Owner)) int {
	n := 0
	for k, ls := range l.leases {
		p := ls.p
		if p == nil || p.start == 0 || l.alive(procID{p.pid, p.start}) {
			continue
		}
		delete(l.leases, k)
		if r.ReleaseSlot(k, ls.group) {
			n++
			if note != nil {
				note(ringbuf.Owner{PID: uint32(p.pid), Start: p.start})
			}
		}
	}
	return n + r.ReapDeadOwners(note)
}

// evict takes subscriber slot k from its owner, which need not be dead,
// if the lease is held by one of peers, leaving the queue group the
// lease names. It reports whether it took the slot.
func (l *ledger) evict(r slotRing, k int, peers []*peer) bool {
	ls, ok := l.leases[k]
	if !ok || !containsPeer(peers, ls.p) {
		return false
	}
	return r.EvictSlot(k, ls.group)
}

// ownedBy reports the queue-group slot of slot k's lease and whether the
// lease is held by one of peers.
func (l *ledger) ownedBy(k int, peers []*peer) (group int, ok bool) {
	ls, has := l.leases[k]
	if !has || !containsPeer(peers, ls.p) {
		return -1, false
	}
	return ls.group, true
}

func containsPeer(peers []*peer, p *peer) bool {
	for _, q := range peers {
		if q == p {
			return true
		}
	}
	return false
}

// unjoinedGroups reports whether a queue group made for a process that
// has not joined yet (no members) holds the ring: the reservation expiry
// frees it, not an eviction.
func (l *ledger) unjoinedGroups(r slotRing) bool {
	for _, g := range r.GroupSlots() {
		if g.Members == 0 {
			return true
		}
	}
	return false
}

// othersExiting reports whether a process that keeps slots from me (by
// owning one, as the ring shows, or by having been handed a descriptor)
// is exiting: an attach refused a slot is worth trying again then
// (exitwait.go).
func (l *ledger) othersExiting(r slotRing, me procID) bool {
	for _, s := range r.SubscriberSlots() {
		if s.PID != 0 && (s.PID != uint32(me.pid) || s.Start != me.start) && l.exiting(int(s.PID)) {
			return true
		}
	}
	for _, hs := range l.holders {
		for h := range hs {
			if h != me && l.exiting(h.pid) {
				return true
			}
		}
	}
	return false
}

package daemon

import (
	"sync"
	"time"

	"github.com/kaelix-io/kaelix/ringbuf"
)

// Counting peer deaths (kaelix_peer_deaths_total, daemon status).
//
// A death is counted once per dead client process whose ring slots were
// freed, whoever freed them. When many clients die at once (one kill -9 of
// a process group), the first pidfd to fire reaps every ring that client
// attached, and ReapDead there frees the slots of all the dead processes
// on those rings, not only its own; the later pidfds then find nothing
// left to free. So deaths are counted by the owner of each freed slot
// (ringbuf.Ring.ReapDeadOwners reports it), wherever the daemon reaps: a
// client's death, the periodic sweep. A slot freed by another client (a
// publisher taking a dead predecessor's slot, or reaping a dead claimant
// it waited on) is not reported to the daemon; such a client is still
// counted when its pidfd fires, if it died with attachments it never
// detached (a clean Close detaches each handle first, so a clean exit is
// never a death). Each process is counted once: its identity (pid and
// start time) is remembered for deathMemory.

// deathMemory is how long a counted process is remembered so that its
// other slots, freed later, do not count it again. The sweep
// (daemon.sweep_interval, 1 s by default) frees every dead process's
// slots long before.
const deathMemory = time.Minute

// deathLedger is the set of dead processes already counted.
type deathLedger struct {
	mu     sync.Mutex
	seen   map[ringbuf.Owner]time.Time // when each was counted
	pruned time.Time
}

// noteDeath counts o's death unless it was counted already, and reports
// whether it counted it now. Safe for concurrent use.
func (d *Daemon) noteDeath(o ringbuf.Owner, now time.Time) bool {
	l := &d.deathLog
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.pruned) >= deathMemory {
		// Rebuilt rather than deleted from: a map never shrinks, and a
		// burst of deaths must not keep its memory.
		keep := make(map[ringbuf.Owner]time.Time, len(l.seen)/2)
		for k, at := range l.seen {
			if now.Sub(at) < deathMemory {
				keep[k] = at
			}
		}
		l.seen, l.pruned = keep, now
	}
	if _, ok := l.seen[o]; ok {
		return false
	}
	l.seen[o] = now
	d.deaths.Add(1)
	return true
}

// deathCounted reports whether o's death was counted (within deathMemory).
func (d *Daemon) deathCounted(o ringbuf.Owner) bool {
	d.deathLog.mu.Lock()
	defer d.deathLog.mu.Unlock()
	_, ok := d.deathLog.seen[o]
	return ok
}

// reapRing frees dead processes' slots in part's ring and counts each
// owner's death (noteDeath). It returns how many slots it freed. d.mu
// held; runs under withRing.
//
// Slots the daemon reserved for a process that has died are released
// first by the daemon's record (the partition's ledger: whom each slot
// was reserved for and the queue-group slot handed along), as peerExited
// does: ReapDead goes by the fields the owner wrote in its slot, and a
// dead subscriber that wrote another group's index there would otherwise
// take a member off that group. The sweep may come to a dead process
// before its pidfd is read.
func (d *Daemon) reapRing(part *partition) int {
	n := 0
	d.withRing(part, func() { n = part.leases.reapDead(part.ring, d.deathNoter()) })
	return n
}

// deathNoter returns a function that counts the death of a freed slot's
// owner, now (noteDeath), for ledger.reapDead. d.mu held.
func (d *Daemon) deathNoter() func(ringbuf.Owner) {
	now := time.Now()
	return func(o ringbuf.Owner) { d.noteDeath(o, now) }
}

package daemon

import (
	"cmp"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/internal/proc"
	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/wire"
)

// Eviction of subscribers that hold publishers back (daemon.evict_stalled_after).
//
// Under block and reject a subscriber that stops reading holds every
// publisher of its partition back once the ring fills. A dead one is
// reaped at once (its pidfd fires). A live one is waited for
// evict_stalled_after (default 5s; 0 waits forever), whether it is stopped
// (SIGSTOP, a debugger: /proc state T or t) or runs without reading (stuck
// in a handler, or hostile).
//
// With evict_stalled_after set, every sweep looks at the block and reject
// partitions its clients attached and at the subscriber slots of those
// clients' processes in them (ringbuf SubscriberSlots, matched by pid and
// process start time). A slot holds its partition back when it is at
// least half the capacity behind the tail: the ring is then at least half
// full and the slot is at, or near, its slowest position. A slot that
// holds its partition back without its position moving for
// evict_stalled_after gets its process evicted, stopped or running alike:
//
//   - The first time, without harm to the process: ringbuf's
//     EvictSubscriber takes each of the process's slots that hold a
//     partition back. Publishers stop waiting for them at once; the
//     process's next Poll, Read or PollWait on such a slot returns
//     ringbuf.ErrEvicted (client.ErrEvicted), and it may close and
//     subscribe again. The slot is not handed to anyone else until its
//     owner closes it (or dies), so a late cursor store by the owner lands
//     in its own slot. What the eviction cannot undo: a record the owner
//     was reading in place may be overwritten under it, which ErrEvicted
//     tells it.
//   - If the same process (pid and start time: a reused pid is another
//     process) holds publishers back for evict_stalled_after again — it
//     re-subscribed and stalled once more, ignored ErrEvicted, or wrote its
//     slot state back to active — its slots are taken again and it is
//     killed with SIGKILL through its pidfd (which names that process and
//     no other, whatever happens to pid numbers); the usual death path
//     frees its slots. The daemon remembers evicted processes for as long
//     as they live.
//
// A subscriber may also sit still because the record at its position is
// claimed by a publisher that has not committed it (a stopped publisher,
// or a loan held that long); it is not at fault then. While a publisher
// process attached to the topic is stopped, no slot of that topic is held
// against its owner. A running publisher holding a claim is not told
// apart: the ring does not say which slots wait on a claim.
//
// A slot reserved for a process that never joins it holds publishers
// back like a joined one and is treated alike (EvictSubscriber frees it).
//
// Two holders are invisible to SubscriberSlots and cannot be taken from a
// live owner: a slot its process is joining (state claiming: the process
// stopped in the middle of NewSubscriber), and the record a queue-group
// member holds while it reads it (its hold word). When a partition stays
// held back for evict_stalled_after with no listed slot behind, the
// stopped processes subscribed to its topic that have no listed slot
// there, or only queue-group slots, are killed, as every stopped
// subscriber of a held ring was before non-lethal eviction. A running
// process holding such a slot is not told apart and is waited for.
//
// Both kinds are counted (kaelix_subscriber_evictions_total{action="evict"
// or "kill"}, Status.SubscriberEvictions and SubscriberKills; per
// partition, the ring's Evicted counter) and logged.
//
// Locking: the sweep decides and takes slots under d.mu, touching ring
// memory only through withRing; the SIGKILL goes out after d.mu is
// released (it takes watcher.mu, which may also be taken under d.mu).

// procID names a process: a pid plus its start time (clock ticks since
// boot, field 22 of /proc/PID/stat), as the ring's slots record it.
type procID struct {
	pid   int
	start uint64
}

// slotKey names a subscriber slot of a partition.
type slotKey struct {
	part  *partition
	index int
}

// slotProgress is a slot last seen holding its partition back.
type slotProgress struct {
	owner    procID
	position uint64
	since    time.Time // first sweep that saw it hold the partition back at position
}

// evictState is what the sweep remembers between runs. Guarded by
// Daemon.mu; only the sweep (the watcher goroutine) uses it.
type evictState struct {
	progress map[slotKey]slotProgress
	// hidden are partitions held back by no slot the ring lists, since
	// when (see findStalled).
	hidden map[*partition]time.Time
	// evicted are live processes evicted once: the next stall is a kill.
	evicted map[procID]*evictedProc
}

type evictedProc struct {
	at     time.Time // first eviction
	killed bool      // SIGKILL sent (or being sent)
}

// suspect is a process with clients attached to block or reject
// partitions.
type suspect struct {
	id      procID
	stopped bool
	peers   []*peer      // its connections, by id
	parts   []*partition // block/reject partitions its connections attached
	holding []heldSlot   // its slots that hold a partition back
	stalled time.Duration
}

type heldSlot struct {
	part  *partition
	slot  ringbuf.SubscriberSlot
	group int // the queue-group slot the daemon handed along (-1: none)
}

// owns reports whether the daemon reserved slot idx of part for one of
// s's connections (the partition's ledger), and with which queue-group
// slot.
func (s *suspect) owns(part *partition, idx int) (group int, ok bool) {
	return part.leases.ownedBy(idx, s.peers)
}

// eviction is one process to evict, decided under d.mu and reported
// (and, for a kill, carried out) after.
type eviction struct {
	s     *suspect // nil once dropped (no slot left to take)
	kill  bool
	slots int      // slots taken
	parts []string // "topic/partition" of those slots
	// firstEvicted is, for a kill, when the process was evicted first.
	firstEvicted time.Time
	// hidden: a kill of a stopped process whose partition is held back
	// by no slot the ring lists.
	hidden bool
}

// evictStalled runs from the sweep (after ReapDead). It evicts the
// processes whose subscriber slots have held a partition back without
// advancing for the configured time.
func (d *Daemon) evictStalled(now time.Time) {
	after := d.cur.Load().cfg.Daemon.EvictStalledAfter
	d.mu.Lock()
	if after <= 0 {
		d.ev = evictState{} // turning it on later starts afresh
		for _, p := range d.peers {
			p.stoppedSince = time.Time{}
		}
		d.mu.Unlock()
		return
	}
	todo := d.findStalled(now, after)
	var logArgs [][]any
	for _, e := range todo {
		d.evictSlots(e)
		if !e.kill && e.slots == 0 { // its slots went away since the look
			delete(d.ev.evicted, e.s.id)
			e.s = nil
			logArgs = append(logArgs, nil)
			continue
		}
		p := e.s.peers[0]
		stoppedFor := time.Duration(0)
		if !p.stoppedSince.IsZero() {
			stoppedFor = now.Sub(p.stoppedSince).Round(time.Millisecond)
		}
		state := "running"
		if e.s.stopped {
			state = "stopped"
		}
		logArgs = append(logArgs, []any{"client", p.id, "pid", p.pid, "name", p.name, "state", state, "stopped_for", stoppedFor,
			"stalled_for", e.s.stalled.Round(time.Millisecond), "slots_taken", e.slots, "partitions", e.parts, "evict_stalled_after", after})
		if e.kill && !e.hidden {
			logArgs[len(logArgs)-1] = append(logArgs[len(logArgs)-1], "first_evicted_ago", now.Sub(e.firstEvicted).Round(time.Millisecond))
		} else if !e.kill {
			d.evictions.Add(1) // counted as the publishers are released
			d.m.evictions.WithLabelValues("evict").Inc()
		}
	}
	d.mu.Unlock()

	for i, e := range todo {
		if e.s == nil {
			continue
		}
		args := logArgs[i]
		if !e.kill {
			d.log.Warn("subscriber evicted: it held publishers back without reading (daemon.evict_stalled_after); its slots were taken, the process lives on", args...)
			continue
		}
		if err := d.killProc(e.s); err != nil {
			d.mu.Lock()
			if ep := d.ev.evicted[e.s.id]; ep != nil {
				ep.killed = false // try again at its next stall
			}
			d.mu.Unlock()
			d.log.Warn("cannot kill a subscriber that holds publishers back (daemon.evict_stalled_after)", append(args, "err", err)...)
			continue
		}
		d.evictions.Add(1)
		d.evictKills.Add(1)
		d.m.evictions.WithLabelValues("kill").Inc()
		if e.hidden {
			d.log.Warn("subscriber killed: stopped while its topic's ring was held back by a slot the daemon cannot take from a live process "+
				"(one being joined, or a queue-group member's held record) (daemon.evict_stalled_after)", args...)
			continue
		}
		d.log.Warn("subscriber killed: it held publishers back again after an eviction (daemon.evict_stalled_after)", args...)
	}
}

// findStalled updates the progress of every subscriber slot that holds a
// block or reject partition back and returns the processes to evict.
// d.mu held.
func (d *Daemon) findStalled(now time.Time, after time.Duration) []*eviction {
	if d.ev.progress == nil {
		d.ev = evictState{progress: map[slotKey]slotProgress{}, hidden: map[*partition]time.Time{}, evicted: map[procID]*evictedProc{}}
	}
	// Processes that attached block/reject partitions, the topics with a
	// stopped publisher process, and the stopped processes subscribed to
	// each topic.
	procs := map[int]*suspect{}
	pubStopped := map[*topic]bool{}
	stoppedSubs := map[*topic][]*suspect{}
	for _, id := range slices.Sorted(maps.Keys(d.peers)) {
		p := d.peers[id]
		if p.exited || len(p.rings) == 0 {
			p.stoppedSince = time.Time{}
			continue
		}
		s := procs[p.pid]
		if s == nil {
			st, start, ok := procStat(d.shm.ProcRoot, p.pid)
			if !ok || st == 'Z' || st == 'X' || st == 'x' {
				continue // gone: its pidfd (or the sweep's ReapDead) frees its slots
			}
			s = &suspect{id: procID{p.pid, start}, stopped: st == 'T' || st == 't'}
			procs[p.pid] = s
		}
		s.peers = append(s.peers, p)
		for part := range p.rings {
			if !part.closed && part.faulted == nil && part.ring.Policy() != ringbuf.PolicyDropOldest {
				s.parts = append(s.parts, part)
			}
		}
		if !s.stopped {
			p.stoppedSince = time.Time{}
			continue
		}
		if p.stoppedSince.IsZero() {
			p.stoppedSince = now
		}
		for _, a := range p.attachments {
			if a.role == wire.RolePublisher {
				pubStopped[a.topic] = true
			} else if !slices.Contains(stoppedSubs[a.topic], s) {
				stoppedSubs[a.topic] = append(stoppedSubs[a.topic], s)
			}
		}
	}

	// One look at each held partition: its tail, capacity and slots, and
	// whether any listed slot holds it back.
	type look struct {
		held, visible  bool
		tail, capacity uint64
		slots          []ringbuf.SubscriberSlot
		claim          uint64 // the oldest claim in flight, if claimed
		claimed        bool
		unjoined       bool // a queue group nobody joined yet holds it: the reservation expiry frees it, not a kill
	}
	looks := map[*partition]*look{}
	progress := make(map[slotKey]slotProgress, len(d.ev.progress))
	hidden := map[*partition]time.Time{}
	var todo []*eviction
	pids := slices.Sorted(maps.Keys(procs))
	for _, pid := range pids {
		s := procs[pid]
		slices.SortFunc(s.parts, cmpPart)
		s.parts = slices.Compact(s.parts)
		for _, part := range s.parts {
			shielded := false
			for t := range pubStopped {
				shielded = shielded || slices.Contains(t.parts, part)
			}
			l := looks[part]
			if l == nil {
				l = &look{}
				looks[part] = l
				d.withRing(part, func() {
					c := part.ring.Counters()
					l.capacity = part.ring.CapacityBytes()
					if c.SlowestLag*2 >= l.capacity {
						l.held, l.tail, l.slots = true, c.TailPosition, part.ring.SubscriberSlots()
						l.claim, l.claimed = part.ring.OldestClaim()
						l.unjoined = part.leases.unjoinedGroups(part.ring)
					}
				})
				for _, sl := range l.slots {
					l.visible = l.visible || !sl.Evicted && behind(sl, l.tail, l.capacity)
				}
				if l.held && !l.visible && !shielded && !l.unjoined {
					since, ok := d.ev.hidden[part]
					if !ok {
						since = now
					}
					hidden[part] = since
				}
			}
			if !l.held || shielded {
				continue // a slot of a shielded partition may be waiting on the stopped publisher's claim
			}
			for _, sl := range l.slots {
				// Whose slot it is comes from the daemon's record of its
				// reservations, never from the pid the owner wrote in it.
				group, mine := s.owns(part, sl.Index)
				if sl.Evicted || !mine || !behind(sl, l.tail, l.capacity) {
					continue
				}
				if l.claimed && sl.Position == l.claim {
					continue // it waits for a publisher's claim in flight, not for itself
				}
				s.holding = append(s.holding, heldSlot{part, sl, group})
				k := slotKey{part, sl.Index}
				pr, ok := d.ev.progress[k]
				if !ok || pr.owner != s.id || pr.position != sl.Position {
					pr = slotProgress{owner: s.id, position: sl.Position, since: now}
				}
				progress[k] = pr
				s.stalled = max(s.stalled, now.Sub(pr.since))
			}
		}
		if s.stalled < after {
			continue
		}
		e := &eviction{s: s}
		if ep := d.ev.evicted[s.id]; ep == nil {
			d.ev.evicted[s.id] = &evictedProc{at: now}
		} else if ep.killed {
			continue // dying already; its death frees the slots
		} else {
			e.kill, e.firstEvicted = true, ep.at
			ep.killed = true
		}
		for _, h := range s.holding {
			delete(progress, slotKey{h.part, h.slot.Index})
		}
		todo = append(todo, e)
	}

	// A partition held back by no slot the ring lists behind it. The ring
	// lists joining slots and group members' held records, so this is a
	// backstop for what it cannot show (say, memory a misbehaving process
	// wrote): a stopped subscriber of the topic with no listed slot there,
	// or only group members, is killed once it has been so for
	// evict_stalled_after, as it was before non-lethal eviction existed.
	for _, part := range slices.SortedFunc(maps.Keys(hidden), cmpPart) {
		since := hidden[part]
		if now.Sub(since) < after {
			continue
		}
		l := looks[part]
		for t, subs := range stoppedSubs {
			if !slices.Contains(t.parts, part) {
				continue
			}
			for _, s := range subs {
				if !slices.Contains(s.parts, part) || s.hasPlainSlot(part, l.slots) {
					continue
				}
				ep := d.ev.evicted[s.id]
				if ep != nil && ep.killed {
					continue
				}
				if ep == nil {
					ep = &evictedProc{at: now}
					d.ev.evicted[s.id] = ep
				}
				ep.killed = true
				s.stalled = now.Sub(since)
				todo = append(todo, &eviction{s: s, kill: true, hidden: true, firstEvicted: ep.at})
				delete(hidden, part)
			}
		}
	}
	d.ev.progress, d.ev.hidden = progress, hidden
	for id := range d.ev.evicted {
		if _, start, ok := procStat(d.shm.ProcRoot, id.pid); !ok || start != id.start {
			delete(d.ev.evicted, id)
		}
	}
	return todo
}

// behind reports whether slot sl is at least half the capacity behind the
// tail: it holds its partition back.
func behind(sl ringbuf.SubscriberSlot, tail, capacity uint64) bool {
	return sl.Position <= tail && (tail-sl.Position)*2 >= capacity
}

// hasPlainSlot reports whether slots list one the daemon reserved for s
// that is active and not a queue-group member's (so s is not the hidden
// holder).
func (s *suspect) hasPlainSlot(part *partition, slots []ringbuf.SubscriberSlot) bool {
	return slices.ContainsFunc(slots, func(sl ringbuf.SubscriberSlot) bool {
		group, mine := s.owns(part, sl.Index)
		return mine && group < 0 && !sl.Evicted && !sl.Reserved && !sl.Group
	})
}

// evictSlots takes e's process's slots that hold a partition back, each
// checked again just before, so that a slot its owner closed since the
// look (and someone else took) is left alone. d.mu held.
func (d *Daemon) evictSlots(e *eviction) {
	for _, h := range e.s.holding {
		taken := false
		d.withRing(h.part, func() {
			for _, sl := range h.part.ring.SubscriberSlots() {
				if sl.Index == h.slot.Index && !sl.Evicted && sl.Position == h.slot.Position {
					taken = h.part.leases.evict(h.part.ring, sl.Index, e.s.peers)
					break
				}
			}
		})
		if taken {
			e.slots++
			e.parts = append(e.parts, h.part.topic+"/"+strconv.Itoa(h.part.index))
		}
	}
	// What it reserved and never joined (a slot, a queue group made for
	// it) holds publishers too: cancelled with the eviction.
	for _, p := range e.s.peers {
		for _, a := range p.attachments {
			for _, u := range a.undo {
				u()
			}
			a.undo = nil
		}
	}
}

// killProc sends SIGKILL to s through the pidfd of one of its
// connections. Never to this process (an embedding program's own
// subscriber is only ever evicted).
func (d *Daemon) killProc(s *suspect) error {
	err := error(&OpError{Op: "pidfd_send_signal", Path: "pid " + itoa(s.id.pid), Err: unix.ESRCH})
	if s.id.pid == os.Getpid() {
		return &OpError{Op: "pidfd_send_signal", Path: "pid " + itoa(s.id.pid), Err: unix.EPERM}
	}
	for _, p := range s.peers {
		if err = d.w.signal(p, unix.SIGKILL); err == nil {
			return nil
		}
	}
	return err
}

// cmpPart orders partitions by topic and index.
func cmpPart(a, b *partition) int {
	return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.index, b.index))
}

// procStat reads /proc's state letter and start time (clock ticks since
// boot) of pid, under procRoot (internal/proc). ok is false if the
// process is gone.
func procStat(procRoot string, pid int) (state byte, start uint64, ok bool) {
	st, err := proc.ReadStat(procRoot, pid)
	if err != nil {
		return 0, 0, false
	}
	return st.State, st.StartTicks, true
}

// signal sends sig to p through its pidfd (never by pid number).
func (w *watcher) signal(p *peer, sig unix.Signal) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p.pidfd < 0 {
		return &OpError{Op: "pidfd_send_signal", Path: "pid " + itoa(p.pid), Err: unix.ESRCH}
	}
	if err := unix.PidfdSendSignal(p.pidfd, sig, nil, 0); err != nil {
		return &OpError{Op: "pidfd_send_signal", Path: "pid " + itoa(p.pid), Err: err}
	}
	return nil
}

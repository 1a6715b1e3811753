package ringbuf

// Eviction: taking a subscriber slot away from a live owner that holds
// publishers back, without ending the process. After Aeron's untethered
// subscriptions, which a publication stops waiting for once they fall a
// window behind for too long.
//
// EvictSubscriber moves the slot from slotActive to slotEvicted with one
// CAS. From then on publishers and observers ignore it as they ignore a
// free slot (consumerMin, Counters), so the space it held is reclaimed at
// once. A queue-group member leaves its group in the same step. The owner
// learns of it on its next call: Poll, Read and PollWait check their own
// slot's state and return ErrEvicted; Close (or the owner's death, through
// ReapDead) frees the slot. An evicted slot is never handed to another
// subscriber before that, so a late position store by the evicted owner
// lands in its own slot and nowhere else.
//
// What eviction cannot undo: a record the owner was reading in place when
// it was evicted may be overwritten under it. Its next call says
// ErrEvicted, so the application knows the record it handled last is
// suspect. A process that never looks (or writes slotActive back) keeps
// publishers waiting again; the daemon then ends it (see daemon/evict.go).

// slotEvicted is a subscriber slot taken from a live owner.
const slotEvicted = 3

// SubscriberSlot describes one live (or evicted) subscriber slot, for the
// daemon's liveness and progress checks.
type SubscriberSlot struct {
	Index    int    // slot index, for EvictSubscriber
	PID      uint32 // owner pid as the owner wrote it
	Start    uint64 // owner start time (clock ticks since boot, /proc/PID/stat field 22)
	Position uint64 // next position it will read (bytes); for a group member, its group's cursor
	Group    bool   // a queue-group member
	Evicted  bool   // taken away by EvictSubscriber; the owner has not closed it yet
	Reserved bool   // reserved for a process (ReserveSubscriberSlot) that has not joined yet
	Joining  bool   // its owner is joining (NewSubscriber has not finished)
	// Holding: a queue-group member reading a record in place, which
	// holds publishers at that record; Position is then the record's
	// position, not the group's cursor.
	Holding bool
}

// SubscriberSlots lists the slots that are not free. Each field is read
// with its own atomic load. Safe from any process with the ring mapped.
func (r *Ring) SubscriberSlots() []SubscriberSlot {
	var out []SubscriberSlot
	for i := 0; i < r.maxSubscribers; i++ {
		if !r.subSlot(i).mapped() {
			continue
		}
		off := r.subSlot(i)
		st := off.u32(subStateOffset).Load()
		if st != slotActive && st != slotEvicted && st != slotReserved && st != slotClaiming {
			continue
		}
		s := SubscriberSlot{
			Index:    i,
			PID:      off.u32(subPIDOffset).Load(),
			Start:    off.u64(subStartOffset).Load(),
			Position: off.u64(subPositionOffset).Load(),
			Evicted:  st == slotEvicted,
			Reserved: st == slotReserved,
			Joining:  st == slotClaiming,
		}
		if g := off.u32(subGroupOffset).Load(); g != 0 && int(g) <= r.maxGroups {
			s.Group = true
			if h := off.u64(subHoldOffset).Load(); h != noHold {
				s.Position, s.Holding = h, true
			} else if r.groupSlot(int(g) - 1).mapped() {
				s.Position, _ = r.groupCursor(r.groupSlot(int(g) - 1))
			}
		}
		out = append(out, s)
	}
	return out
}

// OldestClaim returns the position of the oldest claim a publisher has in
// flight (claimed, not yet committed or aborted: a loan, a TryClaim), and
// whether there is one. A subscriber whose position is there waits for
// that publisher, not for itself; the daemon spares it. Not every claim
// is announced: the SPSC fast path of Offer under PolicyBlock and
// PolicyReject commits before it announces, so its claims never show.
func (r *Ring) OldestClaim() (uint64, bool) {
	pos, who := r.inFlightMin(-1)
	return pos, who >= 0
}

// EvictSubscriber takes subscriber slot i away from its owner, which need
// not be dead: publishers stop waiting for it at once, and its owner's
// next Poll, Read or PollWait returns ErrEvicted. A reserved slot whose
// process has not joined is simply freed (its join then fails with
// ErrNoSlot); a slot being joined fails its join with ErrEvicted. A
// queue-group member evicted while it holds a record has that record
// counted as lost by its group (it may still deliver it if it runs again:
// counted, never silently lost). It reports false if the slot was free or
// evicted already. Safe from any process that may write the slot; meant
// for the daemon. Counted in Counters.Evicted.
func (r *Ring) EvictSubscriber(i int) bool {
	if i < 0 || i >= r.maxSubscribers || !r.subWritable(i) {
		return false
	}
	g := int(r.subSlot(i).u32(subGroupOffset).Load()) - 1
	return r.EvictSlot(i, g)
}

// EvictSlot is EvictSubscriber for a caller that knows which queue group
// slot i's owner joined (group, -1 for none): the daemon, which handed
// out both, and must not trust the group index the owner wrote in its own
// slot (a forged one would make it take a member from another group).
func (r *Ring) EvictSlot(i, group int) bool {
	if i < 0 || i >= r.maxSubscribers || !r.subWritable(i) {
		return false
	}
	off := r.subSlot(i)
	if off.u32(subStateOffset).CompareAndSwap(slotReserved, slotFree) {
		r.count(evictedOffset)
		r.notifySpace()
		return true
	}
	if off.u32(subStateOffset).CompareAndSwap(slotClaiming, slotEvicted) {
		// NewSubscriber's last step fails; it undoes its own group join.
		r.count(evictedOffset)
		r.notifySpace()
		return true
	}
	if !off.u32(subStateOffset).CompareAndSwap(slotActive, slotEvicted) {
		return false
	}
	r.subscribersChanged()
	if group >= 0 && group < r.maxGroups && r.groupWritable(group) {
		goff := r.groupSlot(group)
		if off.u64(subHoldOffset).Load() != noHold {
			goff.u64(groupLostOffset).Add(1) // a member's losses are its group's
		}
		r.leaveGroup(goff)
	}
	r.count(evictedOffset)
	r.notifySpace()
	r.notifyData() // a parked owner wakes and learns of it
	return true
}

// SlowestConsumer describes the consumer that holds a ring's publishers
// back the most (Ring.Slowest): the one at the lowest position.
type SlowestConsumer struct {
	// Slot is the subscriber slot index; for a queue group's cursor, a
	// member's slot (-1 if the group has no member left).
	Slot int
	// Group is the queue-group slot index, -1 for a broadcast subscriber.
	Group int
	// PID and Start identify the slot's owner as it wrote them (a pid and
	// its start time in clock ticks since boot); 0 if Slot is -1.
	PID   uint32
	Start uint64
	// Position is where it stands (bytes): a broadcast subscriber's next
	// position, a group's cursor, or the record a member holds.
	Position uint64
	// LagBytes and LagRecords are how far the tail is past Position, in
	// bytes and in records (sequence numbers, skips included).
	LagBytes, LagRecords uint64
	// Joining: the slot is reserved or being joined, not yet receiving.
	Joining bool
}

// Slowest finds the consumer at the lowest position among the subscriber
// slots this process has mapped and the queue groups, and reports false
// if there is none. Each field is read with its own atomic load: a
// snapshot for diagnostics (a publisher that timed out on back-pressure
// says who held it back), not for decisions. Safe from any process.
func (r *Ring) Slowest() (SlowestConsumer, bool) {
	best := SlowestConsumer{Slot: -1, Group: -1, Position: ^uint64(0)}
	found := false
	for i := 0; i < r.maxGroups; i++ {
		if !r.groupSlot(i).mapped() {
			continue
		}
		off := r.groupSlot(i)
		if off.u32(groupStateOffset).Load() == slotFree {
			continue
		}
		if p := off.u64(groupCursorOffset).Load(); p < best.Position {
			best, found = SlowestConsumer{Slot: -1, Group: i, Position: p}, true
		}
	}
	for i := 0; i < r.maxSubscribers; i++ {
		if !r.subSlot(i).mapped() {
			continue
		}
		off := r.subSlot(i)
		st := off.u32(subStateOffset).Load()
		if st == slotFree || st == slotEvicted {
			continue
		}
		g := int(off.u32(subGroupOffset).Load()) - 1
		p := off.u64(subPositionOffset).Load()
		if g >= 0 {
			if g == best.Group && best.Slot < 0 {
				best.Slot = i // a member of the slowest group so far
				best.PID, best.Start = off.u32(subPIDOffset).Load(), off.u64(subStartOffset).Load()
			}
			if p = off.u64(subHoldOffset).Load(); p == noHold {
				continue
			}
		}
		if p < best.Position {
			best, found = SlowestConsumer{Slot: i, Group: g, Position: p, Joining: st != slotActive}, true
			best.PID, best.Start = off.u32(subPIDOffset).Load(), off.u64(subStartOffset).Load()
		}
	}
	if best.Group >= 0 && best.Slot < 0 { // the slowest is a group seen before its members: find one
		for i := 0; i < r.maxSubscribers; i++ {
			off := r.subSlot(i)
			if r.subSlot(i).mapped() && off.u32(subStateOffset).Load() == slotActive && int(off.u32(subGroupOffset).Load()) == best.Group+1 {
				best.Slot, best.PID, best.Start = i, off.u32(subPIDOffset).Load(), off.u64(subStartOffset).Load()
				break
			}
		}
	}
	if !found {
		return SlowestConsumer{}, false
	}
	tail, seq := r.tail()
	if tail > best.Position {
		best.LagBytes = tail - best.Position
		if s, ok := r.sequenceAt(best.Position); ok && s <= seq {
			best.LagRecords = seq - s
		}
	}
	return best, true
}

// sequenceAt returns the sequence of the record at pos (past a wrap
// padding there), if the state word there names pos.
func (r *Ring) sequenceAt(pos uint64) (uint64, bool) {
	for hop := 0; hop < 2; hop++ {
		base := r.dataOffset + uintptr(pos&r.mask)
		st := r.m.u64(base).Load()
		if st&^stateMask != pos {
			return 0, false
		}
		switch st & stateMask {
		case statePadding:
			pos += r.capacity - pos&r.mask
			continue
		case stateCommitted, stateSkip, stateClaimed:
			return r.m.plainU64(base + recSequenceOffset), true
		}
		return 0, false
	}
	return 0, false
}

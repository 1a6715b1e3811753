package ringbuf

// Queue groups.
//
// Members of a group share one cursor pair (position, sequence) in the
// group's slot and take records from it by CAS128, one record per CAS, in
// the manner of a shared consumer sequence as in the LMAX Disruptor's
// WorkerPool (each worker claims the next sequence from a shared
// sequence), adapted to variable-length records: the cursor names a record
// by its position, and the pair's sequence lets lapped members count what
// the group lost. The group's state word packs the slot state (high 16
// bits) and the number of live members (low 16 bits), so that joining and
// the last member's leaving, which frees the group, are single CASes.

import "fmt"

const (
	groupActive   = slotActive << 16
	groupClaiming = slotClaiming << 16
)

// joinGroup joins the group with this id, creating it at the tail if no
// such group exists. It returns the group's slot index. With at >= 0 it
// joins or creates the group in slot at only (a slot the daemon chose,
// ReserveGroup), the only one a subscriber under kaelixd may write.
func (r *Ring) joinGroup(id uint32, at int) (int, error) {
	if at >= 0 {
		return r.joinGroupAt(id, at)
	}
	for attempt := 0; attempt < 1000; attempt++ {
		// Join an existing active group.
		for i := 0; i < r.maxGroups; i++ {
			if !r.groupWritable(i) {
				continue
			}
			off := r.groupSlot(i)
			w := off.u32(groupStateOffset)
			v := w.Load()
			if v>>16 != slotActive || off.u32(groupIDOffset).Load() != id || v&0xffff == 0xffff {
				continue
			}
			if w.CompareAndSwap(v, v+1) {
				if off.u32(groupIDOffset).Load() == id {
					return i, nil
				}
				r.leaveGroup(off) // the slot was reused for another group meanwhile
			}
		}
		// Create it in a free slot.
		created := -1
		for i := 0; i < r.maxGroups; i++ {
			if !r.groupWritable(i) {
				continue
			}
			off := r.groupSlot(i)
			w := off.u32(groupStateOffset)
			if w.Load() != 0 || !w.CompareAndSwap(0, groupClaiming|1) {
				continue
			}
			r.initGroup(off, id, 0, 0)
			created = i
			break
		}
		if created < 0 {
			return 0, fmt.Errorf("%w: all %d queue-group slots are in use", ErrNoSlot, r.maxGroups)
		}
		// Two members may create the same group at once: the lower slot wins.
		off := r.groupSlot(created)
		dup := false
		for j := 0; j < created; j++ {
			if !r.groupSlot(j).mapped() {
				continue
			}
			joff := r.groupSlot(j)
			if joff.u32(groupStateOffset).Load()>>16 != slotFree && joff.u32(groupIDOffset).Load() == id {
				dup = true
				break
			}
		}
		if dup {
			off.u32(groupStateOffset).Store(0)
			continue
		}
		off.u32(groupStateOffset).Store(groupActive | 1)
		return created, nil
	}
	return 0, fmt.Errorf("%w: could not join queue group %d under contention", ErrNoSlot, id)
}

// initGroup fills a group slot this process has just claimed
// (groupClaiming): id, the cursor pair at the tail, zero counts, and the
// process it was made for (0 if a member made it).
func (r *Ring) initGroup(off slotView, id, pid uint32, start uint64) {
	off.u32(groupIDOffset).Store(id)
	// While claiming, the cursor holds publishers at position 0.
	off.u64(groupCursorOffset).Store(0)
	pos, seq := r.tail()
	off.u64(groupCursorSeqOffset).Store(seq)
	off.u64(groupCursorOffset).Store(pos)
	off.u64(groupConsumedOffset).Store(0)
	// groupLostOffset stays: cumulative per slot, so the ring's lost count
	// (summed over slots) never goes back.
	off.u32(groupCreatorPIDOffset).Store(pid)
	off.u64(groupCreatorStartOffset).Store(start)
}

// joinGroupAt joins the group with this id in slot at, or creates it
// there if the slot is free.
func (r *Ring) joinGroupAt(id uint32, at int) (int, error) {
	if at >= r.maxGroups || !r.groupWritable(at) {
		return 0, fmt.Errorf("%w: queue-group slot %d is not one this process may take", ErrNoSlot, at)
	}
	off := r.groupSlot(at)
	w := off.u32(groupStateOffset)
	for attempt := 0; attempt < 1000; attempt++ {
		v := w.Load()
		switch {
		case v == 0:
			if w.CompareAndSwap(0, groupClaiming|1) {
				r.initGroup(off, id, 0, 0)
				w.Store(groupActive | 1)
				return at, nil
			}
		case v>>16 == slotActive && off.u32(groupIDOffset).Load() == id && v&0xffff != 0xffff:
			if w.CompareAndSwap(v, v+1) {
				return at, nil
			}
		case v>>16 == slotClaiming:
			// someone is creating it: look again
		default:
			return 0, fmt.Errorf("%w: queue-group slot %d holds another group", ErrNoSlot, at)
		}
	}
	return 0, fmt.Errorf("%w: could not join queue group %d under contention", ErrNoSlot, id)
}

// FindGroup returns the slot index of the active queue group with this
// id, or -1 if there is none this process may write.
func (r *Ring) FindGroup(id uint32) int {
	for i := 0; i < r.maxGroups; i++ {
		off := r.groupSlot(i)
		if r.groupWritable(i) && off.u32(groupStateOffset).Load()>>16 == slotActive && off.u32(groupIDOffset).Load() == id {
			return i
		}
	}
	return -1
}

// ClaimGroupSlot makes queue group id in group slot i, if the slot is
// free: one CAS from free. The group has no members and its cursor at the
// tail; it is made for the process o, which joins it with
// SubscriberOptions.GroupSlot = i+1. A group with no members holds
// publishers back at its cursor, as a reserved subscriber slot does;
// ReapDead frees it once o is dead, CancelGroup sooner, and so does the
// last member's leaving. It reports false, changing nothing, if slot i is
// out of range, not writable or not free. It does not look for an
// existing group of that id (FindGroup). For the daemon.
func (r *Ring) ClaimGroupSlot(i int, id uint32, o Owner) bool {
	if i < 0 || i >= r.maxGroups || !r.groupWritable(i) {
		return false
	}
	off := r.groupSlot(i)
	w := off.u32(groupStateOffset)
	if w.Load() != 0 || !w.CompareAndSwap(0, groupClaiming) {
		return false
	}
	r.initGroup(off, id, o.PID, o.Start)
	w.Store(groupActive) // no members yet
	return true
}

// ReserveGroup finds the queue group with this id (FindGroup) or makes it
// in the first free group slot (ClaimGroupSlot), freeing dead processes'
// slots first if none is free, for the process identified by pid and
// start. It returns the group's slot index, and whether this call made
// the group. Errors: ErrNoSlot (every group slot in use). A convenience
// for a single process that maps every slot (tests, tools); kaelixd
// chooses the slot itself.
func (r *Ring) ReserveGroup(id uint32, pid uint32, start uint64) (int, bool, error) {
	for pass := 0; pass < 2; pass++ {
		if i := r.FindGroup(id); i >= 0 {
			return i, false, nil
		}
		for i := 0; i < r.maxGroups; i++ {
			if r.ClaimGroupSlot(i, id, Owner{pid, start}) {
				return i, true, nil
			}
		}
		if pass == 0 {
			r.ReapDead()
		}
	}
	return -1, false, fmt.Errorf("%w: all %d queue-group slots are in use", ErrNoSlot, r.maxGroups)
}

// CancelGroup frees queue-group slot i if its group still has no member
// (one that ReserveGroup made for an attach that then failed). It reports
// whether it did.
func (r *Ring) CancelGroup(i int) bool {
	if i < 0 || i >= r.maxGroups || !r.groupWritable(i) {
		return false
	}
	return r.groupSlot(i).u32(groupStateOffset).CompareAndSwap(groupActive, 0)
}

// GroupSlot describes one queue-group slot that is not free
// (GroupSlots).
type GroupSlot struct {
	Index   int    // group slot index
	ID      uint32 // the group's id
	Members int    // members joined; 0: made (ClaimGroupSlot) for a process that has not joined yet
	Creator Owner  // the process the group was made for (zero for a group its first member made)
}

// GroupSlots lists the queue-group slots that are active (not free, not
// being made), of those this process maps. Each field is read with its
// own atomic load. Safe from any process with the ring mapped.
func (r *Ring) GroupSlots() []GroupSlot {
	var out []GroupSlot
	for i := 0; i < r.maxGroups; i++ {
		off := r.groupSlot(i)
		if !off.mapped() {
			continue
		}
		v := off.u32(groupStateOffset).Load()
		if v>>16 != slotActive {
			continue
		}
		out = append(out, GroupSlot{Index: i, ID: off.u32(groupIDOffset).Load(), Members: int(v & 0xffff), Creator: r.groupCreator(i)})
	}
	return out
}

// reapGroups frees queue groups that no member ever joined and whose
// process is dead. It returns how many.
func (r *Ring) reapGroups(fn func(Owner)) int {
	n := 0
	for i := 0; i < r.maxGroups; i++ {
		if !r.groupWritable(i) {
			continue
		}
		off := r.groupSlot(i)
		w := off.u32(groupStateOffset)
		if w.Load() != groupActive { // active with no members
			continue
		}
		o := r.groupCreator(i)
		if o.PID == 0 || alive(o.PID, o.Start) {
			continue
		}
		if reapHook != nil {
			reapHook(true, i)
		}
		// Freed only while made for o: the liveness check reads /proc,
		// and meanwhile the group may have been freed and made again (the
		// same state word, groupActive) for a live process. The creator
		// lies outside the state's 16 bytes, so it is checked again right
		// before the CAS; what remains is the window between the two, in
		// which the group would have to be freed and made again.
		if r.groupCreator(i) == o && w.CompareAndSwap(groupActive, 0) {
			n++
			if fn != nil {
				fn(o)
			}
		}
	}
	return n
}

// groupCreator returns the process queue-group slot i was made for.
func (r *Ring) groupCreator(i int) Owner {
	v := r.groupSlot(i)
	return Owner{v.u32(groupCreatorPIDOffset).Load(), v.u64(groupCreatorStartOffset).Load()}
}

// leaveGroup drops one member; the last one frees the group.
func (r *Ring) leaveGroup(off slotView) {
	w := off.u32(groupStateOffset)
	for {
		v := w.Load()
		if v&0xffff == 0 {
			return
		}
		next := v - 1
		if next&0xffff == 0 {
			next = 0
		}
		if w.CompareAndSwap(v, next) {
			return
		}
	}
}

// nextGroup takes the next record from the group's cursor. room as in
// next: a record longer than room is left for another member.
func (s *Subscriber) nextGroup(room int) (bool, error) {
	r := s.r
	for steps := 0; steps < 1<<16; steps++ {
		pos, seq := r.groupCursor(s.gv)
		if pos&(RecordAlignment-1) != 0 {
			return false, corrupt(pos, "group cursor", pos, "positions are 8-byte aligned")
		}
		off := pos & r.mask
		base := r.dataOffset + uintptr(off)
		st := r.m.u64(base).Load()
		state := st & stateMask
		if st&^stateMask != pos {
			state = stateUnwritten
		}
		if r.lappedAt(pos) {
			if s.resyncGroup(pos, seq) {
				continue
			}
			return false, nil
		}
		// moved reports whether another member took the record meanwhile,
		// in which case what we read may belong to a newer lap.
		moved := func() bool { p, q := r.groupCursor(s.gv); return p != pos || q != seq }
		switch state {
		case stateUnwritten, stateClaimed:
			return false, nil
		case statePadding:
			s.gv.cas128(groupCursorOffset, pos, seq, pos+r.capacity-off, seq)
			continue
		case stateCommitted, stateSkip:
		default:
			if moved() {
				continue
			}
			return false, corrupt(pos, "state", state, "unknown record state")
		}
		n := uint64(r.m.plainU32(base + recLengthOffset))
		if state == stateCommitted && n > uint64(r.maxPayload) || off+spanOf(n) > r.capacity {
			if r.lappedAt(pos) {
				if s.resyncGroup(pos, seq) {
					continue
				}
				return false, nil
			}
			if moved() {
				continue
			}
			return false, corrupt(pos, "length", n, fmt.Sprintf("payload must be at most %d bytes and end before the buffer end", r.maxPayload))
		}
		rec := Record{
			Position:    pos,
			Sequence:    r.m.plainU64(base + recSequenceOffset),
			TimestampNS: int64(r.m.plainU64(base + recTimestampOffset)),
			Type:        r.m.plainU16(base + recTypeOffset),
			Publisher:   r.m.plainU16(base + recPublisherOffset),
		}
		next := pos + spanOf(n)
		if state == stateSkip {
			s.gv.cas128(groupCursorOffset, pos, seq, next, seq+max(uint64(rec.Type), 1))
			continue
		}
		if room >= 0 && int(n) > room {
			if moved() {
				continue
			}
			return false, ErrShortBuffer
		}
		start := base + RecordHeaderLength
		if r.policy == PolicyDropOldest {
			copy(s.scratch[:n], r.m.b[start:start+uintptr(n)])
			if r.lappedAt(pos) {
				if s.resyncGroup(pos, seq) {
					continue
				}
				return false, nil
			}
			// Hold it as under block, so that a member that dies before
			// done() has the record counted lost (publishers ignore
			// consumer positions under drop-oldest).
			hold := s.sv.u64(subHoldOffset)
			hold.Store(pos)
			if !s.gv.cas128(groupCursorOffset, pos, seq, next, seq+1) {
				hold.Store(noHold)
				continue
			}
			s.holding = true
			rec.Payload = s.scratch[:n:n]
		} else {
			hold := s.sv.u64(subHoldOffset)
			hold.Store(pos) // publishers now count pos as a consumer position
			if !s.gv.cas128(groupCursorOffset, pos, seq, next, seq+1) {
				hold.Store(noHold)
				continue
			}
			s.holding = true
			rec.Payload = r.m.b[start : start+uintptr(n) : start+uintptr(n)]
		}
		s.gv.u64(groupConsumedOffset).Add(1)
		s.rec = rec
		return true, nil
	}
	return false, nil
}

// resyncGroup moves a lapped group cursor to where a lapped reader
// resumes (resumePoint: half a ring behind the tail) and counts what the
// group lost there; a lap that loses no record is not counted. It reports
// whether the cursor moved (by this member or another); false means no
// intact record can be proven now, and the caller reports nothing to read.
func (s *Subscriber) resyncGroup(pos, seq uint64) bool {
	r := s.r
	q, qseq, ok := r.resumePoint(r.TailPosition())
	if !ok || q <= pos {
		p, _ := r.groupCursor(s.gv)
		return p != pos
	}
	if s.gv.cas128(groupCursorOffset, pos, seq, q, qseq) {
		if qseq > seq {
			lost := qseq - seq
			s.gv.u64(groupLostOffset).Add(lost)
			s.lost += lost
			s.count(subLappedOffset)
			s.lapped = true
		}
	}
	return true
}

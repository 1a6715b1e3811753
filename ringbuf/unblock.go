package ringbuf

// Recovery from dead processes.
//
// A publisher that dies between claim and commit leaves a record whose
// state word is position|stateClaimed, or (if it died between the tail CAS
// and its header store) whatever the previous lap left there. Its intent
// stays set in its slot, which keeps every publisher from lapping the
// claim. A consumer that waits at that position past the ring's unblock
// timeout calls findDeadClaim, which finds the claim's owner from the
// record header or from the intent, and, only if every candidate owner is
// dead, steps over the claim in its own cursor (it never writes the data
// area, which subscribers may map read-only) and counts it as unblocked.
// When a dead publisher's slot is reaped (by the daemon, or by a publisher
// held back by its claim), tryUnblock writes a skip (or a padding record,
// if the claim runs to the end of the data area) over what is left of the
// claim, and only then clears the intent. A live publisher, however slow or stopped, is
// never overwritten: the consumer reports ErrStalled instead.
//
// A subscriber slot whose owner died is freed; a queue-group member that
// died holding a record has that record counted as lost by its group.

import "fmt"

// publisherAlive reports whether publisher slot i has a live owner.
func (r *Ring) publisherAlive(i int) bool {
	off := r.publisherSlotOffset(i)
	if r.m.u32(off+pubStateOffset).Load() == slotFree {
		return false
	}
	return alive(r.m.u32(off+pubPIDOffset).Load(), r.m.u64(off+pubStartOffset).Load())
}

type intent struct{ pos, length, seq, count uint64 }

func (r *Ring) intentOf(i int) intent {
	off := r.publisherSlotOffset(i)
	return intent{
		pos:    r.m.u64(off + pubIntentPosOffset).Load(),
		length: r.m.u64(off + pubIntentLenOffset).Load(),
		seq:    r.m.u64(off + pubIntentSeqOffset).Load(),
		count:  r.m.u64(off + pubIntentCountOffset).Load(),
	}
}

// deadClaim is what tryUnblock found at a stuck position.
type deadClaim struct {
	readable bool   // the record there is committed, padding or a skip already
	st       uint64 // the state word found at the position
	span     uint64 // bytes to step over: to the end of the dead claim
	first    uint64 // sequence of the first record stepped over
	seqs     uint64 // sequence numbers stepped over (0: padding to the buffer end)
	padding  bool   // the rest of the claim is wrap padding
	length   uint32 // the header's payload length, when the header was written
	tagged   bool   // the claimant wrote its header
}

// findDeadClaim examines a claim stuck at pos and, if its claimant is
// dead, says what to step over. It only reads the ring, so a subscriber
// with a read-only data area can use it. ok is false while the claimant is
// alive or cannot be identified; a *CorruptError if the claim's header or
// the records before it are invalid.
func (r *Ring) findDeadClaim(pos uint64) (d deadClaim, ok bool, err error) {
	if tail := r.TailPosition(); pos >= tail || tail > pos+r.capacity {
		return d, false, nil // nothing claimed there yet, or lapped: the space is a newer claim's
	}
	base := r.dataOffset + uintptr(pos&r.mask)
	d.st = r.m.u64(base).Load()
	d.tagged = d.st&^stateMask == pos
	if d.tagged && d.st&stateMask != stateClaimed {
		d.readable = true
		return d, true, nil
	}
	// Candidates: publishers whose claim in flight covers pos. A claim that
	// a live candidate may own is never stepped over.
	var in intent
	found := false
	for i := 0; i < r.maxPublishers; i++ {
		c := r.intentOf(i)
		if c.length == 0 || pos < c.pos || pos >= c.pos+c.length {
			continue
		}
		if r.publisherAlive(i) {
			return d, false, nil
		}
		if found && c != in {
			return d, false, nil // two dead candidates disagree: cannot tell
		}
		in, found = c, true
	}
	if d.tagged {
		// The claimant wrote its header: trust its publisher index and length.
		pub := int(r.m.plainU16(base + recPublisherOffset))
		if pub >= r.maxPublishers {
			return d, false, &CorruptError{Position: pos, Field: "publisher", Value: uint64(pub), Detail: fmt.Sprintf("publisher index must be below %d", r.maxPublishers)}
		}
		if r.publisherAlive(pub) {
			return d, false, nil
		}
		n := uint64(r.m.plainU32(base + recLengthOffset))
		if n > uint64(r.maxPayload) || pos&r.mask+spanOf(n) > r.capacity {
			return d, false, &CorruptError{Position: pos, Field: "length", Value: n, Detail: "claimed record does not fit the ring"}
		}
		d.length, d.span, d.seqs = uint32(n), spanOf(n), 1
		d.first = r.m.plainU64(base + recSequenceOffset)
		return d, true, nil
	}
	if !found {
		return d, false, nil
	}
	// The claimant died before writing a header at pos. Walk the claim from
	// its start to count the records already laid down before pos.
	seq, q := in.seq, in.pos
	for q < pos {
		qb := r.dataOffset + uintptr(q&r.mask)
		qs := r.m.u64(qb).Load()
		if qs&^stateMask != q {
			return d, false, &CorruptError{Position: q, Field: "state", Value: qs, Detail: "record inside a dead publisher's claim is missing"}
		}
		n := uint64(r.m.plainU32(qb + recLengthOffset))
		if n > uint64(r.maxPayload) {
			return d, false, &CorruptError{Position: q, Field: "length", Value: n, Detail: "record inside a dead publisher's claim is too long"}
		}
		q += spanOf(n)
		seq++
	}
	if q != pos {
		return d, false, &CorruptError{Position: pos, Field: "position", Value: q, Detail: "dead publisher's claim does not have a record boundary here"}
	}
	d.span = in.pos + in.length - pos
	d.first = seq
	if in.count == 0 {
		d.padding = true
	} else {
		d.seqs = in.count - (seq - in.seq)
	}
	return d, true, nil
}

// tryUnblock resolves a claim stuck at pos whose publisher is dead, by
// writing a skip (or padding) record over it in the data area. It reports
// whether the record at pos is now readable. It returns false, nil while
// the claimant is alive or cannot be identified, and a *CorruptError if
// the claim's header is invalid. Only processes with a writable data area
// call it (publishers, the daemon); subscribers step over dead claims
// themselves (Subscriber.skipDeadClaim).
func (r *Ring) tryUnblock(pos uint64) (bool, error) {
	d, ok, err := r.findDeadClaim(pos)
	if !ok || err != nil || d.readable {
		return ok, err
	}
	base := r.dataOffset + uintptr(pos&r.mask)
	var next uint64
	switch {
	case d.tagged:
		r.m.setU16(base+recTypeOffset, 1)
		next = pos | stateSkip
	case d.padding:
		next = pos | statePadding
	default:
		r.m.setU32(base+recLengthOffset, uint32(d.span-RecordHeaderLength))
		r.m.setU16(base+recTypeOffset, uint16(d.seqs))
		r.m.setU16(base+recPublisherOffset, 0)
		r.m.setU64(base+recSequenceOffset, d.first)
		r.m.setU64(base+recTimestampOffset, 0)
		next = pos | stateSkip
	}
	if r.m.u64(base).CompareAndSwap(d.st, next) {
		// Count it only if a consumer still had to pass pos: consumers
		// that stepped over the claim themselves counted it already.
		if min, any := r.consumerMin(); any && min <= pos {
			r.count(unblockedOffset)
		}
		r.notifyData()
	}
	return true, nil
}

// resolveClaim unblocks every uncommitted record of publisher slot i's
// last claim. The slot's owner must be dead. Its intent, still set, keeps
// every publisher from lapping the claim meanwhile, so the header writes
// of tryUnblock cannot race with a newer claim of the same space.
func (r *Ring) resolveClaim(i int) {
	in := r.intentOf(i)
	if in.length == 0 {
		return
	}
	for pos, steps := in.pos, 0; pos < in.pos+in.length && steps < 1<<16; steps++ {
		base := r.dataOffset + uintptr(pos&r.mask)
		st := r.m.u64(base).Load()
		if st&^stateMask != pos || st&stateMask == stateClaimed {
			if ok, err := r.tryUnblock(pos); !ok || err != nil {
				return
			}
			st = r.m.u64(base).Load()
		}
		switch st & stateMask {
		case statePadding:
			pos += r.capacity - pos&r.mask
		case stateCommitted, stateSkip:
			n := uint64(r.m.plainU32(base + recLengthOffset))
			if st&stateMask == stateCommitted && n > uint64(r.maxPayload) || pos&r.mask+spanOf(n) > r.capacity {
				return
			}
			pos += spanOf(n)
		default:
			return
		}
	}
}

// publisherOwner returns the identity written in publisher slot i.
func (r *Ring) publisherOwner(i int) Owner {
	off := r.publisherSlotOffset(i)
	return Owner{r.m.u32(off + pubPIDOffset).Load(), r.m.u64(off + pubStartOffset).Load()}
}

// reapPublisher frees publisher slot i, whose owner dead was found dead,
// after resolving its last claim. It frees the slot only while dead still
// owns it: the liveness check (a /proc read, milliseconds) and this call
// are not atomic, and meanwhile the slot may have been reaped by another
// process and taken by a live successor (a publisher relaunched at once),
// whose claim and slot must not be touched. The identity is checked again
// right before the state CAS; what remains is the window between that
// check and the CAS (a few instructions), in which a successor would have
// to reap, claim and activate the slot.
func (r *Ring) reapPublisher(i int, dead Owner) bool {
	off := r.publisherSlotOffset(i)
	st := r.m.u32(off + pubStateOffset)
	if st.Load() != slotActive || r.publisherOwner(i) != dead {
		return false
	}
	r.resolveClaim(i)
	// The claim no longer needs protecting from being lapped.
	r.m.u64(off + pubIntentLenOffset).Store(0)
	if r.publisherOwner(i) != dead {
		return false
	}
	if st.CompareAndSwap(slotActive, slotFree) {
		r.count(reapedOffset)
		return true
	}
	return false
}

// ReapDead frees the slots of dead publishers (resolving their claims)
// and dead subscribers (a dead queue-group member's held record is counted
// as lost). It returns how many slots it freed. Safe from any process and
// goroutine; the daemon calls it when it learns a client died, and a
// publisher blocked past the unblock timeout calls it itself. On a ring
// attached with a read-only data area it frees subscriber slots only. It
// reads /proc, so it is never on a hot path.
func (r *Ring) ReapDead() int { return r.ReapDeadOwners(nil) }

// Owner names the process that owned a slot: its pid and its start time
// in clock ticks since boot (field 22 of /proc/PID/stat), which together
// never name two processes.
type Owner struct {
	PID   uint32
	Start uint64
}

// ReapDeadOwners is ReapDead that also calls fn (if not nil) once per slot
// it freed, with that slot's dead owner (for a queue group reserved for a
// process that never joined it, the process it was made for). A process
// that held several slots is reported once per slot; a slot freed by
// someone else meanwhile is not reported. fn runs synchronously, before
// ReapDeadOwners returns, and must not call into the ring. This is how
// kaelixd counts each dead client exactly once, whichever client's death
// made it reap.
func (r *Ring) ReapDeadOwners(fn func(Owner)) int {
	n := 0
	for i := 0; i < r.maxPublishers && !r.readOnlyData; i++ {
		off := r.publisherSlotOffset(i)
		if r.m.u32(off+pubStateOffset).Load() != slotActive {
			continue
		}
		if o := r.publisherOwner(i); !alive(o.PID, o.Start) {
			if r.reapPublisher(i, o) {
				n++
				if fn != nil {
					fn(o)
				}
			}
		}
	}
	n += r.reapSubscribers(fn)
	n += r.reapGroups(fn)
	if n > 0 {
		r.notifySpace()
	}
	return n
}

// reapSubscribers frees the slots of dead subscribers. It writes only
// their slot areas (and the consumer area's subscriber epoch).
func (r *Ring) reapSubscribers(fn func(Owner)) int {
	n := 0
	for i := 0; i < r.maxSubscribers; i++ {
		if !r.subWritable(i) {
			continue
		}
		off := r.subSlot(i)
		// A slot being joined counts too: its joiner's identity is in it
		// before the join began (reserved for it, or written before its
		// claim by a scanning joiner, NewSubscriber), so a dead owner
		// there is the joiner, not a previous owner.
		if st := off.u32(subStateOffset).Load(); st != slotActive && st != slotEvicted && st != slotReserved && st != slotClaiming {
			continue
		}
		o := r.subscriberOwner(i)
		if alive(o.PID, o.Start) {
			continue
		}
		if reapHook != nil {
			reapHook(false, i)
		}
		// The slot is freed only while o still owns it: the liveness check
		// reads /proc (microseconds, or a preemption's length), and
		// meanwhile the daemon may have freed the slot, reserved it for a
		// live subscriber and seen it join.
		if r.releaseSubscriber(i, o, true) {
			if !r.readOnlyData {
				r.count(reapedOffset)
			}
			n++
			if fn != nil {
				fn(o)
			}
		}
	}
	return n
}

// reapHook, if set (tests only), runs in reapSubscribers and reapGroups
// between finding a slot's owner dead and freeing the slot: where another
// process may take the slot meanwhile.
var reapHook func(group bool, i int)

// subscriberOwner returns the identity written in subscriber slot i.
func (r *Ring) subscriberOwner(i int) Owner {
	v := r.subSlot(i)
	return Owner{v.u32(subPIDOffset).Load(), v.u64(subStartOffset).Load()}
}

// The state, pid and start-time words of a subscriber slot are its first
// 16 bytes (16-byte aligned, as slots are 128-byte aligned), so that one
// CAS128 checks the owner and changes the state together (casSubState).
var _ = [1]struct{}{}[subStateOffset%16+(subPIDOffset-subStateOffset-4)+(subStartOffset-subStateOffset-8)]

// casSubState moves subscriber slot i from state from to state to if o
// owns it, in one atomic step: a slot that meanwhile went to another
// owner, even back to the same state (a new reservation, a new join), is
// left alone. It reports whether it did.
func (r *Ring) casSubState(i int, from, to uint32, o Owner) bool {
	id := uint64(o.PID) << 32
	return r.subSlot(i).cas128(subStateOffset, uint64(from)|id, o.Start, uint64(to)|id, o.Start)
}

// claimFree moves subscriber slot i from free (in its last owner's name)
// to claiming in o's name, in one atomic step. It reports whether it did.
func (r *Ring) claimFree(i int, o Owner) bool {
	last := r.subscriberOwner(i)
	return r.subSlot(i).cas128(subStateOffset, uint64(slotFree)|uint64(last.PID)<<32, last.Start,
		uint64(slotClaiming)|uint64(o.PID)<<32, o.Start)
}

// releaseSubscriber frees subscriber slot i if o still owns it (see
// casSubState). dead says its owner died, so a record it held for its
// queue group is counted as lost; otherwise the caller is the Subscriber
// that joined the slot, closing it (only an active or evicted slot is
// its). Whoever moves the slot out of slotActive (this, or
// EvictSubscriber) leaves its group.
func (r *Ring) releaseSubscriber(i int, o Owner, dead bool) bool {
	off := r.subSlot(i)
	switch v := off.u32(subStateOffset).Load(); v {
	case slotEvicted:
		return r.casSubState(i, v, slotFree, o)
	case slotReserved, slotClaiming:
		if !dead {
			// A Subscriber closing: it joined, so its slot is active or
			// evicted; reserved or being joined, it is a later
			// reservation for this process, not this Subscriber's.
			return false
		}
		if v == slotReserved {
			return r.casSubState(i, v, slotFree, o)
		}
		// A joiner that died mid-join. Its group field may still be a
		// previous owner's: no group is left on its word (under kaelixd
		// the daemon leaves the group it recorded, ReleaseSlot).
		return r.casSubState(i, slotClaiming, slotFree, o)
	case slotActive:
	default:
		return false
	}
	// Read before the CAS, while o's: after it the slot may be anyone's.
	g := off.u32(subGroupOffset).Load()
	inGroup := g != 0 && int(g) <= r.maxGroups && r.groupWritable(int(g)-1)
	held := off.u64(subHoldOffset).Load() != noHold
	if !r.casSubState(i, slotActive, slotFree, o) {
		return r.casSubState(i, slotEvicted, slotFree, o) // evicted meanwhile: the evictor left the group
	}
	r.subscribersChanged()
	if inGroup {
		if dead && held {
			r.groupSlot(int(g) - 1).u64(groupLostOffset).Add(1) // a member's losses are its group's
		}
		r.leaveGroup(r.groupSlot(int(g) - 1))
	}
	return true
}

package ringbuf

// Subscriber slot reservation and release: the mechanism. A subscriber
// maps its own slot's area and no other, so it cannot scan for a free
// slot it may write: the daemon, which maps every slot writable, claims
// one for it (ClaimSubscriberSlot), and the subscriber joins with
// SubscriberOptions.Slot. Which slot to claim, which to keep from a new
// owner, when to cancel and whom to evict is the daemon's policy (its
// slot ledger), not the ring's. Code that visits every subscriber slot
// skips the ones this process has not mapped (slotView.mapped) and writes
// only the ones it may (subWritable).

import "fmt"

// ClaimSubscriberSlot reserves subscriber slot i for the process o (pid
// and start time in clock ticks since boot, field 22 of /proc/PID/stat),
// which joins it with SubscriberOptions.Slot = i+1, if the slot is free:
// one CAS (state and owner together) from free. From the reservation on, the slot holds publishers
// back at the slowest settled consumer's position (the tail if none), so
// a subscriber that joins FromOldest misses nothing retained since. A
// reservation whose process dies is freed by ReapDead; CancelClaim frees
// it sooner. It reports false, changing nothing, if slot i is out of
// range, not writable by this process or not free. For the daemon (it
// maps every slot writable); safe against concurrent claims.
func (r *Ring) ClaimSubscriberSlot(i int, o Owner) bool {
	if i < 0 || i >= r.maxSubscribers || !r.subWritable(i) {
		return false
	}
	off := r.subSlot(i)
	st := off.u32(subStateOffset)
	// The slot becomes claiming and the new owner's in one step: a reaper
	// that finds it claiming in the old owner's name (reapSubscribers
	// counts claiming slots as joins) would free it under the reservation.
	if st.Load() != slotFree || !r.claimFree(i, o) {
		return false
	}
	off.u64(subHoldOffset).Store(noHold)
	off.u32(subGroupOffset).Store(0)
	off.u64(subPositionOffset).Store(0) // holds every publisher while we settle
	// consumed, consumed bytes and lost stay: they are cumulative
	// per slot, so the counters summed over slots never go back.
	pos := r.TailPosition()
	if r.policy != PolicyDropOldest {
		if min, any := r.settledMinExcept(i); any && min < pos {
			pos = min
		}
	}
	off.u64(subPositionOffset).Store(pos)
	st.Store(slotReserved)
	return true
}

// ReserveSubscriberSlot claims the first free subscriber slot
// (ClaimSubscriberSlot), freeing the slots of dead subscribers first if
// none is free, for the process identified by pid and start. It returns
// the slot's index. Errors: ErrNoSlot. A convenience for a single process
// that maps every slot (tests, tools); kaelixd chooses the slot itself.
func (r *Ring) ReserveSubscriberSlot(pid uint32, start uint64) (int, error) {
	for pass := 0; pass < 2; pass++ {
		for i := 0; i < r.maxSubscribers; i++ {
			if r.ClaimSubscriberSlot(i, Owner{pid, start}) {
				return i, nil
			}
		}
		if pass == 0 {
			r.reapSubscribers(nil)
		}
	}
	return -1, fmt.Errorf("%w: all %d subscriber slots are held by live processes", ErrNoSlot, r.maxSubscribers)
}

// ReleaseSlot frees subscriber slot i whatever state its owner left it
// in, for the daemon, once the process it reserved the slot for is dead:
// the slot's own pid and group fields are the owner's to write and prove
// nothing (a forged live pid would keep it forever). group is the queue
// group slot the daemon gave that process (-1: none); a record it held is
// counted lost. It reports whether the slot was not free. The daemon's
// record is not stale: it reserves every slot itself, and does so under
// the same lock as it releases, so the slot it releases is the one it
// reserved for that process; the caller must be sure the process is dead
// (kaelixd: its pidfd fired, or /proc says so).
func (r *Ring) ReleaseSlot(i, group int) bool {
	if i < 0 || i >= r.maxSubscribers || !r.subWritable(i) {
		return false
	}
	off := r.subSlot(i)
	st := off.u32(subStateOffset)
	for {
		v := st.Load()
		switch v {
		case slotFree:
			return false
		case slotEvicted, slotReserved:
			if st.CompareAndSwap(v, slotFree) { // an evicted slot left its group then
				r.count(reapedOffset)
				r.notifySpace()
				return true
			}
		default:
			held := off.u64(subHoldOffset).Load() != noHold
			if !st.CompareAndSwap(v, slotFree) {
				continue
			}
			r.subscribersChanged()
			if group >= 0 && group < r.maxGroups && r.groupWritable(group) {
				goff := r.groupSlot(group)
				if held {
					goff.u64(groupLostOffset).Add(1)
				}
				r.leaveGroup(goff)
			}
			r.count(reapedOffset)
			r.notifySpace()
			return true
		}
	}
}

// CancelClaim frees subscriber slot i if it is still reserved for o (its
// process never joined), not another process's reservation made for the
// same slot after o's was cancelled, or joined and freed. It reports
// whether it did.
func (r *Ring) CancelClaim(i int, o Owner) bool {
	if i < 0 || i >= r.maxSubscribers || !r.subWritable(i) {
		return false
	}
	return r.casSubState(i, slotReserved, slotFree, o) // one CAS over state and owner
}

// CancelReservation frees subscriber slot i if it is still reserved (its
// process never joined). It reports whether it did.
func (r *Ring) CancelReservation(i int) bool {
	if i < 0 || i >= r.maxSubscribers || !r.subWritable(i) {
		return false
	}
	return r.subSlot(i).u32(subStateOffset).CompareAndSwap(slotReserved, slotFree)
}

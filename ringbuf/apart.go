package ringbuf

// Subscriber slot reservation and release, for the daemon. A subscriber
// maps its own slot's area and no other, so it cannot scan for a free
// slot it may write: the daemon, which maps every slot writable, reserves
// one for it (ReserveSubscriberSlot), and the subscriber joins with
// SubscriberOptions.Slot. Code that visits every subscriber slot skips the
// ones this process has not mapped (slotView.mapped) and writes only the
// ones it may (subWritable).

import "fmt"

// ReserveSubscriberSlot takes a free subscriber slot (freeing the slots of
// dead subscribers first if none is free) for the process identified by
// pid and start (its start time in clock ticks since boot, field 22 of
// /proc/PID/stat), which joins it with SubscriberOptions.Slot = index+1.
// From the reservation on, the slot holds publishers back at the slowest
// settled consumer's position (the tail if none), so a subscriber that
// joins FromOldest misses nothing retained since. A reservation whose
// process dies is freed by ReapDead; CancelReservation frees it sooner.
// It returns the slot's index. Errors: ErrNoSlot. For the daemon: it
// needs every slot writable.
func (r *Ring) ReserveSubscriberSlot(pid uint32, start uint64) (int, error) {
	return r.ReserveSubscriberSlotAvoiding(pid, start, nil)
}

// ReserveSubscriberSlotAvoiding is ReserveSubscriberSlot skipping the
// free slots for which avoid reports true: the daemon's way to keep a
// slot from a new owner while a process that was handed it before (and
// may still map it) lives.
func (r *Ring) ReserveSubscriberSlotAvoiding(pid uint32, start uint64, avoid func(int) bool) (int, error) {
	for pass := 0; pass < 2; pass++ {
		for i := 0; i < r.maxSubscribers; i++ {
			if !r.subWritable(i) || avoid != nil && avoid(i) {
				continue
			}
			off := r.subSlot(i)
			st := off.u32(subStateOffset)
			// The slot becomes claiming and the new owner's in one step: a
			// reaper that finds it claiming in the old owner's name
			// (reapSubscribers counts claiming slots as joins) would free
			// it under the reservation.
			if st.Load() != slotFree || !r.claimFree(i, Owner{pid, start}) {
				continue
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
			return i, nil
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

// CancelReservationOf is CancelReservation only if the reservation is
// still the one made for pid and start (not another process's, made for
// the same slot after this one was cancelled or joined and freed).
func (r *Ring) CancelReservationOf(i int, pid uint32, start uint64) bool {
	if i < 0 || i >= r.maxSubscribers || !r.subWritable(i) {
		return false
	}
	return r.casSubState(i, slotReserved, slotFree, Owner{pid, start}) // one CAS over state and owner
}

// CancelReservation frees subscriber slot i if it is still reserved (its
// process never joined). It reports whether it did.
func (r *Ring) CancelReservation(i int) bool {
	if i < 0 || i >= r.maxSubscribers || !r.subWritable(i) {
		return false
	}
	return r.subSlot(i).u32(subStateOffset).CompareAndSwap(slotReserved, slotFree)
}

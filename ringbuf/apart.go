package ringbuf

// Subscriber slots apart.
//
// In the consumer area every consumer of a ring can write every
// subscriber's slot. A ring made by CreateApart keeps each subscriber slot
// in an area of its own instead (a separate file, in the daemon's use), so
// that a process can be given its own slot to write and nobody else's:
// the kernel, not the ring, then confines what a subscriber writes to its
// cursor (and to the shared doorbells, counters and queue-group cursors
// that stay in the consumer area). Publishers and the daemon map every
// slot; a subscriber maps its own, and may be given no other.
//
// In code, slot i of such a ring is addressed by slotArea | i<<16 | field,
// which mem.ptr resolves through a per-process table of the slots'
// addresses. Code that visits every subscriber slot skips the ones this
// process has not mapped (subMapped) and writes only the ones it may
// (subWritable). Since a subscriber cannot scan for a free slot it may
// write, the daemon reserves one for it (ReserveSubscriberSlot), and the
// subscriber joins with SubscriberOptions.Slot.

import (
	"fmt"
	"unsafe"
)

// SlotBytes is the size of one subscriber slot's area in a ring made by
// CreateApart; each area must be at least this long and 128-byte aligned.
const SlotBytes = slotLength

// SlotArea is one subscriber slot's area as this process maps it.
type SlotArea struct {
	Mem      []byte // nil: not mapped in this process
	Writable bool   // this process may write it (it is mapped PROT_WRITE)
}

// CreateApart is CreateSplit for a ring whose subscriber and queue-group
// slots live in areas of their own: slots has c.MaxSubscribers areas for
// the subscriber slots, then c.MaxGroups for the group slots (each at
// least SlotBytes, 128-byte aligned), all writable by the caller. Errors as
// CreateSplit, and ErrConfig for a wrong number or size of slot areas.
func CreateApart(data, consumer []byte, slots [][]byte, c Config) (*Ring, error) {
	if slots == nil {
		slots = [][]byte{}
	}
	return createSplit(data, consumer, slots, c)
}

// AttachApart attaches a ring made by CreateApart. slots has one entry per
// subscriber slot, then one per queue-group slot (MaxSubscribers +
// MaxGroups of the ring): the areas this process mapped, and which of
// them it may write. A publisher needs every slot mapped (it reads every
// cursor); a subscriber needs only its own, and its group's if it joins
// one, both writable. Errors as AttachSplit, and ErrIncompatible for a ring
// whose slots are not apart, ErrCorrupt for a slot area that belongs to
// another ring, ErrConfig for a wrong number or size of areas.
func AttachApart(data, consumer []byte, slots []SlotArea, readOnlyData bool) (*Ring, error) {
	r, err := attachSplit(data, consumer, readOnlyData)
	if err != nil {
		return nil, err
	}
	if r.m.plainU32(slotsApartOffset) != 1 {
		return nil, fmt.Errorf("%w: the ring keeps its subscriber slots in its consumer area: attach with AttachSplit", ErrIncompatible)
	}
	mems := make([][]byte, len(slots))
	writable := make([]bool, len(slots))
	for i, s := range slots {
		mems[i], writable[i] = s.Mem, s.Writable && s.Mem != nil
	}
	if err := r.useSlots(mems, writable); err != nil {
		return nil, err
	}
	created := r.m.plainU64(createdNSOffset)
	for i := 0; i < r.maxSubscribers; i++ {
		if r.subMapped(i) && r.m.plainU64(r.subscriberSlotOffset(i)+subRingCreatedOffset) != created {
			return nil, fmt.Errorf("%w: subscriber slot area %d belongs to another ring (its creation time differs from the data area's)", ErrCorrupt, i)
		}
	}
	for i := 0; i < r.maxGroups; i++ {
		if r.groupMapped(i) && r.m.plainU64(r.groupSlotOffset(i)+groupRingCreatedOffset) != created {
			return nil, fmt.Errorf("%w: queue-group slot area %d belongs to another ring (its creation time differs from the data area's)", ErrCorrupt, i)
		}
	}
	return r, nil
}

// publisherReady reports whether every slot is mapped, which publishing
// needs (a publisher reads every cursor).
func (r *Ring) publisherReady() bool {
	for i := 0; i < r.maxSubscribers+r.maxGroups; i++ {
		if !r.subMapped(i) {
			return false
		}
	}
	return true
}

// useSlots installs the slot areas (writable nil: all writable).
func (r *Ring) useSlots(slots [][]byte, writable []bool) error {
	if len(slots) != r.maxSubscribers+r.maxGroups {
		return fmt.Errorf("%w: %d slot areas for a ring of %d subscriber and %d queue-group slots", ErrConfig, len(slots), r.maxSubscribers, r.maxGroups)
	}
	ptrs := make([]unsafe.Pointer, len(slots))
	for i, s := range slots {
		if s == nil {
			continue
		}
		if len(s) < SlotBytes {
			return fmt.Errorf("%w: subscriber slot area %d is %d bytes, want at least %d", ErrConfig, i, len(s), SlotBytes)
		}
		p := unsafe.Pointer(unsafe.SliceData(s))
		if uintptr(p)%linePair != 0 {
			return fmt.Errorf("%w: subscriber slot area %d is not 128-byte aligned", ErrConfig, i)
		}
		ptrs[i] = p
	}
	if writable == nil {
		writable = make([]bool, len(slots))
		for i := range writable {
			writable[i] = ptrs[i] != nil
		}
	}
	r.m.slots, r.slotWritable, r.apart = ptrs, writable, true
	return nil
}

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
			off := r.subscriberSlotOffset(i)
			st := r.m.u32(off + subStateOffset)
			if st.Load() != slotFree || !st.CompareAndSwap(slotFree, slotClaiming) {
				continue
			}
			r.m.u64(off + subHoldOffset).Store(noHold)
			r.m.u32(off + subGroupOffset).Store(0)
			r.m.u64(off + subPositionOffset).Store(0) // holds every publisher while we settle
			r.m.u32(off + subPIDOffset).Store(pid)
			r.m.u64(off + subStartOffset).Store(start)
			// consumed, consumed bytes and lost stay: they are cumulative
			// per slot, so the counters summed over slots never go back.
			pos := r.TailPosition()
			if r.policy != PolicyDropOldest {
				if min, any := r.settledMinExcept(i); any && min < pos {
					pos = min
				}
			}
			r.m.u64(off + subPositionOffset).Store(pos)
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
// counted lost. It reports whether the slot was not free.
func (r *Ring) ReleaseSlot(i, group int) bool {
	if i < 0 || i >= r.maxSubscribers || !r.subWritable(i) {
		return false
	}
	off := r.subscriberSlotOffset(i)
	st := r.m.u32(off + subStateOffset)
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
			held := r.m.u64(off+subHoldOffset).Load() != noHold
			if !st.CompareAndSwap(v, slotFree) {
				continue
			}
			r.subscribersChanged()
			if group >= 0 && group < r.maxGroups && r.groupWritable(group) {
				goff := r.groupSlotOffset(group)
				if held {
					r.m.u64(goff + groupLostOffset).Add(1)
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
	off := r.subscriberSlotOffset(i)
	st := r.m.u32(off + subStateOffset)
	if st.Load() != slotReserved || r.m.u32(off+subPIDOffset).Load() != pid || r.m.u64(off+subStartOffset).Load() != start {
		return false
	}
	return st.CompareAndSwap(slotReserved, slotFree)
}

// CancelReservation frees subscriber slot i if it is still reserved (its
// process never joined). It reports whether it did.
func (r *Ring) CancelReservation(i int) bool {
	if i < 0 || i >= r.maxSubscribers || !r.subWritable(i) {
		return false
	}
	return r.m.u32(r.subscriberSlotOffset(i)+subStateOffset).CompareAndSwap(slotReserved, slotFree)
}

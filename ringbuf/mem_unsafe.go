package ringbuf

// All unsafe code of the package lives in this file, release_amd64.go and
// the CAS128 assembly (cas128_*.s), except proc.go's go:linkname import of
// unsafe. Everything else reaches shared
// memory through these typed accessors, whose names say what hazard they
// bear.

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// mem is a view of a ring's areas (see layout.go): the data area b, the
// consumer area cb and the slot areas. base and cbase are the first two's
// addresses; the slices keep the mappings' Go-side references alive.
// Data-area offsets (uintptr) address b, consumer-area offsets (consOff)
// cb, and slot fields are reached through slotAt. Offsets are checked
// against the areas' lengths once, when the ring is created or attached,
// never per access.
type mem struct {
	b, cb       []byte
	base, cbase unsafe.Pointer
	// slots[i] is slot area i (subscriber slots, then queue-group slots);
	// nil: not mapped in this process, and nobody may touch it.
	slots []unsafe.Pointer
}

func newMem(b, cb []byte) mem {
	return mem{b: b, cb: cb, base: unsafe.Pointer(unsafe.SliceData(b)), cbase: unsafe.Pointer(unsafe.SliceData(cb))}
}

// ptr resolves a data-area offset to its address.
func (m *mem) ptr(off uintptr) unsafe.Pointer { return unsafe.Add(m.base, off) }

// cptr resolves a consumer-area offset to its address.
func (m *mem) cptr(off consOff) unsafe.Pointer { return unsafe.Add(m.cbase, uintptr(off)) }

// u32 returns the 32-bit word at data-area offset off for atomic access.
// off must be 4-byte aligned and inside the area.
func (m *mem) u32(off uintptr) *atomic.Uint32 { return (*atomic.Uint32)(m.ptr(off)) }

// u64 returns the 64-bit word at data-area offset off for atomic access.
// off must be 8-byte aligned and inside the area.
func (m *mem) u64(off uintptr) *atomic.Uint64 { return (*atomic.Uint64)(m.ptr(off)) }

// cu32 is u32 for a consumer-area offset.
func (m *mem) cu32(off consOff) *atomic.Uint32 { return (*atomic.Uint32)(m.cptr(off)) }

// cplainU64 and csetU64 are plainU64 and setU64 for consumer-area offsets.
func (m *mem) cplainU64(off consOff) uint64  { return *(*uint64)(m.cptr(off)) }
func (m *mem) csetU64(off consOff, v uint64) { *(*uint64)(m.cptr(off)) = v }

// plainU16 and friends are ordinary (non-atomic) loads and stores, used for
// record header fields that are published by a later atomic store of the
// state word (and read only after an atomic load of it), and for fields
// with a single writer that only observers read.
func (m *mem) plainU16(off uintptr) uint16  { return *(*uint16)(m.ptr(off)) }
func (m *mem) plainU32(off uintptr) uint32  { return *(*uint32)(m.ptr(off)) }
func (m *mem) plainU64(off uintptr) uint64  { return *(*uint64)(m.ptr(off)) }
func (m *mem) setU16(off uintptr, v uint16) { *(*uint16)(m.ptr(off)) = v }
func (m *mem) setU32(off uintptr, v uint32) { *(*uint32)(m.ptr(off)) = v }
func (m *mem) setU64(off uintptr, v uint64) { *(*uint64)(m.ptr(off)) = v }

// cas128At compares the 16 bytes at off (16-byte aligned) with oldLo,oldHi
// and, if equal, stores newLo,newHi, atomically (LOCK CMPXCHG16B).
func (m *mem) cas128At(off uintptr, oldLo, oldHi, newLo, newHi uint64) bool {
	return cas128((*uint64)(m.ptr(off)), oldLo, oldHi, newLo, newHi)
}

// aligned reports whether both areas start on a 128-byte boundary, which
// the layout needs for its line pairs and 16-byte CAS words.
func (m *mem) aligned() bool {
	return uintptr(m.base)%linePair == 0 && uintptr(m.cbase)%linePair == 0
}

// futexAddr is the address of a doorbell (a consumer-area futex word) for
// the futex syscall.
func (m *mem) futexAddr(off consOff) *uint32 { return (*uint32)(m.cptr(off)) }

// futexWord is the address of a doorbell as futex_waitv takes it. The
// mapping outlives every sleep on it (a WaitSet's subscribers keep it).
func (m *mem) futexWord(off consOff) uint64 { return uint64(uintptr(m.cptr(off))) }

// setSlots installs the slot areas (nil: not mapped), checking each for
// size and alignment.
func (m *mem) setSlots(areas [][]byte) error {
	m.slots = make([]unsafe.Pointer, len(areas))
	for i, b := range areas {
		if b == nil {
			continue
		}
		if len(b) < SlotBytes {
			return fmt.Errorf("%w: slot area %d is %d bytes, want at least %d", ErrConfig, i, len(b), SlotBytes)
		}
		p := unsafe.Pointer(unsafe.SliceData(b))
		if uintptr(p)%linePair != 0 {
			return fmt.Errorf("%w: slot area %d is not 128-byte aligned", ErrConfig, i)
		}
		m.slots[i] = p
	}
	return nil
}

// unsafePointer converts a typed pointer for a raw syscall argument.
func unsafePointer[T any](p *T) unsafe.Pointer { return unsafe.Pointer(p) }

// recordAt is a typed view of the record header at data-area offset off.
func (m *mem) recordAt(off uintptr) recordView {
	return recordView{p: unsafe.Add(m.base, off)}
}

// recordView gives typed access to one record header's fields.
type recordView struct{ p unsafe.Pointer }

// payload is the n bytes after the record's header (len = cap = n). The
// caller has checked that the record ends inside the data area.
func (v recordView) payload(n uint64) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(v.p, RecordHeaderLength)), n)
}

// copyShortPayload copies src, of 16 to 32 bytes (the caller checks:
// shortPayload), into the record's payload, inline, with two 16-byte
// moves, the second overlapping the first when src is shorter than 32
// bytes, so that no byte outside src or the payload is read or written.
// At these sizes a call to memmove, and the spills around it, cost more
// than the copy itself.
func (v recordView) copyShortPayload(src []byte) {
	n := uintptr(len(src))
	s, d := unsafe.Pointer(unsafe.SliceData(src)), unsafe.Add(v.p, RecordHeaderLength)
	a, b := *(*[2]uint64)(s), *(*[2]uint64)(unsafe.Add(s, n-16))
	*(*[2]uint64)(d) = a
	*(*[2]uint64)(unsafe.Add(d, n-16)) = b
}

// shortPayload reports whether copyShortPayload takes n bytes.
func shortPayload(n uint64) bool { return n-16 <= 16 }

// ringHot holds what the hot paths (the SPSC Offer and the broadcast Poll
// fast paths) read on every record, resolved once when a handle is made
// and copied into it, so that those paths reach it without going through
// the Ring and without a bounds check per access. The ring's geometry
// never changes after it is mapped.
type ringHot struct {
	records    unsafe.Pointer // start of the data area's records
	mask       uint64         // capacity - 1
	capacity   uint64         // bytes of records
	maxPayload uint64         // bytes
	// dataWaiters and spaceWaiters are the doorbells' sleeper counts
	// (consumer area, read-mostly lines).
	dataWaiters, spaceWaiters *atomic.Uint32
}

func (r *Ring) hot() ringHot {
	return ringHot{
		records:      unsafe.Add(r.m.base, r.dataOffset),
		mask:         r.mask,
		capacity:     r.capacity,
		maxPayload:   uint64(r.maxPayload),
		dataWaiters:  r.m.cu32(dataWaitersOffset),
		spaceWaiters: r.m.cu32(spaceWaitersOffset),
	}
}

// record is the record view at data-area record offset off (< capacity).
func (h *ringHot) record(off uint64) recordView {
	return recordView{p: unsafe.Add(h.records, off)}
}

func (v recordView) state() *atomic.Uint64 { return (*atomic.Uint64)(v.p) }
func (v recordView) length() uint32        { return *(*uint32)(unsafe.Add(v.p, recLengthOffset)) }
func (v recordView) typ() uint16           { return *(*uint16)(unsafe.Add(v.p, recTypeOffset)) }
func (v recordView) publisher() uint16     { return *(*uint16)(unsafe.Add(v.p, recPublisherOffset)) }
func (v recordView) sequence() uint64      { return *(*uint64)(unsafe.Add(v.p, recSequenceOffset)) }
func (v recordView) timestamp() int64      { return *(*int64)(unsafe.Add(v.p, recTimestampOffset)) }

// setHeader writes the header fields and the claimed state word, plain
// stores published later by the commit store.
func (v recordView) setHeader(pos uint64, n uint32, typ, pub uint16, seq uint64, ts int64) {
	v.setFields(n, typ, pub, seq, ts)
	*(*uint64)(v.p) = pos | stateClaimed
}

// setFields writes the header fields after the state word, plain stores
// published later by the commit store.
func (v recordView) setFields(n uint32, typ, pub uint16, seq uint64, ts int64) {
	*(*uint32)(unsafe.Add(v.p, recLengthOffset)) = n
	*(*uint16)(unsafe.Add(v.p, recTypeOffset)) = typ
	*(*uint16)(unsafe.Add(v.p, recPublisherOffset)) = pub
	*(*uint64)(unsafe.Add(v.p, recSequenceOffset)) = seq
	*(*int64)(unsafe.Add(v.p, recTimestampOffset)) = ts
}

// pubSlot is publisher slot i, in the data area.
func (m *mem) pubSlot(off uintptr) slotView { return slotView{p: m.ptr(off)} }

// slotAt is slot area i (subscriber slot i, or queue-group slot
// i-MaxSubscribers); its p is nil if this process has not mapped it.
func (m *mem) slotAt(i int) slotView { return slotView{p: m.slots[i]} }

// slotView gives typed access to the fields of one slot: a publisher slot
// in the data area, or a subscriber or queue-group slot's own area.
type slotView struct{ p unsafe.Pointer }

// mapped reports whether the slot is mapped in this process.
func (v slotView) mapped() bool { return v.p != nil }

func (v slotView) u64(field uintptr) *atomic.Uint64 { return (*atomic.Uint64)(unsafe.Add(v.p, field)) }
func (v slotView) u32(field uintptr) *atomic.Uint32 { return (*atomic.Uint32)(unsafe.Add(v.p, field)) }

// cas128 is mem.cas128At for the 16-byte pair at field (16-byte aligned).
func (v slotView) cas128(field uintptr, oldLo, oldHi, newLo, newHi uint64) bool {
	return cas128((*uint64)(unsafe.Add(v.p, field)), oldLo, oldHi, newLo, newHi)
}

func (v slotView) set(field uintptr, x uint64)  { *(*uint64)(unsafe.Add(v.p, field)) = x }
func (v slotView) plain64(field uintptr) uint64 { return *(*uint64)(unsafe.Add(v.p, field)) }

// bytes is the slot's 128 bytes, for clearing it.
func (v slotView) bytes() []byte { return unsafe.Slice((*byte)(v.p), slotLength) }

package ringbuf

// All unsafe code of the package lives in this file, release_amd64.go and the CAS128
// assembly. Everything else reaches shared memory through these typed
// accessors, whose names say what hazard they bear.

import (
	"sync/atomic"
	"unsafe"
)

// mem is a view of a shared mapping. base is the address of b[0]; b keeps
// the slice (and so the mapping's Go-side reference) alive. Offsets passed
// to the accessors are checked against len(b) once, when the ring is
// created or attached, never per access.
type mem struct {
	b    []byte
	base unsafe.Pointer
}

func newMem(b []byte) mem {
	return mem{b: b, base: unsafe.Pointer(unsafe.SliceData(b))}
}

// u32 returns the 32-bit word at off for atomic access. off must be 4-byte
// aligned and inside the mapping.
func (m mem) u32(off uintptr) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Add(m.base, off))
}

// u64 returns the 64-bit word at off for atomic access. off must be 8-byte
// aligned and inside the mapping.
func (m mem) u64(off uintptr) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Add(m.base, off))
}

// i64 is u64 for signed words.
func (m mem) i64(off uintptr) *atomic.Int64 {
	return (*atomic.Int64)(unsafe.Add(m.base, off))
}

// plainU16 and friends are ordinary (non-atomic) loads and stores, used for
// record header fields that are published by a later atomic store of the
// state word (and read only after an atomic load of it).
func (m mem) plainU16(off uintptr) uint16     { return *(*uint16)(unsafe.Add(m.base, off)) }
func (m mem) plainU32(off uintptr) uint32     { return *(*uint32)(unsafe.Add(m.base, off)) }
func (m mem) plainU64(off uintptr) uint64     { return *(*uint64)(unsafe.Add(m.base, off)) }
func (m mem) setU16(off uintptr, v uint16)    { *(*uint16)(unsafe.Add(m.base, off)) = v }
func (m mem) setU32(off uintptr, v uint32)    { *(*uint32)(unsafe.Add(m.base, off)) = v }
func (m mem) setU64(off uintptr, v uint64)    { *(*uint64)(unsafe.Add(m.base, off)) = v }
func (m mem) addr(off uintptr) unsafe.Pointer { return unsafe.Add(m.base, off) }

// cas128At compares the 16 bytes at off (16-byte aligned) with oldLo,oldHi
// and, if equal, stores newLo,newHi, atomically (LOCK CMPXCHG16B).
func (m mem) cas128At(off uintptr, oldLo, oldHi, newLo, newHi uint64) bool {
	return cas128((*uint64)(unsafe.Add(m.base, off)), oldLo, oldHi, newLo, newHi)
}

// aligned reports whether the mapping starts on a 128-byte boundary, which
// the layout needs for its line pairs and 16-byte CAS words.
func (m mem) aligned() bool { return uintptr(m.base)%linePair == 0 }

// pidOf and startOf are small helpers over the slot owner fields.
func (m mem) futexAddr(off uintptr) *uint32 { return (*uint32)(unsafe.Add(m.base, off)) }

// unsafePointer converts a typed pointer for a raw syscall argument.
func unsafePointer[T any](p *T) unsafe.Pointer { return unsafe.Pointer(p) }

package ringbuf

import (
	"sync/atomic"
	"unsafe"
)

// storeRelease64 stores v at off with release ordering: every earlier store
// of this goroutine is visible to a process that observes v. On amd64
// (TSO) an ordinary MOV has release semantics, and the Go compiler keeps
// stores in program order, so a plain store suffices and avoids the locked
// XCHG that sync/atomic's Store compiles to. The word is 8-byte aligned, so
// the store is single-copy atomic. It is not a fence: a later load may be
// satisfied before it is visible, so a store that a Dekker-style handshake
// depends on (commit, then load the waiter count) must use sync/atomic.
func (m *mem) storeRelease64(off uintptr, v uint64) {
	*(*uint64)(m.ptr(off)) = v
}

// storeRelease64 is mem.storeRelease64 for a word already resolved.
func storeRelease64(w *atomic.Uint64, v uint64) {
	*(*uint64)(unsafe.Pointer(w)) = v
}

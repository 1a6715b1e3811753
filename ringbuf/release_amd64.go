package ringbuf

import (
	"sync/atomic"
	"unsafe"
)

// storeRelease64 stores v at off with release ordering: every earlier store
// of this goroutine is visible to a process that observes v. On amd64
// (TSO) an ordinary MOV has release semantics in hardware, so a plain store
// suffices and avoids the locked XCHG that sync/atomic's Store compiles to
// (on the commit, the SPSC tail and the subscriber position: every record).
//
// WARNING: the hardware half is guaranteed; the compiler half is not. The
// Go memory model says nothing about plain stores to memory shared with
// another process, and nothing stops a future compiler from moving an
// earlier plain store (a record's header or payload) below this one.
// Today's compiler keeps stores in program order (they are chained through
// its SSA memory value and never reordered), and TestReleaseStoresStayLast
// (release_amd64_test.go) checks exactly that in the compiled package:
// it fails if a record store or the payload copy follows a release store,
// or an SPSC tail's position store precedes its sequence store. If it
// fails, make these sync/atomic stores (release_other.go) at once.
//
// The word is 8-byte aligned, so the store is single-copy atomic. It is
// not a fence: a later load may be satisfied before it is visible, so a
// store that a Dekker-style handshake depends on (commit, then load the
// waiter count) must use sync/atomic or rely on the sleeper's membarrier
// (see Publisher.publish).
func (m *mem) storeRelease64(off uintptr, v uint64) {
	*(*uint64)(m.ptr(off)) = v
}

// storeRelease64 is mem.storeRelease64 for a word already resolved.
func storeRelease64(w *atomic.Uint64, v uint64) {
	*(*uint64)(unsafe.Pointer(w)) = v
}

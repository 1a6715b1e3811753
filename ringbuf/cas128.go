//go:build amd64 || arm64

package ringbuf

// cas128 atomically compares the 16 bytes at addr (16-byte aligned) with
// (oldLo, oldHi) and, if they are equal, replaces them with (newLo, newHi).
// It reports whether the swap happened. It is sequentially consistent, like
// the sync/atomic operations it is used beside.
//
// amd64: LOCK CMPXCHG16B. arm64: an LDAXP/STLXP loop.
//
//go:noescape
func cas128(addr *uint64, oldLo, oldHi, newLo, newHi uint64) bool

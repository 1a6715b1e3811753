package shm

// This is the only file of the package that imports unsafe. It turns a
// mapped byte slice into typed atomic words; callers pass whole mappings, so
// the bounds and the alignment below are checked once per mapping.

import (
	"sync/atomic"
	"unsafe"
)

// versionWord returns the header's layout-version word in mem as an atomic.
// mem must be a mapping of at least HeaderBytes, which mmap page-aligns, so
// the word at offVersion (8) is 4-byte aligned; checkAligned verifies it.
//
// Writer: the creator, exactly once (store-release in publishVersion).
// Readers: every attacher (load-acquire before reading the other fields).
func versionWord(mem []byte) *atomic.Uint32 {
	_ = mem[offVersion+3] // bounds check
	return (*atomic.Uint32)(unsafe.Pointer(&mem[offVersion]))
}

// mappingAligned reports whether mem starts on an 8-byte boundary, which
// makes every header word naturally aligned.
func mappingAligned(mem []byte) bool {
	return len(mem) > 0 && uintptr(unsafe.Pointer(&mem[0]))%8 == 0
}

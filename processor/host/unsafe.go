package host

import (
	"sync/atomic"
	"unsafe"
)

// word is the 8-byte counter at off in a mapped counters region. Hazard:
// valid while mem is mapped; off must be one of the counters offsets
// (8-byte aligned in a page-aligned mapping).
func word(mem []byte, off int) *atomic.Uint64 {
	_ = mem[off+7]
	return (*atomic.Uint64)(unsafe.Pointer(&mem[off]))
}

//go:build linux

package numa

// This is the only file of the package that uses unsafe. It holds the raw
// system calls x/sys/unix has no wrapper for; each takes and returns Go
// values, so no pointer arithmetic leaks out. Every pointer is converted to
// uintptr inside the Syscall argument list, as unsafe.Pointer rule 4
// requires, so the referenced Go memory stays live during the call.

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// addrOf returns the address of b's first byte. The result does not keep b
// alive: callers hold b (runtime.KeepAlive) until the kernel is done.
func addrOf(b []byte) uintptr {
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))
}

// mbind sets the memory policy of [addr, addr+length): see mbind(2). mask is
// a node bitmap, bit n of word n/64 for node n. maxnode is passed as the
// bitmap's bit count plus one: the kernel's get_nodes() decrements it before
// use (the off-by-one libnuma also compensates for).
func mbind(addr, length uintptr, mode int, mask []uint64, flags int) error {
	var p unsafe.Pointer
	if len(mask) > 0 {
		p = unsafe.Pointer(&mask[0])
	}
	_, _, e := unix.Syscall6(unix.SYS_MBIND, addr, length, uintptr(mode),
		uintptr(p), uintptr(len(mask)*64+1), uintptr(flags))
	if e != 0 {
		return e
	}
	return nil
}

// movePagesQuery asks where the pages at addrs are, without moving them:
// move_pages(2) of the calling process with nodes == NULL. status[i]
// receives the node of addrs[i], or a negative errno (-ENOENT: not present,
// -EFAULT: unmapped or the shared zero page). len(status) >= len(addrs) > 0.
func movePagesQuery(addrs []uintptr, status []int32) error {
	_, _, e := unix.Syscall6(unix.SYS_MOVE_PAGES, 0, uintptr(len(addrs)),
		uintptr(unsafe.Pointer(&addrs[0])), 0, uintptr(unsafe.Pointer(&status[0])), 0)
	if e != 0 {
		return e
	}
	return nil
}

// getcpu returns the CPU and node the calling thread runs on: getcpu(2).
func getcpu() (cpu, node int, err error) {
	var c, n uint32
	_, _, e := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&c)), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		return -1, -1, e
	}
	return int(c), int(n), nil
}

// mincore fills vec with one residency byte per page of b: mincore(2).
// len(vec) >= pages of b > 0.
func mincore(b, vec []byte) error {
	_, _, e := unix.Syscall(unix.SYS_MINCORE, addrOf(b), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0])))
	if e != 0 {
		return e
	}
	return nil
}

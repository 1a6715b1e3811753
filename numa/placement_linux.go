//go:build linux

package numa

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"golang.org/x/sys/unix"
)

// Policy is how strictly Bind keeps pages on the node (mbind(2) modes).
type Policy int

const (
	// PolicyBind (MPOL_BIND) allocates only on the node. When the node is
	// out of memory the faulting process is OOM-killed or gets SIGBUS
	// (hugetlb), rather than silently getting remote memory.
	PolicyBind Policy = iota
	// PolicyPreferred (MPOL_PREFERRED) allocates on the node while it has
	// free memory, then falls back to the nearest other nodes.
	PolicyPreferred
)

func (p Policy) String() string {
	switch p {
	case PolicyBind:
		return "MPOL_BIND"
	case PolicyPreferred:
		return "MPOL_PREFERRED"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// liveNodeDir is the live host's node directory, read by Bind to validate
// the node id.
const liveNodeDir = "/sys/devices/system/node"

// Bind is BindPolicy(b, node, PolicyBind).
func Bind(b []byte, node int) error { return BindPolicy(b, node, PolicyBind) }

// BindPolicy sets the memory policy of the pages of b to node, so that pages
// faulted in afterwards are allocated there: mbind(2) with MPOL_BIND or
// MPOL_PREFERRED and MPOL_MF_MOVE. Call it after mmap and BEFORE first
// touch; placement is decided when a page is first faulted in. Pages already
// resident and mapped only by this process are migrated (MPOL_MF_MOVE); for
// PolicyBind, pages that cannot be migrated (mapped by another process too)
// make the call fail with EIO (MPOL_MF_STRICT).
//
// b must start on a page boundary and be memory from mmap(2) (unix.Mmap),
// never a Go heap slice: the policy covers whole pages, length rounded up.
// For hugetlb mappings pass the whole mapping (hugepage-aligned).
// What the policy applies to depends on the mapping (mbind(2) NOTES):
// anonymous private memory: this mapping only; a MAP_SHARED mapping of a
// tmpfs file (/dev/shm, memfd) or SysV segment: the shared object itself,
// whichever process faults a page in later; a MAP_SHARED mapping of a
// regular file: ignored by the kernel.
//
// Errors: ErrUnaligned; a *NodeError (ErrNoSuchNode, or ErrNodeWithoutMemory
// for a CPU-only node) listing the acceptable nodes of the live host; a
// *SyscallError wrapping the errno (EINVAL: node outside this process's
// cpuset; EIO: strict bind could not move resident pages; EFAULT: range not
// mapped). On a kernel built without NUMA (mbind returns ENOSYS) binding to
// node 0 succeeds and does nothing, since all memory is node 0.
//
// Bind may be called from any goroutine; calls on disjoint ranges may run
// concurrently. It does not touch the pages.
func BindPolicy(b []byte, node int, policy Policy) error {
	length, err := pageRange(b)
	if err != nil {
		return fmt.Errorf("numa: bind: %w", err)
	}
	if err := checkLiveNode(node); err != nil {
		return err
	}
	mode, flags := unix.MPOL_BIND, unix.MPOL_MF_MOVE|unix.MPOL_MF_STRICT
	switch policy {
	case PolicyBind:
	case PolicyPreferred:
		mode, flags = unix.MPOL_PREFERRED, unix.MPOL_MF_MOVE
	default:
		return fmt.Errorf("numa: bind: unknown %v", policy)
	}
	mask := make([]uint64, node/64+1)
	mask[node/64] = 1 << (node % 64)
	addr := addrOf(b)
	err = mbind(addr, uintptr(length), mode, mask, flags)
	runtime.KeepAlive(b)
	if errors.Is(err, unix.ENOSYS) && node == 0 {
		return nil
	}
	if err != nil {
		return &SyscallError{Syscall: "mbind", Addr: addr, Len: length,
			Detail: fmt.Sprintf("node %d, %v", node, policy), Err: err}
	}
	return nil
}

// checkLiveNode checks node against the live host's online nodes and nodes
// with memory. A host without the node directory (no NUMA) has node 0.
func checkLiveNode(node int) error {
	online, err := readList(filepath.Join(liveNodeDir, "online"))
	if errors.Is(err, os.ErrNotExist) {
		online = []int{0}
	} else if err != nil {
		return fmt.Errorf("numa: bind: %w", err)
	}
	if _, ok := slices.BinarySearch(online, node); !ok {
		return &NodeError{Op: "bind", Node: node, Nodes: online, Err: ErrNoSuchNode}
	}
	withMem, err := readList(filepath.Join(liveNodeDir, "has_memory"))
	if errors.Is(err, os.ErrNotExist) {
		return nil // kernels before 2.6.35 lack has_memory: let mbind decide
	} else if err != nil {
		return fmt.Errorf("numa: bind: %w", err)
	}
	if _, ok := slices.BinarySearch(withMem, node); !ok {
		return &NodeError{Op: "bind", Node: node, Nodes: withMem, Err: ErrNodeWithoutMemory}
	}
	return nil
}

// pageRange checks that b is a non-empty, page-aligned range and returns its
// length rounded up to whole pages, in bytes.
func pageRange(b []byte) (int, error) {
	ps := os.Getpagesize()
	if len(b) == 0 {
		return 0, fmt.Errorf("%w: empty range", ErrUnaligned)
	}
	if addr := addrOf(b); addr%uintptr(ps) != 0 {
		return 0, fmt.Errorf("%w: start %#x not a multiple of the %d-byte page", ErrUnaligned, addr, ps)
	}
	return (len(b) + ps - 1) / ps * ps, nil
}

// locateBatch is how many pages Locate asks about per move_pages call; it
// bounds Locate's scratch memory at 12 KiB whatever the range.
const locateBatch = 1024

// Locate reports where the pages of b are: pages maps a node id to the
// number of b's base pages (os.Getpagesize bytes each, so a 2 MiB hugepage
// counts 512 times) resident on it, and node is the node holding most of
// them (ties: lowest id). It uses move_pages(2) with nodes == NULL, which
// only queries, one entry per page; pages not faulted in yet (-ENOENT) and
// unbacked or zero-page entries (-EFAULT) are not counted. On a kernel
// without NUMA (ENOSYS) it counts resident pages with mincore(2) as node 0.
//
// b must be page-aligned, as for Bind. The answer is a snapshot: the kernel
// may migrate pages afterwards (automatic NUMA balancing). Errors:
// ErrUnaligned; ErrNotResident (node -1, empty map) when no page of b is
// resident; a *SyscallError wrapping the errno. Safe for concurrent use.
func Locate(b []byte) (node int, pages map[int]int, err error) {
	length, err := pageRange(b)
	if err != nil {
		return -1, nil, fmt.Errorf("numa: locate: %w", err)
	}
	defer runtime.KeepAlive(b)
	ps := os.Getpagesize()
	n := length / ps
	addr := addrOf(b)
	pages = make(map[int]int)

	addrs := make([]uintptr, min(n, locateBatch))
	status := make([]int32, len(addrs))
	for off := 0; off < n; off += locateBatch {
		k := min(locateBatch, n-off)
		for i := range k {
			addrs[i] = addr + uintptr((off+i)*ps)
		}
		err := movePagesQuery(addrs[:k], status[:k])
		if errors.Is(err, unix.ENOSYS) {
			return locateMincore(b, n)
		}
		if err != nil {
			return -1, nil, &SyscallError{Syscall: "move_pages", Addr: addr, Len: length, Err: err}
		}
		for _, s := range status[:k] {
			if s >= 0 {
				pages[int(s)]++
			}
		}
	}
	return majority(pages)
}

// locateMincore is Locate for kernels without NUMA: every resident page is
// on node 0.
func locateMincore(b []byte, n int) (int, map[int]int, error) {
	vec := make([]byte, n)
	if err := mincore(b, vec); err != nil {
		return -1, nil, &SyscallError{Syscall: "mincore", Addr: addrOf(b), Len: len(b), Err: err}
	}
	pages := make(map[int]int)
	for _, v := range vec {
		if v&1 != 0 {
			pages[0]++
		}
	}
	return majority(pages)
}

// majority returns the node with most pages, lowest id on ties.
func majority(pages map[int]int) (int, map[int]int, error) {
	best := -1
	for node, c := range pages {
		if best < 0 || c > pages[best] || (c == pages[best] && node < best) {
			best = node
		}
	}
	if best < 0 {
		return -1, pages, fmt.Errorf("numa: locate: %w", ErrNotResident)
	}
	return best, pages, nil
}

package numa

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sentinels. Each is matched with errors.Is; the typed errors below wrap them,
// so callers branch on the sentinel and print the typed error.
var (
	// ErrMalformed: a sysfs or procfs file did not have the format the kernel
	// documents (Documentation/ABI/stable/sysfs-devices-node, proc(5)). Always
	// carried by a *ParseError naming the file and line. Remedy: the file was
	// hand-edited (fixture tree) or the kernel changed the format; fix the
	// file or report the kernel version.
	ErrMalformed = errors.New("malformed file")

	// ErrNoSuchNode: a NUMA node id that the topology (or the live host, for
	// Bind) does not have. Carried by a *NodeError that lists the nodes that
	// exist. Remedy: pick one of those nodes, or load the topology again if
	// nodes were hot-plugged.
	ErrNoSuchNode = errors.New("no such NUMA node")

	// ErrNodeWithoutMemory: the node exists but has no memory (a CPU-only
	// node), so pages cannot be bound to it. Carried by a *NodeError that
	// lists the nodes with memory. Remedy: bind to the nearest node with
	// memory (see Node.Distances).
	ErrNodeWithoutMemory = errors.New("NUMA node has no memory")

	// ErrNoSuchCPU: a CPU id that no node of the topology holds (offline,
	// out of range, or negative). Remedy: use an online CPU; see
	// /sys/devices/system/cpu/online.
	ErrNoSuchCPU = errors.New("no such CPU")

	// ErrNoCPUs: an empty CPU set was passed where at least one CPU is needed
	// (NodeForCPUs, PinThread).
	ErrNoCPUs = errors.New("empty CPU set")

	// ErrNoHugePagePool: the node has no hugepage pool of the asked page
	// size (the CPU or kernel does not support that size). The error text
	// lists the sizes the node has.
	ErrNoHugePagePool = errors.New("no hugepage pool of that size")

	// ErrUnaligned: the range passed to Bind or Locate does not start on a
	// page boundary, or is empty. Remedy: pass memory obtained from mmap(2)
	// (unix.Mmap), never a Go heap slice.
	ErrUnaligned = errors.New("range not page-aligned or empty")

	// ErrNotResident: Locate found no page of the range in memory: nothing
	// has touched it yet. Remedy: write to the pages first (first touch
	// allocates them, under the policy Bind set).
	ErrNotResident = errors.New("no page of the range is resident")
)

// ParseError reports a file whose content could not be parsed. It matches
// ErrMalformed with errors.Is; Unwrap returns the underlying cause (often a
// *strconv.NumError), which may be nil.
type ParseError struct {
	Path string // file as opened, including the root prefix
	Line int    // 1-based line number; 0 when the whole file is at fault
	Text string // the offending text, possibly truncated
	Err  error  // the cause; may be nil
}

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("malformed ")
	b.WriteString(e.Path)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	if e.Text != "" {
		fmt.Fprintf(&b, ": %q", e.Text)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *ParseError) Unwrap() error { return e.Err }

// Is reports whether target is ErrMalformed.
func (e *ParseError) Is(target error) bool { return target == ErrMalformed }

// NodeError reports an operation on a node that cannot take it. Err is
// ErrNoSuchNode or ErrNodeWithoutMemory; Nodes lists the nodes that would
// have been accepted (existing nodes, or nodes with memory).
type NodeError struct {
	Op    string // "bind", "node", "hugepages", ...
	Node  int    // the node asked for
	Nodes []int  // the acceptable nodes, ascending
	Err   error  // ErrNoSuchNode or ErrNodeWithoutMemory
}

func (e *NodeError) Error() string {
	what := "nodes"
	if errors.Is(e.Err, ErrNodeWithoutMemory) {
		what = "nodes with memory"
	}
	return fmt.Sprintf("numa: %s: node %d: %v (%s: %s)",
		e.Op, e.Node, e.Err, what, FormatCPUList(e.Nodes))
}

// Unwrap returns ErrNoSuchNode or ErrNodeWithoutMemory.
func (e *NodeError) Unwrap() error { return e.Err }

// CPUError reports a CPU id that no node holds. It wraps ErrNoSuchCPU.
type CPUError struct {
	Op     string // "node of cpu", "place", "pin"
	CPU    int    // the CPU asked for
	Online []int  // the CPUs the topology holds, ascending
}

func (e *CPUError) Error() string {
	return fmt.Sprintf("numa: %s: cpu %d: %v (cpus: %s)",
		e.Op, e.CPU, ErrNoSuchCPU, FormatCPUList(e.Online))
}

// Unwrap returns ErrNoSuchCPU.
func (e *CPUError) Unwrap() error { return ErrNoSuchCPU }

// SyscallError reports a failed system call on a memory range or thread.
// Err is the syscall.Errno (match with errors.Is, e.g. unix.EINVAL,
// unix.EPERM, unix.ENOSYS).
type SyscallError struct {
	Syscall string  // "mbind", "move_pages", "sched_setaffinity", "getcpu", ...
	Addr    uintptr // start of the range, 0 when not a range operation
	Len     int     // length of the range in bytes, 0 when not a range operation
	Detail  string  // extra context such as "node 1, MPOL_BIND"; may be empty
	Err     error   // the errno
}

func (e *SyscallError) Error() string {
	var b strings.Builder
	b.WriteString("numa: ")
	b.WriteString(e.Syscall)
	if e.Len > 0 {
		fmt.Fprintf(&b, " [%#x, +%d bytes)", e.Addr, e.Len)
	}
	if e.Detail != "" {
		b.WriteString(" (")
		b.WriteString(e.Detail)
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the errno.
func (e *SyscallError) Unwrap() error { return e.Err }

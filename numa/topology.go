package numa

import (
	"errors"
	"fmt"
	"slices"

	"github.com/kaelix-io/kaelix/internal/bytesize"
)

// Topology is a snapshot of the host's NUMA nodes, as Load read it from
// sysfs. It is plain data: the zero value is an empty topology, it may be
// copied, and after Load returns it is never modified by this package, so
// any number of goroutines may call its methods concurrently. Counters in it
// (free memory, free hugepages) are as of the Load call; call Load again for
// fresh numbers. Callers that modify Nodes must not do so concurrently with
// other calls.
type Topology struct {
	// Nodes holds one entry per online node, ascending by ID. Node ids may
	// be sparse (0, 2 with no 1) on hosts with offline or hot-plugged nodes.
	Nodes []Node
}

// Node is one NUMA node: a set of CPUs and the memory attached to them.
type Node struct {
	// ID is the kernel's node id (the N of /sys/devices/system/node/nodeN).
	ID int
	// CPUs lists the online CPUs of the node, ascending. Empty for a
	// memory-only node (CXL, persistent memory, some VMs).
	CPUs []int
	// Distances is the node's row of the ACPI SLIT distance matrix, indexed
	// by the other node's id: Distances[ID] is the local distance (10 by
	// convention); 20 means twice the local latency. Entries for ids that
	// are not online nodes are 0. Length is the highest node id + 1.
	Distances []int
	// MemTotalBytes and MemFreeBytes are the node's usable and free memory
	// in bytes (the node's meminfo MemTotal and MemFree).
	MemTotalBytes, MemFreeBytes uint64
	// HugePages lists the node's persistent hugepage pools, ascending by
	// page size. Empty when the kernel has no hugetlb support.
	HugePages []HugePagePool
}

// HugePagePool is one node's pool of hugepages of one size
// (Documentation/admin-guide/mm/hugetlbpage.rst, "per node hugepages").
type HugePagePool struct {
	// PageSizeBytes is the size of one page in bytes (2 MiB = 2097152,
	// 1 GiB = 1073741824 on x86-64).
	PageSizeBytes uint64
	// Total, Free and Surplus count pages, not bytes: pages in the pool,
	// pages not allocated to any mapping, and pages above the persistent
	// count allocated through overcommit.
	Total, Free, Surplus uint64
	// SysfsPath is the nr_hugepages file an operator writes to resize this
	// pool (as root, e.g. scripts/hugepages.sh reserve), including the root
	// prefix Load was given.
	SysfsPath string
}

// Node returns the node with the given id, and false if there is none. The
// pointer aliases t.Nodes: read it, do not modify it.
func (t *Topology) Node(id int) (*Node, bool) {
	i, ok := slices.BinarySearchFunc(t.Nodes, id, func(n Node, id int) int { return n.ID - id })
	if !ok {
		return nil, false
	}
	return &t.Nodes[i], true
}

// NodeIDs returns the ids of the nodes, ascending, in a new slice.
func (t *Topology) NodeIDs() []int {
	ids := make([]int, len(t.Nodes))
	for i := range t.Nodes {
		ids[i] = t.Nodes[i].ID
	}
	return ids
}

// CPUs returns every CPU of every node, ascending, in a new slice.
func (t *Topology) CPUs() []int {
	var cpus []int
	for i := range t.Nodes {
		cpus = append(cpus, t.Nodes[i].CPUs...)
	}
	slices.Sort(cpus)
	return cpus
}

// NodeOfCPU returns the id of the node holding cpu. It returns a *CPUError
// matching ErrNoSuchCPU when no node holds it (offline or out of range).
func (t *Topology) NodeOfCPU(cpu int) (int, error) {
	for i := range t.Nodes {
		if _, ok := slices.BinarySearch(t.Nodes[i].CPUs, cpu); ok {
			return t.Nodes[i].ID, nil
		}
	}
	return -1, &CPUError{Op: "node of cpu", CPU: cpu, Online: t.CPUs()}
}

// NodeForCPUs decides on which node to place memory used by threads running
// on cpus (duplicates are ignored). The rule, in order:
//
//  1. the node holding most of the CPUs;
//  2. on a tie, the node with the lowest distance sum to the CPUs, that is
//     the sum over every CPU of Distances[node of that CPU]: the node the
//     threads reach most cheaply as a group;
//  3. on a further tie, the lowest node id.
//
// It returns an error matching ErrNoCPUs for an empty set and a *CPUError
// (ErrNoSuchCPU) naming the first CPU no node holds.
func (t *Topology) NodeForCPUs(cpus []int) (int, error) {
	if len(cpus) == 0 {
		return -1, fmt.Errorf("numa: place: %w", ErrNoCPUs)
	}
	uniq := slices.Clone(cpus)
	slices.Sort(uniq)
	uniq = slices.Compact(uniq)

	count := make(map[int]int) // node id -> CPUs of the set it holds
	for _, cpu := range uniq {
		node, err := t.NodeOfCPU(cpu)
		if err != nil {
			var ce *CPUError
			if errors.As(err, &ce) {
				ce.Op = "place"
			}
			return -1, err
		}
		count[node]++
	}

	best, bestCount, bestSum := -1, 0, 0
	for i := range t.Nodes { // ascending id: a full tie keeps the lowest id
		n := &t.Nodes[i]
		c := count[n.ID]
		if c == 0 || c < bestCount {
			continue
		}
		sum := 0
		for node, k := range count {
			sum += k * distance(n, node)
		}
		if c > bestCount || sum < bestSum {
			best, bestCount, bestSum = n.ID, c, sum
		}
	}
	return best, nil
}

// distance returns n's distance to node, or 0 when the row lacks it.
func distance(n *Node, node int) int {
	if node < 0 || node >= len(n.Distances) {
		return 0
	}
	return n.Distances[node]
}

// Pool returns the node's pool of pageSize-byte hugepages, and false if
// the node has none of that size. The pointer aliases the node: read only.
func (n *Node) Pool(pageSize uint64) (*HugePagePool, bool) {
	for i := range n.HugePages {
		if n.HugePages[i].PageSizeBytes == pageSize {
			return &n.HugePages[i], true
		}
	}
	return nil, false
}

// HugePagesFree returns how many pageSize-byte hugepages (pageSize in bytes,
// e.g. 2<<20) were free on node at Load time, and the nr_hugepages file an
// operator writes to grow that pool. Errors: a *NodeError (ErrNoSuchNode)
// for an unknown node; an error matching ErrNoHugePagePool, listing the
// sizes the node has, for a size it lacks.
func (t *Topology) HugePagesFree(node int, pageSize uint64) (free uint64, sysfsPath string, err error) {
	n, ok := t.Node(node)
	if !ok {
		return 0, "", &NodeError{Op: "hugepages", Node: node, Nodes: t.NodeIDs(), Err: ErrNoSuchNode}
	}
	p, ok := n.Pool(pageSize)
	if !ok {
		sizes := make([]string, len(n.HugePages))
		for i, h := range n.HugePages {
			sizes[i] = bytesize.Format(h.PageSizeBytes)
		}
		return 0, "", fmt.Errorf("numa: hugepages: node %d, page size %s: %w (node has %v)",
			node, bytesize.Format(pageSize), ErrNoHugePagePool, sizes)
	}
	return p.Free, p.SysfsPath, nil
}

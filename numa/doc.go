// Package numa reads the host's NUMA topology and places shared memory and
// threads on it.
//
// # Topology
//
// Load reads sysfs (and, on a kernel without NUMA, /proc/meminfo) under an
// injectable root, so tests run against the fixture trees in testdata/.
// It parses the files itself (no procfs library). The result is a plain, immutable
// snapshot: nodes, their CPUs, the SLIT distance matrix, memory and
// per-node hugepage pools. NodeForCPUs turns a set of CPUs into a placement
// decision; HugePagesFree says whether a node can back a hugepage segment
// and which file to write to grow the pool.
//
// # Placement
//
// Bind sets a mapping's memory policy (mbind(2)) before its pages are first
// touched; Locate verifies where the pages really are (move_pages(2) in
// query mode). PinThread, CurrentCPU and NodeOfCaller keep a thread near its
// memory (sched_setaffinity(2), getcpu(2)).
//
// # One-node hosts
//
// A host with a single node (most VMs and laptops) is an ordinary topology
// with one node: Bind to node 0 succeeds, Locate reports node 0. A kernel
// built without CONFIG_NUMA has no /sys/devices/system/node; Load reports
// one node 0 holding every online CPU and all memory, Bind to node 0 is a
// no-op and Locate counts resident pages with mincore(2).
//
// # Concurrency
//
// Topology values are read-only after Load and safe for concurrent use.
// Bind and Locate may run concurrently on any ranges. PinThread acts on the
// calling OS thread and must be undone from the same goroutine. Errors are
// described in errors.go; syscalls are confined to sys_linux.go, the only
// file using unsafe.
package numa

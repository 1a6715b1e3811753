// Package ringbuf implements Kaelix's lock-free ring buffers in shared
// memory: single-producer single-consumer (SPSC) and multi-producer
// multi-consumer (MPMC) rings of variable-length records, with broadcast
// subscribers, queue groups, three overflow policies, futex doorbells and
// Disruptor-style wait strategies.
//
// A ring lives entirely in shared mappings (MAP_SHARED of tmpfs or
// hugetlbfs files); nothing another process needs lives in Go memory. It
// has one topology: a data area (header, tail, counters, publisher table,
// records), which subscribers may map read-only; a consumer area (the
// doorbells); and one small area per subscriber slot and per queue-group
// slot, so that a subscriber maps writable its own cursor and no other.
// One process creates it (Create), any number attach (Attach) with the
// areas they need, and each takes Publisher and Subscriber handles, which
// own slots. layout.go draws the layout and the record format, and
// DESIGN.md explains the algorithms.
//
// # Hot path
//
// A publisher claims space by advancing the tail pair (position, sequence):
// in an SPSC ring, whose publisher is the tail's only writer, with two
// plain release stores (see release_amd64.go), in an MPMC ring with a
// CAS128 loop. It writes the record in place and publishes it with one
// release store of the record's state word. A subscriber
// learns of a record from that word alone, at its own position, so a
// publisher and a subscriber share only the lines of the records themselves.
// A publisher that finds no sleeper makes no syscall: it loads the waiter
// count and calls FUTEX_WAKE only when it is non-zero. No path allocates.
//
// # Memory model
//
// Go's sync/atomic operations are sequentially consistent; the algorithms
// rely on that for the store-then-load handshakes (a sleeper announcing
// itself, a joining subscriber publishing its position). Record header
// fields are plain stores published by the state word's release store and
// read after its atomic load. On amd64 the hot release stores (commit,
// SPSC tail, subscriber position) are plain MOVs: x86-TSO orders them
// after every earlier store, and the Go memory model does not promise that
// the compiler keeps them there, so TestReleaseStoresStayLast inspects the
// compiled code and fails if any store was moved past them (see
// release_amd64.go). Elsewhere they are sync/atomic stores. The race detector cannot see another process,
// nor memory outside the Go heap: cross-process tests, not -race, prove
// these paths.
//
// # Concurrency rules
//
// A Ring may be shared by goroutines. A Publisher or Subscriber is used by
// one goroutine at a time. Expected outcomes (ErrBackPressured, ErrFull,
// ErrLapped, ErrStalled, nothing to read) are preallocated values; corrupt
// ring memory yields a *CorruptError and never a panic, an out-of-bounds
// read or an endless loop.
//
// Supported on linux/amd64 and linux/arm64 (the CAS128 is in assembly).
package ringbuf

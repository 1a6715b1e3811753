package ringbuf

// Test-only helpers that reach into the ring's shared memory. They live
// here, like Go's sync/export_test.go, so the test files proper read as
// black-box tests of the ring plus a few clearly named hooks.

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// createAt is Create for a ring whose history starts at tail position pos
// and sequence seq instead of 0, so tests can cross 2^32, 2^63 and lap
// boundaries without publishing that many bytes first. Like Create does
// for position 0, it makes every state word of the data area name a
// position from a lap that can never be read again (here the lap before
// pos - capacity), so no stale word can be mistaken for a record at or
// after pos, nor for an intact record in the window a lapped consumer
// rescans. pos must be record aligned and at least twice the capacity.
func createAt(b []byte, c Config, pos, seq uint64) (*Ring, error) {
	if pos%RecordAlignment != 0 || pos < 2*c.CapacityBytes {
		return nil, fmt.Errorf("createAt: position %d must be 8-byte aligned and >= 2*capacity", pos)
	}
	r, err := Create(b, c)
	if err != nil {
		return nil, err
	}
	for off := uint64(0); off < r.capacity; off += RecordAlignment {
		// The position in [pos-2*capacity, pos-capacity) whose offset is off.
		stale := pos - 2*r.capacity + (off-pos)&r.mask
		r.m.setU64(r.dataOffset+uintptr(off), stale&^stateMask)
	}
	r.m.u64(tailSequenceOffset).Store(seq)
	r.m.u64(tailPositionOffset).Store(pos)
	return r, nil
}

// dataWord returns the 8-byte word of the data area at ring position pos.
func (r *Ring) dataWord(pos uint64) uint64 {
	return r.m.u64(r.dataOffset + uintptr(pos&r.mask)).Load()
}

// pokeData overwrites data-area bytes starting at ring offset off,
// wrapping at the end of the data area.
func (r *Ring) pokeData(off uint64, p []byte) {
	for i, c := range p {
		r.m.b[r.dataOffset+uintptr((off+uint64(i))&r.mask)] = c
	}
}

// setTail overwrites the tail pair.
func (r *Ring) setTail(pos, seq uint64) {
	r.m.u64(tailSequenceOffset).Store(seq)
	r.m.u64(tailPositionOffset).Store(pos)
}

// dataWaiters returns the number of subscribers parked on the data doorbell.
func (r *Ring) dataWaiters() uint32 { return r.m.u32(dataWaitersOffset).Load() }

// groupLost returns the lost counter of the queue group a member belongs to.
func (s *Subscriber) groupLost() uint64 { return s.r.m.u64(s.goff + groupLostOffset).Load() }

// groupSlot returns the index of the member's queue-group slot.
func (s *Subscriber) groupSlot() int {
	return int((s.goff - s.r.groupSlotOffset(0)) / slotLength)
}

// guardedMapping returns size bytes of anonymous shared memory that end
// exactly at a PROT_NONE guard page, so that any access past the end
// faults instead of silently reading a neighbour. The start is 128-byte
// aligned when size is a multiple of 128.
func guardedMapping(t testing.TB, size int) []byte {
	t.Helper()
	page := unix.Getpagesize()
	n := (size + page - 1) / page * page
	m, err := unix.Mmap(-1, 0, n+page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(m) })
	if err := unix.Mprotect(m[n:], unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	return m[n-size : n : n]
}

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
	r, err := createIn(b, c)
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
func (r *Ring) dataWaiters() uint32 { return r.m.cu32(dataWaitersOffset).Load() }

// groupLost returns the lost counter of the queue group a member belongs to.
func (s *Subscriber) groupLost() uint64 { return s.gv.u64(groupLostOffset).Load() }

// groupSlot returns the index of the member's queue-group slot.
func (s *Subscriber) groupSlot() int {
	for i := 0; i < s.r.maxGroups; i++ {
		if s.r.groupSlot(i) == s.gv {
			return i
		}
	}
	return -1
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

// Tests keep a ring in one or two mappings for brevity: the slot areas
// follow the consumer area (see carve). Production keeps each area in a
// region of its own (package daemon); the layout is the same.

// testSizes returns the bytes of a ring's data area and of its consumer
// area followed by all its slot areas.
func testSizes(c Config) (data, rest int, err error) {
	d, cons, err := SizeFor(c)
	if err != nil {
		return 0, 0, err
	}
	return d, cons + (c.MaxSubscribers+c.MaxGroups)*SlotBytes, nil
}

// sizeIn returns the bytes of one mapping that holds all of a ring's
// areas (createIn).
func sizeIn(c Config) (int, error) {
	d, rest, err := testSizes(c)
	return d + rest, err
}

// carve splits rest into the consumer area and subs+groups slot areas,
// as far as rest reaches (an area cut short by its end is short, those
// past it are nil).
func carve(rest []byte, subs, groups int) (consumer []byte, slots [][]byte) {
	n := min(int(consumerBytes), len(rest))
	consumer, rest = rest[:n], rest[n:]
	slots = make([][]byte, subs+groups)
	for i := range slots {
		if len(rest) == 0 {
			break
		}
		n := min(SlotBytes, len(rest))
		slots[i], rest = rest[:n:n], rest[n:]
	}
	return consumer, slots
}

// createWith is Create with the consumer and slot areas carved from rest.
func createWith(data, rest []byte, c Config) (*Ring, error) {
	consumer, slots := carve(rest, c.MaxSubscribers, c.MaxGroups)
	return Create(data, consumer, slots, c)
}

// createIn is Create with every area carved from b (sizeIn bytes).
func createIn(b []byte, c Config) (*Ring, error) {
	d, _, err := testSizes(c)
	if err != nil {
		return nil, err
	}
	if len(b) < d {
		return nil, fmt.Errorf("%w: mapping of %d bytes is smaller than the %d bytes of the data area", ErrConfig, len(b), d)
	}
	return createWith(b[:d], b[d:], c)
}

// attachWith is Attach with the consumer and slot areas carved from rest,
// all mapped writable; the slot counts are the data header's (as found:
// Attach checks them).
func attachWith(data, rest []byte, readOnlyData bool) (*Ring, error) {
	subs, groups := 0, 0
	if len(data) >= int(headerLength) {
		m := newMem(data, nil)
		subs, groups = int(m.plainU32(maxSubscribersOffset)&0xffff), int(m.plainU32(maxGroupsOffset)&0xffff)
	}
	consumer, slots := carve(rest, subs, groups)
	areas := make([]SlotArea, len(slots))
	for i, s := range slots {
		areas[i] = SlotArea{Mem: s, Writable: true}
	}
	return Attach(data, consumer, areas, readOnlyData)
}

// attachIn is Attach of a ring made by createIn in b. It reads the data
// area's size from the header, as found.
func attachIn(b []byte) (*Ring, error) {
	d := len(b)
	if len(b) >= int(headerLength) {
		if m := newMem(b, nil); m.plainU64(totalBytesOffset) <= uint64(len(b)) && m.plainU64(totalBytesOffset) >= uint64(headerLength) {
			t := m.plainU64(totalBytesOffset)
			d = int(t)
		}
	}
	return attachWith(b[:d], b[d:], false)
}

package ringbuf

import (
	"fmt"
	"math/bits"
	"os"
	"time"
)

// Kind is the concurrency shape of a ring, fixed at creation.
type Kind uint32

const (
	// SPSC has one publisher and one subscriber. The publisher is the only
	// writer of the tail; no compare-and-swap loops on the hot path.
	SPSC Kind = 1
	// MPMC lets many publishers append concurrently (each claim is one
	// 16-byte CAS of the tail pair); every broadcast subscriber sees every
	// record in the same order, and queue groups share records among their
	// members.
	MPMC Kind = 2
)

func (k Kind) String() string {
	switch k {
	case SPSC:
		return "spsc"
	case MPMC:
		return "mpmc"
	}
	return fmt.Sprintf("kind(%d)", uint32(k))
}

// Policy is what a publisher does when the ring is full, fixed at creation.
type Policy uint32

const (
	// PolicyBlock: a publisher never overruns the slowest live consumer.
	// TryClaim returns ErrBackPressured; timed publishes wait on the space
	// doorbell. With no consumer attached at all, publishers write freely
	// and the ring keeps only the newest CapacityBytes of records; a
	// subscriber that joins later starts at the tail (FromLatest), or at
	// the oldest record still held for another consumer (FromOldest).
	PolicyBlock Policy = 1
	// PolicyDropOldest: a publisher never waits; it overwrites the oldest
	// records. A lapped consumer is told how many records it lost and
	// resumes half a ring behind the tail, so that it reads a run of
	// records before it can be lapped again; it never returns a torn one.
	PolicyDropOldest Policy = 2
	// PolicyReject: like PolicyBlock, but a record that does not fit is
	// refused at once with ErrFull and counted; nothing ever waits.
	PolicyReject Policy = 3
)

func (p Policy) String() string {
	switch p {
	case PolicyBlock:
		return "block"
	case PolicyDropOldest:
		return "drop-oldest"
	case PolicyReject:
		return "reject"
	}
	return fmt.Sprintf("policy(%d)", uint32(p))
}

// Config describes a ring to create. The zero value is not valid; start
// from DefaultConfig.
type Config struct {
	Kind            Kind
	Policy          Policy
	CapacityBytes   uint64        // data area, a power of two >= 4096
	MaxPayloadBytes uint32        // largest payload; a record must fit in half the capacity
	MaxPublishers   int           // publisher slots (SPSC: 1)
	MaxSubscribers  int           // subscriber slots, broadcast and group members alike (SPSC: 1)
	MaxGroups       int           // queue-group slots (SPSC: 0)
	UnblockTimeout  time.Duration // how long a claim may stay uncommitted before a dead publisher's claim is skipped
}

// DefaultConfig returns a 1 MiB ring of the given kind with 4 KiB max
// payload, PolicyBlock and a 100 ms unblock timeout.
func DefaultConfig(kind Kind) Config {
	c := Config{
		Kind:            kind,
		Policy:          PolicyBlock,
		CapacityBytes:   1 << 20,
		MaxPayloadBytes: 4096,
		MaxPublishers:   16,
		MaxSubscribers:  16,
		MaxGroups:       4,
		UnblockTimeout:  100 * time.Millisecond,
	}
	if kind == SPSC {
		c.MaxPublishers, c.MaxSubscribers, c.MaxGroups = 1, 1, 0
	}
	return c
}

// Validate reports the first problem with c, wrapped in ErrConfig.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	switch c.Kind {
	case SPSC:
		if c.MaxPublishers != 1 || c.MaxSubscribers != 1 || c.MaxGroups != 0 {
			return bad("spsc ring needs MaxPublishers=1, MaxSubscribers=1, MaxGroups=0 (got %d, %d, %d)", c.MaxPublishers, c.MaxSubscribers, c.MaxGroups)
		}
	case MPMC:
	default:
		return bad("unknown kind %d", c.Kind)
	}
	switch c.Policy {
	case PolicyBlock, PolicyDropOldest, PolicyReject:
	default:
		return bad("unknown overflow policy %d", c.Policy)
	}
	if c.CapacityBytes < 4096 || bits.OnesCount64(c.CapacityBytes) != 1 || c.CapacityBytes > 1<<40 {
		return bad("capacity %d bytes is not a power of two between 4096 and 2^40", c.CapacityBytes)
	}
	if c.MaxPayloadBytes == 0 || spanOf(uint64(c.MaxPayloadBytes)) > c.CapacityBytes/2 {
		return bad("max payload %d bytes must be > 0 and its record (%d bytes with header) at most half the capacity (%d bytes)", c.MaxPayloadBytes, spanOf(uint64(c.MaxPayloadBytes)), c.CapacityBytes)
	}
	if c.MaxPublishers < 1 || c.MaxPublishers > 1<<15 || c.MaxSubscribers < 1 || c.MaxSubscribers > 1<<15 || c.MaxGroups < 0 || c.MaxGroups > 1<<15 {
		return bad("slot counts out of range: publishers %d, subscribers %d, groups %d", c.MaxPublishers, c.MaxSubscribers, c.MaxGroups)
	}
	if c.UnblockTimeout <= 0 {
		return bad("unblock timeout %v must be positive", c.UnblockTimeout)
	}
	return nil
}

// SizeFor returns the bytes of a ring's data area and of its consumer
// area; each slot area is SlotBytes. All are multiples of 128.
func SizeFor(c Config) (dataAreaBytes, consumerAreaBytes int, err error) {
	if err := c.Validate(); err != nil {
		return 0, 0, err
	}
	return int(dataOffsetFor(c.MaxPublishers)) + int(c.CapacityBytes), int(consumerBytes), nil
}

// SlotBytes is the size of one slot area (a subscriber or queue-group
// slot); each must be at least this long and 128-byte aligned.
const SlotBytes = slotLength

// SlotArea is one slot's area as this process maps it.
type SlotArea struct {
	Mem      []byte // nil: not mapped in this process
	Writable bool   // this process may write it (it is mapped PROT_WRITE)
}

// Ring is one ring buffer inside shared memory. A *Ring holds no state
// that another process needs: everything shared lives in the mappings. A
// Ring may be used from any number of goroutines; the Publisher and
// Subscriber handles made from it may not (one goroutine each).
//
// The mappings must stay mapped for as long as the Ring or any handle made
// from it is in use.
type Ring struct {
	m              mem
	kind           Kind
	policy         Policy
	capacity       uint64
	mask           uint64
	maxPayload     uint32
	maxPublishers  int
	maxSubscribers int
	maxGroups      int
	dataOffset     uintptr
	unblockTimeout time.Duration
	readOnlyData   bool
	// slotWritable says which slot areas (m.slots) this process may write.
	slotWritable []bool
}

// subSlot is subscriber slot i's area (not mapped: see slotView.mapped).
func (r *Ring) subSlot(i int) slotView { return r.m.slotAt(i) }

// groupSlot is queue-group slot i's area.
func (r *Ring) groupSlot(i int) slotView { return r.m.slotAt(r.maxSubscribers + i) }

// subWritable reports whether this process may write subscriber slot i.
func (r *Ring) subWritable(i int) bool { return r.slotWritable[i] }

// groupWritable is subWritable for queue-group slot i.
func (r *Ring) groupWritable(i int) bool { return r.slotWritable[r.maxSubscribers+i] }

// Create initializes a new ring in its areas, all 128-byte aligned
// writable shared mappings: data and consumer of at least the sizes
// SizeFor returns, and slots, c.MaxSubscribers areas for the subscriber
// slots then c.MaxGroups for the queue-group slots, each at least
// SlotBytes. Create writes the layout versions last: attachers in other
// processes see ErrNotReady until then. Only one process may create a
// ring in given areas; creating over a live ring destroys it. Errors:
// ErrConfig (an invalid config, or areas too small, misaligned or of the
// wrong number).
func Create(data, consumer []byte, slots [][]byte, c Config) (*Ring, error) {
	d, cons, err := SizeFor(c)
	if err != nil {
		return nil, err
	}
	if len(data) < d || len(consumer) < cons {
		return nil, fmt.Errorf("%w: areas of %d and %d bytes are smaller than the %d and %d bytes the ring needs", ErrConfig, len(data), len(consumer), d, cons)
	}
	m := newMem(data[:d], consumer[:cons])
	if !m.aligned() {
		return nil, fmt.Errorf("%w: mapping is not 128-byte aligned", ErrConfig)
	}
	r := newRing(m, c)
	areas := make([]SlotArea, len(slots))
	for i, s := range slots {
		if s == nil {
			return nil, fmt.Errorf("%w: slot area %d is missing", ErrConfig, i)
		}
		areas[i] = SlotArea{Mem: s, Writable: true}
	}
	if err := r.useSlots(areas); err != nil {
		return nil, err
	}
	m.u32(versionOffset).Store(0)
	m.cu32(consumerVersionOffset).Store(0)
	clear(data[:r.dataOffset])
	clear(consumer[:cons])
	created := uint64(time.Now().UnixNano())
	m.setU64(magicOffset, Magic)
	m.setU32(kindOffset, uint32(c.Kind))
	m.setU32(policyOffset, uint32(c.Policy))
	m.setU32(maxPayloadOffset, c.MaxPayloadBytes)
	m.setU64(capacityOffset, c.CapacityBytes)
	m.setU32(maxPublishersOffset, uint32(c.MaxPublishers))
	m.setU32(maxSubscribersOffset, uint32(c.MaxSubscribers))
	m.setU32(maxGroupsOffset, uint32(c.MaxGroups))
	m.setU32(creatorPIDOffset, uint32(os.Getpid()))
	m.setU64(unblockTimeoutNSOffset, uint64(c.UnblockTimeout.Nanoseconds()))
	m.setU64(createdNSOffset, created)
	m.setU64(totalBytesOffset, uint64(d))
	m.setU64(consumerBytesOffset, uint64(cons))
	m.csetU64(consumerMagicOffset, ConsumerMagic)
	m.csetU64(consumerCreatedNSOffset, created)
	m.csetU64(consumerSizeOffset, uint64(cons))
	for i := 0; i < c.MaxSubscribers; i++ {
		sv := r.subSlot(i)
		clear(sv.bytes())
		sv.set(subRingCreatedOffset, created)
	}
	for i := 0; i < c.MaxGroups; i++ {
		gv := r.groupSlot(i)
		clear(gv.bytes())
		gv.set(groupRingCreatedOffset, created)
	}
	// The first claim lands at position 0, whose state word must not look
	// like a record at position 0: make every state word of the data area
	// name a position in the lap before.
	for off := uint64(0); off < c.CapacityBytes; off += RecordAlignment {
		m.setU64(r.dataOffset+uintptr(off), (off-c.CapacityBytes)&^stateMask)
	}
	m.cu32(consumerVersionOffset).Store(LayoutVersion)
	m.u32(versionOffset).Store(LayoutVersion) // store-release: the ring is ready
	return r, nil
}

func newRing(m mem, c Config) *Ring {
	return &Ring{
		m:              m,
		kind:           c.Kind,
		policy:         c.Policy,
		capacity:       c.CapacityBytes,
		mask:           c.CapacityBytes - 1,
		maxPayload:     c.MaxPayloadBytes,
		maxPublishers:  c.MaxPublishers,
		maxSubscribers: c.MaxSubscribers,
		maxGroups:      c.MaxGroups,
		dataOffset:     dataOffsetFor(c.MaxPublishers),
		unblockTimeout: c.UnblockTimeout,
	}
}

// useSlots installs the slot areas.
func (r *Ring) useSlots(slots []SlotArea) error {
	if len(slots) != r.maxSubscribers+r.maxGroups {
		return fmt.Errorf("%w: %d slot areas for a ring of %d subscriber and %d queue-group slots", ErrConfig, len(slots), r.maxSubscribers, r.maxGroups)
	}
	mems := make([][]byte, len(slots))
	r.slotWritable = make([]bool, len(slots))
	for i, s := range slots {
		mems[i], r.slotWritable[i] = s.Mem, s.Mem != nil && s.Writable
	}
	return r.m.setSlots(mems)
}

// checkDataHeader checks the data area's alignment, version and magic.
func (m *mem) checkDataHeader() error {
	if uintptr(m.base)%linePair != 0 {
		return fmt.Errorf("%w: mapping is not 128-byte aligned", ErrConfig)
	}
	v := m.u32(versionOffset).Load() // load-acquire: pairs with Create's store
	magic := m.plainU64(magicOffset)
	if v == 0 {
		return ErrNotReady
	}
	if magic != Magic {
		return fmt.Errorf("%w: magic %#x, want %#x (not a Kaelix ring)", ErrIncompatible, magic, Magic)
	}
	if v != LayoutVersion {
		return &VersionError{Got: v, Want: LayoutVersion}
	}
	return nil
}

// Attach validates a ring made by Create and returns it. data and
// consumer are its data and consumer areas; slots has one entry per
// subscriber slot, then one per queue-group slot (MaxSubscribers +
// MaxGroups of the ring): the areas this process mapped, and which of them
// it may write. A publisher needs every slot mapped (it reads every
// cursor); a subscriber needs only its own, and its group's if it joins
// one, both writable. With readOnlyData the data area may be mapped
// PROT_READ: the ring then offers subscribers only (NewPublisher returns
// ErrReadOnly) and never writes the data area.
//
// Errors: ErrNotReady (retry: the creator is still initializing),
// ErrIncompatible (not a ring, or another layout version: a *VersionError
// naming both), ErrCorrupt (header fields inconsistent with each other or
// with the areas' sizes, or a consumer or slot area that belongs to
// another ring), ErrConfig (a wrong number, size or alignment of areas).
// Attach never reads outside the areas.
func Attach(data, consumer []byte, slots []SlotArea, readOnlyData bool) (*Ring, error) {
	if len(data) < int(headerLength) {
		return nil, fmt.Errorf("%w: data area of %d bytes is too small for a ring header (%d bytes)", ErrCorrupt, len(data), headerLength)
	}
	m := newMem(data, consumer)
	if err := m.checkDataHeader(); err != nil {
		return nil, err
	}
	c := Config{
		Kind:            Kind(m.plainU32(kindOffset)),
		Policy:          Policy(m.plainU32(policyOffset)),
		CapacityBytes:   m.plainU64(capacityOffset),
		MaxPayloadBytes: m.plainU32(maxPayloadOffset),
		MaxPublishers:   int(m.plainU32(maxPublishersOffset)),
		MaxSubscribers:  int(m.plainU32(maxSubscribersOffset)),
		MaxGroups:       int(m.plainU32(maxGroupsOffset)),
		UnblockTimeout:  time.Duration(m.plainU64(unblockTimeoutNSOffset)),
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%w: header describes an invalid ring: %w", ErrCorrupt, err)
	}
	d, cons, _ := SizeFor(c)
	if total := m.plainU64(totalBytesOffset); total != uint64(d) || len(data) < d {
		return nil, fmt.Errorf("%w: header says the data area is %d bytes, its fields need %d, mapping has %d", ErrCorrupt, total, d, len(data))
	}
	if cb := m.plainU64(consumerBytesOffset); cb != uint64(cons) || len(consumer) < cons {
		return nil, fmt.Errorf("%w: header says the consumer area is %d bytes, its fields need %d, mapping has %d", ErrCorrupt, cb, cons, len(consumer))
	}
	if uintptr(m.cbase)%linePair != 0 {
		return nil, fmt.Errorf("%w: consumer area is not 128-byte aligned", ErrConfig)
	}
	switch cv := m.cu32(consumerVersionOffset).Load(); {
	case cv == 0:
		return nil, ErrNotReady
	case m.cplainU64(consumerMagicOffset) != ConsumerMagic || cv != LayoutVersion:
		return nil, fmt.Errorf("%w: consumer area has magic %#x version %d, want %#x version %d", ErrIncompatible, m.cplainU64(consumerMagicOffset), cv, ConsumerMagic, LayoutVersion)
	case m.cplainU64(consumerCreatedNSOffset) != m.plainU64(createdNSOffset) || m.cplainU64(consumerSizeOffset) != uint64(cons):
		return nil, fmt.Errorf("%w: consumer area belongs to another ring (its creation time or size differs from the data area's)", ErrCorrupt)
	}
	r := newRing(newMem(data[:d], consumer[:cons]), c)
	r.readOnlyData = readOnlyData
	if err := r.useSlots(slots); err != nil {
		return nil, err
	}
	created := m.plainU64(createdNSOffset)
	for i := 0; i < r.maxSubscribers; i++ {
		if sv := r.subSlot(i); sv.mapped() && sv.plain64(subRingCreatedOffset) != created {
			return nil, fmt.Errorf("%w: subscriber slot area %d belongs to another ring (its creation time differs from the data area's)", ErrCorrupt, i)
		}
	}
	for i := 0; i < r.maxGroups; i++ {
		if gv := r.groupSlot(i); gv.mapped() && gv.plain64(groupRingCreatedOffset) != created {
			return nil, fmt.Errorf("%w: queue-group slot area %d belongs to another ring (its creation time differs from the data area's)", ErrCorrupt, i)
		}
	}
	return r, nil
}

// publisherReady reports whether every slot is mapped, which publishing
// needs (a publisher reads every cursor).
func (r *Ring) publisherReady() bool {
	for _, p := range r.m.slots {
		if p == nil {
			return false
		}
	}
	return true
}

// MarkDeleted marks the ring deleted, for processes that still map it
// after its files are gone (the daemon deleting a topic by force while
// clients are attached), and wakes everyone asleep on it. Subscribers
// then get ErrDeleted once they have read what was committed before
// (checked when nothing is left to read), and publishers when they next
// take the slow path (a claim past their cached limit). It needs a
// writable data area. Safe from any process and goroutine.
func (r *Ring) MarkDeleted() { r.markDeleted(deletedByOwner) }

// MarkRecreated is MarkDeleted for a ring its owner no longer knows
// because it replaced it with a new ring of the same name (kaelixd
// re-creating a topic whose region files were removed from outside, or a
// client that finds, after a daemon restart, that the daemon's topic of
// that name has other rings). Processes see ErrDeleted as after
// MarkDeleted; Recreated tells them which it was. The first mark wins.
func (r *Ring) MarkRecreated() { r.markDeleted(deletedRecreated) }

func (r *Ring) markDeleted(why uint32) {
	r.m.u32(deletedOffset).CompareAndSwap(0, why) // set once, never cleared
	r.ring(dataBellOffset)
	r.ring(spaceBellOffset)
}

// Values of the deleted word.
const (
	deletedByOwner   = 1 // MarkDeleted
	deletedRecreated = 2 // MarkRecreated
)

// Deleted reports whether MarkDeleted or MarkRecreated was called on the
// ring.
func (r *Ring) Deleted() bool { return r.m.u32(deletedOffset).Load() != 0 }

// Recreated reports whether the ring was marked with MarkRecreated (and
// not MarkDeleted first).
func (r *Ring) Recreated() bool { return r.m.u32(deletedOffset).Load() == deletedRecreated }

// Kind returns the ring's kind.
func (r *Ring) Kind() Kind { return r.kind }

// Policy returns the ring's overflow policy.
func (r *Ring) Policy() Policy { return r.policy }

// CapacityBytes returns the size of the data area in bytes.
func (r *Ring) CapacityBytes() uint64 { return r.capacity }

// MaxPayloadBytes returns the largest payload a record may carry.
func (r *Ring) MaxPayloadBytes() int { return int(r.maxPayload) }

// MaxPublishers returns the ring's number of publisher slots (from its
// header: the daemon rebuilds a topic's spec from it).
func (r *Ring) MaxPublishers() int { return r.maxPublishers }

// TailPosition returns the position (bytes since creation) up to which
// publishers have claimed space.
func (r *Ring) TailPosition() uint64 { return r.m.u64(tailPositionOffset).Load() }

// tail returns a consistent (position, sequence) pair of the tail. The
// pair only ever changes by CAS128 and the position strictly increases,
// so two equal position loads around the sequence load prove the
// sequence belongs to that position.
func (r *Ring) tail() (pos, seq uint64) {
	p := r.m.u64(tailPositionOffset)
	s := r.m.u64(tailSequenceOffset)
	for {
		pos = p.Load()
		seq = s.Load()
		if p.Load() == pos {
			return pos, seq
		}
	}
}

// checkTail rejects a tail no correct publisher writes: positions are
// 8-byte aligned.
func checkTail(pos uint64) error {
	if pos&(RecordAlignment-1) != 0 {
		return corrupt(pos, "tail", pos, "positions are 8-byte aligned")
	}
	return nil
}

// groupCursor is tail for a queue group's cursor pair.
func (r *Ring) groupCursor(off slotView) (pos, seq uint64) {
	p := off.u64(groupCursorOffset)
	s := off.u64(groupCursorSeqOffset)
	for {
		pos = p.Load()
		seq = s.Load()
		if p.Load() == pos {
			return pos, seq
		}
	}
}

// consumerMin returns the lowest position any live consumer still needs
// (broadcast subscriber positions, queue-group cursors, and records group
// members are reading), and whether there is any consumer at all. Slots
// being claimed count with whatever position they hold, which is never
// later than the position their owner will settle on.
func (r *Ring) consumerMin() (uint64, bool) { return r.consumerMinOf(-1, false) }

// settledMinExcept is consumerMinExcept over settled positions only
// (active and reserved slots, group cursors): a slot being claimed holds 0,
// which protects records but is no record boundary to start reading at.
func (r *Ring) settledMinExcept(except int) (uint64, bool) { return r.consumerMinOf(except, true) }

// consumerMinOf is consumerMin, ignoring subscriber slot except and, if
// settled, slots being claimed. Slots this process has not mapped are
// unknown to it and ignored (only publishers need them all).
func (r *Ring) consumerMinOf(except int, settled bool) (uint64, bool) {
	min, any := ^uint64(0), false
	// Group cursors before members' holds: a member stores its hold before
	// it advances the cursor, so whichever of the two this scan misses,
	// it sees the other.
	for i := 0; i < r.maxGroups; i++ {
		if !r.groupSlot(i).mapped() {
			continue
		}
		off := r.groupSlot(i)
		if off.u32(groupStateOffset).Load() == slotFree {
			continue
		}
		any = true
		if p := off.u64(groupCursorOffset).Load(); p < min {
			min = p
		}
	}
	for i := 0; i < r.maxSubscribers; i++ {
		off := r.subSlot(i)
		if i == except || !r.subSlot(i).mapped() {
			continue
		}
		if st := off.u32(subStateOffset).Load(); st == slotFree || st == slotEvicted || settled && st == slotClaiming {
			continue
		}
		if off.u32(subGroupOffset).Load() == 0 {
			any = true
			if p := off.u64(subPositionOffset).Load(); p < min {
				min = p
			}
		} else if h := off.u64(subHoldOffset).Load(); h != noHold {
			any = true
			if h < min {
				min = h
			}
		}
	}
	return min, any
}

// inFlightMin returns the lowest start of a claim another publisher has
// in flight (intent set, not yet committed) and that publisher's slot, or
// (^0, -1) if there is none.
func (r *Ring) inFlightMin(except int) (uint64, int) {
	min, who := ^uint64(0), -1
	for i := 0; i < r.maxPublishers; i++ {
		if i == except {
			continue
		}
		off := r.publisherSlotOffset(i)
		if r.m.u32(off+pubStateOffset).Load() == slotFree || r.m.u64(off+pubIntentLenOffset).Load() == 0 {
			continue
		}
		if p := r.m.u64(off + pubIntentPosOffset).Load(); p < min {
			min, who = p, i
		}
	}
	return min, who
}

// Counters is a snapshot of a ring's shared counters. Each field is read
// with its own atomic load; the set is not one consistent instant.
type Counters struct {
	Published     uint64 // records claimed so far (the tail sequence)
	TailPosition  uint64 // bytes claimed so far
	Consumed      uint64 // records delivered, summed over subscriber slots and groups
	ConsumedBytes uint64 // payload bytes delivered, summed likewise
	Lost          uint64 // records lost to lapping or dead group members, summed
	BackPressure  uint64 // claims refused for lack of space (block or reject)
	Rejected      uint64 // records refused under PolicyReject
	Unblocked     uint64 // dead publishers' claims turned into skips
	Waits         uint64 // futex sleeps by subscribers and publishers
	Wakeups       uint64 // FUTEX_WAKE calls made by publishers and subscribers
	Fences        uint64 // membarrier calls by sleepers (one per park, not per sleep: see WaitSet)
	Lapped        uint64 // gaps lapping opened in consumers' sequences (a lap that lost no record is none)
	Reaped        uint64 // slots of dead processes freed
	Evicted       uint64 // subscriber slots taken from live owners (EvictSubscriber)
	Tampered      uint64 // subscriber slots found changed by another process (see Subscriber.Poll)
	Publishers    int    // live publisher slots
	// Subscribers counts the subscriber slots able to receive (active):
	// every record claimed after one became active reaches it. A dead
	// owner's slot counts until it is reaped.
	Subscribers int
	// Joining counts the slots reserved for a process that has not joined
	// yet (ReserveSubscriberSlot) or being joined (NewSubscriber has not
	// finished): they hold publishers back but receive nothing yet.
	Joining    int
	SlowestLag uint64 // bytes between the tail and the slowest consumer
}

// Counters reads the ring's counters straight from shared memory, without
// talking to any publisher or subscriber. Safe from any process.
func (r *Ring) Counters() Counters {
	pos, seq := r.tail()
	c := Counters{
		Published:    seq,
		TailPosition: pos,
		BackPressure: r.m.u64(backPressureOffset).Load(),
		Rejected:     r.m.u64(rejectedOffset).Load(),
		Unblocked:    r.m.u64(unblockedOffset).Load(),
		Waits:        r.m.u64(waitsOffset).Load(),
		Wakeups:      r.m.u64(wakeupsOffset).Load(),
		Fences:       r.m.u64(fencesOffset).Load(),
		Reaped:       r.m.u64(reapedOffset).Load(),
		Evicted:      r.m.u64(evictedOffset).Load(),
	}
	for i := 0; i < r.maxPublishers; i++ {
		if r.m.u32(r.publisherSlotOffset(i)+pubStateOffset).Load() == slotActive {
			c.Publishers++
		}
	}
	for i := 0; i < r.maxSubscribers; i++ {
		if !r.subSlot(i).mapped() {
			continue
		}
		off := r.subSlot(i)
		switch off.u32(subStateOffset).Load() {
		case slotActive:
			c.Subscribers++
		case slotReserved, slotClaiming:
			c.Joining++
		}
		c.Lapped += off.u64(subLappedOffset).Load()
		c.Unblocked += off.u64(subUnblockedOffset).Load()
		c.Waits += off.u64(subWaitsOffset).Load()
		c.Wakeups += off.u64(subWakeupsOffset).Load()
		c.Fences += off.u64(subFencesOffset).Load()
		c.Tampered += off.u64(subTamperedOffset).Load()
		c.Consumed += off.u64(subConsumedOffset).Load()
		c.ConsumedBytes += off.u64(subConsumedBytesOffset).Load()
		c.Lost += off.u64(subLostOffset).Load() // members' losses are in their groups' slots
	}
	for i := 0; i < r.maxGroups; i++ {
		if !r.groupSlot(i).mapped() {
			continue
		}
		off := r.groupSlot(i)
		c.Lost += off.u64(groupLostOffset).Load()
	}
	if min, ok := r.consumerMin(); ok && min <= pos {
		c.SlowestLag = pos - min
	}
	return c
}

func (r *Ring) count(off uintptr) { r.m.u64(off).Add(1) }

// subscribersChanged bumps the subscriber epoch (see layout.go): called
// after every change of a subscriber slot into or out of slotActive, by
// whoever makes it. Publishers recount when they see it move.
func (r *Ring) subscribersChanged() { r.m.cu32(subscriberEpochOffset).Add(1) }

// activeSubscribers counts the subscriber slots this process has mapped
// that are active (able to receive).
func (r *Ring) activeSubscribers() int {
	n := 0
	for i := 0; i < r.maxSubscribers; i++ {
		if r.subSlot(i).mapped() && r.subSlot(i).u32(subStateOffset).Load() == slotActive {
			n++
		}
	}
	return n
}

package ringbuf

// This file is the single description of the ring's shared-memory layout.
// Every offset the algorithm uses is a named constant built from the one
// before it; layout_test.go pins each to a golden number, so any change is
// deliberate and must bump LayoutVersion. (A counter added in bytes that
// every ring of the current version leaves zero, such as fences and
// sub.fences, is read as 0 from older rings and ignored by older builds:
// that keeps the version.)
//
// A ring (layout version 5) spans one data area, one consumer area and one
// area per subscriber slot and per queue-group slot, each a mapping of its
// own. This is the only topology: Create and Attach take all of them.
//
//   - the data area, written only by publishers (and by the daemon when it
//     resolves a dead publisher's claim or counts), so subscribers can map
//     it read-only;
//   - the consumer area: the two doorbells and the subscriber epoch,
//     written by subscribers, sleepers and wakers alike;
//   - slot area i: subscriber slot i (i < MaxSubscribers) or queue-group
//     slot i-MaxSubscribers, written by the one process that owns it (and
//     the daemon), so that the kernel, not the ring, confines what a
//     subscriber writes to its own cursor. What a subscriber counts goes
//     to its slot. A process maps only the slots it needs: a publisher all
//     of them (it reads every cursor), a subscriber its own and its
//     group's.
//
// In kaelixd (package daemon), partition N of topic T keeps these areas in
// the region files (shm regions, each behind its 4 KiB shm header)
//
//	T.pN     data area            (subscribers get it O_RDONLY)
//	T.pN.c   consumer area
//	T.pN.sK  subscriber slot K    (K < MaxSubscribers)
//	T.pN.gJ  queue-group slot J   (J < MaxGroups)
//
// Every block starts on its own 128-byte line pair (two 64-byte cache
// lines), so that the adjacent-line prefetcher never couples a publisher's
// hot words with a subscriber's.
//
//	data area                                consumer area
//	     0 +-----------------------------+        0 +-----------------------------+
//	       | header: magic, version      |          | consumer header: magic,     |
//	       | (written last), kind,       |          | version (written last),     |
//	       | policy, capacity, max       |          | creation time (pairs it     |
//	       | payload, slot counts,       |          | with its data area), bytes, |
//	       | unblock timeout, creator,   |          | subscriber epoch            |
//	       | creation time, sizes,       |      128 +-----------------------------+
//	       | deleted                     |          | data doorbell | waiters     |
//	   128 +-----------------------------+      256 +-----------------------------+
//	       | tail position | tail seq    |          | space doorbell | waiters    |
//	   256 +-----------------------------+      384 +-----------------------------+
//	       | counters (publishers and    |
//	       | the daemon, slow paths)     |      slot area (one per subscriber
//	   384 +-----------------------------+      slot, then one per queue-group
//	       | publisher table             |      slot; SlotBytes or more)
//	       | MaxPublishers x 128 B       |        0 +-----------------------------+
//	       +-----------------------------+          | subscriber: state, pid,     |
//	       | data: CapacityBytes (power  |          | start, position, consumed,  |
//	       | of two) of records          |          | lost, group, hold, bytes,   |
//	       +-----------------------------+          | ring created, counters      |
//	                                                | or queue group: state, id,  |
//	                                                | cursor pair, consumed, lost,|
//	                                                | creator, ring created       |
//	                                            128 +-----------------------------+
//
// Each slot area repeats the data header's creation time (subRingCreated,
// groupRingCreated), which pairs it with its ring; the consumer header
// does the same. In code, data-area offsets are uintptr, consumer-area
// offsets are consOff (so the compiler keeps the two apart) and slot
// fields are reached through a slotView of the slot's own area: no offset
// carries a tag and no accessor branches on one.
//
// A record is a 32-byte header followed by its payload, padded to 8 bytes:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-------------------------------------------------------------+-----+
//	|              state word: record position (bits 63..3)       |state|
//	|                                                             |2..0 |
//	+-------------------------------------------------------------+-----+
//	|                   payload length (bytes)                          |
//	+---------------------------------+---------------------------------+
//	|          record type            |     publisher slot index        |
//	+---------------------------------+---------------------------------+
//	|                  sequence (ring-wide, 64 bit)                     |
//	|                                                                   |
//	+-------------------------------------------------------------------+
//	|            timestamp (CLOCK_MONOTONIC ns, 0 if unset)             |
//	|                                                                   |
//	+-------------------------------------------------------------------+
//	|                  payload ... (padded to 8 bytes)                  |
//
// The state word carries the record's own 64-bit position in its high
// bits, so a word left over from an earlier lap can never be mistaken for
// the current one and the data area never needs zeroing. Its low three
// bits say what the record is (see stateClaimed and friends). The commit
// protocol: a publisher claims space by advancing the tail pair, writes
// the header fields and then the state word position|stateClaimed, copies
// the payload, and publishes the record with one store of the state word
// position|stateCommitted. A subscriber learns of a record from that word
// alone, never from the tail.
//
// A wrap padding record is a single state word, position|statePadding,
// which means "skip to the start of the buffer"; it needs 8 bytes, so it
// fits any gap a record leaves before the end. An aborted or unblocked
// claim becomes position|stateSkip and keeps its full header, so
// subscribers step over it by its length; its type field holds how many
// sequence numbers it covers.

const (
	// LayoutVersion is the version of this layout. It is stored last when
	// a ring is created; attachers refuse any other non-zero value.
	LayoutVersion = 5

	// Magic identifies a Kaelix ring's data area: "KXRING01" read as a
	// little-endian uint64.
	Magic uint64 = 0x3130474e4952584b

	// ConsumerMagic identifies a ring's consumer area: "KXCONS01".
	ConsumerMagic uint64 = 0x3130534e4f43584b

	linePair = 128 // bytes in one adjacent cache-line pair

	// Data area: header block.
	headerOffset           = 0
	magicOffset            = headerOffset               // uint64 Magic
	versionOffset          = magicOffset + 8            // uint32 layout version, stored last
	kindOffset             = versionOffset + 4          // uint32 Kind
	policyOffset           = kindOffset + 4             // uint32 Policy
	maxPayloadOffset       = policyOffset + 4           // uint32 max payload bytes
	capacityOffset         = maxPayloadOffset + 4       // uint64 data bytes, power of two
	maxPublishersOffset    = capacityOffset + 8         // uint32
	maxSubscribersOffset   = maxPublishersOffset + 4    // uint32
	maxGroupsOffset        = maxSubscribersOffset + 4   // uint32
	creatorPIDOffset       = maxGroupsOffset + 4        // uint32
	unblockTimeoutNSOffset = creatorPIDOffset + 4       // int64 ns
	createdNSOffset        = unblockTimeoutNSOffset + 8 // int64 unix ns; the consumer area repeats it
	totalBytesOffset       = createdNSOffset + 8        // uint64 bytes of the data area
	consumerBytesOffset    = totalBytesOffset + 8       // uint64 bytes of the consumer area
	deletedOffset          = consumerBytesOffset + 8    // uint32 1: deleted (MarkDeleted), 2: recreated (MarkRecreated); 0 until then, set once, never cleared
	headerLength           = deletedOffset + 4

	// Data area: tail pair, written by publishers with one 16-byte CAS, so
	// position and sequence always change together.
	tailOffset         = headerOffset + linePair
	tailPositionOffset = tailOffset             // uint64 next position to claim (bytes)
	tailSequenceOffset = tailPositionOffset + 8 // uint64 next record sequence

	// Data area: counters, written by publishers and the daemon on slow
	// paths only (what subscribers count goes to their own slots, so that
	// a subscriber writes no shared counter; Counters sums both).
	countersOffset     = tailOffset + linePair
	backPressureOffset = countersOffset         // uint64 claims refused (block or reject)
	unblockedOffset    = backPressureOffset + 8 // uint64 dead claims resolved (tryUnblock)
	waitsOffset        = unblockedOffset + 8    // uint64 futex sleeps by publishers
	wakeupsOffset      = waitsOffset + 8        // uint64 FUTEX_WAKE calls by publishers and the daemon
	rejectedOffset     = wakeupsOffset + 8      // uint64 records refused under reject
	reapedOffset       = rejectedOffset + 8     // uint64 dead slots freed
	evictedOffset      = reapedOffset + 8       // uint64 subscriber slots taken from live owners
	fencesOffset       = evictedOffset + 8      // uint64 membarrier calls by publishers about to sleep for space
	countersLength     = fencesOffset + 8 - countersOffset

	// Data area: the publisher table, then the records.
	publishersOffset = countersOffset + linePair

	// Consumer area: header.
	consumerMagicOffset     consOff = 0                           // uint64 ConsumerMagic
	consumerVersionOffset           = consumerMagicOffset + 8     // uint32 layout version, stored last
	consumerCreatedNSOffset         = consumerVersionOffset + 8   // int64: equals the data header's
	consumerSizeOffset              = consumerCreatedNSOffset + 8 // uint64 bytes of the consumer area
	// uint32 subscriber epoch: bumped (atomic add) after every change of a
	// subscriber slot into or out of slotActive, so that a publisher can
	// keep a count of the subscribers able to receive and recount only
	// when it moves (Publisher.Subscribers). Written rarely (joins and
	// leaves), read by publishers on every connectedness check: it shares
	// the header's read-mostly line, never a hot one.
	subscriberEpochOffset = consumerSizeOffset + 8
	consumerHeaderLength  = subscriberEpochOffset + 4

	// Consumer area: doorbells, 32-bit futex words, never FUTEX_PRIVATE_FLAG.
	dataBellOffset     consOff = linePair
	dataWaitersOffset          = dataBellOffset + 4 // uint32 subscribers asleep
	spaceBellOffset            = dataBellOffset + linePair
	spaceWaitersOffset         = spaceBellOffset + 4 // uint32 publishers asleep

	// consumerBytes is the size of the consumer area.
	consumerBytes = spaceBellOffset + linePair

	slotLength = linePair

	// Publisher slot fields (offsets within a slot).
	pubStateOffset       = 0                        // uint32 slotFree/slotClaiming/slotActive
	pubPIDOffset         = pubStateOffset + 4       // uint32 owner pid
	pubStartOffset       = pubPIDOffset + 4         // uint64 owner start time (clock ticks since boot)
	pubIntentPosOffset   = pubStartOffset + 8       // uint64 position of the claim in flight
	pubIntentLenOffset   = pubIntentPosOffset + 8   // uint64 bytes of that claim (0: none in flight)
	pubIntentSeqOffset   = pubIntentLenOffset + 8   // uint64 sequence of the claim's first record
	pubIntentCountOffset = pubIntentSeqOffset + 8   // uint64 records in the claim (0: padding)
	pubRecordsOffset     = pubIntentCountOffset + 8 // uint64 records committed by this slot

	// Subscriber slot fields (offsets within the slot's area).
	subStateOffset         = 0                          // uint32 slot state
	subPIDOffset           = subStateOffset + 4         // uint32 owner pid
	subStartOffset         = subPIDOffset + 4           // uint64 owner start time
	subPositionOffset      = subStartOffset + 8         // uint64 next position to read (broadcast)
	subConsumedOffset      = subPositionOffset + 8      // uint64 records delivered
	subLostOffset          = subConsumedOffset + 8      // uint64 records lost to lapping
	subGroupOffset         = subLostOffset + 8          // uint32 queue-group slot + 1, 0 = broadcast
	subHoldOffset          = subGroupOffset + 8         // uint64 position a group member is reading, noHold if none
	subConsumedBytesOffset = subHoldOffset + 8          // uint64 payload bytes delivered
	subRingCreatedOffset   = subConsumedBytesOffset + 8 // int64: the data header's creation time
	// Counters this slot's subscribers bumped, so that a subscriber writes
	// no shared counter (Counters sums them over the slots). Cumulative
	// across the slot's owners.
	subLappedOffset    = subRingCreatedOffset + 8 // uint64 gaps lapping opened (see Subscriber.resync)
	subUnblockedOffset = subLappedOffset + 8      // uint64 dead claims stepped over
	subWaitsOffset     = subUnblockedOffset + 8   // uint64 futex sleeps
	subWakeupsOffset   = subWaitsOffset + 8       // uint64 FUTEX_WAKE calls (for publishers waiting for space)
	subTamperedOffset  = subWakeupsOffset + 8     // uint64 changes to this slot by other processes detected
	subFencesOffset    = subTamperedOffset + 8    // uint64 membarrier calls before sleeping (one per park, see wait.go)

	// Queue-group slot fields (offsets within the slot's area). The cursor
	// pair is 16-byte aligned for CAS128.
	groupStateOffset        = 0                           // uint32 slot state (high 16 bits) | live members (low 16 bits)
	groupIDOffset           = groupStateOffset + 4        // uint32 user-chosen group id
	groupCursorOffset       = groupStateOffset + 16       // uint64 next position to hand out
	groupCursorSeqOffset    = groupCursorOffset + 8       // uint64 sequence expected there
	groupConsumedOffset     = groupCursorSeqOffset + 8    // uint64 records handed out
	groupLostOffset         = groupConsumedOffset + 8     // uint64 records lost (lapped or member died holding)
	groupCreatorPIDOffset   = groupLostOffset + 8         // uint32 pid of the process the daemon made the group for (ReserveGroup)
	groupCreatorStartOffset = groupCreatorPIDOffset + 8   // uint64 its start time
	groupRingCreatedOffset  = groupCreatorStartOffset + 8 // int64: the data header's creation time

	// Record header fields (offsets from the record's start).
	recStateOffset     = 0                      // uint64 position | state
	recLengthOffset    = recStateOffset + 8     // uint32 payload bytes
	recTypeOffset      = recLengthOffset + 4    // uint16 record type
	recPublisherOffset = recTypeOffset + 2      // uint16 publisher slot index
	recSequenceOffset  = recPublisherOffset + 2 // uint64 ring-wide sequence
	recTimestampOffset = recSequenceOffset + 8  // int64 CLOCK_MONOTONIC ns
	// RecordHeaderLength is the bytes of header before each payload.
	RecordHeaderLength = recTimestampOffset + 8

	// RecordAlignment is the alignment of every record's start, in bytes.
	RecordAlignment = 8
)

// Record states, the low three bits of a record's state word.
const (
	stateMask      = 7
	stateClaimed   = 1 // space owned by a publisher, not yet readable
	stateCommitted = 2 // a readable record
	statePadding   = 3 // wrap padding: skip to the start of the buffer
	stateSkip      = 4 // aborted or unblocked claim: skip by its length

	// stateUnwritten is not stored: readers use it for a word that names
	// another position (not written in this lap yet).
	stateUnwritten = 8
)

// Slot states, shared by the three tables.
const (
	slotFree     = 0
	slotClaiming = 1
	slotActive   = 2
	// slotEvicted = 3, subscriber slots only: see evict.go.
	slotReserved = 4 // subscriber slots only: held by ReserveSubscriberSlot for a process that has not joined yet
)

const noHold = ^uint64(0)

// consOff is an offset into the consumer area (the data area's offsets
// are plain uintptr): a distinct type, so that mem's accessors for the two
// areas cannot be handed each other's offsets.
type consOff uintptr

// publisherSlotOffset returns the data-area offset of publisher slot i.
func (r *Ring) publisherSlotOffset(i int) uintptr {
	return publishersOffset + uintptr(i)*slotLength
}

// dataOffsetFor is where the records start in the data area.
func dataOffsetFor(pubs int) uintptr {
	return publishersOffset + uintptr(pubs)*slotLength
}

// align8 rounds n up to RecordAlignment.
func align8(n uint64) uint64 { return (n + RecordAlignment - 1) &^ (RecordAlignment - 1) }

// spanOf is the bytes a record with an n-byte payload occupies.
func spanOf(n uint64) uint64 { return align8(RecordHeaderLength + n) }

package ringbuf

// SlotBacklog is one consumer slot's backlog, for tools (kaelixctl stat,
// the daemon's metrics): what BacklogStat shows for an Aeron
// subscription. Every field is read with its own atomic load, so a row is
// not one consistent instant; it is for diagnostics, never for decisions.
type SlotBacklog struct {
	// Index is the slot index: a subscriber slot (0..MaxSubscribers-1)
	// or, with Group set and Member false, a queue-group slot
	// (0..MaxGroups-1).
	Index int
	// Group is the queue-group slot index a subscriber slot belongs to,
	// or the group slot itself; -1 for a broadcast subscriber.
	Group int
	// GroupID is the group's id as the daemon wrote it, and Members its
	// live members (group slots only).
	GroupID uint32
	Members int
	// State is "active", "reserved", "joining", "evicted" or, for a group
	// slot, "group".
	State string
	// PID and Start identify the owner as it wrote them (pid, start time in
	// clock ticks since boot); for a group slot, the process it was made
	// for. Zero if unknown.
	PID   uint32
	Start uint64
	// Position is the next position it reads (bytes); for a member, its
	// group's cursor (or the record it holds: Holding).
	Position uint64
	Holding  bool
	// LagBytes and LagRecords are how far the tail is past Position. A
	// record count is known only when the record at Position is still in
	// the ring (LagRecordsKnown); a lapped reader's is not.
	LagBytes        uint64
	LagRecords      uint64
	LagRecordsKnown bool
	// Consumed, ConsumedBytes (payload) and Lost are the slot's own
	// cumulative counts (a member's losses are its group's).
	Consumed, ConsumedBytes, Lost uint64
}

// Backlog lists every subscriber slot this process has mapped that is not
// free, then every queue-group slot in use, with its lag behind the tail.
// Reads only (safe on a read-only mapping of every area), from any
// process; bounded work (one pass over the slots).
func (r *Ring) Backlog() []SlotBacklog {
	tail, seq := r.tail()
	lag := func(b *SlotBacklog) {
		if tail <= b.Position {
			b.LagRecordsKnown = true
			return
		}
		b.LagBytes = tail - b.Position
		if s, ok := r.sequenceAt(b.Position); ok && s <= seq {
			b.LagRecords, b.LagRecordsKnown = seq-s, true
		}
	}
	var out []SlotBacklog
	for i := 0; i < r.maxSubscribers; i++ {
		if !r.subSlot(i).mapped() {
			continue
		}
		off := r.subSlot(i)
		var state string
		switch off.u32(subStateOffset).Load() {
		case slotActive:
			state = "active"
		case slotReserved:
			state = "reserved"
		case slotClaiming:
			state = "joining"
		case slotEvicted:
			state = "evicted"
		default:
			continue
		}
		b := SlotBacklog{
			Index: i, Group: -1, State: state,
			PID:           off.u32(subPIDOffset).Load(),
			Start:         off.u64(subStartOffset).Load(),
			Position:      off.u64(subPositionOffset).Load(),
			Consumed:      off.u64(subConsumedOffset).Load(),
			ConsumedBytes: off.u64(subConsumedBytesOffset).Load(),
			Lost:          off.u64(subLostOffset).Load(),
		}
		if g := off.u32(subGroupOffset).Load(); g != 0 && int(g) <= r.maxGroups {
			b.Group = int(g) - 1
			if h := off.u64(subHoldOffset).Load(); h != noHold {
				b.Position, b.Holding = h, true
			} else if r.groupSlot(b.Group).mapped() {
				b.Position, _ = r.groupCursor(r.groupSlot(b.Group))
			}
		}
		lag(&b)
		out = append(out, b)
	}
	for i := 0; i < r.maxGroups; i++ {
		if !r.groupSlot(i).mapped() {
			continue
		}
		off := r.groupSlot(i)
		v := off.u32(groupStateOffset).Load()
		if v>>16 == slotFree {
			continue
		}
		pos, _ := r.groupCursor(off)
		b := SlotBacklog{
			Index: i, Group: i, State: "group", Members: int(v & 0xffff),
			GroupID:  off.u32(groupIDOffset).Load(),
			PID:      off.u32(groupCreatorPIDOffset).Load(),
			Start:    off.u64(groupCreatorStartOffset).Load(),
			Position: pos,
			Consumed: off.u64(groupConsumedOffset).Load(),
			Lost:     off.u64(groupLostOffset).Load(),
		}
		lag(&b)
		out = append(out, b)
	}
	return out
}

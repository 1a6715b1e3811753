package ringbuf

// Subscriber invariants:
//   - A broadcast subscriber owns its slot's position word: it is the next
//     position it will read, published (store-release) after each Poll.
//     Under PolicyBlock/PolicyReject no publisher claims past
//     position + capacity, so [position, tail) is stable while it reads.
//   - A queue-group member takes a record by CAS128 of its group's cursor
//     pair (position, sequence) from the record to the one after it. Under
//     PolicyBlock it first publishes the record's position in its slot's
//     hold word, which publishers count as a consumer position, so the
//     record cannot be overwritten while the member reads it.
//   - Under PolicyDropOldest nothing holds publishers back. A consumer
//     copies each record out, then re-reads the tail: the record is intact
//     iff tail <= record position + capacity. A torn copy is discarded and
//     the consumer resumes half a ring behind the tail (resync), counting
//     the records it lost by sequence number.
//   - Every length, state and position read from the ring is checked before
//     it is used; a bad one gives a *CorruptError, never an out-of-bounds
//     access or an endless loop.

import (
	"fmt"
	"time"
)

// From says where a new subscriber starts.
type From int

const (
	// FromLatest starts at the tail: only records claimed after joining.
	FromLatest From = iota
	// FromOldest starts at the oldest record still available: under
	// PolicyDropOldest the oldest intact record in the ring; under
	// PolicyBlock/PolicyReject the position of the slowest other consumer
	// (the tail if there is none, as nothing is retained for absent
	// subscribers).
	FromOldest
)

// SubscriberOptions configures a Subscriber.
type SubscriberOptions struct {
	From From
	// Group, if non-zero, joins the queue group with this id (MPMC only):
	// members share the group's records, each record going to exactly one
	// member. A group is created by its first member and freed when its
	// last member leaves; a new group starts at the tail.
	Group uint32
	// Wait is the wait strategy used by PollWait.
	Wait WaitStrategy
	// SpinBudget and YieldBudget bound the Backoff strategy's busy-spin
	// and yield phases before it parks (defaults 10000 and 100).
	SpinBudget, YieldBudget int
	// Slot, if non-zero, is the index + 1 of the subscriber slot to take:
	// one reserved for this process (Ring.ReserveSubscriberSlot) or free.
	// Zero takes any free slot this process may write.
	Slot int
	// GroupSlot, if non-zero, is the index + 1 of the queue-group slot in
	// which to join (or create) Group: the one the daemon chose
	// (Ring.ReserveGroup). Zero looks the group up by id.
	GroupSlot int
}

// Record is a record as delivered to a Handler. Payload aliases the shared
// mapping (or, under PolicyDropOldest, the subscriber's scratch buffer) and
// is valid only until the Handler returns; copy what you keep.
type Record struct {
	Position    uint64 // ring position of the record's header (bytes)
	Sequence    uint64 // ring-wide sequence number
	TimestampNS int64  // CLOCK_MONOTONIC ns at claim, 0 if the publisher did not stamp
	Type        uint16 // record type set by the publisher
	Publisher   uint16 // publisher slot index
	Payload     []byte
}

// Handler receives records from Poll, on the polling goroutine.
type Handler func(Record)

// Subscriber reads records from a ring. It owns one subscriber slot until
// Close. A Subscriber must be used by one goroutine at a time.
type Subscriber struct {
	r       *Ring
	slot    int
	sv      slotView // the slot's area
	gv      slotView // the queue-group slot's area, if group
	group   bool
	opts    SubscriberOptions
	pos     uint64 // broadcast: next position to read
	stored  uint64 // broadcast: the position last stored in the slot (anything else there was written by another process)
	expect  uint64 // broadcast: sequence expected next
	lost    uint64
	lapped  bool // a lap opened a gap that Poll/Read has not reported yet (ErrLapped)
	gap     bool // records were lost since the last delivery: a further lap widens the same gap
	scratch []byte
	holding bool
	rec     Record // the record next found, handed to the handler

	consumed   uint64
	consumedB  uint64 // payload bytes delivered
	baseC      uint64 // the slot's consumed count when this subscriber took it
	baseB      uint64 // and its consumed bytes
	emptyPolls uint32
	stuckPos   uint64
	stuckSince int64
	fenced     bool    // publish positions with a fenced store: this process is no membarrier target
	fast       bool    // broadcast, not PolicyDropOldest, not closed: Read and Poll may take their fast paths
	hot        ringHot // the ring's geometry, for the fast paths
	closed     bool
	self       *WaitSet // a set of this subscriber alone, for PollWait
}

// NewSubscriber takes a subscriber slot and joins the ring. Errors:
// ErrNoSlot (all slots live, or for a new queue group all group slots
// live), ErrUnsupported (a queue group on an SPSC ring).
func (r *Ring) NewSubscriber(opts SubscriberOptions) (*Subscriber, error) {
	if opts.Group != 0 && r.kind != MPMC {
		return nil, fmt.Errorf("%w: queue groups need an MPMC ring", ErrUnsupported)
	}
	if opts.SpinBudget <= 0 {
		opts.SpinBudget = 10000
	}
	if opts.YieldBudget <= 0 {
		opts.YieldBudget = 100
	}
	pid, start := selfIdentity()
	slot, reserved := -1, false
	if opts.Slot != 0 {
		i := opts.Slot - 1
		if i < 0 || i >= r.maxSubscribers || !r.subWritable(i) {
			return nil, fmt.Errorf("%w: subscriber slot %d is not one this process may take", ErrNoSlot, i)
		}
		// The daemon reserves every slot it hands out: a free one means the
		// reservation was cancelled or evicted. The reservation is taken
		// only while it is this process's (one CAS over state and owner:
		// it may have been cancelled and made again for another process
		// since the daemon's reply).
		if !r.casSubState(i, slotReserved, slotClaiming, Owner{pid, start}) {
			return nil, fmt.Errorf("%w: subscriber slot %d is neither free nor reserved for this process", ErrNoSlot, i)
		}
		slot, reserved = i, true
	}
	for pass := 0; pass < 2 && slot < 0; pass++ {
		for i := 0; i < r.maxSubscribers; i++ {
			if !r.subWritable(i) {
				continue
			}
			// Our identity with the claim, in one CAS: the reaper frees a
			// slot being joined whose owner is dead (a joiner killed
			// mid-join), and the pid a free slot still holds is its last
			// owner's.
			if r.subSlot(i).u32(subStateOffset).Load() == slotFree && r.claimFree(i, Owner{pid, start}) {
				slot = i
				break
			}
		}
		if slot < 0 && pass == 0 {
			r.reapSubscribers(nil)
		}
	}
	if slot < 0 {
		return nil, fmt.Errorf("%w: all %d subscriber slots are held by live processes", ErrNoSlot, r.maxSubscribers)
	}
	off := r.subSlot(slot)
	// While claiming, the slot counts as a consumer at position 0 (or, if
	// reserved, at the position its reservation holds), which holds back
	// every publisher that rescans until we settle below.
	held := uint64(0)
	if reserved {
		held = off.u64(subPositionOffset).Load()
	}
	off.u64(subHoldOffset).Store(noHold)
	off.u32(subGroupOffset).Store(0)
	off.u64(subPositionOffset).Store(held)
	off.u32(subPIDOffset).Store(pid)
	off.u64(subStartOffset).Store(start)
	// consumed, consumed bytes and lost are cumulative per slot (the ring's
	// counters sum them and must never go back): this subscriber adds to
	// what the slot holds.
	baseC, baseB := off.u64(subConsumedOffset).Load(), off.u64(subConsumedBytesOffset).Load()
	if err := checkTail(r.TailPosition()); err != nil {
		off.u32(subStateOffset).Store(slotFree)
		return nil, err
	}
	s := &Subscriber{r: r, slot: slot, sv: off, opts: opts, fenced: !lightFenceOK(), baseC: baseC, baseB: baseB, hot: r.hot()}
	if r.policy == PolicyDropOldest {
		s.scratch = make([]byte, r.maxPayload)
	}
	if opts.Group != 0 {
		g, err := r.joinGroup(opts.Group, opts.GroupSlot-1)
		if err != nil {
			off.u32(subStateOffset).Store(slotFree)
			return nil, err
		}
		s.group, s.gv = true, r.groupSlot(g)
		off.u32(subGroupOffset).Store(uint32(g + 1))
	} else {
		s.pos, s.expect = s.startPosition(opts.From, reserved, held)
		off.u64(subPositionOffset).Store(s.pos)
		s.stored = s.pos
		s.fast = r.policy != PolicyDropOldest && s.pos&(RecordAlignment-1) == 0
	}
	if !off.u32(subStateOffset).CompareAndSwap(slotClaiming, slotActive) {
		// Evicted while joining (EvictSubscriber): undo and say so.
		if s.group {
			r.leaveGroup(s.gv)
		}
		off.u32(subStateOffset).CompareAndSwap(slotEvicted, slotFree)
		return nil, ErrEvicted
	}
	s.self = newWaitSet([]*Subscriber{s})
	// After the position store and the state CAS: a publisher that sees
	// the new epoch counts this subscriber, and every record it claims
	// from then on lies at or past that position.
	r.subscribersChanged()
	return s, nil
}

// startPosition picks a new broadcast subscriber's first position and the
// sequence expected there. Called after the slot holds position 0, or,
// if reserved, the position held since the reservation.
func (s *Subscriber) startPosition(from From, reserved bool, held uint64) (uint64, uint64) {
	r := s.r
	pos, seq := r.tail()
	if from != FromOldest {
		return pos, seq
	}
	if r.policy == PolicyDropOldest {
		if q, qseq, ok := r.oldestIntact(pos); ok {
			return q, qseq
		}
		return pos, seq
	}
	// The slowest other consumer's position is protected from publishers.
	min, any := r.settledMinExcept(s.slot)
	if reserved && (!any || held < min) {
		min, any = held, true
	}
	if !any || min >= pos {
		return pos, seq
	}
	// The sequence there is learned from the first record read.
	return min, ^uint64(0)
}

// Close leaves the ring and frees the slot. Safe to call twice.
func (s *Subscriber) Close() error {
	if s.closed {
		return nil
	}
	s.closed, s.fast = true, false
	// Only while the slot is still this process's: one taken from it
	// (evicted and then freed on its death's wrong report, say) and given
	// to another subscriber is not freed under that one.
	pid, start := selfIdentity()
	s.r.releaseSubscriber(s.slot, Owner{pid, start}, false)
	s.notifySpace()
	return nil
}

// Ring returns the ring the subscriber reads.
func (s *Subscriber) Ring() *Ring { return s.r }

// checkSlot verifies, on the full paths of Poll and Read, that this
// subscriber's slot still says what it wrote there. The consumer area is
// writable by every consumer of the ring, so another process can change
// it (see SECURITY.md); this detects it instead of letting
// publishers act on a forged cursor unnoticed. Outcomes:
//   - ErrEvicted: EvictSubscriber took the slot.
//   - state or owner changed: a *CorruptError on every call; the slot
//     may now belong to someone else, so subscribe again.
//   - position changed: it is restored, and if publishers have since
//     overwritten records this subscriber had not read, it resumes as a
//     lapped one does (resync) and counts them in Lost. One *CorruptError
//     reports it; the next call goes on.
//
// Each detection is counted in Counters.Tampered.
func (s *Subscriber) checkSlot() error {
	st := s.sv.u32(subStateOffset).Load()
	if st == slotEvicted {
		return ErrEvicted
	}
	r := s.r
	pid, start := selfIdentity()
	if st != slotActive || s.sv.u32(subPIDOffset).Load() != pid || s.sv.u64(subStartOffset).Load() != start {
		s.count(subTamperedOffset)
		return &CorruptError{Position: s.Position(), Field: "subscriber slot", Value: uint64(st),
			Detail: "its state or owner was changed by another process; this subscriber no longer holds it: close it and subscribe again"}
	}
	if s.group {
		if g := s.sv.u32(subGroupOffset).Load(); uintptr(g) == 0 || r.groupSlot(int(g)-1) != s.gv {
			s.count(subTamperedOffset)
			return &CorruptError{Position: s.Position(), Field: "subscriber group", Value: uint64(g),
				Detail: "its queue-group index was changed by another process: close it and subscribe again"}
		}
		return nil
	}
	cur := s.sv.u64(subPositionOffset).Load()
	if cur == s.stored {
		return nil
	}
	s.count(subTamperedOffset)
	s.sv.u64(subPositionOffset).Store(s.pos)
	s.stored = s.pos
	lost := s.lost
	if r.TailPosition() > s.pos+r.capacity && s.resync() {
		// Publishers went past records we had not read.
		s.lapped = false
		s.sv.u64(subPositionOffset).Store(s.pos)
		s.stored = s.pos
	}
	return &CorruptError{Position: s.pos, Field: "subscriber position", Value: cur,
		Detail: fmt.Sprintf("another process moved this subscriber's cursor (it had stored %d); restored, %d records lost meanwhile", s.stored, s.lost-lost)}
}

// Slot returns the index of the subscriber slot this subscriber holds
// (see Ring.SubscriberSlots and Ring.EvictSubscriber).
func (s *Subscriber) Slot() int { return s.slot }

// count bumps one of this subscriber's counters, kept in its own slot so
// that a subscriber writes no shared counter (Counters sums the slots).
func (s *Subscriber) count(field uintptr) { s.sv.u64(field).Add(1) }

// notifySpace is Ring.notifySpace counting the wakeup in the slot.
func (s *Subscriber) notifySpace() {
	if s.hot.spaceWaiters.Load() != 0 {
		s.wakeSpace()
	}
}

func (s *Subscriber) wakeSpace() {
	r := s.r
	r.m.cu32(spaceBellOffset).Add(1)
	s.count(subWakeupsOffset)
	futexWakeAll(r.m.futexAddr(spaceBellOffset))
}

// Position returns the next position (bytes) this subscriber will read;
// for a queue-group member, the group's cursor.
func (s *Subscriber) Position() uint64 {
	if s.group {
		p, _ := s.r.groupCursor(s.gv)
		return p
	}
	return s.pos
}

// Lag returns how many bytes of claimed records this subscriber (or its
// queue group) has not read yet.
func (s *Subscriber) Lag() uint64 {
	t, p := s.r.TailPosition(), s.Position()
	if t < p {
		return 0
	}
	return t - p
}

// Lost returns how many records this subscriber has lost to lapping (and,
// for a group member, that its group lost), in total.
func (s *Subscriber) Lost() uint64 { return s.lost }

// Consumed returns how many records this subscriber has delivered.
func (s *Subscriber) Consumed() uint64 { return s.consumed }

// Poll delivers up to limit records to h, in ring order, and returns how
// many it delivered. Zero records and a nil error means nothing to read.
// Expected outcomes: ErrLapped (PolicyDropOldest; the subscriber has
// already resumed half a ring behind the tail, Lost tells the total; once
// per gap in the delivered sequence);
// ErrStalled (the record at the subscriber's position has stayed claimed
// past the unblock timeout and its publisher is alive or unknown);
// ErrEvicted (the daemon took the slot, see Ring.EvictSubscriber). Ring
// memory that no correct publisher writes gives a *CorruptError
// (errors.Is ErrCorrupt) and leaves the position on the bad record; so
// does finding this subscriber's own slot changed by another process
// (see checkSlot for what is restored).
// No allocation and no syscall, except a FUTEX_WAKE when a publisher
// sleeps for space.
func (s *Subscriber) Poll(h Handler, limit int) (int, error) {
	if s.fastOK() {
		// Fast path, as in Read: committed, valid records only, read on
		// the handle's copy of the ring's geometry (ringHot); the counters
		// are summed in locals and stored once for the whole run. (The
		// cursor is kept in s per record: a handler may Poll again.)
		n := 0
		var st uint64
		var bytes uint64
		pos := s.pos
		// rec is assigned field by field, not built as a composite
		// literal: a Record (six fields) lives in memory, and a literal
		// zeroes its temporary before filling it, per record.
		var rec Record
		for n < limit {
			pos = s.pos
			off := pos & s.hot.mask
			v := s.hot.record(off)
			st = v.state().Load() // load-acquire: pairs with the commit store
			if st != pos|stateCommitted {
				break
			}
			ln := uint64(v.length())
			span := spanOf(ln)
			if ln > s.hot.maxPayload || off+span > s.hot.capacity {
				break
			}
			seq := v.sequence()
			rec.Position, rec.Sequence, rec.TimestampNS = pos, seq, v.timestamp()
			rec.Type, rec.Publisher, rec.Payload = v.typ(), v.publisher(), v.payload(ln)
			h(rec)
			s.expect = seq + 1
			pos += span
			s.pos = pos
			bytes += ln
			n++
			if !s.fast { // the handler closed the subscriber
				break
			}
		}
		nothing := st&^stateMask != pos || st&stateMask == stateClaimed
		if n > 0 {
			s.consumed += uint64(n)
			s.consumedB += bytes
			s.publishFast()
			if n == limit || nothing || !s.fast {
				return n, nil
			}
			// Padding, a skip or something to report: the full path goes on.
			k, err := s.poll(h, limit-n)
			return n + k, err
		}
		if nothing && (s.emptyPolls+1)&stuckCheckEvery != 0 {
			s.emptyPolls++
			return 0, nil
		}
	}
	return s.poll(h, limit)
}

// poll is Poll's full path.
func (s *Subscriber) poll(h Handler, limit int) (int, error) {
	if s.closed {
		return 0, ErrClosed
	}
	if err := s.checkSlot(); err != nil {
		return 0, err
	}
	if s.drainedDeleted() {
		return 0, ErrDeleted
	}
	n := 0
	var err error
	for n < limit {
		var ok bool
		ok, err = s.next(-1)
		if err != nil || !ok {
			break
		}
		h(s.rec)
		s.done(&s.rec)
		n++
	}
	s.publish(n)
	if err != nil {
		return n, err
	}
	if s.lapped {
		s.lapped = false
		return n, ErrLapped
	}
	if n == 0 {
		return 0, s.checkStuck(false)
	}
	return n, nil
}

// Read copies the next record's payload into dst and returns its length
// and header. Zero and a nil error: nothing to read. Errors as Poll, plus
// ErrShortBuffer (the record stays unread, for a queue-group member too).
// ErrLapped may come with n > 0: then rec is valid and is the first record
// after the records lost.
func (s *Subscriber) Read(dst []byte) (int, Record, error) {
	if s.fastOK() {
		// Fast path: the record at the position is committed and valid,
		// or plainly not there yet. Everything else (padding, skips,
		// stalls, corruption, short buffers) takes the full path below.
		r := s.r
		pos := s.pos
		off := pos & r.mask
		base := r.dataOffset + uintptr(off)
		hdr := r.m.recordAt(base)
		st := hdr.state().Load() // load-acquire: pairs with the commit store
		if st == pos|stateCommitted {
			n := uint64(hdr.length())
			if span := spanOf(n); n <= uint64(len(dst)) && n <= uint64(r.maxPayload) && off+span <= r.capacity {
				rec := Record{Position: pos, Sequence: hdr.sequence(), TimestampNS: hdr.timestamp(), Type: hdr.typ(), Publisher: hdr.publisher()}
				start := base + RecordHeaderLength
				copy(dst, r.m.b[start:start+uintptr(n)])
				rec.Payload = dst[:n]
				s.expect = rec.Sequence + 1
				s.pos = pos + span
				s.consumed++
				s.consumedB += n
				s.publishFast()
				return int(n), rec, nil
			}
		} else if (st&^stateMask != pos || st&stateMask == stateClaimed) && (s.emptyPolls+1)&stuckCheckEvery != 0 {
			s.emptyPolls++
			return 0, Record{}, nil
		}
	}
	if s.closed {
		return 0, Record{}, ErrClosed
	}
	if err := s.checkSlot(); err != nil {
		return 0, Record{}, err
	}
	if s.drainedDeleted() {
		return 0, Record{}, ErrDeleted
	}
	ok, err := s.next(len(dst))
	rec := s.rec
	if err != nil || !ok {
		s.publish(0)
		if err == nil && s.lapped {
			s.lapped = false
			err = ErrLapped
		}
		if err == nil {
			err = s.checkStuck(false)
		}
		return 0, Record{}, err
	}
	n := copy(dst, rec.Payload)
	rec.Payload = dst[:n]
	s.done(&rec)
	s.publish(1)
	if s.lapped {
		// rec is valid: the first record after the gap.
		s.lapped = false
		return n, rec, ErrLapped
	}
	return n, rec, nil
}

// done finishes a delivered record.
func (s *Subscriber) done(rec *Record) {
	s.gap = false
	s.consumed++
	s.consumedB += uint64(len(rec.Payload))
	if s.group {
		if s.holding {
			s.sv.u64(subHoldOffset).Store(noHold)
			s.holding = false
		}
		return
	}
	s.pos = rec.Position + spanOf(uint64(len(rec.Payload)))
	s.expect = rec.Sequence + 1
}

// fastOK reports whether Poll and Read may take their fast paths: a
// broadcast subscriber not under drop-oldest, whose slot is still active
// and still holds the position it stored (else the full path reports the
// eviction or the change).
func (s *Subscriber) fastOK() bool {
	return s.fast && s.sv.u32(subStateOffset).Load() == slotActive && s.sv.u64(subPositionOffset).Load() == s.stored
}

// drainedDeleted reports whether the ring was deleted (Ring.MarkDeleted)
// and this broadcast subscriber has read everything committed before.
func (s *Subscriber) drainedDeleted() bool {
	return !s.group && s.r.Deleted() && s.r.TailPosition() <= s.pos
}

// publishFast is publish after a broadcast subscriber delivered records.
func (s *Subscriber) publishFast() {
	w := s.sv.u64(subPositionOffset)
	if s.fenced {
		w.Store(s.pos)
	} else {
		storeRelease64(w, s.pos) // see publish
	}
	s.stored = s.pos
	s.sv.set(subConsumedOffset, s.baseC+s.consumed)
	s.sv.set(subConsumedBytesOffset, s.baseB+s.consumedB)
	s.notifySpace()
}

// publish stores progress in the slot for publishers and observers.
func (s *Subscriber) publish(n int) {
	if !s.group {
		if w := s.sv.u64(subPositionOffset); s.stored != s.pos {
			// Frees space. notifySpace then loads the publishers' waiter
			// count, a Dekker pair with a publisher going to sleep for
			// space: as for the commit store (see Publisher.publish), the
			// sleeper fences for us with membarrier, or, where this process
			// could not register for that, the store is fenced.
			if s.fenced {
				w.Store(s.pos)
			} else {
				storeRelease64(w, s.pos)
			}
			s.stored = s.pos
		} else if n == 0 {
			return
		}
	}
	if n > 0 {
		s.sv.set(subConsumedOffset, s.baseC+s.consumed) // single writer, read by observers only
		s.sv.set(subConsumedBytesOffset, s.baseB+s.consumedB)
	}
	s.notifySpace()
}

// corrupt builds the error for a bad field at pos.
func corrupt(pos uint64, field string, v uint64, detail string) error {
	return &CorruptError{Position: pos, Field: field, Value: v, Detail: detail}
}

// next finds the next record for this subscriber. For a broadcast
// subscriber it does not move s.pos past the record (done does), but it
// does step over padding and skips. room >= 0 is the caller's buffer size:
// a longer record gives ErrShortBuffer and stays unread.
func (s *Subscriber) next(room int) (bool, error) {
	if s.group {
		return s.nextGroup(room)
	}
	r := s.r
	for steps := 0; steps < 1<<16; steps++ { // bounded work per call
		pos := s.pos
		if pos&(RecordAlignment-1) != 0 {
			return false, corrupt(pos, "position", pos, "positions are 8-byte aligned")
		}
		off := pos & r.mask
		base := r.dataOffset + uintptr(off)
		hdr := r.m.recordAt(base)
		st := hdr.state().Load() // load-acquire: pairs with the commit store
		state := st & stateMask
		if st&^stateMask != pos {
			state = stateUnwritten
		}
		if r.lappedAt(pos) {
			// Under drop-oldest a word can name pos by accident once the
			// record is overwritten: believe it only while pos is intact
			// (and re-check after copying a record out).
			if s.resync() {
				continue
			}
			return false, nil
		}
		switch state {
		case stateUnwritten, stateClaimed:
			return false, nil
		case statePadding:
			s.pos += r.capacity - off
			continue
		case stateCommitted, stateSkip:
		default:
			return false, corrupt(pos, "state", state, "unknown record state")
		}
		n := uint64(hdr.length())
		// A skip may cover a dead publisher's whole batch: only its end is bounded.
		if state == stateCommitted && n > uint64(r.maxPayload) || off+spanOf(n) > r.capacity {
			if r.lappedAt(pos) {
				if s.resync() {
					continue
				}
				return false, nil
			}
			return false, corrupt(pos, "length", n, fmt.Sprintf("payload must be at most %d bytes and end before the buffer end", r.maxPayload))
		}
		rec := Record{
			Position:    pos,
			Sequence:    hdr.sequence(),
			TimestampNS: hdr.timestamp(),
			Type:        hdr.typ(),
			Publisher:   hdr.publisher(),
		}
		if state == stateSkip {
			s.pos += spanOf(n)
			s.expect = rec.Sequence + max(uint64(rec.Type), 1)
			continue
		}
		if room >= 0 && int(n) > room {
			return false, ErrShortBuffer
		}
		if s.expect == ^uint64(0) {
			s.expect = rec.Sequence
		}
		start := base + RecordHeaderLength
		if r.policy != PolicyDropOldest {
			rec.Payload = r.m.b[start : start+uintptr(n) : start+uintptr(n)]
			s.rec = rec
			return true, nil
		}
		copy(s.scratch[:n], r.m.b[start:start+uintptr(n)])
		if r.lappedAt(pos) { // the copy may be torn
			if s.resync() {
				continue
			}
			return false, nil
		}
		rec.Payload = s.scratch[:n:n]
		s.rec = rec
		return true, nil
	}
	return false, nil
}

// lappedAt reports whether, under PolicyDropOldest, publishers may have
// overwritten the record at pos: some claim has ended past pos + capacity.
func (r *Ring) lappedAt(pos uint64) bool {
	return r.policy == PolicyDropOldest && !r.intact(pos)
}

// intact reports whether the record at pos cannot have been touched by a
// claim yet (PolicyDropOldest): no claim has ended past pos + capacity.
func (r *Ring) intact(pos uint64) bool {
	return r.TailPosition() <= pos+r.capacity
}

// resync moves a lapped broadcast subscriber to where a lapped reader
// resumes (resumePoint: half a ring behind the tail) and counts what it
// lost, exactly, by sequence number. A lap that loses records opens a gap
// in what the subscriber delivers: it is counted in Counters.Lapped and
// reported by one ErrLapped, and further laps before the next delivered
// record only widen the same gap (Lost grows, Lapped does not), so that
// Lapped equals the number of gaps a reader can see in the sequence. A
// lap that loses no record (publishers overwrote only padding) is no gap
// and is not counted. It reports false if no intact record could be found
// right now (the caller reports nothing to read and retries later).
func (s *Subscriber) resync() bool {
	r := s.r
	q, seq, ok := r.resumePoint(r.TailPosition())
	if !ok {
		return false
	}
	if s.expect != ^uint64(0) && seq > s.expect {
		lost := seq - s.expect
		s.lost += lost
		s.sv.u64(subLostOffset).Add(lost)
		if !s.gap {
			s.gap, s.lapped = true, true
			s.count(subLappedOffset)
		}
	}
	s.pos, s.expect = q, seq
	return true
}

// lapHeadroom is how far behind the tail a lapped consumer resumes:
// half the ring. Resuming at the oldest intact record instead would put
// it where the very next claim overwrites, so a reader slower than its
// publishers would be lapped again after each record it read; from half
// a ring behind, publishers must write half a ring before the next lap,
// and the reader gets a run of records meanwhile. The records skipped
// are counted as lost, exactly.
func (r *Ring) lapHeadroom() uint64 { return r.capacity / 2 }

// resumePoint finds where a lapped consumer resumes: the first record
// boundary at or after tail - lapHeadroom, else (none provable there)
// the oldest intact record. ok as for oldestIntact.
func (r *Ring) resumePoint(tail uint64) (pos, seq uint64, ok bool) {
	if pos, seq, ok = r.intactFrom(tail, r.lapHeadroom()); ok {
		return pos, seq, ok
	}
	return r.oldestIntact(tail)
}

// oldestIntact finds the first record boundary at or after tail -
// capacity, and the sequence there (see intactFrom).
func (r *Ring) oldestIntact(tail uint64) (pos, seq uint64, ok bool) {
	return r.intactFrom(tail, r.capacity)
}

// intactFrom finds the first record boundary at or after tail - back
// (back <= capacity), and the sequence there. A candidate is a state word
// that names its own position; since a payload or a half-overwritten word
// can do that by accident, a candidate is accepted only if the chain of
// records from it reaches the tail exactly (every hop's word naming its
// own position), and its header is still intact afterwards. ok is false
// if no boundary can be proven now (for example a claim is being
// written): retry later.
func (r *Ring) intactFrom(tail, back uint64) (pos, seq uint64, ok bool) {
	lo := uint64(0)
	if tail > back {
		lo = align8(tail - back) // a corrupt, unaligned tail must not make the scan read past the data area
	}
	limit := lo + spanOf(uint64(r.maxPayload)) + RecordAlignment
	for q := lo; q < tail && q <= limit; q += RecordAlignment {
		base := r.dataOffset + uintptr(q&r.mask)
		st := r.m.u64(base).Load()
		if st&^stateMask != q {
			continue
		}
		switch st & stateMask {
		case stateCommitted, stateSkip, statePadding, stateClaimed:
		default:
			continue
		}
		if !r.chainReaches(q, tail) {
			continue
		}
		for st&stateMask == statePadding { // the oldest record starts the next lap
			q += r.capacity - q&r.mask
			if q >= tail {
				return 0, 0, false
			}
			base = r.dataOffset + uintptr(q&r.mask)
			st = r.m.u64(base).Load()
		}
		if st&^stateMask != q || st&stateMask == stateClaimed {
			return 0, 0, false // the oldest record is still being written
		}
		seq := r.m.plainU64(base + recSequenceOffset)
		if !r.intact(q) {
			return 0, 0, false
		}
		return q, seq, true
	}
	return 0, 0, false
}

// chainReaches walks records from q and reports whether the walk lands
// exactly on tail, or on a claim whose header is not written yet (a
// publisher's intent starts there).
func (r *Ring) chainReaches(q, tail uint64) bool {
	for hops := uint64(0); q < tail && hops <= r.capacity/RecordHeaderLength+1; hops++ {
		base := r.dataOffset + uintptr(q&r.mask)
		st := r.m.u64(base).Load()
		if st&^stateMask != q {
			return r.intentAt(q)
		}
		switch st & stateMask {
		case statePadding:
			q += r.capacity - q&r.mask
		case stateCommitted, stateSkip, stateClaimed:
			n := uint64(r.m.plainU32(base + recLengthOffset))
			if st&stateMask != stateSkip && n > uint64(r.maxPayload) || q&r.mask+spanOf(n) > r.capacity {
				return false
			}
			q += spanOf(n)
		default:
			return false
		}
	}
	return q == tail
}

// intentAt reports whether some publisher has a claim in flight at pos.
func (r *Ring) intentAt(pos uint64) bool {
	for i := 0; i < r.maxPublishers; i++ {
		off := r.publisherSlotOffset(i)
		if r.m.u64(off+pubIntentLenOffset).Load() != 0 && r.m.u64(off+pubIntentPosOffset).Load() == pos {
			return true
		}
	}
	return false
}

// stuckCheckEvery+1 empty polls make one stall check. The check loads the
// tail, whose line the publisher writes on every record: checking often
// would make each of its next stores wait for that line to come back.
const stuckCheckEvery = 1<<12 - 1

// checkStuck looks, every stuckCheckEvery+1 empty polls (or when forced), for a claim
// that has stayed uncommitted past the unblock timeout, and tries to
// unblock it. ErrStalled if its owner is alive or unknown.
func (s *Subscriber) checkStuck(force bool) error {
	s.emptyPolls++
	if !force && s.emptyPolls&stuckCheckEvery != 0 {
		return nil
	}
	r := s.r
	pos := s.Position()
	if r.TailPosition() <= pos {
		s.stuckSince = 0
		if r.Deleted() {
			s.fast = false    // from now on every call says so, at once
			return ErrDeleted // and everything committed has been read
		}
		return nil
	}
	now := nanotime()
	if s.stuckSince == 0 || s.stuckPos != pos {
		s.stuckPos, s.stuckSince = pos, now
		return nil
	}
	if now-s.stuckSince < int64(r.unblockTimeout) {
		return nil
	}
	d, ok, err := r.findDeadClaim(pos)
	if err != nil {
		return err
	}
	if !ok {
		return ErrStalled
	}
	s.stuckSince = 0
	if !d.readable {
		s.skipDeadClaim(pos, d)
	}
	return nil
}

// skipDeadClaim steps this consumer over a dead publisher's claim at pos
// without writing the data area: a broadcast subscriber moves its own
// position, a group member the group's cursor (one CAS; another member
// may have done it first).
func (s *Subscriber) skipDeadClaim(pos uint64, d deadClaim) {
	r := s.r
	end := pos + d.span
	if d.padding {
		end = pos + r.capacity - pos&r.mask
	}
	if s.group {
		_, seq := r.groupCursor(s.gv)
		if s.gv.cas128(groupCursorOffset, pos, seq, end, seq+d.seqs) {
			s.count(subUnblockedOffset)
			s.notifySpace()
		}
		return
	}
	if s.pos != pos {
		return
	}
	s.pos = end
	if d.seqs > 0 {
		s.expect = d.first + d.seqs
	}
	s.count(subUnblockedOffset)
	s.publish(0)
}

// ready reports whether Poll may find something: the record at the
// subscriber's position is committed, padding or a skip, or the
// subscriber was lapped.
func (s *Subscriber) ready() bool {
	r := s.r
	pos := s.Position()
	st := r.m.u64(r.dataOffset + uintptr(pos&r.mask)).Load()
	if st&^stateMask == pos && st&stateMask != stateClaimed {
		return true
	}
	return r.policy == PolicyDropOldest && r.TailPosition() > pos+r.capacity
}

// StallTimeout is how long a subscriber waits on an uncommitted record
// before it tries to unblock it.
func (r *Ring) StallTimeout() time.Duration { return r.unblockTimeout }

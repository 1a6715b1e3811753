package ringbuf

// Publisher invariants (see layout.go for the record format):
//   - Space is claimed only by advancing the tail pair (position, sequence);
//     the position strictly increases, the sequence counts records. MPMC
//     publishers advance it with CAS128. An SPSC publisher is its only
//     writer and advances it with two release stores (storeRelease64:
//     sequence first, then position), no locked instruction; readers take
//     the pair as consistent when two loads of the position around the
//     sequence load agree (Ring.tail).
//   - Before each claim attempt the publisher writes its intent (position,
//     bytes, first sequence, record count) into its own slot, so that if it
//     dies between claim and commit another process can tell whose claim
//     is stuck and how long it is (see unblock.go).
//   - A claim never spans the end of the data area: a record that would
//     cross it is preceded by a separate padding claim up to the end.
//   - The intent stays set while the claim is in flight and is cleared
//     (length 0) after the claim's last record is committed or aborted.
//   - No claim ends past (oldest in-flight claim of another publisher +
//     capacity), under every policy: overwriting space a preempted
//     publisher is still writing would tear the records that replace it.
//     Under PolicyBlock and PolicyReject no claim ends past (slowest
//     consumer position + capacity) either. The publisher caches that
//     limit and rescans the tables only when a claim would pass it.

import (
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// PublisherOptions configures a Publisher.
type PublisherOptions struct {
	// Timestamps stamps each record with CLOCK_MONOTONIC ns at claim time
	// (about 20 ns per record). Off: the timestamp field is 0.
	Timestamps bool
	// RecordType is the type stored in each record's header by Offer and
	// Commit; OfferTyped overrides it per record.
	RecordType uint16
}

// Publisher appends records to a ring. It owns one publisher slot until
// Close. A Publisher must be used by one goroutine at a time; make one per
// goroutine to publish concurrently into an MPMC ring.
type Publisher struct {
	r       *Ring
	slot    int
	slotOff uintptr
	sv      slotView // the slot, resolved
	opts    PublisherOptions
	limit   uint64 // cached: no claim may end past this position

	// SPSC: the publisher is the tail's only writer and keeps it here.
	pos, seq uint64

	// outstanding TryClaim
	claimed  bool
	claimPos uint64
	claimLen uint32

	spsc          bool           // SPSC with no claim outstanding and not closed: Offer may take its fast path
	dropOldest    bool           // the ring's policy is PolicyDropOldest
	hot           ringHot        // the ring's geometry, for the fast path
	records       uint64         // committed by this publisher, mirrored in its slot
	fenced        bool           // commit with a fenced store: this process is no membarrier target
	lastDeadCheck int64          // nanotime of the last liveness check of a blocking claimant
	epoch         *atomic.Uint32 // the ring's subscriber epoch word (consumer header)
	subEpoch      uint32         // the subscriber epoch subCount was counted at
	subCount      int            // active subscriber slots at subEpoch (see Subscribers)
	closed        bool
	ts            unix.Timespec
}

// NewPublisher takes a free publisher slot (or the slot of a dead
// publisher, after resolving any claim it left uncommitted) and returns a
// Publisher. If every slot is held, it waits (up to ExitWait, exiting.go)
// while a holder is exiting, as a predecessor killed just before is.
// Errors: ErrNoSlot if every slot has a live owner (for SPSC: another live
// publisher exists).
func (r *Ring) NewPublisher(opts PublisherOptions) (*Publisher, error) {
	if r.readOnlyData {
		return nil, ErrReadOnly
	}
	if !r.publisherReady() {
		return nil, fmt.Errorf("%w: a publisher reads every subscriber's cursor, but this process has not mapped every subscriber slot", ErrConfig)
	}
	pid, start := selfIdentity()
	var waitedFrom int64 // for waitForExitingPublisher
scan:
	for i := 0; i < r.maxPublishers; i++ {
		off := r.publisherSlotOffset(i)
		st := r.m.u32(off + pubStateOffset)
		s := st.Load()
		if o := r.publisherOwner(i); s == slotActive && !alive(o.PID, o.Start) {
			r.reapPublisher(i, o)
			s = st.Load()
		}
		if s != slotFree || !st.CompareAndSwap(slotFree, slotClaiming) {
			continue
		}
		r.m.u32(off + pubPIDOffset).Store(pid)
		r.m.u64(off + pubStartOffset).Store(start)
		r.m.u64(off + pubRecordsOffset).Store(0)
		st.Store(slotActive)
		p := &Publisher{r: r, slot: i, slotOff: off, sv: r.m.pubSlot(off), opts: opts, fenced: !lightFenceOK(),
			dropOldest: r.policy == PolicyDropOldest, hot: r.hot()}
		p.epoch = r.m.cu32(subscriberEpochOffset)
		p.recountSubscribers(p.epoch.Load())
		if r.kind == SPSC {
			p.pos, p.seq = r.tail()
			p.spsc = true
		}
		if err := checkTail(r.TailPosition()); err != nil {
			st.Store(slotFree)
			return nil, err
		}
		return p, nil
	}
	if r.waitForExitingPublisher(&waitedFrom) {
		goto scan
	}
	return nil, fmt.Errorf("%w: all %d publisher slots are held by live processes", ErrNoSlot, r.maxPublishers)
}

// Close releases the publisher's slot. An outstanding claim is aborted.
// Safe to call twice.
func (p *Publisher) Close() error {
	if p.closed {
		return nil
	}
	if p.claimed {
		_ = p.Abort()
	}
	p.closed, p.spsc = true, false
	p.r.m.u32(p.slotOff + pubStateOffset).Store(slotFree)
	return nil
}

// Ring returns the ring the publisher writes to.
func (p *Publisher) Ring() *Ring { return p.r }

// Subscribers returns how many subscribers (broadcast and queue-group
// members) are able to receive: their slots are active, so every record
// this publisher claims after Subscribers counted one reaches it (unless
// it leaves, is evicted, or, under PolicyDropOldest, is lapped). A
// subscriber is counted only once NewSubscriber has stored its position;
// a reserved slot or one being joined is not. A dead subscriber counts
// until its slot is reaped (by the daemon's pidfd watch within
// milliseconds, or ReapDead).
//
// It costs one atomic load of the subscriber epoch, a word on the consumer
// header's read-mostly line, and a comparison; it rescans the subscriber
// table only after a subscriber joined or left. No allocation, no
// syscall. Same goroutine rule as publishing.
func (p *Publisher) Subscribers() int {
	if e := p.epoch.Load(); e != p.subEpoch {
		p.recountSubscribers(e)
	}
	return p.subCount
}

// recountSubscribers counts the active subscriber slots for epoch e
// (loaded before the count: a change after the load moves the epoch
// again, and the next Subscribers recounts). Not inlined, so that
// Subscribers, its caller on the hot path, is.
//
//go:noinline
func (p *Publisher) recountSubscribers(e uint32) {
	p.subEpoch, p.subCount = e, p.r.activeSubscribers()
}

// reserve claims span bytes for count records laid out contiguously and
// returns the position of the first record and its sequence. It inserts
// (and publishes) a padding claim first when the span would cross the end
// of the data area.
func (p *Publisher) reserve(span, count uint64) (pos, seq uint64, err error) {
	r := p.r
	for {
		if r.kind == SPSC {
			pos, seq = p.pos, p.seq
		} else {
			pos, seq = r.tail()
		}
		if err := checkTail(pos); err != nil {
			return 0, 0, err
		}
		off := pos & r.mask
		padding := off+span > r.capacity
		need, records := span, count
		if padding {
			need, records = r.capacity-off, 0
		}
		end := pos + need
		if end > p.limit {
			if err := p.refreshLimit(pos, end); err != nil {
				// A stale intent must not make a dead claimant look alive.
				r.m.setU64(p.slotOff+pubIntentLenOffset, 0)
				return 0, 0, err
			}
		}
		// Intent first: plain stores to our own slot, read by others only
		// after this process has died.
		p.sv.set(pubIntentPosOffset, pos)
		p.sv.set(pubIntentLenOffset, need)
		p.sv.set(pubIntentSeqOffset, seq)
		p.sv.set(pubIntentCountOffset, records)
		if r.kind == SPSC {
			// The tail's only writer: two plain stores, no locked
			// instruction on the hot path. Sequence first, so a reader that
			// sees the new position sees the new sequence (a reader may
			// briefly see the new sequence with the old position).
			r.m.storeRelease64(tailSequenceOffset, seq+records)
			r.m.storeRelease64(tailPositionOffset, end)
			p.pos, p.seq = end, seq+records
		} else if !r.m.cas128At(tailOffset, pos, seq, end, seq+records) {
			continue // another publisher claimed first
		}
		if padding {
			// subscribers skip to the start of the buffer
			p.publish(r.dataOffset+uintptr(off), pos|statePadding)
			p.clearIntent()
			r.notifyData()
			continue
		}
		return pos, seq, nil
	}
}

// clearIntent marks this publisher's claim as no longer in flight.
func (p *Publisher) clearIntent() { p.sv.set(pubIntentLenOffset, 0) }

// refreshLimit rescans the consumers and the other publishers' in-flight
// claims and reports back-pressure if a claim ending at end still does not
// fit. When another publisher's claim is what holds it back, it checks (at
// most every quarter unblock timeout) whether that publisher died, and if
// so resolves its claim and frees its slot.
func (p *Publisher) refreshLimit(tailPos, end uint64) error {
	r := p.r
	if r.Deleted() {
		return ErrDeleted
	}
	for attempt := 0; ; attempt++ {
		min, consumers := tailPos, false
		if r.policy != PolicyDropOldest {
			min, consumers = r.consumerMin()
		}
		if !consumers {
			min = tailPos
		}
		claimMin, holder := r.inFlightMin(p.slot)
		if claimMin < min {
			min = claimMin
		} else {
			holder = -1 // a consumer, not a claim, is what binds
		}
		p.limit = min + r.capacity
		if end <= p.limit {
			return nil
		}
		if holder < 0 || attempt > 0 {
			break
		}
		now := nanotime()
		if now-p.lastDeadCheck < int64(r.unblockTimeout/4) {
			break
		}
		p.lastDeadCheck = now
		o := r.publisherOwner(holder)
		if r.m.u32(r.publisherSlotOffset(holder)+pubStateOffset).Load() == slotFree || alive(o.PID, o.Start) {
			break
		}
		r.reapPublisher(holder, o)
	}
	r.count(backPressureOffset)
	if r.policy == PolicyReject {
		r.count(rejectedOffset)
		return ErrFull
	}
	return ErrBackPressured
}

// writeHeader fills a claimed record's header and marks it claimed.
func (p *Publisher) writeHeader(pos, seq uint64, n uint32, typ uint16) uintptr {
	r := p.r
	base := r.dataOffset + uintptr(pos&r.mask)
	var ts int64
	if p.opts.Timestamps {
		ts = nanotime()
	}
	r.m.recordAt(base).setHeader(pos, n, typ, uint16(p.slot), seq, ts)
	return base
}

// TryClaim reserves space for an n-byte payload and returns it for the
// caller to fill in place (zero copy). The returned slice aliases the
// shared mapping and is valid only until Commit or Abort. Every path must
// end in exactly one of them:
//
//	buf, err := pub.TryClaim(len(msg))
//	if err != nil {
//		return err // ErrBackPressured, ErrFull: try again later
//	}
//	copy(buf, msg)
//	return pub.Commit()
//
// Errors: ErrBackPressured (PolicyBlock), ErrFull (PolicyReject),
// *SizeError (n > MaxPayloadBytes), ErrClaimOutstanding, ErrClosed.
// No allocation, no syscall.
func (p *Publisher) TryClaim(n int) ([]byte, error) {
	if p.claimed {
		return nil, ErrClaimOutstanding
	}
	if p.closed {
		return nil, ErrClosed
	}
	if n < 0 || n > int(p.r.maxPayload) {
		return nil, &SizeError{PayloadBytes: n, MaxPayloadBytes: int(p.r.maxPayload)}
	}
	pos, seq, err := p.reserve(spanOf(uint64(n)), 1)
	if err != nil {
		return nil, err
	}
	base := p.writeHeader(pos, seq, uint32(n), p.opts.RecordType)
	p.claimed, p.claimPos, p.claimLen, p.spsc = true, pos, uint32(n), false
	start := base + RecordHeaderLength
	return p.r.m.b[start : start+uintptr(n) : start+uintptr(n)], nil
}

// Commit publishes the record claimed by TryClaim: one store of its state
// word, then, only if a subscriber is asleep, one FUTEX_WAKE.
func (p *Publisher) Commit() error {
	if !p.claimed {
		return ErrNoClaim
	}
	p.claimed, p.spsc = false, p.r.kind == SPSC
	p.commit(p.claimPos)
	return nil
}

func (p *Publisher) commit(pos uint64) {
	r := p.r
	p.publish(r.dataOffset+uintptr(pos&r.mask), pos|stateCommitted)
	p.clearIntent()
	p.records++
	p.sv.set(pubRecordsOffset, p.records) // single writer: plain store
	r.notifyData()
}

// Abort gives up the record claimed by TryClaim: subscribers skip it. Its
// sequence number is consumed.
func (p *Publisher) Abort() error {
	if !p.claimed {
		return ErrNoClaim
	}
	p.claimed, p.spsc = false, p.r.kind == SPSC
	r := p.r
	base := r.dataOffset + uintptr(p.claimPos&r.mask)
	r.m.setU16(base+recTypeOffset, 1) // a skip covers one sequence
	p.publish(base, p.claimPos|stateSkip)
	p.clearIntent()
	r.notifyData()
	return nil
}

// Offer copies payload into the ring as one record. Errors as TryClaim.
func (p *Publisher) Offer(payload []byte) error {
	return p.OfferTyped(p.opts.RecordType, payload)
}

// OfferTyped is Offer with an explicit record type.
func (p *Publisher) OfferTyped(typ uint16, payload []byte) error {
	if p.spsc {
		// SPSC fast path: the record fits before the buffer end and below
		// the cached limit. The same steps as reserve, writeHeader and
		// commit below, without their generality, on the handle's own
		// copy of the ring's geometry (ringHot).
		n := uint64(len(payload))
		span := spanOf(n)
		pos := p.pos
		off := pos & p.hot.mask
		if end := pos + span; end <= p.limit && off+span <= p.hot.capacity && n <= p.hot.maxPayload {
			seq := p.seq
			if p.dropOldest {
				// Overwriting: announce the claim (intent, then tail) before
				// the first store into the space, so lapped readers can tell.
				p.sv.set(pubIntentPosOffset, pos)
				p.sv.set(pubIntentLenOffset, span)
				p.sv.set(pubIntentSeqOffset, seq)
				p.sv.set(pubIntentCountOffset, 1)
				p.r.m.storeRelease64(tailSequenceOffset, seq+1)
				p.r.m.storeRelease64(tailPositionOffset, end)
			}
			rec := p.hot.record(off)
			var ts int64
			if p.opts.Timestamps {
				ts = nanotime()
			}
			// No claimed state word: the record goes from unwritten to
			// committed in one store.
			rec.setFields(uint32(n), typ, uint16(p.slot), seq, ts)
			if shortPayload(n) {
				rec.copyShortPayload(payload)
			} else {
				copy(rec.payload(n), payload)
			}
			p.publishRecord(rec, pos|stateCommitted)
			if p.dropOldest {
				p.clearIntent()
			} else {
				// Under PolicyBlock/PolicyReject nobody reads this space
				// before the commit, so the claim is announced after it and
				// is never in flight: a publisher that dies before the
				// commit leaves the tail where it was, and its successor
				// writes the record again.
				p.r.m.storeRelease64(tailSequenceOffset, seq+1)
				p.r.m.storeRelease64(tailPositionOffset, end)
			}
			p.pos, p.seq = end, seq+1
			p.records++
			p.sv.set(pubRecordsOffset, p.records)
			if p.hot.dataWaiters.Load() != 0 { // as notifyData
				p.r.ring(dataBellOffset)
			}
			return nil
		}
	}
	if p.claimed {
		return ErrClaimOutstanding
	}
	if p.closed {
		return ErrClosed
	}
	n := len(payload)
	if n > int(p.r.maxPayload) {
		return &SizeError{PayloadBytes: n, MaxPayloadBytes: int(p.r.maxPayload)}
	}
	pos, seq, err := p.reserve(spanOf(uint64(n)), 1)
	if err != nil {
		return err
	}
	base := p.writeHeader(pos, seq, uint32(n), typ)
	copy(p.r.m.b[base+RecordHeaderLength:], payload)
	p.commit(pos)
	return nil
}

// maxBatchRecords bounds one OfferBatch claim, so that a skip covering a
// dead publisher's batch can count its sequences in 16 bits.
const maxBatchRecords = 1<<16 - 1

// OfferBatch publishes as many of payloads, in order, as fit in one claim
// (at most a quarter of the capacity and 65535 records, at least one record), with one tail
// CAS for all of them. It returns how many it published; on error that is
// 0. With Timestamps, every record of the batch carries the claim's one
// clock reading. Errors as Offer, for the first record.
func (p *Publisher) OfferBatch(payloads [][]byte) (int, error) {
	if p.claimed {
		return 0, ErrClaimOutstanding
	}
	if p.closed {
		return 0, ErrClosed
	}
	if len(payloads) == 0 {
		return 0, nil
	}
	r := p.r
	var span uint64
	k := 0
	for _, pl := range payloads {
		if len(pl) > int(r.maxPayload) {
			if k == 0 {
				return 0, &SizeError{PayloadBytes: len(pl), MaxPayloadBytes: int(r.maxPayload)}
			}
			break
		}
		s := spanOf(uint64(len(pl)))
		if k > 0 && (span+s > r.capacity/4 || k == maxBatchRecords) {
			break
		}
		span += s
		k++
	}
	pos, seq, err := p.reserve(span, uint64(k))
	if err != nil {
		return 0, err
	}
	// The claim lies before the buffer end (reserve padded otherwise):
	// its records are contiguous from pos.
	var ts int64
	if p.opts.Timestamps {
		ts = nanotime()
	}
	at := pos
	for i, pl := range payloads[:k] {
		n := uint64(len(pl))
		rec := p.hot.record(at & p.hot.mask)
		rec.setHeader(at, uint32(n), p.opts.RecordType, uint16(p.slot), seq+uint64(i), ts)
		if shortPayload(n) {
			rec.copyShortPayload(pl)
		} else {
			copy(rec.payload(n), pl)
		}
		at += spanOf(n)
	}
	at = pos
	for _, pl := range payloads[:k] {
		p.publishRecord(p.hot.record(at&p.hot.mask), at|stateCommitted)
		at += spanOf(uint64(len(pl)))
	}
	p.clearIntent()
	p.records += uint64(k)
	p.sv.set(pubRecordsOffset, p.records)
	r.notifyData()
	return k, nil
}

// OfferTimeout is Offer that waits on the space doorbell while the ring is
// back-pressured, for at most timeout. While it waits longer than the
// ring's unblock timeout it frees the slots of dead consumers (ReapDead),
// so a dead subscriber never holds it back for good. Under PolicyReject it
// does not wait. Errors: ErrTimeout, and those of Offer.
func (p *Publisher) OfferTimeout(payload []byte, timeout time.Duration) error {
	return p.offerTimeout(p.opts.RecordType, payload, timeout)
}

func (p *Publisher) offerTimeout(typ uint16, payload []byte, timeout time.Duration) error {
	err := p.OfferTyped(typ, payload)
	if err != ErrBackPressured {
		return err
	}
	return p.park(typ, payload, nanotime()+int64(timeout))
}

// Publisher wait budgets for Backoff (OfferWait): as SubscriberOptions'
// defaults.
const (
	pubSpinBudget  = 10000
	pubYieldBudget = 100
)

// OfferWait is OfferTyped that waits while the ring is back-pressured,
// with wait strategy w, for at most timeout (then ErrTimeout):
//   - BusySpin retries in a tight loop and Yield retries with a
//     sched_yield(2) in between: neither ever sleeps on a futex, so a
//     publisher held back by a spinning subscriber makes no syscall (Yield
//     one sched_yield per retry) and learns of the space the subscriber
//     frees from its position word alone;
//   - Backoff retries 10000 times spinning, then 100 times yielding, then
//     parks on the space doorbell as OfferTimeout;
//   - Blocking parks at once, as OfferTimeout.
//
// While it waits longer than the ring's unblock timeout it frees the slots
// of dead consumers (ReapDead), so a dead subscriber never holds it back
// for good. Under PolicyReject it does not wait. Errors: ErrTimeout, and
// those of Offer. No allocation. Same goroutine rule as Offer.
func (p *Publisher) OfferWait(typ uint16, payload []byte, w WaitStrategy, timeout time.Duration) error {
	err := p.OfferTyped(typ, payload)
	if err != ErrBackPressured {
		return err
	}
	r := p.r
	now := nanotime()
	deadline, lastReap := now+int64(timeout), now
	for i := 0; ; i++ {
		switch {
		case w == Blocking, w == Backoff && i >= pubSpinBudget+pubYieldBudget:
			return p.park(typ, payload, deadline)
		case w == Yield, w == Backoff && i >= pubSpinBudget:
			osYield()
		}
		if err = p.OfferTyped(typ, payload); err != ErrBackPressured {
			return err
		}
		if i&63 == 63 {
			now = nanotime()
			if now >= deadline {
				return ErrTimeout
			}
			if now-lastReap >= int64(r.unblockTimeout) {
				r.ReapDead()
				lastReap = now
			}
		}
	}
}

// park waits on the space doorbell until the record fits or deadline
// passes (OfferTimeout's wait).
func (p *Publisher) park(typ uint16, payload []byte, deadline int64) error {
	r := p.r
	var err error
	lastReap := nanotime()
	waiters := r.m.cu32(spaceWaitersOffset)
	bell := r.m.cu32(spaceBellOffset)
	for {
		now := nanotime()
		if now >= deadline {
			return ErrTimeout
		}
		if now-lastReap >= int64(r.unblockTimeout) {
			r.ReapDead()
			lastReap = now
		}
		waiters.Add(1)
		v := bell.Load()
		heavyFence() // subscribers' plain position stores are visible past this point
		r.count(fencesOffset)
		err = p.OfferTyped(typ, payload)
		if err != ErrBackPressured {
			waiters.Add(^uint32(0))
			return err
		}
		sleep := time.Duration(deadline - now)
		if sleep > r.unblockTimeout/2 {
			sleep = r.unblockTimeout / 2
		}
		r.count(waitsOffset)
		futexSleep(r.m.futexAddr(spaceBellOffset), v, sleep, &p.ts)
		waiters.Add(^uint32(0))
	}
}

// publish stores a record's state word, making the record readable (the
// release of the commit protocol). notifyData's later load of the waiter
// count must not pass this store, or a subscriber going to sleep could
// miss the record and the wakeup both: either sleepers fence for us
// (membarrier, see proc.go), or, where this process could not register
// for that, the store is sequentially consistent (XCHG on amd64).
func (p *Publisher) publish(off uintptr, state uint64) {
	p.publishRecord(p.r.m.recordAt(off), state)
}

// publishRecord is publish for a resolved record.
func (p *Publisher) publishRecord(rec recordView, state uint64) {
	w := rec.state()
	if p.fenced {
		w.Store(state)
		return
	}
	storeRelease64(w, state)
}

// notifyData wakes sleeping subscribers. When nobody sleeps it costs one
// load of a read-mostly line (inlined) and makes no syscall.
func (r *Ring) notifyData() {
	if r.m.cu32(dataWaitersOffset).Load() != 0 {
		r.ring(dataBellOffset)
	}
}

// notifySpace wakes publishers sleeping for space, as notifyData.
func (r *Ring) notifySpace() {
	if r.m.cu32(spaceWaitersOffset).Load() != 0 {
		r.ring(spaceBellOffset)
	}
}

// ring advances the doorbell at bell and wakes everyone sleeping on it.
func (r *Ring) ring(bell consOff) {
	r.m.cu32(bell).Add(1)
	if !r.readOnlyData { // a subscriber's ReapDead: it counts nothing shared
		r.count(wakeupsOffset)
	}
	futexWakeAll(r.m.futexAddr(bell))
}

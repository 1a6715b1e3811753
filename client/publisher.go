package client

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// PublisherOptions configures NewPublisher. The zero value is valid.
type PublisherOptions struct {
	// Partitions lists the partitions to attach; nil means all. Messages
	// routed to another partition fail with ErrNoPartition.
	Partitions []int
	// NoTimestamps leaves records' timestamp at 0, saving a clock read
	// (~20 ns) per message.
	NoTimestamps bool
	// Wait is how Publish and PublishBatch wait while a partition is
	// back-pressured (policy block): WaitBusySpin retries in a tight loop
	// and WaitYield with a sched_yield(2) in between, neither ever
	// sleeping on a futex (a publisher held back by a spinning subscriber
	// makes no futex call: the space the subscriber frees reaches it
	// through the subscriber's position word); WaitBackoff spins, yields,
	// then sleeps on the ring's space doorbell (futex); WaitBlocking
	// sleeps at once. WaitDefault (the zero value) is the daemon's default
	// wait strategy, as for Subscribe.
	Wait WaitStrategy
}

// Publisher publishes messages to one topic, straight into the partitions'
// rings mapped in this process. It owns one publisher slot in each ring
// until Close.
//
// A Publisher must be used by one goroutine at a time; make one per
// goroutine to publish concurrently (into an MPMC topic). It keeps working
// while the daemon restarts.
type Publisher struct {
	c        *Client
	topic    string
	maxBytes int
	attachID atomic.Uint64
	parts    []pubPart // indexed by partition number; ring nil if not attached
	nparts   int       // the topic's partition count
	scratch  []byte    // header-block records are assembled here (reused)
	batch    [][]byte  // PublishBatch's payload views (reused)
	loanGen  uint64    // bumped by every Loan, Send and Abort
	loanPart int       // partition of the outstanding loan, -1 if none
	closed   bool
	w        *ringWatch   // its rings' identity; its error once they are not the topic's
	wait     WaitStrategy // resolved: never WaitDefault

	published, backPressured, rejected, notConnected uint64 // this publisher's counts
}

type pubPart struct {
	regions
	pub   *ringbuf.Publisher
	block bool // the ring's policy is PolicyBlock (see unheard)
}

// NewPublisher attaches to topic as a publisher: the daemon sends the
// partitions' region descriptors, which are mapped here. Errors:
// ErrTopicNotFound, ErrPermission, ErrInvalidTopicName, ErrBrokerNotRunning,
// and ErrNoSlot (every publisher slot of a partition has a live
// owner; an SPSC topic takes one publisher). A slot whose owner is exiting
// (killed just before, its memory still being torn down) is waited for, up
// to ringbuf.ExitWait; a live owner is refused after 250 ms.
func (c *Client) NewPublisher(ctx context.Context, topic string, opts PublisherOptions) (*Publisher, error) {
	ar, groups, files, err := c.attach(ctx, topic, wire.RolePublisher, opts.Partitions, "")
	if err != nil {
		return nil, err
	}
	defer closeFiles(files)
	p := &Publisher{c: c, topic: topic, maxBytes: int(ar.Topic.Spec.MaxMessageBytes), nparts: len(ar.Topic.Partitions), loanPart: -1, wait: opts.Wait}
	if p.wait == WaitDefault {
		p.wait = c.defaultWait()
	}
	p.attachID.Store(ar.AttachmentID)
	p.parts = make([]pubPart, p.nparts)
	for i, part := range ar.Partitions {
		regs, ring, err := mapRing(groups[i], topic, -1, -1, ar.Topic.Spec.MaxSubscribers+ar.Topic.Spec.MaxGroups, false)
		if err == nil {
			var pub *ringbuf.Publisher
			pub, err = ring.NewPublisher(ringbuf.PublisherOptions{Timestamps: !opts.NoTimestamps, RecordType: RecordTypePlain})
			p.parts[part] = pubPart{regions: regs, pub: pub, block: ring.Policy() == ringbuf.PolicyBlock}
			if err != nil {
				regs.close()
				p.parts[part] = pubPart{}
			}
		}
		if err != nil {
			p.closeParts()
			c.release(nil, ar.AttachmentID)
			return nil, fmt.Errorf("kaelix: publisher on %q partition %d: %w", topic, part, err)
		}
	}
	rings, data := make([]*ringbuf.Ring, len(ar.Partitions)), make([]*shm.Region, len(ar.Partitions))
	for i, part := range ar.Partitions {
		rings[i], data[i] = p.parts[part].pub.Ring(), p.parts[part].data
	}
	p.w = newRingWatch(topic, rings, true)
	if err := c.register(p, wire.Resume{Topic: topic, Role: wire.RolePublisher, Partitions: ar.Partitions, Rings: ringIDs(data)}); err != nil {
		p.closeParts()
		return nil, err
	}
	return p, nil
}

// regions are one partition's mappings: the data region (ring header,
// tail, publisher table, records), the consumer region (doorbells) and the
// slot regions (cursors) this process was sent.
type regions struct {
	data, consumer *shm.Region
	slots          []*shm.Region // subscriber slot regions mapped here (nil entries: not sent to us)
}

// close unmaps the regions; the zero regions is a no-op.
func (r regions) close() {
	for _, reg := range append([]*shm.Region{r.data, r.consumer}, r.slots...) {
		if reg != nil {
			reg.Close()
		}
	}
}

// owns reports whether addr lies in either mapping, and whether a fault
// there was a write to the read-only data mapping: the mapping is
// read-only and the file is intact (not truncated), so the access could
// only have faulted for lack of write permission.
func (r regions) owns(addr uintptr) (mine, readOnlyWrite bool) {
	if inRegion(r.data, addr) {
		return true, r.data.ReadOnly() && r.data.Check() == nil
	}
	for _, s := range r.slots {
		if s != nil && inRegion(s, addr) {
			return true, false
		}
	}
	return inRegion(r.consumer, addr), false
}

// mapRing maps a partition's regions received from the daemon (files:
// data, consumer, then slot regions) and attaches their ring. A publisher
// (slot < 0) gets every slot region (nslots: subscriber then queue-group
// slots). A subscriber (readOnlyData) gets the data region's descriptor
// opened O_RDONLY, which can only be mapped PROT_READ (the ring never
// writes it), the slot region the daemon reserved for it (index slot) and,
// for a queue-group member, its group's (index group among all slots); it
// maps no other consumer's cursor. Every region's header must name topic
// (shm.ErrLabelMismatch otherwise: the daemon sent another topic's file).
// Once attached, it keeps one descriptor, the data region's: the others'
// mappings need none.
func mapRing(files []*os.File, topic string, slot, group, nslots int, readOnlyData bool) (regions, *ringbuf.Ring, error) {
	var regs regions
	var err error
	if regs.data, err = shm.AttachFile(files[0], shm.AttachOptions{ReadOnly: readOnlyData, Label: topic}); err != nil {
		return regions{}, nil, fmt.Errorf("data region: %w", err)
	}
	if regs.consumer, err = shm.AttachFile(files[1], shm.AttachOptions{Label: topic}); err != nil {
		regs.close()
		return regions{}, nil, fmt.Errorf("consumer region: %w", err)
	}
	var areas []ringbuf.SlotArea
	for j, f := range files[wire.RegionDescriptors:] {
		r, err := shm.AttachFile(f, shm.AttachOptions{Label: topic})
		if err != nil {
			regs.close()
			return regions{}, nil, fmt.Errorf("slot region: %w", err)
		}
		regs.slots = append(regs.slots, r)
		if slot < 0 {
			areas = append(areas, ringbuf.SlotArea{Mem: r.Data(), Writable: true})
			continue
		}
		if j > 1 || j == 1 && group < 0 {
			regs.close()
			return regions{}, nil, fmt.Errorf("%w: a subscriber was sent more slot regions than its own and its group's", ErrProtocol)
		}
	}
	var ring *ringbuf.Ring
	err = shm.Guard(func() error {
		var aerr error
		if slot >= 0 && len(regs.slots) >= 1 && slot < nslots && group < nslots {
			// Only ours (and our group's) are mapped; Attach checks
			// nslots against the ring's header.
			areas = make([]ringbuf.SlotArea, nslots)
			areas[slot] = ringbuf.SlotArea{Mem: regs.slots[0].Data(), Writable: true}
			if group >= 0 && len(regs.slots) == 2 {
				areas[group] = ringbuf.SlotArea{Mem: regs.slots[1].Data(), Writable: true}
			}
		}
		ring, aerr = ringbuf.Attach(regs.data.Data(), regs.consumer.Data(), areas, readOnlyData)
		return aerr
	})
	if err != nil {
		regs.close()
		return regions{}, nil, err
	}
	// Keep no descriptor but the data region's (its Check tells a write
	// to the read-only mapping from a truncation, in owns): a handle's
	// descriptors do not grow with the topic's slots.
	regs.consumer.DropFile()
	for _, r := range regs.slots {
		r.DropFile()
	}
	return regs, ring, nil
}

func (p *Publisher) setAttachmentID(id uint64) { p.attachID.Store(id) }

// Topic returns the topic's name.
func (p *Publisher) Topic() string { return p.topic }

// Partitions returns the topic's partition count.
func (p *Publisher) Partitions() int { return p.nparts }

// MaxMessageBytes is the topic's limit on an encoded message (payload plus
// header block).
func (p *Publisher) MaxMessageBytes() int { return p.maxBytes }

// route picks m's partition: FNV-1a of Key, else Partition.
func (p *Publisher) route(m *Message) (*ringbuf.Publisher, error) {
	i := m.Partition
	if m.Key != nil {
		i = int(fnv1a(m.Key) % uint32(p.nparts))
	}
	if i < 0 || i >= len(p.parts) || p.parts[i].pub == nil {
		return nil, fmt.Errorf("%w: %d (topic %q has %d; attached %v)", ErrNoPartition, i, p.topic, p.nparts, p.attached())
	}
	return p.parts[i].pub, nil
}

func (p *Publisher) attached() []int {
	var out []int
	for i, pp := range p.parts {
		if pp.pub != nil {
			out = append(out, i)
		}
	}
	return out
}

func (p *Publisher) tooLarge(m *Message, n int) error {
	return &SizeError{Topic: p.topic, MessageBytes: n, PayloadBytes: len(m.Payload), MaxMessageBytes: p.maxBytes}
}

// TryPublish publishes m without waiting. It returns ErrBackPressured
// (policy block: no room until the slowest subscriber advances),
// ErrNotConnected (policy block: the partition has no subscriber able to
// receive, so nothing was published) or ErrFull (policy reject) as
// expected outcomes; *SizeError (ErrMessageTooLarge), ErrNoPartition,
// ErrLoanOutstanding, ErrClosed otherwise. Under drop-oldest and reject
// it publishes whether or not anyone subscribes: drop-oldest keeps the
// newest records for a subscriber that joins later FromOldest, and under
// reject, as under block, a record published with no subscriber is
// overwritten unread (check Connected first where that matters).
//
// A message without headers is copied once, straight into the ring; no
// allocation and no syscall (but a FUTEX_WAKE if a subscriber sleeps). The
// subscriber check is one atomic load of a read-mostly word (see
// Subscribers). A message with headers is assembled in a reused buffer
// first.
//
// A region truncated by another process faults the write (SIGBUS);
// TryPublish turns that into a *FaultError for the topic.
func (p *Publisher) TryPublish(m Message) (err error) {
	defer p.unguard(&err, debug.SetPanicOnFault(true))
	if i := m.Partition; m.Key == nil && m.Headers == nil && uint(i) < uint(len(p.parts)) && !p.closed && p.loanPart < 0 {
		// Fast path, here rather than in tryPublish to save a call: a
		// plain message to a partition named by number that is attached,
		// live, fits and has a subscriber (or needs none). Anything else
		// goes to tryPublish, which makes the same checks and reports.
		pp := &p.parts[i]
		if pub := pp.pub; pub != nil && len(m.Payload) <= p.maxBytes && !pub.Ring().Deleted() &&
			(!pp.block || pub.Subscribers() != 0) {
			if err := pub.Offer(m.Payload); err != nil {
				return p.count(err)
			}
			p.published++
			return nil
		}
	}
	return p.tryPublish(&m, true)
}

// unguard is recoverFault for TryPublish: a deferred method with two
// arguments costs less per call than recoverFault's closure.
func (p *Publisher) unguard(err *error, old bool) {
	debug.SetPanicOnFault(old)
	if r := recover(); r != nil {
		faultFrom(err, p.topic, p, r)
	}
}

// tryPublish takes m by pointer: a Message is over 100 bytes, and the hot
// path should copy it once (into TryPublish's argument), not twice. With
// connected, a block partition without subscribers refuses it
// (ErrNotConnected).
func (p *Publisher) tryPublish(m *Message, connected bool) error {
	if p.closed {
		return ErrClosed
	}
	if p.loanPart >= 0 {
		return ErrLoanOutstanding
	}
	pub, err := p.route(m)
	if err != nil {
		return err
	}
	if pub.Ring().Deleted() { // one load of a word written once: a deleted or retired ring refuses at once
		return p.w.deleted()
	}
	if len(m.Headers) == 0 && m.Key == nil {
		if len(m.Payload) > p.maxBytes {
			return p.tooLarge(m, len(m.Payload))
		}
		if connected && unheard(pub) {
			p.notConnected++
			return ErrNotConnected
		}
		// Offer copies once, as TryClaim+copy+Commit would, and takes
		// the ring's SPSC fast path.
		return p.count(pub.Offer(m.Payload))
	}
	rec, err := p.encode(m)
	if err != nil {
		return err
	}
	if connected && unheard(pub) {
		p.notConnected++
		return ErrNotConnected
	}
	return p.count(pub.OfferTyped(RecordTypeHeaders, rec))
}

// unheard reports whether a record published to pub now would reach
// nobody and is not kept for anyone: policy block, no subscriber able to
// receive.
func unheard(pub *ringbuf.Publisher) bool {
	return pub.Ring().Policy() == ringbuf.PolicyBlock && pub.Subscribers() == 0
}

// Subscribers returns how many subscribers of the partition are able to
// receive: each has stored its read position in the ring (its Subscribe
// returned, or is about to), so every message published after Subscribers
// counted it reaches it, unless it leaves, is evicted or (drop-oldest) is
// lapped. Reserved and joining subscriber slots do not count; a
// subscriber that died counts until kaelixd reaps its slot (milliseconds,
// by pidfd). Queue-group members count one each. It returns 0 for a
// partition this Publisher did not attach. One atomic load when nothing
// changed; no allocation, no syscall. Same goroutine rule as publishing.
func (p *Publisher) Subscribers(partition int) int {
	if p.closed || partition < 0 || partition >= len(p.parts) || p.parts[partition].pub == nil {
		return 0
	}
	n := 0
	shm.Guard(func() error { n = p.parts[partition].pub.Subscribers(); return nil })
	return n
}

// Connected reports whether the partition has a subscriber able to
// receive (Subscribers(partition) > 0). On a block topic, TryPublish and
// Loan return ErrNotConnected when it is false.
func (p *Publisher) Connected(partition int) bool { return p.Subscribers(partition) > 0 }

// WaitSubscribers waits until at least n subscribers are able to receive
// (see Subscribers) on partition, or on every attached partition if
// partition is -1, so that a publisher that starts with the subscribers
// loses nothing to them: every message published after it returns nil
// reaches each of them. It polls every millisecond. Errors: ctx's error
// wrapped with the counts seen (*WaitSubscribersError), ErrNoPartition,
// ErrClosed. Same goroutine rule as publishing.
func (p *Publisher) WaitSubscribers(ctx context.Context, partition, n int) error {
	if p.closed {
		return ErrClosed
	}
	parts := []int{partition}
	if partition == -1 {
		parts = p.attached()
	} else if partition < 0 || partition >= len(p.parts) || p.parts[partition].pub == nil {
		return fmt.Errorf("%w: %d (topic %q has %d; attached %v)", ErrNoPartition, partition, p.topic, p.nparts, p.attached())
	}
	var t *time.Ticker
	for {
		ready := true
		for _, i := range parts {
			if p.Subscribers(i) < n {
				ready = false
				break
			}
		}
		if ready {
			return nil
		}
		if t == nil {
			t = time.NewTicker(time.Millisecond)
			defer t.Stop()
		}
		select {
		case <-ctx.Done():
			e := &WaitSubscribersError{Topic: p.topic, Want: n, Err: context.Cause(ctx)}
			for _, i := range parts {
				e.Partitions = append(e.Partitions, i)
				e.Have = append(e.Have, p.Subscribers(i))
			}
			return e
		case <-t.C:
		}
	}
}

// encode assembles a header-block record in p.scratch.
func (p *Publisher) encode(m *Message) ([]byte, error) {
	hl := headerBlockLen(m.Headers, m.Key)
	n := hl + len(m.Payload)
	if n > p.maxBytes {
		return nil, p.tooLarge(m, n)
	}
	if cap(p.scratch) < n {
		p.scratch = make([]byte, n)
	}
	rec := p.scratch[:n]
	if err := putHeaderBlock(rec[:hl], m.Headers, m.Key); err != nil {
		return nil, err
	}
	copy(rec[hl:], m.Payload)
	return rec, nil
}

func (p *Publisher) count(err error) error {
	switch err {
	case nil:
		p.published++
	case ringbuf.ErrBackPressured:
		p.backPressured++
	case ringbuf.ErrFull:
		p.rejected++
	case ringbuf.ErrDeleted:
		return p.w.deleted()
	}
	return err
}

// Publish publishes m, waiting while the partition is back-pressured
// (policy block), with the publisher's wait strategy
// (PublisherOptions.Wait: busy-spin and yield never sleep on a futex),
// until there is room or ctx is done: then it returns a
// *BlockedError naming the partition and the subscriber that held it
// back (pid, process name and state, lag), for which both
// errors.Is(err, ErrBackPressured) and errors.Is(err, ctx's error, e.g.
// context.DeadlineExceeded) hold. Under drop-oldest it never waits; under
// reject it returns ErrFull at once. While it waits it frees the slots of
// dead subscribers, so a crashed subscriber never holds it back for good.
// Publish does not wait for subscribers: on a block partition with none
// it publishes, and the message is overwritten unread (TryPublish returns
// ErrNotConnected instead; WaitSubscribers waits for them). Other errors
// as TryPublish. No allocation unless ctx carries a deadline it must time
// (building a *BlockedError reads /proc and allocates, once, at the end).
// A faulting region gives a *FaultError, as TryPublish.
func (p *Publisher) Publish(ctx context.Context, m Message) (err error) {
	defer recoverFault(&err, p.topic, p, debug.SetPanicOnFault(true))
	return p.publish(ctx, m)
}

func (p *Publisher) publish(ctx context.Context, m Message) error {
	err := p.tryPublish(&m, false)
	if err != ringbuf.ErrBackPressured {
		return err
	}
	pub, _ := p.route(&m)
	part := m.Partition
	if m.Key != nil {
		part = int(fnv1a(m.Key) % uint32(p.nparts))
	}
	typ, rec := RecordTypePlain, m.Payload
	if len(m.Headers) != 0 || m.Key != nil {
		if rec, err = p.encode(&m); err != nil {
			return err
		}
		typ = RecordTypeHeaders
	}
	// Wait with the publisher's wait strategy (ringbuf.OfferWait) in
	// slices of at most 50 ms, to notice ctx.
	for {
		wait := 50 * time.Millisecond
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl))
		}
		if err := ctx.Err(); err != nil || wait <= 0 {
			return p.ctxErr(ctx, part)
		}
		err := pub.OfferWait(typ, rec, p.wait.ring(), wait)
		if err != ringbuf.ErrTimeout {
			return p.count(err)
		}
	}
}

// WaitStrategy returns how Publish waits while back-pressured: the
// strategy the publisher asked for, or the daemon's default it resolved
// to (see PublisherOptions.Wait).
func (p *Publisher) WaitStrategy() WaitStrategy { return p.wait }

// ctxErr is Publish's error when ctx ended while partition was
// back-pressured: a *BlockedError naming the slowest subscriber.
func (p *Publisher) ctxErr(ctx context.Context, partition int) error {
	p.backPressured++
	cause := context.Cause(ctx)
	if cause == nil { // the deadline passed a moment before ctx noticed
		cause = context.DeadlineExceeded
	}
	e := &BlockedError{Topic: p.topic, Partition: partition, Err: cause}
	if partition >= 0 && partition < len(p.parts) && p.parts[partition].pub != nil {
		r := p.parts[partition].pub.Ring()
		var s ringbuf.SlowestConsumer
		var ok bool
		shm.Guard(func() error { s, ok = r.Slowest(); return nil })
		if ok {
			e.Found = true
			e.Slowest = SlowestSubscriber{Slot: s.Slot, Group: s.Group, PID: int(s.PID), LagRecords: s.LagRecords, LagBytes: s.LagBytes, Joining: s.Joining}
			if s.PID != 0 {
				e.Slowest.Comm, e.Slowest.State = procCommState(int(s.PID))
			}
		}
	}
	return e
}

// PublishBatch publishes b's messages in order with Publish and returns how
// many were published; it stops at the first error.
func (p *Publisher) PublishBatch(ctx context.Context, b Batch) (n int, err error) {
	defer recoverFault(&err, p.topic, p, debug.SetPanicOnFault(true))
	for n < len(b) {
		// A run of plain messages (no headers, no key) bound for one partition goes into
		// the ring with one claim (ringbuf.OfferBatch); anything else, and
		// a run that meets back-pressure, goes through publish, which waits.
		pub, rerr := p.route(&b[n])
		k := 0
		if rerr == nil && p.loanPart < 0 && !p.closed {
			p.batch = p.batch[:0]
			for j := n; j < len(b) && len(b[j].Headers) == 0 && b[j].Key == nil && len(b[j].Payload) <= p.maxBytes; j++ {
				// Same partition by number: no need to route again.
				if same := b[j].Key == nil && b[n].Key == nil && b[j].Partition == b[n].Partition; !same {
					if q, err := p.route(&b[j]); err != nil || q != pub {
						break
					}
				}
				p.batch = append(p.batch, b[j].Payload)
			}
			if len(p.batch) > 1 {
				k, _ = pub.OfferBatch(p.batch)
				p.published += uint64(k)
			}
			clear(p.batch) // drop references to the caller's payloads
		}
		if k == 0 {
			if err := p.publish(ctx, b[n]); err != nil {
				return n, err
			}
			k = 1
		}
		n += k
	}
	return n, nil
}

// Loan is space claimed in a partition's ring for a message written in
// place (zero copy). Buf aliases shared memory: fill it, then Send or Abort
// the loan; Buf must not be used afterwards. A Loan carries a generation, so
// sending or aborting it twice, or after another loan, is detected
// (ErrStaleLoan). Loaned messages carry no headers.
type Loan struct {
	Buf       []byte
	Partition int
	gen       uint64
}

// Loan claims n bytes in partition 0 (see LoanPartition).
func (p *Publisher) Loan(n int) (Loan, error) { return p.LoanPartition(0, n) }

// LoanPartition claims n bytes in a partition's ring. Every successful Loan
// must end in exactly one Send or Abort, soon: until then the partition's
// subscribers wait at this record, and no other message of this Publisher
// can be published.
//
//	l, err := pub.Loan(len(msg))
//	if err != nil {
//		return err // ErrBackPressured, ErrFull: try again later
//	}
//	copy(l.Buf, msg)
//	return pub.Send(l)
//
// Errors: ErrBackPressured, ErrNotConnected (policy block, no subscriber:
// nothing claimed), ErrFull, *SizeError, ErrNoPartition,
// ErrLoanOutstanding, ErrClosed. No allocation.
func (p *Publisher) LoanPartition(partition, n int) (Loan, error) {
	if p.closed {
		return Loan{}, ErrClosed
	}
	if p.loanPart >= 0 {
		return Loan{}, ErrLoanOutstanding
	}
	m := Message{Partition: partition}
	pub, err := p.route(&m)
	if err != nil {
		return Loan{}, err
	}
	if n > p.maxBytes {
		return Loan{}, &SizeError{Topic: p.topic, MessageBytes: n, PayloadBytes: n, MaxMessageBytes: p.maxBytes}
	}
	if unheard(pub) {
		p.notConnected++
		return Loan{}, ErrNotConnected
	}
	buf, err := pub.TryClaim(n)
	if err != nil {
		return Loan{}, p.count(err)
	}
	p.loanGen++
	p.loanPart = partition
	return Loan{Buf: buf, Partition: partition, gen: p.loanGen}, nil
}

// Send publishes a loan's record.
func (p *Publisher) Send(l Loan) error {
	if p.loanPart < 0 || l.gen != p.loanGen || l.Partition != p.loanPart {
		return ErrStaleLoan
	}
	pub := p.parts[p.loanPart].pub
	p.loanPart = -1
	p.loanGen++
	return p.count(pub.Commit())
}

// Abort gives a loan up; subscribers skip its record.
func (p *Publisher) Abort(l Loan) error {
	if p.loanPart < 0 || l.gen != p.loanGen || l.Partition != p.loanPart {
		return ErrStaleLoan
	}
	pub := p.parts[p.loanPart].pub
	p.loanPart = -1
	p.loanGen++
	return pub.Abort()
}

// PublisherStats are a Publisher's own counts (this process, this handle).
type PublisherStats struct {
	Published     uint64 // messages published
	BackPressured uint64 // TryPublish/Loan refusals for lack of room, and Publish timeouts
	Rejected      uint64 // messages refused under policy reject
	NotConnected  uint64 // TryPublish/Loan refusals for want of a subscriber (policy block)
}

// Stats returns the Publisher's counts. Same goroutine rule as publishing.
func (p *Publisher) Stats() PublisherStats {
	return PublisherStats{Published: p.published, BackPressured: p.backPressured, Rejected: p.rejected, NotConnected: p.notConnected}
}

// Close releases the publisher slots (aborting an outstanding loan), unmaps
// the regions and tells the daemon. Safe to call twice.
func (p *Publisher) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	registered := p.c.unregister(p) // first: the Client touches the rings only while registered
	p.closeParts()
	if registered {
		p.c.release(nil, p.attachID.Load())
	}
	return nil
}

func (p *Publisher) closeParts() {
	for i := range p.parts {
		if pub := p.parts[i].pub; pub != nil {
			shm.Guard(func() error { return pub.Close() }) // a truncated region must not kill us here either
		}
		p.parts[i].regions.close()
		p.parts[i] = pubPart{}
	}
}

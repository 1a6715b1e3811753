package client

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// From says where a new Subscriber starts in each partition.
type From int

const (
	// FromLatest (the zero value) starts at the tail: only messages
	// published after Subscribe.
	FromLatest From = iota
	// FromOldest starts at the oldest message still held: under
	// drop-oldest the oldest intact record; under block and reject the
	// slowest other subscriber's position (nothing is kept for absent
	// subscribers).
	FromOldest
)

// WaitStrategy is how Receive waits for messages (Disruptor/Aeron idle
// strategies).
type WaitStrategy int

const (
	// WaitDefault (the zero value) uses the daemon's default wait strategy
	// ([runtime] wait_strategy, which a config reload may change; the
	// client learns it when it connects or reconnects), or WaitBackoff if
	// the daemon names none.
	WaitDefault WaitStrategy = iota
	// WaitBackoff spins briefly, then yields, then sleeps on the rings'
	// futexes (all partitions' at once): low latency without burning a
	// core when idle.
	WaitBackoff
	// WaitBlocking sleeps on the futex as soon as nothing is ready.
	WaitBlocking
	// WaitYield polls and yields the processor in between
	// (sched_yield(2): another runnable thread on this CPU runs first).
	WaitYield
	// WaitBusySpin polls in a tight loop: lowest latency, one core at 100%.
	WaitBusySpin
)

func (w WaitStrategy) ring() ringbuf.WaitStrategy {
	switch w {
	case WaitBlocking:
		return ringbuf.Blocking
	case WaitYield:
		return ringbuf.Yield
	case WaitBusySpin:
		return ringbuf.BusySpin
	}
	return ringbuf.Backoff
}

// SubscribeOptions configures Subscribe. The zero value subscribes to every
// partition from the latest message, with the daemon's default wait
// strategy.
type SubscribeOptions struct {
	From From
	// Group, if set, joins the queue group of that name (MPMC topics): the
	// group's members share its messages, each going to one member. The
	// name is hashed (FNV-1a, 32 bits) to the ring's group id.
	Group string
	Wait  WaitStrategy
	// Partitions lists the partitions to read; nil means all.
	Partitions []int
}

// Handler receives messages from Poll, on the polling goroutine. The
// *Message, its Payload and its Headers belong to the Subscriber and are
// valid only until the handler returns (Payload aliases shared memory):
// use Message.Clone to keep one. The handler must not modify *m: the
// Subscriber sets the fields common to a partition's messages (Topic,
// Partition) when it moves to the partition, not per message.
type Handler func(m *Message)

// Subscriber receives a topic's messages straight from the partitions'
// rings mapped in this process. It owns one subscriber slot per partition
// until Close.
//
// A Subscriber must be used by one goroutine at a time. It keeps working
// while the daemon restarts. Within a partition messages arrive in publish
// order; across partitions Poll takes them round-robin.
type Subscriber struct {
	c        *Client
	topic    string
	attachID atomic.Uint64
	parts    []subPart
	next     int        // partition (index into parts) Poll starts at
	w        *ringWatch // its rings' identity; its error once they are not the topic's

	// Delivery state, reused for every message.
	cur     *subPart
	h       Handler
	msg     Message
	hdrs    map[string]string
	onRec   ringbuf.Handler // s.recordHandler(), made once
	copyRec Handler         // s.keep, bound once
	kept    Message
	have    bool

	ws *ringbuf.WaitSet // parks Receive on every partition at once

	closed    bool
	received  uint64
	malformed uint64
	wait      WaitStrategy // resolved: never WaitDefault
}

// WaitStrategy returns the wait strategy this subscriber uses: the one it
// asked for, or the daemon's default it resolved to.
func (s *Subscriber) WaitStrategy() WaitStrategy { return s.wait }

func (w WaitStrategy) String() string { return w.ring().String() }

// parseWait maps the daemon's name for a strategy to a WaitStrategy.
func parseWait(name string) WaitStrategy {
	switch name {
	case "blocking":
		return WaitBlocking
	case "yield":
		return WaitYield
	case "busy-spin":
		return WaitBusySpin
	}
	return WaitBackoff
}

type subPart struct {
	index int
	regions
	sub *ringbuf.Subscriber
}

// Subscribe attaches to topic as a subscriber. Errors: ErrTopicNotFound,
// ErrPermission, ErrInvalidTopicName, ErrBrokerNotRunning, ErrNoSlot
// (every subscriber slot of a partition is live; an SPSC topic takes one;
// the daemon waits up to ringbuf.ExitWait for a slot whose owner is
// exiting), ErrUnsupported (a group on an SPSC topic).
func (c *Client) Subscribe(ctx context.Context, topic string, opts SubscribeOptions) (*Subscriber, error) {
	ar, groups, files, err := c.attach(ctx, topic, wire.RoleSubscriber, opts.Partitions, opts.Group)
	if err != nil {
		return nil, err
	}
	defer closeFiles(files)
	s := &Subscriber{c: c, topic: topic, hdrs: map[string]string{}}
	s.attachID.Store(ar.AttachmentID)
	s.onRec = s.recordHandler()
	s.copyRec = s.keep
	from := ringbuf.FromLatest
	if opts.From == FromOldest {
		from = ringbuf.FromOldest
	}
	s.wait = opts.Wait
	if s.wait == WaitDefault {
		s.wait = c.defaultWait()
	}
	for i, part := range ar.Partitions {
		group, groupSlot := -1, 0
		if len(ar.GroupSlots) > 0 {
			group, groupSlot = ar.Topic.Spec.MaxSubscribers+ar.GroupSlots[i], ar.GroupSlots[i]+1
		}
		regs, ring, err := mapRing(groups[i], topic, ar.Slots[i], group, ar.Topic.Spec.MaxSubscribers+ar.Topic.Spec.MaxGroups, true)
		if err == nil {
			var sub *ringbuf.Subscriber
			sub, err = ring.NewSubscriber(ringbuf.SubscriberOptions{From: from, Group: groupID(opts.Group), Wait: s.wait.ring(), Slot: ar.Slots[i] + 1, GroupSlot: groupSlot})
			if err != nil {
				regs.close()
			} else {
				s.parts = append(s.parts, subPart{index: part, regions: regs, sub: sub})
			}
		}
		if err != nil {
			s.closeParts()
			c.release(nil, ar.AttachmentID)
			return nil, fmt.Errorf("kaelix: subscriber on %q partition %d: %w", topic, part, err)
		}
	}
	subs := make([]*ringbuf.Subscriber, len(s.parts))
	for i := range s.parts {
		subs[i] = s.parts[i].sub
	}
	if s.ws, err = ringbuf.NewWaitSet(subs); err != nil {
		s.closeParts()
		c.release(nil, ar.AttachmentID)
		return nil, fmt.Errorf("kaelix: subscriber on %q: %w", topic, err)
	}
	rings, data := make([]*ringbuf.Ring, len(s.parts)), make([]*shm.Region, len(s.parts))
	for i, sp := range s.parts {
		rings[i], data[i] = sp.sub.Ring(), sp.data
	}
	s.w = newRingWatch(topic, rings, false)
	if err := c.register(s, wire.Resume{Topic: topic, Role: wire.RoleSubscriber, Partitions: ar.Partitions, Slots: ar.Slots, GroupSlots: ar.GroupSlots, Rings: ringIDs(data)}); err != nil {
		s.closeParts()
		return nil, err
	}
	return s, nil
}

func (s *Subscriber) setAttachmentID(id uint64) { s.attachID.Store(id) }

// Topic returns the topic's name.
func (s *Subscriber) Topic() string { return s.topic }

// at makes p the partition being read: s.cur, and the fields of s.msg that
// are the same for every message of p (topic, partition), stored when the
// partition changes rather than per message (s.cur is set only here; the
// handler does not modify s.msg).
func (s *Subscriber) at(p *subPart) {
	if s.cur == p {
		return
	}
	s.cur = p
	m := &s.msg
	m.Topic = s.topic
	m.Partition = p.index
	m.ID.Partition = p.index
}

// recordHandler returns the ring handler that turns a ring record into
// s.msg and calls the handler: a closure over s (one call per record; a
// method value would add a wrapper's). It stores only the fields that
// change per message (sequence, timestamp, payload, key, headers); at set
// the rest for the partition.
func (s *Subscriber) recordHandler() ringbuf.Handler {
	return func(r ringbuf.Record) {
		m := &s.msg
		m.ID.Sequence = r.Sequence
		m.TimestampNS = r.TimestampNS
		m.Payload = r.Payload
		if r.Type == RecordTypeHeaders {
			s.withHeaders(m)
		} else { // loads, not stores and their write barrier checks
			if m.Key != nil {
				m.Key = nil
			}
			if m.Headers != nil {
				m.Headers = nil
			}
		}
		s.received++
		s.h(m)
	}
}

// withHeaders parses the header block at the front of m.Payload into
// m.Key and s.hdrs; a malformed block is counted and the message delivered
// raw, without key or headers. Out of line: the record handler's common
// path makes no call but the user's.
//
//go:noinline
func (s *Subscriber) withHeaders(m *Message) {
	m.Key, m.Headers = nil, nil
	key, payload, err := parseHeaderBlock(m.Payload, s.hdrs)
	if err != nil {
		s.malformed++ // delivered raw
		return
	}
	m.Key = key
	m.Payload = payload
	if len(s.hdrs) > 0 {
		m.Headers = s.hdrs
	}
}

// Poll delivers up to limit ready messages to h and returns how many it
// delivered; zero and a nil error means nothing was ready. It never waits.
// Expected outcomes: ErrLapped (drop-oldest: this subscriber was overrun
// and has resumed half a ring behind the newest message; Lost tells the total),
// ErrStalled (a publisher stopped mid-message; poll again later)
// and an *EvictedError (ErrEvicted: the daemon took a partition's slot
// because this subscriber held its publishers back; the message handled
// last may be torn; Close and Subscribe again).
// A *CorruptError (ErrCorrupt) means ring memory no publisher writes. No
// allocation for messages without headers (with headers, only the header
// strings).
//
// A region truncated by another process faults the read (SIGBUS); Poll
// turns that into a *FaultError for the topic (errors.Is ErrFault)
// instead of a crash.
func (s *Subscriber) Poll(h Handler, limit int) (n int, err error) {
	defer s.unguard(&err, debug.SetPanicOnFault(true))
	if len(s.parts) == 1 && !s.closed {
		// One partition, records ready: here rather than in poll to save
		// a call. Nothing ready or an error: poll says what it means.
		s.h = h
		s.at(&s.parts[0])
		if n, err := s.cur.sub.Poll(s.onRec, limit); n > 0 && err == nil {
			return n, nil
		} else if err != nil {
			return n, s.partErr(err)
		}
		if e := s.w.err.Load(); e != nil { // nothing left to read in rings that are not the topic's
			return 0, e
		}
		return 0, nil
	}
	return s.poll(h, limit)
}

// unguard is recoverFault for Poll: a deferred method with two arguments
// costs less per call than recoverFault's closure.
func (s *Subscriber) unguard(err *error, old bool) {
	debug.SetPanicOnFault(old)
	if r := recover(); r != nil {
		faultFrom(err, s.topic, s, r)
	}
}

func (s *Subscriber) poll(h Handler, limit int) (int, error) {
	if s.closed {
		return 0, ErrClosed
	}
	s.h = h
	if len(s.parts) == 1 {
		// One partition: no round robin.
		s.at(&s.parts[0])
		n, err := s.cur.sub.Poll(s.onRec, limit)
		if err == nil && n > 0 {
			return n, nil
		}
		if err != nil {
			return n, s.partErr(err)
		}
		if e := s.w.err.Load(); e != nil { // nothing left to read in rings that are not the topic's
			return 0, e
		}
		return 0, nil
	}
	total := 0
	for range s.parts {
		if total >= limit {
			break
		}
		s.at(&s.parts[s.next])
		s.next++
		if s.next == len(s.parts) {
			s.next = 0
		}
		n, err := s.cur.sub.Poll(s.onRec, limit-total)
		total += n
		if err != nil {
			return total, s.partErr(err)
		}
	}
	if total == 0 {
		if e := s.w.err.Load(); e != nil { // nothing left to read in rings that are not the topic's
			return 0, e
		}
	}
	return total, nil
}

// partErr is the error Poll returns for err from s.cur's ring.
func (s *Subscriber) partErr(err error) error {
	if err == ringbuf.ErrEvicted {
		return &EvictedError{Topic: s.topic, Partition: s.cur.index}
	} else if err == ringbuf.ErrDeleted {
		return s.w.deleted()
	}
	return err
}

func (s *Subscriber) keep(m *Message) {
	s.kept = m.Clone()
	s.have = true
}

// Receive returns the next message, copied (it allocates), waiting with the
// wait strategy until one arrives or ctx is done. Lapping (ErrLapped) and
// stalls are absorbed: Lost counts lapped messages. With several
// partitions it polls them all in turn and parks on all their doorbells
// at once (ringbuf.WaitSet), so an idle subscriber costs about ten futex
// calls a second however many partitions it reads. A parked Receive
// notices ctx's deadline on time and a cancellation within 100 ms. An
// eviction (*EvictedError, ErrEvicted) is returned at once, as by Poll.
//
// A faulting region gives a *FaultError, as Poll.
func (s *Subscriber) Receive(ctx context.Context) (m Message, err error) {
	defer recoverFault(&err, s.topic, s, debug.SetPanicOnFault(true))
	return s.receive(ctx)
}

// noDeadline is a WaitSet deadline that never passes.
const noDeadline = int64(1<<63 - 1)

func (s *Subscriber) receive(ctx context.Context) (Message, error) {
	s.have = false
	deadline := noDeadline
	if dl, ok := ctx.Deadline(); ok {
		deadline = ringbuf.MonotonicNS() + int64(time.Until(dl))
	}
	for i := 0; ; i++ {
		if s.closed {
			return Message{}, ErrClosed
		}
		_, err := s.poll(s.copyRec, 1)
		if s.have {
			return s.kept, nil
		}
		if err != nil && err != ringbuf.ErrLapped && err != ringbuf.ErrStalled {
			return Message{}, err
		}
		if ctx.Err() != nil {
			return Message{}, context.Cause(ctx)
		}
		switch err := s.ws.Idle(i, deadline, ctx.Done()); err {
		case nil, ringbuf.ErrStalled:
		case ringbuf.ErrTimeout:
			<-ctx.Done() // its deadline has passed: its timer is due
			return Message{}, context.Cause(ctx)
		default:
			return Message{}, err
		}
	}
}

// PollWait is Poll that waits: it delivers up to limit ready messages to
// h, in place (Payload aliases shared memory, as with Poll), and when none
// is ready it waits for one with the wait strategy, as Receive does, until
// ctx is done (context.Cause(ctx) is returned). It returns how many it
// delivered, at least one unless err is set. Lapping and stalls are
// absorbed (Lost counts lapped messages); an eviction (*EvictedError) is
// returned at once. No allocation for messages without headers, waiting
// or not: the zero-allocation counterpart of Receive. Same goroutine rule
// as Poll; a faulting region gives a *FaultError.
func (s *Subscriber) PollWait(ctx context.Context, h Handler, limit int) (n int, err error) {
	defer recoverFault(&err, s.topic, s, debug.SetPanicOnFault(true))
	deadline := noDeadline
	if dl, ok := ctx.Deadline(); ok {
		deadline = ringbuf.MonotonicNS() + int64(time.Until(dl))
	}
	for i := 0; ; i++ {
		n, err := s.poll(h, limit)
		if n > 0 && (err == nil || err == ringbuf.ErrLapped || err == ringbuf.ErrStalled) {
			return n, nil
		}
		if err != nil && err != ringbuf.ErrLapped && err != ringbuf.ErrStalled {
			return n, err
		}
		if ctx.Err() != nil {
			return 0, context.Cause(ctx)
		}
		switch err := s.ws.Idle(i, deadline, ctx.Done()); err {
		case nil, ringbuf.ErrStalled:
		case ringbuf.ErrTimeout:
			<-ctx.Done() // its deadline has passed: its timer is due
			return 0, context.Cause(ctx)
		default:
			return 0, err
		}
	}
}

// Next is Receive, for iterator-style loops.
func (s *Subscriber) Next(ctx context.Context) (Message, error) { return s.Receive(ctx) }

// Lag returns the bytes of published messages this subscriber has not read
// yet, summed over its partitions.
func (s *Subscriber) Lag() uint64 {
	var n uint64
	for _, p := range s.parts {
		n += p.sub.Lag()
	}
	return n
}

// Lost returns how many messages this subscriber lost to lapping (policy
// drop-oldest) or, in a queue group, that its group lost, in total.
func (s *Subscriber) Lost() uint64 {
	var n uint64
	for _, p := range s.parts {
		n += p.sub.Lost()
	}
	return n
}

// SubscriberStats are a Subscriber's own counts.
type SubscriberStats struct {
	Received  uint64 // messages delivered
	Lost      uint64 // as Lost
	LagBytes  uint64 // as Lag
	Malformed uint64 // header blocks that did not parse (delivered raw)
}

// Stats returns the Subscriber's counts. Same goroutine rule as Poll.
func (s *Subscriber) Stats() SubscriberStats {
	return SubscriberStats{Received: s.received, Lost: s.Lost(), LagBytes: s.Lag(), Malformed: s.malformed}
}

// Close leaves every ring (freeing the slots), unmaps the regions and tells
// the daemon. Safe to call twice.
func (s *Subscriber) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	registered := s.c.unregister(s) // first: the Client touches the rings only while registered
	s.closeParts()
	if registered {
		s.c.release(nil, s.attachID.Load())
	}
	return nil
}

func (s *Subscriber) closeParts() {
	for _, p := range s.parts {
		shm.Guard(func() error { return p.sub.Close() }) // a truncated region must not kill us here either
		p.regions.close()
	}
	s.parts = nil
}

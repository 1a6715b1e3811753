package bench

// The floors: the least a shared-memory transport must do on this machine,
// written here without any ring, to measure Kaelix against in the same run.
//
// floor and futex-floor are mailboxes: one slot, written by the publisher,
// read by the subscriber, with no back-pressure. That is exact for a
// ping-pong (a side sends again only after it heard back), and they serve
// only that mode. Layout of a mailbox file (offsets in bytes):
//
//	0   seq    uint32 futex word; the publisher's store-release of seq+1 publishes the payload
//	4   waiters uint32 futex-floor: subscribers about to sleep (written by them)
//	8   payload [size]byte, written by the publisher before the seq store
//
// With a payload of at most 56 bytes the whole exchange is one cache line
// each way.
//
// copy-floor is a minimal fixed-slot SPSC ring written for speed, the
// least a ring with back-pressure costs here: records of one fixed size in
// consecutive slots, no per-slot header, and two indexes on their own
// cache-line pairs. Each side keeps a local copy of the other's index and
// reads the shared one only when the copy says it must wait (the ring
// looks full or empty). In throughput runs the publisher publishes head
// every copyFloorPublish(size) records (and when it must wait, and on
// Flush), the subscriber publishes tail every copyFloorAck(size) records
// (and when it finds the ring empty); in the latency modes the publisher
// publishes every record. Its slots span 4 MiB, the data area of the
// Kaelix rings the harness makes, so both work on the same amount of
// memory:
//
//	0    head uint64 records published (written by the publisher, store-release)
//	128  tail uint64 records consumed (written by the subscriber, store-release)
//	256  slots: copyFloorSlots(size) x payload rounded up to 8 bytes
//
// Record i is in slot i mod slots; head > i publishes it, tail > i frees
// its slot.

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

const (
	mailboxSeqOffset     = 0
	mailboxWaitersOffset = mailboxSeqOffset + 4
	mailboxPayloadOffset = mailboxWaitersOffset + 4

	copyFloorHeadOffset  = 0
	copyFloorTailOffset  = copyFloorHeadOffset + 128
	copyFloorSlotsOffset = copyFloorTailOffset + 128
	copyFloorDataBytes   = 4 << 20
)

// copyFloorSlots is the slot count for size-byte payloads: the largest
// power of two whose slots fit in copyFloorDataBytes, at least 64.
func copyFloorSlots(size int) int {
	n := 64
	for 2*n*copyFloorSlotBytes(size) <= copyFloorDataBytes {
		n *= 2
	}
	return n
}

// copyFloorAck is how often the subscriber publishes tail.
func copyFloorAck(size int) uint64 { return uint64(min(256, copyFloorSlots(size)/4)) }

// copyFloorPublish is how often a throughput publisher publishes head.
func copyFloorPublish(size int) uint64 { return uint64(min(64, copyFloorSlots(size)/8)) }

func roundUp(n, to int) int { return (n + to - 1) / to * to }

func mailboxBytes(size int) int { return roundUp(mailboxPayloadOffset+size, 4096) }

func copyFloorSlotBytes(size int) int { return roundUp(size, 8) }

func copyFloorBytes(size int) int {
	return roundUp(copyFloorSlotsOffset+copyFloorSlots(size)*copyFloorSlotBytes(size), 4096)
}

func init() {
	register(&transport{
		name: "floor", modes: []string{ModePingPong}, inherentWait: "busy-spin",
		newLink: func(r *runEnv, l *linkSpec) error { return newShmFile(r, l, mailboxBytes(l.Size)) },
		openTx:  func(e *procEnv, l *linkSpec, _ int) (Tx, error) { return openMailbox(e, l, false) },
		openRx:  func(e *procEnv, l *linkSpec, _ int) (Rx, error) { return openMailbox(e, l, false) },
		method:  "none made by the transport; /proc/PID/io read+write counts (expected 0)",
	})
	register(&transport{
		name: "futex-floor", modes: []string{ModePingPong}, inherentWait: "blocking",
		newLink: func(r *runEnv, l *linkSpec) error { return newShmFile(r, l, mailboxBytes(l.Size)) },
		openTx:  func(e *procEnv, l *linkSpec, _ int) (Tx, error) { return openMailbox(e, l, true) },
		openRx:  func(e *procEnv, l *linkSpec, _ int) (Rx, error) { return openMailbox(e, l, true) },
		method:  "FUTEX_WAIT and FUTEX_WAKE calls counted by the transport itself",
	})
	register(&transport{
		name: "copy-floor", inherentWait: "busy-spin",
		newLink: func(r *runEnv, l *linkSpec) error { return newShmFile(r, l, copyFloorBytes(l.Size)) },
		openTx:  func(e *procEnv, l *linkSpec, _ int) (Tx, error) { return openCopyFloor(e, l, false) },
		openRx:  func(e *procEnv, l *linkSpec, _ int) (Rx, error) { return openCopyFloor(e, l, true) },
		method:  "none made by the transport; /proc/PID/io read+write counts (expected 0)",
	})
}

// newShmFile creates the link's shared file in the run's tmpfs directory.
func newShmFile(r *runEnv, l *linkSpec, size int) error {
	l.Path = filepath.Join(r.shmDir, l.ID)
	m, err := mapShared(l.Path, size, true)
	if err != nil {
		return fmt.Errorf("bench: %s: %w", l.ID, err)
	}
	return m.close()
}

// mailbox is both ends of a floor or futex-floor link.
type mailbox struct {
	ctx     context.Context
	m       *sharedMem
	futex   bool
	seq     uint32 // publisher: last sent; subscriber: last seen
	payload []byte
	ts      unix.Timespec
	calls   uint64
}

func openMailbox(e *procEnv, l *linkSpec, futex bool) (*mailbox, error) {
	m, err := mapShared(l.Path, mailboxBytes(l.Size), false)
	if err != nil {
		return nil, err
	}
	mb := &mailbox{ctx: e.ctx, m: m, futex: futex, payload: m.bytes(mailboxPayloadOffset, l.Size)}
	mb.seq = m.u32(mailboxSeqOffset).Load()
	return mb, nil
}

func (mb *mailbox) Send(p []byte) error {
	copy(mb.payload, p)
	mb.seq++
	mb.m.u32(mailboxSeqOffset).Store(mb.seq) // store-release: publishes the payload
	if mb.futex && mb.m.u32(mailboxWaitersOffset).Load() != 0 {
		futexWakeShared(mb.m.u32(mailboxSeqOffset))
		mb.calls++
	}
	return nil
}

func (mb *mailbox) SendBatch(ps [][]byte) error {
	for _, p := range ps {
		if err := mb.Send(p); err != nil {
			return err
		}
	}
	return nil
}

func (mb *mailbox) Recv(h func([]byte), _ int) (int, error) {
	seq := mb.m.u32(mailboxSeqOffset)
	for i := 1; ; i++ {
		if v := seq.Load(); v != mb.seq { // load-acquire: the payload is there
			mb.seq = v
			h(mb.payload)
			return 1, nil
		}
		if mb.futex {
			w := mb.m.u32(mailboxWaitersOffset)
			w.Add(1) // announce before the re-check: no lost wakeup
			if seq.Load() == mb.seq {
				futexWaitShared(seq, mb.seq, 100*time.Millisecond, &mb.ts)
				mb.calls++
			}
			w.Add(^uint32(0))
		}
		if i%spinCheck == 0 || mb.futex {
			if err := mb.ctx.Err(); err != nil {
				return 0, err
			}
		}
	}
}

func (mb *mailbox) futexCalls() uint64 { return mb.calls }

func (mb *mailbox) Close() error { return mb.m.close() }

// copyFloor is both ends of a copy-floor link. Publisher fields: next
// (next record to write), limit (records it may write before it reads
// tail again), published (head as last stored). Subscriber fields: next
// (next record to read), avail (head as last read), published (tail as
// last stored).
type copyFloor struct {
	ctx       context.Context
	m         *sharedMem
	rx        bool
	size      int
	slot      int
	mask      uint64
	every     uint64 // publish the own index every this many records
	next      uint64
	limit     uint64
	avail     uint64
	published uint64
	head      *atomic.Uint64
	tail      *atomic.Uint64
}

func openCopyFloor(e *procEnv, l *linkSpec, rx bool) (*copyFloor, error) {
	m, err := mapShared(l.Path, copyFloorBytes(l.Size), false)
	if err != nil {
		return nil, err
	}
	slots := uint64(copyFloorSlots(l.Size))
	c := &copyFloor{ctx: e.ctx, m: m, rx: rx, size: l.Size, slot: copyFloorSlotBytes(l.Size), mask: slots - 1,
		head: m.u64(copyFloorHeadOffset), tail: m.u64(copyFloorTailOffset), every: 1}
	if rx {
		c.every = copyFloorAck(l.Size)
	} else if l.Mode == ModeThroughput {
		c.every = copyFloorPublish(l.Size)
	}
	c.limit = slots
	return c, nil
}

func (c *copyFloor) slotBytes(i uint64) []byte {
	return c.m.bytes(copyFloorSlotsOffset+int(i&c.mask)*c.slot, c.size)
}

// room waits until record c.next has a free slot.
func (c *copyFloor) room() error {
	c.Flush() // the subscriber may be waiting for what is written
	for n := 1; ; n++ {
		c.limit = c.tail.Load() + c.mask + 1 // load-acquire: the subscriber is done with these slots
		if c.next < c.limit {
			return nil
		}
		if n%spinCheck == 0 {
			if err := c.ctx.Err(); err != nil {
				return err
			}
			runtime.Gosched()
		}
	}
}

func (c *copyFloor) Send(p []byte) error {
	if c.next == c.limit {
		if err := c.room(); err != nil {
			return err
		}
	}
	copy(c.slotBytes(c.next), p)
	c.next++
	if c.next-c.published >= c.every {
		c.head.Store(c.next) // store-release: publishes the records up to next
		c.published = c.next
	}
	return nil
}

func (c *copyFloor) SendBatch(ps [][]byte) error {
	for _, p := range ps {
		if c.next == c.limit {
			if err := c.room(); err != nil {
				return err
			}
		}
		copy(c.slotBytes(c.next), p)
		c.next++
	}
	if c.next-c.published >= c.every {
		c.head.Store(c.next) // store-release
		c.published = c.next
	}
	return nil
}

// Flush publishes head if records are written but not yet published.
func (c *copyFloor) Flush() error {
	if !c.rx && c.next != c.published {
		c.head.Store(c.next) // store-release
		c.published = c.next
	}
	return nil
}

func (c *copyFloor) Recv(h func([]byte), limit int) (int, error) {
	n := 0
	for spins := 1; ; spins++ {
		if c.next == c.avail {
			if n > 0 {
				return n, nil
			}
			if c.next != c.published {
				c.tail.Store(c.next) // store-release: frees the slots read
				c.published = c.next
			}
			c.avail = c.head.Load() // load-acquire: the records up to avail are there
			if c.next == c.avail {
				if spins%spinCheck == 0 {
					if err := c.ctx.Err(); err != nil {
						return 0, err
					}
				}
				continue
			}
		}
		h(c.slotBytes(c.next))
		c.next++
		if c.next-c.published >= c.every {
			c.tail.Store(c.next) // store-release
			c.published = c.next
		}
		if n++; n == limit {
			return n, nil
		}
	}
}

func (c *copyFloor) Close() error {
	if c.rx && c.m.b != nil {
		// The subscriber publishes its final position so a publisher
		// waiting for room is released.
		c.tail.Store(c.next)
	}
	return c.m.close()
}

// readSeq and the header helpers: every record starts with a 16-byte
// header, little-endian: seq (peer<<peerShift | index, or endSeq) then a
// CLOCK_MONOTONIC timestamp in ns (the intended send time when paced).
const (
	hdrSeqOffset   = 0
	hdrStampOffset = hdrSeqOffset + 8
	// MinPayloadBytes is the smallest payload the harness sends: the
	// record header above.
	MinPayloadBytes = hdrStampOffset + 8
	peerShift       = 40
	indexMask       = 1<<peerShift - 1
	endSeq          = ^uint64(0)
)

func putHeader(p []byte, seq uint64, stamp int64) {
	binary.LittleEndian.PutUint64(p[hdrSeqOffset:], seq)
	binary.LittleEndian.PutUint64(p[hdrStampOffset:], uint64(stamp))
}

func readHeader(p []byte) (seq uint64, stamp int64) {
	return binary.LittleEndian.Uint64(p[hdrSeqOffset:]), int64(binary.LittleEndian.Uint64(p[hdrStampOffset:]))
}

package soak

// The ledger is a small file every soak process maps MAP_SHARED: the
// orchestrator creates it, children open it by path. It is how killed
// processes still leave their counts behind: every count is an atomic
// store or add into the mapping as it happens, never a message sent at
// exit.
//
//	offset 0                     header: magic, version (8 words)
//	streamsOffset                MaxStreams x streamWords: one entry per publisher incarnation
//	subsOffset                   MaxSubs x subWords: one entry per subscriber incarnation
//	bitmapsOffset                MaxGroupStreams x MaxGroupSeq bits: records a queue group delivered
//
// The file is sparse: bitmap pages exist only once a group member touches
// them. Writers: a stream entry by its publisher, a sub entry by its
// subscriber, a bitmap bit by whichever group member got the record.
// Readers: the orchestrator, and subscribers doing their final check.

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	ledgerMagic   = 0x52474c4b4153584b // "KXSAKLGR"
	ledgerVersion = 1

	// MaxStreams bounds publisher incarnations per run; MaxSubs subscriber
	// incarnations. Stream ids below MaxGroupStreams are for topics read by
	// queue groups (they get a delivery bitmap); the others start there.
	MaxStreams      = 16384
	MaxSubs         = 16384
	MaxGroupStreams = 2048
	// MaxGroupSeq is how many records a publisher on a group topic sends
	// before it ends its stream (and is restarted under a new one).
	MaxGroupSeq = 1 << 20

	headerWords = 8
	streamWords = 8
	subWords    = 16

	streamsOffset = headerWords * 8
	subsOffset    = streamsOffset + MaxStreams*streamWords*8
	bitmapsOffset = subsOffset + MaxSubs*subWords*8
	bitmapBytes   = MaxGroupSeq / 8
	ledgerBytes   = bitmapsOffset + MaxGroupStreams*bitmapBytes
)

// Stream entry words (written by the publisher).
const (
	stTopic   = iota // topic index + 1; 0 = unused
	stAcked          // records committed (stored after each commit)
	stStartNS        // CLOCK_MONOTONIC ns when it started
	stEndNS          // when it stopped cleanly; 0 while running or if killed
	stPID
)

// Sub entry words (written by the subscriber).
const (
	sbTopic    = iota // topic index + 1
	sbReceived        // records delivered
	sbCorrupt         // checksum or length mismatch
	sbDup             // a (stream, seq) delivered twice
	sbReorder         // a record older than one already delivered, after a gap
	sbGapLost         // records missing inside a stream (gap before a later record)
	sbRingLost        // the ring's own lost count for this subscriber
	sbMaxLatNS        // largest publish-to-delivery latency
	sbChecked         // 1 once the final check ran
	sbEndLost         // records missing at the end of a stream, found by the final check
	sbErrors          // unexpected errors (Poll, attach)
	sbPID
	sbStartNS
	sbGroup   // 1 for a queue-group member
	sbStalled // ErrStalled results seen
	sbLatOver // deliveries slower than 100 ms
)

// Ledger is the mapped ledger file.
type Ledger struct {
	b []byte
}

// CreateLedger makes the ledger file at path.
func CreateLedger(path string) (*Ledger, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := f.Truncate(ledgerBytes); err != nil {
		return nil, err
	}
	l, err := mapLedger(f)
	if err != nil {
		return nil, err
	}
	l.word(8).Store(ledgerVersion)
	l.word(0).Store(ledgerMagic)
	return l, nil
}

// OpenLedger maps an existing ledger.
func OpenLedger(path string) (*Ledger, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	l, err := mapLedger(f)
	if err != nil {
		return nil, err
	}
	if l.word(0).Load() != ledgerMagic || l.word(8).Load() != ledgerVersion {
		l.Close()
		return nil, errors.New("soak: not a ledger file")
	}
	return l, nil
}

func mapLedger(f *os.File) (*Ledger, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() != ledgerBytes {
		return nil, fmt.Errorf("soak: ledger is %d bytes, want %d", st.Size(), ledgerBytes)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, ledgerBytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	return &Ledger{b: b}, nil
}

// Close unmaps the ledger.
func (l *Ledger) Close() error { return unix.Munmap(l.b) }

// word returns the 8-byte aligned word at byte offset off (mmap is page
// aligned and every offset is a multiple of 8).
func (l *Ledger) word(off int) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&l.b[off]))
}

func (l *Ledger) stream(id, w int) *atomic.Uint64 {
	return l.word(streamsOffset + (id*streamWords+w)*8)
}

func (l *Ledger) sub(id, w int) *atomic.Uint64 {
	return l.word(subsOffset + (id*subWords+w)*8)
}

// markDelivered sets the bit of (stream, seq) and reports whether it was
// already set (a duplicate). Only for group streams and seq < MaxGroupSeq.
func (l *Ledger) markDelivered(stream int, seq uint64) (dup bool) {
	bit := uint64(stream)*MaxGroupSeq + seq
	w := (*atomic.Uint64)(unsafe.Pointer(&l.b[bitmapsOffset+int(bit/64)*8]))
	m := uint64(1) << (bit % 64)
	return w.Or(m)&m != 0
}

// delivered counts the bits set in [0, n) of a group stream's bitmap.
func (l *Ledger) delivered(stream int, n uint64) uint64 {
	var c uint64
	base := bitmapsOffset + stream*bitmapBytes
	for i := uint64(0); i < n; i += 64 {
		w := l.word(base + int(i/64)*8).Load()
		if n-i < 64 {
			w &= (1 << (n - i)) - 1
		}
		c += uint64(popcount(w))
	}
	return c
}

func popcount(x uint64) int {
	n := 0
	for x != 0 {
		x &= x - 1
		n++
	}
	return n
}

// storeMax raises w to v if v is larger.
func storeMax(w *atomic.Uint64, v uint64) {
	for {
		o := w.Load()
		if v <= o || w.CompareAndSwap(o, v) {
			return
		}
	}
}

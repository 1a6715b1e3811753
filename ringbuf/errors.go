package ringbuf

import (
	"errors"
	"fmt"
)

// Expected outcomes on the hot path. They are preallocated sentinels:
// returning one costs nothing and never formats a message.
var (
	// ErrBackPressured: under PolicyBlock, the claim would overrun the
	// slowest live consumer. Retry later, or publish with a deadline.
	ErrBackPressured = errors.New("ringbuf: back-pressured by the slowest subscriber")

	// ErrFull: under PolicyReject, the ring has no room for the record,
	// which is refused and counted. Nothing waits under this policy.
	ErrFull = errors.New("ringbuf: ring full, record rejected")

	// ErrLapped: under PolicyDropOldest, publishers overwrote records this
	// consumer had not read yet. The consumer has already resumed half a
	// ring behind the tail; Subscriber.Lost tells how many records were
	// lost in total. Returned once per gap in the delivered sequence.
	// Records delivered before the lap are reported in n.
	ErrLapped = errors.New("ringbuf: lapped by publishers; records lost")

	// ErrEvicted: the subscriber's slot was taken away (EvictSubscriber,
	// by the daemon) because it held publishers back. Publishers no longer
	// wait for it; the record it handled last may have been overwritten
	// while it read it. Close it and subscribe again to go on.
	ErrEvicted = errors.New("ringbuf: subscriber evicted for holding publishers back; subscribe again")

	// ErrDeleted: the ring's owner (the daemon, for a topic deleted by
	// force while attached) marked it deleted (Ring.MarkDeleted). Nothing
	// more will be published; close the handle.
	ErrDeleted = errors.New("ringbuf: ring deleted")

	// ErrTimeout: a timed wait ended before the ring could proceed.
	ErrTimeout = errors.New("ringbuf: timed out")
)

// Programming and configuration errors.
var (
	// ErrTooLarge: a record's payload exceeds the ring's MaxPayloadBytes.
	// Returned wrapped in a *SizeError that gives both sizes.
	ErrTooLarge = errors.New("ringbuf: record larger than the ring's max payload")

	// ErrNoClaim: Commit or Abort without an outstanding TryClaim.
	ErrNoClaim = errors.New("ringbuf: no outstanding claim")

	// ErrClaimOutstanding: a second TryClaim before Commit or Abort.
	ErrClaimOutstanding = errors.New("ringbuf: a claim is already outstanding; commit or abort it first")

	// ErrNoSlot: the ring's publisher, subscriber or queue-group table is
	// full of live owners. Raise MaxPublishers/MaxSubscribers/MaxGroups.
	ErrNoSlot = errors.New("ringbuf: no free slot")

	// ErrShortBuffer: Read's destination is smaller than the next record.
	// The record stays unread.
	ErrShortBuffer = errors.New("ringbuf: destination buffer too small for record")

	// ErrClosed: the handle was closed.
	ErrClosed = errors.New("ringbuf: closed")

	// ErrConfig: Create was given an invalid Config (wrapped with detail).
	ErrConfig = errors.New("ringbuf: invalid config")

	// ErrNotReady: the ring's layout version is still 0: its creator has
	// not finished initializing it. Retry shortly.
	ErrNotReady = errors.New("ringbuf: ring not initialized yet")

	// ErrIncompatible: the ring has another layout version or magic; it was
	// made by another Kaelix release or is not a ring. Not retryable.
	ErrIncompatible = errors.New("ringbuf: incompatible ring")

	// ErrCorrupt: ring memory holds values no correct publisher writes (a
	// bad length, state or position). Returned wrapped in a *CorruptError
	// saying where and what. The consumer's position is left unchanged.
	ErrCorrupt = errors.New("ringbuf: corrupt ring memory")

	// ErrUnsupported: the operation does not apply to this ring's kind.
	ErrUnsupported = errors.New("ringbuf: not supported by this ring kind")
)

// VersionError is the ErrIncompatible of a ring made with another layout
// version (by another Kaelix release): its message reads "incompatible
// layout version G, want W". Nothing of such a ring is read past its
// version word.
type VersionError struct {
	Got, Want uint32 // the ring's layout version, and this build's (LayoutVersion)
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("ringbuf: incompatible layout version %d, want %d", e.Got, e.Want)
}

// Unwrap makes errors.Is(err, ErrIncompatible) hold.
func (e *VersionError) Unwrap() error { return ErrIncompatible }

// SizeError reports a record that does not fit the ring's limit.
type SizeError struct {
	PayloadBytes    int // bytes offered
	MaxPayloadBytes int // the ring's limit
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("ringbuf: record of %d bytes exceeds the ring's max payload of %d bytes", e.PayloadBytes, e.MaxPayloadBytes)
}

// Unwrap makes errors.Is(err, ErrTooLarge) hold.
func (e *SizeError) Unwrap() error { return ErrTooLarge }

// CorruptError says where ring memory was found invalid.
type CorruptError struct {
	Position uint64 // ring position (bytes) of the bad record
	Field    string // which field was bad
	Value    uint64 // the value found
	Detail   string // what was expected
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("ringbuf: corrupt ring memory at position %d: %s = %#x: %s", e.Position, e.Field, e.Value, e.Detail)
}

// Unwrap makes errors.Is(err, ErrCorrupt) hold.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// ErrStalled: the record at the consumer's position has stayed claimed but
// uncommitted past the ring's unblock timeout, and its publisher is alive
// (for example stopped with SIGSTOP) or cannot be identified. The record
// is never overwritten while its publisher lives; poll again later.
var ErrStalled = errors.New("ringbuf: record claimed but not committed past the unblock timeout; its publisher is alive or unknown")

// ErrReadOnly: the ring's data area was attached read-only (a subscriber's
// view); it cannot publish.
var ErrReadOnly = errors.New("ringbuf: ring attached with a read-only data area; it can only subscribe")

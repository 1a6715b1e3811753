package client

import (
	"errors"
	"fmt"

	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

var (
	// ErrBrokerNotRunning: nothing accepts connections on the socket (no
	// daemon, or it is restarting). Returned as a *BrokerNotRunningError
	// naming the socket path and the cause. Remedy: start kaelixd, or fix
	// Options.SocketPath. A connected Client reconnects by itself.
	ErrBrokerNotRunning = errors.New("broker is not running")

	// ErrBrokerNotAnswering: the socket accepted the connection but the
	// daemon did not answer hello before the context's deadline (10 s
	// without one): it is stopped (SIGSTOP), hung, or too busy. Its
	// heartbeat file tells which (kaelixctl health). Retryable.
	ErrBrokerNotAnswering = errors.New("broker is not answering")

	// ErrClosed: the Client, Publisher or Subscriber was closed.
	ErrClosed = errors.New("client: closed")

	// ErrInvalidTopicName: the topic name breaks the rule of
	// ValidateTopicName (checked before anything is sent).
	ErrInvalidTopicName = wire.ErrInvalidTopicName

	// Errors the daemon returns, matched by errors.Is against a *BrokerError.

	// ErrTopicNotFound: no topic of that name. Remedy: create it first.
	ErrTopicNotFound = errors.New("topic not found")
	// ErrTopicConflict: create found the topic already registered; the
	// message names the differing parameter, if any.
	ErrTopicConflict = errors.New("topic exists")
	// ErrTopicInUse: delete refused while clients are attached; pass
	// DeleteOptions.Force to delete anyway (attached clients keep their
	// mappings until they close).
	ErrTopicInUse = errors.New("topic in use")
	// ErrPermission: the topic's mode and group do not allow this process
	// (by its SO_PEERCRED uid/gid) to attach in that role; or, as a
	// *SocketPermissionError, it may not connect to the control socket.
	ErrPermission = errors.New("permission denied")
	// ErrInvalidSpec: topic parameters out of range; the message names them.
	ErrInvalidSpec = errors.New("invalid topic parameters")
	// ErrTopicTooLarge: create refused because the topic's regions would
	// take more than the daemon's shm.max_topic_share of free memory or
	// region space, or shm.max_topic_bytes; the message gives the figures.
	// Remedy: a smaller topic, or CreateOptions.Force.
	ErrTopicTooLarge = errors.New("topic too large for this host")
	// ErrProtocol: the peer broke the protocol (version mismatch, bad
	// frame, unexpected reply). Not retryable with this build.
	ErrProtocol = errors.New("protocol error")

	// Expected publishing outcomes (the ringbuf sentinels; no allocation).

	// ErrBackPressured: under policy block, the partition has no room until
	// the slowest subscriber advances. TryPublish returns it; Publish waits.
	ErrBackPressured = ringbuf.ErrBackPressured
	// ErrFull: under policy reject, the record was refused.
	ErrFull = ringbuf.ErrFull
	// ErrLapped: under policy drop-oldest, this subscriber was overrun and
	// resumed half a ring behind the newest message; Lost says how many
	// were lost. Returned once per gap in the messages it delivers.
	ErrLapped = ringbuf.ErrLapped

	// ErrEvicted: kaelixd took this subscriber's ring slot in a partition
	// because it held that partition's publishers back (policy block or
	// reject) without reading for daemon.evict_stalled_after: its process
	// was stopped, or ran without polling. Publishers no longer wait for
	// it, and the message it handled last before the eviction may have
	// been overwritten while it was read. Poll, Receive and Next return it
	// as an *EvictedError naming the topic and partition, at once (they
	// neither wait nor spin on it), and again whenever a later call comes
	// to that partition; errors.Is(err, ringbuf.ErrEvicted) holds as well,
	// this being the same sentinel. The Subscriber does not recover: Close
	// it and Subscribe again (from the latest message: nothing was kept for
	// it meanwhile). A process that holds publishers back that long again
	// after an eviction is killed by the daemon.
	ErrEvicted = ringbuf.ErrEvicted

	// ErrTopicDeleted: the topic was deleted (by force) while this handle
	// was attached, or the --ephemeral daemon that owned it stopped (and
	// removed its files). A Subscriber returns it once it has delivered
	// every message published before, a Publisher on its next publish
	// (TryPublish, Publish; a Loan when it needs the ring's free space);
	// it is the same sentinel as
	// ringbuf.ErrDeleted. Close the handle.
	ErrTopicDeleted = ringbuf.ErrDeleted

	// ErrStalled: Poll, Receive or Next found the record at a partition's
	// read position claimed but not committed past the ring's unblock
	// timeout, and its publisher alive (stopped with SIGSTOP, say) or
	// unknown. Nothing is lost: the record is never overwritten while its
	// publisher lives. Expected: poll again later. The ring's sentinel
	// (ringbuf.ErrStalled), preallocated.
	ErrStalled = ringbuf.ErrStalled

	// ErrNoSlot: NewPublisher or Subscribe found every publisher (or
	// subscriber) slot of a partition held by a live process
	// (max_publishers, max_subscribers; an SPSC topic has one of each).
	// The daemon's refusal (a *BrokerError) and the ring's matching hold
	// it alike. Remedy: close idle handles, or a topic with more slots.
	ErrNoSlot = ringbuf.ErrNoSlot

	// ErrUnsupported: the topic's kind does not do it (a queue group on
	// an SPSC topic).
	ErrUnsupported = ringbuf.ErrUnsupported

	// ErrCorrupt: a Subscriber found ring memory that no publisher
	// writes (a torn or forged record header). Returned as a
	// *CorruptError naming the position and the field. The partition
	// cannot be trusted: close the handle and tell the operator.
	ErrCorrupt = ringbuf.ErrCorrupt

	// ErrFault: touching a topic's shared memory faulted (SIGBUS: a
	// region file truncated by another process; or a write into a
	// subscriber's read-only mapping). Returned as a *FaultError.
	ErrFault = shm.ErrFault

	// ErrMessageTooLarge: an encoded message exceeds the topic's max
	// message size. Returned as a *SizeError with both sizes.
	ErrMessageTooLarge = errors.New("message too large")
	// ErrLoanOutstanding: Loan while an earlier loan was neither sent nor
	// aborted.
	ErrLoanOutstanding = errors.New("client: a loan is outstanding; Send or Abort it first")
	// ErrStaleLoan: Send or Abort of a loan that was already sent, aborted,
	// or came from another Publisher.
	ErrStaleLoan = errors.New("client: stale loan (already sent or aborted)")
	// ErrNoPartition: a message named a partition the topic does not have
	// (or the Publisher did not attach).
	ErrNoPartition = errors.New("client: no such partition")
)

// CorruptError is ErrCorrupt: the ring's record of what was bad, in
// fields Position (the record's position in the partition, bytes), Field
// (which header field), Value (what was found) and Detail (what was
// expected). errors.Is(err, ErrCorrupt) holds. Match it with errors.As
// and a *CorruptError.
type CorruptError = ringbuf.CorruptError

// BrokerNotRunningError is ErrBrokerNotRunning.
type BrokerNotRunningError struct {
	SocketPath string
	Err        error // the dial error, or why the connection is down
}

func (e *BrokerNotRunningError) Error() string {
	return fmt.Sprintf("Broker is not running: %s: %v", e.SocketPath, e.Err)
}

// Is makes errors.Is(err, ErrBrokerNotRunning) hold.
func (e *BrokerNotRunningError) Is(target error) bool { return target == ErrBrokerNotRunning }

// Unwrap returns the cause.
func (e *BrokerNotRunningError) Unwrap() error { return e.Err }

// SocketPermissionError: this process may not connect to the control
// socket (EACCES: the socket's mode and group, security.socket_mode and
// security.socket_group, or a directory on its path, do not let its user
// in). Whether a daemon runs is unknown. errors.Is(err, ErrPermission)
// and errors.Is(err, os.ErrPermission) hold; ErrBrokerNotRunning does
// not. Remedy: run as a member of the socket's group (ask the operator).
type SocketPermissionError struct {
	SocketPath string
	Err        error // the dial error
}

func (e *SocketPermissionError) Error() string {
	return fmt.Sprintf("permission denied on the control socket %s: %v", e.SocketPath, e.Err)
}

// Is makes errors.Is(err, ErrPermission) hold.
func (e *SocketPermissionError) Is(target error) bool { return target == ErrPermission }

// Unwrap returns the dial error (errors.Is(err, os.ErrPermission) holds).
func (e *SocketPermissionError) Unwrap() error { return e.Err }

// BrokerError is an error the daemon replied with.
type BrokerError struct {
	Op      string    // the request, e.g. "create"
	Code    wire.Code // stable code
	Message string    // the daemon's text
}

func (e *BrokerError) Error() string { return e.Message }

// Is matches the sentinel of e's code (ErrTopicNotFound, ErrTopicConflict,
// ErrTopicInUse, ErrPermission, ErrInvalidSpec, ErrInvalidTopicName,
// ErrProtocol, ErrNoSlot, ErrTopicTooLarge).
func (e *BrokerError) Is(target error) bool {
	switch e.Code {
	case wire.CodeNotFound:
		return target == ErrTopicNotFound
	case wire.CodeConflict:
		return target == ErrTopicConflict
	case wire.CodeInUse:
		return target == ErrTopicInUse
	case wire.CodePermission:
		return target == ErrPermission
	case wire.CodeInvalidSpec:
		return target == ErrInvalidSpec
	case wire.CodeInvalidName:
		return target == ErrInvalidTopicName
	case wire.CodeBadFrame, wire.CodeVersion, wire.CodeProtocol, wire.CodeBadRequest:
		return target == ErrProtocol
	case wire.CodeNoSlot:
		return target == ErrNoSlot
	case wire.CodeTooLarge:
		return target == ErrTopicTooLarge
	}
	return false
}

// SizeError is ErrMessageTooLarge.
type SizeError struct {
	Topic           string
	MessageBytes    int // encoded size: header block plus payload
	PayloadBytes    int
	MaxMessageBytes int // the topic's limit
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("message too large: %d bytes (payload %d, headers %d) exceed topic %q's max message size of %d bytes",
		e.MessageBytes, e.PayloadBytes, e.MessageBytes-e.PayloadBytes, e.Topic, e.MaxMessageBytes)
}

// Unwrap makes errors.Is(err, ErrMessageTooLarge) hold.
func (e *SizeError) Unwrap() error { return ErrMessageTooLarge }

// EvictedError is ErrEvicted for one partition of a Subscriber.
type EvictedError struct {
	Topic     string
	Partition int
}

func (e *EvictedError) Error() string {
	return fmt.Sprintf("subscriber on %q partition %d evicted by kaelixd: it held the publishers back without reading "+
		"for daemon.evict_stalled_after; close it and subscribe again", e.Topic, e.Partition)
}

// Unwrap makes errors.Is(err, ErrEvicted) (and ringbuf.ErrEvicted) hold.
func (e *EvictedError) Unwrap() error { return ErrEvicted }

// ErrNotConnected: under policy block, the partition has no subscriber
// able to receive (none attached, or none has finished Subscribe), so a
// message published now would reach nobody and be overwritten unread.
// TryPublish and Loan return it, publishing nothing; like Aeron's
// NOT_CONNECTED it is an expected outcome (a preallocated value, no
// allocation, no syscall). Remedy: start the subscribers first and wait
// for them (Publisher.WaitSubscribers, `kaelixctl pub
// --wait-subscribers N`), or retry later. Publish and PublishBatch do not
// return it: they publish regardless. Drop-oldest and reject topics never
// return it (drop-oldest keeps the newest records for late subscribers).
var ErrNotConnected = errors.New("kaelix: no subscriber on the partition; nothing published")

// BlockedError is Publish's error when its ctx ended while the partition
// was back-pressured (policy block): it names who held it back.
// errors.Is(err, ErrBackPressured) holds, and so does errors.Is with the
// ctx's error (Err, e.g. context.DeadlineExceeded or context.Canceled).
type BlockedError struct {
	Topic     string
	Partition int
	// Found: a subscriber (or queue group) was found holding the
	// partition back, described by Slowest. False if it left meanwhile.
	Found   bool
	Slowest SlowestSubscriber
	Err     error // ctx's cause
}

// SlowestSubscriber is the consumer at the lowest position in a
// partition, as BlockedError reports it.
type SlowestSubscriber struct {
	Slot  int // its ring slot (-1: a queue group with no member left)
	Group int // queue-group slot, -1 for a broadcast subscriber
	PID   int // owner pid as its slot says (0 if unknown)
	// Comm is the process name (/proc/PID/comm), "" if it is gone or
	// unreadable; State is "running" (running or sleeping: it could
	// read), "stopped" (SIGSTOP or a debugger: /proc state T or t),
	// "zombie", "gone" (no such process) or "unknown".
	Comm, State string
	// LagRecords and LagBytes are how far the partition's tail is past it.
	LagRecords, LagBytes uint64
	// Joining: its slot is reserved or being joined; it has not started
	// reading yet.
	Joining bool
}

func (e *BlockedError) Error() string { return e.Reason() + ": " + fmt.Sprint(e.Err) }

// Reason is Error without ctx's cause: which partition, held back by whom.
func (e *BlockedError) Reason() string {
	if !e.Found {
		return fmt.Sprintf("kaelix: publish to %q partition %d: back-pressured", e.Topic, e.Partition)
	}
	s := e.Slowest
	who := fmt.Sprintf("subscriber pid %d", s.PID)
	if s.Comm != "" {
		who += " (" + s.Comm + ")"
	}
	if s.Group >= 0 {
		who = "queue group member " + who
	}
	if s.Slot < 0 {
		return fmt.Sprintf("kaelix: publish to %q partition %d: back-pressured by queue group slot %d, which has no member left, %d records (%d bytes) behind",
			e.Topic, e.Partition, s.Group, s.LagRecords, s.LagBytes)
	}
	state := s.State
	if s.Joining {
		state += ", still joining"
	}
	return fmt.Sprintf("kaelix: publish to %q partition %d: back-pressured by %s, %s, %d records (%d bytes) behind",
		e.Topic, e.Partition, who, state, s.LagRecords, s.LagBytes)
}

// Is makes errors.Is(err, ErrBackPressured) hold.
func (e *BlockedError) Is(target error) bool { return target == ErrBackPressured }

// Unwrap returns ctx's cause.
func (e *BlockedError) Unwrap() error { return e.Err }

// WaitSubscribersError is WaitSubscribers' error when its ctx ended
// before enough subscribers came: the partitions it waited on and the
// subscribers each had then. errors.Is with ctx's error holds.
type WaitSubscribersError struct {
	Topic      string
	Want       int
	Partitions []int
	Have       []int // subscribers able to receive, per entry of Partitions
	Err        error
}

func (e *WaitSubscribersError) Error() string {
	return fmt.Sprintf("kaelix: topic %q: waited for %d subscriber(s) on partitions %v, have %v: %v", e.Topic, e.Want, e.Partitions, e.Have, e.Err)
}

// Unwrap returns ctx's cause.
func (e *WaitSubscribersError) Unwrap() error { return e.Err }

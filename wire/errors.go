package wire

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

var (
	// ErrShortFrame: the buffer does not hold a whole frame yet. Expected
	// while reading a stream: read more bytes and decode again.
	ErrShortFrame = errors.New("wire: incomplete frame")

	// ErrBadFrame: a frame header is invalid (magic, version, reserved
	// field, body length or descriptor count). Returned as a *FrameError.
	// The stream cannot be resynchronized: close the connection.
	ErrBadFrame = errors.New("wire: bad frame")

	// ErrBadBody: a frame's body is not the JSON its type calls for. The
	// request is refused with CodeBadRequest; the connection stays usable.
	ErrBadBody = errors.New("wire: bad body")

	// ErrDescriptors: a frame's descriptors did not arrive (fewer arrived
	// than the header announced), or a descriptor came with a frame that
	// must carry none: close the connection. A frame whose descriptors
	// the kernel dropped (*DescriptorsDroppedError) matches it too, but
	// leaves the connection usable.
	ErrDescriptors = errors.New("wire: descriptor mismatch")
)

// DescriptorsDroppedError: the kernel could not hand this process all the
// descriptors a frame carried (recvmsg set MSG_CTRUNC), almost always
// because the process is at its RLIMIT_NOFILE (EMFILE). The frame itself
// arrived whole and the stream is intact: ReadFrame returns the frame
// (without descriptors: those that did arrive are closed) with this
// error, and the connection stays usable. errors.Is matches
// ErrDescriptors and, when the process is at its limit, unix.EMFILE.
type DescriptorsDroppedError struct {
	Want, Got int // descriptors the frame announced, and that arrived
	Open      int // descriptors this process had open just after (-1: unknown)
	Limit     uint64
}

func (e *DescriptorsDroppedError) Error() string {
	s := fmt.Sprintf("wire: the kernel dropped %d of the %d descriptors a reply carried", e.Want-e.Got, e.Want)
	if e.Open >= 0 && e.Limit > 0 {
		s += fmt.Sprintf(": this process has %d descriptors open, its RLIMIT_NOFILE is %d; raise it (ulimit -n, LimitNOFILE=)", e.Open, e.Limit)
	}
	return s
}

func (e *DescriptorsDroppedError) Is(target error) bool {
	// EMFILE when the frame's descriptors would not fit under the limit.
	return target == ErrDescriptors || target == unix.EMFILE && e.Limit > 0 && e.Open >= 0 && uint64(e.Open+e.Want) > e.Limit
}

// FrameError describes an invalid frame header.
type FrameError struct {
	Field   string // "magic", "version", "reserved", "body length", "descriptor count"
	Value   uint64 // the value found
	Detail  string
	version bool
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("wire: bad frame: %s = %d: %s", e.Field, e.Value, e.Detail)
}

// Unwrap makes errors.Is(err, ErrBadFrame) hold.
func (e *FrameError) Unwrap() error { return ErrBadFrame }

// Code returns the protocol error code a daemon replies with for e.
func (e *FrameError) Code() Code {
	if e.version {
		return CodeVersion
	}
	return CodeBadFrame
}

// Code is a protocol error code: a stable, machine-readable string.
type Code string

// Error codes carried by TypeError replies.
const (
	CodeBadFrame     Code = "bad_frame"     // unparseable frame header; connection closed
	CodeVersion      Code = "version"       // unsupported protocol version; connection closed
	CodeBadRequest   Code = "bad_request"   // unknown type, malformed body, missing hello
	CodeInvalidName  Code = "invalid_name"  // topic name fails ValidateTopicName
	CodeInvalidSpec  Code = "invalid_spec"  // topic parameters out of range
	CodeNotFound     Code = "not_found"     // no such topic (or attachment)
	CodeConflict     Code = "conflict"      // topic exists with other parameters
	CodeInUse        Code = "in_use"        // delete refused: clients attached
	CodePermission   Code = "permission"    // peer credentials do not allow it
	CodeResource     Code = "resource"      // no space, no hugepages, no free slot
	CodeNoSlot       Code = "no_slot"       // attach: every subscriber slot of a partition is held (max_subscribers)
	CodeTooLarge     Code = "too_large"     // create: regions over shm.max_topic_share of free memory or space, or shm.max_topic_bytes (figures in the message); Create.Force overrides
	CodeInternal     Code = "internal"      // daemon-side failure; see its log
	CodeProtocol     Code = "protocol"      // malformed reply (client side)
	CodeShuttingDown Code = "shutting_down" // daemon is stopping
	CodeConfig       Code = "config"        // reload refused: invalid file or a key not changeable live
)

// Error is the body of a TypeError reply, and the error a client returns for
// it. Message is for people; compare Code.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Errorf builds an *Error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

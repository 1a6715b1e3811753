package wire

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// Frame header layout; see the package doc for the diagram. Each offset is
// built from the previous field.
const (
	magicOffset      = 0                    // u16: Magic
	versionOffset    = magicOffset + 2      // u8: Version
	typeOffset       = versionOffset + 1    // u8: Type
	requestIDOffset  = typeOffset + 1       // u32: request id, echoed in the reply
	bodyLengthOffset = requestIDOffset + 4  // u32: body length in bytes
	fdCountOffset    = bodyLengthOffset + 4 // u16: descriptors sent with the frame
	reservedOffset   = fdCountOffset + 2    // u16: zero

	// HeaderBytes is the length of the fixed frame header.
	HeaderBytes = reservedOffset + 2
)

const (
	// Magic opens every frame: "KX" read as a little-endian uint16.
	Magic uint16 = 0x584b
	// Version is the protocol version this package speaks. Version 2:
	// an attach reply carries two descriptors per partition (data region,
	// consumer region), the data one read-only for subscribers. Version 3:
	// then the partition's subscriber slot regions (every slot for a
	// publisher, its reserved slot for a subscriber), and a frame's
	// descriptors may arrive over several messages. Version 4: a
	// partition names its slot regions by a directory and a count
	// (PartitionInfo.Slots, SlotDir) instead of every path, and list and
	// stats answer in pages (Page, TopicList.Next, Stats.Next).
	Version = 4
	// MaxBodyBytes is the largest body accepted (1 MiB). A header declaring
	// more is refused before any body byte is read.
	MaxBodyBytes = 1 << 20
	// MaxPartitions is the most partitions a topic may have.
	MaxPartitions = 64
	// RegionDescriptors is how many descriptors an attach reply carries
	// for each partition before its slot regions: its data region, then
	// its consumer region.
	RegionDescriptors = 2
	// MaxFDs is the most descriptors one frame may carry: an attach reply
	// for every partition of the largest topic, with every slot region.
	// Topics are refused whose publishers would need more.
	MaxFDs = 4096
	// fdsPerMessage is how many descriptors one sendmsg carries (the
	// kernel's SCM_MAX_FD is 253); a frame with more spreads them over
	// several messages, each with at least one of the frame's bytes.
	fdsPerMessage = 250
)

// Type is a frame's message type.
type Type uint8

// Request types. A successful reply has the request's type with ReplyBit set.
const (
	TypeHello        Type = 1
	TypeCreate       Type = 2
	TypeOpenOrCreate Type = 3
	TypeDelete       Type = 4
	TypeList         Type = 5
	TypeInfo         Type = 6
	TypeAttach       Type = 7
	TypeDetach       Type = 8
	TypeStats        Type = 9
	TypeStatus       Type = 10
	TypeConfigShow   Type = 11
	TypeConfigReload Type = 12
	TypeHealth       Type = 13
	// TypeProcessors and TypeProcessorRestart: wire/processors.go.
	TypeProcessors       Type = 14
	TypeProcessorRestart Type = 15
	// TypeError is the reply to a failed request; its body is an Error.
	TypeError Type = 127

	// ReplyBit marks a successful reply: reply type = request type | ReplyBit.
	ReplyBit Type = 0x80
)

var typeNames = map[Type]string{
	TypeHello: "hello", TypeCreate: "create", TypeOpenOrCreate: "open-or-create",
	TypeDelete: "delete", TypeList: "list", TypeInfo: "info", TypeAttach: "attach",
	TypeDetach: "detach", TypeStats: "stats", TypeStatus: "status", TypeConfigShow: "config-show",
	TypeConfigReload: "config-reload", TypeHealth: "health", TypeError: "error",
	TypeProcessors: "processors", TypeProcessorRestart: "processor-restart",
}

// IsRequest reports whether t is a known request type.
func (t Type) IsRequest() bool { return t >= TypeHello && t <= TypeProcessorRestart }

// IsReply reports whether t is the successful reply to a known request.
func (t Type) IsReply() bool { return t&ReplyBit != 0 && (t &^ ReplyBit).IsRequest() }

// Reply returns the reply type of request type t.
func (t Type) Reply() Type { return t | ReplyBit }

func (t Type) String() string {
	if t.IsReply() {
		return typeNames[t&^ReplyBit] + "-reply"
	}
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Header is a decoded frame header.
type Header struct {
	Type       Type
	RequestID  uint32
	BodyLength uint32 // bytes, <= MaxBodyBytes
	FDCount    uint16 // descriptors that travel with the frame, <= MaxFDs
}

// Frame is one protocol message. Body is JSON; it aliases the buffer it was
// decoded from (see Decode).
type Frame struct {
	Type      Type
	RequestID uint32
	FDCount   uint16
	Body      []byte
}

// DecodeHeader checks and decodes the fixed header at the start of b.
// Errors: ErrShortFrame (fewer than HeaderBytes bytes: read more), or a
// *FrameError (errors.Is ErrBadFrame) for a wrong magic, version, reserved
// field, an oversized body or too many descriptors. Never panics.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderBytes {
		return Header{}, ErrShortFrame
	}
	if m := binary.LittleEndian.Uint16(b[magicOffset:]); m != Magic {
		return Header{}, &FrameError{Field: "magic", Value: uint64(m), Detail: fmt.Sprintf("want %#x", Magic)}
	}
	if v := b[versionOffset]; v != Version {
		return Header{}, &FrameError{Field: "version", Value: uint64(v), Detail: fmt.Sprintf("this build speaks version %d", Version), version: true}
	}
	h := Header{
		Type:       Type(b[typeOffset]),
		RequestID:  binary.LittleEndian.Uint32(b[requestIDOffset:]),
		BodyLength: binary.LittleEndian.Uint32(b[bodyLengthOffset:]),
		FDCount:    binary.LittleEndian.Uint16(b[fdCountOffset:]),
	}
	if r := binary.LittleEndian.Uint16(b[reservedOffset:]); r != 0 {
		return Header{}, &FrameError{Field: "reserved", Value: uint64(r), Detail: "must be zero"}
	}
	if h.BodyLength > MaxBodyBytes {
		return Header{}, &FrameError{Field: "body length", Value: uint64(h.BodyLength), Detail: fmt.Sprintf("exceeds the maximum of %d bytes", MaxBodyBytes)}
	}
	if h.FDCount > MaxFDs {
		return Header{}, &FrameError{Field: "descriptor count", Value: uint64(h.FDCount), Detail: fmt.Sprintf("exceeds the maximum of %d", MaxFDs)}
	}
	return h, nil
}

// Decode decodes the first frame in b and returns it with the number of
// bytes it spans. The frame's Body aliases b. Errors: ErrShortFrame (b holds
// a valid header but not the whole body, or not a whole header: read more),
// and the errors of DecodeHeader. Decode checks framing only; the body is
// checked by DecodeBody. Never panics.
func Decode(b []byte) (Frame, int, error) {
	h, err := DecodeHeader(b)
	if err != nil {
		return Frame{}, 0, err
	}
	end := HeaderBytes + int(h.BodyLength)
	if len(b) < end {
		return Frame{}, 0, ErrShortFrame
	}
	return Frame{Type: h.Type, RequestID: h.RequestID, FDCount: h.FDCount, Body: b[HeaderBytes:end:end]}, end, nil
}

// AppendFrame appends f, header and body, to dst. Errors: a *FrameError if
// the body exceeds MaxBodyBytes or FDCount exceeds MaxFDs.
func AppendFrame(dst []byte, f Frame) ([]byte, error) {
	if len(f.Body) > MaxBodyBytes {
		return dst, &FrameError{Field: "body length", Value: uint64(len(f.Body)), Detail: fmt.Sprintf("exceeds the maximum of %d bytes", MaxBodyBytes)}
	}
	if f.FDCount > MaxFDs {
		return dst, &FrameError{Field: "descriptor count", Value: uint64(f.FDCount), Detail: fmt.Sprintf("exceeds the maximum of %d", MaxFDs)}
	}
	var h [HeaderBytes]byte
	binary.LittleEndian.PutUint16(h[magicOffset:], Magic)
	h[versionOffset] = Version
	h[typeOffset] = byte(f.Type)
	binary.LittleEndian.PutUint32(h[requestIDOffset:], f.RequestID)
	binary.LittleEndian.PutUint32(h[bodyLengthOffset:], uint32(len(f.Body)))
	binary.LittleEndian.PutUint16(h[fdCountOffset:], f.FDCount)
	dst = append(dst, h[:]...)
	return append(dst, f.Body...), nil
}

// NewFrame marshals body (nil gives "{}") into a frame of type t.
func NewFrame(t Type, requestID uint32, body any) (Frame, error) {
	b := []byte("{}")
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return Frame{}, fmt.Errorf("wire: encode %s body: %w", t, err)
		}
	}
	if len(b) > MaxBodyBytes {
		return Frame{}, &FrameError{Field: "body length", Value: uint64(len(b)), Detail: fmt.Sprintf("exceeds the maximum of %d bytes", MaxBodyBytes)}
	}
	return Frame{Type: t, RequestID: requestID, Body: b}, nil
}

// DecodeBody unmarshals f's JSON body into v. Unknown fields are ignored
// (see Versioning in the package doc). Errors wrap ErrBadBody.
func DecodeBody(f Frame, v any) error {
	if err := json.Unmarshal(f.Body, v); err != nil {
		return fmt.Errorf("%w: %s body: %w", ErrBadBody, f.Type, err)
	}
	return nil
}

// ReplyError turns a TypeError frame into its *Error, or returns nil for any
// other frame. A malformed error body yields an *Error with CodeProtocol.
func ReplyError(f Frame) *Error {
	if f.Type != TypeError {
		return nil
	}
	var e Error
	if err := DecodeBody(f, &e); err != nil || e.Code == "" {
		return &Error{Code: CodeProtocol, Message: "malformed error reply"}
	}
	return &e
}

package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"

	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/wire"
)

// Record encoding. Each message is one ring record (see ringbuf's record
// header: type, sequence, timestamp). The record type says how to read the
// payload:
//
//	RecordTypePlain (0):   the record payload is the message payload.
//	RecordTypeHeaders (1): a header block (headers, the message key or
//	                       both), then the message payload:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+---------------------------------------------------------------+
//	|         header block length (bytes, this field included)      |
//	+-------------------------------+-------------------------------+
//	|        header count           |   message key length (bytes)  |
//	+-------------------------------+-------------------------------+
//	|     header name length        |     header value length       |  x count
//	+-------------------------------+-------------------------------+
//	|        name bytes ..., value bytes ...                        |  x count
//	+---------------------------------------------------------------+
//	|        message key bytes ...                                  |
//	+---------------------------------------------------------------+
//	|        message payload ...                                    |
//
// Integers are little-endian. Header names and values, and the message
// key, are at most 65535 bytes each. A message with neither headers nor a
// key is a plain record. Records of any other type (written by raw
// ringbuf publishers) are delivered as plain payloads.
const (
	RecordTypePlain   uint16 = 0
	RecordTypeHeaders uint16 = 1

	hdrBlockLenOffset = 0                     // u32
	hdrCountOffset    = hdrBlockLenOffset + 4 // u16
	hdrKeyLenOffset   = hdrCountOffset + 2    // u16, the message key's length
	hdrEntriesOffset  = hdrKeyLenOffset + 2   // first entry
	hdrEntryBytes     = 4                     // u16 name length, u16 value length
)

var errBadHeaderBlock = errors.New("client: malformed header block")

// headerBlockLen is the encoded size of hs and key (0 for neither).
func headerBlockLen(hs map[string]string, key []byte) int {
	if len(hs) == 0 && key == nil {
		return 0
	}
	n := hdrEntriesOffset + len(key)
	for k, v := range hs {
		n += hdrEntryBytes + len(k) + len(v)
	}
	return n
}

// putHeaderBlock encodes hs and key into b, which has
// headerBlockLen(hs, key) bytes.
func putHeaderBlock(b []byte, hs map[string]string, key []byte) error {
	if len(hs) > 0xffff {
		return fmt.Errorf("client: %d headers; at most 65535", len(hs))
	}
	if len(key) > 0xffff {
		return fmt.Errorf("client: message key of %d bytes; at most 65535", len(key))
	}
	binary.LittleEndian.PutUint32(b[hdrBlockLenOffset:], uint32(len(b)))
	binary.LittleEndian.PutUint16(b[hdrCountOffset:], uint16(len(hs)))
	binary.LittleEndian.PutUint16(b[hdrKeyLenOffset:], uint16(len(key)))
	copy(b[len(b)-len(key):], key)
	off := hdrEntriesOffset
	for k, v := range hs {
		if len(k) > 0xffff || len(v) > 0xffff {
			return fmt.Errorf("client: header %.32q: key or value longer than 65535 bytes", k)
		}
		binary.LittleEndian.PutUint16(b[off:], uint16(len(k)))
		binary.LittleEndian.PutUint16(b[off+2:], uint16(len(v)))
		off += hdrEntryBytes
		off += copy(b[off:], k)
		off += copy(b[off:], v)
	}
	return nil
}

// parseHeaderBlock decodes the header block at the start of rec into hs
// (cleared first) and returns the message key (nil for none; a view of
// rec) and the payload after the block. Never panics.
func parseHeaderBlock(rec []byte, hs map[string]string) (key, payload []byte, err error) {
	clear(hs)
	if len(rec) < hdrEntriesOffset {
		return nil, nil, errBadHeaderBlock
	}
	n := binary.LittleEndian.Uint32(rec[hdrBlockLenOffset:])
	if n < hdrEntriesOffset || uint64(n) > uint64(len(rec)) {
		return nil, nil, errBadHeaderBlock
	}
	count := int(binary.LittleEndian.Uint16(rec[hdrCountOffset:]))
	kl := int(binary.LittleEndian.Uint16(rec[hdrKeyLenOffset:]))
	if kl > int(n)-hdrEntriesOffset {
		return nil, nil, errBadHeaderBlock
	}
	block := rec[:int(n)-kl] // the entries; the key follows them
	off := hdrEntriesOffset
	for i := 0; i < count; i++ {
		if off+hdrEntryBytes > len(block) {
			return nil, nil, errBadHeaderBlock
		}
		nl := int(binary.LittleEndian.Uint16(block[off:]))
		vl := int(binary.LittleEndian.Uint16(block[off+2:]))
		off += hdrEntryBytes
		if off+nl+vl > len(block) {
			return nil, nil, errBadHeaderBlock
		}
		hs[string(block[off:off+nl])] = string(block[off+nl : off+nl+vl])
		off += nl + vl
	}
	if off != len(block) {
		return nil, nil, errBadHeaderBlock
	}
	// A block without headers is there for its key, empty or not; with
	// headers, key length 0 means no key.
	if kl > 0 || count == 0 {
		key = rec[int(n)-kl : n : n]
	}
	return key, rec[n:], nil
}

// MessageID identifies a message within a topic: the partition and the
// ring's sequence number of its record (ring-wide, increasing by one per
// record in that partition, starting at 0).
type MessageID struct {
	Partition int
	Sequence  uint64
}

func (id MessageID) String() string { return fmt.Sprintf("%d:%d", id.Partition, id.Sequence) }

// Message is one message of a topic. It is a plain value: copy it freely;
// copies share Payload and Headers.
//
// Publishing: Payload, Headers and Key are encoded into the record; Key,
// if non-nil, also picks the partition by FNV-1a hash; otherwise
// Partition names it (zero value: partition 0). ID, Topic and TimestampNS
// are ignored. A message with a key or headers costs a header block in
// the record (8 bytes, plus the key and each header's name and value and
// 4 bytes); a plain one takes the ring's fast path.
//
// Receiving: every field is set; Key is nil when the publisher gave none
// (an empty key sent with headers reads as nil too), and, like Payload, a
// view of the ring valid until the handler returns. TimestampNS is CLOCK_MONOTONIC
// nanoseconds at publish (comparable across processes on this host), 0 if
// the publisher had PublisherOptions.NoTimestamps; MonotonicNS reads the
// same clock, so MonotonicNS() - TimestampNS is the message's age.
type Message struct {
	ID          MessageID
	Topic       string
	Partition   int
	Key         []byte
	Payload     []byte
	Headers     map[string]string
	TimestampNS int64
}

// MonotonicNS returns CLOCK_MONOTONIC in nanoseconds, the clock of
// Message.TimestampNS (the same on every process of this host). No
// syscall (the vDSO clock), no allocation; safe from any goroutine.
func MonotonicNS() int64 { return ringbuf.MonotonicNS() }

// MessageOption sets an optional field of a new Message.
type MessageOption func(*Message)

// NewMessage returns a message carrying payload (not copied) with opts
// applied.
func NewMessage(payload []byte, opts ...MessageOption) Message {
	m := Message{Payload: payload}
	for _, o := range opts {
		o(&m)
	}
	return m
}

// WithHeader adds one header.
func WithHeader(key, value string) MessageOption {
	return func(m *Message) {
		if m.Headers == nil {
			m.Headers = map[string]string{}
		}
		m.Headers[key] = value
	}
}

// WithHeaders adds every entry of hs (copied).
func WithHeaders(hs map[string]string) MessageOption {
	return func(m *Message) {
		if m.Headers == nil {
			m.Headers = make(map[string]string, len(hs))
		}
		maps.Copy(m.Headers, hs)
	}
}

// WithKey routes the message by key (FNV-1a of key modulo partitions).
func WithKey(key []byte) MessageOption { return func(m *Message) { m.Key = key } }

// WithPartition routes the message to partition p.
func WithPartition(p int) MessageOption { return func(m *Message) { m.Partition = p } }

// Clone returns a deep copy of m (payload, key and headers copied), e.g.
// to keep a message seen in a Poll handler.
func (m Message) Clone() Message {
	c := m
	if m.Payload != nil {
		c.Payload = append([]byte(nil), m.Payload...)
	}
	if m.Key != nil {
		c.Key = append([]byte(nil), m.Key...)
	}
	if m.Headers != nil {
		c.Headers = maps.Clone(m.Headers)
	}
	return c
}

// Batch is an ordered list of messages, for PublishBatch. A Batch is a plain
// slice: copying it shares the messages.
type Batch []Message

// Split cuts b into consecutive batches of at most n messages (n <= 0: one
// batch). The parts share b's backing array.
func (b Batch) Split(n int) []Batch {
	if n <= 0 || len(b) <= n {
		if len(b) == 0 {
			return nil
		}
		return []Batch{b}
	}
	out := make([]Batch, 0, (len(b)+n-1)/n)
	for len(b) > n {
		out = append(out, b[:n:n])
		b = b[n:]
	}
	return append(out, b)
}

// Merge returns a new batch holding b's messages followed by others', in
// order.
func (b Batch) Merge(others ...Batch) Batch {
	n := len(b)
	for _, o := range others {
		n += len(o)
	}
	out := make(Batch, 0, n)
	out = append(out, b...)
	for _, o := range others {
		out = append(out, o...)
	}
	return out
}

// PartitionOf returns the partition a message with key goes to on a topic
// of partitions partitions (> 0): FNV-1a (32-bit) of key modulo
// partitions, as Publisher routes it.
func PartitionOf(key []byte, partitions int) int { return int(fnv1a(key) % uint32(partitions)) }

// fnv1a is the 32-bit FNV-1a hash of key, used to pick partitions.
func fnv1a(key []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range key {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

// groupID maps a queue-group name to the ring's non-zero group id.
func groupID(name string) uint32 { return wire.GroupID(name) }

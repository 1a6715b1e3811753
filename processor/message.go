package processor

import (
	"maps"
	"strconv"
)

// Message is one record on its way through a pipeline's stages. The
// pipeline reuses one Message for every record: a stage must not keep m,
// its payload, its key or its header strings after Process returns (use
// Clone).
//
// Reading costs nothing: Payload aliases the input ring's record (shared
// memory, read-only) and the headers are the subscriber's. A stage that
// changes nothing makes no copy, and the record is published from the
// ring's bytes. SetHeader copies the header set once into a map the
// pipeline reuses (no allocation once warm); SetPayload swaps in a buffer
// the stage owns (not copied: keep it unchanged until the record is
// published, i.e. until Process returns for the last stage).
//
// The zero value is an empty record. A Message is not safe for concurrent
// use.
type Message struct {
	// Topic, Partition and Sequence say where the record was read (zero
	// for a record a stage emitted). TimestampNS is its publish time
	// (CLOCK_MONOTONIC ns; 0 if the publisher left timestamps out).
	Topic       string
	Partition   int
	Sequence    uint64
	TimestampNS int64
	// Key, if a stage sets it, picks the output partition (FNV-1a, as
	// client.WithKey). Kaelix records do not carry the publisher's key
	// (it only chose the partition), so Key is nil on input unless
	// PipelineConfig.KeyHeader names a header to read it from.
	Key []byte

	payload  []byte
	in       map[string]string // headers as read; never written
	own      map[string]string // headers once a stage changed them (reused)
	modified bool              // own holds the headers
	payloadX bool              // SetPayload was called
	arena    []byte            // backing of SetHeaderInt values (reused)
}

// NewMessage returns a message with payload and headers (neither copied;
// headers is never written through: a change copies it), for embedding
// and tests.
func NewMessage(payload []byte, headers map[string]string) *Message {
	return &Message{payload: payload, in: headers}
}

// Reset makes m the record payload/headers (neither copied), keeping the
// storage of its header map and arena, so that a Message reused for every
// record allocates nothing once warm. It clears Key; Topic, Partition,
// Sequence and TimestampNS are the caller's to set. Header strings of the
// previous record (from SetHeaderInt) are overwritten.
func (m *Message) Reset(payload []byte, headers map[string]string) {
	m.Key = nil
	m.payload = payload
	m.in = headers
	m.modified = false
	m.payloadX = false
	m.arena = m.arena[:0]
}

// Payload returns the record's payload: the ring's bytes unless a stage
// replaced them. Read-only (it may be a read-only shared mapping).
func (m *Message) Payload() []byte { return m.payload }

// SetPayload replaces the payload with b (not copied).
func (m *Message) SetPayload(b []byte) {
	m.payload = b
	m.payloadX = true
}

// PayloadChanged reports whether a stage called SetPayload.
func (m *Message) PayloadChanged() bool { return m.payloadX }

// HeadersChanged reports whether a stage set or deleted a header.
func (m *Message) HeadersChanged() bool { return m.modified }

// headers is the current header set (read-only).
func (m *Message) headers() map[string]string {
	if m.modified {
		return m.own
	}
	return m.in
}

// Header returns header key's value and whether it is set.
func (m *Message) Header(key string) (string, bool) {
	v, ok := m.headers()[key]
	return v, ok
}

// Headers returns the header set. Read-only: change headers with
// SetHeader and DelHeader. Valid as the Message is.
func (m *Message) Headers() map[string]string { return m.headers() }

// HeaderCount returns how many headers are set.
func (m *Message) HeaderCount() int { return len(m.headers()) }

// writable switches m to its own header map (copy on first write).
func (m *Message) writable() map[string]string {
	if !m.modified {
		if m.own == nil {
			m.own = make(map[string]string, len(m.in)+4)
		} else {
			clear(m.own)
		}
		maps.Copy(m.own, m.in)
		m.modified = true
	}
	return m.own
}

// SetHeader sets header key to value. Keys and values are at most 65535
// bytes (checked when the record is published).
func (m *Message) SetHeader(key, value string) { m.writable()[key] = value }

// SetHeaderInt sets header key to the decimal text of v without
// allocating: the text lives in m's reused arena, so the value string is
// valid only as the Message is (until the record is published or Reset).
func (m *Message) SetHeaderInt(key string, v int64) {
	start := len(m.arena)
	m.arena = strconv.AppendInt(m.arena, v, 10)
	m.writable()[key] = arenaString(m.arena[start:])
}

// DelHeader removes header key (no-op if unset).
func (m *Message) DelHeader(key string) {
	if _, ok := m.headers()[key]; ok {
		delete(m.writable(), key)
	}
}

// Clone returns a deep copy of m that stays valid (payload, key and
// headers copied).
func (m *Message) Clone() *Message {
	c := &Message{
		Topic: m.Topic, Partition: m.Partition, Sequence: m.Sequence, TimestampNS: m.TimestampNS,
		payload: append([]byte(nil), m.payload...), payloadX: m.payloadX,
	}
	if m.Key != nil {
		c.Key = append([]byte(nil), m.Key...)
	}
	if hs := m.headers(); hs != nil {
		c.in = make(map[string]string, len(hs))
		for k, v := range hs {
			c.in[string(append([]byte(nil), k...))] = string(append([]byte(nil), v...))
		}
	}
	c.modified = false
	return c
}

package bridge

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/kaelix-io/kaelix/wire"
)

// NATS header names a bridged record carries (outbound: set on the NATS
// message; the payload is the message data). See the package doc.
const (
	// HdrRecord is the record's identity, one header of five fields
	// separated by one space: "HOST TOPIC PARTITION SEQUENCE TIMESTAMP_NS"
	// (host whose topic the record was published on, that topic, its
	// partition, its ring sequence in that partition, its
	// CLOCK_MONOTONIC ns on that host, 0 if unset; the numbers decimal).
	// Record.Append writes it, ParseRecord reads it.
	HdrRecord    = "Kaelix-Rec"
	HdrHeaders64 = "Kaelix-Headers-B64" // the record's headers that cannot travel verbatim, encoded (see encodeOddHeaders)
	HdrMsgID     = "Nats-Msg-Id"        // JetStream mode: HOST/TOPIC/PARTITION/SEQUENCE, the dedup key
	// HdrKey is the record's message key (client.Message.Key), standard
	// base64 with padding; absent when it had none (or an empty one).
	HdrKey = "Kaelix-Key"
)

// HdrOrigin is the local header an inbound record carries in the local
// ring (beside the original record's own headers): where it came from,
// "HOST TOPIC PARTITION SEQUENCE TIMESTAMP_NS SUBJECT" (the HdrRecord of
// the NATS message, then the subject it arrived on) or, for a NATS
// message without HdrRecord (a plain NATS publisher), "nats SUBJECT".
// ParseOrigin reads it. Its presence marks a record as bridged in: no
// outbound rule forwards it.
const HdrOrigin = "Kaelix-Origin"

// nonKaelixOrigin is HdrOrigin's first field for a NATS message that
// carried no HdrRecord (published by a plain NATS client).
const nonKaelixOrigin = "nats"

// Record is a record's identity across the hop: the value of HdrRecord.
type Record struct {
	Host        string // the origin host (Config.Host of the bridge that sent it)
	Topic       string // the topic on that host
	Partition   int    // the record's partition there (>= 0)
	Sequence    uint64 // its ring sequence in that partition
	TimestampNS int64  // its CLOCK_MONOTONIC ns on that host (0 if unset)
}

// Append appends r in HdrRecord's form to b and returns the extended
// slice (no allocation if b has room).
func (r Record) Append(b []byte) []byte {
	b = append(b, r.Host...)
	b = append(b, ' ')
	b = append(b, r.Topic...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, r.Sequence, 10)
	b = append(b, ' ')
	return strconv.AppendInt(b, r.TimestampNS, 10)
}

// String is r in HdrRecord's form.
func (r Record) String() string { return string(r.Append(nil)) }

// ErrMalformedRecord is returned (wrapped) by ParseRecord and ParseOrigin
// for a value not in the form they read.
var ErrMalformedRecord = errors.New("malformed " + HdrRecord + " value")

// ParseRecord reads an HdrRecord value: exactly five fields separated by
// one space, a host of letters, digits, '-' and '_', a valid topic name,
// decimal partition (>= 0), sequence and timestamp. Host and Topic are
// substrings of s (no allocation). The error wraps ErrMalformedRecord.
func ParseRecord(s string) (Record, error) {
	var r Record
	var f [5]string
	rest := s
	for i := range f {
		if i == len(f)-1 {
			f[i] = rest
			break
		}
		var ok bool
		if f[i], rest, ok = strings.Cut(rest, " "); !ok {
			return r, fmt.Errorf("%w %q: %d fields, want 5", ErrMalformedRecord, s, i+1)
		}
	}
	if !validHost(f[0]) {
		return r, fmt.Errorf("%w %q: host %q", ErrMalformedRecord, s, f[0])
	}
	if wire.ValidateTopicName(f[1]) != nil {
		return r, fmt.Errorf("%w %q: topic %q", ErrMalformedRecord, s, f[1])
	}
	p, err1 := strconv.Atoi(f[2])
	seq, err2 := strconv.ParseUint(f[3], 10, 64)
	ts, err3 := strconv.ParseInt(f[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || p < 0 || f[2][0] == '+' || f[4][0] == '+' {
		return r, fmt.Errorf("%w %q: partition, sequence or timestamp", ErrMalformedRecord, s)
	}
	r.Host, r.Topic, r.Partition, r.Sequence, r.TimestampNS = f[0], f[1], p, seq, ts
	return r, nil
}

// Origin is an inbound record's HdrOrigin: the identity it had on the
// far side (Kaelix false: it came from a plain NATS publisher, and
// only Subject is set) and the subject it arrived on.
type Origin struct {
	Kaelix bool
	Record
	Subject string
}

// ParseOrigin reads an HdrOrigin value. The error wraps
// ErrMalformedRecord.
func ParseOrigin(s string) (Origin, error) {
	if subj, ok := strings.CutPrefix(s, nonKaelixOrigin+" "); ok && subj != "" && !strings.Contains(subj, " ") {
		return Origin{Subject: subj}, nil
	}
	i := strings.LastIndexByte(s, ' ')
	if i < 0 || i == len(s)-1 {
		return Origin{}, fmt.Errorf("%w %q: no subject", ErrMalformedRecord, s)
	}
	r, err := ParseRecord(s[:i])
	if err != nil {
		return Origin{}, err
	}
	return Origin{Kaelix: true, Record: r, Subject: s[i+1:]}, nil
}

// validHost reports whether h is a valid Config.Host.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		if !validHostByte(h[i]) {
			return false
		}
	}
	return true
}

// verbatim reports whether a record header can travel as a NATS header
// under its own name: a non-empty printable-ASCII name without ':' or
// space that no reserved prefix claims, and a printable-ASCII value.
func verbatim(k, v string) bool {
	if k == "" || hasPrefixFold(k, "kaelix-") || hasPrefixFold(k, "nats-") {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// encodeOddHeaders encodes the headers that cannot travel verbatim as
// base64 (standard, padded) of: for each, u16 key length, u16 value
// length (little-endian), key bytes, value bytes.
func encodeOddHeaders(odd [][2]string) string {
	n := 0
	for _, kv := range odd {
		n += 4 + len(kv[0]) + len(kv[1])
	}
	b := make([]byte, 0, n)
	for _, kv := range odd {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(kv[0])))
		b = binary.LittleEndian.AppendUint16(b, uint16(len(kv[1])))
		b = append(b, kv[0]...)
		b = append(b, kv[1]...)
	}
	return base64.StdEncoding.EncodeToString(b)
}

var errBadHeaders64 = errors.New("malformed " + HdrHeaders64 + " header")

func decodeOddHeaders(s string, into map[string]string) error {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return errBadHeaders64
	}
	for len(b) > 0 {
		if len(b) < 4 {
			return errBadHeaders64
		}
		kl, vl := int(binary.LittleEndian.Uint16(b)), int(binary.LittleEndian.Uint16(b[2:]))
		b = b[4:]
		if len(b) < kl+vl {
			return errBadHeaders64
		}
		into[string(b[:kl])] = string(b[kl : kl+vl])
		b = b[kl+vl:]
	}
	return nil
}

// msgBuilder builds the NATS messages of one outbound rule into reused
// storage: one nats.Msg, one header map, the values' backing array and a
// scratch buffer for HdrRecord and Nats-Msg-Id, so a record without
// headers costs no allocation here. What build returns is valid until
// the next build: the caller hands it to nats.go, which encodes the
// headers and copies the data into its write buffer before PublishMsg
// (and jetstream's PublishMsgAsync, with no retries) returns. Owned by
// the rule's goroutine.
type msgBuilder struct {
	subjects map[int]string // partition -> subject, cached
	template string         // the rule's subject template
	msg      nats.Msg
	vals     []string // backing of the header values of the message being built
	num      []byte   // backing of HdrRecord's and Nats-Msg-Id's values
	key      []byte   // backing of HdrKey's value
	odd      [][2]string
}

func newMsgBuilder(subjectTemplate string) *msgBuilder {
	return &msgBuilder{subjects: map[int]string{}, template: subjectTemplate, msg: nats.Msg{Header: make(nats.Header, 4)}}
}

// value returns a one-element slice holding v, from the reused backing.
func (mb *msgBuilder) value(v string) []string {
	mb.vals = append(mb.vals, v)
	return mb.vals[len(mb.vals)-1 : len(mb.vals) : len(mb.vals)]
}

// build returns the NATS message for a record: data is payload itself
// (not copied: the record aliases the ring, and nats.go copies it before
// the publish returns), headers as the package doc says (HdrKey if key is
// not empty); Nats-Msg-Id if withMsgID. The error is for a header longer
// than 65535 bytes.
func (mb *msgBuilder) build(id Record, key, payload []byte, hs map[string]string, withMsgID bool) (*nats.Msg, error) {
	h := mb.msg.Header
	clear(h)
	mb.vals, mb.num, mb.odd = mb.vals[:0], mb.num[:0], mb.odd[:0]
	for k, v := range hs {
		if len(k) > 0xffff || len(v) > 0xffff {
			return nil, errors.New("header longer than 65535 bytes")
		}
		if verbatim(k, v) {
			h[k] = mb.value(v)
		} else {
			mb.odd = append(mb.odd, [2]string{k, v})
		}
	}
	if len(mb.odd) > 0 {
		h[HdrHeaders64] = mb.value(encodeOddHeaders(mb.odd))
	}
	subject, ok := mb.subjects[id.Partition]
	if !ok {
		subject = subjectFor(mb.template, id.Host, id.Topic, id.Partition)
		mb.subjects[id.Partition] = subject
	}
	// The values are appended to one buffer, each viewed in place once
	// the buffer is complete (the Nats-Msg-Id's capacity is reserved up
	// front, so no append moves the bytes a view was taken of).
	need := 2*(len(id.Host)+len(id.Topic)) + 5*21 + 8
	if cap(mb.num) < need {
		mb.num = make([]byte, 0, 2*need)
	}
	mb.num = id.Append(mb.num)
	rec := len(mb.num)
	h[HdrRecord] = mb.value(transientString(mb.num[:rec]))
	if withMsgID {
		mb.num = append(mb.num, id.Host...)
		mb.num = append(mb.num, '/')
		mb.num = append(mb.num, id.Topic...)
		mb.num = append(mb.num, '/')
		mb.num = strconv.AppendInt(mb.num, int64(id.Partition), 10)
		mb.num = append(mb.num, '/')
		mb.num = strconv.AppendUint(mb.num, id.Sequence, 10)
		h[HdrMsgID] = mb.value(transientString(mb.num[rec:]))
	}
	if len(key) > 0 {
		mb.key = base64.StdEncoding.AppendEncode(mb.key[:0], key)
		h[HdrKey] = mb.value(transientString(mb.key))
	}
	mb.msg.Subject, mb.msg.Data = subject, payload
	return &mb.msg, nil
}

// inDecoder turns the NATS messages of one inbound rule into local
// records' headers, in reused storage: the header map and the buffer
// HdrOrigin's value is written into. What decode returns is valid until
// the next decode (the publisher encodes the headers into the ring
// before it returns). Owned by the rule's goroutine.
type inDecoder struct {
	hs     map[string]string
	origin []byte
	key    []byte
}

// decode reads m: the identity it carries (ok false: no HdrRecord, a
// plain NATS message), the headers of the local record (the original
// record's headers plus HdrOrigin) and its message key (HdrKey; nil for
// none). A NATS header with several values keeps the first. The error is
// for a malformed HdrRecord, HdrHeaders64 or HdrKey.
func (d *inDecoder) decode(m *nats.Msg) (id Record, ok bool, _ map[string]string, key []byte, err error) {
	if d.hs == nil {
		d.hs = make(map[string]string, 8)
	}
	hs := d.hs
	clear(hs)
	for k, vs := range m.Header {
		if len(vs) == 0 || hasPrefixFold(k, "kaelix-") || hasPrefixFold(k, "nats-") {
			continue
		}
		hs[k] = vs[0]
	}
	if s := first(m.Header, HdrHeaders64); s != "" {
		if err := decodeOddHeaders(s, hs); err != nil {
			return id, false, nil, nil, err
		}
	}
	d.origin = d.origin[:0]
	if rec := first(m.Header, HdrRecord); rec != "" {
		if id, err = ParseRecord(rec); err != nil {
			return id, false, nil, nil, err
		}
		// Written from the parsed fields: canonical whatever the sender's
		// decimals looked like.
		d.origin = id.Append(d.origin)
		ok = true
	} else {
		d.origin = append(d.origin, nonKaelixOrigin...)
	}
	d.origin = append(d.origin, ' ')
	d.origin = append(d.origin, m.Subject...)
	hs[HdrOrigin] = transientString(d.origin)
	if s := first(m.Header, HdrKey); s != "" {
		if d.key, err = base64.StdEncoding.AppendDecode(d.key[:0], []byte(s)); err != nil {
			return id, false, nil, nil, fmt.Errorf("%s: %w", HdrKey, err)
		}
		key = d.key
	}
	return id, ok, hs, key, nil
}

// first is h's first value for key, looked up exactly (nats.Header.Get
// would canonicalize nothing either, but an exact map read is clearer).
func first(h nats.Header, key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

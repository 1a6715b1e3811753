package bridge

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// NATS header names a bridged record carries (outbound: set on the NATS
// message; the payload is the message data). See the package doc.
const (
	HdrHost        = "Kaelix-Host"         // host whose topic the record was published on
	HdrTopic       = "Kaelix-Topic"        // that topic
	HdrPartition   = "Kaelix-Partition"    // its partition (decimal)
	HdrSequence    = "Kaelix-Sequence"     // the record's ring sequence in that partition (decimal)
	HdrTimestampNS = "Kaelix-Timestamp-Ns" // the record's CLOCK_MONOTONIC ns on that host (decimal; 0 if unset)
	HdrHeaders64   = "Kaelix-Headers-B64"  // the record's headers that cannot travel verbatim, encoded (see encodeOddHeaders)
	HdrMsgID       = "Nats-Msg-Id"         // JetStream mode: HOST/TOPIC/PARTITION/SEQUENCE, the dedup key
)

// Local header names an inbound record carries in the local ring (beside
// the original record's own headers). Their presence marks a record as
// bridged in: no outbound rule forwards it.
const (
	HdrOrigin            = "Kaelix-Origin"              // origin host (HdrHost of the NATS message; "nats" if it had none)
	HdrOriginTopic       = "Kaelix-Origin-Topic"        // HdrTopic
	HdrOriginPartition   = "Kaelix-Origin-Partition"    // HdrPartition
	HdrOriginSequence    = "Kaelix-Origin-Sequence"     // HdrSequence
	HdrOriginTimestampNS = "Kaelix-Origin-Timestamp-Ns" // HdrTimestampNS
	HdrOriginSubject     = "Kaelix-Origin-Subject"      // the NATS subject it arrived on
)

// nonKaelixOrigin is HdrOrigin's value for a NATS message that carried no
// HdrHost (published by a plain NATS client).
const nonKaelixOrigin = "nats"

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

// identity is a record's identity across the hop.
type identity struct {
	host, topic string
	partition   int
	sequence    uint64
	timestampNS int64
}

// msgBuilder builds the NATS messages of one outbound rule into reused
// storage: one nats.Msg, one header map, the values' backing array and a
// scratch buffer for the decimal numbers, so a record without headers
// costs no allocation here. What build returns is valid until the next
// build: the caller hands it to nats.go, which encodes the headers and
// copies the data into its write buffer before PublishMsg (and
// jetstream's PublishMsgAsync, with no retries) returns. Owned by the
// rule's goroutine.
type msgBuilder struct {
	host, topic []string       // one-element values, fixed
	parts       map[int]string // partition -> decimal, cached
	subjects    map[int]string // partition -> subject, cached
	template    string         // the rule's subject template
	msg         nats.Msg
	vals        []string // backing of the header values of the message being built
	num         []byte   // backing of the decimal sequence, timestamp and Nats-Msg-Id
	odd         [][2]string
}

func newMsgBuilder(host, topic, subjectTemplate string) *msgBuilder {
	return &msgBuilder{
		host: []string{host}, topic: []string{topic}, parts: map[int]string{}, subjects: map[int]string{},
		template: subjectTemplate, msg: nats.Msg{Header: make(nats.Header, 8)},
	}
}

// value returns a one-element slice holding v, from the reused backing.
func (mb *msgBuilder) value(v string) []string {
	mb.vals = append(mb.vals, v)
	return mb.vals[len(mb.vals)-1 : len(mb.vals) : len(mb.vals)]
}

// build returns the NATS message for a record: data is payload itself
// (not copied: the record aliases the ring, and nats.go copies it before
// the publish returns), headers as the package doc says; Nats-Msg-Id if
// withMsgID. The error is for a header longer than 65535 bytes.
func (mb *msgBuilder) build(id identity, payload []byte, hs map[string]string, withMsgID bool) (*nats.Msg, error) {
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
	part, ok := mb.parts[id.partition]
	if !ok {
		part = strconv.Itoa(id.partition)
		mb.parts[id.partition] = part
		mb.subjects[id.partition] = subjectFor(mb.template, id.host, id.topic, id.partition)
	}
	h[HdrHost] = mb.host
	h[HdrTopic] = mb.topic
	h[HdrPartition] = mb.value(part)
	// The numbers are appended to one buffer and viewed in place; if it
	// grows, the views already taken keep the old array alive.
	n := len(mb.num)
	mb.num = strconv.AppendUint(mb.num, id.sequence, 10)
	seq := transientString(mb.num[n:])
	h[HdrSequence] = mb.value(seq)
	n = len(mb.num)
	mb.num = strconv.AppendInt(mb.num, id.timestampNS, 10)
	h[HdrTimestampNS] = mb.value(transientString(mb.num[n:]))
	if withMsgID {
		n = len(mb.num)
		mb.num = append(mb.num, id.host...)
		mb.num = append(mb.num, '/')
		mb.num = append(mb.num, id.topic...)
		mb.num = append(mb.num, '/')
		mb.num = append(mb.num, part...)
		mb.num = append(mb.num, '/')
		mb.num = append(mb.num, seq...)
		h[HdrMsgID] = mb.value(transientString(mb.num[n:]))
	}
	mb.msg.Subject, mb.msg.Data = mb.subjects[id.partition], payload
	return &mb.msg, nil
}

// fromNATS decodes a NATS message into the identity it carries (ok false:
// no Kaelix identity, a plain NATS message) and the headers of the local
// record: the original record's headers plus the HdrOrigin* headers,
// written into hs (cleared first; nil: a new map) and returned.
// A NATS header with several values keeps the first.
func fromNATS(m *nats.Msg, hs map[string]string) (id identity, ok bool, _ map[string]string, err error) {
	if hs == nil {
		hs = make(map[string]string, len(m.Header)+6)
	}
	clear(hs)
	for k, vs := range m.Header {
		if len(vs) == 0 || hasPrefixFold(k, "kaelix-") || hasPrefixFold(k, "nats-") {
			continue
		}
		hs[k] = vs[0]
	}
	if s := first(m.Header, HdrHeaders64); s != "" {
		if err := decodeOddHeaders(s, hs); err != nil {
			return id, false, nil, err
		}
	}
	hs[HdrOriginSubject] = m.Subject
	id.host = first(m.Header, HdrHost)
	if id.host == "" {
		hs[HdrOrigin] = nonKaelixOrigin
		return id, false, hs, nil
	}
	id.topic = first(m.Header, HdrTopic)
	ps, ss, tss := first(m.Header, HdrPartition), first(m.Header, HdrSequence), first(m.Header, HdrTimestampNS)
	p, err1 := strconv.Atoi(ps)
	s, err2 := strconv.ParseUint(ss, 10, 64)
	ts, err3 := strconv.ParseInt(tss, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || p < 0 {
		return id, false, nil, errors.New("malformed Kaelix-Partition, Kaelix-Sequence or Kaelix-Timestamp-Ns header")
	}
	id.partition, id.sequence, id.timestampNS = p, s, ts
	hs[HdrOrigin] = id.host
	hs[HdrOriginTopic] = id.topic
	// The values as received where they are already in canonical form
	// (as this package writes them), else reformatted.
	hs[HdrOriginPartition] = canonical(ps, func() string { return strconv.Itoa(p) })
	hs[HdrOriginSequence] = canonical(ss, func() string { return strconv.FormatUint(s, 10) })
	hs[HdrOriginTimestampNS] = canonical(tss, func() string { return strconv.FormatInt(ts, 10) })
	return id, true, hs, nil
}

// canonical returns s, a decimal that parsed, if it is in canonical form
// (no sign but a leading '-' on a non-zero value, no leading zero), else
// format().
func canonical(s string, format func() string) string {
	d := s
	if len(d) > 1 && d[0] == '-' {
		d = d[1:]
	}
	if d != "" && d[0] != '+' && d[0] != '-' && (d[0] != '0' || s == "0") {
		return s
	}
	return format()
}

// first is h's first value for key, looked up exactly (nats.Header.Get
// would canonicalize nothing either, but an exact map read is clearer).
func first(h nats.Header, key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

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

// msgID is the JetStream dedup key of a record.
func (id identity) msgID() string {
	return id.host + "/" + id.topic + "/" + strconv.Itoa(id.partition) + "/" + strconv.FormatUint(id.sequence, 10)
}

// toNATS builds the NATS message for a record: data is copied (the
// record's payload aliases the ring), headers as the package doc says.
func toNATS(subject string, id identity, payload []byte, hs map[string]string, withMsgID bool) (*nats.Msg, error) {
	h := make(nats.Header, len(hs)+7)
	var odd [][2]string
	for k, v := range hs {
		if len(k) > 0xffff || len(v) > 0xffff {
			return nil, errors.New("header longer than 65535 bytes")
		}
		if verbatim(k, v) {
			h[k] = []string{v}
		} else {
			odd = append(odd, [2]string{k, v})
		}
	}
	if len(odd) > 0 {
		h[HdrHeaders64] = []string{encodeOddHeaders(odd)}
	}
	h[HdrHost] = []string{id.host}
	h[HdrTopic] = []string{id.topic}
	h[HdrPartition] = []string{strconv.Itoa(id.partition)}
	h[HdrSequence] = []string{strconv.FormatUint(id.sequence, 10)}
	h[HdrTimestampNS] = []string{strconv.FormatInt(id.timestampNS, 10)}
	if withMsgID {
		h[HdrMsgID] = []string{id.msgID()}
	}
	return &nats.Msg{Subject: subject, Data: append([]byte(nil), payload...), Header: h}, nil
}

// fromNATS decodes a NATS message into the identity it carries (ok false:
// no Kaelix identity, a plain NATS message) and the headers of the local
// record: the original record's headers plus the HdrOrigin* headers.
// A NATS header with several values keeps the first.
func fromNATS(m *nats.Msg) (id identity, ok bool, hs map[string]string, err error) {
	hs = make(map[string]string, len(m.Header)+6)
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
	p, err1 := strconv.Atoi(first(m.Header, HdrPartition))
	s, err2 := strconv.ParseUint(first(m.Header, HdrSequence), 10, 64)
	ts, err3 := strconv.ParseInt(first(m.Header, HdrTimestampNS), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || p < 0 {
		return id, false, nil, errors.New("malformed Kaelix-Partition, Kaelix-Sequence or Kaelix-Timestamp-Ns header")
	}
	id.partition, id.sequence, id.timestampNS = p, s, ts
	hs[HdrOrigin] = id.host
	hs[HdrOriginTopic] = id.topic
	hs[HdrOriginPartition] = strconv.Itoa(p)
	hs[HdrOriginSequence] = strconv.FormatUint(s, 10)
	hs[HdrOriginTimestampNS] = strconv.FormatInt(ts, 10)
	return id, true, hs, nil
}

// first is h's first value for key, looked up exactly (nats.Header.Get
// would canonicalize nothing either, but an exact map read is clearer).
func first(h nats.Header, key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

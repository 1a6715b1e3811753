package shm

import (
	"encoding/binary"
	"hash/crc32"
	"strconv"
	"time"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is a decoded region header (see layout.go). It is a plain value:
// copy it freely. Sizes are in bytes.
type Header struct {
	Version         uint32 // layout version; LayoutVersion for a valid header
	TotalBytes      uint64 // file size: header block + data area
	DataOffsetBytes uint64 // always DataOffsetBytes (4096)
	DataBytes       uint64 // TotalBytes - DataOffsetBytes
	PageSizeBytes   uint64 // backing page size
	NodeRequested   int32  // NUMA node asked for, -1 = none
	NodeActual      int32  // NUMA node the pages were found on, -1 = unknown
	Flags           Flags
	CreatorPID      int64
	CreatedNS       int64  // unix nanoseconds
	Generation      uint64 // 1 on first create, +1 per CreateOptions.Replace
	// Instance identifies the creator's instance (kaelixd writes its
	// daemon instance id, the one it sends at hello); 0 = none. Set by
	// CreateOptions.Instance.
	Instance uint64
	// Label says what the region holds, up to MaxLabelBytes bytes
	// (kaelixd: the full topic name, which the file name may only
	// abbreviate); "" = none. Set by CreateOptions.Label, checked by
	// AttachOptions.Label.
	Label string
}

// CreatedAt returns CreatedNS as a time.Time.
func (h Header) CreatedAt() time.Time { return time.Unix(0, h.CreatedNS) }

var ne = binary.NativeEndian

// putFields writes every header field except the version word, and the
// checksum, into b (len >= HeaderBytes). The version is published separately
// and last (see publishVersion).
func (h *Header) putFields(b []byte) {
	copy(b[offMagic:offMagic+8], Magic)
	ne.PutUint32(b[offHeaderBytes:], HeaderBytes)
	ne.PutUint64(b[offTotalBytes:], h.TotalBytes)
	ne.PutUint64(b[offDataOffsetBytes:], h.DataOffsetBytes)
	ne.PutUint64(b[offDataBytes:], h.DataBytes)
	ne.PutUint64(b[offPageSizeBytes:], h.PageSizeBytes)
	ne.PutUint32(b[offNodeRequested:], uint32(h.NodeRequested))
	ne.PutUint32(b[offNodeActual:], uint32(h.NodeActual))
	ne.PutUint64(b[offFlags:], uint64(h.Flags))
	ne.PutUint64(b[offCreatorPID:], uint64(h.CreatorPID))
	ne.PutUint64(b[offCreatedNS:], uint64(h.CreatedNS))
	ne.PutUint64(b[offGeneration:], h.Generation)
	ne.PutUint64(b[offInstance:], h.Instance)
	label := b[offLabel : offLabel+MaxLabelBytes]
	n := copy(label, h.Label)
	clear(label[n:])
	ne.PutUint32(b[offLabelBytes:], uint32(n))
	ne.PutUint32(b[offLabelPad:], 0)
	ne.PutUint32(b[offReserved:], 0)
	ne.PutUint32(b[offChecksum:], headerChecksum(b))
}

func headerChecksum(b []byte) uint32 {
	return crc32.Checksum(b[checksumStart:offChecksum], castagnoli)
}

// MarshalBinary encodes h as a complete HeaderBytes-long header block,
// version word included (h.Version, or LayoutVersion if zero). For tools and
// tests; Create writes the header itself, version last.
func (h Header) MarshalBinary() ([]byte, error) {
	b := make([]byte, HeaderBytes)
	h.putFields(b)
	v := h.Version
	if v == 0 {
		v = LayoutVersion
	}
	ne.PutUint32(b[offVersion:], v)
	return b, nil
}

// ValidateHeader decodes and checks a header block. b must hold at least the
// defined fields (368 bytes); bytes past them are ignored. It never panics.
// Checks, in order, each with its own error:
//   - too short: ErrTruncated
//   - magic neither Magic nor all zero: ErrBadMagic
//   - version 0: ErrNotReady (retryable)
//   - magic all zero (with a non-zero version): ErrBadMagic
//   - version != LayoutVersion: *VersionError (ErrIncompatibleVersion)
//   - checksum or field consistency: ErrCorrupt
//
// The returned errors carry no path; callers add it.
func ValidateHeader(b []byte) (Header, error) {
	return validateHeader(b, ne.Uint32(pad(b)[offVersion:]), "")
}

// pad returns b, or a zero buffer when b is too short to index, so that the
// version read in ValidateHeader cannot panic.
func pad(b []byte) []byte {
	if len(b) >= headerUsedBytes {
		return b
	}
	return make([]byte, headerUsedBytes)
}

// validateHeader checks b with version as read by the caller (an atomic load
// for live mappings).
func validateHeader(b []byte, version uint32, path string) (Header, error) {
	var h Header
	if len(b) < headerUsedBytes {
		return h, pathErr(path, ErrTruncated, "header is %d bytes, need %d", len(b), headerUsedBytes)
	}
	magic := string(b[offMagic : offMagic+8])
	zeroMagic := magic == "\x00\x00\x00\x00\x00\x00\x00\x00"
	if magic != Magic && !zeroMagic {
		return h, pathErr(path, ErrBadMagic, "magic %q, want %q", magic, Magic)
	}
	if version == 0 {
		return h, pathErr(path, ErrNotReady, "layout version is 0 (creator has not finished)")
	}
	if zeroMagic {
		return h, pathErr(path, ErrBadMagic, "magic is zero but version is %d", version)
	}
	if version != LayoutVersion {
		return h, &VersionError{Path: path, Got: version, Want: LayoutVersion}
	}
	if got, want := ne.Uint32(b[offChecksum:]), headerChecksum(b); got != want {
		return h, pathErr(path, ErrCorrupt, "header checksum %#08x, computed %#08x", got, want)
	}
	h = Header{
		Version:         version,
		TotalBytes:      ne.Uint64(b[offTotalBytes:]),
		DataOffsetBytes: ne.Uint64(b[offDataOffsetBytes:]),
		DataBytes:       ne.Uint64(b[offDataBytes:]),
		PageSizeBytes:   ne.Uint64(b[offPageSizeBytes:]),
		NodeRequested:   int32(ne.Uint32(b[offNodeRequested:])),
		NodeActual:      int32(ne.Uint32(b[offNodeActual:])),
		Flags:           Flags(ne.Uint64(b[offFlags:])),
		CreatorPID:      int64(ne.Uint64(b[offCreatorPID:])),
		CreatedNS:       int64(ne.Uint64(b[offCreatedNS:])),
		Generation:      ne.Uint64(b[offGeneration:]),
		Instance:        ne.Uint64(b[offInstance:]),
	}
	if msg := labelInconsistency(b); msg != "" {
		return Header{}, pathErr(path, ErrCorrupt, "%s", msg)
	}
	h.Label = string(b[offLabel : offLabel+int(ne.Uint32(b[offLabelBytes:]))])
	if msg := h.inconsistency(ne.Uint32(b[offHeaderBytes:]), ne.Uint32(b[offReserved:])); msg != "" {
		return Header{}, pathErr(path, ErrCorrupt, "%s", msg)
	}
	return h, nil
}

// labelInconsistency returns what is wrong with b's label fields, or "":
// a length over MaxLabelBytes, a non-zero pad word or bytes after the label.
func labelInconsistency(b []byte) string {
	n := ne.Uint32(b[offLabelBytes:])
	if n > MaxLabelBytes {
		return "label length " + itoa(uint64(n)) + " > " + itoa(MaxLabelBytes)
	}
	if ne.Uint32(b[offLabelPad:]) != 0 {
		return "label pad word is not zero"
	}
	for _, c := range b[offLabel+int(n) : offLabel+MaxLabelBytes] {
		if c != 0 {
			return "bytes after the label are not zero"
		}
	}
	return ""
}

// inconsistency returns what is wrong with h's fields, or "".
func (h *Header) inconsistency(headerBytes, reserved uint32) string {
	ps := h.PageSizeBytes
	switch {
	case headerBytes != HeaderBytes:
		return "header size field is " + itoa(uint64(headerBytes))
	case reserved != 0:
		return "reserved word is not zero"
	case h.DataOffsetBytes != DataOffsetBytes:
		return "data offset is " + itoa(h.DataOffsetBytes) + ", want " + itoa(DataOffsetBytes)
	case ps < 4096 || ps&(ps-1) != 0:
		return "page size " + itoa(ps) + " is not a power of two >= 4096"
	case h.TotalBytes <= DataOffsetBytes || h.TotalBytes%ps != 0:
		return "total size " + itoa(h.TotalBytes) + " is not a positive multiple of page size " + itoa(ps)
	case h.DataBytes != h.TotalBytes-DataOffsetBytes:
		return "data size " + itoa(h.DataBytes) + " != total - data offset"
	case h.NodeRequested < -1 || h.NodeActual < -1:
		return "negative NUMA node other than -1"
	case h.Flags&^knownFlags != 0:
		return "unknown flag bits " + itoa(uint64(h.Flags&^knownFlags))
	case h.Generation == 0:
		return "generation is 0"
	}
	return ""
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

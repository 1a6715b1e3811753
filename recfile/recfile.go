// Package recfile is the file format of `kaelixctl record` and `kaelixctl
// replay`: a topic's records with their payload, headers, partition,
// sequence and timestamps, in a versioned, append-only file that a crash
// can leave torn at its end without ever making a record misread.
//
// Layout (all integers little-endian):
//
//	file header, 32 bytes:
//	   0  magic      "KXRECORD" (8 bytes)
//	   8  version    u32 (1)
//	  12  header     u32 bytes of this header (32): a reader skips what it does not know
//	  16  created    i64 unix ns at which the recording started
//	  24  crc        u32 CRC-32C (Castagnoli) of bytes [0,24)
//	  28  reserved   u32 (0)
//	then frames, one per record, back to back:
//	   0  length     u32 bytes of the body (at most MaxBodyBytes)
//	   4  crc        u32 CRC-32C of the body
//	   8  body:
//	        0  sequence       u64 ring sequence of the record in its partition
//	        8  timestamp      i64 publisher's CLOCK_MONOTONIC ns (0: none)
//	       16  received       i64 recorder's CLOCK_MONOTONIC ns when it read the record
//	       24  partition      u32
//	       28  key bytes      u16
//	       30  headers        u16 count
//	       32  payload bytes  u32
//	       36  reserved       u32 (0)
//	       40  key, then per header: u16 key bytes, u16 value bytes, key, value;
//	           then the payload. The body ends exactly there. Header keys
//	           are sorted and distinct, so a record has one encoding.
//
// A frame is written with one write(2); a crash can leave only the last
// one incomplete. The reader treats a frame that runs past the end of the
// file as a torn tail: it is skipped and reported (Reader.Torn), never
// returned. A frame whose checksum or fields do not match is *CorruptError
// (with its offset); nothing after it is trusted. A message's key is
// kept (the client carries it in the record's header block).
//
// Version 1. A reader refuses other versions by number (*VersionError).
package recfile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
)

// Magic starts every record file.
const Magic = "KXRECORD"

// Version is the format version this package writes and reads.
const Version = 1

// File header fields.
const (
	magicOffset    = 0
	versionOffset  = magicOffset + 8
	hdrBytesOffset = versionOffset + 4
	createdOffset  = hdrBytesOffset + 4
	hdrCRCOffset   = createdOffset + 8
	// HeaderBytes is the file header's size in version 1.
	HeaderBytes = hdrCRCOffset + 8
)

// Frame and body fields.
const (
	frameLengthOffset = 0
	frameCRCOffset    = 4
	// FrameHeaderBytes precede each body.
	FrameHeaderBytes = 8

	bodySequenceOffset  = 0
	bodyTimestampOffset = 8
	bodyReceivedOffset  = 16
	bodyPartitionOffset = 24
	bodyKeyLenOffset    = 28
	bodyHeadersOffset   = 30
	bodyPayloadOffset   = 32
	// BodyFixedBytes is the fixed part of a body, before the key.
	BodyFixedBytes = 40

	// MaxBodyBytes bounds one body: a larger length is corruption.
	MaxBodyBytes = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record is one recorded record.
type Record struct {
	Partition int
	Sequence  uint64
	// TimestampNS is the publisher's CLOCK_MONOTONIC ns at publish (0:
	// none); ReceivedNS the recorder's CLOCK_MONOTONIC ns when it read it.
	TimestampNS, ReceivedNS int64
	Key                     []byte
	Headers                 map[string]string
	Payload                 []byte
}

// Errors.
var (
	// ErrBadMagic: the file does not start with Magic.
	ErrBadMagic = errors.New("recfile: not a Kaelix record file (bad magic)")
	// ErrCorrupt is wrapped by every *CorruptError.
	ErrCorrupt = errors.New("recfile: corrupt")
)

// VersionError: the file has another format version.
type VersionError struct{ Got, Want uint32 }

func (e *VersionError) Error() string {
	return fmt.Sprintf("recfile: format version %d, this reader reads %d", e.Got, e.Want)
}

// CorruptError: the frame at Offset (bytes from the file's start) is bad.
type CorruptError struct {
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("recfile: corrupt frame at offset %d: %s", e.Offset, e.Reason)
}

func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// Writer appends records to a file. Not safe for concurrent use.
type Writer struct {
	w    io.Writer
	buf  []byte
	keys []string // header keys of the record being written, reused
	n    int64
}

// NewWriter writes the file header (created: unix ns) to w and returns a
// Writer. Each Write then makes one w.Write call per record, so an
// *os.File gets one write(2) per frame.
func NewWriter(w io.Writer, createdUnixNS int64) (*Writer, error) {
	h := make([]byte, HeaderBytes)
	copy(h[magicOffset:], Magic)
	binary.LittleEndian.PutUint32(h[versionOffset:], Version)
	binary.LittleEndian.PutUint32(h[hdrBytesOffset:], HeaderBytes)
	binary.LittleEndian.PutUint64(h[createdOffset:], uint64(createdUnixNS))
	binary.LittleEndian.PutUint32(h[hdrCRCOffset:], crc32.Checksum(h[:hdrCRCOffset], castagnoli))
	if _, err := w.Write(h); err != nil {
		return nil, err
	}
	return &Writer{w: w, n: HeaderBytes}, nil
}

// Write appends r. Headers are written in key order, so equal records
// make equal frames. Errors: a key, header or body too large for the
// format, or the underlying write error.
func (w *Writer) Write(r Record) error {
	if len(r.Key) > 0xffff || len(r.Headers) > 0xffff {
		return fmt.Errorf("recfile: key of %d bytes or %d headers: at most 65535", len(r.Key), len(r.Headers))
	}
	size := BodyFixedBytes + len(r.Key) + len(r.Payload)
	keys := w.keys[:0]
	for k, v := range r.Headers {
		if len(k) > 0xffff || len(v) > 0xffff {
			return fmt.Errorf("recfile: header %q too long", k)
		}
		keys = append(keys, k)
		size += 4 + len(k) + len(v)
	}
	if size > MaxBodyBytes {
		return fmt.Errorf("recfile: record body of %d bytes, at most %d", size, MaxBodyBytes)
	}
	sort.Strings(keys)
	w.keys = keys
	b := w.buf[:0]
	b = append(b, make([]byte, FrameHeaderBytes+BodyFixedBytes)...)
	body := b[FrameHeaderBytes:]
	binary.LittleEndian.PutUint64(body[bodySequenceOffset:], r.Sequence)
	binary.LittleEndian.PutUint64(body[bodyTimestampOffset:], uint64(r.TimestampNS))
	binary.LittleEndian.PutUint64(body[bodyReceivedOffset:], uint64(r.ReceivedNS))
	binary.LittleEndian.PutUint32(body[bodyPartitionOffset:], uint32(r.Partition))
	binary.LittleEndian.PutUint16(body[bodyKeyLenOffset:], uint16(len(r.Key)))
	binary.LittleEndian.PutUint16(body[bodyHeadersOffset:], uint16(len(keys)))
	binary.LittleEndian.PutUint32(body[bodyPayloadOffset:], uint32(len(r.Payload)))
	b = append(b, r.Key...)
	for _, k := range keys {
		v := r.Headers[k]
		b = binary.LittleEndian.AppendUint16(b, uint16(len(k)))
		b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, k...)
		b = append(b, v...)
	}
	b = append(b, r.Payload...)
	binary.LittleEndian.PutUint32(b[frameLengthOffset:], uint32(len(b)-FrameHeaderBytes))
	binary.LittleEndian.PutUint32(b[frameCRCOffset:], crc32.Checksum(b[FrameHeaderBytes:], castagnoli))
	w.buf = b
	if _, err := w.w.Write(b); err != nil {
		return err
	}
	w.n += int64(len(b))
	return nil
}

// Offset is the bytes written so far, header included.
func (w *Writer) Offset() int64 { return w.n }

// Reader reads a record file. Not safe for concurrent use.
type Reader struct {
	r         *bufio.Reader
	off       int64
	createdNS int64
	torn      int64 // bytes of a torn tail skipped, -1 none
	err       error
	body      []byte
}

// NewReader reads and checks the file header. Errors: ErrBadMagic,
// *VersionError, *CorruptError (header checksum), or the read error
// (io.ErrUnexpectedEOF for a file shorter than the header).
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	h := make([]byte, HeaderBytes)
	if _, err := io.ReadFull(br, h); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if string(h[:min(len(Magic), 8)]) != Magic && !allZero(h) {
			return nil, ErrBadMagic
		}
		return nil, fmt.Errorf("recfile: header: %w", err)
	}
	if string(h[:8]) != Magic {
		return nil, ErrBadMagic
	}
	if v := binary.LittleEndian.Uint32(h[versionOffset:]); v != Version {
		return nil, &VersionError{Got: v, Want: Version}
	}
	if crc32.Checksum(h[:hdrCRCOffset], castagnoli) != binary.LittleEndian.Uint32(h[hdrCRCOffset:]) {
		return nil, &CorruptError{Offset: 0, Reason: "file header checksum mismatch"}
	}
	hb := binary.LittleEndian.Uint32(h[hdrBytesOffset:])
	if hb < HeaderBytes || hb > 1<<20 {
		return nil, &CorruptError{Offset: 0, Reason: fmt.Sprintf("header size %d", hb)}
	}
	if _, err := br.Discard(int(hb - HeaderBytes)); err != nil {
		return nil, fmt.Errorf("recfile: header: %w", io.ErrUnexpectedEOF)
	}
	return &Reader{r: br, off: int64(hb), createdNS: int64(binary.LittleEndian.Uint64(h[createdOffset:])), torn: -1}, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// CreatedNS is the recording's start, unix ns.
func (r *Reader) CreatedNS() int64 { return r.createdNS }

// Torn reports the bytes of an incomplete last frame that Next skipped
// (a crash while it was written), or -1 if the file ended cleanly. Valid
// once Next returned io.EOF.
func (r *Reader) Torn() int64 { return r.torn }

// Next returns the next record, or io.EOF at the end of the file (also
// after a torn tail: see Torn). The record's Key and Payload are fresh
// slices. Errors: *CorruptError (errors.Is ErrCorrupt), after which Next
// keeps returning it, or a read error.
func (r *Reader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	rec, err := r.next()
	if err != nil {
		r.err = err
	}
	return rec, err
}

func (r *Reader) next() (Record, error) {
	start := r.off
	var fh [FrameHeaderBytes]byte
	n, err := io.ReadFull(r.r, fh[:])
	if err == io.EOF {
		return Record{}, io.EOF
	}
	if err == io.ErrUnexpectedEOF {
		r.torn = int64(n)
		return Record{}, io.EOF
	}
	if err != nil {
		return Record{}, err
	}
	length := binary.LittleEndian.Uint32(fh[frameLengthOffset:])
	if length < BodyFixedBytes || length > MaxBodyBytes {
		if allZero(fh[:]) {
			// A crash can leave a file extended with zeroes past its last
			// complete frame (metadata written before data): a zero frame
			// header is torn tail, if nothing but zeroes follows.
			if rest, ok := r.zeroTail(); ok {
				r.torn = FrameHeaderBytes + rest
				return Record{}, io.EOF
			}
		}
		return Record{}, &CorruptError{Offset: start, Reason: fmt.Sprintf("frame length %d (want %d..%d)", length, BodyFixedBytes, MaxBodyBytes)}
	}
	// Grow the buffer as bytes arrive, not to the length read: a damaged
	// length costs what the file holds, never MaxBodyBytes up front.
	body := r.body[:0]
	for len(body) < int(length) {
		chunk := min(int(length)-len(body), 1<<16)
		if cap(body)-len(body) < chunk {
			body = append(body[:cap(body)], make([]byte, chunk)...)[:len(body)]
		}
		n, err := io.ReadFull(r.r, body[len(body):len(body)+chunk])
		body = body[:len(body)+n]
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			r.body = body
			r.torn = FrameHeaderBytes + int64(len(body))
			return Record{}, io.EOF
		}
		if err != nil {
			return Record{}, err
		}
	}
	r.body = body
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(fh[frameCRCOffset:]) {
		if _, perr := r.r.Peek(1); perr == io.EOF {
			// The last frame, complete in length but not in content: a
			// torn write whose length landed before its bytes.
			r.torn = FrameHeaderBytes + int64(length)
			return Record{}, io.EOF
		}
		return Record{}, &CorruptError{Offset: start, Reason: "checksum mismatch"}
	}
	r.off += FrameHeaderBytes + int64(length)
	rec, reason := decodeBody(body)
	if reason != "" {
		return Record{}, &CorruptError{Offset: start, Reason: reason}
	}
	return rec, nil
}

// zeroTail consumes the rest of the input and reports its length and
// whether it was all zero bytes.
func (r *Reader) zeroTail() (int64, bool) {
	var n int64
	buf := make([]byte, 4096)
	for {
		k, err := r.r.Read(buf)
		if !allZero(buf[:k]) {
			return n, false
		}
		n += int64(k)
		if err != nil {
			return n, err == io.EOF
		}
	}
}

func decodeBody(b []byte) (Record, string) {
	rec := Record{
		Sequence:    binary.LittleEndian.Uint64(b[bodySequenceOffset:]),
		TimestampNS: int64(binary.LittleEndian.Uint64(b[bodyTimestampOffset:])),
		ReceivedNS:  int64(binary.LittleEndian.Uint64(b[bodyReceivedOffset:])),
		Partition:   int(binary.LittleEndian.Uint32(b[bodyPartitionOffset:])),
	}
	if rec.Partition < 0 || rec.Partition > 1<<16 {
		return Record{}, fmt.Sprintf("partition %d", rec.Partition)
	}
	keyLen := int(binary.LittleEndian.Uint16(b[bodyKeyLenOffset:]))
	nh := int(binary.LittleEndian.Uint16(b[bodyHeadersOffset:]))
	payLen := int64(binary.LittleEndian.Uint32(b[bodyPayloadOffset:]))
	off := BodyFixedBytes
	if off+keyLen > len(b) {
		return Record{}, "key runs past the body"
	}
	if keyLen > 0 {
		rec.Key = append([]byte(nil), b[off:off+keyLen]...)
	}
	off += keyLen
	if nh > 0 {
		rec.Headers = make(map[string]string, nh)
	}
	var prev string
	for i := 0; i < nh; i++ {
		if off+4 > len(b) {
			return Record{}, "headers run past the body"
		}
		kl, vl := int(binary.LittleEndian.Uint16(b[off:])), int(binary.LittleEndian.Uint16(b[off+2:]))
		off += 4
		if off+kl+vl > len(b) {
			return Record{}, "headers run past the body"
		}
		k := string(b[off : off+kl])
		if i > 0 && k <= prev {
			return Record{}, fmt.Sprintf("header %q out of order (keys are written sorted, once each)", k)
		}
		prev = k
		rec.Headers[k] = string(b[off+kl : off+kl+vl])
		off += kl + vl
	}
	if int64(off)+payLen != int64(len(b)) {
		return Record{}, fmt.Sprintf("payload of %d bytes does not end the %d-byte body", payLen, len(b))
	}
	rec.Payload = append([]byte{}, b[off:]...)
	return rec, ""
}

package soak

import (
	"encoding/binary"
	"hash/crc32"
)

// Record payload of every soak and crash-test message:
//
//	0  stream id (u32): the publisher incarnation
//	4  sequence within the stream (u64), from 0, gap-free
//	12 CRC-32C of bytes [16, len) (u32)
//	16 publish time, CLOCK_MONOTONIC ns (u64)
//	24 filler derived from stream and sequence; its length is part of the check
const (
	recStreamOffset = 0
	recSeqOffset    = recStreamOffset + 4
	recCRCOffset    = recSeqOffset + 8
	recTimeOffset   = recCRCOffset + 4
	recFillOffset   = recTimeOffset + 8

	// MinRecordBytes is the smallest record; records are MinRecordBytes +
	// fillLen(stream, seq) bytes.
	MinRecordBytes = recFillOffset
	maxFill        = 200
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func fillLen(stream uint32, seq uint64) int {
	return int((seq*2654435761 ^ uint64(stream)) % maxFill)
}

// encodeRecord writes the record for (stream, seq) into buf (at least
// MinRecordBytes+maxFill bytes) and returns its bytes.
func encodeRecord(buf []byte, stream uint32, seq uint64, nowNS int64) []byte {
	n := recFillOffset + fillLen(stream, seq)
	b := buf[:n]
	binary.LittleEndian.PutUint32(b[recStreamOffset:], stream)
	binary.LittleEndian.PutUint64(b[recSeqOffset:], seq)
	binary.LittleEndian.PutUint64(b[recTimeOffset:], uint64(nowNS))
	x := byte(seq) ^ byte(stream)
	for i := recFillOffset; i < n; i++ {
		b[i] = x + byte(i)
	}
	binary.LittleEndian.PutUint32(b[recCRCOffset:], crc32.Checksum(b[recTimeOffset:], castagnoli))
	return b
}

// decodeRecord checks a record and returns its stream, sequence and
// publish time; ok is false for a torn or corrupt record.
func decodeRecord(b []byte) (stream uint32, seq uint64, sentNS int64, ok bool) {
	if len(b) < recFillOffset {
		return 0, 0, 0, false
	}
	stream = binary.LittleEndian.Uint32(b[recStreamOffset:])
	seq = binary.LittleEndian.Uint64(b[recSeqOffset:])
	sentNS = int64(binary.LittleEndian.Uint64(b[recTimeOffset:]))
	if crc32.Checksum(b[recTimeOffset:], castagnoli) != binary.LittleEndian.Uint32(b[recCRCOffset:]) {
		return stream, seq, sentNS, false
	}
	return stream, seq, sentNS, len(b) == recFillOffset+fillLen(stream, seq)
}

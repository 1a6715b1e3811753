package ringbuf

// Fuzz targets for the two decoders of untrusted shared memory: the ring
// header (Attach) and the record stream (Poll/Read over a data area that
// another process may have scribbled on). Seed corpora live in
// testdata/fuzz/<Target>/. Both targets place the ring so that it ends
// exactly at a PROT_NONE guard page: a read past the end faults.

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

const fuzzMappingBytes = 64 << 10

// FuzzAttach feeds arbitrary bytes to Attach as the start of a mapping of
// max(len(data), length) bytes (the rest zero). Attach must never panic,
// read outside the mapping or write to it; whatever it accepts must be a
// ring whose header Create reproduces byte for byte (creator pid and
// creation time aside).
func FuzzAttach(f *testing.F) {
	for _, c := range []Config{edgeConfig(SPSC, PolicyBlock), edgeConfig(MPMC, PolicyDropOldest)} {
		size, _ := sizeIn(c)
		b := guardedMapping(f, size)
		if _, err := createIn(b, c); err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.Clone(b[:headerLength]), uint16(size))
		f.Add(bytes.Clone(b[:headerLength]), uint16(size-8))
	}
	f.Add([]byte{}, uint16(0))
	mapping := guardedMapping(f, fuzzMappingBytes)
	remade := guardedMapping(f, fuzzMappingBytes)
	f.Fuzz(func(t *testing.T, data []byte, length uint16) {
		n := max(len(data), int(length))
		if n > len(mapping) {
			n = len(mapping)
			data = data[:min(len(data), n)]
		}
		// Start 128-aligned, as close to the guard page as alignment allows.
		start := (len(mapping) - n) &^ (linePair - 1)
		clear(mapping[start:])
		b := mapping[start : start+n]
		copy(b, data)
		before := bytes.Clone(b)
		r, err := attachIn(b)
		if !bytes.Equal(b, before) {
			t.Fatal("Attach wrote to the mapping")
		}
		if err != nil {
			if r != nil {
				t.Fatalf("Attach returned a ring and %v", err)
			}
			if !errors.Is(err, ErrNotReady) && !errors.Is(err, ErrIncompatible) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Attach: unexpected error class: %v", err)
			}
			return
		}
		c := Config{
			Kind: r.kind, Policy: r.policy, CapacityBytes: r.capacity, MaxPayloadBytes: r.maxPayload,
			MaxPublishers: r.maxPublishers, MaxSubscribers: r.maxSubscribers, MaxGroups: r.maxGroups,
			UnblockTimeout: r.unblockTimeout,
		}
		size, err := sizeIn(c)
		if err != nil || size > len(b) || len(r.m.b) != size {
			t.Fatalf("attached ring %+v: size %d (%v), mapping %d, ring spans %d", c, size, err, len(b), len(r.m.b))
		}
		if r.dataOffset+uintptr(r.capacity) != uintptr(size) {
			t.Fatalf("data area [%d, +%d) does not end the ring of %d bytes", r.dataOffset, r.capacity, size)
		}
		rb := remade[len(remade)-size:]
		if _, err := createIn(rb, c); err != nil {
			t.Fatalf("createIn(%+v): %v", c, err)
		}
		for _, f := range []struct{ off, n int }{{creatorPIDOffset, 4}, {createdNSOffset, 8}} {
			copy(rb[f.off:f.off+f.n], b[f.off:f.off+f.n])
		}
		if !bytes.Equal(rb[:headerLength], b[:headerLength]) {
			t.Fatalf("header does not round-trip:\nattached %x\nremade   %x", b[:headerLength], rb[:headerLength])
		}
	})
}

// fuzzReaderPayloads are published into every FuzzRecordReader ring before
// the fuzzer's patch is applied. Their records start at positions 0, 48,
// 184, 520, 552, 648, 880, 1216, 1552, 1704, 1744, 2032, 2096, 2432, 2768,
// 3104, 3144, 3240, 3576, then padding at 3912 and records at 4096 (offset
// 0), 4432 and 4664: the data area wraps once.
var fuzzReaderPayloads = []int{10, 100, 300, 0, 57, 200, 300, 300, 120, 8, 250, 31, 300, 300, 299, 1, 64, 300, 300, 300, 200, 150}

// FuzzRecordReader publishes a few records into a valid ring, lets a
// subscriber read some of them, then overwrites arbitrary bytes of the
// data area (at off, wrapping) and optionally the tail pair, and reads on.
// mode picks the ring and reader:
//
//	bit 0    MPMC (else SPSC)
//	bits 1-2 policy: 0 block, 1 and 3 drop-oldest, 2 reject
//	bit 3    queue-group member (MPMC only)
//	bit 4    set the tail pair to (tail, tail/64)
//	bit 5    read with Read and varying buffer sizes (else Poll)
//	bit 6    keep publishing while reading
//	bit 7    subscribe FromOldest after the patch (else read on)
//
// Poll and Read must never panic or fault, must return within a bounded
// time, must deliver payloads of at most MaxPayloadBytes, and must report
// nothing but the documented outcomes.
func FuzzRecordReader(f *testing.F) {
	f.Add(uint8(0), uint16(0), []byte{}, uint64(0))
	mapping := guardedMapping(f, fuzzMappingBytes)
	slotMapping := guardedMapping(f, fuzzMappingBytes) // the consumer and slot areas
	f.Fuzz(func(t *testing.T, mode uint8, off uint16, patch []byte, tail uint64) {
		kind := SPSC
		if mode&1 != 0 {
			kind = MPMC
		}
		pol := [4]Policy{PolicyBlock, PolicyDropOldest, PolicyReject, PolicyDropOldest}[mode>>1&3]
		c := edgeConfig(kind, pol)
		c.UnblockTimeout = time.Nanosecond // exercise stall handling within a few hundred polls
		if kind == MPMC {
			c.MaxPublishers, c.MaxSubscribers, c.MaxGroups = 2, 3, 1
		}
		size, rest, err := testSizes(c)
		if err != nil {
			t.Fatal(err)
		}
		b := mapping[len(mapping)-size:] // the data area ends at the guard page
		r, err := createWith(b, slotMapping[len(slotMapping)-rest:], c)
		if err != nil {
			t.Fatal(err)
		}
		o := SubscriberOptions{Wait: Blocking}
		if mode&8 != 0 && kind == MPMC {
			o.Group = 1
		}
		sub, err := r.NewSubscriber(o)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		pub, err := r.NewPublisher(PublisherOptions{Timestamps: true})
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close()
		for i, n := range fuzzReaderPayloads {
			if err := pub.Offer(edgePayload(uint64(i), n)); err != nil {
				// Back-pressured under block/reject: read some and retry.
				if _, err := sub.Poll(func(Record) {}, 4); err != nil {
					t.Fatal(err)
				}
				if err := pub.Offer(edgePayload(uint64(i), n)); err != nil {
					t.Fatalf("offer %d: %v", i, err)
				}
			}
			if i == 5 {
				if _, err := sub.Poll(func(Record) {}, 3); err != nil {
					t.Fatal(err)
				}
			}
		}

		r.pokeData(uint64(off), patch)
		if mode&16 != 0 {
			if mode&64 != 0 && kind == MPMC || mode&128 != 0 {
				// An MPMC publisher claims, and a new subscriber starts, at
				// whatever the tail says; an unaligned tail makes them
				// write or read past the data area
				// (TestBugUnalignedTailOutOfBounds).
				tail &^= RecordAlignment - 1
			}
			r.setTail(tail, tail/64)
		}
		if mode&128 != 0 {
			if s2, err := r.NewSubscriber(SubscriberOptions{From: FromOldest, Wait: Blocking}); err == nil {
				sub.Close()
				sub = s2
			}
		}

		maxPayload := r.MaxPayloadBytes()
		h := func(rec Record) {
			if len(rec.Payload) > maxPayload {
				t.Fatalf("delivered %d bytes at %d, max payload %d", len(rec.Payload), rec.Position, maxPayload)
			}
		}
		buf := make([]byte, maxPayload)
		calls := 200
		if o.Group != 0 && pol == PolicyDropOldest {
			// A lapped group member spins up to 2^16 times per call while
			// the ring has no intact record (TestBugGroupResyncSpins):
			// keep the input within the fuzzer's hang limit and the race
			// detector's patience (one such call takes ~2 s under -race).
			calls = 3
		}
		for call := 0; call < calls; call++ {
			if mode&64 != 0 && call%40 == 0 {
				_ = pub.Offer(edgePayload(uint64(call), call%(maxPayload+1)))
			}
			start := time.Now()
			var n int
			isRead := false
			switch {
			case call%4 == 3 && calls > 3:
				// PollWait checks for stalled claims each time it parks.
				n, err = sub.PollWait(h, 8, time.Microsecond)
				if err == ErrTimeout {
					err = nil
				}
			case mode&32 != 0:
				isRead = true
				var rec Record
				n, rec, err = sub.Read(buf[:call*37%(maxPayload+1)])
				h(rec)
			default:
				n, err = sub.Poll(h, 8)
			}
			// Bounded work, not a latency target: generous enough for -race
			// on a loaded two-core machine, small enough to catch a livelock.
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("call %d took %v", call, d)
			}
			var ce *CorruptError
			switch {
			case err == nil, errors.Is(err, ErrLapped), errors.Is(err, ErrStalled), errors.Is(err, ErrShortBuffer):
			case errors.As(err, &ce):
				if n != 0 && isRead {
					t.Fatalf("Read delivered %d bytes and %v", n, err)
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%v does not match ErrCorrupt", err)
				}
				if p := sub.Position(); ce.Position != p {
					t.Fatalf("call %d: %v, but the subscriber is at %d", call, err, p)
				}
			default:
				t.Fatalf("call %d: unexpected error %v", call, err)
			}
		}
	})
}

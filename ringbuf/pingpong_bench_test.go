package ringbuf

import (
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"unsafe"
)

// BenchmarkPingPongInterleaved runs four ping-pongs between the same two
// processes in alternating blocks of round trips, so that all of them see
// the same machine state (these VMs switch between fast and slow phases
// lasting seconds, which makes ratios between separate benchmarks
// unreliable):
//
//   - floor: one 8-byte word each way on its own cache-line pair, the raw
//     shared-memory round trip;
//   - record-floor: the least a record ring can do, a 32-byte header and
//     the payload written into a 64 KiB ring and published by one state
//     word store, with no intents, counters, tail, back-pressure or
//     recovery; each side copies the record out and back in;
//   - spsc-poll: two Kaelix SPSC rings; each side reads in place with Poll
//     and the echo side answers from its handler with Offer;
//   - spsc-read: the same with the copying Read, then Offer.
//
// Payloads are 32 bytes (64-byte records). Each block is 2000 round trips;
// a round is one block of each path. It reports each path's median block
// in ns per round trip and, for each path, the median over rounds of the
// per-round ratio to the floor. ns/op is one round.
func BenchmarkPingPongInterleaved(b *testing.B) {
	const block = 2000
	size := 32
	mem, path := sharedMapping(b, mixedSize(size))
	pp := newMixedPingPong(mem, size, true)
	defer pin(0)()
	child := startChild(b, "pingpong-mixed", path, strconv.Itoa(b.N), strconv.Itoa(block), strconv.Itoa(size))
	msg := make([]byte, size)
	buf := make([]byte, 64)
	times := make(map[string][]float64)
	ratios := make(map[string][]float64)
	b.ReportAllocs()
	b.ResetTimer()
	for round := 0; round < b.N; round++ {
		per := make(map[string]float64, len(mixedPaths))
		for _, path := range mixedPaths {
			start := nanotime()
			pp.ping(b, child, path, block, msg, buf)
			per[path] = float64(nanotime()-start) / block
			times[path] = append(times[path], per[path])
		}
		for _, path := range mixedPaths[1:] {
			ratios[path] = append(ratios[path], per[path]/per["floor"])
		}
	}
	b.StopTimer()
	child.wait()
	for _, path := range mixedPaths {
		b.ReportMetric(median(times[path]), path+"-ns/rtt")
	}
	for _, path := range mixedPaths[1:] {
		b.ReportMetric(median(ratios[path]), path+"/floor")
	}
	pp.pub.Close()
	pp.sub.Close()
}

var mixedPaths = []string{"floor", "record-floor", "spsc-poll", "spsc-read"}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// mixedPingPong is one side's view of the three ping-pongs' shared memory:
// the floor's two words, two minimal record rings and two SPSC rings. The
// side that creates it (the benchmark) publishes on the "out" halves.
type mixedPingPong struct {
	pingW, pongW *atomic.Uint64
	count        uint64 // floor round trips so far
	leanOut      []byte
	leanIn       []byte
	leanPos      uint64
	pub          *Publisher
	sub          *Subscriber
}

const leanRing = 64 << 10

func mixedConfig(size int) Config {
	c := DefaultConfig(SPSC)
	c.CapacityBytes = 64 << 10
	c.MaxPayloadBytes = uint32(max(size, 64))
	return c
}

func mixedSize(size int) int {
	rs, _ := sizeIn(mixedConfig(size))
	return 2*linePair + 2*leanRing + 2*rs
}

// newMixedPingPong lays the three ping-pongs out in m (a shared mapping of
// mixedSize bytes), creating the rings if creator, else attaching to them.
func newMixedPingPong(m []byte, size int, creator bool) *mixedPingPong {
	c := mixedConfig(size)
	rs, _ := sizeIn(c)
	pp := &mixedPingPong{}
	pp.pingW = (*atomic.Uint64)(unsafe.Pointer(&m[0]))
	pp.pongW = (*atomic.Uint64)(unsafe.Pointer(&m[linePair]))
	lean := m[2*linePair : 2*linePair+2*leanRing]
	rings := m[2*linePair+2*leanRing:]
	var a, bb *Ring
	var err error
	if creator {
		a, err = createIn(rings[:rs], c)
		if err == nil {
			bb, err = createIn(rings[rs:2*rs], c)
		}
		pp.leanOut, pp.leanIn = lean[:leanRing], lean[leanRing:]
	} else {
		a, err = attachIn(rings[:rs])
		if err == nil {
			bb, err = attachIn(rings[rs : 2*rs])
		}
		pp.leanIn, pp.leanOut = lean[:leanRing], lean[leanRing:]
		a, bb = bb, a
	}
	if err != nil {
		panic(err)
	}
	// a: this side publishes; bb: this side subscribes. The subscriber
	// joins before the other side publishes (both sides create their
	// subscriber before printing "ready"/starting).
	if pp.pub, err = a.NewPublisher(PublisherOptions{}); err != nil {
		panic(err)
	}
	if pp.sub, err = bb.NewSubscriber(SubscriberOptions{}); err != nil {
		panic(err)
	}
	return pp
}

// leanSend and leanRecv are the record-floor protocol: header word
// position|committed at offset 0, length at 8, payload at 32.
func leanSend(ring []byte, pos uint64, msg []byte) {
	off := pos & (leanRing - 1)
	*(*uint32)(unsafe.Pointer(&ring[off+8])) = uint32(len(msg))
	copy(ring[off+RecordHeaderLength:], msg)
	storeRelease64((*atomic.Uint64)(unsafe.Pointer(&ring[off])), pos|stateCommitted)
}

// leanRecv calls check (if not nil) on every spin.
func leanRecv(ring []byte, pos uint64, dst []byte, check func()) int {
	off := pos & (leanRing - 1)
	w := (*atomic.Uint64)(unsafe.Pointer(&ring[off]))
	for w.Load() != pos|stateCommitted {
		if check != nil {
			check()
		}
	}
	n := uint64(*(*uint32)(unsafe.Pointer(&ring[off+8])))
	return copy(dst, ring[off+RecordHeaderLength:off+RecordHeaderLength+n])
}

// ping runs count round trips of path from the benchmark's side; every
// wait checks that the child (the echo side) is still there.
func (pp *mixedPingPong) ping(b *testing.B, child *benchChild, path string, count int, msg, buf []byte) {
	switch path {
	case "floor":
		for i := 0; i < count; i++ {
			pp.count++
			pp.pingW.Store(pp.count)
			for pp.pongW.Load() != pp.count {
				child.check()
			}
		}
	case "record-floor":
		for i := 0; i < count; i++ {
			leanSend(pp.leanOut, pp.leanPos, msg)
			leanRecv(pp.leanIn, pp.leanPos, buf, child.check)
			pp.leanPos += spanOf(uint64(len(msg)))
		}
	case "spsc-poll":
		got := false
		h := func(Record) { got = true }
		for i := 0; i < count; i++ {
			for pp.pub.Offer(msg) != nil {
				child.check()
			}
			for got = false; !got; {
				if k, err := pp.sub.Poll(h, 1); err != nil {
					b.Fatal(err)
				} else if k == 0 {
					child.check()
				}
			}
		}
	case "spsc-read":
		for i := 0; i < count; i++ {
			for pp.pub.Offer(msg) != nil {
				child.check()
			}
			for {
				k, _, err := pp.sub.Read(buf)
				if err != nil {
					b.Fatal(err)
				}
				if k == len(msg) {
					break
				}
				child.check()
			}
		}
	}
}

// echo answers count round trips of path on the child's side.
func (pp *mixedPingPong) echo(path string, count int, buf []byte) {
	switch path {
	case "floor":
		for i := 0; i < count; i++ {
			pp.count++
			for pp.pingW.Load() != pp.count {
			}
			pp.pongW.Store(pp.count)
		}
	case "record-floor":
		for i := 0; i < count; i++ {
			k := leanRecv(pp.leanIn, pp.leanPos, buf, nil)
			leanSend(pp.leanOut, pp.leanPos, buf[:k])
			pp.leanPos += spanOf(uint64(k))
		}
	case "spsc-poll":
		var err error
		h := func(r Record) {
			for err = pp.pub.Offer(r.Payload); err == ErrBackPressured; err = pp.pub.Offer(r.Payload) {
			}
		}
		for i := 0; i < count; {
			k, perr := pp.sub.Poll(h, 1)
			if perr != nil || err != nil {
				panic(fmt.Sprint(perr, err))
			}
			i += k
		}
	case "spsc-read":
		for i := 0; i < count; {
			k, rec, err := pp.sub.Read(buf)
			if err != nil {
				panic(err)
			}
			if k == 0 && rec.Payload == nil {
				continue
			}
			for pp.pub.Offer(buf[:k]) != nil {
			}
			i++
		}
	}
}

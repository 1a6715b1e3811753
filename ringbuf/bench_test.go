package ringbuf

// Benchmarks. Cross-process benchmarks re-exec this test binary as the
// other side (TestBenchChild) and share a /dev/shm mapping with it. Each
// side is pinned to its own CPU when the host has two or more. Baselines
// measured in the same run:
//   - floor: a raw shared-memory ping-pong, one cache line each way, no ring
//   - copy-floor: a minimal fixed-slot SPSC copy loop between two processes
// Report ratios against them, never absolute times alone.

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/kaelix-io/kaelix/numa"
)

const benchChildEnv = "KAELIX_RINGBUF_BENCH_CHILD"

var benchSizes = []int{64, 1024, 4096}

func benchConfig(kind Kind, payload int) Config {
	c := DefaultConfig(kind)
	c.CapacityBytes = 8 << 20
	c.MaxPayloadBytes = uint32(max(payload, 64))
	return c
}

// pin pins the calling goroutine's thread to cpu if the host has it. A
// child process inherits its parent's mask, so runtime.NumCPU (which
// counts that mask) cannot tell: try the CPU itself.
func pin(cpu int) func() {
	restore, err := numa.PinThread(cpu)
	if err != nil {
		return func() {}
	}
	return restore
}

// startChild re-execs the test binary in role, waits for its "ready" line
// and returns a function that waits for its "done" line and exit.
func startChild(b *testing.B, role, path string, args ...string) func() {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), benchChildEnv+"="+role, "KAELIX_BENCH_PATH="+path, "KAELIX_BENCH_ARGS="+fmt.Sprint(args))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	expect := func(want string) {
		for sc.Scan() {
			if sc.Text() == want {
				return
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		b.Fatalf("child %s: no %q line", role, want)
	}
	expect("ready")
	return func() {
		expect("done")
		if err := cmd.Wait(); err != nil {
			b.Fatalf("child %s: %v", role, err)
		}
	}
}

// TestBenchChild is the other process of the cross-process benchmarks. It
// does nothing unless started by startChild.
func TestBenchChild(t *testing.T) {
	role := os.Getenv(benchChildEnv)
	if role == "" {
		t.Skip("benchmark child role; runs only when re-executed by a benchmark")
	}
	defer pin(1)()
	fields := splitFields(os.Getenv("KAELIX_BENCH_ARGS"))
	b, err := mapFile(os.Getenv("KAELIX_BENCH_PATH"), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(fields[0])
	switch role {
	case "floor-echo":
		ping := (*atomic.Uint64)(unsafe.Pointer(&b[0]))
		pong := (*atomic.Uint64)(unsafe.Pointer(&b[linePair]))
		fmt.Println("ready")
		for i := 1; i <= n; i++ {
			for ping.Load() != uint64(i) {
			}
			pong.Store(uint64(i))
		}
	case "pingpong-mixed":
		block, _ := strconv.Atoi(fields[1])
		size, _ := strconv.Atoi(fields[2])
		pp := newMixedPingPong(b, size, false)
		fmt.Println("ready")
		var buf [64]byte
		for round := 0; round < n; round++ {
			for _, path := range mixedPaths {
				pp.echo(path, block, buf[:])
			}
		}
	case "ring-echo":
		size, _ := strconv.Atoi(fields[1])
		in, err := attachIn(b[:size])
		if err != nil {
			t.Fatal(err)
		}
		outRing, err := attachIn(b[size:])
		if err != nil {
			t.Fatal(err)
		}
		sub, _ := in.NewSubscriber(SubscriberOptions{})
		pub, _ := outRing.NewPublisher(PublisherOptions{})
		fmt.Println("ready")
		var buf [64]byte
		for i := 0; i < n; {
			k, rec, err := sub.Read(buf[:])
			if err != nil {
				t.Fatal(err)
			}
			if k == 0 && rec.Payload == nil {
				continue
			}
			for pub.Offer(buf[:k]) != nil {
			}
			i++
		}
	case "ring-sink":
		in, err := attachIn(b)
		if err != nil {
			t.Fatal(err)
		}
		sub, _ := in.NewSubscriber(SubscriberOptions{})
		fmt.Println("ready")
		got := 0
		var sum uint64
		h := func(r Record) { sum += uint64(len(r.Payload)) }
		for got < n {
			k, err := sub.Poll(h, 256)
			if err != nil {
				t.Fatal(err)
			}
			got += k
		}
		_ = sum
	case "copy-floor-sink":
		size, _ := strconv.Atoi(fields[1])
		copyFloorConsume(b, n, size)
	default:
		t.Fatalf("unknown role %q", role)
	}
	fmt.Println("done")
}

func splitFields(s string) []string {
	if len(s) >= 2 && s[0] == '[' {
		s = s[1 : len(s)-1]
	}
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	return out
}

// BenchmarkPingPong measures the round trip between two processes: the raw
// shared-memory floor (one cache line each way) and two SPSC rings (one
// each way, 8-byte records, busy-spin both sides). ns/op is one round trip.
func BenchmarkPingPong(b *testing.B) {
	b.Run("floor", func(b *testing.B) {
		mem, path := sharedMapping(b, 2*linePair)
		ping := (*atomic.Uint64)(unsafe.Pointer(&mem[0]))
		pong := (*atomic.Uint64)(unsafe.Pointer(&mem[linePair]))
		defer pin(0)()
		wait := startChild(b, "floor-echo", path, strconv.Itoa(b.N))
		b.ResetTimer()
		for i := 1; i <= b.N; i++ {
			ping.Store(uint64(i))
			for pong.Load() != uint64(i) {
			}
		}
		b.StopTimer()
		wait()
	})
	b.Run("spsc", func(b *testing.B) {
		c := DefaultConfig(SPSC)
		c.CapacityBytes = 64 << 10
		c.MaxPayloadBytes = 64
		size, _ := sizeIn(c)
		mem, path := sharedMapping(b, 2*size)
		out, _ := createIn(mem[:size], c)
		in, _ := createIn(mem[size:], c)
		pub, _ := out.NewPublisher(PublisherOptions{})
		defer pin(0)()
		wait := startChild(b, "ring-echo", path, strconv.Itoa(b.N), strconv.Itoa(size))
		sub, err := in.NewSubscriber(SubscriberOptions{})
		if err != nil {
			b.Fatal(err)
		}
		var msg, buf [32]byte
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for pub.Offer(msg[:]) != nil {
			}
			for {
				k, _, err := sub.Read(buf[:])
				if err != nil {
					b.Fatal(err)
				}
				if k == len(msg) {
					break
				}
			}
		}
		b.StopTimer()
		wait()
	})
	// The same round trip with this side waiting through PollWait, so
	// that the wait strategies compare with busy-spin while the peer
	// (busy-spinning) has its own core.
	for _, w := range []WaitStrategy{BusySpin, Yield} {
		b.Run("spsc-pollwait/"+w.String(), func(b *testing.B) {
			c := DefaultConfig(SPSC)
			c.CapacityBytes = 64 << 10
			c.MaxPayloadBytes = 64
			size, _ := sizeIn(c)
			mem, path := sharedMapping(b, 2*size)
			out, _ := createIn(mem[:size], c)
			in, _ := createIn(mem[size:], c)
			pub, _ := out.NewPublisher(PublisherOptions{})
			defer pin(0)()
			wait := startChild(b, "ring-echo", path, strconv.Itoa(b.N), strconv.Itoa(size))
			sub, err := in.NewSubscriber(SubscriberOptions{Wait: w})
			if err != nil {
				b.Fatal(err)
			}
			var msg [32]byte
			h := func(Record) {}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for pub.Offer(msg[:]) != nil {
				}
				if _, err := sub.PollWait(h, 1, time.Minute); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			wait()
		})
	}
}

// BenchmarkThroughputCrossProcess streams b.N records from this process to
// a subscriber process that polls in batches of 256, one record per Offer
// or 32 per OfferBatch, beside the copy floor for the same payload size.
func BenchmarkThroughputCrossProcess(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("copy-floor/%dB", size), func(b *testing.B) {
			mem, path := sharedMapping(b, copyFloorBytes(size))
			defer pin(0)()
			wait := startChild(b, "copy-floor-sink", path, strconv.Itoa(b.N), strconv.Itoa(size))
			b.SetBytes(int64(size))
			b.ResetTimer()
			copyFloorProduce(mem, b.N, size)
			wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
		for _, kind := range []Kind{SPSC, MPMC} {
			for _, batch := range []int{1, 32} {
				name := fmt.Sprintf("%v/%dB/batch%d", kind, size, batch)
				b.Run(name, func(b *testing.B) {
					c := benchConfig(kind, size)
					r, _, path := newTestRing(b, c)
					pub, _ := r.NewPublisher(PublisherOptions{})
					defer pin(0)()
					wait := startChild(b, "ring-sink", path, strconv.Itoa(b.N))
					msgs := make([][]byte, batch)
					for i := range msgs {
						msgs[i] = make([]byte, size)
					}
					b.SetBytes(int64(size))
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; i < b.N; {
						if batch == 1 {
							if pub.Offer(msgs[0]) == nil {
								i++
							}
							continue
						}
						k, _ := pub.OfferBatch(msgs[:min(batch, b.N-i)])
						i += k
					}
					wait()
					b.StopTimer()
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
				})
			}
		}
	}
}

// BenchmarkThroughputInProcess is the same stream with the subscriber in
// another goroutine of this process.
func BenchmarkThroughputInProcess(b *testing.B) {
	for _, size := range benchSizes {
		for _, kind := range []Kind{SPSC, MPMC} {
			b.Run(fmt.Sprintf("%v/%dB", kind, size), func(b *testing.B) {
				r, _, _ := newTestRing(b, benchConfig(kind, size))
				pub, _ := r.NewPublisher(PublisherOptions{})
				sub, _ := r.NewSubscriber(SubscriberOptions{})
				done := make(chan struct{})
				n := b.N
				go func() {
					defer close(done)
					defer pin(1)()
					got := 0
					h := func(Record) {}
					for got < n {
						k, _ := sub.Poll(h, 256)
						got += k
					}
				}()
				defer pin(0)()
				msg := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; {
					if pub.Offer(msg) == nil {
						i++
					}
				}
				<-done
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}

// BenchmarkOfferPoll is the single-goroutine cost of one Offer plus one
// Poll, with no contention: the hot path's instruction cost and allocs.
func BenchmarkOfferPoll(b *testing.B) {
	for _, kind := range []Kind{SPSC, MPMC} {
		b.Run(kind.String(), func(b *testing.B) {
			r, _, _ := newTestRing(b, benchConfig(kind, 64))
			pub, _ := r.NewPublisher(PublisherOptions{})
			sub, _ := r.NewSubscriber(SubscriberOptions{})
			msg := make([]byte, 64)
			h := func(Record) {}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := pub.Offer(msg); err != nil {
					b.Fatal(err)
				}
				if k, err := sub.Poll(h, 1); k != 1 || err != nil {
					b.Fatal(k, err)
				}
			}
		})
	}
}

// The copy floor: fixed slots of (8-byte sequence + payload), the producer
// waits on the consumer's position only when the ring is full; the least
// any shared-memory SPSC design must do per record.
const copyFloorSlots = 4096

func copyFloorBytes(size int) int {
	return 2*linePair + copyFloorSlots*(8+((size+7)&^7))
}

func copyFloorProduce(mem []byte, n, size int) {
	slot := 8 + ((size + 7) &^ 7)
	cons := (*atomic.Uint64)(unsafe.Pointer(&mem[linePair]))
	payload := make([]byte, size)
	limit := uint64(0)
	for i := uint64(0); i < uint64(n); i++ {
		if i >= limit {
			for {
				limit = cons.Load() + copyFloorSlots
				if i < limit {
					break
				}
			}
		}
		off := 2*linePair + int(i%copyFloorSlots)*slot
		copy(mem[off+8:off+8+size], payload)
		(*atomic.Uint64)(unsafe.Pointer(&mem[off])).Store(i + 1)
	}
}

func copyFloorConsume(mem []byte, n, size int) {
	slot := 8 + ((size + 7) &^ 7)
	cons := (*atomic.Uint64)(unsafe.Pointer(&mem[linePair]))
	dst := make([]byte, size)
	fmt.Println("ready")
	for i := uint64(0); i < uint64(n); i++ {
		off := 2*linePair + int(i%copyFloorSlots)*slot
		seq := (*atomic.Uint64)(unsafe.Pointer(&mem[off]))
		for seq.Load() != i+1 {
		}
		copy(dst, mem[off+8:off+8+size])
		if i%256 == 255 {
			cons.Store(i + 1)
		}
	}
	cons.Store(uint64(n))
}

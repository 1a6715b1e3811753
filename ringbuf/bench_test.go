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
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// benchChildDeadline bounds a cross-process benchmark's child: past it
// the parent kills the child and fails the benchmark instead of waiting on
// a peer that stopped answering.
const benchChildDeadline = 10 * time.Minute

// benchChild is the parent's handle on a benchmark child. Every loop of the
// parent that waits on the child (a spin on a shared word, a retried Offer,
// the "ready" and "done" lines) checks gone, which a watcher sets when the
// child exits or the deadline passes, and then fails the benchmark with
// the child's error and output rather than spinning forever (a child that
// dies, e.g. with ErrStalled under load, never answers again).
type benchChild struct {
	b     *testing.B
	role  string
	cmd   *exec.Cmd
	gone  atomic.Bool
	lines chan string   // stdout lines, closed at EOF
	exit  chan struct{} // closed once the child has exited and err is set
	err   error         // the child's exit status
	mu    sync.Mutex
	out   []string // the child's stdout other than ready/done, last 40 lines
	late  bool     // the deadline passed and the watcher killed the child
	grace int      // checks let pass after a clean exit
}

// startChild re-execs the test binary in role and waits for its "ready"
// line. The child gets SIGKILL if this process dies, so it never outlives
// the benchmark.
func startChild(b *testing.B, role, path string, args ...string) *benchChild {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), benchChildEnv+"="+role, "KAELIX_BENCH_PATH="+path, "KAELIX_BENCH_ARGS="+fmt.Sprint(args))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &benchChild{b: b, role: role, cmd: cmd, lines: make(chan string, 4), exit: make(chan struct{})}
	go func() { // reads stdout to EOF, then reaps the child
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if line == "ready" || line == "done" {
				c.lines <- line
				continue
			}
			c.mu.Lock()
			c.out = append(c.out, line)
			if len(c.out) > 40 {
				c.out = c.out[1:]
			}
			c.mu.Unlock()
		}
		close(c.lines)
		c.err = cmd.Wait()
		c.gone.Store(true)
		close(c.exit)
	}()
	timer := time.AfterFunc(benchChildDeadline, func() {
		c.mu.Lock()
		c.late = true
		c.mu.Unlock()
		c.gone.Store(true)
		cmd.Process.Kill()
	})
	b.Cleanup(func() {
		timer.Stop()
		cmd.Process.Kill()
		<-c.exit
	})
	c.expect("ready")
	return c
}

// expect waits for the child's next protocol line, which must be want.
func (c *benchChild) expect(want string) {
	c.b.Helper()
	line, ok := <-c.lines
	if !ok || line != want {
		c.fail(fmt.Sprintf("no %q line", want))
	}
}

// wait waits for the child's "done" line and its exit, and fails the
// benchmark if it exited with an error.
func (c *benchChild) wait() {
	c.b.Helper()
	c.expect("done")
	<-c.exit
	if c.err != nil {
		c.fail("exit")
	}
}

// check fails the benchmark if the child is gone (exited or killed at the
// deadline). Waiting loops call it on every retry: one load of a word
// that changes once. A child that exited with status 0 made all its
// writes before it exited, so the caller's next look sees what it waits
// for: that is let pass for a while (the loop may have looked just before
// the last write), and only a wait that goes on fails.
func (c *benchChild) check() {
	if !c.gone.Load() {
		return
	}
	c.b.Helper()
	c.mu.Lock()
	late := c.late
	c.mu.Unlock()
	if !late && c.err == nil && c.grace < 1<<20 { // gone set after err, by the reaper
		c.grace++
		return
	}
	c.fail("gone while the parent was waiting on it")
}

// fail kills the child (if still running), waits for its exit and fails
// the benchmark with its exit status and output.
func (c *benchChild) fail(what string) {
	c.b.Helper()
	c.cmd.Process.Kill()
	<-c.exit
	c.mu.Lock()
	late, out := c.late, strings.Join(c.out, "\n")
	c.mu.Unlock()
	if late {
		what += fmt.Sprintf(" (killed after the %v deadline)", benchChildDeadline)
	}
	c.b.Fatalf("benchmark child %s: %s: %v\n%s", c.role, what, c.err, out)
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
		child := startChild(b, "floor-echo", path, strconv.Itoa(b.N))
		b.ResetTimer()
		for i := 1; i <= b.N; i++ {
			ping.Store(uint64(i))
			for pong.Load() != uint64(i) {
				child.check()
			}
		}
		b.StopTimer()
		child.wait()
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
		child := startChild(b, "ring-echo", path, strconv.Itoa(b.N), strconv.Itoa(size))
		sub, err := in.NewSubscriber(SubscriberOptions{})
		if err != nil {
			b.Fatal(err)
		}
		var msg, buf [32]byte
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for pub.Offer(msg[:]) != nil {
				child.check()
			}
			for {
				k, _, err := sub.Read(buf[:])
				if err != nil {
					b.Fatal(err)
				}
				if k == len(msg) {
					break
				}
				child.check()
			}
		}
		b.StopTimer()
		child.wait()
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
			child := startChild(b, "ring-echo", path, strconv.Itoa(b.N), strconv.Itoa(size))
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
					child.check()
				}
				// Short waits, so that a dead child is noticed within
				// a second.
				for {
					k, err := sub.PollWait(h, 1, time.Second)
					if err != nil && err != ErrTimeout {
						b.Fatal(err)
					}
					if k > 0 {
						break
					}
					child.check()
				}
			}
			b.StopTimer()
			child.wait()
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
			child := startChild(b, "copy-floor-sink", path, strconv.Itoa(b.N), strconv.Itoa(size))
			b.SetBytes(int64(size))
			b.ResetTimer()
			copyFloorProduce(mem, b.N, size, child.check)
			child.wait()
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
					child := startChild(b, "ring-sink", path, strconv.Itoa(b.N))
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
							} else {
								child.check()
							}
							continue
						}
						k, _ := pub.OfferBatch(msgs[:min(batch, b.N-i)])
						if k == 0 {
							child.check()
						}
						i += k
					}
					child.wait()
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

// copyFloorProduce calls check on every retry while the ring is full.
func copyFloorProduce(mem []byte, n, size int, check func()) {
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
				check()
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

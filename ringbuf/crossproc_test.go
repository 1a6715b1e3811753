package ringbuf

// Cross-process tests: publishers and subscribers in separate processes
// (the test binary re-executed, see crossproc_child_test.go) share one
// ring in a /dev/shm file. Every record carries (publisher id, sequence,
// CRC-32C, filler of pseudo-random length), so the checkers count corrupt,
// duplicated, reordered and lost records exactly; the parent asserts on
// the one JSON line each child reports.
//
// Each test runs under a wall-clock budget. Any wait that outlives it
// fails the test with what every child was doing (its last events and
// stderr) and kills the children; the children also exit by themselves
// if their parent dies or the budget passes.
//
// The race detector does not see the other processes (nor the mapping,
// which lies outside the Go heap), and makes the ring ~10x slower, so
// record counts are scaled down in race builds (xpRace) and with -short.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// xpRace reports whether this test binary was built with -race. Read from
// the build info rather than a build-tagged file so the cross-process
// tests stay within their own two files.
var xpRace = func() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" {
				return s.Value == "true"
			}
		}
	}
	return false
}()

// xpScale picks a record count: full normally, reduced under -race or
// -short.
func xpScale(full, reduced uint64) uint64 {
	if xpRace || testing.Short() {
		return reduced
	}
	return full
}

// xpBudget is a test's wall-clock budget, longer for race builds.
func xpBudget(normal time.Duration) time.Duration {
	if xpRace {
		return 3 * normal
	}
	return normal
}

// xpHarness owns a test's ring file and child processes.
type xpHarness struct {
	t        *testing.T
	r        *Ring
	path     string
	deadline time.Time
	mu       sync.Mutex
	children []*xpChild
}

func newXPHarness(t *testing.T, c Config, budget time.Duration) *xpHarness {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	r, _, path := newTestRing(t, c)
	h := &xpHarness{t: t, r: r, path: path, deadline: time.Now().Add(budget)}
	t.Cleanup(h.killAll)
	return h
}

func (h *xpHarness) remaining() time.Duration { return time.Until(h.deadline) }

// fail reports a hang or a child failure with the state of every child,
// then fails the test; cleanup kills the children.
func (h *xpHarness) fail(format string, args ...any) {
	h.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, format, args...)
	fmt.Fprintf(&b, "\nring counters: %+v\n%s", h.r.Counters(), xpDump(h.r))
	h.mu.Lock()
	for _, c := range h.children {
		res := ""
		select {
		case res = <-c.result:
		default:
		}
		fmt.Fprintf(&b, "\n  child %s (pid %d, state %q): events %q; result %.2000s; stderr: %s",
			c.name, c.cmd.Process.Pid, xpProcState(c.cmd.Process.Pid), c.eventLog(), res, c.stderrTail())
	}
	h.mu.Unlock()
	h.t.Fatal(b.String())
}

func (h *xpHarness) killAll() {
	h.mu.Lock()
	cs := append([]*xpChild(nil), h.children...)
	h.mu.Unlock()
	for _, c := range cs {
		c.cmd.Process.Signal(unix.SIGKILL)
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			h.t.Errorf("child %s (pid %d) did not exit after SIGKILL", c.name, c.cmd.Process.Pid)
		}
	}
}

// xpDump describes the ring's tail, slot tables and the record under
// each consumer, for failure messages.
func xpDump(r *Ring) string {
	var b strings.Builder
	pos, seq := r.tail()
	fmt.Fprintf(&b, "tail position %d sequence %d", pos, seq)
	rec := func(p uint64) string {
		base := r.dataOffset + uintptr(p&r.mask)
		st := r.m.u64(base).Load()
		return fmt.Sprintf("word@%d = pos %d state %d (len %d type %d pub %d seq %d)", p, st&^stateMask, st&stateMask,
			r.m.plainU32(base+recLengthOffset), r.m.plainU16(base+recTypeOffset), r.m.plainU16(base+recPublisherOffset), r.m.plainU64(base+recSequenceOffset))
	}
	for i := 0; i < r.maxPublishers; i++ {
		off := r.publisherSlotOffset(i)
		if st := r.m.u32(off + pubStateOffset).Load(); st != slotFree || r.intentOf(i).length != 0 {
			fmt.Fprintf(&b, "\n  pub slot %d: state %d pid %d alive %v intent %+v", i, st, r.m.u32(off+pubPIDOffset).Load(), r.publisherAlive(i), r.intentOf(i))
		}
	}
	for i := 0; i < r.maxSubscribers; i++ {
		off := r.subSlot(i)
		if st := off.u32(subStateOffset).Load(); st != slotFree {
			p := off.u64(subPositionOffset).Load()
			fmt.Fprintf(&b, "\n  sub slot %d: state %d pid %d group %d position %d hold %#x; %s", i, st, off.u32(subPIDOffset).Load(),
				off.u32(subGroupOffset).Load(), p, off.u64(subHoldOffset).Load(), rec(p))
		}
	}
	for i := 0; i < r.maxGroups; i++ {
		off := r.groupSlot(i)
		if st := off.u32(groupStateOffset).Load(); st != slotFree {
			p, q := r.groupCursor(off)
			fmt.Fprintf(&b, "\n  group slot %d: state %#x id %d cursor %d/%d; %s", i, st, off.u32(groupIDOffset).Load(), p, q, rec(p))
		}
	}
	return b.String()
}

// xpChild is one child process.
type xpChild struct {
	h      *xpHarness
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan string
	result chan string
	exited chan struct{} // closed once the child is reaped
	err    error         // from Wait, valid after exited

	mu     sync.Mutex
	log    []string
	stderr bytes.Buffer
}

func (c *xpChild) Write(p []byte) (int, error) { // stderr sink
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stderr.Write(p)
	if c.stderr.Len() > 64<<10 {
		c.stderr.Next(c.stderr.Len() - 32<<10)
	}
	return len(p), nil
}

func (c *xpChild) stderrTail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stderr.String()
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return s
}

func (c *xpChild) eventLog() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.log...)
}

// start runs the test binary as a child playing role with args a.
func (h *xpHarness) start(name, role string, a xpArgs) *xpChild {
	h.t.Helper()
	a.DeadlineNS = h.deadline.Add(10 * time.Second).UnixNano()
	js, err := json.Marshal(a)
	if err != nil {
		h.t.Fatal(err)
	}
	c := &xpChild{
		h: h, name: name,
		events: make(chan string, 256),
		result: make(chan string, 1),
		exited: make(chan struct{}),
	}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	c.cmd.Env = append(os.Environ(), xpRoleEnv+"="+role, xpPathEnv+"="+h.path, xpArgsEnv+"="+string(js))
	c.cmd.Stderr = c
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		h.t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		h.t.Fatalf("start child %s: %v", name, err)
	}
	h.mu.Lock()
	h.children = append(h.children, c)
	h.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		for sc.Scan() {
			line := sc.Text()
			if js, ok := strings.CutPrefix(line, xpResultPrefix); ok {
				c.result <- js
				continue
			}
			c.mu.Lock()
			if len(c.log) < 32 {
				c.log = append(c.log, line)
			}
			c.mu.Unlock()
			select {
			case c.events <- line:
			default:
			}
		}
		io.Copy(io.Discard, stdout)
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	return c
}

// waitEvent waits for an event line starting with prefix and returns it.
func (c *xpChild) waitEvent(prefix string) string {
	c.h.t.Helper()
	timer := time.NewTimer(c.h.remaining())
	defer timer.Stop()
	for {
		select {
		case line := <-c.events:
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case js := <-c.result:
			c.h.fail("child %s reported %s while the parent waited for %q", c.name, js, prefix)
		case <-c.exited:
			c.h.fail("child %s exited (%v) while the parent waited for %q", c.name, c.err, prefix)
		case <-timer.C:
			c.h.fail("HANG: timed out waiting for %q from child %s", prefix, c.name)
		}
	}
}

// waitResult waits for the child's result line, decodes it into v and
// waits for a clean exit.
func (c *xpChild) waitResult(v any) {
	c.h.t.Helper()
	timer := time.NewTimer(c.h.remaining())
	defer timer.Stop()
	var js string
	select {
	case js = <-c.result:
	case <-c.exited:
		select {
		case js = <-c.result:
		default:
			c.h.fail("child %s exited (%v) without a result", c.name, c.err)
		}
	case <-timer.C:
		c.h.fail("HANG: timed out waiting for the result of child %s", c.name)
	}
	var e struct{ Err string }
	if err := json.Unmarshal([]byte(js), &e); err != nil {
		c.h.fail("child %s: bad result %q: %v", c.name, js, err)
	}
	if e.Err != "" {
		c.h.fail("child %s failed: %s", c.name, e.Err)
	}
	if err := json.Unmarshal([]byte(js), v); err != nil {
		c.h.fail("child %s: bad result %q: %v", c.name, js, err)
	}
	select {
	case <-c.exited:
	case <-timer.C:
		c.h.fail("HANG: child %s reported but did not exit", c.name)
	}
	if c.err != nil {
		c.h.fail("child %s exited with %v", c.name, c.err)
	}
}

// send writes a line to the child's stdin.
func (c *xpChild) send(line string) {
	c.h.t.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		c.h.fail("child %s: write %q: %v", c.name, line, err)
	}
}

func (c *xpChild) signal(sig unix.Signal) {
	c.h.t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		c.h.fail("child %s: %v: %v", c.name, sig, err)
	}
}

// kill sends SIGKILL and reaps the child.
func (c *xpChild) kill() {
	c.h.t.Helper()
	c.signal(unix.SIGKILL)
	c.reap()
}

// reap waits until the child has exited and been reaped.
func (c *xpChild) reap() {
	c.h.t.Helper()
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		c.h.fail("child %s survived SIGKILL for 10s", c.name)
	}
}

// waitProcState waits until the child's /proc state is want.
func (c *xpChild) waitProcState(want byte) {
	c.h.t.Helper()
	for xpProcState(c.cmd.Process.Pid) != want {
		if c.h.remaining() <= 0 {
			c.h.fail("HANG: child %s never reached state %q", c.name, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// xpLocalSub is a subscriber in the parent process, polling on its own
// goroutine with the same checker the child subscribers use, so a test
// can watch its progress (and stalls) while it steers the children.
type xpLocalSub struct {
	h       *xpHarness
	s       *Subscriber
	stop    atomic.Bool
	stopped chan struct{}
	pause   atomic.Bool // set by the test: stop polling for now
	paused  atomic.Bool // set by the goroutine: not polling

	mu      sync.Mutex
	ck      *xpChecker
	stalled uint64
	err     error
	firstNS []int64 // MonotonicNS of each publisher's first record
}

func (h *xpHarness) localSub(pubs, minLen, maxLen int, strictRingSeq bool) *xpLocalSub {
	h.t.Helper()
	s, err := h.r.NewSubscriber(SubscriberOptions{Wait: Blocking})
	if err != nil {
		h.t.Fatal(err)
	}
	l := &xpLocalSub{
		h: h, s: s, stopped: make(chan struct{}),
		ck:      newXPChecker(pubs, minLen, maxLen, strictRingSeq, true, nil),
		firstNS: make([]int64, pubs+1),
	}
	handler := func(rec Record) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if p := int(rec.Type); p < len(l.firstNS) && l.firstNS[p] == 0 {
			l.firstNS[p] = MonotonicNS()
		}
		l.ck.check(rec)
	}
	go func() {
		defer close(l.stopped)
		for !l.stop.Load() {
			if l.pause.Load() {
				l.paused.Store(true)
				time.Sleep(time.Millisecond)
				continue
			}
			l.paused.Store(false)
			_, err := s.PollWait(handler, 64, 20*time.Millisecond)
			switch err {
			case nil, ErrTimeout:
			case ErrStalled:
				l.mu.Lock()
				l.stalled++
				l.mu.Unlock()
			default:
				l.mu.Lock()
				l.err = err
				l.mu.Unlock()
				return
			}
		}
	}()
	h.t.Cleanup(l.close)
	return l
}

// snapshot returns the checker's findings and the stall count so far.
func (l *xpLocalSub) snapshot() (xpCheck, uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ck.result(), l.stalled, l.err
}

// waitFor polls until cond holds for the findings so far.
func (l *xpLocalSub) waitFor(what string, cond func(c xpCheck, stalled uint64) bool) {
	l.h.t.Helper()
	for {
		c, stalled, err := l.snapshot()
		if err != nil {
			l.h.fail("local subscriber failed while waiting for %s: %v (check %+v)", what, err, xpBrief(c))
		}
		if cond(c, stalled) {
			return
		}
		if l.h.remaining() <= 0 {
			l.h.fail("HANG: local subscriber never got %s: stalled %d, check %+v", what, stalled, xpBrief(c))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// position is the subscriber's published position, read from its slot.
func (l *xpLocalSub) position() uint64 {
	return l.s.sv.u64(subPositionOffset).Load()
}

// setPaused stops or resumes polling; stopping waits until it took effect.
func (l *xpLocalSub) setPaused(p bool) {
	l.h.t.Helper()
	l.pause.Store(p)
	for p && !l.paused.Load() {
		if l.h.remaining() <= 0 {
			l.h.fail("HANG: local subscriber did not pause")
		}
		time.Sleep(time.Millisecond)
	}
}

// close stops the polling goroutine and closes the subscriber.
func (l *xpLocalSub) close() {
	if l.stop.Swap(true) {
		return
	}
	<-l.stopped
	l.s.Close()
}

// xpBrief is a check without its bitmaps, for messages.
func xpBrief(c xpCheck) xpCheck {
	c.Bitmaps = nil
	return c
}

// xpAssertClean fails unless a check found no corrupt, duplicated or
// reordered record, and (if noGaps) no lost one.
func xpAssertClean(t *testing.T, who string, c xpCheck, noGaps bool) {
	t.Helper()
	if c.Corrupt != 0 || c.Dup != 0 || c.Reorder != 0 || c.RingSeqErr != 0 || (noGaps && c.Gaps != 0) {
		t.Errorf("%s: corrupt %d, duplicate %d, reordered %d, ring-sequence errors %d, gaps %d; first anomalies: %q",
			who, c.Corrupt, c.Dup, c.Reorder, c.RingSeqErr, c.Gaps, c.Anomalies)
	}
}

// xpPublishLocal publishes records [from, to) of publisher pub from the
// parent with OfferTimeout.
func xpPublishLocal(h *xpHarness, p *Publisher, pub int, from, to uint64, minLen, maxLen int) {
	h.t.Helper()
	buf := make([]byte, maxLen)
	for seq := from; seq < to; seq++ {
		b := buf[:xpLen(pub, seq, minLen, maxLen)]
		xpFill(b, pub, seq)
		if err := p.OfferTimeout(b, h.remaining()); err != nil {
			h.fail("parent publisher: seq %d: %v", seq, err)
		}
	}
}

// TestCrossProcSPSC: one publisher process, one subscriber process,
// 10M records of 0..200 bytes (OfferBatch, TryClaim/Commit and
// OfferTimeout in turns), PolicyBlock: every record arrives once, in
// order, intact.
func TestCrossProcSPSC(t *testing.T) {
	n := xpScale(10_000_000, 1_000_000)
	c := DefaultConfig(SPSC)
	c.CapacityBytes = 256 << 10
	h := newXPHarness(t, c, xpBudget(3*time.Minute))
	start := time.Now()
	sub := h.start("sub", "sub", xpArgs{Pubs: 1, MaxLen: 200, StrictRingSeq: true, Wait: "backoff", Expect: n})
	sub.waitEvent("ready")
	pub := h.start("pub", "pub", xpArgs{Pub: 1, Count: n, MaxLen: 200, Mode: "mixed", BatchMax: 64})
	var pr xpPubResult
	pub.waitResult(&pr)
	var sr xpSubResult
	sub.waitResult(&sr)
	el := time.Since(start)
	t.Logf("%d records in %v (%.1f M records/s); publisher: %d batches, %d claims, %d offers; back-pressure %d",
		n, el, float64(n)/el.Seconds()/1e6, pr.Batches, pr.Claims, pr.Offers, sr.Counters.BackPressure)
	if pr.Published != n || pr.Batches == 0 || pr.Claims == 0 || pr.Offers == 0 {
		t.Errorf("publisher: %+v", pr)
	}
	xpAssertClean(t, "subscriber", sr.Check, true)
	if sr.Check.Received != n || sr.Check.Next[1] != n || sr.Lost != 0 {
		t.Errorf("subscriber received %d records (next seq %d, lost %d), want %d", sr.Check.Received, sr.Check.Next[1], sr.Lost, n)
	}
	if got := h.r.Counters(); got.Published != n || got.Unblocked != 0 {
		t.Errorf("ring counters: %+v", got)
	}
}

// TestCrossProcMPMCBroadcast: 2 publisher processes x 3 subscriber
// processes, PolicyBlock: each subscriber gets every record once, in
// per-publisher order, and all see the same global order.
func TestCrossProcMPMCBroadcast(t *testing.T) {
	const pubs, subs = 2, 3
	n := xpScale(500_000, 100_000) // per publisher
	c := DefaultConfig(MPMC)
	c.CapacityBytes = 256 << 10
	h := newXPHarness(t, c, xpBudget(3*time.Minute))
	start := time.Now()
	var subc [subs]*xpChild
	for i := range subc {
		subc[i] = h.start(fmt.Sprintf("sub%d", i), "sub", xpArgs{Pubs: pubs, MaxLen: 200, StrictRingSeq: true, Wait: "backoff", Expect: pubs * n})
		subc[i].waitEvent("ready")
	}
	var pubc [pubs]*xpChild
	for i := range pubc {
		pubc[i] = h.start(fmt.Sprintf("pub%d", i+1), "pub", xpArgs{Pub: i + 1, Count: n, MaxLen: 200, Mode: "mixed", BatchMax: 32})
	}
	for i, p := range pubc {
		var pr xpPubResult
		p.waitResult(&pr)
		if pr.Published != n {
			t.Errorf("pub%d published %d, want %d", i+1, pr.Published, n)
		}
	}
	var hashes [subs]uint64
	for i, s := range subc {
		var sr xpSubResult
		s.waitResult(&sr)
		who := fmt.Sprintf("sub%d", i)
		xpAssertClean(t, who, sr.Check, true)
		for p := 1; p <= pubs; p++ {
			if sr.Check.PerPub[p] != n || sr.Check.Next[p] != n {
				t.Errorf("%s: %d records of pub%d (next seq %d), want %d", who, sr.Check.PerPub[p], p, sr.Check.Next[p], n)
			}
		}
		hashes[i] = sr.Check.OrderHash
	}
	t.Logf("%d records x %d subscribers in %v; order hashes %x", pubs*n, subs, time.Since(start), hashes)
	if hashes[0] != hashes[1] || hashes[0] != hashes[2] {
		t.Errorf("subscribers saw different global orders: hashes %x", hashes)
	}
}

// TestCrossProcQueueGroup: 3 member processes of queue group 7 fed by 2
// publisher processes, PolicyBlock: the union of what the members got is
// every record exactly once.
//
// Payloads are at least 16 bytes: a member sees a subset of each
// publisher's sequence, so it cannot attribute a shorter payload.
// By default the ring is large enough never to wrap. With wrapping, a
// member reads a record header after another member has taken the record
// and publishers have reused its space, and reports ErrCorrupt (a bug in
// nextGroup, see the wrapping subtest).
func TestCrossProcQueueGroup(t *testing.T) {
	t.Run("no-wrap", func(t *testing.T) {
		n := xpScale(250_000, 100_000) // per publisher
		xpQueueGroup(t, n, 1<<bits.Len64(2*n*spanOf(200)))
	})
	t.Run("wrapping", func(t *testing.T) {
		xpQueueGroup(t, xpScale(500_000, 100_000), 256<<10)
	})
}

func xpQueueGroup(t *testing.T, n, capacity uint64) {
	const pubs, members = 2, 3
	c := DefaultConfig(MPMC)
	c.CapacityBytes = capacity
	h := newXPHarness(t, c, xpBudget(3*time.Minute))
	start := time.Now()
	var mc [members]*xpChild
	for i := range mc {
		mc[i] = h.start(fmt.Sprintf("member%d", i), "sub", xpArgs{Pubs: pubs, MinLen: xpHeaderLen, MaxLen: 200, Group: 7, Wait: "backoff", Bitmaps: true})
		mc[i].waitEvent("ready")
	}
	var pubc [pubs]*xpChild
	for i := range pubc {
		pubc[i] = h.start(fmt.Sprintf("pub%d", i+1), "pub", xpArgs{Pub: i + 1, Count: n, MinLen: xpHeaderLen, MaxLen: 200, Mode: "mixed", BatchMax: 32})
	}
	for _, p := range pubc {
		var pr xpPubResult
		p.waitResult(&pr)
		if pr.Published != n {
			t.Errorf("%s published %d, want %d", p.name, pr.Published, n)
		}
	}
	for _, m := range mc {
		m.send("done")
	}
	var got [members]xpSubResult
	var total uint64
	for i, m := range mc {
		m.waitResult(&got[i])
		// A member sees a subset: gaps are expected, anything else is not.
		xpAssertClean(t, m.name, got[i].Check, false)
		total += got[i].Check.Received
	}
	share := [members]uint64{}
	for i := range got {
		share[i] = got[i].Check.Received
	}
	t.Logf("%d records shared by %d members %v in %v", total, members, share, time.Since(start))
	if total != pubs*n {
		t.Errorf("members received %d records in all, want %d", total, pubs*n)
	}
	for p := 1; p <= pubs; p++ {
		missing, dup := 0, 0
		for seq := uint64(0); seq < n; seq++ {
			k := 0
			for i := range got {
				if bm := got[i].Check.Bitmaps[p]; seq/8 < uint64(len(bm)) && bm[seq/8]&(1<<(seq%8)) != 0 {
					k++
				}
			}
			switch {
			case k == 0:
				missing++
			case k > 1:
				dup++
			}
		}
		if missing != 0 || dup != 0 {
			t.Errorf("pub%d: %d records delivered to no member, %d to more than one", p, missing, dup)
		}
	}
	if c := h.r.Counters(); c.Lost != 0 {
		t.Errorf("group lost %d records", c.Lost)
	}
}

// TestCrossProcDropOldest: PolicyDropOldest, publisher processes, a
// subscriber process that sleeps every few hundred records and a fast
// one: for each, received + Lost() == published, and nothing torn,
// duplicated or reordered.
//
// With two publishers, a publisher preempted between claim and commit
// while the other laps it later writes into space that now holds newer
// records: subscribers get torn records that pass the intact check, or
// ErrCorrupt (see the two-publishers subtest).
func TestCrossProcDropOldest(t *testing.T) {
	t.Run("one-publisher", func(t *testing.T) { xpDropOldest(t, 1) })
	t.Run("two-publishers", func(t *testing.T) {
		xpDropOldest(t, 2)
	})
}

func xpDropOldest(t *testing.T, pubs int) {
	n := xpScale(400_000, 100_000) / uint64(pubs) // per publisher
	c := DefaultConfig(MPMC)
	c.Policy = PolicyDropOldest
	c.CapacityBytes = 64 << 10
	h := newXPHarness(t, c, xpBudget(2*time.Minute))
	start := time.Now()
	slow := h.start("slow", "sub", xpArgs{Pubs: pubs, MinLen: xpHeaderLen, MaxLen: 200, Wait: "backoff", SlowEvery: 300, SlowSleep: time.Millisecond})
	slow.waitEvent("ready")
	fast := h.start("fast", "sub", xpArgs{Pubs: pubs, MinLen: xpHeaderLen, MaxLen: 200, Wait: "backoff"})
	fast.waitEvent("ready")
	pubc := make([]*xpChild, pubs)
	for i := range pubc {
		pubc[i] = h.start(fmt.Sprintf("pub%d", i+1), "pub", xpArgs{Pub: i + 1, Count: n, MinLen: xpHeaderLen, MaxLen: 200, Mode: "mixed", BatchMax: 32})
	}
	for _, p := range pubc {
		var pr xpPubResult
		p.waitResult(&pr)
		if pr.Published != n {
			t.Errorf("%s published %d, want %d", p.name, pr.Published, n)
		}
	}
	slow.send("done")
	fast.send("done")
	for _, s := range []*xpChild{slow, fast} {
		var sr xpSubResult
		s.waitResult(&sr)
		ck := sr.Check
		xpAssertClean(t, s.name, ck, false)
		var trailing uint64
		for p := 1; p <= pubs; p++ {
			trailing += n - ck.Next[p]
		}
		t.Logf("%s: received %d, lost %d (lapped %d times) of %d", s.name, ck.Received, sr.Lost, sr.Lapped, uint64(pubs)*n)
		if ck.Received+sr.Lost != uint64(pubs)*n {
			t.Errorf("%s: received %d + lost %d != published %d", s.name, ck.Received, sr.Lost, uint64(pubs)*n)
		}
		if ck.Gaps+trailing != sr.Lost {
			t.Errorf("%s: sequence gaps %d + %d never seen != Lost() %d", s.name, ck.Gaps, trailing, sr.Lost)
		}
		if s == slow && (sr.Lost == 0 || sr.Lapped == 0) {
			t.Errorf("slow subscriber was never lapped (lost %d, lapped %d): the test did not exercise overwriting", sr.Lost, sr.Lapped)
		}
	}
	t.Logf("wall time %v", time.Since(start))
}

// xpClaimed parses a "claimed <position> <monotonic ns>" event.
func xpClaimed(h *xpHarness, line string) (pos uint64, ns int64) {
	h.t.Helper()
	if _, err := fmt.Sscanf(line, "claimed %d %d", &pos, &ns); err != nil {
		h.fail("bad event %q: %v", line, err)
	}
	return pos, ns
}

// TestCrossProcKilledClaimant: a publisher process SIGKILLed between claim
// and commit. While it lives the subscriber stalls on its claim; once it
// is dead (and reaped) the claim is skipped, counted as unblocked, and a
// second publisher process's records all arrive. Five rounds; in odd
// rounds the dead claimant sits in a slot the next publisher does not
// pass, so only the subscriber's own unblock timeout can free it.
func TestCrossProcKilledClaimant(t *testing.T) {
	const rounds, hold, more = 5, 20, 2000
	c := DefaultConfig(MPMC)
	c.CapacityBytes = 64 << 10
	c.MaxPublishers, c.MaxSubscribers = 4, 4
	c.UnblockTimeout = 50 * time.Millisecond
	h := newXPHarness(t, c, xpBudget(time.Minute))
	sub := h.localSub(2*rounds, 0, 200, false)
	for i := 0; i < rounds; i++ {
		dead, next := 2*i+1, 2*i+2
		before := h.r.Counters()
		var dummy *Publisher
		if i%2 == 1 {
			var err error
			if dummy, err = h.r.NewPublisher(PublisherOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		dc := h.start(fmt.Sprintf("claimant%d", i), "claim-hold", xpArgs{Pub: dead, Hold: hold, MaxLen: 200})
		_, claimNS := xpClaimed(h, dc.waitEvent("claimed"))
		if dummy != nil {
			dummy.Close()
		}
		// Alive (if slow) claimant: the subscriber stalls and never skips.
		sub.waitFor(fmt.Sprintf("round %d: pub%d's %d committed records and a stall", i, dead, hold), func(c xpCheck, stalled uint64) bool {
			return c.PerPub[dead] == hold && stalled > 0 && MonotonicNS()-claimNS > 2*int64(h.r.StallTimeout())
		})
		if c := h.r.Counters(); c.Unblocked != before.Unblocked {
			t.Fatalf("round %d: a live claimant's claim was unblocked (counters %+v)", i, c)
		}
		dc.kill()
		if dummy != nil {
			// Only the subscriber's unblock timeout can free this claim. Reap
			// the dead slot before anyone publishes a lap past it: reaping a
			// slot whose claim was resolved laps ago corrupts the ring (see
			// TestCrossProcStaleIntentReap).
			sub.waitFor(fmt.Sprintf("round %d: the subscriber to unblock the dead claim", i), func(xpCheck, uint64) bool {
				return h.r.Counters().Unblocked > before.Unblocked
			})
			h.r.ReapDead()
		}
		nc := h.start(fmt.Sprintf("next%d", i), "pub", xpArgs{Pub: next, Count: more, MaxLen: 200, Mode: "mixed"})
		var pr xpPubResult
		nc.waitResult(&pr)
		sub.waitFor(fmt.Sprintf("round %d: all %d records of pub%d", i, more, next), func(c xpCheck, _ uint64) bool {
			return c.PerPub[next] == more
		})
		after := h.r.Counters()
		sub.mu.Lock()
		skipNS := sub.firstNS[next]
		sub.mu.Unlock()
		t.Logf("round %d: claimant slot %d; unblocked +%d, reaped +%d; claim skipped %v after it was made",
			i, 1-(i+1)%2, after.Unblocked-before.Unblocked, after.Reaped-before.Reaped, time.Duration(skipNS-claimNS))
		if after.Unblocked < before.Unblocked+1 {
			t.Errorf("round %d: Unblocked went from %d to %d, want an increase", i, before.Unblocked, after.Unblocked)
		}
		if skipNS-claimNS < int64(h.r.StallTimeout()) {
			t.Errorf("round %d: claim skipped %v after it was made, before the unblock timeout %v", i, time.Duration(skipNS-claimNS), h.r.StallTimeout())
		}
	}
	sub.close()
	c2, _, err := sub.snapshot()
	if err != nil {
		t.Fatalf("local subscriber: %v", err)
	}
	xpAssertClean(t, "subscriber", c2, true)
	for i := 0; i < rounds; i++ {
		if c2.PerPub[2*i+1] != hold || c2.PerPub[2*i+2] != more {
			t.Errorf("round %d: got %d and %d records, want %d and %d", i, c2.PerPub[2*i+1], c2.PerPub[2*i+2], hold, more)
		}
	}
}

// TestCrossProcRandomKill: publisher processes publishing in a loop (all
// three publish paths) are SIGKILLed at random moments, two at a time;
// a last publisher then runs to completion. The subscriber gets a
// gap-free prefix of each killed publisher's records, all intact, in
// order, and then everything of the last one.
//
// By default both publishers of a round die at the same moment and the
// parent reaps their slots before anything else is published. With
// staggered kills, the survivor laps the dead one's last intent before a
// later NewPublisher reaps the slot, and the reap corrupts a newer
// record (see TestCrossProcStaleIntentReap).
func TestCrossProcRandomKill(t *testing.T) {
	t.Run("together", func(t *testing.T) { xpRandomKill(t, false) })
	t.Run("staggered", func(t *testing.T) {
		xpRandomKill(t, true)
	})
}

func xpRandomKill(t *testing.T, staggered bool) {
	const rounds, more = 6, 5000
	c := DefaultConfig(MPMC)
	c.CapacityBytes = 64 << 10
	c.MaxPublishers, c.MaxSubscribers = 4, 4
	c.UnblockTimeout = 50 * time.Millisecond
	h := newXPHarness(t, c, xpBudget(time.Minute))
	seed := uint64(time.Now().UnixNano())
	rnd := rand.New(rand.NewPCG(seed, 0x6b61656c6978))
	t.Logf("seed %d", seed)
	last := 2*rounds + 1
	sub := h.localSub(last, 0, 200, false)
	for i := 0; i < rounds; i++ {
		// Batches stay below MaxPayloadBytes: see TestCrossProcDeadBatchClaim.
		a := h.start(fmt.Sprintf("loop%d", 2*i+1), "pub", xpArgs{Pub: 2*i + 1, MaxLen: 200, Mode: "mixed", BatchMax: 16})
		b := h.start(fmt.Sprintf("loop%d", 2*i+2), "pub", xpArgs{Pub: 2*i + 2, MaxLen: 200, Mode: "mixed", BatchMax: 16})
		a.waitEvent("started")
		b.waitEvent("started")
		time.Sleep(time.Duration(rnd.IntN(40_000)) * time.Microsecond)
		a.signal(unix.SIGKILL)
		if staggered {
			time.Sleep(time.Duration(rnd.IntN(20_000)) * time.Microsecond)
		}
		b.signal(unix.SIGKILL)
		a.reap()
		b.reap()
		if !staggered {
			h.r.ReapDead()
		}
	}
	lc := h.start("last", "pub", xpArgs{Pub: last, Count: more, MaxLen: 200, Mode: "mixed"})
	var pr xpPubResult
	lc.waitResult(&pr)
	sub.waitFor(fmt.Sprintf("all %d records of the last publisher", more), func(c xpCheck, _ uint64) bool {
		return c.PerPub[last] == more
	})
	sub.close()
	ck, stalled, err := sub.snapshot()
	if err != nil {
		t.Fatalf("local subscriber: %v", err)
	}
	cnt := h.r.Counters()
	t.Logf("records of killed publishers %v; unblocked %d, reaped %d, stalls seen %d", ck.PerPub[1:last], cnt.Unblocked, cnt.Reaped, stalled)
	xpAssertClean(t, "subscriber", ck, true)
	if pos, tail := sub.s.Position(), h.r.TailPosition(); pos != tail {
		t.Errorf("subscriber stopped at %d, tail is %d", pos, tail)
	}
}

// TestCrossProcStaleIntentReap: a dead publisher's claim is unblocked by
// the subscriber, but its slot is only reaped after the ring has lapped
// the claim. Reaping must then leave the ring alone; today resolveClaim
// trusts the stale intent, rewrites the header at the claim's old offset
// (now inside an unread newer record) and counts a second unblock.
func TestCrossProcStaleIntentReap(t *testing.T) {
	c := DefaultConfig(MPMC)
	c.CapacityBytes = 64 << 10
	c.MaxPublishers, c.MaxSubscribers = 4, 4
	c.UnblockTimeout = 50 * time.Millisecond
	h := newXPHarness(t, c, xpBudget(10*time.Second))
	sub := h.localSub(2, 0, 200, false)
	p, err := h.r.NewPublisher(PublisherOptions{RecordType: 2}) // slot 0: the claimant gets slot 1
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dc := h.start("claimant", "claim-hold", xpArgs{Pub: 1, MaxLen: 200})
	claimPos, _ := xpClaimed(h, dc.waitEvent("claimed"))
	dc.kill()
	sub.waitFor("the dead claim to be unblocked", func(xpCheck, uint64) bool {
		return h.r.Counters().Unblocked == 1 && sub.position() > claimPos
	})
	// Let the subscriber read a few records past the claim, then fill the
	// ring while it is paused: the unread records now cover the claim's
	// offset one lap later.
	const ahead = 10
	xpPublishLocal(h, p, 2, 0, ahead, 0, 200)
	sub.waitFor("the records after the claim", func(c xpCheck, _ uint64) bool { return c.PerPub[2] == ahead })
	sub.setPaused(true)
	seq := uint64(ahead)
	buf := make([]byte, 200)
	for ; ; seq++ {
		b := buf[:xpLen(2, seq, 0, 200)]
		xpFill(b, 2, seq)
		if err := p.Offer(b); err == ErrBackPressured {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if tail := h.r.TailPosition(); tail <= claimPos+c.CapacityBytes {
		t.Fatalf("ring not lapped past the claim: tail %d, claim %d", tail, claimPos)
	}
	p2, err := h.r.NewPublisher(PublisherOptions{}) // passes the dead slot 1 and reaps it
	if err != nil {
		t.Fatal(err)
	}
	p2.Close()
	if c := h.r.Counters(); c.Unblocked != 1 {
		t.Errorf("reaping a slot whose claim was resolved a lap ago unblocked again: %+v", c)
	}
	sub.setPaused(false)
	sub.waitFor(fmt.Sprintf("the %d records published after the claim", seq), func(c xpCheck, _ uint64) bool {
		return c.PerPub[2] == seq || c.Corrupt > 0
	})
	sub.close()
	ck, _, _ := sub.snapshot()
	xpAssertClean(t, "subscriber", ck, true)
}

// TestCrossProcStoppedClaimant: a publisher process SIGSTOPped between
// claim and commit for several unblock timeouts is alive: the subscriber
// reports ErrStalled and skips nothing, even with another publisher's
// records behind the claim. After SIGCONT it commits and the record
// arrives intact, followed by the rest in order.
func TestCrossProcStoppedClaimant(t *testing.T) {
	const hold, after, others = 10, 10, 100
	c := DefaultConfig(MPMC)
	c.CapacityBytes = 64 << 10
	c.MaxPublishers, c.MaxSubscribers = 4, 4
	c.UnblockTimeout = 50 * time.Millisecond
	h := newXPHarness(t, c, xpBudget(time.Minute))
	sub := h.localSub(2, 0, 200, true)
	a := h.start("stopped", "claim-stop", xpArgs{Pub: 1, Hold: hold, After: after, MaxLen: 200})
	_, claimNS := xpClaimed(h, a.waitEvent("claimed"))
	a.signal(unix.SIGSTOP)
	a.waitProcState('T')
	stoppedAt := time.Now()
	b := h.start("other", "pub", xpArgs{Pub: 2, Count: others, MaxLen: 200, Mode: "mixed"})
	var pr xpPubResult
	b.waitResult(&pr)
	sub.waitFor("ErrStalled on the stopped claim", func(c xpCheck, stalled uint64) bool {
		return c.PerPub[1] == hold && stalled >= 2 && time.Since(stoppedAt) > 4*h.r.StallTimeout()
	})
	if n := h.r.ReapDead(); n != 0 {
		t.Errorf("ReapDead freed %d slots while the claimant was only stopped", n)
	}
	ck, stalled, _ := sub.snapshot()
	if ck.PerPub[1] != hold || ck.PerPub[2] != 0 {
		t.Errorf("while stopped the subscriber got %d records of the claimant and %d behind its claim, want %d and 0", ck.PerPub[1], ck.PerPub[2], hold)
	}
	if c := h.r.Counters(); c.Unblocked != 0 {
		t.Fatalf("a stopped publisher's claim was unblocked: %+v", c)
	}
	a.send("commit") // read once it runs again
	a.signal(unix.SIGCONT)
	a.waitResult(&pr)
	sub.waitFor("every record", func(c xpCheck, _ uint64) bool {
		return c.PerPub[1] == hold+1+after && c.PerPub[2] == others
	})
	sub.close()
	ck, _, err := sub.snapshot()
	if err != nil {
		t.Fatalf("local subscriber: %v", err)
	}
	t.Logf("stalled %d times over %v of SIGSTOP; claim committed %v after it was made",
		stalled, time.Since(stoppedAt).Round(time.Millisecond), time.Duration(MonotonicNS()-claimNS).Round(time.Millisecond))
	xpAssertClean(t, "subscriber", ck, true)
	if c := h.r.Counters(); c.Unblocked != 0 {
		t.Errorf("unblocked %d claims, want 0", c.Unblocked)
	}
}

// TestCrossProcKilledSubscriber: a subscriber process that stops reading
// holds a PolicyBlock publisher back until it is SIGKILLed; the blocked
// OfferTimeout then reaps it and goes on within 1s, and a new subscriber
// process attaches (to the freed single slot of an SPSC ring) and
// receives in order.
func TestCrossProcKilledSubscriber(t *testing.T) {
	const read, more = 100, 5000
	c := DefaultConfig(SPSC)
	c.CapacityBytes = 64 << 10
	c.UnblockTimeout = 50 * time.Millisecond
	h := newXPHarness(t, c, xpBudget(time.Minute))
	s1 := h.start("stuck", "sub-stall", xpArgs{Pubs: 1, MaxLen: 200, Read: read})
	s1.waitEvent("ready")
	p, err := h.r.NewPublisher(PublisherOptions{RecordType: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	xpPublishLocal(h, p, 1, 0, read, 0, 200)
	s1.waitEvent("read")
	seq := uint64(read)
	buf := make([]byte, 200)
	for ; ; seq++ {
		b := buf[:xpLen(1, seq, 0, 200)]
		xpFill(b, 1, seq)
		if err := p.Offer(b); err == ErrBackPressured {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	b := buf[:xpLen(1, seq, 0, 200)]
	xpFill(b, 1, seq)
	done, finished := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(finished)
		done <- p.OfferTimeout(b, 10*time.Second)
	}()
	t.Cleanup(func() { <-finished }) // before the ring is unmapped
	select {
	case err := <-done:
		t.Fatalf("OfferTimeout returned %v while the live subscriber held the ring full", err)
	case <-time.After(4 * c.UnblockTimeout):
	}
	s1.kill()
	killed := time.Now()
	select {
	case err := <-done:
		el := time.Since(killed)
		t.Logf("blocked OfferTimeout went on %v after the subscriber was killed", el)
		if err != nil || el > time.Second {
			t.Fatalf("OfferTimeout: %v after %v, want nil within 1s", err, el)
		}
	case <-time.After(10 * time.Second):
		h.fail("HANG: OfferTimeout still blocked 10s after its only subscriber was killed")
	}
	if c := h.r.Counters(); c.Reaped < 1 || c.Subscribers != 0 {
		t.Errorf("after the publisher reaped: %+v", c)
	}
	seq++
	starts := []uint64{0, seq}
	s2 := h.start("new", "sub", xpArgs{Pubs: 1, MaxLen: 200, StartSeqs: starts, StrictRingSeq: true, Expect: more})
	s2.waitEvent("ready")
	xpPublishLocal(h, p, 1, seq, seq+more, 0, 200)
	var sr xpSubResult
	s2.waitResult(&sr)
	xpAssertClean(t, "new subscriber", sr.Check, true)
	if sr.Check.Received != more || sr.Check.Next[1] != seq+more {
		t.Errorf("new subscriber got %d records up to seq %d, want %d up to %d", sr.Check.Received, sr.Check.Next[1], more, seq+more)
	}
}

// TestCrossProcBlockingWait: a Blocking subscriber process and a
// publisher process that parks on back-pressure, with an unblock timeout
// so long that no sleep ends by itself in time: a lost wakeup on either
// doorbell hangs the run (and fails it by timeout). Then a busy-spinning
// pair, which must never touch a doorbell: Waits and Wakeups stay 0.
func TestCrossProcBlockingWait(t *testing.T) {
	t.Run("blocking", func(t *testing.T) {
		n := xpScale(1_000_000, 200_000)
		c := DefaultConfig(SPSC)
		c.CapacityBytes = 64 << 10
		c.UnblockTimeout = time.Hour
		h := newXPHarness(t, c, xpBudget(2*time.Minute))
		start := time.Now()
		sub := h.start("sub", "sub", xpArgs{Pubs: 1, MaxLen: 200, StrictRingSeq: true, Wait: "blocking", Expect: n, PollTimeout: 30 * time.Second})
		sub.waitEvent("ready")
		pub := h.start("pub", "pub", xpArgs{Pub: 1, Count: n, MaxLen: 200, Mode: "offer"})
		var pr xpPubResult
		pub.waitResult(&pr)
		var sr xpSubResult
		sub.waitResult(&sr)
		cnt := h.r.Counters()
		t.Logf("%d records in %v; waits %d, wakeups %d", n, time.Since(start), cnt.Waits, cnt.Wakeups)
		xpAssertClean(t, "subscriber", sr.Check, true)
		if sr.Check.Received != n || sr.Timeouts != 0 {
			t.Errorf("received %d of %d; %d PollWait calls (30s each) timed out: lost wakeup?", sr.Check.Received, n, sr.Timeouts)
		}
		if cnt.Waits == 0 || cnt.Wakeups == 0 {
			t.Errorf("nobody ever slept (waits %d, wakeups %d): the test did not exercise the doorbells", cnt.Waits, cnt.Wakeups)
		}
	})
	t.Run("busy-spin", func(t *testing.T) {
		n := xpScale(200_000, 50_000)
		c := DefaultConfig(SPSC)
		c.CapacityBytes = 64 << 10
		h := newXPHarness(t, c, xpBudget(2*time.Minute))
		start := time.Now()
		sub := h.start("sub", "sub", xpArgs{Pubs: 1, MaxLen: 200, StrictRingSeq: true, Wait: "busy-spin", Expect: n})
		sub.waitEvent("ready")
		pub := h.start("pub", "pub", xpArgs{Pub: 1, Count: n, MaxLen: 200, Mode: "spin"})
		var pr xpPubResult
		pub.waitResult(&pr)
		var sr xpSubResult
		sub.waitResult(&sr)
		cnt := h.r.Counters()
		t.Logf("%d records in %v; back-pressure %d, waits %d, wakeups %d", n, time.Since(start), cnt.BackPressure, cnt.Waits, cnt.Wakeups)
		xpAssertClean(t, "subscriber", sr.Check, true)
		if sr.Check.Received != n {
			t.Errorf("received %d of %d", sr.Check.Received, n)
		}
		if cnt.Waits != 0 || cnt.Wakeups != 0 {
			t.Errorf("busy-spinning pair: waits %d, wakeups %d, want 0 and 0", cnt.Waits, cnt.Wakeups)
		}
	})
}

// TestCrossProcDeadBatchClaim: an OfferBatch publisher killed after its
// tail CAS and before it wrote any record header. Unblocking turns the
// whole claim into one skip record whose length is the batch's, larger
// than MaxPayloadBytes; subscribers must step over it, not reject it.
func TestCrossProcDeadBatchClaim(t *testing.T) {
	c := DefaultConfig(MPMC)
	c.CapacityBytes = 64 << 10
	c.MaxPayloadBytes = 256
	c.MaxPublishers, c.MaxSubscribers = 4, 4
	c.UnblockTimeout = 50 * time.Millisecond
	h := newXPHarness(t, c, xpBudget(30*time.Second))
	sub := h.localSub(2, 0, 200, false)
	dc := h.start("claimant", "reserve-hold", xpArgs{Pub: 1, Hold: 8, MaxLen: 200})
	dc.waitEvent("claimed")
	dc.kill()
	nc := h.start("next", "pub", xpArgs{Pub: 2, Count: 100, MaxLen: 200, Mode: "offer"})
	var pr xpPubResult
	nc.waitResult(&pr)
	sub.waitFor("the next publisher's records past the dead batch claim", func(c xpCheck, _ uint64) bool {
		return c.PerPub[2] == 100
	})
	if c := h.r.Counters(); c.Unblocked == 0 {
		t.Errorf("dead claim not counted as unblocked: %+v", c)
	}
}

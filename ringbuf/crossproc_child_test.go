package ringbuf

// Child side of the cross-process tests in crossproc_test.go: the payload
// codec, the record checker (shared with subscribers the parent runs in
// process) and the roles a re-executed test binary plays.
//
// A child is the test binary run with -test.run=^TestHelperProcess$ and
// xpRoleEnv set. It maps the ring file named by xpPathEnv, attaches, plays
// its role with the parameters JSON-encoded in xpArgsEnv, prints event
// lines ("ready", "claimed ...") and finally one line "RESULT {json}" on
// stdout, and exits. A watchdog makes it exit on its own when its parent
// dies or its deadline passes, so no child outlives a crashed test run.

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const (
	xpRoleEnv = "KAELIX_RINGBUF_XP_ROLE"
	xpPathEnv = "KAELIX_RINGBUF_XP_PATH"
	xpArgsEnv = "KAELIX_RINGBUF_XP_ARGS"

	xpResultPrefix = "RESULT "
)

// xpArgs parameterizes a child role. Publisher ids are 1-based and double
// as the record type, so a subscriber knows whose record it reads even
// when the payload is too short to say.
type xpArgs struct {
	Pub      int    // publisher id (pub roles)
	StartSeq uint64 // first per-publisher sequence to publish
	Count    uint64 // records to publish; 0 = until killed
	MinLen   int    // payload bytes, inclusive range
	MaxLen   int
	Mode     string // pub: mixed, offer, claim, batch, spin
	BatchMax int    // most records per OfferBatch
	Hold     uint64 // claim roles: records committed before the held claim
	After    uint64 // claim-stop: records published after the commit

	Pubs          int      // sub: highest publisher id
	StartSeqs     []uint64 // sub: first sequence expected per publisher id (default 0)
	Group         uint32   // sub: queue group id, 0 = broadcast
	Wait          string   // sub: wait strategy name
	StrictRingSeq bool     // sub: ring sequences must be consecutive
	Bitmaps       bool     // sub: report the received sets
	SlowEvery     uint64   // sub: sleep every SlowEvery records
	SlowSleep     time.Duration
	Read          uint64        // sub-stall: records to read before stalling
	Expect        uint64        // sub: stop after this many records (0: at "done" and caught up)
	PollTimeout   time.Duration // sub: PollWait timeout (default 100ms)
	Paths         []string      // multisub: the ring files to read (waitset_test.go)
	NoTimeout     bool          // multisub: sleep with no time bound (a lost wakeup hangs)
	Fallback      bool          // multisub: sleep without futex_waitv, as on kernels before 5.16
	Rate          float64       // pub-paced: records per second (lap_test.go)

	DeadlineNS int64 // wall-clock unix ns after which the child gives up
}

// xpPubResult is a publisher child's report.
type xpPubResult struct {
	Err       string
	Published uint64
	Batches   uint64
	Claims    uint64
	Offers    uint64
	Slot      int
	Counters  Counters
}

// xpSubResult is a subscriber child's report.
type xpSubResult struct {
	Err      string
	Check    xpCheck
	Lost     uint64 // Subscriber.Lost
	Lapped   uint64 // ErrLapped returns
	Stalled  uint64 // ErrStalled returns
	Timeouts uint64 // ErrTimeout returns
	Counters Counters
}

// TestHelperProcess is the entry point of every child process. Run
// directly it does nothing.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv(xpRoleEnv)
	if role == "" {
		return
	}
	var a xpArgs
	if err := json.Unmarshal([]byte(os.Getenv(xpArgsEnv)), &a); err != nil {
		xpExit(nil, fmt.Errorf("bad %s: %w", xpArgsEnv, err))
	}
	xpWatchdog(a.DeadlineNS)
	b, err := mapFile(os.Getenv(xpPathEnv), 0, false)
	if err != nil {
		xpExit(nil, err)
	}
	r, err := attachIn(b)
	if err != nil {
		xpExit(nil, err)
	}
	switch role {
	case "pub":
		res, err := xpRunPub(r, a)
		xpExit(res, err)
	case "sub":
		res, err := xpRunSub(r, a)
		xpExit(res, err)
	case "claim-hold", "claim-stop":
		res, err := xpRunClaim(r, a, role == "claim-stop")
		xpExit(res, err)
	case "reserve-hold":
		xpExit(nil, xpRunReserveHold(r, a))
	case "sub-stall":
		xpExit(nil, xpRunSubStall(r, a))
	case "multisub":
		res, err := xpRunMultiSub(a)
		xpExit(res, err)
	case "pub-paced":
		res, err := xpRunPacedPub(r, a)
		xpExit(res, err)
	}
	xpExit(nil, fmt.Errorf("unknown role %q", role))
}

// xpExit prints the result line and exits: status 0 with a result, 1 with
// an error (also in the result, for the parent's message).
func xpExit(res any, err error) {
	if err != nil {
		res = map[string]string{"Err": err.Error()}
	}
	line, jerr := json.Marshal(res)
	if jerr != nil {
		line = []byte(fmt.Sprintf(`{"Err":%q}`, jerr.Error()))
	}
	os.Stdout.Write(append(append([]byte(xpResultPrefix), line...), '\n'))
	if err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// xpEvent prints an event line for the parent.
func xpEvent(format string, args ...any) {
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

// xpWatchdog ends the child if its parent goes away or the deadline passes.
func xpWatchdog(deadlineNS int64) {
	ppid := os.Getppid()
	go func() {
		for {
			time.Sleep(100 * time.Millisecond)
			if os.Getppid() != ppid {
				os.Exit(3)
			}
			if deadlineNS != 0 && time.Now().UnixNano() > deadlineNS {
				fmt.Fprintln(os.Stderr, "child deadline passed; exiting")
				os.Exit(4)
			}
		}
	}()
}

// errXPDeadline is a child's own deadline passing mid-run.
var errXPDeadline = errors.New("child deadline passed")

func xpPastDeadline(a xpArgs) bool {
	return a.DeadlineNS != 0 && time.Now().UnixNano() > a.DeadlineNS
}

// Payload codec. A payload of L >= xpHeaderLen bytes is
//
//	[0:4]   CRC-32C of bytes [4:L]
//	[4:6]   publisher id
//	[6:8]   L
//	[8:16]  per-publisher sequence
//	[16:L]  filler, a pseudo-random stream keyed by (publisher, sequence)
//
// A shorter payload is just the first L filler bytes. L itself is a pure
// function of (publisher, sequence), so a checker that knows whose record
// it expects can verify every byte of any payload, even an empty one.
const xpHeaderLen = 16

var xpCRC = crc32.MakeTable(crc32.Castagnoli)

func xpMix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func xpKey(pub int, seq uint64) uint64 { return uint64(pub)<<48 ^ seq }

// xpLen is the payload length of record seq of publisher pub.
func xpLen(pub int, seq uint64, minLen, maxLen int) int {
	return minLen + int(xpMix(xpKey(pub, seq)^0x5bd1e995)%uint64(maxLen-minLen+1))
}

// xpFiller fills dst with the filler stream of (pub, seq).
func xpFiller(dst []byte, pub int, seq uint64) {
	s := xpKey(pub, seq)
	for len(dst) >= 8 {
		s = xpMix(s)
		binary.LittleEndian.PutUint64(dst, s)
		dst = dst[8:]
	}
	if len(dst) > 0 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], xpMix(s))
		copy(dst, w[:])
	}
}

// xpFill writes the payload of (pub, seq) into dst, whose length must be
// xpLen(pub, seq, ...).
func xpFill(dst []byte, pub int, seq uint64) {
	if len(dst) < xpHeaderLen {
		xpFiller(dst, pub, seq)
		return
	}
	binary.LittleEndian.PutUint16(dst[4:], uint16(pub))
	binary.LittleEndian.PutUint16(dst[6:], uint16(len(dst)))
	binary.LittleEndian.PutUint64(dst[8:], seq)
	xpFiller(dst[xpHeaderLen:], pub, seq)
	binary.LittleEndian.PutUint32(dst, crc32.Checksum(dst[4:], xpCRC))
}

// xpCheck is what a checker found. Every anomaly counter must be zero in
// a correct run, except Gaps under PolicyDropOldest (records lost to
// lapping, which must then equal Subscriber.Lost).
type xpCheck struct {
	Received   uint64
	PerPub     []uint64 // records received, by publisher id
	Next       []uint64 // next sequence expected, by publisher id
	Corrupt    uint64   // bad checksum, length, header, or short payload bytes
	Dup        uint64   // (publisher, sequence) received twice
	Reorder    uint64   // a sequence older than one already received
	Gaps       uint64   // sequences skipped over
	RingSeqErr uint64   // ring sequence not increasing (or not consecutive if strict)
	OrderHash  uint64   // hash of the (ring seq, publisher, sequence) stream
	Bitmaps    [][]byte `json:",omitempty"` // received sets, by publisher id
	Anomalies  []string `json:",omitempty"` // the first few anomalies, described
}

// xpChecker checks records one by one. Not safe for concurrent use.
type xpChecker struct {
	c              xpCheck
	minLen, maxLen int
	strictRingSeq  bool
	bitmaps        bool
	lastRingSeq    uint64
	haveRingSeq    bool
	scratch        []byte
}

func newXPChecker(pubs, minLen, maxLen int, strictRingSeq, bitmaps bool, startSeqs []uint64) *xpChecker {
	ck := &xpChecker{
		minLen: minLen, maxLen: maxLen, strictRingSeq: strictRingSeq, bitmaps: bitmaps,
		scratch: make([]byte, xpHeaderLen),
	}
	ck.c.PerPub = make([]uint64, pubs+1)
	ck.c.Next = make([]uint64, pubs+1)
	copy(ck.c.Next, startSeqs)
	if bitmaps {
		ck.c.Bitmaps = make([][]byte, pubs+1)
	}
	ck.c.OrderHash = 0xcbf29ce484222325
	return ck
}

func (ck *xpChecker) anomaly(counter *uint64, format string, args ...any) {
	*counter++
	if len(ck.c.Anomalies) < 8 {
		ck.c.Anomalies = append(ck.c.Anomalies, fmt.Sprintf(format, args...))
	}
}

// check verifies one delivered record and accounts for it.
func (ck *xpChecker) check(rec Record) {
	c := &ck.c
	c.Received++
	if ck.haveRingSeq {
		if rec.Sequence <= ck.lastRingSeq || (ck.strictRingSeq && rec.Sequence != ck.lastRingSeq+1) {
			ck.anomaly(&c.RingSeqErr, "ring sequence %d after %d", rec.Sequence, ck.lastRingSeq)
		}
	}
	ck.lastRingSeq, ck.haveRingSeq = rec.Sequence, true

	pub := int(rec.Type)
	p := rec.Payload
	if pub < 1 || pub >= len(c.PerPub) {
		ck.anomaly(&c.Corrupt, "ring seq %d: record type %d is no publisher id", rec.Sequence, rec.Type)
		return
	}
	var seq uint64
	if len(p) >= xpHeaderLen {
		seq = binary.LittleEndian.Uint64(p[8:])
		switch {
		case binary.LittleEndian.Uint32(p) != crc32.Checksum(p[4:], xpCRC):
			ck.anomaly(&c.Corrupt, "ring seq %d: checksum mismatch (%d bytes)", rec.Sequence, len(p))
			return
		case int(binary.LittleEndian.Uint16(p[4:])) != pub || int(binary.LittleEndian.Uint16(p[6:])) != len(p):
			ck.anomaly(&c.Corrupt, "ring seq %d: payload header says pub %d len %d, record says pub %d len %d",
				rec.Sequence, binary.LittleEndian.Uint16(p[4:]), binary.LittleEndian.Uint16(p[6:]), pub, len(p))
			return
		case len(p) != xpLen(pub, seq, ck.minLen, ck.maxLen):
			ck.anomaly(&c.Corrupt, "pub %d seq %d: %d bytes, want %d", pub, seq, len(p), xpLen(pub, seq, ck.minLen, ck.maxLen))
			return
		}
	} else {
		// Too short to carry its sequence: it must be the expected one.
		seq = c.Next[pub]
		want := ck.scratch[:len(p)]
		xpFiller(want, pub, seq)
		if len(p) != xpLen(pub, seq, ck.minLen, ck.maxLen) || string(want) != string(p) {
			ck.anomaly(&c.Corrupt, "pub %d: short payload (%d bytes) is not sequence %d", pub, len(p), seq)
			return
		}
	}
	if ck.bitmaps {
		bm := c.Bitmaps[pub]
		if need := int(seq/8) + 1; need > len(bm) {
			bm = append(bm, make([]byte, need-len(bm)+len(bm)/2)...)
			c.Bitmaps[pub] = bm
		}
		if bm[seq/8]&(1<<(seq%8)) != 0 {
			ck.anomaly(&c.Dup, "pub %d seq %d received twice", pub, seq)
			return
		}
		bm[seq/8] |= 1 << (seq % 8)
	}
	switch next := c.Next[pub]; {
	case seq == next:
		c.Next[pub] = seq + 1
	case seq > next:
		ck.anomaly(&c.Gaps, "pub %d: seq %d after %d (gap of %d)", pub, seq, next-1, seq-next)
		c.Gaps += seq - next - 1 // anomaly counted one
		c.Next[pub] = seq + 1
	default:
		if ck.bitmaps {
			ck.anomaly(&c.Reorder, "pub %d: seq %d after %d", pub, seq, next-1)
		} else {
			ck.anomaly(&c.Dup, "pub %d: seq %d after %d (duplicate or reordered)", pub, seq, next-1)
		}
	}
	c.PerPub[pub]++
	h := c.OrderHash
	for _, v := range [...]uint64{rec.Sequence, uint64(pub), seq} {
		h = (h ^ xpMix(v)) * 0x100000001b3
	}
	c.OrderHash = h
}

// result returns the checker's findings, with bitmaps trimmed.
func (ck *xpChecker) result() xpCheck {
	c := ck.c
	c.PerPub = append([]uint64(nil), c.PerPub...)
	c.Next = append([]uint64(nil), c.Next...)
	c.Anomalies = append([]string(nil), c.Anomalies...)
	return c
}

// xpBackoff paces retries of a back-pressured claim without touching the
// ring's doorbells: spin-yield first, then short sleeps (unless spinOnly).
type xpBackoff struct {
	n        int
	spinOnly bool
	a        xpArgs
}

func (b *xpBackoff) wait() error {
	b.n++
	if b.n&1023 == 0 && xpPastDeadline(b.a) {
		return errXPDeadline
	}
	if b.spinOnly || b.n < 64 {
		runtime.Gosched()
	} else {
		time.Sleep(20 * time.Microsecond)
	}
	return nil
}

// xpPublisher publishes (pub, seq) records with the codec above.
type xpPublisher struct {
	p     *Publisher
	a     xpArgs
	buf   []byte
	arena []byte
	pls   [][]byte
	res   xpPubResult
	rnd   uint64
}

func newXPPublisher(r *Ring, a xpArgs) (*xpPublisher, error) {
	p, err := r.NewPublisher(PublisherOptions{RecordType: uint16(a.Pub), Timestamps: true})
	if err != nil {
		return nil, err
	}
	if a.BatchMax <= 0 {
		a.BatchMax = 16
	}
	return &xpPublisher{
		p: p, a: a,
		buf:   make([]byte, a.MaxLen),
		arena: make([]byte, a.MaxLen*a.BatchMax),
		pls:   make([][]byte, a.BatchMax),
		rnd:   uint64(os.Getpid())*0x9e3779b97f4a7c15 ^ uint64(time.Now().UnixNano()),
		res:   xpPubResult{Slot: p.slot},
	}, nil
}

func (x *xpPublisher) rand() uint64 { x.rnd = xpMix(x.rnd); return x.rnd }

func (x *xpPublisher) payload(seq uint64) []byte {
	b := x.buf[:xpLen(x.a.Pub, seq, x.a.MinLen, x.a.MaxLen)]
	xpFill(b, x.a.Pub, seq)
	return b
}

func (x *xpPublisher) remaining() time.Duration {
	if x.a.DeadlineNS == 0 {
		return time.Hour
	}
	return time.Until(time.Unix(0, x.a.DeadlineNS))
}

// offer publishes seq with OfferTimeout (parks on the space doorbell).
func (x *xpPublisher) offer(seq uint64) error {
	if err := x.p.OfferTimeout(x.payload(seq), x.remaining()); err != nil {
		return fmt.Errorf("pub %d seq %d: OfferTimeout: %w", x.a.Pub, seq, err)
	}
	x.res.Offers++
	return nil
}

// spinOffer publishes seq with Offer, retrying by yielding only: no
// syscall on the ring's doorbells, ever.
func (x *xpPublisher) spinOffer(seq uint64) error {
	pl := x.payload(seq)
	bo := xpBackoff{spinOnly: true, a: x.a}
	for {
		err := x.p.Offer(pl)
		if err == nil {
			x.res.Offers++
			return nil
		}
		if err != ErrBackPressured {
			return fmt.Errorf("pub %d seq %d: Offer: %w", x.a.Pub, seq, err)
		}
		if err := bo.wait(); err != nil {
			return err
		}
	}
}

// claim publishes seq zero-copy with TryClaim and Commit.
func (x *xpPublisher) claim(seq uint64) error {
	n := xpLen(x.a.Pub, seq, x.a.MinLen, x.a.MaxLen)
	bo := xpBackoff{a: x.a}
	for {
		buf, err := x.p.TryClaim(n)
		if err == nil {
			xpFill(buf, x.a.Pub, seq)
			x.res.Claims++
			return x.p.Commit()
		}
		if err != ErrBackPressured {
			return fmt.Errorf("pub %d seq %d: TryClaim: %w", x.a.Pub, seq, err)
		}
		if err := bo.wait(); err != nil {
			return err
		}
	}
}

// batch publishes up to k records from seq with OfferBatch and returns
// how many it published.
func (x *xpPublisher) batch(seq uint64, k int) (int, error) {
	at := 0
	for i := 0; i < k; i++ {
		n := xpLen(x.a.Pub, seq+uint64(i), x.a.MinLen, x.a.MaxLen)
		x.pls[i] = x.arena[at : at+n : at+n]
		xpFill(x.pls[i], x.a.Pub, seq+uint64(i))
		at += n
	}
	bo := xpBackoff{a: x.a}
	for {
		n, err := x.p.OfferBatch(x.pls[:k])
		if err == nil {
			x.res.Batches++
			return n, nil
		}
		if err != ErrBackPressured {
			return 0, fmt.Errorf("pub %d seq %d: OfferBatch: %w", x.a.Pub, seq, err)
		}
		if err := bo.wait(); err != nil {
			return 0, err
		}
	}
}

// run publishes a.Count records (forever if 0) starting at a.StartSeq.
// mixed mode rotates offer, claim and batch every 1024 records.
func (x *xpPublisher) run() error {
	end := x.a.StartSeq + x.a.Count
	for seq := x.a.StartSeq; x.a.Count == 0 || seq < end; {
		mode := x.a.Mode
		if mode == "mixed" {
			mode = [...]string{"batch", "claim", "offer"}[(seq/1024)%3]
		}
		var err error
		switch mode {
		case "offer":
			err = x.offer(seq)
			seq++
		case "spin":
			err = x.spinOffer(seq)
			seq++
		case "claim":
			err = x.claim(seq)
			seq++
		case "batch":
			k := 1 + int(x.rand()%uint64(x.a.BatchMax))
			if x.a.Count != 0 && uint64(k) > end-seq {
				k = int(end - seq)
			}
			var n int
			n, err = x.batch(seq, k)
			seq += uint64(n)
		default:
			return fmt.Errorf("unknown publish mode %q", x.a.Mode)
		}
		if err != nil {
			return err
		}
		x.res.Published = seq - x.a.StartSeq
		if seq&4095 == 0 && xpPastDeadline(x.a) {
			return fmt.Errorf("pub %d: %w after %d records", x.a.Pub, errXPDeadline, x.res.Published)
		}
	}
	return nil
}

func xpRunPub(r *Ring, a xpArgs) (*xpPubResult, error) {
	x, err := newXPPublisher(r, a)
	if err != nil {
		return nil, err
	}
	xpEvent("started slot=%d", x.res.Slot)
	if err := x.run(); err != nil {
		return nil, err
	}
	x.p.Close()
	x.res.Counters = r.Counters()
	return &x.res, nil
}

// xpRunClaim commits a.Hold records, then claims the next one, writes half
// of its payload and reports "claimed <position> <monotonic ns>". The
// claim-hold role then blocks forever (the parent kills it); claim-stop
// waits for a "commit" line on stdin (the parent stops it before sending
// one), finishes the payload, commits and publishes a.After more records.
func xpRunClaim(r *Ring, a xpArgs, commit bool) (*xpPubResult, error) {
	x, err := newXPPublisher(r, a)
	if err != nil {
		return nil, err
	}
	seq := a.StartSeq
	for ; seq < a.StartSeq+a.Hold; seq++ {
		if err := x.offer(seq); err != nil {
			return nil, err
		}
	}
	n := xpLen(a.Pub, seq, a.MinLen, a.MaxLen)
	var buf []byte
	for bo := (xpBackoff{a: a}); ; {
		if buf, err = x.p.TryClaim(n); err != ErrBackPressured {
			break
		}
		if err := bo.wait(); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, err
	}
	full := x.payload(seq)
	copy(buf[:len(full)/2], full)
	xpEvent("claimed %d %d", x.p.claimPos, MonotonicNS())
	if !commit {
		select {}
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "commit" {
		return nil, fmt.Errorf("waiting for commit: got %q, %v", line, err)
	}
	copy(buf, full)
	if err := x.p.Commit(); err != nil {
		return nil, err
	}
	seq++
	for end := seq + a.After; seq < end; seq++ {
		if err := x.offer(seq); err != nil {
			return nil, err
		}
	}
	x.res.Published = seq - a.StartSeq
	x.p.Close()
	x.res.Counters = r.Counters()
	return &x.res, nil
}

// xpRunReserveHold claims space for a batch of a.Hold maximal records with
// one tail CAS, as OfferBatch does, and then blocks before writing any
// record header: the state of an OfferBatch publisher killed right after
// its claim.
func xpRunReserveHold(r *Ring, a xpArgs) error {
	x, err := newXPPublisher(r, a)
	if err != nil {
		return err
	}
	span := a.Hold * spanOf(uint64(a.MaxLen))
	pos, _, err := x.p.reserve(span, a.Hold)
	if err != nil {
		return err
	}
	xpEvent("claimed %d %d", pos, MonotonicNS())
	select {}
}

// xpRunSubStall joins, reads and checks a.Read records, reports "read",
// and then holds its slot without ever reading again.
func xpRunSubStall(r *Ring, a xpArgs) error {
	s, err := r.NewSubscriber(SubscriberOptions{Wait: Blocking})
	if err != nil {
		return err
	}
	xpEvent("ready")
	ck := newXPChecker(a.Pubs, a.MinLen, a.MaxLen, true, false, a.StartSeqs)
	for ck.c.Received < a.Read {
		if _, err := s.PollWait(ck.check, int(a.Read-ck.c.Received), time.Second); err != nil && err != ErrTimeout {
			return err
		}
		if xpPastDeadline(a) {
			return errXPDeadline
		}
	}
	c := ck.result()
	if c.Corrupt+c.Dup+c.Reorder+c.Gaps+c.RingSeqErr != 0 {
		return fmt.Errorf("bad records before stalling: %+v", c)
	}
	xpEvent("read %d", c.Received)
	select {}
}

// xpRunSub reads until the parent says "done" on stdin and the subscriber
// (or its group) has caught up with the tail, checking every record.
func xpRunSub(r *Ring, a xpArgs) (*xpSubResult, error) {
	ws, ok := ParseWaitStrategy(a.Wait)
	if !ok {
		ws = Backoff
	}
	s, err := r.NewSubscriber(SubscriberOptions{Group: a.Group, Wait: ws})
	if err != nil {
		return nil, err
	}
	var done atomic.Bool
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if sc.Text() == "done" {
				done.Store(true)
			}
		}
	}()
	xpEvent("ready")
	ck := newXPChecker(a.Pubs, a.MinLen, a.MaxLen, a.StrictRingSeq, a.Bitmaps, a.StartSeqs)
	h := ck.check
	if a.SlowEvery > 0 {
		h = func(rec Record) {
			ck.check(rec)
			if ck.c.Received%a.SlowEvery == 0 {
				time.Sleep(a.SlowSleep)
			}
		}
	}
	var res xpSubResult
	pollTimeout := a.PollTimeout
	if pollTimeout <= 0 {
		pollTimeout = 100 * time.Millisecond
	}
	for {
		n, err := s.PollWait(h, 256, pollTimeout)
		switch err {
		case nil:
		case ErrTimeout:
			res.Timeouts++
		case ErrLapped:
			res.Lapped++
		case ErrStalled:
			res.Stalled++
		default:
			return nil, fmt.Errorf("poll after %d records: %w", ck.c.Received, err)
		}
		if a.Expect > 0 && ck.c.Received >= a.Expect {
			// Anything beyond the expected records is a duplicate or a stray.
			if _, err := s.Poll(h, 256); err != nil {
				return nil, fmt.Errorf("final poll: %w", err)
			}
			break
		}
		if a.Expect == 0 && n == 0 && err != ErrLapped && done.Load() && s.Position() >= r.TailPosition() {
			break
		}
		if xpPastDeadline(a) {
			return nil, fmt.Errorf("%w: received %d records, position %d, tail %d, parent done=%v, check %+v",
				errXPDeadline, ck.c.Received, s.Position(), r.TailPosition(), done.Load(), ck.result())
		}
	}
	res.Check = ck.result()
	res.Lost = s.Lost()
	s.Close()
	res.Counters = r.Counters()
	return &res, nil
}

// xpProcState returns the state letter of /proc/pid/stat ('R', 'S', 'T',
// 'Z', ...), or 0 if the process is gone.
func xpProcState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

package bench

// The sides of a run. The parent runs one side in-process; each peer runs
// another, in a child process (a re-exec of this binary) or, for in-process
// transports, in a goroutine. Roles:
//
//	ping   (pingpong, parent)  send, wait for the echo, time the round trip
//	echo   (pingpong, peer)    send back what arrives
//	source (oneway, throughput, fanout: parent; fanin: peers)
//	       send at a fixed rate, stamping each record with its intended send
//	       time (coordinated-omission correction), or as fast as possible
//	sink   (the other side)    receive; latency = arrival - stamp
//
// Each side counts, over its measured window only, its heap allocations,
// its read/write syscalls and the futex calls its transport counted.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/metrics"
	"sync"
	"syscall"

	"github.com/kaelix-io/kaelix/numa"
	"github.com/kaelix-io/kaelix/ringbuf"
)

// endRef names one end of one of the plan's links.
type endRef struct {
	Link int `json:"link"`
	End  int `json:"end"`
}

// sidePlan is everything a side needs; it travels to children as JSON.
type sidePlan struct {
	Role       string     `json:"role"`
	Mode       string     `json:"mode"`
	Links      []linkSpec `json:"links"`
	Tx         []endRef   `json:"tx,omitempty"`
	Rx         []endRef   `json:"rx,omitempty"`
	Size       int        `json:"size"`
	Count      int        `json:"count"`
	Warmup     int        `json:"warmup"`
	DurationNS int64      `json:"duration_ns,omitempty"`
	RateHz     float64    `json:"rate_hz,omitempty"`
	Batch      int        `json:"batch"`
	CPU        int        `json:"cpu"`  // -1: not pinned
	Peer       int        `json:"peer"` // this side's index among the peers (sources stamp it)
	// Ends is how many end markers each Tx sends (queue groups: one per
	// member) and how many each Rx waits for (fan-in on one link: one per
	// publisher).
	Ends int `json:"ends"`
	// NoPin: run the side as a Go program runs, unpinned (Go channels:
	// no LockOSThread, the default GOMAXPROCS).
	NoPin bool `json:"no_pin,omitempty"`
	// Interleaved runs (interleave.go): NumPaths paths, each named and
	// with its batch setting, in Rounds measured rounds (plus a warm-up
	// round) of one BlockNS block per path.
	NumPaths  int      `json:"num_paths,omitempty"`
	PathNames []string `json:"path_names,omitempty"`
	PathBatch []int    `json:"path_batch,omitempty"`
	Rounds    int      `json:"rounds,omitempty"`
	BlockNS   int64    `json:"block_ns,omitempty"`
}

// sideResult is what a side reports.
type sideResult struct {
	// Hists holds encoded HDR histograms by peer (ping: one, of RTTs;
	// sink: one per publishing peer, of one-way latencies).
	Hists   map[int]string `json:"hists,omitempty"`
	Records int64          `json:"records"`  // measured records sent or received
	FirstNS int64          `json:"first_ns"` // sink: arrival of the first measured record
	LastNS  int64          `json:"last_ns"`  // sink: arrival of the last record
	Mallocs uint64         `json:"mallocs"`
	SysRW   uint64         `json:"sys_rw"`
	Futex   uint64         `json:"futex"`
	HaveSys bool           `json:"have_sys"`
	Err     string         `json:"err,omitempty"`
	// Paths: interleaved runs, one per path.
	Paths    []pathResult `json:"paths,omitempty"`
	hdrLocal map[int]*Histogram
}

// usage is a snapshot of a process's counters.
type usage struct {
	mallocs uint64
	sysRW   uint64
	haveSys bool
}

var (
	ioFileOnce sync.Once
	ioFile     *os.File
)

var (
	usageMu sync.Mutex
	ioBuf   [512]byte
)

var allocSamples = []metrics.Sample{{Name: "/gc/heap/allocs:objects"}, {Name: "/gc/heap/tiny/allocs:objects"}}

// readUsage reads the heap allocation count (MemStats.Mallocs' value, from
// runtime/metrics, which does not stop the world) and /proc/self/io's
// syscr+syscw. The pread of /proc/self/io is itself one read syscall, which
// a later snapshot counts: diffUsage takes it off.
func readUsage() usage {
	var u usage
	// The samples are shared (readUsage must not allocate: its own
	// allocations would be counted); sides of one process may read at
	// once.
	usageMu.Lock()
	defer usageMu.Unlock()
	metrics.Read(allocSamples)
	for _, x := range allocSamples {
		if x.Value.Kind() == metrics.KindUint64 {
			u.mallocs += x.Value.Uint64()
		}
	}
	ioFileOnce.Do(func() { ioFile, _ = os.Open("/proc/self/io") })
	if ioFile != nil {
		// One pread, so that exactly one read syscall is added per snapshot.
		n, err := syscall.Pread(int(ioFile.Fd()), ioBuf[:], 0)
		if n > 0 && err == nil {
			r, w, ok := parseProcIO(ioBuf[:n])
			u.sysRW, u.haveSys = r+w, ok
		}
	}
	return u
}

// parseProcIO returns syscr and syscw from /proc/PID/io text, without
// allocating (readUsage runs between measured blocks).
func parseProcIO(b []byte) (syscr, syscw uint64, ok bool) {
	var have int
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		k, v, found := bytes.Cut(line, []byte(":"))
		if !found {
			continue
		}
		v = bytes.TrimSpace(v)
		var n uint64
		digits := len(v) > 0
		for _, c := range v {
			if c < '0' || c > '9' {
				digits = false
				break
			}
			n = n*10 + uint64(c-'0')
		}
		if !digits {
			continue
		}
		switch string(k) {
		case "syscr":
			syscr, have = n, have+1
		case "syscw":
			syscw, have = n, have+1
		}
	}
	return syscr, syscw, have == 2
}

func diffUsage(a, b usage) usage {
	d := usage{mallocs: b.mallocs - a.mallocs, haveSys: a.haveSys && b.haveSys}
	if d.haveSys && b.sysRW > a.sysRW {
		d.sysRW = b.sysRW - a.sysRW - 1 // the first snapshot's own pread
	}
	return d
}

type futexCounter interface{ futexCalls() uint64 }

// side is a running side: its plan, its open ends and its result.
type side struct {
	p   sidePlan
	env *procEnv
	tx  []Tx
	rx  []Rx
	res sideResult
}

func openSide(env *procEnv, p sidePlan) (*side, error) {
	s := &side{p: p, env: env}
	for _, ref := range p.Tx {
		l := &p.Links[ref.Link]
		t, err := lookupTransport(l.Transport)
		if err != nil {
			return nil, err
		}
		tx, err := t.openTx(env, l, ref.End)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("bench: %s: open publisher on %s: %w", p.Role, l.ID, err)
		}
		s.tx = append(s.tx, tx)
	}
	for _, ref := range p.Rx {
		l := &p.Links[ref.Link]
		t, err := lookupTransport(l.Transport)
		if err != nil {
			return nil, err
		}
		rx, err := t.openRx(env, l, ref.End)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("bench: %s: open subscriber on %s: %w", p.Role, l.ID, err)
		}
		s.rx = append(s.rx, rx)
	}
	return s, nil
}

func (s *side) close() {
	for _, t := range s.tx {
		t.Close()
	}
	for _, r := range s.rx {
		r.Close()
	}
}

func (s *side) futex() uint64 {
	var n uint64
	for _, t := range s.tx {
		if f, ok := t.(futexCounter); ok {
			n += f.futexCalls()
		}
	}
	for _, r := range s.rx {
		if f, ok := r.(futexCounter); ok {
			n += f.futexCalls()
		}
	}
	return n
}

// run runs the side's role on the calling goroutine, pinned to p.CPU.
func (s *side) run() (res sideResult, err error) {
	if s.p.CPU >= 0 && !s.p.NoPin {
		restore, perr := numa.PinThread(s.p.CPU)
		if perr != nil {
			return res, fmt.Errorf("bench: pin to cpu %d: %w", s.p.CPU, perr)
		}
		defer restore()
	}
	switch s.p.Role {
	case "ping":
		err = s.ping()
	case "echo":
		err = s.echo()
	case "source":
		err = s.source()
	case "sink":
		err = s.sink()
	case "iping":
		err = s.iping()
	case "iecho":
		err = s.iecho()
	case "isource":
		err = s.isource()
	case "isink":
		err = s.isink()
	default:
		err = fmt.Errorf("bench: unknown role %q", s.p.Role)
	}
	if err != nil {
		return s.res, err
	}
	s.res.Hists = map[int]string{}
	for peer, h := range s.res.hdrLocal {
		enc, err := h.Encode()
		if err != nil {
			return s.res, err
		}
		s.res.Hists[peer] = enc
	}
	for i := range s.res.Paths {
		if h := s.res.Paths[i].hist; h != nil {
			enc, err := h.Encode()
			if err != nil {
				return s.res, err
			}
			s.res.Paths[i].Hist = enc
		}
	}
	return s.res, nil
}

func (s *side) begin() (usage, uint64) { return readUsage(), s.futex() }

func (s *side) end(u0 usage, f0 uint64) {
	u := diffUsage(u0, readUsage())
	s.res.Mallocs, s.res.SysRW, s.res.HaveSys = u.mallocs, u.sysRW, u.haveSys
	s.res.Futex = s.futex() - f0
}

// more says whether record i (counted from the end of the warm-up) is
// still in the measured window: count records, or until the deadline.
func (s *side) deadline(start int64) func(i int, now int64) bool {
	if s.p.DurationNS > 0 {
		end := start + s.p.DurationNS
		return func(_ int, now int64) bool { return now < end }
	}
	return func(i int, _ int64) bool { return i < s.p.Count }
}

var errBadEcho = errors.New("bench: echo returned another record")

func (s *side) ping() error {
	tx, rx := s.tx[0], s.rx[0]
	buf := make([]byte, s.p.Size)
	var want uint64
	bad := false
	h := func(p []byte) {
		if seq, _ := readHeader(p); seq != want {
			bad = true
		}
	}
	round := func(i int) error {
		want = uint64(i)
		putHeader(buf, want, 0)
		if err := tx.Send(buf); err != nil {
			return err
		}
		if _, err := rx.Recv(h, 1); err != nil {
			return err
		}
		if bad {
			return fmt.Errorf("%w (round %d)", errBadEcho, i)
		}
		return nil
	}
	for i := 0; i < s.p.Warmup; i++ {
		if err := round(i); err != nil {
			return err
		}
	}
	hist := NewHistogram()
	u0, f0 := s.begin()
	t0 := ringbuf.MonotonicNS()
	more := s.deadline(t0)
	n := 0
	for now := t0; more(n, now); n++ {
		if err := round(s.p.Warmup + n); err != nil {
			return err
		}
		t1 := ringbuf.MonotonicNS()
		hist.Record(t1 - now)
		now = t1
	}
	s.end(u0, f0)
	s.res.Records = int64(n)
	s.res.hdrLocal = map[int]*Histogram{0: hist}
	putHeader(buf, endSeq, 0)
	return tx.Send(buf)
}

func (s *side) echo() error {
	tx, rx := s.tx[0], s.rx[0]
	buf := make([]byte, s.p.Size)
	var seq uint64
	h := func(p []byte) {
		copy(buf, p)
		seq, _ = readHeader(p)
	}
	var u0 usage
	var f0 uint64
	started := false
	for {
		if _, err := rx.Recv(h, 1); err != nil {
			return err
		}
		if seq == endSeq {
			break
		}
		if !started && seq+1 >= uint64(s.p.Warmup) {
			// The ping side excludes this round trip: count from here.
			u0, f0 = s.begin()
			started = true
		}
		if err := tx.Send(buf); err != nil {
			return err
		}
	}
	if started {
		s.end(u0, f0)
	}
	return nil
}

// source sends Warmup records, then the measured ones, then end markers.
// With a rate, record i is due at start + i/rate and carries that intended
// time: a send that is late (the transport back-pressured or the sender
// stalled) shows as latency instead of silently thinning the samples.
func (s *side) source() error {
	batch := max(s.p.Batch, 1)
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, s.p.Size)
	}
	peer := uint64(s.p.Peer) << peerShift
	var interval float64
	if s.p.RateHz > 0 {
		interval = 1e9 / s.p.RateHz
	}
	start := ringbuf.MonotonicNS()
	send := func(i int, now int64) error {
		if interval > 0 {
			due := start + int64(float64(i)*interval)
			for now < due {
				now = ringbuf.MonotonicNS()
			}
			putHeader(bufs[0], peer|uint64(i), due)
			for _, tx := range s.tx {
				if err := tx.Send(bufs[0]); err != nil {
					return err
				}
			}
			return nil
		}
		for k := range bufs {
			putHeader(bufs[k], peer|uint64(i+k), now)
		}
		for _, tx := range s.tx {
			var err error
			if batch > 1 {
				err = tx.SendBatch(bufs)
			} else {
				err = tx.Send(bufs[0])
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	step := 1
	if interval == 0 {
		step = batch
	}
	i := 0
	for ; i < s.p.Warmup; i += step {
		if err := send(i, ringbuf.MonotonicNS()); err != nil {
			return err
		}
	}
	u0, f0 := s.begin()
	t0 := ringbuf.MonotonicNS()
	if interval > 0 {
		start = t0 - int64(float64(i)*interval)
	}
	more := s.deadline(t0)
	n := 0
	for now := t0; more(n, now); now = ringbuf.MonotonicNS() {
		if err := send(i, now); err != nil {
			return err
		}
		i += step
		n += step
	}
	s.end(u0, f0)
	s.res.Records = int64(n)
	for _, tx := range s.tx {
		putHeader(bufs[0], endSeq, 0)
		for range max(s.p.Ends, 1) {
			if err := tx.Send(bufs[0]); err != nil {
				return err
			}
		}
		if f, ok := tx.(flusher); ok {
			if err := f.Flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// sink receives until each Rx has seen its end markers. Latency modes
// record arrival - stamp per publishing peer; throughput notes when the
// first measured and the last record arrived.
func (s *side) sink() error {
	latency := s.p.Mode != ModeThroughput
	limit := 1
	if s.p.Batch > 1 {
		limit = 256
	}
	var mu sync.Mutex
	s.res.hdrLocal = map[int]*Histogram{}
	var u0 usage
	var f0 uint64
	started := false
	var total int64
	var first, last int64
	var wg sync.WaitGroup
	errs := make([]error, len(s.rx))
	for k, rx := range s.rx {
		loop := func() {
			hists := map[int]*Histogram{}
			dst := make([]byte, s.p.Size)
			ends := 0
			var n int64
			var f, l int64
			var perr error
			crossed := s.p.Warmup == 0
			h := func(p []byte) {
				seq, stamp := readHeader(p)
				if seq == endSeq {
					ends++
					return
				}
				copy(dst, p)
				if int(seq&indexMask) < s.p.Warmup {
					crossed = crossed || int(seq&indexMask) == s.p.Warmup-1
					return
				}
				crossed = true
				now := ringbuf.MonotonicNS()
				if latency {
					peer := int(seq >> peerShift)
					hh := hists[peer]
					if hh == nil {
						hh = NewHistogram()
						hists[peer] = hh
					}
					hh.Record(now - stamp)
				}
				if n == 0 {
					f = now
				}
				l = now
				n++
			}
			single := len(s.rx) == 1
			for ends < max(s.p.Ends, 1) {
				if single && !started && crossed {
					// One receiver: count from the end of the warm-up
					// (the next record is the first measured one).
					u0, f0 = s.begin()
					started = true
				}
				if _, err := rx.Recv(h, limit); err != nil {
					perr = err
					break
				}
			}
			mu.Lock()
			defer mu.Unlock()
			errs[k] = perr
			for peer, hh := range hists {
				if have := s.res.hdrLocal[peer]; have != nil {
					have.Merge(hh)
				} else {
					s.res.hdrLocal[peer] = hh
				}
			}
			total += n
			if n > 0 && (first == 0 || f < first) {
				first = f
			}
			last = max(last, l)
		}
		if len(s.rx) == 1 {
			loop()
		} else {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if s.p.CPU >= 0 && !s.p.NoPin {
					if restore, err := numa.PinThread(s.p.CPU); err == nil {
						defer restore()
					}
				}
				loop()
			}()
		}
	}
	if len(s.rx) > 1 {
		u0, f0 = s.begin()
		started = true
		wg.Wait()
	}
	if !started {
		u0, f0 = s.begin()
	}
	s.end(u0, f0)
	s.res.Records, s.res.FirstNS, s.res.LastNS = total, first, last
	return errors.Join(errs...)
}

// runLocal runs a peer side in a goroutine of this process (in-process
// transports), with the same ready/go handshake as a child process.
func runLocal(ctx context.Context, env *procEnv, p sidePlan) *localPeer {
	lp := &localPeer{ready: make(chan error, 1), goCh: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(lp.done)
		s, err := openSide(env, p)
		lp.ready <- err
		if err != nil {
			lp.err = err
			return
		}
		defer s.close()
		select {
		case <-lp.goCh:
		case <-ctx.Done():
			lp.err = ctx.Err()
			return
		}
		lp.res, lp.err = s.run()
	}()
	return lp
}

type localPeer struct {
	ready chan error
	goCh  chan struct{}
	done  chan struct{}
	res   sideResult
	err   error
}

package bench

// Interleaved runs: the paths of a comparison (the floor and the Kaelix
// transports, the sockets, NATS, shmipc-go) share one pair of processes
// and take turns in blocks, so that every path sees the same machine
// phases (these VMs switch between fast and slow phases lasting seconds;
// two back-to-back runs can differ by 2x). A round is one block of every
// path, in a fixed order; round 0 is a warm-up and is discarded. Claims
// take, for every round, the ratio of the two paths' block figures and
// report the median over rounds with the spread (see claims.go).
//
// Pingpong: the ping side runs round trips on path i for BlockNS, then
// sends a block marker that the echo side returns before it moves to path
// i+1. Throughput: the source sends on path i for BlockNS (checking the
// clock every 256 records), then a block marker, flushes, and waits for
// the sink's acknowledgement on a futex-floor mailbox (the ack link)
// before it starts path i+1, so no block begins with a backlog queued by
// the previous one. The sink times a block from its first record to the
// marker, without reading the clock per record.
//
// Each side counts allocations, read/write syscalls and its transport's
// futex calls per path, at block boundaries (outside the timed loop).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kaelix-io/kaelix/ringbuf"
)

// blockSeq marks the end of a block.
const blockSeq = endSeq - 1

// Interleaving defaults.
const (
	// DefaultBlock is the length of one path's block in a round.
	DefaultBlock = 20 * time.Millisecond
	// clockEvery is how many records a throughput source sends between
	// clock reads.
	clockEvery = 256
	// blockSkip round trips open every pingpong block untimed: the first
	// round trips after a switch pay for caches the other paths evicted.
	blockSkip = 16
)

// blockStat is one path's figures in one round.
type blockStat struct {
	P50  int64 `json:"p50,omitempty"`  // pingpong: RTT percentiles of the block, ns
	P99  int64 `json:"p99,omitempty"`  //
	P999 int64 `json:"p999,omitempty"` //
	N    int64 `json:"n"`              // round trips (pingpong) or records (throughput sink)
	NS   int64 `json:"ns,omitempty"`   // throughput sink: first record to the marker
}

// pathResult is one side's figures for one path of an interleaved run.
type pathResult struct {
	Hist    string      `json:"hist,omitempty"`
	Records int64       `json:"records"`
	Mallocs uint64      `json:"mallocs"`
	SysRW   uint64      `json:"sys_rw"`
	Futex   uint64      `json:"futex"`
	HaveSys bool        `json:"have_sys"`
	Blocks  []blockStat `json:"blocks,omitempty"` // measured rounds only
	hist    *Histogram
}

// pathUsage accumulates a side's counters for one path across blocks.
func (s *side) pathBegin(i int) (usage, uint64) { return readUsage(), s.pathFutex(i) }

func (s *side) pathEnd(i int, u0 usage, f0 uint64) {
	u := diffUsage(u0, readUsage())
	pr := &s.res.Paths[i]
	pr.Mallocs += u.mallocs
	pr.SysRW += u.sysRW
	pr.HaveSys = u.haveSys
	pr.Futex += s.pathFutex(i) - f0
}

// pathFutex is the futex calls path i's ends of this side counted (not
// the ack link's).
func (s *side) pathFutex(i int) uint64 {
	var n uint64
	ends := []any{at(s.tx, i), at(s.rx, i)}
	switch s.p.Role {
	case "isource":
		ends = ends[:1]
	case "isink":
		ends = ends[1:]
	}
	for _, x := range ends {
		if f, ok := x.(futexCounter); ok {
			n += f.futexCalls()
		}
	}
	return n
}

func at[T any](s []T, i int) any {
	if i < len(s) {
		return s[i]
	}
	return nil
}

func (s *side) initPaths() {
	s.res.Paths = make([]pathResult, s.p.NumPaths)
}

// iping is the ping side of an interleaved pingpong: tx[i] and rx[i] are
// path i's ends.
func (s *side) iping() error {
	s.initPaths()
	buf := make([]byte, s.p.Size)
	var want uint64
	bad := false
	h := func(p []byte) {
		if seq, _ := readHeader(p); seq != want {
			bad = true
		}
	}
	seq := uint64(0)
	round := func(i int, marker bool) error {
		want = seq
		if marker {
			want = blockSeq
		} else {
			seq++
		}
		putHeader(buf, want, 0)
		if err := s.tx[i].Send(buf); err != nil {
			return err
		}
		if _, err := s.rx[i].Recv(h, 1); err != nil {
			return err
		}
		if bad {
			return fmt.Errorf("%w (path %s)", errBadEcho, s.p.PathNames[i])
		}
		return nil
	}
	blk := NewHistogram()
	for r := 0; r <= s.p.Rounds; r++ {
		measured := r > 0
		for i := range s.p.NumPaths {
			pr := &s.res.Paths[i]
			if measured && pr.hist == nil {
				pr.hist = NewHistogram()
			}
			var u0 usage
			var f0 uint64
			if measured {
				u0, f0 = s.pathBegin(i)
			}
			blk.Reset()
			start := ringbuf.MonotonicNS()
			end := start + s.p.BlockNS
			now := start
			for n := 0; ; n++ {
				if err := round(i, false); err != nil {
					return err
				}
				t1 := ringbuf.MonotonicNS()
				if n >= blockSkip {
					blk.Record(t1 - now)
				}
				now = t1
				if now >= end && n >= 2*blockSkip {
					break
				}
			}
			if measured {
				s.pathEnd(i, u0, f0)
				sum := blk.Summary()
				pr.Blocks = append(pr.Blocks, blockStat{P50: sum.P50, P99: sum.P99, P999: sum.P999, N: sum.Samples})
				pr.Records += sum.Samples
				pr.hist.Merge(blk)
			}
			if err := round(i, true); err != nil {
				return err
			}
		}
	}
	putHeader(buf, endSeq, 0)
	return s.tx[0].Send(buf)
}

// iecho is the echo side of an interleaved pingpong.
func (s *side) iecho() error {
	s.initPaths()
	buf := make([]byte, s.p.Size)
	var seq uint64
	h := func(p []byte) {
		copy(buf, p)
		seq, _ = readHeader(p)
	}
	for r := 0; ; r++ {
		for i := range s.p.NumPaths {
			measured := r > 0
			var u0 usage
			var f0 uint64
			if measured {
				u0, f0 = s.pathBegin(i)
			}
			for {
				if _, err := s.rx[i].Recv(h, 1); err != nil {
					return err
				}
				if seq == endSeq {
					if i != 0 || r != s.p.Rounds+1 {
						return fmt.Errorf("%w: end marker in round %d path %d", ErrPeer, r, i)
					}
					return nil
				}
				if seq == blockSeq && measured {
					s.pathEnd(i, u0, f0)
				}
				if err := s.tx[i].Send(buf); err != nil {
					return err
				}
				if seq == blockSeq {
					break
				}
			}
		}
	}
}

type flusher interface{ Flush() error }

// isource is the source side of an interleaved throughput run: tx[i] is
// path i's data end, rx[0] the ack link.
func (s *side) isource() error {
	s.initPaths()
	maxBatch := 1
	for _, b := range s.p.PathBatch {
		maxBatch = max(maxBatch, b)
	}
	bufs := make([][]byte, maxBatch)
	for i := range bufs {
		bufs[i] = make([]byte, s.p.Size)
	}
	ack := s.rx[0]
	nop := func([]byte) {}
	seqs := make([]uint64, s.p.NumPaths)
	for r := 0; r <= s.p.Rounds; r++ {
		measured := r > 0
		for i := range s.p.NumPaths {
			tx := s.tx[i]
			batch := max(s.p.PathBatch[i], 1)
			chunk := max(clockEvery/batch, 1)
			var u0 usage
			var f0 uint64
			if measured {
				u0, f0 = s.pathBegin(i)
			}
			seq := seqs[i]
			end := ringbuf.MonotonicNS() + s.p.BlockNS
			for {
				for range chunk {
					if batch == 1 {
						putHeader(bufs[0], seq, 0)
						if err := tx.Send(bufs[0]); err != nil {
							return err
						}
						seq++
						continue
					}
					for k := range batch {
						putHeader(bufs[k], seq+uint64(k), 0)
					}
					if err := tx.SendBatch(bufs[:batch]); err != nil {
						return err
					}
					seq += uint64(batch)
				}
				if ringbuf.MonotonicNS() >= end {
					break
				}
			}
			putHeader(bufs[0], blockSeq, 0)
			if err := tx.Send(bufs[0]); err != nil {
				return err
			}
			if f, ok := tx.(flusher); ok {
				if err := f.Flush(); err != nil {
					return err
				}
			}
			if _, err := ack.Recv(nop, 1); err != nil {
				return err
			}
			if measured {
				s.pathEnd(i, u0, f0)
				s.res.Paths[i].Records += int64(seq - seqs[i])
			}
			seqs[i] = seq
		}
	}
	for i, tx := range s.tx {
		putHeader(bufs[0], endSeq, 0)
		if err := tx.Send(bufs[0]); err != nil {
			return err
		}
		if f, ok := tx.(flusher); ok {
			if err := f.Flush(); err != nil {
				return fmt.Errorf("path %d: %w", i, err)
			}
		}
	}
	return nil
}

var errOutOfOrder = errors.New("bench: record out of order")

// isink is the sink side of an interleaved throughput run: rx[i] is path
// i's data end, tx[0] the ack link. It checks that every path's records
// arrive complete and in order.
func (s *side) isink() error {
	s.initPaths()
	dst := make([]byte, s.p.Size)
	ackBuf := make([]byte, MinPayloadBytes)
	var (
		n, first, tm int64
		expect       uint64
		marker, bad  bool
		end          bool
	)
	h := func(p []byte) {
		seq, _ := readHeader(p)
		switch seq {
		case blockSeq:
			tm, marker = ringbuf.MonotonicNS(), true
			return
		case endSeq:
			end = true
			return
		}
		if seq != expect {
			bad = true
		}
		expect++
		copy(dst, p)
		if n == 0 {
			first = ringbuf.MonotonicNS()
		}
		n++
	}
	expects := make([]uint64, s.p.NumPaths)
	for r := 0; r <= s.p.Rounds; r++ {
		measured := r > 0
		for i := range s.p.NumPaths {
			rx := s.rx[i]
			limit := 1
			if s.p.PathBatch[i] > 1 {
				limit = 256
			}
			var u0 usage
			var f0 uint64
			if measured {
				u0, f0 = s.pathBegin(i)
			}
			n, marker, expect = 0, false, expects[i]
			for !marker {
				if _, err := rx.Recv(h, limit); err != nil {
					return err
				}
				if bad {
					return fmt.Errorf("%w on %s: want record %d", errOutOfOrder, s.p.PathNames[i], expect-1)
				}
			}
			expects[i] = expect
			if measured {
				s.pathEnd(i, u0, f0)
				pr := &s.res.Paths[i]
				pr.Records += n
				pr.Blocks = append(pr.Blocks, blockStat{N: n, NS: tm - first})
			}
			putHeader(ackBuf, uint64(r), 0)
			if err := s.tx[0].Send(ackBuf); err != nil {
				return err
			}
		}
	}
	// The end markers: one per path, in order.
	for i, rx := range s.rx {
		end = false
		for !end {
			if _, err := rx.Recv(h, 1); err != nil {
				return fmt.Errorf("path %d end: %w", i, err)
			}
		}
	}
	return nil
}

// blockRate is a throughput block's records/s: n records after the first
// arrival, the marker last (n intervals).
func blockRate(b blockStat) float64 {
	if b.NS <= 0 || b.N < 2 {
		return 0
	}
	return float64(b.N) / (float64(b.NS) / 1e9)
}

// pathKase is one path of an interleaved case.
type pathKase struct {
	t     *transport
	wait  string
	batch int
}

func (p pathKase) name() string {
	n := p.t.name
	if p.wait != "" {
		n += "/" + p.wait
	}
	if p.batch > 1 {
		n += fmt.Sprintf(" batch%d", p.batch)
	}
	return n
}

// Interleaved reports whether mode can run interleaved.
func interleavable(mode string) bool { return mode == ModePingPong || mode == ModeThroughput }

// rounds is how many measured rounds o asks for.
func (o Options) rounds() int {
	if o.Rounds > 0 {
		return o.Rounds
	}
	if o.Duration > 0 {
		return max(3, int(o.Duration/o.block()))
	}
	return 5
}

func (o Options) block() time.Duration {
	if o.Block > 0 {
		return o.Block
	}
	return DefaultBlock
}

// groupName names an interleaved group in the report.
func groupName(o Options, size int) string {
	g := fmt.Sprintf("%s %dB cpus %s", o.Mode, size, cpuString(o.CPUs, 1))
	if o.Label != "" {
		g += " [" + o.Label + "]"
	}
	return g
}

// runInterleaved runs the paths of k in one pair of processes, in rounds
// of one block per path, and returns one row per path.
func (s *Session) runInterleaved(parent context.Context, k kase) (rows []Result, err error) {
	o := k.o
	r := s.r
	_, cancel, env, end := r.begin(parent, o.Timeout)
	defer end()

	var links []linkSpec
	newLink := func(id, transport, wait string, size, batch int) int {
		links = append(links, linkSpec{ID: fmt.Sprintf("c%d-%s", r.seq, id), Transport: transport, Size: size, Pubs: 1, Subs: 1, Batch: batch, Wait: wait, Mode: o.Mode})
		return len(links) - 1
	}
	np := len(k.paths)
	base := sidePlan{Mode: o.Mode, Size: k.size, NumPaths: np, Rounds: o.rounds(), BlockNS: int64(o.block())}
	for _, p := range k.paths {
		base.PathNames = append(base.PathNames, p.name())
		base.PathBatch = append(base.PathBatch, p.batch)
	}
	pp, cp := base, base
	pp.CPU, cp.CPU = cpuOf(o.CPUs, 0), cpuOf(o.CPUs, 1)
	pathLinks := make([][]int, np)
	for i, p := range k.paths {
		if o.Mode == ModePingPong {
			a := newLink(fmt.Sprintf("p%d-ping", i), p.t.name, p.wait, k.size, 0)
			b := newLink(fmt.Sprintf("p%d-pong", i), p.t.name, p.wait, k.size, 0)
			pp.Tx, pp.Rx = append(pp.Tx, endRef{a, 0}), append(pp.Rx, endRef{b, 0})
			cp.Rx, cp.Tx = append(cp.Rx, endRef{a, 0}), append(cp.Tx, endRef{b, 0})
			pathLinks[i] = []int{a, b}
		} else {
			a := newLink(fmt.Sprintf("p%d-data", i), p.t.name, p.wait, k.size, p.batch)
			pp.Tx, cp.Rx = append(pp.Tx, endRef{a, 0}), append(cp.Rx, endRef{a, 0})
			pathLinks[i] = []int{a}
		}
	}
	if o.Mode == ModePingPong {
		pp.Role, cp.Role = "iping", "iecho"
	} else {
		ack := newLink("ack", "futex-floor", "", MinPayloadBytes, 0)
		pp.Rx, cp.Tx = append(pp.Rx, endRef{ack, 0}), append(cp.Tx, endRef{ack, 0})
		pp.Role, cp.Role = "isource", "isink"
	}
	for i := range links {
		t, err := lookupTransport(links[i].Transport)
		if err != nil {
			return nil, err
		}
		if err := t.newLink(r, &links[i]); err != nil {
			return nil, fmt.Errorf("link %s: %w", links[i].ID, err)
		}
	}
	pp.Links, cp.Links = links, links

	c, err := startChild(cp)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.kill()
		}
	}()
	if err := c.waitReady(); err != nil {
		return nil, err
	}
	side, err := openSide(env, pp)
	if err != nil {
		return nil, err
	}
	defer side.close()
	if err := c.start(); err != nil {
		return nil, err
	}
	ringFutex := func(i int) uint64 {
		var n uint64
		if f := k.paths[i].t.futexCalls; f != nil {
			for _, l := range pathLinks[i] {
				n += f(r, &links[l])
			}
		}
		return n
	}
	futex0 := make([]uint64, np)
	for i := range np {
		futex0[i] = ringFutex(i)
	}
	pres, perr := side.run()
	if perr != nil {
		cancel()
		c.kill()
		return nil, perr
	}
	cres, err := c.result()
	if err != nil {
		return nil, err
	}
	if len(pres.Paths) != np || len(cres.Paths) != np {
		return nil, fmt.Errorf("%w: %d and %d path results for %d paths", ErrPeer, len(pres.Paths), len(cres.Paths), np)
	}
	group := groupName(o, k.size)
	for i, p := range k.paths {
		x := Result{Mode: o.Mode, Transport: p.t.name, Wait: p.wait, PayloadBytes: k.size, CPUs: cpuString(o.CPUs, 1), Label: o.Label,
			Group: group, Rounds: o.rounds()}
		if p.t.name == "floor" || p.t.name == "futex-floor" {
			x.Wait = p.t.inherentWait
		}
		a, b := pres.Paths[i], cres.Paths[i]
		records := a.Records
		if o.Mode == ModeThroughput {
			x.Batch = p.batch
			records = b.Records
			if a.Records != b.Records {
				return nil, fmt.Errorf("%w: %s: sent %d measured records, received %d", ErrPeer, p.name(), a.Records, b.Records)
			}
		}
		futex := a.Futex + b.Futex + ringFutex(i) - futex0[i]
		if records > 0 {
			al := float64(a.Mallocs+b.Mallocs) / float64(records)
			x.AllocsPerRecord = &al
			if a.HaveSys && b.HaveSys {
				y := float64(a.SysRW+b.SysRW+futex) / float64(records)
				x.SyscallsPerRecord = &y
			}
			if p.t.futexCalls != nil || futex > 0 || p.t.name == "futex-floor" {
				fu := float64(futex) / float64(records)
				x.FutexPerRecord = &fu
			}
		}
		if o.Mode == ModePingPong {
			h, err := DecodeHistogram(a.Hist)
			if err != nil {
				return nil, err
			}
			sum := h.Summary()
			x.setSummary(sum)
			x.OneWayP50NS, x.OneWayP99NS = sum.P50/2, sum.P99/2
			x.hist = h
			for _, bl := range a.Blocks {
				x.RoundP50NS = append(x.RoundP50NS, bl.P50)
				x.RoundP99NS = append(x.RoundP99NS, bl.P99)
				x.RoundP999NS = append(x.RoundP999NS, bl.P999)
			}
		} else {
			var n, ns int64
			for _, bl := range b.Blocks {
				x.RoundRecordsPerS = append(x.RoundRecordsPerS, blockRate(bl))
				n, ns = n+bl.N, ns+bl.NS
			}
			x.Samples = records
			if ns > 0 {
				x.RecordsPerS = float64(n) / (float64(ns) / 1e9)
				x.BytesPerS = x.RecordsPerS * float64(k.size)
			}
		}
		rows = append(rows, x)
	}
	return rows, nil
}

// runGroup runs an interleaved group and remembers it for re-runs. If the
// group fails as a whole, each path runs on its own (not interleaved:
// its rows have no Group) and a note says so.
func (s *Session) runGroup(ctx context.Context, k kase) ([]Result, error) {
	if s.groups == nil {
		s.groups = map[string]kase{}
	}
	s.groups[groupName(k.o, k.size)] = k
	rows, err := s.runInterleaved(ctx, k)
	if err == nil || ctx.Err() != nil {
		return rows, err
	}
	s.Report.Notes = append(s.Report.Notes, fmt.Sprintf("%s: interleaved run FAILED (%v); each path runs on its own, not interleaved", groupName(k.o, k.size), err))
	var out []Result
	for _, p := range k.paths {
		one := kase{o: k.o, t: p.t, wait: p.wait, size: k.size, batch: p.batch}
		r, err := s.runRepeated(ctx, one)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			s.Report.Notes = append(s.Report.Notes, fmt.Sprintf("%s %s %dB: FAILED: %v", k.o.Mode, p.name(), k.size, err))
			continue
		}
		out = append(out, r...)
	}
	return out, nil
}

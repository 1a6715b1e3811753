package bench

import (
	"fmt"
	"slices"
	"strings"
)

// Claim is one of issue 12's claims, judged from one report's rows.
// Comparisons are made round by round between two rows of one
// interleaved group (measured in the same two processes, in alternating
// blocks): Ratio is the median over the Rounds rounds of the per-round
// ratio, Min and Max its spread. A comparison whose rows are not in one
// group is not judged ("not measured"), except where the claim says so.
type Claim struct {
	Claim   string  `json:"claim"`
	Status  string  `json:"status"` // ClaimMet, ClaimNotMet, ClaimInvalid or ClaimNotMeasured
	Figures string  `json:"figures"`
	Group   string  `json:"group,omitempty"`
	Rounds  int     `json:"rounds,omitempty"`
	Ratio   float64 `json:"ratio,omitempty"`
	Min     float64 `json:"ratio_min,omitempty"`
	Max     float64 `json:"ratio_max,omitempty"`
	// Reruns is how many times the group was run again because a Kaelix
	// path beat its floor (RunSuite).
	Reruns int `json:"reruns,omitempty"`
}

// Claim statuses.
const (
	ClaimMet         = "met"
	ClaimNotMet      = "NOT met"
	ClaimNotMeasured = "not measured"
	// ClaimInvalid: the Kaelix side beat its own floor by more than the
	// timer resolution (latency) or in the median round (throughput).
	// A floor is the least the machine allows; beating it is noise or a
	// broken floor, never a win.
	ClaimInvalid = "invalid"
)

// Placements the suite runs (Result.CPUs).
const (
	CrossCore = "0,1"
	SameCore  = "0,0"
	// Unpinned: Go channels run as a Go program runs them (no
	// LockOSThread, the default GOMAXPROCS).
	Unpinned = "unpinned"
)

type finder struct{ rows []Result }

// find returns the first row matching; batch 0 matches any. The runs of
// Kaelix alone (AloneLabel) are only for the allocation claims.
func (f finder) find(mode, transport, wait string, size, batch int, cpus string) *Result {
	for i := range f.rows {
		x := &f.rows[i]
		if x.Mode == mode && x.Transport == transport && x.Peer == 0 && x.Label != AloneLabel &&
			(wait == "" || x.Wait == wait) && (size == 0 || x.PayloadBytes == size) &&
			(batch == 0 || x.Batch == batch) && (cpus == "" || x.CPUs == cpus) {
			return x
		}
	}
	return nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func status(ok bool) string {
	if ok {
		return ClaimMet
	}
	return ClaimNotMet
}

// metric is a figure of a row, per round and overall.
type metric struct {
	name   string
	rounds func(*Result) []float64
	all    func(*Result) float64
	fmt    func(float64) string
	rate   bool // higher is better (records/s)
}

func ints(v []int64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func fmtNSF(v float64) string { return fmtNS(int64(v)) }

var (
	mP50  = metric{"p50", func(x *Result) []float64 { return ints(x.RoundP50NS) }, func(x *Result) float64 { return float64(x.P50NS) }, fmtNSF, false}
	mP99  = metric{"p99", func(x *Result) []float64 { return ints(x.RoundP99NS) }, func(x *Result) float64 { return float64(x.P99NS) }, fmtNSF, false}
	mP999 = metric{"p99.9", func(x *Result) []float64 { return ints(x.RoundP999NS) }, func(x *Result) float64 { return float64(x.P999NS) }, fmtNSF, false}
	mRate = metric{"rec/s", func(x *Result) []float64 { return x.RoundRecordsPerS }, func(x *Result) float64 { return x.RecordsPerS }, fmtRate, true}
)

// comparison is a per-round comparison of row a against row b.
type comparison struct {
	ok                  bool // same group, same rounds
	ratio, lo, hi       float64
	rounds              int
	medA, medB, medDiff float64
}

func compare(a, b *Result, m metric) comparison {
	if a == nil || b == nil || a.Group == "" || a.Group != b.Group {
		return comparison{}
	}
	ra, rb := m.rounds(a), m.rounds(b)
	if len(ra) == 0 || len(ra) != len(rb) {
		return comparison{}
	}
	var q, d []float64
	for i := range ra {
		if rb[i] > 0 && ra[i] > 0 {
			q = append(q, ra[i]/rb[i])
			d = append(d, ra[i]-rb[i])
		}
	}
	if len(q) == 0 {
		return comparison{}
	}
	return comparison{ok: true, ratio: medianF(q), lo: slices.Min(q), hi: slices.Max(q), rounds: len(q),
		medA: medianF(ra), medB: medianF(rb), medDiff: medianF(d)}
}

// judge turns a comparison into a claim: want(ratio) decides met; floor
// says b is a floor of a, so a beating it makes the claim invalid.
func judge(claim string, a, b *Result, m metric, bname string, want func(float64) bool, floor bool, resNS float64) Claim {
	c := Claim{Claim: claim, Status: ClaimNotMeasured}
	switch {
	case a == nil || b == nil:
		c.Figures = "rows missing"
		return c
	}
	cmp := compare(a, b, m)
	if !cmp.ok {
		c.Figures = fmt.Sprintf("%s %s vs %s %s: not in one interleaved group, not judged", a.Transport, m.fmt(m.all(a)), bname, m.fmt(m.all(b)))
		return c
	}
	c.Group, c.Rounds, c.Ratio, c.Min, c.Max = a.Group, cmp.rounds, cmp.ratio, cmp.lo, cmp.hi
	c.Figures = fmt.Sprintf("%s %s vs %s %s (medians of %d rounds): median per-round ratio %.2f× (rounds %.2f–%.2f×)",
		m.name, m.fmt(cmp.medA), bname, m.fmt(cmp.medB), cmp.rounds, cmp.ratio, cmp.lo, cmp.hi)
	c.Status = status(want(cmp.ratio))
	if floor {
		beat := false
		if m.rate {
			beat = cmp.ratio > 1
		} else {
			beat = cmp.medDiff < -resNS
		}
		if beat {
			c.Status = ClaimInvalid
			c.Figures += fmt.Sprintf("; the Kaelix side beats its floor (timer resolution %.0f ns): noise or a broken floor", resNS)
		}
	}
	return c
}

// EvaluateClaims judges issue 12's claims from r's rows. A claim whose
// rows are missing, or not in one interleaved group, is "not measured",
// never met. Sizes: the suite's latency runs use pingSize-byte payloads,
// its throughput runs 32, 64 and 4096 bytes.
func EvaluateClaims(r *Report, pingSize int) []Claim {
	f := finder{r.Results}
	res := float64(max(r.Machine.TimerResolutionNS, 1))
	var out []Claim
	add := func(c Claim) { out = append(out, c) }
	le := func(q float64) func(float64) bool { return func(x float64) bool { return x <= q } }
	ge := func(q float64) func(float64) bool { return func(x float64) bool { return x >= q } }
	pp := func(transport, wait, cpus string) *Result {
		return f.find(ModePingPong, transport, wait, pingSize, 0, cpus)
	}

	// Busy-spin ping-pong against the floor.
	spin, floor := pp("kaelix-spsc", "busy-spin", CrossCore), pp("floor", "", CrossCore)
	add(judge("busy-spin ping-pong, Kaelix SPSC (TryPublish + Poll): p50 RTT ≤ 1.1× the floor", spin, floor, mP50, "floor", le(1.1), true, res))
	add(judge("busy-spin ping-pong, Kaelix SPSC: p99 RTT ≤ 1.5× the floor's p99", spin, floor, mP99, "floor", le(1.5), true, res))
	add(judge("busy-spin ping-pong, Kaelix SPSC: p99.9 RTT ≤ 2× the floor's p99.9", spin, floor, mP999, "floor", le(2), true, res))
	// Wait strategies against busy-spin.
	add(judge("yield ping-pong (peer on its own core): p50 ≤ 1.5× busy-spin", pp("kaelix-spsc", "yield", CrossCore), spin, mP50, "busy-spin", le(1.5), false, res))
	add(judge("backoff ping-pong (records inside the spin window): p50 ≤ 1.2× busy-spin", pp("kaelix-spsc", "backoff", CrossCore), spin, mP50, "busy-spin", le(1.2), false, res))
	// Blocking against the futex floor and the sockets, both placements.
	for _, place := range []struct{ cpus, name string }{{CrossCore, "cross-core"}, {SameCore, "same-core"}} {
		blk, fut := pp("kaelix-spsc", "blocking", place.cpus), pp("futex-floor", "", place.cpus)
		add(judge(fmt.Sprintf("blocking ping-pong %s (cpus %s): p50 ≤ 1.2× the futex floor", place.name, place.cpus), blk, fut, mP50, "futex floor", le(1.2), true, res))
		for _, peer := range []string{"uds", "shmipc-go", "nats"} {
			if place.cpus == SameCore && peer != "uds" {
				continue
			}
			p := pp(peer, "", place.cpus)
			add(judge(fmt.Sprintf("blocking ping-pong %s (cpus %s): p50 below %s", place.name, place.cpus, peer), blk, p, mP50, peer, func(q float64) bool { return q < 1 }, false, res))
			add(judge(fmt.Sprintf("blocking ping-pong %s (cpus %s): p99 below %s", place.name, place.cpus, peer), blk, p, mP99, peer, func(q float64) bool { return q < 1 }, false, res))
		}
	}

	// Throughput.
	thr := func(transport string, size, batch int) *Result {
		wait := ""
		if strings.HasPrefix(transport, "kaelix-") {
			wait = "busy-spin"
		}
		return f.find(ModeThroughput, transport, wait, size, batch, CrossCore)
	}
	abs := func(claim string, x *Result, min float64) {
		c := Claim{Claim: claim, Status: ClaimNotMeasured, Figures: "rows missing"}
		if x != nil && len(x.RoundRecordsPerS) > 0 {
			m := medianF(x.RoundRecordsPerS)
			c.Status, c.Group, c.Rounds = status(m >= min), x.Group, len(x.RoundRecordsPerS)
			c.Figures = fmt.Sprintf("median over %d rounds %s rec/s (rounds %s–%s)", c.Rounds, fmtRate(m), fmtRate(slices.Min(x.RoundRecordsPerS)), fmtRate(slices.Max(x.RoundRecordsPerS)))
		}
		add(c)
	}
	k32 := thr("kaelix-spsc", 32, 1)
	abs("throughput 32 B one at a time: Kaelix SPSC ≥ 80 M records/s end to end", k32, 80e6)
	add(judge("throughput 32 B one at a time: Kaelix SPSC ≥ 60% of copy-floor (the Go floor ring)", k32, thr("copy-floor", 32, 1), mRate, "copy-floor", ge(0.6), true, res))
	abs("throughput 64 B one at a time: Kaelix SPSC ≥ 60 M records/s", thr("kaelix-spsc", 64, 1), 60e6)
	add(judge("throughput 64 B one at a time: Kaelix SPSC ≥ 60% of copy-floor", thr("kaelix-spsc", 64, 1), thr("copy-floor", 64, 1), mRate, "copy-floor", ge(0.6), true, res))
	k4k := thr("kaelix-spsc", 4096, 1)
	{
		c := Claim{Claim: "throughput 4 KiB one at a time: Kaelix SPSC ≥ 50% of single-thread memcpy bandwidth", Status: ClaimNotMeasured, Figures: "rows missing"}
		if k4k != nil && r.Machine.MemcpyBytesPerS > 0 && len(k4k.RoundRecordsPerS) > 0 {
			bw := medianF(k4k.RoundRecordsPerS) * 4096
			q := bw / r.Machine.MemcpyBytesPerS
			c.Status, c.Group, c.Rounds, c.Ratio = status(q >= 0.5), k4k.Group, len(k4k.RoundRecordsPerS), q
			c.Figures = fmt.Sprintf("%.0f MB/s (median of %d rounds) vs memcpy %.0f MB/s = %.2f×", bw/1e6, c.Rounds, r.Machine.MemcpyBytesPerS/1e6, q)
		}
		add(c)
	}
	for _, size := range []int{32, 64, 4096} {
		add(judge(fmt.Sprintf("throughput %d B: Kaelix SPSC batched (32 per publish) never slower than one at a time", size),
			thr("kaelix-spsc", size, 32), thr("kaelix-spsc", size, 1), mRate, "one at a time", ge(1), false, res))
	}
	add(judge("throughput 64 B one at a time: Kaelix SPSC ≥ 10× Unix domain sockets", thr("kaelix-spsc", 64, 1), thr("uds", 64, 1), mRate, "uds", ge(10), false, res))
	for _, peer := range []string{"shmipc-go", "nats"} {
		add(judge(fmt.Sprintf("throughput 64 B batched: Kaelix SPSC above %s", peer), thr("kaelix-spsc", 64, 32), thr(peer, 64, 32), mRate, peer, func(q float64) bool { return q > 1 }, false, res))
	}
	{
		k, ch := thr("kaelix-spsc", 64, 1), f.find(ModeThroughput, "chan", "", 64, 1, Unpinned)
		c := Claim{Claim: "throughput 64 B one at a time: Kaelix SPSC (two processes) above Go channels (one process, unpinned, default GOMAXPROCS; not interleaved: a separate run)", Status: ClaimNotMeasured, Figures: "rows missing"}
		if k != nil && ch != nil && ch.RecordsPerS > 0 {
			q := ratio(k.RecordsPerS, ch.RecordsPerS)
			c.Status, c.Ratio = status(q > 1), q
			c.Figures = fmt.Sprintf("%s rec/s vs chan %s rec/s = %.2f×", fmtRate(k.RecordsPerS), fmtRate(ch.RecordsPerS), q)
		}
		add(c)
	}
	// The Go floor against the C ring (alternated runs).
	for _, size := range []int{32, 64} {
		g, cr := f.findGroup("copy-floor", fmt.Sprintf("c-reference %dB", size)), f.findGroup(CRingTransport, fmt.Sprintf("c-reference %dB", size))
		add(judge(fmt.Sprintf("copy-floor (Go) within 20%% of the C ring, %d B one at a time (alternated runs of the two programs)", size), g, cr, mRate, "C ring", ge(0.8), false, res))
	}

	// Zero syscalls and allocations on the hot paths. Allocations are
	// judged on the runs of Kaelix alone in its processes when the report
	// has them (see Suite).
	haveAlone := slices.ContainsFunc(r.Results, func(x Result) bool { return x.Label == AloneLabel })
	allocRow := func(x Result) bool { return !haveAlone || x.Label == AloneLabel }
	var sysFig, allocFig, spinFig []string
	sysOK, allocOK, spinOK := true, true, true
	sysN, allocN, spinN := 0, 0, 0
	for _, x := range r.Results {
		if !strings.HasPrefix(x.Transport, "kaelix-") || x.Wait != "busy-spin" || x.Peer != 0 {
			continue
		}
		// Oneway runs at a fixed rate below capacity, so the publisher is
		// never back-pressured. Judged on the ring's futex counters, the
		// only syscall the publish path can make; the processes'
		// read/write counts are shown beside them.
		if x.Mode == ModeOneway && x.FutexPerRecord != nil {
			sysN++
			sysOK = sysOK && *x.FutexPerRecord == 0
			sysFig = append(sysFig, fmt.Sprintf("%s %s %dB: futex %s per record (all syscalls of both processes: %s per record)",
				x.Mode, x.Transport, x.PayloadBytes, fmtPer(x.FutexPerRecord), fmtPer(x.SyscallsPerRecord)))
		}
		if x.Mode == ModeThroughput && x.FutexPerRecord != nil && x.Label != AloneLabel {
			spinN++
			spinOK = spinOK && *x.FutexPerRecord == 0
			spinFig = append(spinFig, fmt.Sprintf("%s %dB batch %d: %s", x.Transport, x.PayloadBytes, x.Batch, fmtPer(x.FutexPerRecord)))
		}
		if x.AllocsPerRecord != nil && (x.Mode == ModeThroughput || x.Mode == ModePingPong) && allocRow(x) {
			allocN++
			allocOK = allocOK && *x.AllocsPerRecord < 0.001
			allocFig = append(allocFig, fmt.Sprintf("%s %s %dB%s: %s", x.Mode, x.Transport, x.PayloadBytes, batchSuffix(x.Batch), fmtPer(x.AllocsPerRecord)))
		}
	}
	nm := func(claim string, ok bool, figs []string, n int) {
		c := Claim{Claim: claim, Status: status(ok), Figures: strings.Join(dedupe(figs), "; ")}
		if n == 0 {
			c.Status, c.Figures = ClaimNotMeasured, "rows missing"
		}
		add(c)
	}
	nm("a publisher with no sleeping subscriber makes 0 syscalls (oneway at a fixed rate, busy-spin subscriber; the ring's FUTEX_WAKE/WAIT counters)", sysOK, sysFig, sysN)
	nm("a busy-spin pair at full throughput makes no futex call (the ring's counters, both sides)", spinOK, spinFig, spinN)
	var waitFig []string
	waitOK, waitN := true, 0
	for _, x := range r.Results {
		if strings.HasPrefix(x.Transport, "kaelix-") && (x.Wait == "backoff" || x.Wait == "blocking") && x.Peer == 0 && x.Mode == ModePingPong && x.AllocsPerRecord != nil && allocRow(x) {
			waitN++
			waitOK = waitOK && *x.AllocsPerRecord < 0.001
			waitFig = append(waitFig, fmt.Sprintf("%s %s/%s %dB [%s]: %s", x.Mode, x.Transport, x.Wait, x.PayloadBytes, x.CPUs, fmtPer(x.AllocsPerRecord)))
		}
	}
	nm("0 heap allocations per message when the subscriber waits (backoff, blocking: Subscriber.PollWait; both processes)", waitOK, waitFig, waitN)
	nm("0 heap allocations per message on the Kaelix hot paths (TryPublish + Poll, busy-spin; both processes; < 0.001 per record counts as 0: runtime background)", allocOK, allocFig, allocN)
	return out
}

// findGroup returns the row of transport in group.
func (f finder) findGroup(transport, group string) *Result {
	for i := range f.rows {
		if f.rows[i].Transport == transport && f.rows[i].Group == group {
			return &f.rows[i]
		}
	}
	return nil
}

func batchSuffix(b int) string {
	if b > 1 {
		return fmt.Sprintf(" batch %d", b)
	}
	return ""
}

func dedupe(s []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func medianF(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

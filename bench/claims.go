package bench

import (
	"fmt"
	"slices"
	"strings"
)

// Claim is one of issue 6's claims, judged from one report's rows as
// ratios within the run.
type Claim struct {
	Claim   string `json:"claim"`
	Status  string `json:"status"` // ClaimMet, ClaimNotMet or ClaimNotMeasured
	Figures string `json:"figures"`
}

// Claim statuses.
const (
	ClaimMet         = "met"
	ClaimNotMet      = "NOT met"
	ClaimNotMeasured = "not measured"
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

// find returns the first row matching; batch 0 matches any.
func (f finder) find(mode, transport, wait string, size, batch int, cpus string) *Result {
	for i := range f.rows {
		x := &f.rows[i]
		if x.Mode == mode && x.Transport == transport && x.Peer == 0 &&
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

// EvaluateClaims judges the claims from r's rows. A claim whose
// rows are missing is "not measured", never met. Sizes: the suite's
// latency runs use pingSize-byte payloads, its throughput runs 64 and
// 4096 bytes.
func EvaluateClaims(r *Report, pingSize int) []Claim {
	f := finder{r.Results}
	var out []Claim
	add := func(claim string, ok bool, figures string, present bool) {
		c := Claim{Claim: claim, Status: status(ok), Figures: figures}
		if !present {
			c.Status = ClaimNotMeasured
		}
		out = append(out, c)
	}

	// 1. busy-spin ping-pong vs the floor.
	spin := f.find(ModePingPong, "kaelix-spsc", "busy-spin", pingSize, 0, CrossCore)
	floor := f.find(ModePingPong, "floor", "", pingSize, 0, CrossCore)
	if spin != nil && floor != nil {
		r50, r99 := ratio(float64(spin.P50NS), float64(floor.P50NS)), ratio(float64(spin.P99NS), float64(floor.P99NS))
		add("busy-spin ping-pong, Kaelix SPSC: p50 RTT ≤ 1.5× the floor", r50 <= 1.5,
			fmt.Sprintf("p50 %s vs floor %s = %.2f×", fmtNS(spin.P50NS), fmtNS(floor.P50NS), r50), true)
		add("busy-spin ping-pong, Kaelix SPSC: p99 RTT ≤ 2× the floor", r99 <= 2,
			fmt.Sprintf("p99 %s vs floor %s = %.2f×", fmtNS(spin.P99NS), fmtNS(floor.P99NS), r99), true)
	} else {
		add("busy-spin ping-pong, Kaelix SPSC: p50 RTT ≤ 1.5× the floor", false, "rows missing", false)
		add("busy-spin ping-pong, Kaelix SPSC: p99 RTT ≤ 2× the floor", false, "rows missing", false)
	}

	// 2. backoff within the spin window.
	back := f.find(ModePingPong, "kaelix-spsc", "backoff", pingSize, 0, CrossCore)
	if back != nil && spin != nil {
		r50 := ratio(float64(back.P50NS), float64(spin.P50NS))
		add("backoff ping-pong (records inside the spin window): p50 ≤ 1.2× busy-spin", r50 <= 1.2,
			fmt.Sprintf("p50 %s vs busy-spin %s = %.2f×", fmtNS(back.P50NS), fmtNS(spin.P50NS), r50), true)
		add("backoff ping-pong: p99 < 10 µs (the seed design's figure)", back.P99NS < 10_000,
			fmt.Sprintf("p99 %s (RTT; one way ≈ %s)", fmtNS(back.P99NS), fmtNS(back.P99NS/2)), true)
	} else {
		add("backoff ping-pong (records inside the spin window): p50 ≤ 1.2× busy-spin", false, "rows missing", false)
		add("backoff ping-pong: p99 < 10 µs (the seed design's figure)", false, "rows missing", false)
	}

	// 3. blocking vs the futex floor and UDS, both placements.
	for _, place := range []struct{ cpus, name string }{{CrossCore, "cross-core"}, {SameCore, "same-core"}} {
		blk := f.find(ModePingPong, "kaelix-spsc", "blocking", pingSize, 0, place.cpus)
		fut := f.find(ModePingPong, "futex-floor", "", pingSize, 0, place.cpus)
		uds := f.find(ModePingPong, "uds", "", pingSize, 0, place.cpus)
		claim := fmt.Sprintf("blocking ping-pong %s (cpus %s): p50 ≤ 1.2× the futex floor", place.name, place.cpus)
		if blk != nil && fut != nil {
			q := ratio(float64(blk.P50NS), float64(fut.P50NS))
			add(claim, q <= 1.2, fmt.Sprintf("p50 %s vs futex floor %s = %.2f×", fmtNS(blk.P50NS), fmtNS(fut.P50NS), q), true)
		} else {
			add(claim, false, "rows missing", false)
		}
		claim = fmt.Sprintf("blocking ping-pong %s (cpus %s): better than Unix domain sockets", place.name, place.cpus)
		if blk != nil && uds != nil {
			add(claim, blk.P50NS < uds.P50NS && blk.P99NS < uds.P99NS,
				fmt.Sprintf("p50 %s vs uds %s; p99 %s vs uds %s", fmtNS(blk.P50NS), fmtNS(uds.P50NS), fmtNS(blk.P99NS), fmtNS(uds.P99NS)), true)
		} else {
			add(claim, false, "rows missing", false)
		}
	}

	// 4, 5. throughput, like for like per batch setting.
	for _, batch := range []int{1, 32} {
		bname := "batching off"
		if batch > 1 {
			bname = fmt.Sprintf("batching on (%d per publish)", batch)
		}
		k64 := f.find(ModeThroughput, "kaelix-spsc", "busy-spin", 64, batch, CrossCore)
		fl64 := f.find(ModeThroughput, "copy-floor", "", 64, batch, CrossCore)
		uds64 := f.find(ModeThroughput, "uds", "", 64, batch, CrossCore)
		ch64 := f.find(ModeThroughput, "chan", "", 64, batch, CrossCore)
		k4k := f.find(ModeThroughput, "kaelix-spsc", "busy-spin", 4096, batch, CrossCore)
		fl4k := f.find(ModeThroughput, "copy-floor", "", 4096, batch, CrossCore)
		thr := func(claim string, a, b *Result, ok func(q float64) bool, what string) {
			if a == nil || b == nil || a.RecordsPerS == 0 || b.RecordsPerS == 0 {
				add(claim, false, "rows missing", false)
				return
			}
			q := ratio(a.RecordsPerS, b.RecordsPerS)
			add(claim, ok(q), fmt.Sprintf("%s rec/s vs %s %s rec/s = %.2f×", fmtRate(a.RecordsPerS), what, fmtRate(b.RecordsPerS), q), true)
		}
		thr("throughput 64 B, "+bname+": Kaelix SPSC ≥ 70% of the copy floor", k64, fl64, func(q float64) bool { return q >= 0.7 }, "copy floor")
		thr("throughput 64 B, "+bname+": Kaelix SPSC ≥ 10× Unix domain sockets", k64, uds64, func(q float64) bool { return q >= 10 }, "uds")
		thr("throughput 64 B, "+bname+": Kaelix SPSC above Go channels in one process", k64, ch64, func(q float64) bool { return q > 1 }, "chan")
		thr("throughput 4 KiB, "+bname+": Kaelix SPSC ≥ 80% of the copy floor", k4k, fl4k, func(q float64) bool { return q >= 0.8 }, "copy floor")
	}

	// 6. zero syscalls and allocations on the hot paths.
	var sysFig, allocFig []string
	sysOK, allocOK := true, true
	sysN, allocN := 0, 0
	for _, x := range r.Results {
		if !strings.HasPrefix(x.Transport, "kaelix-") || x.Wait != "busy-spin" || x.Peer != 0 {
			continue
		}
		// Oneway runs at a fixed rate below capacity, so the publisher is
		// never back-pressured (a back-pressured publisher may sleep, which
		// is another case). Judged on the ring's futex counters, the only
		// syscall the publish path can make; the processes' read/write
		// counts are shown beside them.
		if x.Mode == ModeOneway && x.FutexPerRecord != nil {
			sysN++
			sysOK = sysOK && *x.FutexPerRecord == 0
			sysFig = append(sysFig, fmt.Sprintf("%s %s %dB: futex %s per record (all syscalls of both processes: %s per record)",
				x.Mode, x.Transport, x.PayloadBytes, fmtPer(x.FutexPerRecord), fmtPer(x.SyscallsPerRecord)))
		}
		if x.AllocsPerRecord != nil && (x.Mode == ModeThroughput || x.Mode == ModePingPong) {
			allocN++
			allocOK = allocOK && *x.AllocsPerRecord < 0.001
			allocFig = append(allocFig, fmt.Sprintf("%s %s %dB: %s", x.Mode, x.Transport, x.PayloadBytes, fmtPer(x.AllocsPerRecord)))
		}
	}
	add("a publisher with no sleeping subscriber makes 0 syscalls (oneway at a fixed rate, busy-spin subscriber; the ring's FUTEX_WAKE/WAIT counters)",
		sysOK, strings.Join(dedupe(sysFig), "; "), sysN > 0)
	add("0 heap allocations per message on the Kaelix hot paths (TryPublish + Poll, busy-spin; both processes; < 0.001 per record counts as 0: runtime background)",
		allocOK, strings.Join(dedupe(allocFig), "; "), allocN > 0)
	return out
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

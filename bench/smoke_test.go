package bench

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// stallTx holds up one send for stall: a sender blocked by its transport.
type stallTx struct {
	Tx
	n, at int
	stall time.Duration
}

func (s *stallTx) Send(p []byte) error {
	if s.n++; s.n == s.at {
		time.Sleep(s.stall)
	}
	return s.Tx.Send(p)
}

func init() {
	chanT := transports["chan"]
	register(&transport{
		name: "test-stall", inProcess: true, newLink: chanT.newLink, openRx: chanT.openRx,
		openTx: func(e *procEnv, l *linkSpec, end int) (Tx, error) {
			tx, err := chanT.openTx(e, l, end)
			return &stallTx{Tx: tx, at: 1500, stall: 40 * time.Millisecond}, err
		},
		method: "test only",
	})
}

// A sender stalled for 40 ms at 10k records/s leaves ~400 records due
// during the stall; measured from their intended send times they carry it,
// so the corrected p99 is in the milliseconds although the transport is
// fast otherwise.
func TestOnewayCoordinatedOmission(t *testing.T) {
	ctx := context.Background()
	s, err := NewSession(ctx, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := DefaultOptions(ModeOneway)
	o.Transports, o.Count, o.Warmup, o.RateHz, o.Sizes = []string{"test-stall"}, 3000, 100, 10_000, []int{16}
	if err := s.Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	if len(s.Report.Results) != 1 {
		t.Fatalf("rows %+v notes %v", s.Report.Results, s.Report.Notes)
	}
	x := s.Report.Results[0]
	if x.Samples != 3000 {
		t.Errorf("samples %d", x.Samples)
	}
	if x.P99NS < 10_000_000 || x.MaxNS < 30_000_000 {
		t.Errorf("stall not in the corrected tail: p99 %s max %s", fmtNS(x.P99NS), fmtNS(x.MaxNS))
	}
}

// TestSmokeEveryModeAndTransport runs every mode over every transport it
// serves (and every Kaelix wait strategy, batching on and off) with tiny
// counts, and checks the report is complete and well-formed.
// Correctness only: no timing assertions. nats, when built in, is skipped
// under -short (its embedded server takes seconds to start and stop).
func TestSmokeEveryModeAndTransport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var progress io.Writer
	if testing.Verbose() {
		progress = os.Stderr
	}
	s, err := NewSession(ctx, "kaelix-bench smoke", progress)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var names []string
	for _, n := range TransportNames() {
		if strings.HasPrefix(n, "test-") || (n == "nats" && testing.Short()) || (n == "shmipc-go" && raceEnabled) {
			continue
		}
		names = append(names, n)
	}
	type want struct{ mode, transport, wait string }
	var wants []want
	// Every mode over every transport it serves, each Kaelix wait strategy
	// somewhere; one child process per combination costs about a second
	// under -race, so the matrix is kept small.
	steps := []func(o *Options){
		func(o *Options) { o.Mode, o.Transports, o.Waits = ModePingPong, names, []string{"busy-spin"} },
		func(o *Options) {
			o.Mode, o.Transports, o.Waits = ModePingPong, []string{"kaelix-spsc"}, []string{"yield", "backoff", "blocking"}
		},
		func(o *Options) { o.Mode, o.Transports, o.Waits = ModeOneway, names, []string{"backoff"} },
		func(o *Options) {
			o.Mode, o.Transports, o.Waits, o.Batches, o.Count = ModeThroughput, names, []string{"busy-spin"}, []int{8}, 1000
		},
		func(o *Options) {
			o.Mode, o.Transports, o.Waits, o.Batches, o.Count = ModeThroughput, []string{"kaelix-spsc", "uds"}, []string{"yield"}, []int{1}, 1000
		},
		func(o *Options) { o.Mode, o.Transports, o.Waits = ModeFanout, names, []string{"blocking"} },
		func(o *Options) { o.Mode, o.Transports, o.Waits = ModeFanin, names, []string{"busy-spin"} },
	}
	for _, step := range steps {
		o := DefaultOptions(ModePingPong)
		o.Count, o.Warmup, o.Sizes, o.RateHz, o.Peers, o.Timeout = 200, 20, []int{100}, 50_000, 2, time.Minute
		step(&o)
		if err := s.Run(ctx, o); err != nil {
			t.Fatal(err)
		}
		for _, n := range o.Transports {
			t := transports[n]
			if !t.serves(o.Mode) {
				continue
			}
			waits := []string{t.inherentWait}
			if t.kaelix {
				waits = o.Waits
			}
			for _, w := range waits {
				wants = append(wants, want{o.Mode, n, w})
			}
		}
	}
	r := s.Report
	for _, n := range r.Notes {
		if strings.Contains(n, "FAILED") {
			t.Error(n)
		}
	}
	for _, w := range wants {
		if !slices.ContainsFunc(r.Results, func(x Result) bool { return x.Mode == w.mode && x.Transport == w.transport && x.Wait == w.wait }) {
			t.Errorf("no row for %s %s %s", w.mode, w.transport, w.wait)
		}
	}
	for _, x := range r.Results {
		name := x.Mode + " " + x.Name()
		if x.Peer > 0 && transports[x.Transport].shareSub {
			continue // a queue group may give one member every record
		}
		if x.Samples <= 0 {
			t.Errorf("%s: samples %d", name, x.Samples)
		}
		if x.Peer == 0 && (x.AllocsPerRecord == nil || x.SyscallsPerRecord == nil) {
			t.Errorf("%s: allocs/syscalls missing", name)
		}
		switch x.Mode {
		case ModeThroughput:
			if x.RecordsPerS <= 0 || x.BytesPerS != x.RecordsPerS*float64(x.PayloadBytes) || x.P50NS != 0 {
				t.Errorf("%s: throughput fields %+v", name, x)
			}
		default:
			if !(x.P50NS > 0 && x.P50NS <= x.P90NS && x.P90NS <= x.P99NS && x.P99NS <= x.P999NS && x.P999NS <= x.P9999NS && x.P9999NS <= x.MaxNS) {
				t.Errorf("%s: percentiles %+v", name, x)
			}
			if x.RecordsPerS != 0 {
				t.Errorf("%s: records_per_s on a latency row", name)
			}
		}
		if x.Mode == ModePingPong && x.OneWayP50NS != x.P50NS/2 {
			t.Errorf("%s: one-way p50 %d, RTT p50 %d", name, x.OneWayP50NS, x.P50NS)
		}
		if (x.Mode == ModeFanout || x.Mode == ModeFanin) && x.Peers != 2 {
			t.Errorf("%s: peers %d", name, x.Peers)
		}
	}
	dir := t.TempDir()
	if err := r.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Results) != len(r.Results) || back.Machine.Command != "kaelix-bench smoke" || back.Machine.Cores < 1 {
		t.Errorf("results.json: %d rows, machine %+v", len(back.Results), back.Machine)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"## Machine", "## pingpong", "## throughput", "## fanin", "latency-spinning.png", "latency-sleeping.png"} {
		if !strings.Contains(string(md), h) {
			t.Errorf("report.md lacks %q", h)
		}
	}
	for _, name := range []string{"latency-spinning.png", "latency-sleeping.png", "latency-oneway.png", "latency-fanout.png", "latency-fanin.png"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Size() < 1000 {
			t.Errorf("plot %s: %v", name, err)
		}
	}
	hlogs, _ := filepath.Glob(filepath.Join(dir, "hlog", "*.hlog"))
	if len(hlogs) == 0 {
		t.Error("no .hlog files")
	}
}

// TestInterleaved runs a pingpong and a throughput group, each in one
// pair of processes, and checks that every path has its rounds, that the
// records sent and received agree (the sink checks order), and that the
// histograms come out as HdrHistogram logs the library's reader reads.
func TestInterleaved(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := NewSession(ctx, "kaelix-bench interleaved test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const rounds = 3
	ping := DefaultOptions(ModePingPong)
	pingT := []string{"floor", "kaelix-spsc", "uds", "shmipc-go", "chan"}
	if raceEnabled {
		pingT[3] = "tcp" // see raceEnabled
	}
	ping.Transports, ping.Waits, ping.Sizes, ping.Interleave, ping.Rounds, ping.Block = pingT, []string{"busy-spin", "blocking"}, []int{32}, true, rounds, 2*time.Millisecond
	ping.Count, ping.Warmup, ping.CPUs = 200, 20, []int{0, 1}
	thr := DefaultOptions(ModeThroughput)
	thr.Transports, thr.Sizes, thr.Batches, thr.Interleave, thr.Rounds, thr.Block = []string{"copy-floor", "kaelix-spsc", "uds"}, []int{64}, []int{1, 8}, true, rounds, 2*time.Millisecond
	thr.CPUs = []int{0, 1}
	for _, o := range []Options{ping, thr} {
		if err := s.Run(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range s.Report.Notes {
		if strings.Contains(n, "FAILED") {
			t.Error(n)
		}
	}
	want := map[string]int{ModePingPong: 5, ModeThroughput: 6} // paths per group
	got := map[string]int{}
	for _, x := range s.Report.Results {
		name := x.Mode + " " + x.Name()
		if x.Transport == "chan" {
			if x.Group != "" || x.CPUs != Unpinned {
				t.Errorf("%s: group %q cpus %q (want not interleaved, unpinned)", name, x.Group, x.CPUs)
			}
			continue
		}
		got[x.Mode]++
		if x.Group == "" || x.Rounds != rounds || x.Samples <= 0 {
			t.Errorf("%s: group %q rounds %d samples %d", name, x.Group, x.Rounds, x.Samples)
		}
		switch x.Mode {
		case ModePingPong:
			if len(x.RoundP50NS) != rounds || len(x.RoundP99NS) != rounds || x.P50NS <= 0 || x.hist == nil {
				t.Errorf("%s: round figures %v %v p50 %d", name, x.RoundP50NS, x.RoundP99NS, x.P50NS)
			}
		case ModeThroughput:
			if len(x.RoundRecordsPerS) != rounds || x.RecordsPerS <= 0 || x.AllocsPerRecord == nil {
				t.Errorf("%s: round figures %v rate %v", name, x.RoundRecordsPerS, x.RecordsPerS)
			}
		}
	}
	for m, n := range want {
		if got[m] != n {
			t.Errorf("%s: %d interleaved rows, want %d", m, got[m], n)
		}
	}
	dir := t.TempDir()
	files, err := s.Report.WriteHlogs(dir)
	if err != nil || len(files) != 6 {
		t.Fatalf("hlogs %v: %v", files, err)
	}
	f, err := os.Open(filepath.Join(dir, files[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := hdrhistogram.NewHistogramLogReader(f).NextIntervalHistogram()
	if err != nil || h == nil || h.TotalCount() == 0 {
		t.Errorf("%s: read back %v, %v", files[0], h, err)
	}
}

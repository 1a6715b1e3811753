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
		if strings.HasPrefix(n, "test-") || (n == "nats" && testing.Short()) {
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
	for _, h := range []string{"## Machine", "## pingpong", "## throughput", "## fanin", "latency-pingpong.png"} {
		if !strings.Contains(string(md), h) {
			t.Errorf("report.md lacks %q", h)
		}
	}
	for _, mode := range latencyModes {
		st, err := os.Stat(filepath.Join(dir, "latency-"+mode+".png"))
		if err != nil || st.Size() < 1000 {
			t.Errorf("plot for %s: %v", mode, err)
		}
	}
}

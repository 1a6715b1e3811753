package bench

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestHistogramSummary(t *testing.T) {
	h := NewHistogram()
	for v := int64(1); v <= 10000; v++ {
		h.Record(v * 100) // 100 ns .. 1 ms, uniform
	}
	s := h.Summary()
	if s.Samples != 10000 {
		t.Fatalf("samples %d", s.Samples)
	}
	near := func(name string, got, want int64) {
		t.Helper()
		if d := got - want; d < -want/100 || d > want/100 { // 3 significant digits
			t.Errorf("%s = %d, want %d ±1%%", name, got, want)
		}
	}
	near("p50", s.P50, 500_000)
	near("p90", s.P90, 900_000)
	near("p99", s.P99, 990_000)
	near("p99.9", s.P999, 999_000)
	near("max", s.Max, 1_000_000)
	if s.Mean < 495_000 || s.Mean > 506_000 {
		t.Errorf("mean %v", s.Mean)
	}
	if !(s.P50 <= s.P90 && s.P90 <= s.P99 && s.P99 <= s.P999 && s.P999 <= s.P9999 && s.P9999 <= s.Max) {
		t.Errorf("percentiles not monotonic: %+v", s)
	}
	if (&Histogram{h: NewHistogram().h}).Summary() != (Summary{}) {
		t.Error("empty histogram summary not zero")
	}
}

func TestHistogramClampEncodeMerge(t *testing.T) {
	h := NewHistogram()
	h.Record(-5)
	h.Record(1 << 62)
	h.Record(250)
	if h.clamped != 2 || h.Count() != 3 {
		t.Fatalf("clamped %d count %d", h.clamped, h.Count())
	}
	enc, err := h.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeHistogram(enc)
	if err != nil {
		t.Fatal(err)
	}
	if back.Summary() != h.Summary() {
		t.Errorf("round trip: %+v != %+v", back.Summary(), h.Summary())
	}
	back.Merge(h)
	if back.Count() != 6 {
		t.Errorf("merged count %d", back.Count())
	}
	if _, err := DecodeHistogram("not base64!"); !errors.Is(err, ErrBadHistogram) {
		t.Errorf("bad encoding: %v", err)
	}
}

// A closed loop that stalls records one long sample; corrected, the
// samples it failed to take while stalled show up in the tail.
func TestRecordCorrectedShowsStall(t *testing.T) {
	raw, corr := NewHistogram(), NewHistogram()
	const interval = 10_000 // 10 µs between intended samples
	for i := 0; i < 10_000; i++ {
		v := int64(1_000)
		if i == 5_000 {
			v = 50_000_000 // one 50 ms stall
		}
		raw.Record(v)
		corr.RecordCorrected(v, interval)
	}
	if raw.Summary().P99 > 2_000 {
		t.Fatalf("raw p99 %d: the stall should be one sample", raw.Summary().P99)
	}
	if p := corr.Summary().P99; p < 1_000_000 {
		t.Errorf("corrected p99 %d ns: the stall's missed samples are not there", p)
	}
}

func TestScheduleDue(t *testing.T) {
	s := schedule{startNS: 1000, intervalNS: 50_000}
	for i, want := range []int64{1000, 51_000, 101_000} {
		if got := s.due(i); got != want {
			t.Errorf("due(%d) = %d, want %d", i, got, want)
		}
	}
}

func TestParseProcIO(t *testing.T) {
	in := "rchar: 1\nwchar: 2\nsyscr: 30\nsyscw: 12\nread_bytes: 0\n"
	r, w, ok := parseProcIO([]byte(in))
	if !ok || r != 30 || w != 12 {
		t.Errorf("got %d %d %v", r, w, ok)
	}
	if _, _, ok := parseProcIO([]byte("rchar: 1\n")); ok {
		t.Error("ok without syscr/syscw")
	}
	if _, _, ok := parseProcIO([]byte("syscr: 1x\nsyscw: 2\n")); ok {
		t.Error("ok with a bad number")
	}
	if n := testing.AllocsPerRun(100, func() { readUsage() }); n != 0 {
		t.Errorf("readUsage allocates %v per call", n)
	}
	a, b := usage{sysRW: 10, haveSys: true}, usage{sysRW: 15, haveSys: true, mallocs: 3}
	if d := diffUsage(a, b); d.sysRW != 4 || d.mallocs != 3 {
		t.Errorf("diff %+v: want the snapshot's own pread taken off", d)
	}
}

func TestParseInts(t *testing.T) {
	got, err := ParseInts("64, 4096,0-2")
	if err != nil || len(got) != 5 || got[0] != 64 || got[4] != 2 {
		t.Errorf("got %v %v", got, err)
	}
	for _, bad := range []string{"x", "3-1", "1-y"} {
		if _, err := ParseInts(bad); !errors.Is(err, ErrOptions) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	o := DefaultOptions(ModePingPong)
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	o.Mode = "sideways"
	o.Transports = []string{"carrier-pigeon"}
	o.Waits = []string{"sleepy"}
	o.Sizes = []int{8}
	err := o.Validate()
	for _, want := range []error{ErrUnknownMode, ErrUnknownTransport, ErrUnknownWait, ErrOptions} {
		if !errors.Is(err, want) {
			t.Errorf("want %v in %v", want, err)
		}
	}
	if !strings.Contains(err.Error(), "--size 8") {
		t.Errorf("message does not name the flag: %v", err)
	}
}

func TestReportPlumbing(t *testing.T) {
	one := 0.0
	r := &Report{Machine: ReadMachine("", "kaelix-bench test"), Results: []Result{
		{Mode: ModePingPong, Transport: "floor", Wait: "busy-spin", PayloadBytes: 32, Samples: 10, P50NS: 100, P90NS: 120, P99NS: 150, P999NS: 200, P9999NS: 300, MaxNS: 400, MeanNS: 110, AllocsPerRecord: &one, SyscallsPerRecord: &one, CPUs: CrossCore},
		{Mode: ModeThroughput, Transport: "copy-floor", PayloadBytes: 64, Samples: 10, RecordsPerS: 1e7, BytesPerS: 64e7, Batch: 1, AllocsPerRecord: &one},
	}}
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	js := buf.String()
	for _, key := range []string{`"machine"`, `"results"`, `"mode"`, `"transport"`, `"wait"`, `"payload_bytes"`, `"samples"`, `"p50_ns"`, `"p90_ns"`, `"p99_ns"`, `"p999_ns"`, `"p9999_ns"`, `"max_ns"`, `"mean_ns"`, `"records_per_s"`, `"bytes_per_s"`, `"allocs_per_record"`, `"syscalls_per_record"`, `"cpu_model"`, `"kernel"`, `"go_version"`, `"command"`} {
		if !strings.Contains(js, key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	// Fields that do not apply are omitted: the throughput row has no p50.
	if strings.Count(js, `"p50_ns"`) != 1 || strings.Count(js, `"records_per_s"`) != 1 {
		t.Errorf("inapplicable fields not omitted:\n%s", js)
	}
	buf.Reset()
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "copy-floor") || !strings.Contains(buf.String(), "10.00M") {
		t.Errorf("table:\n%s", buf.String())
	}
	dir := t.TempDir()
	if err := r.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(dir + "/results.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Results) != 2 || back.Results[0].P99NS != 150 {
		t.Errorf("read back %+v", back.Results)
	}
	claims := EvaluateClaims(back, 32)
	for _, c := range claims {
		if c.Status != ClaimNotMeasured && c.Status != ClaimMet && c.Status != ClaimNotMet {
			t.Errorf("claim status %q", c.Status)
		}
	}
}

func TestClaimsJudgeRatios(t *testing.T) {
	row := func(transport, wait string, rounds []int64, cpus, group string) Result {
		x := Result{Mode: ModePingPong, Transport: transport, Wait: wait, PayloadBytes: 32, CPUs: cpus, Group: group, Rounds: len(rounds)}
		x.P50NS, x.P99NS = rounds[len(rounds)/2], 2*rounds[len(rounds)/2]
		for _, v := range rounds {
			x.RoundP50NS = append(x.RoundP50NS, v)
			x.RoundP99NS = append(x.RoundP99NS, 2*v)
		}
		return x
	}
	g := "pingpong 32B cpus 0,1"
	// A slow phase in round 3 hits both paths: per-round ratios stay 1.05.
	r := &Report{Machine: Machine{TimerResolutionNS: 20}, Results: []Result{
		row("floor", "busy-spin", []int64{100, 100, 300, 100, 100}, CrossCore, g),
		row("kaelix-spsc", "busy-spin", []int64{105, 105, 315, 105, 105}, CrossCore, g),
		row("kaelix-spsc", "backoff", []int64{200, 200, 600, 200, 200}, CrossCore, g),
		row("futex-floor", "blocking", []int64{1000, 1000, 1000}, CrossCore, g+" other"),
		row("kaelix-spsc", "blocking", []int64{900, 900, 900}, CrossCore, g+" other"),
	}}
	cs := EvaluateClaims(r, 32)
	byName := func(prefix string) Claim {
		for _, c := range cs {
			if strings.HasPrefix(c.Claim, prefix) {
				return c
			}
		}
		t.Fatalf("no claim %q in %+v", prefix, cs)
		return Claim{}
	}
	c := byName("busy-spin ping-pong, Kaelix SPSC (TryPublish + Poll): p50")
	if c.Status != ClaimMet || c.Rounds != 5 || c.Ratio < 1.04 || c.Ratio > 1.06 || c.Group != g {
		t.Errorf("p50 vs floor: %+v", c)
	}
	if c := byName("backoff ping-pong"); c.Status != ClaimNotMet || !strings.Contains(c.Figures, "1.90×") {
		t.Errorf("backoff 1.9x busy-spin: %+v", c)
	}
	// Kaelix blocking beats the futex floor by 100 ns > 20 ns: invalid.
	if c := byName("blocking ping-pong cross-core (cpus 0,1): p50 ≤ 1.2× the futex floor"); c.Status != ClaimInvalid {
		t.Errorf("Kaelix below its floor: %+v", c)
	}
	// Rows of different groups are not compared.
	r.Results[4].Group = "elsewhere"
	cs = EvaluateClaims(r, 32)
	if c := byName("blocking ping-pong cross-core (cpus 0,1): p50 ≤ 1.2× the futex floor"); c.Status != ClaimNotMeasured {
		t.Errorf("rows of two groups judged: %+v", c)
	}
	if c := byName("yield ping-pong"); c.Status != ClaimNotMeasured {
		t.Errorf("missing rows judged: %+v", c)
	}
}

func TestReplaceGroup(t *testing.T) {
	all := []Result{{Transport: "a"}, {Transport: "b", Group: "g"}, {Transport: "c", Group: "g"}, {Transport: "d"}}
	got := replaceGroup(all, "g", []Result{{Transport: "x", Group: "g"}})
	var names []string
	for _, x := range got {
		names = append(names, x.Transport)
	}
	if strings.Join(names, ",") != "a,x,d" {
		t.Errorf("replaceGroup: %v", names)
	}
}

func TestUpdateREADME(t *testing.T) {
	path := t.TempDir() + "/README.md"
	os.WriteFile(path, []byte("# x\n<!-- bench:begin -->\nold\n<!-- bench:end -->\ntail\n"), 0o644)
	r := &Report{Machine: Machine{CPUModel: "cpu", Cores: 2, Date: "2026-01-02T00:00:00Z", GoVersion: "go1.26"}, Results: []Result{
		{Mode: ModePingPong, Transport: "floor", Wait: "busy-spin", PayloadBytes: 32, P50NS: 100, P99NS: 200, CPUs: CrossCore},
	}}
	if err := UpdateREADME(path, r, "bench/results/x"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	s := string(b)
	if strings.Contains(s, "old") || !strings.Contains(s, "| floor/busy-spin | 0,1 | - | 100ns |") || !strings.HasSuffix(s, "<!-- bench:end -->\ntail\n") {
		t.Errorf("README:\n%s", s)
	}
	os.WriteFile(path, []byte("no markers"), 0o644)
	if err := UpdateREADME(path, r, "x"); !errors.Is(err, ErrOptions) {
		t.Errorf("no markers: %v", err)
	}
}

// A step past the announced total (a caller that did not Add) must not
// panic the progress bar.
func TestProgressPastTotal(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf)
	p.Add(1)
	p.Step("one")
	p.Step("two")
	p.Done()
	if !strings.Contains(buf.String(), "2/1") {
		t.Errorf("progress: %q", buf.String())
	}
}

package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/wire"
)

// TestProcessorMetrics: a [[processors]] entry runs as a kaelix-proc
// process the daemon started; records go input -> stamp -> output, and the
// daemon's /metrics has the processor's counts (read from the counters
// region the host writes), its processing time histogram, restarts, limit
// hits and up.
func TestProcessorMetrics(t *testing.T) {
	bin := buildTool(t, "github.com/kaelix-io/kaelix/cmd/kaelix-proc")
	f := startFile(t, fmt.Sprintf(`[network]
port = 9090
[[topics]]
name = "pm.in"
[[topics]]
name = "pm.out"
[[processors]]
name = "pm"
input = "pm.in"
outputs = ["pm.out"]
binary = %q
  [[processors.stages]]
  plugin = "stamp"
`, bin), nil)
	const n = 64
	flowThrough(t, f, "pm.in", "pm.out", n)
	want := map[string]float64{
		`kaelix_processor_records_in_total{processor="pm"}`:                    n,
		`kaelix_processor_records_out_total{processor="pm"}`:                   n,
		`kaelix_processor_records_dropped_total{processor="pm"}`:               0,
		`kaelix_processor_records_failed_total{processor="pm"}`:                0,
		`kaelix_processor_processing_seconds_count{processor="pm"}`:            n / 16,
		`kaelix_processor_restarts_total{processor="pm"}`:                      0,
		`kaelix_processor_limit_hits_total{limit="memory",processor="pm"}`:     0,
		`kaelix_processor_up{processor="pm"}`:                                  1,
		`kaelix_processor_processing_seconds_bucket{le="+Inf",processor="pm"}`: n / 16,
	}
	var last map[string]float64
	defer func() {
		if t.Failed() {
			t.Logf("last scrape: %v", last)
		}
	}()
	waitFor60(t, "the processor's counts in /metrics", func() bool {
		last = scrapeProcessor(t, f.d.MetricsAddr())
		for k, v := range want {
			if last[k] != v {
				return false
			}
		}
		return true
	})
}

// flowThrough publishes n records to in (once a processor subscribes to
// it) and receives n from out, each stamped (processed_at).
func flowThrough(t *testing.T, f *fileDaemon, in, out string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{SocketPath: f.d.SocketPath()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sub, err := c.Subscribe(ctx, out, client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	waitFor60(t, "the processor's subscriber on "+in, func() bool {
		info, err := c.TopicInfo(ctx, in)
		return err == nil && info.Subscribers >= 1
	})
	pub, err := c.NewPublisher(ctx, in, client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for i := range n {
		if err := pub.Publish(ctx, client.NewMessage([]byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
	for got := 0; got < n; {
		k, err := sub.PollWait(ctx, func(m *client.Message) {
			if _, ok := m.Headers["processed_at"]; !ok {
				t.Errorf("record %q without processed_at: %v", m.Payload, m.Headers)
			}
		}, n)
		if err != nil {
			t.Fatalf("after %d records: %v", got, err)
		}
		got += k
	}
}

// buildTool builds the Go program pkg into a temporary directory.
func buildTool(t *testing.T, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

func waitFor60(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrapeProcessor returns the kaelix_processor_ samples of /metrics, by
// name{labels}.
func scrapeProcessor(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := noKeepAlive.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, fam := range fams {
		if !strings.HasPrefix(name, "kaelix_processor_") {
			continue
		}
		for _, m := range fam.Metric {
			var ls []string
			for _, l := range m.Label {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := func(suffix string, extra ...string) string {
				return name + suffix + "{" + strings.Join(append(extra, ls...), ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key("")] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key("")] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[key("_count")] = float64(m.Histogram.GetSampleCount())
				out[key("_bucket", `le="+Inf"`)] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

// TestProcessorMemoryLimit: a processor (a command: a program that
// allocates until stopped) is held to max_memory_mb; each stop counts as
// a memory limit hit in status and /metrics, kaelixd gives up after
// max_crashes, and health names it.
func TestProcessorMemoryLimit(t *testing.T) {
	bin := buildTool(t, "../internal/supervise/testdata/alloc")
	f := startFile(t, fmt.Sprintf(`[network]
port = 9090
[[topics]]
name = "ml.in"
[[processors]]
name = "hog"
input = "ml.in"
command = [%q]
max_crashes = 2
min_backoff = "50ms"
  [processors.limits]
  max_memory_mb = 160
`, bin), nil)
	var last map[string]float64
	waitFor60(t, "two memory limit hits", func() bool {
		last = scrapeProcessor(t, f.d.MetricsAddr())
		return last[`kaelix_processor_limit_hits_total{limit="memory",processor="hog"}`] == 2 && last[`kaelix_processor_up{processor="hog"}`] == 0
	})
	h := f.d.Health()
	found := false
	for _, r := range h.Reasons {
		found = found || r.Rule == "processor" && strings.Contains(r.Message, `processor "hog" failed: gave up after 2 exits`) && strings.Contains(r.Message, "memory limit")
	}
	if h.Status != "degraded" || !found {
		t.Fatalf("health %+v", h)
	}
}

// processorInfo returns processor name's entry in the processors reply.
func processorInfo(t *testing.T, f *fileDaemon, name string) wire.ProcessorInfo {
	t.Helper()
	var ps wire.Processors
	if err := dial(t, f.cfg, true).call(wire.TypeProcessors, nil, &ps); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps.Processors {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no processor %q in %+v", name, ps.Processors)
	return wire.ProcessorInfo{}
}

// probeResult waits for the probe processor's result file.
func probeResult(t *testing.T, f *fileDaemon, name, path string) string {
	t.Helper()
	var b []byte
	defer func() {
		if t.Failed() {
			t.Logf("%s: %+v", name, processorInfo(t, f, name))
		}
	}()
	waitFor60(t, "processor "+name+"'s probe result", func() bool {
		var err error
		b, err = os.ReadFile(path)
		return err == nil
	})
	return string(b)
}

// buildProbe builds processor/host/testdata/probe: a command processor
// that runs one limit probe, then a stamp pipeline keeping its counters.
func buildProbe(t *testing.T) string {
	return buildTool(t, "../processor/host/testdata/probe")
}

// TestProcessorFileLimit: a command processor with max_file_descriptors
// = 256 gets EMFILE once it holds 256 descriptors, and, a client written
// with package processor, shows its records through the counters region
// (host.ExportStats) in status and /metrics. (256, not less: a client
// holds dozens of descriptors per ring it attaches, which kaelixd sends.)
func TestProcessorFileLimit(t *testing.T) {
	bin := buildProbe(t)
	res := filepath.Join(t.TempDir(), "fds")
	f := startFile(t, fmt.Sprintf(`[network]
port = 9090
[[topics]]
name = "fd.in"
[[topics]]
name = "fd.out"
[[processors]]
name = "fds"
input = "fd.in"
outputs = ["fd.out"]
command = [%q, "fds", %q]
  [processors.limits]
  max_file_descriptors = 256
`, bin, res), nil)
	got := probeResult(t, f, "fds", res)
	var opened int
	var errno string
	if _, err := fmt.Sscanf(got, "opened %d: %s", &opened, &errno); err != nil {
		t.Fatalf("probe said %q: %v", got, err)
	}
	// 0-2 and the start gate's pipe are open already, and the Go runtime
	// may hold a few more; the limit is what matters.
	if errno != "EMFILE" || opened >= 256 || opened < 200 {
		t.Fatalf("probe said %q: want EMFILE after fewer than 256 (at least 200) opened", got)
	}
	if pi := processorInfo(t, f, "fds"); !strings.Contains(pi.Limits.Files, "256") {
		t.Fatalf("status limits %+v: want the file limit 256 named", pi.Limits)
	}

	// Its counts, from the counters region it keeps.
	const n = 32
	flowThrough(t, f, "fd.in", "fd.out", n)
	var last map[string]float64
	waitFor60(t, "the command processor's counts in /metrics", func() bool {
		last = scrapeProcessor(t, f.d.MetricsAddr())
		return last[`kaelix_processor_records_in_total{processor="fds"}`] == n &&
			last[`kaelix_processor_records_out_total{processor="fds"}`] == n &&
			last[`kaelix_processor_processing_seconds_count{processor="fds"}`] == n/16
	})
	if pi := processorInfo(t, f, "fds"); pi.In != n || pi.Out != n || pi.Pipelines != 1 || pi.PipelinesRunning != 1 {
		t.Fatalf("status %+v: want %d in and out, 1/1 pipelines running", pi, n)
	}
}

// TestProcessorNetwork: without can_access_network a processor cannot
// connect to a listener on 127.0.0.1 (its own network namespace); with it,
// it can.
func TestProcessorNetwork(t *testing.T) {
	bin := buildProbe(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			accepted <- struct{}{}
		}
	}()
	dir := t.TempDir()
	isolated, shared := filepath.Join(dir, "isolated"), filepath.Join(dir, "shared")
	f := startFile(t, fmt.Sprintf(`[network]
port = 9090
[[topics]]
name = "net.in"
[[processors]]
name = "isolated"
input = "net.in"
command = [%[1]q, "connect", %[2]q, %[3]q]
[[processors]]
name = "shared"
input = "net.in"
command = [%[1]q, "connect", %[2]q, %[4]q]
  [processors.permissions]
  can_access_network = true
`, bin, ln.Addr().String(), isolated, shared), nil)
	pi := processorInfo(t, f, "isolated")
	if strings.Contains(pi.Reason, "cannot isolate the network") {
		t.Skipf("this host forbids a new network namespace: %s", pi.Reason)
	}
	if got := probeResult(t, f, "shared", shared); got != "connected" {
		t.Fatalf("with can_access_network: %q, want connected", got)
	}
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the listener accepted nothing from the processor with can_access_network")
	}
	if got := probeResult(t, f, "isolated", isolated); !strings.HasPrefix(got, "error: ") {
		t.Fatalf("without can_access_network: %q, want a connect error", got)
	} else {
		t.Logf("without can_access_network: %s", got)
	}
	select {
	case <-accepted:
		t.Fatal("the listener accepted a connection from the isolated processor")
	case <-time.After(200 * time.Millisecond):
	}
	if pi := processorInfo(t, f, "isolated"); !strings.HasPrefix(pi.Limits.Network, "isolated") {
		t.Fatalf("status network %q", pi.Limits.Network)
	}
}

// TestProcessorCPULimit: a CPU hog with max_cpu_percent = 20 is held to
// its share where cgroup v2 cpu.max can be used (its CPU time over 3 s of
// wall time, generous bounds); elsewhere its status must say plainly that
// the limit is not enforced and why, and the share is not measured.
func TestProcessorCPULimit(t *testing.T) {
	bin := buildProbe(t)
	res := filepath.Join(t.TempDir(), "spin")
	f := startFile(t, fmt.Sprintf(`[network]
port = 9090
[[topics]]
name = "cpu.in"
[[processors]]
name = "hog"
input = "cpu.in"
command = [%q, "spin", %q]
  [processors.limits]
  max_cpu_percent = 20
`, bin, res), nil)
	probeResult(t, f, "hog", res)
	pi := processorInfo(t, f, "hog")
	if why, ok := strings.CutPrefix(pi.Limits.CPU, "cpu limit not enforced: "); ok {
		if !strings.Contains(why, "max_cpu_percent 20") || !strings.Contains(why, "cgroup v2 cpu.max") || len(why) < len("max_cpu_percent 20 needs cgroup v2 cpu.max: ")+5 {
			t.Fatalf("status cpu %q: want what is not enforced and why", pi.Limits.CPU)
		}
		t.Skipf("CPU share not measured: %s", pi.Limits.CPU)
	}
	if !strings.HasPrefix(pi.Limits.CPU, "cgroup v2 cpu.max 20%") {
		t.Fatalf("status cpu %q", pi.Limits.CPU)
	}
	cpu := func() time.Duration {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pi.PID))
		if err != nil {
			t.Fatal(err)
		}
		fs := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
		var ticks int64
		for _, s := range fs[11:13] { // utime, stime (fields 14, 15)
			v, _ := strconv.ParseInt(s, 10, 64)
			ticks += v
		}
		return time.Duration(ticks) * time.Second / 100 // USER_HZ
	}
	c0, w0 := cpu(), time.Now()
	time.Sleep(3 * time.Second)
	share := float64(cpu()-c0) / float64(time.Since(w0))
	t.Logf("hog used %.0f%% of one CPU under max_cpu_percent 20", 100*share)
	if share > 0.4 {
		t.Fatalf("hog used %.0f%% of one CPU: want at most 20%% (bound 40%%)", 100*share)
	}
}

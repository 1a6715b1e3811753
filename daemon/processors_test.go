package daemon_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kaelix-io/kaelix/client"
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
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{SocketPath: f.d.SocketPath()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sub, err := c.Subscribe(ctx, "pm.out", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	waitFor60(t, "the processor's subscriber on pm.in", func() bool {
		info, err := c.TopicInfo(ctx, "pm.in")
		return err == nil && info.Subscribers >= 1
	})
	pub, err := c.NewPublisher(ctx, "pm.in", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	const n = 64
	for i := range n {
		if err := pub.Publish(ctx, client.NewMessage([]byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for got < n {
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

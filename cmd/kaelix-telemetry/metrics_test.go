package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestLatencyMetrics: the latency histogram is served as a Prometheus
// histogram, in seconds, holding every observation in the right buckets.
func TestLatencyMetrics(t *testing.T) {
	m := newLatencyMetrics()
	addr, stop, err := m.serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, d := range []time.Duration{3 * time.Microsecond, 40 * time.Microsecond, 2 * time.Millisecond} {
		m.observe(d)
		m.received.Inc()
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	h := fams["kaelix_telemetry_receive_latency_seconds"]
	if h == nil || h.GetType().String() != "HISTOGRAM" || len(h.Metric) != 1 {
		t.Fatalf("latency family %v", h)
	}
	hist := h.Metric[0].GetHistogram()
	if hist.GetSampleCount() != 3 || hist.GetSampleSum() < 0.002 || hist.GetSampleSum() > 0.0021 {
		t.Errorf("count %d sum %g", hist.GetSampleCount(), hist.GetSampleSum())
	}
	for _, b := range hist.Bucket {
		want := uint64(0)
		for _, v := range []float64{3e-6, 40e-6, 2e-3} {
			if v <= b.GetUpperBound() {
				want++
			}
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("bucket le=%g: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	if c := fams["kaelix_telemetry_received_total"]; c == nil || c.Metric[0].GetCounter().GetValue() != 3 || !strings.HasSuffix(c.GetName(), "_total") {
		t.Errorf("received %v", c)
	}
}

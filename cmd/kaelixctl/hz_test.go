package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestCLIHzAndLatency: hz and latency against records published by pub at
// 200/s. hz counts every record and its gap statistics are ordered and
// near the 5 ms pub paces at (within a factor of two: a loose bound on a
// loaded VM, which checks units, not speed); latency's final report holds
// every record, with ordered percentiles.
func TestCLIHzAndLatency(t *testing.T) {
	d := startDaemon(t)
	d.mustCtl(t, nil, "topics", "create", "hz.t")
	const n = 200
	hz := d.start(t, nil, "hz", "hz.t", "--count", "200", "--for", "120s", "-o", "json", "--interval", "200ms")
	lat := d.start(t, nil, "latency", "hz.t", "--count", "200", "--for", "120s", "-o", "json", "--interval", "200ms")
	d.waitSubscribers(t, "hz.t", 2)
	d.mustCtl(t, nil, "pub", "hz.t", "x", "--count", "200", "--rate", "200", "-q")
	if code := hz.wait(t); code != 0 {
		t.Fatalf("hz: exit %d\n%s", code, hz.errb)
	}
	if code := lat.wait(t); code != 0 {
		t.Fatalf("latency: exit %d\n%s", code, lat.errb)
	}
	lines := strings.Split(strings.TrimSpace(hz.out.String()), "\n")
	var last HzReport
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatalf("hz output: %v\n%s", err, hz.out)
	}
	if last.Total != n || last.Window != n-1 || !(last.MinGapNS <= int64(last.MeanGapNS) && int64(last.MeanGapNS) <= last.MaxGapNS) {
		t.Errorf("hz final report %+v", last)
	}
	if m := time.Duration(last.MeanGapNS); m < 2500*time.Microsecond || m > 10*time.Millisecond {
		t.Errorf("hz mean gap %v, pub paced at 5ms", m)
	}
	lines = strings.Split(strings.TrimSpace(lat.out.String()), "\n")
	var fin LatencyReport
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &fin); err != nil {
		t.Fatalf("latency output: %v\n%s", err, lat.out)
	}
	if !fin.Final || fin.Records != n || fin.Untimed != 0 || fin.MinNS <= 0 || fin.P50NS < fin.MinNS || fin.P99NS < fin.P50NS ||
		fin.MaxNS < fin.P999NS || fin.MaxNS > int64(time.Minute) {
		t.Errorf("latency final report %+v", fin)
	}
	t.Logf("latency: %s", lines[len(lines)-1])
	out := d.mustCtl(t, nil, "hz", "hz.t", "--for", "300ms")
	if !strings.Contains(out, "rate 0/s") {
		t.Errorf("hz on a quiet topic: %q", out)
	}
}

package daemon_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kaelix-io/kaelix/client"
)

// TestMetricsLint scrapes /metrics with a topic, a subscriber that reads
// nothing and a queue group, parses it with the Prometheus text parser and
// checks the naming rules promtool's `check metrics` applies: snake_case
// names with a help text, counters and only counters ending in _total,
// base units (seconds, bytes), no _count/_sum/_bucket suffix outside
// histograms and summaries. It also checks what issue 17 asked: the
// counters that count rare events are exported at 0 before their first
// one, kaelix_build_info is 1, and per-slot backlog series exist with
// bounded labels (the slot index, never a pid).
func TestMetricsLint(t *testing.T) {
	f := startFile(t, baseTOML, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{SocketPath: f.d.SocketPath()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: "lint.t"}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, "lint.t", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	member, err := c.Subscribe(ctx, "lint.t", client.SubscribeOptions{Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	pub, err := c.NewPublisher(ctx, "lint.t", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for range 5 {
		if err := pub.Publish(ctx, client.NewMessage([]byte("abc"))); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := noKeepAlive.Get("http://" + f.d.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	nameRe := regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	for name, mf := range fams {
		if !strings.HasPrefix(name, "kaelix_") {
			continue // Go and process collectors: the library's own names
		}
		typ := mf.GetType().String()
		switch {
		case !nameRe.MatchString(name):
			t.Errorf("%s: not snake_case", name)
		case mf.GetHelp() == "":
			t.Errorf("%s: no help", name)
		case typ == "COUNTER" && !strings.HasSuffix(name, "_total"):
			t.Errorf("%s: a counter without _total", name)
		case typ != "COUNTER" && strings.HasSuffix(name, "_total"):
			t.Errorf("%s: a %s with a counter's _total suffix", name, typ)
		case typ != "HISTOGRAM" && typ != "SUMMARY" && (strings.HasSuffix(name, "_count") || strings.HasSuffix(name, "_sum") || strings.HasSuffix(name, "_bucket")):
			t.Errorf("%s: reserved suffix", name)
		}
		for _, bad := range []string{"_milliseconds", "_microseconds", "_nanoseconds", "_ms", "_kilobytes", "_megabytes", "_kib", "_mib"} {
			if strings.Contains(name, bad) {
				t.Errorf("%s: not a base unit", name)
			}
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "pid" {
					t.Errorf("%s: labelled by pid (unbounded)", name)
				}
			}
		}
	}
	for _, name := range []string{"kaelix_clients_dropped_total", "kaelix_resource_refusals_total", "kaelix_subscriber_evictions_total"} {
		if mf := fams[name]; mf == nil || len(mf.GetMetric()) == 0 {
			t.Errorf("%s absent before its first event", name)
		}
	}
	if mf := fams["kaelix_build_info"]; mf == nil || len(mf.Metric) != 1 || mf.Metric[0].GetGauge().GetValue() != 1 {
		t.Errorf("kaelix_build_info: %v", mf)
	} else {
		labels := map[string]string{}
		for _, l := range mf.Metric[0].Label {
			labels[l.GetName()] = l.GetValue()
		}
		if !strings.HasPrefix(labels["goversion"], "go") || labels["version"] == "" {
			t.Errorf("kaelix_build_info labels %v", labels)
		}
	}
	slotsSeen := map[string]float64{}
	if mf := fams["kaelix_slot_lag_records"]; mf != nil {
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == "slot" {
					slotsSeen[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	// The broadcast subscriber, the group member and the group: each 5
	// records behind (nothing was read).
	if len(slotsSeen) != 3 || slotsSeen["g0"] != 5 {
		t.Errorf("kaelix_slot_lag_records by slot: %v, want 3 slots 5 behind, one of them g0", slotsSeen)
	}
	for slot, v := range slotsSeen {
		if v != 5 {
			t.Errorf("slot %s lag %v records, want 5", slot, v)
		}
	}
	for _, name := range []string{"kaelix_partition_published_ring_bytes_total", "kaelix_partition_consumed_payload_bytes_total", "kaelix_slot_lag_bytes"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	if _, ok := find(scrape(t, f.d), "kaelix_config_last_reload_timestamp_seconds"); ok {
		t.Error("a reload timestamp before any reload")
	}
	if _, err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	ss := scrape(t, f.d)
	if v, ok := find(ss, "kaelix_config_last_reload_timestamp_seconds"); !ok || time.Since(time.Unix(int64(v), 0)) > time.Minute {
		t.Errorf("reload timestamp %v (%v)", v, ok)
	}
	if v, ok := find(ss, "kaelix_config_last_reload_success"); !ok || v != 1 {
		t.Errorf("reload success %v (%v)", v, ok)
	}
}

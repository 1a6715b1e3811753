package daemon_test

import (
	"context"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/wire"
)

// TestHealthErrorRate: failed control requests (info on a topic that does
// not exist) raise the error rate in health and the metrics; above
// telemetry.health.error_share health is degraded by the error_rate rule;
// with the threshold at 1 (reloaded live) the same figures are not.
func TestHealthErrorRate(t *testing.T) {
	f := startFile(t, baseTOML+"\n[telemetry.health]\nerror_share = 0.2\n", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := f.d.Health()
	if h.Errors == nil || h.Errors.FailedRequests != 0 || hasRule(h, "error_rate") {
		t.Fatalf("at start: %+v %+v", h, h.Errors)
	}
	c, err := client.Connect(ctx, client.Options{SocketPath: f.d.SocketPath()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 10 {
		if _, err := c.TopicInfo(ctx, "no.such.topic"); err == nil {
			t.Fatal("info on a missing topic succeeded")
		}
	}
	h = f.d.Health()
	e := h.Errors
	if e == nil || e.FailedRequests != 10 || e.Requests < 11 || e.RequestShare <= 0.2 || e.PerMinute <= 0 {
		t.Fatalf("after 10 failed requests: %+v", e)
	}
	if h.Status != wire.HealthDegraded || !hasRule(h, "error_rate") {
		t.Errorf("health %s %+v, want degraded by error_rate", h.Status, h.Reasons)
	}
	ss := scrape(t, f.d)
	if v, ok := find(ss, "kaelix_health_error_ratio", "kind", "requests"); !ok || v <= 0.2 {
		t.Errorf("kaelix_health_error_ratio{kind=requests} %v (%v)", v, ok)
	}
	if v, ok := find(ss, "kaelix_health_errors_per_minute"); !ok || v <= 0 {
		t.Errorf("kaelix_health_errors_per_minute %v (%v)", v, ok)
	}
	f.write(t, baseTOML+"\n[telemetry.health]\nerror_share = 1\n")
	if _, err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if h := f.d.Health(); hasRule(h, "error_rate") {
		t.Errorf("error_share = 1 still degrades: %+v", h.Reasons)
	}
}

func hasRule(h wire.Health, rule string) bool {
	for _, r := range h.Reasons {
		if r.Rule == rule {
			return true
		}
	}
	return false
}

// TestConfigViewEffective: config show names what a key left open
// resolved to at start: the bound port for network.port = 0.
func TestConfigViewEffective(t *testing.T) {
	f := startFile(t, baseTOML, nil)
	for _, e := range f.d.ConfigView().Entries {
		if e.Key == "network.port" && (e.Value != "0" || e.Effective == "" || e.Effective == "0") {
			t.Errorf("network.port entry %+v: want the bound port as effective", e)
		}
		if e.Key == "daemon.state_dir" && e.Value == `""` && e.Effective == "" {
			t.Errorf("daemon.state_dir entry %+v: want the directory in use", e)
		}
	}
}

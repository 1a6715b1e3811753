package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kaelix-io/kaelix/bridge"
)

// TestCLIBridge: bridge list and info against a kaelixd declaring two
// bridges, one serving /status (a bridge.Status, the real type) and one
// unreachable.
func TestCLIBridge(t *testing.T) {
	var st bridge.Status
	st.Host, st.Healthy = "boxa", false
	st.NATS.Connected, st.NATS.URL, st.NATS.Reconnects = true, "nats://127.0.0.1:4222", 2
	st.Rules = []bridge.RuleStatus{
		{Name: "out-md", Direction: "out", Topic: "md", Subject: "kaelix.{host}.{topic}.{partition}", Mode: "jetstream", State: "running", Forwarded: 120, Acked: 118, LagRecords: 2, Lost: map[string]uint64{}},
		{Name: "in-md", Direction: "in", Topic: "md", Subject: "kaelix.*.{topic}.*", Mode: "core", State: "failed", Error: `topic "md" does not exist`, Lost: map[string]uint64{"gap": 3}, LostTotal: 3},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(st)
	}))
	defer srv.Close()
	dir := t.TempDir()
	b1, b2 := filepath.Join(dir, "b1.toml"), filepath.Join(dir, "b2.toml")
	os.WriteFile(b1, []byte(fmt.Sprintf("http = %q\n", strings.TrimPrefix(srv.URL, "http://"))), 0o600)
	os.WriteFile(b2, []byte("http = \"127.0.0.1:1\"\n"), 0o600)
	conf := filepath.Join(dir, "kaelixd.toml")
	// binary /bin/true: kaelixd's supervisor restarts it with backoff; this
	// test reads only the declarations and the fake /status.
	os.WriteFile(conf, []byte(fmt.Sprintf("[[bridges]]\nname = \"b1\"\nconfig = %q\nbinary = \"/bin/true\"\n[[bridges]]\nname = \"b2\"\nconfig = %q\nbinary = \"/bin/true\"\n", b1, b2)), 0o600)
	d := startDaemon(t, "--config", conf, "--no-watch")

	out := d.mustCtl(t, nil, "bridge", "list")
	for _, want := range []string{"b1", "degraded", "connected", "1/2 running", "120", "b2", "unknown", "not reachable"} {
		if !strings.Contains(out, want) {
			t.Errorf("bridge list lacks %q:\n%s", want, out)
		}
	}
	out = d.mustCtl(t, nil, "bridge", "info", "b1")
	for _, want := range []string{"host boxa", "2 reconnects", "out-md", "118", "in-md", "failed", "3 (gap=3)", `in-md: topic "md" does not exist`} {
		if !strings.Contains(out, want) {
			t.Errorf("bridge info lacks %q:\n%s", want, out)
		}
	}
	out = d.mustCtl(t, nil, "bridge", "info", "b1", "-o", "json")
	var got bridgeView
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Status == nil || len(got.Status.Rules) != 2 || got.Status.Rules[0].Acked != 118 {
		t.Errorf("bridge info -o json: %v %+v\n%s", err, got, out)
	}
	if _, stderr, code := d.ctl(t, nil, "bridge", "info", "nope"); code != exitFailure || !strings.Contains(stderr, "no bridge named nope") {
		t.Errorf("bridge info nope: exit %d, %q", code, stderr)
	}
	if _, stderr, code := d.ctl(t, nil, "bridge", "info", "b2"); code != exitFailure || !strings.Contains(stderr, "not reachable") {
		t.Errorf("bridge info b2: exit %d, %q", code, stderr)
	}
}

package bridgestat

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFileRoundTrip: a written file reads back whole, with this process
// as writer, fresh now and stale once three intervals and the grace have
// passed; a missing file is fs.ErrNotExist, another version and bad JSON
// are errors naming the file; the directory is made.
func TestFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := StatusPath(dir, "ny")
	if want := filepath.Join(dir, "bridges", "ny.status"); path != want {
		t.Fatalf("StatusPath %q, want %q", path, want)
	}
	if _, err := ReadFile(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	var st Status
	st.Host, st.Healthy = "ny", true
	st.Rules = []RuleStatus{{Name: "r", State: "running", Forwarded: 7, Lost: map[string]uint64{"gap": 2}, LostTotal: 2}}
	now := time.Now()
	if err := WriteFile(path, st, now); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.PID != os.Getpid() || f.Status.Host != "ny" || len(f.Status.Rules) != 1 || f.Status.Rules[0].Lost["gap"] != 2 || f.IntervalNS != int64(Interval) {
		t.Errorf("read back %+v", f)
	}
	if f.Stale(now.Add(Interval)) || !f.Stale(now.Add(3*Interval+2*time.Second+time.Millisecond)) {
		t.Errorf("Stale: fresh after one interval and stale after 3 + grace expected")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("%d entries beside the file (a temporary left?): %v", len(entries), entries)
	}
	os.WriteFile(path, []byte(`{"version": 9}`), 0o644)
	if _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), "version 9, want 1") || !strings.Contains(err.Error(), path) {
		t.Errorf("version 9: %v", err)
	}
	os.WriteFile(path, []byte(`{"version": 1, "status": {`), 0o644)
	if _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("torn JSON: %v", err)
	}
}

// TestRender: the text lists every rule with its lost reasons sorted, and
// each failing rule's error after the table.
func TestRender(t *testing.T) {
	var st Status
	st.Host = "ldn"
	st.NATS.LastError = "no servers"
	st.Rules = []RuleStatus{
		{Name: "a", Direction: "out", Mode: "core", Topic: "t", Subject: "s", State: "waiting", Lost: map[string]uint64{"too-large": 1, "gap": 3}, LostTotal: 4},
		{Name: "b", Direction: "in", Mode: "jetstream", Topic: "t", Subject: "s.*", State: "failed", Error: "stream gone"},
	}
	var out bytes.Buffer
	if err := Render(&out, st); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"host ldn, degraded, nats DISCONNECTED (no servers), 0 reconnects\n", "4 (gap=3,too-large=1)", "\nb: stream gone\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("Render lacks %q:\n%s", want, out.String())
		}
	}
	if h, n, r, fwd, lost := Summary(st); h != "degraded" || n != "disconnected" || r != "0/2 running" || fwd != 0 || lost != 4 {
		t.Errorf("Summary: %s %s %s %d %d", h, n, r, fwd, lost)
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCLIBridge: bridge list and info against a kaelixd running a real
// kaelix-bridge (NATS unreachable, so its rule waits and it is degraded)
// and declaring a second bridge that never writes a status (/bin/true):
// the live one's status comes from the file it rewrites every second; once
// it is SIGSTOPped, the file stops moving and kaelixctl says it is stale.
func TestCLIBridge(t *testing.T) {
	dir := t.TempDir()
	b1, b2 := filepath.Join(dir, "b1.toml"), filepath.Join(dir, "b2.toml")
	os.WriteFile(b1, []byte("host = \"boxa\"\n[nats]\nurls = [\"nats://127.0.0.1:1\"]\n[[rules]]\nname = \"out-md\"\ndirection = \"out\"\ntopic = \"md\"\n"), 0o600)
	os.WriteFile(b2, []byte("host = \"boxb\"\n"), 0o600)
	conf := filepath.Join(dir, "kaelixd.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf("[[bridges]]\nname = \"b1\"\nconfig = %q\nbinary = %q\n[[bridges]]\nname = \"b2\"\nconfig = %q\nbinary = \"/bin/true\"\n",
		b1, filepath.Join(binDir, "kaelix-bridge"), b2)), 0o600)
	d := startDaemon(t, "--config", conf, "--no-watch")

	var view bridgeView
	waitFor(t, "b1's status file", func() (bool, string) {
		out, stderr, code := d.ctl(t, nil, "bridge", "info", "b1", "-o", "json")
		return code == 0 && json.Unmarshal([]byte(out), &view) == nil && view.Status != nil, out + stderr
	})
	if view.Status.Host != "boxa" || view.Status.Healthy || view.Status.NATS.Connected || len(view.Status.Rules) != 1 ||
		view.Status.Rules[0].Name != "out-md" || view.Stale || view.PID <= 0 {
		t.Errorf("b1's status: %+v %+v", view, view.Status)
	}
	out := d.mustCtl(t, nil, "bridge", "list")
	for _, want := range []string{"BRIDGE", "b1", "degraded", "disconnected", "0/1 running", "ago", "b2", "unknown", "no status file yet"} {
		if !strings.Contains(out, want) {
			t.Errorf("bridge list lacks %q:\n%s", want, out)
		}
	}
	out = d.mustCtl(t, nil, "bridge", "info", "b1")
	for _, want := range []string{"status file " + filepath.Join(filepath.Dir(d.socket), "bridges", "b1.status"), "host boxa, degraded, nats DISCONNECTED", "out-md", "RULE"} {
		if !strings.Contains(out, want) {
			t.Errorf("bridge info lacks %q:\n%s", want, out)
		}
	}
	if _, stderr, code := d.ctl(t, nil, "bridge", "info", "nope"); code != exitFailure || !strings.Contains(stderr, "no bridge named nope") {
		t.Errorf("bridge info nope: exit %d, %q", code, stderr)
	}
	if _, stderr, code := d.ctl(t, nil, "bridge", "info", "b2"); code != exitFailure || !strings.Contains(stderr, "no status file yet") {
		t.Errorf("bridge info b2: exit %d, %q", code, stderr)
	}

	// A stopped bridge: its file goes stale (3 intervals + 2 s).
	if err := syscall.Kill(view.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(view.PID, syscall.SIGCONT)
	time.Sleep(5 * time.Second)
	waitFor(t, "b1's status to go stale", func() (bool, string) {
		out, _, code := d.ctl(t, nil, "bridge", "list")
		return code == 0 && strings.Contains(out, "STALE") && strings.Contains(out, fmt.Sprintf("(pid %d)", view.PID)), out
	})
	out = d.mustCtl(t, nil, "bridge", "info", "b1")
	if !strings.Contains(out, "STALE: written") || !strings.Contains(out, fmt.Sprintf("by pid %d", view.PID)) {
		t.Errorf("bridge info of a stopped bridge:\n%s", out)
	}
	syscall.Kill(view.PID, syscall.SIGCONT)
	waitFor(t, "b1's status to be fresh again", func() (bool, string) {
		out, _, code := d.ctl(t, nil, "bridge", "list")
		return code == 0 && !strings.Contains(out, "STALE"), out
	})
}

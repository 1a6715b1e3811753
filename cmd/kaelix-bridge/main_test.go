package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/bridge/bridgestat"
)

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestCheckConfig: the example file is valid; a bad one gets every error
// at once with exit 2.
func TestCheckConfig(t *testing.T) {
	code, out, stderr := runCLI("check-config", "../../configs/kaelix-bridge.example.toml")
	if code != exitOK || !strings.Contains(out, "ok (2 rules)") {
		t.Fatalf("example config: exit %d, %q %q", code, out, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte(`
host = "a.b"
[nats]
urls = ["nats://127.0.0.1:4222"]
[[rules]]
direction = "sideways"
topic = "t"
[[rules]]
direction = "out"
topic = "t"
subject = "x.>"
mode = "jetstream"
`), 0o600)
	code, _, stderr = runCLI("check-config", bad)
	for _, want := range []string{`host "a.b"`, `direction "sideways"`, "wildcards", "state_dir must be set"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	os.WriteFile(bad, []byte("bogus_key = 1\n[[rules]]\ndirection = \"out\"\ntopic = \"t\"\n"), 0o600)
	if code, _, stderr = runCLI("check-config", bad); code != exitUsage || !strings.Contains(stderr, "unknown keys: bogus_key") {
		t.Errorf("unknown key: exit %d, %q", code, stderr)
	}
}

// TestStatusUnreachable: status against nothing fails with exit 1.
func TestStatusUnreachable(t *testing.T) {
	code, _, stderr := runCLI("status", "--http", "127.0.0.1:1", "--timeout", "1s")
	if code != exitFailure || !strings.Contains(stderr, "not reachable") {
		t.Errorf("exit %d, %q", code, stderr)
	}
}

// TestStatusFile: status --file prints a status file, and a stale one
// with exit 3 (degraded) and a line saying so.
func TestStatusFile(t *testing.T) {
	path := bridgestat.StatusPath(t.TempDir(), "b")
	var st bridgestat.Status
	st.Host, st.Healthy = "boxa", true
	st.NATS.Connected, st.NATS.URL = true, "nats://127.0.0.1:4222"
	if err := bridgestat.WriteFile(path, st, time.Now()); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI("status", "--file", path)
	if code != exitOK || !strings.Contains(out, "host boxa, healthy, nats connected to nats://127.0.0.1:4222") {
		t.Errorf("fresh file: exit %d, %q %q", code, out, stderr)
	}
	if err := bridgestat.WriteFile(path, st, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI("status", "--file", path)
	if code != exitDegraded || !strings.HasPrefix(out, "STALE: written 1m0s ago by pid") {
		t.Errorf("stale file: exit %d, %q", code, out)
	}
	if code, _, stderr = runCLI("status", "--file", path, "--http", "127.0.0.1:1"); code != exitUsage {
		t.Errorf("--file with --http: exit %d, %q", code, stderr)
	}
}

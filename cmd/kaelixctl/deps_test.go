package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestNoDaemonDeps: kaelixctl reads shared memory through package stat and
// bridges' status files through bridgestat, and never links the daemon
// (issue 15.4): `go list -deps` holds no Prometheus package (client_golang
// or procfs), no file watcher, no HTTP stack and no NATS client.
func TestNoDaemonDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/kaelix-io/kaelix/cmd/kaelixctl").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 20 || !slices.Contains(deps, "github.com/kaelix-io/kaelix/stat") {
		t.Fatalf("go list -deps gave %d packages, without stat: not kaelixctl's list?\n%s", len(deps), out)
	}
	banned := []struct{ prefix, why string }{
		{"github.com/prometheus/", "a Prometheus package"},
		{"github.com/fsnotify/", "the file watcher"},
		{"net/http", "the HTTP stack"},
		{"github.com/nats-io/", "the NATS client"},
		{"github.com/kaelix-io/kaelix/daemon", "the daemon"},
		{"github.com/kaelix-io/kaelix/bridge", "the bridge (only bridge/bridgestat)"},
	}
	allowed := []string{"github.com/kaelix-io/kaelix/daemon/config", "github.com/kaelix-io/kaelix/bridge/bridgestat"}
	for _, dep := range deps {
		if slices.Contains(allowed, dep) {
			continue
		}
		for _, b := range banned {
			if dep == b.prefix || strings.HasPrefix(dep, strings.TrimSuffix(b.prefix, "/")+"/") {
				t.Errorf("kaelixctl depends on %s (%s)", dep, b.why)
			}
		}
	}
}

package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoDaemonDeps: kaelixctl reads shared memory through package stat and
// never links the daemon: no metrics library or file watcher in its build
// (issue 15.4). (net/http is in it since `kaelixctl bridge` reads a
// bridge's /status over HTTP.)
func TestNoDaemonDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/kaelix-io/kaelix/cmd/kaelixctl").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/prometheus/client_golang", "github.com/fsnotify/fsnotify", "github.com/kaelix-io/kaelix/daemon"} {
			if dep == bad || strings.HasPrefix(dep, bad+"/") && bad != "github.com/kaelix-io/kaelix/daemon" {
				t.Errorf("kaelixctl depends on %s", dep)
			}
		}
	}
}

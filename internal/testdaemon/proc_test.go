package testdaemon

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestProc: the child's stderr is collected and its exit code returned;
// Stop ends a running child with SIGTERM (Wait's error names the signal);
// WaitReady returns once its condition holds.
func TestProc(t *testing.T) {
	p := StartProc(t, exec.Command("sh", "-c", "echo oops >&2; exit 3"))
	if code, _ := p.Wait(30 * time.Second); code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
	if got := p.Stderr.String(); got != "oops\n" {
		t.Errorf("stderr %q", got)
	}

	s := StartProc(t, exec.Command("sleep", "600"))
	n := 0
	s.WaitReady(t, 30*time.Second, func() bool { n++; return n == 3 })
	if err := s.Stop(30 * time.Second); err == nil || !strings.Contains(err.Error(), "terminated") {
		t.Errorf("Stop of sleep: %v, want killed by SIGTERM", err)
	}
}

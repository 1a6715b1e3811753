package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRunScript runs the main job (scripts/run.sh, what `make run` runs)
// for a few seconds against freshly built binaries and checks that samples
// were printed and that nothing is left in /dev/shm, hugetlbfs or the
// temporary socket directory afterwards.
func TestRunScript(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kaelixd and two clients for a few seconds")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "github.com/kaelix-io/kaelix/cmd/...")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tmp := t.TempDir() // run.sh's mktemp dir (socket, state) goes here
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join("..", "..", "scripts", "run.sh"), "--duration", "3s")
	cmd.Env = append(os.Environ(), "KAELIX_BIN="+bin, "TMPDIR="+tmp, "RUN_SECONDS=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("run.sh: %v\n%s", err, out.String())
	}
	text := out.String()
	samples := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d\.\d{3} \S+  cpu +[0-9.]+% .*\| mem .*\| net rx .*\| disk r .*\| #0:\d+ \+\d+ lat `).FindAllString(text, -1)
	if len(samples) == 0 {
		t.Fatalf("no sample lines printed:\n%s", text)
	}
	// The processor (kaelix-proc window) publishes one-second aggregates that
	// kaelix-telemetry agg prints: "1s HH:MM:SS HOST  N samples R/s | cpu avg ...".
	if !regexp.MustCompile(`(?m)^1s \d\d:\d\d:\d\d \S+ +\d+ samples +[0-9.]+/s \| cpu avg +[0-9.]+% \[`).MatchString(text) {
		t.Errorf("no window aggregate line printed:\n%s", text)
	}
	if !regexp.MustCompile(`(?m)^host\.telemetry\s+1\s+mpmc\s+block\s+1MiB\s.*\s[0-9.]+k?\s+\S+$`).MatchString(text) {
		t.Errorf("no topics list row for host.telemetry:\n%s", text)
	}
	if !strings.Contains(text, "stopped; nothing left in") {
		t.Errorf("run.sh did not report a clean stop:\n%s", text)
	}
	m := regexp.MustCompile(`regions +/dev/shm/(\S+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("run.sh did not name its region directory:\n%s", text)
	}
	for _, root := range []string{"/dev/shm", "/dev/hugepages"} {
		if _, err := os.Stat(filepath.Join(root, m[1])); err == nil {
			t.Errorf("%s/%s left behind", root, m[1])
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("socket/state directory left behind in %s: %v", tmp, left)
	}
	t.Logf("%d sample lines; last: %s", len(samples), samples[len(samples)-1])
}

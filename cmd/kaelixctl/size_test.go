package main

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/internal/testdaemon"
)

// TestTopicsCreateTooLarge: kaelixd with a small fake limit
// (shm.max_topic_bytes = 4MiB) refuses an 8 MiB topic with the figures
// and a remedy (exit 5); --force creates it.
func TestTopicsCreateTooLarge(t *testing.T) {
	d := startDaemon(t, "--set", "shm.max_topic_bytes=4MiB", "--hugepages", "off")
	out, errOut, code := d.ctl(t, nil, "topics", "create", "big.one", "--partitions", "2", "--capacity", "4MiB")
	if code != exitInvalid {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, exitInvalid, out, errOut)
	}
	t.Log(errOut)
	for _, w := range []string{`topic "big.one": its regions would take 8.`, "MiB (2 × 4.", "more than shm.max_topic_bytes = 4MiB", "pass --force to create it anyway"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errOut)
		}
	}
	if list := d.mustCtl(t, nil, "topics", "list"); strings.Contains(list, "big.one") {
		t.Errorf("refused topic listed:\n%s", list)
	}
	out = d.mustCtl(t, nil, "topics", "create", "big.one", "--partitions", "2", "--capacity", "4MiB", "--force")
	if !strings.HasPrefix(out, "created topic big.one: 2 × ") {
		t.Errorf("--force: %q", out)
	}
	d.mustCtl(t, nil, "topics", "delete", "big.one")
}

// TestProgress: while a create waits, the progress line is rewritten in
// place every interval with the partitions made so far and the elapsed
// time, and cleared at the end; a create that answers before the first
// interval prints nothing.
func TestProgress(t *testing.T) {
	var w testdaemon.Buffer
	var made atomic.Int64
	made.Store(-1)
	stop := progress(&w, "creating topic t (4 × 1 MiB)", 10*time.Millisecond, func() string { return partitionsMade(made.Load(), 4) })
	for deadline := time.Now().Add(10 * time.Second); strings.Count(w.String(), "\r") < 3; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no progress lines: %q", w.String())
		}
	}
	made.Store(3)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(w.String(), "3 of 4 partitions made, "); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no partition count in the progress lines: %q", w.String())
		}
	}
	stop()
	s := w.String()
	if !strings.HasPrefix(s, "\r\033[Kcreating topic t (4 × 1 MiB): ") || !strings.Contains(s, "s elapsed") || !strings.HasSuffix(s, "\r\033[K") {
		t.Errorf("progress output %q", s)
	}
	if first := s[:strings.Index(s[1:], "\r")+1]; strings.Contains(first, "partitions made") {
		t.Errorf("a count shown before any was read: %q", first)
	}
	var quiet testdaemon.Buffer
	progress(&quiet, "x", time.Hour, nil)()
	if quiet.String() != "" {
		t.Errorf("a quick create printed %q", quiet.String())
	}
	if isTerminal(&quiet) {
		t.Error("a buffer is not a terminal")
	}
}

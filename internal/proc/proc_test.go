package proc

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestParseStat(t *testing.T) {
	// A comm with spaces and parentheses; state T; flags 0x404; start 12345.
	line := "4242 (my (odd) prog) T 1 4242 4242 0 -1 1028 10 0 0 0 1 2 0 0 20 0 1 0 12345 1000 100 18446744073709551615\n"
	s, err := ParseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	want := Stat{PID: 4242, Comm: "my (odd) prog", State: 'T', Flags: 1028, StartTicks: 12345}
	if s != want {
		t.Fatalf("got %+v, want %+v", s, want)
	}
	if !s.Stopped() || !s.Running() || s.Flags&PFExiting != PFExiting || s.Identity() != (Identity{4242, 12345}) {
		t.Fatalf("%+v: stopped %v running %v", s, s.Stopped(), s.Running())
	}
	for _, bad := range []string{"", "4242", "4242 (x", "x (c) R 1", "4242 (c) R 1 2 3", "4242 (c) RR 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"} {
		if _, err := ParseStat([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseStat(%q): %v, want ErrMalformed", bad, err)
		}
	}
}

// TestSelf reads this process from the real /proc, and a fixture tree
// for a zombie and a reused pid.
func TestSelf(t *testing.T) {
	s, err := ReadStat("", os.Getpid())
	if err != nil || s.PID != os.Getpid() || !s.Running() || s.StartTicks == 0 {
		t.Fatalf("self: %+v, %v", s, err)
	}
	if !s.Identity().Alive("") || (Identity{PID: os.Getpid(), StartTicks: s.StartTicks + 1}).Alive("") {
		t.Fatal("self's identity is not alive, or another start time is")
	}
	root := t.TempDir()
	for pid, line := range map[string]string{
		"7": "7 (z) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0 0\n",
		"8": "8 (r) S 1 8 8 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 600 0 0 0\n",
	} {
		if err := os.MkdirAll(filepath.Join(root, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, pid, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		id   Identity
		want bool
	}{{Identity{7, 500}, false}, {Identity{8, 600}, true}, {Identity{8, 0}, true}, {Identity{8, 599}, false}, {Identity{9, 0}, false}} {
		if got := c.id.Alive(root); got != c.want {
			t.Errorf("%+v alive = %v, want %v", c.id, got, c.want)
		}
	}
	if _, err := ReadStat(root, 9); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing pid: %v", err)
	}
}

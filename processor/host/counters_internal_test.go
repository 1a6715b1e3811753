package host

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/processor"
)

// TestCountersLayout pins the counters region's offsets: a change is a
// deliberate one (and bumps CountersVersion).
func TestCountersLayout(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"magic", countersMagicOffset, 0}, {"version", countersVersionOffset, 8}, {"pid", countersPIDOffset, 16},
		{"updated", countersUpdatedOffset, 24}, {"in", countersInOffset, 32}, {"out", countersOutOffset, 40},
		{"dropped", countersDroppedOffset, 48}, {"failed", countersFailedOffset, 56}, {"starts", countersStartsOffset, 64},
		{"pipelines", countersPipesOffset, 72}, {"running", countersRunningOffset, 80},
		{"timed", countersTimedOffset, 88}, {"sum", countersSumOffset, 96}, {"buckets", countersBucketsOffset, 104},
		{"length", CountersLength, 280},
	} {
		if c.got != c.want || c.got%8 != 0 {
			t.Errorf("%s at %d, want %d (8-byte aligned)", c.name, c.got, c.want)
		}
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], CountersMagic)
	if string(b[:]) != "KXPCNT01" {
		t.Errorf("magic %#x reads %q", CountersMagic, b[:])
	}
}

// TestCountersRoundTrip: a region reads ErrCountersNotReady until its
// header is valid, then what was stored; an unknown version is named.
func TestCountersRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.counters")
	if _, err := ReadCounters(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	os.WriteFile(path, nil, 0o600)
	if _, err := ReadCounters(path); !errors.Is(err, ErrCountersNotReady) {
		t.Fatalf("empty file: %v", err)
	}
	mem, err := mapCounters(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if _, err := ReadCounters(path); !errors.Is(err, ErrCountersNotReady) {
		t.Fatalf("zeroed region: %v", err)
	}
	want := Counters{PID: 77, UpdatedNS: 5, In: 10, Out: 9, Dropped: 1, Failed: 2, Starts: 3, Pipelines: 2, Running: 1}
	want.Timing = processor.Timing{Count: 4, SumNS: 400}
	want.Timing.Buckets[3] = 4
	writeCounters(mem, want)
	word(mem, countersPIDOffset).Store(77)
	word(mem, countersMagicOffset).Store(CountersMagic)
	word(mem, countersVersionOffset).Store(CountersVersion)
	got, err := ReadCounters(path)
	if err != nil || got != want {
		t.Fatalf("read %+v, %v; want %+v", got, err, want)
	}
	word(mem, countersVersionOffset).Store(9)
	if _, err := ReadCounters(path); err == nil || err.Error() != "host: counters region version 9, this build reads 1" {
		t.Fatalf("version 9: %v", err)
	}
}

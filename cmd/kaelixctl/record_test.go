package main

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/recfile"
)

func readRecording(t *testing.T, path string) ([]recfile.Record, *recfile.Reader) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := recfile.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []recfile.Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return out, r
		}
		if err != nil {
			t.Fatalf("%s record %d: %v", path, len(out), err)
		}
		out = append(out, rec)
	}
}

// TestCLIRecordReplayMillion: a million records published by pub with
// headers (and, in partition 1, a key) are recorded, replayed at max speed
// into a second topic and recorded again: both recordings hold the same
// records (payload, headers, key, partition, sequence), in order. Timing is not checked here (see
// TestCLIReplaySpacing and, over a million records, TestCLIReplaySpacingMillion). A copy of the recording cut inside its last frame
// replays every complete record and reports the torn tail.
func TestCLIRecordReplayMillion(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 20_000
	}
	d := startDaemon(t)
	dir := t.TempDir()
	for _, topic := range []string{"rec.a", "rec.b", "rec.c"} {
		d.mustCtl(t, nil, "topics", "create", topic, "--capacity", "16MiB", "--partitions", "2")
	}
	f1, f2 := filepath.Join(dir, "a.kxrec"), filepath.Join(dir, "b.kxrec")
	rec := d.start(t, nil, "record", "rec.a", "-o", f1, "--count", strconv.Itoa(n), "--for", "300s")
	d.waitSubscribers(t, "rec.a", 1)
	var in strings.Builder
	for i := 0; i < n/2; i++ {
		fmt.Fprintf(&in, "m%d\n", i)
	}
	in0 := in.String()
	d.mustCtl(t, strings.NewReader(in0), "pub", "rec.a", "-H", "src=test", "-H", "run=1", "--partition", "0", "-q")
	// Partition 1's records carry a key, routed there (FNV-1a of "sym1"
	// modulo 2 is 1): the key is recorded and replayed with them.
	if client.PartitionOf([]byte("sym1"), 2) != 1 {
		t.Fatal("the test's key no longer routes to partition 1")
	}
	d.mustCtl(t, strings.NewReader(in0), "pub", "rec.a", "-H", "src=test", "--key", "sym1", "-q")
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record: exit %d\n%s", code, rec.errb)
	}
	rec2 := d.start(t, nil, "record", "rec.b", "-o", f2, "--count", strconv.Itoa(n), "--for", "300s")
	d.waitSubscribers(t, "rec.b", 1)
	d.mustCtl(t, nil, "replay", f1, "--topic", "rec.b", "--speed", "max")
	if code := rec2.wait(t); code != 0 {
		t.Fatalf("record of the replay: exit %d\n%s", code, rec2.errb)
	}
	a, ra := readRecording(t, f1)
	b, _ := readRecording(t, f2)
	if len(a) != n || len(b) != n || ra.Torn() != -1 {
		t.Fatalf("recorded %d, then %d records, want %d (torn %d)", len(a), len(b), n, ra.Torn())
	}
	// A subscriber of two partitions interleaves them in its own order:
	// compare partition by partition.
	split := func(rs []recfile.Record) [2][]recfile.Record {
		var out [2][]recfile.Record
		for _, r := range rs {
			out[r.Partition] = append(out[r.Partition], r)
		}
		return out
	}
	pa, pb := split(a), split(b)
	for p := range pa {
		if len(pa[p]) != n/2 || len(pb[p]) != n/2 {
			t.Fatalf("partition %d: %d then %d records, want %d", p, len(pa[p]), len(pb[p]), n/2)
		}
		want := map[string]string{"src": "test"}
		var wantKey []byte
		if p == 0 {
			want["run"] = "1"
		} else {
			wantKey = []byte("sym1")
		}
		for i := range pa[p] {
			x, y := pa[p][i], pb[p][i]
			if x.Sequence != uint64(i) || y.Sequence != uint64(i) || string(x.Payload) != fmt.Sprintf("m%d", i) || string(x.Payload) != string(y.Payload) ||
				!maps.Equal(x.Headers, y.Headers) || !maps.Equal(x.Headers, want) || x.TimestampNS == 0 || y.TimestampNS == 0 || x.ReceivedNS < x.TimestampNS ||
				!bytes.Equal(x.Key, wantKey) || !bytes.Equal(y.Key, wantKey) {
				t.Fatalf("partition %d record %d: recorded %+v, after replay %+v", p, i, x, y)
			}
		}
	}

	// Torn: cut inside the last frame.
	whole, err := os.ReadFile(f1)
	if err != nil {
		t.Fatal(err)
	}
	torn := filepath.Join(dir, "torn.kxrec")
	os.WriteFile(torn, whole[:len(whole)-3], 0o644)
	rec3 := d.start(t, nil, "record", "rec.c", "-o", filepath.Join(dir, "c.kxrec"), "--count", strconv.Itoa(n-1), "--for", "300s")
	d.waitSubscribers(t, "rec.c", 1)
	_, errOut, code := d.ctl(t, nil, "replay", torn, "--topic", "rec.c", "--speed", "max")
	if code != 0 || !strings.Contains(errOut, fmt.Sprintf("replayed %d records", n-1)) || !strings.Contains(errOut, "torn") {
		t.Errorf("replay of a torn recording: exit %d\n%s", code, errOut)
	}
	if code := rec3.wait(t); code != 0 {
		t.Fatalf("record of the torn replay: exit %d\n%s", code, rec3.errb)
	}
	// A corrupt frame in the middle: exit 5 naming the offset.
	bad := append([]byte{}, whole...)
	bad[recfile.HeaderBytes+100*40] ^= 0x55
	os.WriteFile(torn, bad, 0o644)
	if _, errOut, code := d.ctl(t, nil, "replay", torn, "--topic", "rec.c", "--speed", "max"); code != exitInvalid || !strings.Contains(errOut, "corrupt") {
		t.Errorf("replay of a corrupt recording: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := d.ctl(t, nil, "replay", f1, "--topic", "rec.c", "--speed", "fast"); code != exitUsage || !strings.Contains(errOut, "not a speed") {
		t.Errorf("--speed fast: exit %d\n%s", code, errOut)
	}
}

// TestCLIReplaySpacing: 60 records published 20 ms apart (pub --rate 50)
// are recorded and replayed at 1x and at 2x, each replay recorded again.
// The replay's span (first to last publish timestamp) must be the
// original's within 10% plus 100 ms at 1x, half of it likewise at 2x: a
// generous bound for a loaded 2-core VM, where a single late wakeup can
// shift the last record; the pacing is from the replay's start, so
// lateness does not add up. --from/--to select exactly the records whose
// recorded time falls in the window.
func TestCLIReplaySpacing(t *testing.T) {
	d := startDaemon(t)
	dir := t.TempDir()
	for _, topic := range []string{"sp.a", "sp.b", "sp.c", "sp.d"} {
		d.mustCtl(t, nil, "topics", "create", topic)
	}
	const n = 60
	orig := filepath.Join(dir, "orig")
	rec := d.start(t, nil, "record", "sp.a", "-o", orig, "--count", strconv.Itoa(n), "--for", "120s")
	d.waitSubscribers(t, "sp.a", 1)
	d.mustCtl(t, nil, "pub", "sp.a", "x", "--count", strconv.Itoa(n), "--rate", "50", "-q")
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record: exit %d\n%s", code, rec.errb)
	}
	a, _ := readRecording(t, orig)
	span := func(r []recfile.Record) time.Duration {
		return time.Duration(r[len(r)-1].TimestampNS - r[0].TimestampNS)
	}
	want := span(a)
	if len(a) != n || want < 500*time.Millisecond {
		t.Fatalf("original: %d records over %v", len(a), want)
	}
	for _, c := range []struct {
		topic, speed string
		factor       float64
	}{{"sp.b", "1x", 1}, {"sp.c", "2x", 2}} {
		out := filepath.Join(dir, c.topic)
		rec := d.start(t, nil, "record", c.topic, "-o", out, "--count", strconv.Itoa(n), "--for", "120s")
		d.waitSubscribers(t, c.topic, 1)
		d.mustCtl(t, nil, "replay", orig, "--topic", c.topic, "--speed", c.speed, "-q")
		if code := rec.wait(t); code != 0 {
			t.Fatalf("record: exit %d\n%s", code, rec.errb)
		}
		b, _ := readRecording(t, out)
		got, exp := span(b), time.Duration(float64(want)/c.factor)
		if diff := (got - exp).Abs(); diff > exp/10+100*time.Millisecond {
			t.Errorf("--speed %s: replay spans %v, want %v (original %v)", c.speed, got, exp, want)
		}
		t.Logf("--speed %s: original span %v, replay %v", c.speed, want, got)
	}
	from, to := 300*time.Millisecond, 700*time.Millisecond
	inWindow := 0
	for _, r := range a {
		if rel := time.Duration(r.TimestampNS - a[0].TimestampNS); rel >= from && rel <= to {
			inWindow++
		}
	}
	rec = d.start(t, nil, "record", "sp.d", "-o", filepath.Join(dir, "d"), "--for", "120s", "--count", strconv.Itoa(inWindow))
	d.waitSubscribers(t, "sp.d", 1)
	_, errOut, code := d.ctl(t, nil, "replay", orig, "--topic", "sp.d", "--speed", "max", "--from", from.String(), "--to", to.String())
	if code != 0 || !strings.Contains(errOut, fmt.Sprintf("replayed %d records", inWindow)) {
		t.Errorf("replay --from --to: exit %d, want %d records\n%s", code, inWindow, errOut)
	}
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record: exit %d\n%s", code, rec.errb)
	}
}

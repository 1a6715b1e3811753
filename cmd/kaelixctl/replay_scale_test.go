package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/recfile"
)

// TestCLIReplaySpacingMillion: replay keeps the recorded spacing at 1x
// over a million records. The recording is written by the test with
// synthetic publish timestamps (no need to publish a million records in
// real time first): 300,000 records 10 µs apart (100,000/s), a 500 ms
// pause, then 7,000 bursts of 100 records 1 µs apart (1,000,000/s), 500
// µs between bursts; about 7.7 s in all. kaelixctl replay --speed 1x publishes it to a
// topic that kaelixctl record records again, and each replayed record's
// offset from the first (its publish timestamp, stamped by the replaying
// publisher) is compared with its due offset in the original:
//
//   - never early by more than 2 ms (replay sends records due within
//     100 µs at once, and the first record's own latency shifts the
//     offsets), so the pause and the gaps between bursts are kept;
//   - the whole span within 10% (the bound);
//   - the median lateness under 50 ms and the 99th percentile under 10%
//     of the span: pacing runs from the replay's start, so a late wake-up on a
//     loaded host delays the records due meanwhile, which go out at once
//     after it, and does not add up;
//   - payload, headers and partition of every record unchanged.
//
// Bounds are generous for a loaded 2-core VM; the measured figures are
// logged.
func TestCLIReplaySpacingMillion(t *testing.T) {
	if testing.Short() {
		t.Skip("a million records replayed in real time (about 8 s)")
	}
	const (
		dense, bursts, burstLen = 300_000, 7_000, 100
		n                       = dense + bursts*burstLen
	)
	d := startDaemon(t)
	dir := t.TempDir()
	d.mustCtl(t, nil, "topics", "create", "spm.a", "--capacity", "16MiB", "--partitions", "2")

	// The original: synthetic CLOCK_MONOTONIC publish timestamps.
	t0 := time.Now()
	orig := filepath.Join(dir, "orig.kxrec")
	f, err := os.Create(orig)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w, err := recfile.NewWriter(bw, time.Now().UnixNano())
	if err != nil {
		t.Fatal(err)
	}
	due := make([]int64, n) // ns from the first record
	at := int64(0)
	hdr := map[string]string{}
	var payload []byte
	for i := range n {
		switch {
		case i == 0:
		case i < dense:
			at += 10_000
		case i == dense:
			at += 500_000_000
		case (i-dense)%burstLen == 0:
			at += 500_000
		default:
			at += 1_000
		}
		due[i] = at
		// One map and buffer for every record: Write encodes them at once.
		hdr["i"] = strconv.Itoa(i)
		if i%3 == 0 {
			hdr["src"] = "synthetic"
		} else {
			delete(hdr, "src")
		}
		payload = strconv.AppendInt(append(payload[:0], "payload "...), int64(i), 10)
		r := recfile.Record{Partition: i % 2, Sequence: uint64(i / 2), TimestampNS: 1_000_000_000_000 + at, ReceivedNS: 1_000_000_000_000 + at + 500,
			Headers: hdr, Payload: payload}
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	wrote := time.Since(t0)
	out := filepath.Join(dir, "replayed.kxrec")
	rec := d.start(t, nil, "record", "spm.a", "-o", out, "--count", strconv.Itoa(n), "--for", "120s")
	d.waitSubscribers(t, "spm.a", 1)
	start := time.Now()
	d.mustCtl(t, nil, "replay", orig, "--topic", "spm.a", "--speed", "1x", "-q")
	took := time.Since(start)
	if code := rec.wait(t); code != 0 {
		t.Fatalf("record: exit %d\n%s", code, rec.errb)
	}
	// The recorder interleaves the two partitions in its own order: find
	// each record by its "i" header, and check it against the original.
	// Streamed (a million records held at once slow the race detector).
	t1 := time.Now()
	rf, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	rd, err := recfile.NewReader(bufio.NewReaderSize(rf, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	var first int64 = -1
	late := make([]int64, n) // publish timestamps, then lateness
	seen := make([]bool, n)
	count := 0
	for {
		r, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("replayed recording, record %d: %v", count, err)
		}
		count++
		i, err := strconv.Atoi(r.Headers["i"])
		if err != nil || i < 0 || i >= n || seen[i] {
			t.Fatalf("replayed record with header i=%q (duplicate or unknown): %+v", r.Headers["i"], r)
		}
		seen[i] = true
		wantHeaders := 1 // "i", and "src" = "synthetic" on every third
		if i%3 == 0 {
			wantHeaders = 2
		}
		if !bytes.Equal(r.Payload, strconv.AppendInt([]byte("payload "), int64(i), 10)) || r.Partition != i%2 ||
			len(r.Headers) != wantHeaders || (i%3 == 0 && r.Headers["src"] != "synthetic") || r.TimestampNS == 0 {
			t.Fatalf("record %d after replay: %+v", i, r)
		}
		if i == 0 {
			first = r.TimestampNS
		}
		late[i] = r.TimestampNS
	}
	if count != n || rd.Torn() != -1 {
		t.Fatalf("recorded %d replayed records (torn tail %d), want %d", count, rd.Torn(), n)
	}
	for i := range late {
		late[i] = late[i] - first - due[i]
	}
	t.Logf("wrote the original in %v, read and checked the replay in %v", wrote.Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
	span := time.Duration(due[n-1])
	gotSpan := span + time.Duration(late[n-1])
	sorted := slices.Clone(late)
	slices.Sort(sorted)
	q := func(p float64) time.Duration { return time.Duration(sorted[int(p*float64(n-1))]) }
	t.Logf("replayed %d records in %v: original span %v, replay %v (%+.2f%%); lateness min %v p50 %v p90 %v p99 %v max %v",
		n, took.Round(time.Millisecond), span, gotSpan, 100*float64(gotSpan-span)/float64(span), q(0), q(0.5), q(0.9), q(0.99), q(1))
	for _, part := range []struct {
		name     string
		from, to int
	}{{"dense", 0, dense}, {"bursts", dense, n}} {
		s := slices.Clone(late[part.from:part.to])
		slices.Sort(s)
		t.Logf("%s: p50 %v p99 %v max %v", part.name, time.Duration(s[len(s)/2]), time.Duration(s[len(s)*99/100]), time.Duration(s[len(s)-1]))
	}
	if early := q(0); early < -2*time.Millisecond {
		i := slices.Index(late, int64(early))
		t.Errorf("record %d went out %v early (due at %v)", i, -early, time.Duration(due[i]))
	}
	if diff := (gotSpan - span).Abs(); diff > span/10 {
		t.Errorf("replay spans %v, original %v: more than 10%% apart", gotSpan, span)
	}
	if q(0.5) > 50*time.Millisecond || q(0.99) > span/10 {
		t.Errorf("lateness p50 %v (bound 50ms), p99 %v (bound %v, 10%% of the span)", q(0.5), q(0.99), span/10)
	}
}

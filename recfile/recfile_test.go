package recfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"testing"
)

func sample(i int) Record {
	r := Record{Partition: i % 3, Sequence: uint64(i), TimestampNS: int64(1000 + i*7), ReceivedNS: int64(2000 + i*7),
		Payload: []byte(fmt.Sprintf("payload-%d", i))}
	if i%2 == 0 {
		r.Headers = map[string]string{"trace": fmt.Sprint(i), "a": ""}
	}
	if i%5 == 0 {
		r.Key = []byte("key")
	}
	if i%7 == 0 {
		r.Payload = []byte{}
	}
	return r
}

func same(a, b Record) bool {
	return a.Partition == b.Partition && a.Sequence == b.Sequence && a.TimestampNS == b.TimestampNS &&
		a.ReceivedNS == b.ReceivedNS && bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Payload, b.Payload) &&
		maps.Equal(a.Headers, b.Headers)
}

func encode(t testing.TB, recs []Record) []byte {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, 42)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func readAll(b []byte) ([]Record, *Reader, error) {
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, nil, err
	}
	var out []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return out, r, nil
		}
		if err != nil {
			return out, r, err
		}
		out = append(out, rec)
	}
}

// TestRoundTripMillion: a million records through a file come back
// identical (payload, headers, key, partition, sequence, timestamps), in
// order, and the file ends cleanly.
func TestRoundTripMillion(t *testing.T) {
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 100_000
	}
	path := filepath.Join(t.TempDir(), "rec")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(f, 42)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := w.Write(sample(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if r.CreatedNS() != 42 {
		t.Errorf("created %d", r.CreatedNS())
	}
	for i := 0; ; i++ {
		rec, err := r.Next()
		if err == io.EOF {
			if i != n {
				t.Fatalf("read %d records, wrote %d", i, n)
			}
			break
		}
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if want := sample(i); !same(rec, want) {
			t.Fatalf("record %d: %+v, want %+v", i, rec, want)
		}
	}
	if r.Torn() != -1 {
		t.Errorf("clean file reports a torn tail of %d bytes", r.Torn())
	}
}

// TestTornTail: a file cut at every byte of its last frame (a crash during
// that write) yields every earlier record, reports the tail torn, and never
// returns the partial record; so does a tail of zeroes or a last frame
// whose bytes did not all land.
func TestTornTail(t *testing.T) {
	recs := []Record{sample(1), sample(2), sample(3)}
	full := encode(t, recs)
	last := len(encode(t, recs[:2]))
	for cut := last + 1; cut < len(full); cut++ {
		got, r, err := readAll(full[:cut])
		if err != nil || len(got) != 2 || r.Torn() != int64(cut-last) {
			t.Fatalf("cut at %d: %d records, err %v, torn %d (want 2, nil, %d)", cut, len(got), err, r.Torn(), cut-last)
		}
	}
	zeroed := append(append([]byte{}, full...), make([]byte, 4096)...)
	if got, r, err := readAll(zeroed); err != nil || len(got) != 3 || r.Torn() != 4096 {
		t.Errorf("zero tail: %d records, %v, torn %d", len(got), err, r.Torn())
	}
	garbled := append([]byte{}, full...)
	garbled[len(garbled)-1] ^= 0xff // the last frame's payload did not land
	if got, r, err := readAll(garbled); err != nil || len(got) != 2 || r.Torn() <= 0 {
		t.Errorf("last frame garbled: %d records, %v, torn %d", len(got), err, r.Torn())
	}
}

// TestCorrupt: a damaged frame in the middle is a *CorruptError naming its
// offset, after the records before it; bad headers are refused by kind.
func TestCorrupt(t *testing.T) {
	recs := []Record{sample(1), sample(2), sample(3)}
	full := encode(t, recs)
	second := len(encode(t, recs[:1]))
	b := append([]byte{}, full...)
	b[second+FrameHeaderBytes+3] ^= 1 // inside record 2's sequence
	got, _, err := readAll(b)
	var ce *CorruptError
	if len(got) != 1 || !errors.As(err, &ce) || ce.Offset != int64(second) || !errors.Is(err, ErrCorrupt) {
		t.Errorf("flipped bit: %d records, %v", len(got), err)
	}
	b = append([]byte{}, full...)
	b[second] = 0xff
	b[second+3] = 0x7f // length 2 GiB
	if _, _, err := readAll(b); !errors.As(err, &ce) {
		t.Errorf("huge length: %v", err)
	}
	if _, _, err := readAll([]byte("not a record file at all, sorry")); !errors.Is(err, ErrBadMagic) {
		t.Errorf("bad magic: %v", err)
	}
	v2 := append([]byte{}, full...)
	v2[versionOffset] = 2
	var ve *VersionError
	if _, _, err := readAll(v2); !errors.As(err, &ve) || ve.Got != 2 {
		t.Errorf("version 2: %v", err)
	}
	h := append([]byte{}, full...)
	h[createdOffset] ^= 1
	if _, _, err := readAll(h); !errors.As(err, &ce) {
		t.Errorf("header checksum: %v", err)
	}
	if _, _, err := readAll(full[:10]); err == nil {
		t.Error("a 10-byte file was accepted")
	}
}

// FuzzReader: any input either fails cleanly or yields records that, written
// again, give back the same frames: nothing is misread, nothing panics, and
// the reader's work is bounded by the input.
func FuzzReader(f *testing.F) {
	f.Add(encode(f, []Record{sample(0), sample(1), sample(2)}))
	f.Add(encode(f, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, r, err := readAll(b)
		if r == nil {
			return
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error of another kind: %v", err)
		}
		// Every record returned came from a frame that checked out: the
		// same records written again are a prefix of the input, past its
		// header (when the input's header says 32 bytes).
		again := encode(t, got)
		if len(b) >= HeaderBytes && int(b[hdrBytesOffset]) == HeaderBytes && b[hdrBytesOffset+1] == 0 {
			for _, rec := range got {
				if rec.Headers != nil && len(rec.Headers) == 0 {
					t.Fatalf("empty header map")
				}
			}
			if !bytes.Equal(again[HeaderBytes:], b[HeaderBytes:HeaderBytes+len(again)-HeaderBytes]) {
				t.Fatalf("records re-encode to other bytes than were read")
			}
		}
	})
}

// raceEnabled is set under -race (race_test.go), where the million-record
// round trip takes minutes: it then runs 100,000.
var raceEnabled bool

package ringbuf

// Lapped readers (issue 16.5): a reader lapped under drop-oldest resumes
// half a ring behind the tail, so it reads a run of records before it can
// be lapped again; its losses are counted exactly, and the lapped counter
// equals the gaps it can see in the sequence.

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// TestLappedReaderResumesWithHeadroom: publish three rings' worth while a
// subscriber reads nothing; its next Poll reports the lap once and then
// delivers, from the first record at or after tail - capacity/2, every
// record to the tail; lost + delivered = published, and one lap counted.
func TestLappedReaderResumesWithHeadroom(t *testing.T) {
	c := DefaultConfig(MPMC)
	c.Policy = PolicyDropOldest
	c.CapacityBytes = 64 << 10
	r, _, _ := newTestRing(t, c)
	s, err := r.NewSubscriber(SubscriberOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := r.NewPublisher(PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 64) // 96-byte records: the half ring is no record boundary
	for r.TailPosition() < 3*c.CapacityBytes {
		if err := p.Offer(payload); err != nil {
			t.Fatal(err)
		}
	}
	tail, published := r.TailPosition(), r.Counters().Published
	var got []Record
	h := func(rec Record) { got = append(got, Record{Position: rec.Position, Sequence: rec.Sequence}) }
	n, err := s.Poll(h, 1<<20)
	if !errors.Is(err, ErrLapped) || n == 0 {
		t.Fatalf("first poll after the laps: %d records, %v; want records and ErrLapped", n, err)
	}
	if n2, err := s.Poll(h, 1<<20); n2 != 0 || err != nil {
		t.Fatalf("second poll: %d, %v; want 0, nil (caught up, lap reported once)", n2, err)
	}
	first := got[0].Position
	if lo := tail - c.CapacityBytes/2; first < lo || first >= lo+spanOf(64) {
		t.Errorf("resumed at %d, want the first record at or after tail - capacity/2 = %d", first, lo)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Sequence != got[i-1].Sequence+1 {
			t.Fatalf("gap after the resume: %d then %d", got[i-1].Sequence, got[i].Sequence)
		}
	}
	if got[len(got)-1].Sequence != published-1 {
		t.Errorf("last record %d, want %d", got[len(got)-1].Sequence, published-1)
	}
	cnt := r.Counters()
	if uint64(len(got))+s.Lost() != published || cnt.Lost != s.Lost() || got[0].Sequence != s.Lost() {
		t.Errorf("delivered %d + lost %d (ring says %d) != published %d, or the first delivered is %d", len(got), s.Lost(), cnt.Lost, published, got[0].Sequence)
	}
	if cnt.Lapped != 1 {
		t.Errorf("lapped counter %d, want 1 (one gap)", cnt.Lapped)
	}
}

// xpRunPacedPub publishes a.Count records of a.MaxLen bytes at a.Rate
// records per second (in bursts of one millisecond's worth), with Offer.
func xpRunPacedPub(r *Ring, a xpArgs) (*xpPubResult, error) {
	p, err := r.NewPublisher(PublisherOptions{})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	payload := make([]byte, a.MaxLen)
	start := time.Now()
	for i := uint64(0); i < a.Count; i++ {
		if due := start.Add(time.Duration(float64(i) / a.Rate * float64(time.Second))); time.Until(due) > 500*time.Microsecond {
			time.Sleep(time.Until(due))
		}
		if err := p.Offer(payload); err != nil {
			return nil, err
		}
	}
	return &xpPubResult{Published: a.Count, Counters: r.Counters()}, nil
}

// TestCrossProcSlowReaderLaps: a publisher process writes 64-byte
// records at 10,000 a second into a 64 KiB drop-oldest ring, while this
// process reads one record per millisecond (about a tenth of the rate).
// Every lap must be followed by a run of records (before the fix 95% of
// laps delivered only the record the reader resumed at; from half a ring
// behind, about 34 here), received + lost must equal published, and the
// ring's lapped counter and the ErrLapped returns must both equal the
// gaps visible in the sequence.
func TestCrossProcSlowReaderLaps(t *testing.T) {
	n := xpScale(20_000, 10_000)
	c := DefaultConfig(MPMC)
	c.Policy = PolicyDropOldest
	c.CapacityBytes = 64 << 10
	h := newXPHarness(t, c, xpBudget(time.Minute))
	s, err := h.r.NewSubscriber(SubscriberOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pub := h.start("pub", "pub-paced", xpArgs{Count: n, MaxLen: 64, Rate: 10_000})
	var received, gaps, errLapped uint64
	var runs []int // records delivered after each gap, up to the next
	next := uint64(0)
	hd := func(rec Record) {
		if rec.Sequence != next {
			gaps++
			runs = append(runs, 0)
		}
		if len(runs) > 0 {
			runs[len(runs)-1]++
		}
		next = rec.Sequence + 1
		received++
	}
	var pr xpPubResult
	pubDone := false
	for !pubDone || received+s.Lost() < n {
		k, err := s.Poll(hd, 1)
		switch {
		case errors.Is(err, ErrLapped):
			errLapped++
		case err != nil:
			t.Fatalf("poll after %d records: %v", received, err)
		}
		if k > 0 {
			time.Sleep(time.Millisecond) // the slow reader's work
		} else if !pubDone {
			select {
			case js := <-pub.result:
				pub.result <- js // waitResult reads it
				pub.waitResult(&pr)
				pubDone = true
			default:
				time.Sleep(100 * time.Microsecond)
			}
		} else {
			break
		}
		if h.remaining() <= 0 {
			h.fail("HANG: %d received + %d lost of %d", received, s.Lost(), n)
		}
	}
	cnt := h.r.Counters()
	slices.Sort(runs)
	median := 0
	if len(runs) > 0 {
		median = runs[len(runs)/2]
	}
	ones := 0
	for _, r := range runs {
		if r == 1 {
			ones++
		}
	}
	t.Logf("%d published, %d received, %d lost; %d gaps, %d ErrLapped, lapped counter %d; runs after a lap: median %d, %d of %d just one record",
		cnt.Published, received, s.Lost(), gaps, errLapped, cnt.Lapped, median, ones, len(runs))
	if cnt.Published != n || received+s.Lost() != n || cnt.Lost != s.Lost() {
		t.Errorf("received %d + lost %d (ring: %d) != published %d (ring: %d)", received, s.Lost(), cnt.Lost, n, cnt.Published)
	}
	if cnt.Lapped != gaps || errLapped != gaps {
		t.Errorf("lapped counter %d and ErrLapped returns %d, want both = the %d gaps in the sequence", cnt.Lapped, errLapped, gaps)
	}
	if gaps < 5 {
		t.Errorf("only %d laps: the reader was not slow enough for the test to say anything", gaps)
	}
	if median < 4 {
		t.Errorf("median run after a lap is %d records: lapped readers are lapped again at once", median)
	}
}

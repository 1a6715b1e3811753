package ringbuf

// WaitSet: one sleeper on the data doorbells of many rings (wait.go).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

func TestNewWaitSetErrors(t *testing.T) {
	if _, err := NewWaitSet(nil); !errors.Is(err, ErrConfig) {
		t.Errorf("empty set: %v, want ErrConfig", err)
	}
	r, _, _ := newTestRing(t, DefaultConfig(MPMC))
	s, err := r.NewSubscriber(SubscriberOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := NewWaitSet([]*Subscriber{s, nil}); !errors.Is(err, ErrConfig) {
		t.Errorf("nil subscriber: %v, want ErrConfig", err)
	}
}

// waitSetRings makes n MPMC rings, a blocking subscriber on each and a
// WaitSet over them.
func waitSetRings(t *testing.T, n int) ([]*Ring, []*Subscriber, *WaitSet) {
	t.Helper()
	c := DefaultConfig(MPMC)
	c.CapacityBytes = 64 << 10
	var rings []*Ring
	var subs []*Subscriber
	for range n {
		r, _, _ := newTestRing(t, c)
		s, err := r.NewSubscriber(SubscriberOptions{Wait: Blocking})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		rings, subs = append(rings, r), append(subs, s)
	}
	ws, err := NewWaitSet(subs)
	if err != nil {
		t.Fatal(err)
	}
	return rings, subs, ws
}

// TestWaitSetWakesOnAnyRing: a park over three rings returns when a
// record is committed on any one of them, and counts one membarrier and
// its futex sleeps in the first subscriber's slot only.
func TestWaitSetWakesOnAnyRing(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) {
			if fallback {
				waitvMissing.Store(true)
				defer waitvMissing.Store(false)
			}
			for k := range 3 {
				rings, subs, ws := waitSetRings(t, 3)
				pub, err := rings[k].NewPublisher(PublisherOptions{})
				if err != nil {
					t.Fatal(err)
				}
				go func() {
					time.Sleep(20 * time.Millisecond) // most likely asleep by then; either way nothing may be lost
					pub.Offer([]byte("wake"))
				}()
				start := time.Now()
				if err := ws.Idle(0, nanotime()+int64(30*time.Second), nil); err != nil {
					t.Fatal(err)
				}
				if el := time.Since(start); el > 10*time.Second {
					t.Fatalf("ring %d: woke after %v", k, el)
				}
				var got []byte
				n, err := subs[k].Poll(func(r Record) { got = append(got, r.Payload...) }, 1)
				if n != 1 || err != nil || string(got) != "wake" {
					t.Fatalf("ring %d: poll after the wake: %d %v %q", k, n, err, got)
				}
				c0 := rings[0].Counters()
				if c0.Fences != 1 || c0.Waits == 0 {
					t.Errorf("ring %d: first ring counts %d fences and %d waits, want 1 and at least 1", k, c0.Fences, c0.Waits)
				}
				for i := 1; i < 3; i++ {
					if c := rings[i].Counters(); c.Fences != 0 || c.Waits != 0 {
						t.Errorf("ring %d: ring %d counts %d fences and %d waits, want none (counted once, in the first)", k, i, c.Fences, c.Waits)
					}
				}
				for i, r := range rings {
					if w := r.m.cu32(dataWaitersOffset).Load(); w != 0 {
						t.Errorf("ring %d: ring %d still counts %d sleepers", k, i, w)
					}
				}
			}
		})
	}
}

// TestWaitSetIdleSleepsWithoutFences: an idle park re-sleeps after each
// bounded sleep without a new membarrier, until its deadline; then Idle
// says ErrTimeout.
func TestWaitSetIdleSleepsWithoutFences(t *testing.T) {
	defer func(d time.Duration) { idleParkCap = d }(idleParkCap)
	idleParkCap = 5 * time.Millisecond
	rings, _, ws := waitSetRings(t, 4)
	deadline := nanotime() + int64(100*time.Millisecond)
	if err := ws.Idle(0, deadline, nil); err != nil {
		t.Fatal(err)
	}
	if now := nanotime(); now < deadline {
		t.Fatalf("park returned %v before its deadline with nothing to read", time.Duration(deadline-now))
	}
	c := rings[0].Counters()
	if c.Fences != 1 || c.Waits < 5 {
		t.Errorf("100 ms parked in 5 ms sleeps: %d fences, %d sleeps; want 1 fence and about 20 sleeps", c.Fences, c.Waits)
	}
	if err := ws.Idle(1, deadline, nil); err != ErrTimeout {
		t.Errorf("Idle past the deadline: %v, want ErrTimeout", err)
	}
	done := make(chan struct{})
	close(done)
	if err := ws.Idle(0, nanotime()+int64(time.Hour), done); err != nil {
		t.Errorf("Idle with done closed: %v", err)
	}
}

// xpMultiSubResult is a multisub child's report.
type xpMultiSubResult struct {
	Err      string
	Received int
	WorstNS  int64
	Bad      string // first duplicate or out-of-range record, if any
}

// xpRunMultiSub subscribes to every ring in a.Paths with a.Wait and reads
// them all through one WaitSet until a.Expect records arrived. Each
// payload is (ring index, sequence, MonotonicNS at publish), 8 bytes each.
func xpRunMultiSub(a xpArgs) (*xpMultiSubResult, error) {
	if a.NoTimeout {
		idleParkCap = 24 * time.Hour
	}
	if a.Fallback {
		waitvMissing.Store(true)
	}
	w, ok := ParseWaitStrategy(a.Wait)
	if !ok {
		return nil, fmt.Errorf("wait strategy %q", a.Wait)
	}
	var subs []*Subscriber
	for _, p := range a.Paths {
		b, err := mapFile(p, 0, false)
		if err != nil {
			return nil, err
		}
		r, err := attachIn(b)
		if err != nil {
			return nil, err
		}
		s, err := r.NewSubscriber(SubscriberOptions{Wait: w})
		if err != nil {
			return nil, err
		}
		subs = append(subs, s)
	}
	ws, err := NewWaitSet(subs)
	if err != nil {
		return nil, err
	}
	xpEvent("ready")
	res := &xpMultiSubResult{}
	seen := make([]bool, a.Expect)
	h := func(rec Record) {
		now := MonotonicNS()
		if len(rec.Payload) != 24 {
			res.Bad = fmt.Sprintf("payload of %d bytes", len(rec.Payload))
			return
		}
		seq := binary.LittleEndian.Uint64(rec.Payload[8:])
		if seq >= a.Expect || seen[seq] {
			res.Bad = fmt.Sprintf("record %d twice or out of range", seq)
			return
		}
		seen[seq] = true
		res.Received++
		res.WorstNS = max(res.WorstNS, now-int64(binary.LittleEndian.Uint64(rec.Payload[16:])))
	}
	for i := 0; uint64(res.Received) < a.Expect && res.Bad == ""; i++ {
		n := 0
		for _, s := range subs {
			k, err := s.Poll(h, 16)
			if err != nil {
				return nil, err
			}
			n += k
		}
		if n > 0 {
			i = -1
			continue
		}
		if err := ws.Idle(i, a.DeadlineNS-time.Now().UnixNano()+MonotonicNS(), nil); err != nil && err != ErrTimeout {
			return nil, err
		}
		if xpPastDeadline(a) {
			return nil, fmt.Errorf("deadline passed with %d of %d records: a lost wakeup", res.Received, a.Expect)
		}
	}
	return res, nil
}

// TestCrossProcWaitSetNoLostWakeup: a subscriber process sleeping on 12
// rings at once, with its sleeps unbounded in time (so a lost wakeup
// hangs it rather than costing 100 ms), while this process publishes 200
// records one at a time to random rings at random intervals (0 to 20
// ms): it gets every record, each within a second (the log shows the
// real worst case), with futex_waitv and with the fallback for kernels
// without it.
func TestCrossProcWaitSetNoLostWakeup(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) {
			const rings = 12
			n := xpScale(200, 80)
			c := DefaultConfig(MPMC)
			c.CapacityBytes = 64 << 10
			c.UnblockTimeout = time.Hour // no stall checks: only doorbells wake the sleeper
			h := newXPHarness(t, c, xpBudget(time.Minute))
			rs, paths := []*Ring{h.r}, []string{h.path}
			for len(rs) < rings {
				r, _, path := newTestRing(t, c)
				rs, paths = append(rs, r), append(paths, path)
			}
			var pubs []*Publisher
			for _, r := range rs {
				p, err := r.NewPublisher(PublisherOptions{})
				if err != nil {
					t.Fatal(err)
				}
				pubs = append(pubs, p)
			}
			sub := h.start("multisub", "multisub", xpArgs{Paths: paths, Wait: "blocking", Expect: n, NoTimeout: true, Fallback: fallback})
			sub.waitEvent("ready")
			rng := rand.New(rand.NewPCG(16, 1))
			var payload [24]byte
			for seq := range n {
				time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
				k := rng.IntN(rings)
				binary.LittleEndian.PutUint64(payload[0:], uint64(k))
				binary.LittleEndian.PutUint64(payload[8:], seq)
				binary.LittleEndian.PutUint64(payload[16:], uint64(MonotonicNS()))
				if err := pubs[k].Offer(payload[:]); err != nil {
					t.Fatal(err)
				}
			}
			var res xpMultiSubResult
			sub.waitResult(&res)
			var waits, fences uint64
			for _, r := range rs {
				c := r.Counters()
				waits, fences = waits+c.Waits, fences+c.Fences
			}
			t.Logf("%d records on %d rings: worst latency %v; %d futex sleeps, %d membarriers", res.Received, rings, time.Duration(res.WorstNS), waits, fences)
			if res.Bad != "" || uint64(res.Received) != n {
				t.Fatalf("received %d of %d; %s", res.Received, n, res.Bad)
			}
			if res.WorstNS > int64(time.Second) {
				t.Errorf("a record arrived %v after its commit", time.Duration(res.WorstNS))
			}
			if waits < n/4 {
				t.Errorf("only %d sleeps for %d sporadic records: the subscriber hardly slept, the test proves little", waits, n)
			}
		})
	}
}

package ringbuf

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// splitMappings creates a ring's data and consumer areas as two files and
// returns the publisher's read-write mappings and a subscriber's view:
// the data area mapped PROT_READ, the consumer area read-write.
func splitMappings(t *testing.T, c Config) (pubData, pubCons, subData, subCons []byte) {
	t.Helper()
	d, cons, err := testSizes(c)
	if err != nil {
		t.Fatal(err)
	}
	_, dataPath := sharedMapping(t, d) // creates the file; this mapping is unused
	_, consPath := sharedMapping(t, cons)
	mapIt := func(path string, size, prot int) []byte {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if prot == unix.PROT_READ {
			f, err = os.Open(path)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b, err := unix.Mmap(int(f.Fd()), 0, size, prot, unix.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Munmap(b) })
		return b
	}
	rw := unix.PROT_READ | unix.PROT_WRITE
	return mapIt(dataPath, d, rw), mapIt(consPath, cons, rw), mapIt(dataPath, d, unix.PROT_READ), mapIt(consPath, cons, rw)
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) uint32 {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return uint32(cmd.Process.Pid)
}

// TestReadOnlySubscriber proves that subscribers never write the data
// area: every subscriber path runs against a PROT_READ mapping of it, with
// faults turned into panics that fail the test. Covered: broadcast and
// queue-group reads, wrap padding, aborted records, lapping and resync
// under drop-oldest, and stepping over a dead publisher's claim.
func TestReadOnlySubscriber(t *testing.T) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	for _, pol := range []Policy{PolicyBlock, PolicyDropOldest} {
		for _, group := range []uint32{0, 9} {
			t.Run(fmt.Sprintf("%v/group=%d", pol, group), func(t *testing.T) {
				c := DefaultConfig(MPMC)
				c.Policy, c.CapacityBytes, c.MaxPayloadBytes = pol, 4096, 300
				c.UnblockTimeout = 20 * time.Millisecond
				pd, pc, sd, sc := splitMappings(t, c)
				pr, err := createWith(pd, pc, c)
				if err != nil {
					t.Fatal(err)
				}
				sr, err := attachWith(sd, sc, true)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := sr.NewPublisher(PublisherOptions{}); !errors.Is(err, ErrReadOnly) {
					t.Fatalf("NewPublisher on a read-only data area: %v, want ErrReadOnly", err)
				}
				defer func() {
					if v := recover(); v != nil {
						t.Fatalf("a subscriber path wrote the read-only data area: %v", v)
					}
				}()
				sub, err := sr.NewSubscriber(SubscriberOptions{Group: group})
				if err != nil {
					t.Fatal(err)
				}
				pub, _ := pr.NewPublisher(PublisherOptions{})
				var got [][]byte
				h := func(rec Record) { got = append(got, bytes.Clone(rec.Payload)) }
				want := 0
				for i := 0; i < 300; i++ { // several laps with padding
					msg := bytes.Repeat([]byte{byte(i)}, 1+i%200)
					if err := pub.Offer(msg); err != nil {
						t.Fatalf("offer %d: %v", i, err)
					}
					want++
					if i%7 == 0 {
						b, _ := pub.TryClaim(10)
						b[0] = 1
						pub.Abort()
					}
					if _, err := sub.Poll(h, 100); err != nil {
						t.Fatal(err)
					}
				}
				if len(got) != want {
					t.Fatalf("got %d records, want %d", len(got), want)
				}
				if pol == PolicyDropOldest { // lap the subscriber, then resync
					for i := 0; i < 100; i++ {
						pub.Offer(make([]byte, 100))
					}
					var err error
					for i := 0; i < 5 && err == nil; i++ {
						_, err = sub.Poll(h, 1)
					}
					if !errors.Is(err, ErrLapped) || sub.Lost() == 0 {
						t.Fatalf("lapped subscriber: err %v, lost %d", err, sub.Lost())
					}
					for n := 1; n > 0; {
						n, _ = sub.Poll(h, 100)
					}
				}
				// A publisher dies between claim and commit: the subscriber
				// steps over its claim without writing the data area.
				dead, _ := pr.NewPublisher(PublisherOptions{})
				if _, err := dead.TryClaim(50); err != nil {
					t.Fatal(err)
				}
				pr.m.u32(dead.slotOff + pubPIDOffset).Store(deadPID(t))
				if err := pub.Offer([]byte("after")); err != nil {
					t.Fatal(err)
				}
				before := pr.Counters().Unblocked
				var last []byte
				deadline := time.Now().Add(10 * time.Second)
				for !bytes.Equal(last, []byte("after")) {
					if time.Now().After(deadline) {
						t.Fatalf("subscriber never stepped over the dead claim (lag %d)", sub.Lag())
					}
					sub.PollWait(func(rec Record) { last = bytes.Clone(rec.Payload) }, 1, 50*time.Millisecond)
				}
				if pr.Counters().Unblocked != before+1 {
					t.Fatalf("unblocked %d -> %d, want one more", before, pr.Counters().Unblocked)
				}
			})
		}
	}
}

func TestSplitAreasMustMatch(t *testing.T) {
	c := DefaultConfig(SPSC)
	c.CapacityBytes, c.MaxPayloadBytes = 4096, 256
	pd, pc, _, _ := splitMappings(t, c)
	if _, err := createWith(pd, pc, c); err != nil {
		t.Fatal(err)
	}
	other, _ := sharedMapping(t, len(pc))
	qd, _ := sharedMapping(t, len(pd))
	if _, err := createWith(qd, other, c); err != nil {
		t.Fatal(err)
	}
	if _, err := attachWith(pd, other, false); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("data area paired with another ring's consumer area: %v, want ErrCorrupt", err)
	}
}

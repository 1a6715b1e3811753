package soak

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/wire"
)

// The crash matrix of issue 7 with real processes. Each case runs
// crashRounds times: 5 in the ordinary suite, KAELIX_CRASH_ROUNDS (100 in
// make soak) otherwise.

func TestMain(m *testing.M) {
	MaybeChild()
	os.Exit(m.Run())
}

func crashRounds(t *testing.T) int {
	if n, err := strconv.Atoi(os.Getenv("KAELIX_CRASH_ROUNDS")); err == nil && n > 0 {
		return n
	}
	if testing.Short() {
		return 2
	}
	return 5
}

// crashEnv is one test's daemon, ledger and child parameters.
type crashEnv struct {
	t      *testing.T
	args   ChildArgs
	ledger *Ledger
	exits  chan daemon.PeerExit
	d      *daemon.Daemon
	log    string
	nextID int
}

func newCrashEnv(t *testing.T, mod func(*daemon.Config)) *crashEnv {
	t.Helper()
	dirs := testdaemon.NewDirs(t)
	dir := dirs.StateDir
	e := &crashEnv{t: t, exits: make(chan daemon.PeerExit, 1024), log: filepath.Join(dir, "children.log"), nextID: MaxGroupStreams}
	e.args = ChildArgs{Socket: dirs.SocketPath, StateDir: dir, Ledger: filepath.Join(dir, "ledger"), ShmDir: dirs.ShmDirName}
	l, err := CreateLedger(e.args.Ledger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	e.ledger = l
	if mod == nil {
		return e
	}
	cfg := DaemonConfig(e.args)
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.OnPeerExit = func(p daemon.PeerExit) { e.exits <- p }
	mod(&cfg)
	e.d = testdaemon.StartConfig(t, cfg).Daemon
	return e
}

func (e *crashEnv) client() *client.Client {
	e.t.Helper()
	c, err := client.Connect(context.Background(), client.Options{SocketPath: e.args.Socket, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// spawn starts a child; id < 0 takes the next stream id.
func (e *crashEnv) spawn(role, topic string, mod func(*ChildArgs)) *Proc {
	e.t.Helper()
	a := e.args
	a.Topic, a.Policy, a.ID = topic, string(wire.PolicyBlock), e.nextID
	e.nextID++
	if mod != nil {
		mod(&a)
	}
	p, err := Spawn(os.Args[0], role, a, e.log)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if !p.Exited() {
			p.Kill()
		}
	})
	return p
}

func (e *crashEnv) expect(p *Proc, prefix string) string {
	e.t.Helper()
	l, err := p.Expect(prefix, 60*time.Second)
	if err != nil {
		b, _ := os.ReadFile(e.log)
		e.t.Fatalf("%v\nchildren.log:\n%s", err, tail(b))
	}
	return l
}

func tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// checker receives a topic in this process and checks every record.
type checker struct {
	sub      *client.Subscriber
	next     map[uint32]uint64
	got      map[uint32]uint64
	corrupt  int
	problems []string
	last     time.Time
}

func newChecker(t *testing.T, c *client.Client, topic string) *checker {
	t.Helper()
	sub, err := c.Subscribe(context.Background(), topic, client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	return &checker{sub: sub, next: map[uint32]uint64{}, got: map[uint32]uint64{}}
}

func (k *checker) handle(m *client.Message) {
	stream, seq, _, ok := decodeRecord(m.Payload)
	if !ok {
		k.corrupt++
		k.problems = append(k.problems, fmt.Sprintf("torn or corrupt record (%d bytes)", len(m.Payload)))
		return
	}
	if seq != k.next[stream] {
		k.problems = append(k.problems, fmt.Sprintf("stream %d: got seq %d, want %d", stream, seq, k.next[stream]))
	}
	k.next[stream] = seq + 1
	k.got[stream]++
	k.last = time.Now()
}

// until polls until cond or the timeout.
func (k *checker) until(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if _, err := k.sub.Poll(k.handle, 256); err != nil && err != client.ErrLapped && !errors.Is(err, ringbuf.ErrStalled) {
			t.Fatalf("%s: poll: %v", what, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s (got %v)", what, k.got)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

func (k *checker) clean(t *testing.T) {
	t.Helper()
	if len(k.problems) > 0 {
		t.Fatalf("%d problems, first: %v", len(k.problems), k.problems[:min(5, len(k.problems))])
	}
}

func ringCounters(t *testing.T, c *client.Client, topic string) client.Counters {
	t.Helper()
	info, err := c.TopicInfo(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	return info.Partitions[0].Counters
}

func durations(ds []time.Duration) string {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return "none"
	}
	return fmt.Sprintf("min %v median %v max %v (n=%d)", s[0].Round(time.Microsecond), s[len(s)/2].Round(time.Microsecond), s[len(s)-1].Round(time.Microsecond), len(s))
}

// TestCrashPublisherKilledMidClaim: a publisher process SIGKILLed between
// claim and commit (after a random number of records, at a random moment
// of its hold, with half its record written). The subscriber never sees
// the torn record, continues (within the unblock timeout after the
// death), gets every record of the next publisher, and the ring's
// unblocked count equals the number of kills.
func TestCrashPublisherKilledMidClaim(t *testing.T) {
	e := newCrashEnv(t, func(c *daemon.Config) {})
	c := e.client()
	const topic = "crash.claim-kill"
	if _, err := c.CreateTopic(context.Background(), client.TopicConfig{Name: topic, CapacityBytes: 64 << 10, MaxMessageBytes: 1024}); err != nil {
		t.Fatal(err)
	}
	k := newChecker(t, c, topic)
	rounds := crashRounds(t)
	var resumed []time.Duration
	for i := range rounds {
		before := k.got
		_ = before
		n := uint64(rand.IntN(50))
		p := e.spawn("claim-hold", topic, func(a *ChildArgs) { a.Count = n })
		e.expect(p, "claimed")
		k.until(t, "records before the claim", 30*time.Second, func() bool { return k.got[uint32(p.Args.ID)] == n })
		time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
		p.Kill()
		killed := time.Now()
		q := e.spawn("pub", topic, func(a *ChildArgs) { a.Count = 100 })
		k.until(t, "the next publisher's first record", 30*time.Second, func() bool { return k.got[uint32(q.Args.ID)] > 0 })
		resumed = append(resumed, time.Since(killed))
		k.until(t, "the next publisher's records", 30*time.Second, func() bool { return k.got[uint32(q.Args.ID)] == 100 })
		if err := q.Wait(30 * time.Second); err != nil {
			t.Fatalf("round %d: publisher: %v", i, err)
		}
	}
	k.clean(t)
	if got := ringCounters(t, c, topic).Unblocked; got != uint64(rounds) {
		t.Errorf("unblocked %d claims, want exactly %d (one per kill)", got, rounds)
	}
	t.Logf("%d publishers killed mid-claim; subscriber resumed after the kill: %s", rounds, durations(resumed))
}

// TestCrashPublisherStoppedMidClaim: a publisher SIGSTOPped between
// claim and commit for less than the unblock timeout (and, in odd rounds,
// for several timeouts) is never overwritten: after SIGCONT its record
// arrives intact and in order, and nothing is unblocked.
func TestCrashPublisherStoppedMidClaim(t *testing.T) {
	e := newCrashEnv(t, func(c *daemon.Config) {})
	c := e.client()
	const topic = "crash.claim-stop"
	if _, err := c.CreateTopic(context.Background(), client.TopicConfig{Name: topic, CapacityBytes: 64 << 10, MaxMessageBytes: 1024}); err != nil {
		t.Fatal(err)
	}
	k := newChecker(t, c, topic)
	rounds := crashRounds(t)
	for i := range rounds {
		// Commits 150 ms after claiming, counted while it runs.
		p := e.spawn("claim-hold", topic, func(a *ChildArgs) { a.Count, a.PaceEvery = 3, 150 })
		e.expect(p, "claimed")
		p.Signal(syscall.SIGSTOP)
		if err := p.WaitState('T', 5*time.Second); err != nil {
			t.Fatal(err)
		}
		stop := time.Duration(10+rand.IntN(80)) * time.Millisecond
		if i%2 == 1 {
			stop = 400 * time.Millisecond
		}
		q := e.spawn("pub", topic, func(a *ChildArgs) { a.Count = 50 })
		end := time.Now().Add(stop)
		k.until(t, "the stop", stop+10*time.Second, func() bool { return time.Now().After(end) })
		if k.got[uint32(q.Args.ID)] != 0 {
			t.Fatalf("round %d: records behind a stopped publisher's claim were delivered", i)
		}
		p.Signal(syscall.SIGCONT)
		k.until(t, "every record", 30*time.Second, func() bool { return k.got[uint32(p.Args.ID)] == 4 && k.got[uint32(q.Args.ID)] == 50 })
		p.Wait(10 * time.Second)
		q.Wait(10 * time.Second)
	}
	k.clean(t)
	if got := ringCounters(t, c, topic).Unblocked; got != 0 {
		t.Errorf("unblocked %d claims of stopped (live) publishers, want 0", got)
	}
}

// TestCrashSubscriberKilledHolding: among three subscriber processes of a
// block topic, one holds a record (inside its handler) until it is
// SIGKILLed. The daemon detects the death through the pidfd (target
// 10 ms), the blocked publisher is released (target 100 ms), and the two
// live subscribers get everything, in order, without a gap.
func TestCrashSubscriberKilledHolding(t *testing.T) {
	e := newCrashEnv(t, func(c *daemon.Config) { c.Daemon.SweepInterval = time.Hour })
	c := e.client()
	const topic = "crash.sub-kill"
	if _, err := c.CreateTopic(context.Background(), client.TopicConfig{Name: topic, CapacityBytes: 16 << 10, MaxMessageBytes: 1024}); err != nil {
		t.Fatal(err)
	}
	live := []*Proc{e.spawn("sub", topic, nil), e.spawn("sub", topic, nil)}
	for _, s := range live {
		e.expect(s, "ready")
	}
	pub, err := c.NewPublisher(context.Background(), topic, client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	stream := e.nextID
	e.nextID++
	e.ledger.stream(stream, stTopic).Store(1)
	e.ledger.stream(stream, stStartNS).Store(1)
	buf := make([]byte, MinRecordBytes+maxFill)
	var seq uint64
	publish := func(ctx context.Context) error {
		err := pub.Publish(ctx, client.Message{Payload: encodeRecord(buf, uint32(stream), seq, 0)})
		if err == nil {
			seq++
			e.ledger.stream(stream, stAcked).Store(seq)
		}
		return err
	}
	var detect, release []time.Duration
	for i := range crashRounds(t) {
		h := e.spawn("sub", topic, func(a *ChildArgs) { a.Count = 5 })
		e.expect(h, "ready")
		for {
			err := pub.TryPublish(client.Message{Payload: encodeRecord(buf, uint32(stream), seq, 0)})
			if err == client.ErrBackPressured {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			seq++
			e.ledger.stream(stream, stAcked).Store(seq)
		}
		e.expect(h, "holding")
		killed := time.Now()
		h.Kill()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := publish(ctx)
		cancel()
		if err != nil {
			t.Fatalf("round %d: publisher not released after the subscriber died: %v", i, err)
		}
		release = append(release, time.Since(killed))
		select {
		case pe := <-e.exits:
			detect = append(detect, pe.ReapedAt.Sub(killed))
		case <-time.After(10 * time.Second):
			t.Fatal("daemon did not report the death")
		}
	}
	for _, s := range live {
		s.Signal(syscall.SIGTERM)
	}
	for _, s := range live {
		e.expect(s, "checked")
		s.Wait(10 * time.Second)
	}
	for _, s := range live {
		id := s.Args.ID
		if bad := e.ledger.sub(id, sbCorrupt).Load() + e.ledger.sub(id, sbDup).Load() + e.ledger.sub(id, sbGapLost).Load() + e.ledger.sub(id, sbEndLost).Load(); bad != 0 || e.ledger.sub(id, sbReceived).Load() != seq {
			t.Errorf("live subscriber %d: received %d of %d, corrupt/dup/lost %d", id, e.ledger.sub(id, sbReceived).Load(), seq, bad)
		}
	}
	t.Logf("kill -> daemon reaped (detection): %s (target <= 10ms)", durations(detect))
	t.Logf("kill -> blocked publisher released: %s (target <= 100ms)", durations(release))
	sort.Slice(release, func(i, j int) bool { return release[i] < release[j] })
	if m := release[len(release)/2]; m > 100*time.Millisecond {
		t.Errorf("median release %v, want <= 100ms", m)
	}
}

// TestCrashSubscriberStopped: one of three subscribers SIGSTOPped while
// the ring fills. With eviction off the publisher waits for it and,
// after SIGCONT, all three get everything. With
// daemon.evict_stalled_after it is evicted after that long without being
// killed: the publisher finishes while it is still stopped, and once
// continued it learns of the eviction (client.ErrEvicted) and exits with
// ExitEvicted. Evictions are counted, no kill, and the two live
// subscribers get everything.
func TestCrashSubscriberStopped(t *testing.T) {
	for _, evict := range []time.Duration{0, 300 * time.Millisecond} {
		t.Run(fmt.Sprintf("evict=%v", evict), func(t *testing.T) {
			e := newCrashEnv(t, func(c *daemon.Config) {
				c.Daemon.EvictStalledAfter = evict
				c.Daemon.SweepInterval = 50 * time.Millisecond
			})
			c := e.client()
			const topic = "crash.sub-stop"
			if _, err := c.CreateTopic(context.Background(), client.TopicConfig{Name: topic, CapacityBytes: 16 << 10, MaxMessageBytes: 1024}); err != nil {
				t.Fatal(err)
			}
			subs := []*Proc{e.spawn("sub", topic, nil), e.spawn("sub", topic, nil), e.spawn("sub", topic, nil)}
			for _, s := range subs {
				e.expect(s, "ready")
			}
			for i := range crashRounds(t) {
				stopped := subs[2]
				stopped.Signal(syscall.SIGSTOP)
				if err := stopped.WaitState('T', 10*time.Second); err != nil {
					t.Fatal(err)
				}
				p := e.spawn("pub", topic, func(a *ChildArgs) { a.Count = 2000 })
				t0 := time.Now()
				if evict == 0 {
					time.Sleep(500 * time.Millisecond)
					if p.Exited() {
						t.Fatalf("round %d: publisher finished while a subscriber was stopped (block policy)", i)
					}
					if got := e.ledger.stream(p.Args.ID, stAcked).Load(); got == 2000 {
						t.Fatalf("round %d: all records published past a stopped subscriber", i)
					}
					stopped.Signal(syscall.SIGCONT)
					if _, err := p.Expect("done", 60*time.Second); err != nil {
						t.Fatalf("round %d: publisher: %v", i, err)
					}
					continue
				}
				// The eviction releases the publisher while the subscriber is
				// still stopped, and does not kill it.
				if _, err := p.Expect("done", 60*time.Second); err != nil {
					t.Fatalf("round %d: publisher not released by the eviction: %v", i, err)
				}
				t.Logf("round %d: publisher done %v after the stop", i, time.Since(t0).Round(time.Millisecond))
				if stopped.Exited() {
					t.Fatalf("round %d: the evicted subscriber ended while stopped: %v", i, stopped.Wait(0))
				}
				if err := stopped.WaitState('T', time.Second); err != nil {
					t.Fatalf("round %d: evicted subscriber: %v", i, err)
				}
				if n := e.d.Status().SubscriberEvictions; n != uint64(i+1) {
					t.Fatalf("round %d: daemon counted %d evictions, want %d", i, n, i+1)
				}
				stopped.Signal(syscall.SIGCONT)
				if _, err := stopped.Expect("evicted", 60*time.Second); err != nil {
					t.Fatalf("round %d: continued subscriber did not learn of its eviction: %v", i, err)
				}
				err := stopped.Wait(60 * time.Second)
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != ExitEvicted {
					t.Fatalf("round %d: evicted subscriber exited with %v, want status %d", i, err, ExitEvicted)
				}
				if bad := e.ledger.sub(stopped.Args.ID, sbErrors).Load(); bad != 0 {
					t.Errorf("round %d: evicted subscriber counted %d unexpected errors", i, bad)
				}
				subs[2] = e.spawn("sub", topic, nil)
				e.expect(subs[2], "ready")
			}
			for _, s := range subs {
				s.Signal(syscall.SIGTERM)
			}
			for _, s := range subs {
				e.expect(s, "checked")
				id := s.Args.ID
				if bad := e.ledger.sub(id, sbCorrupt).Load() + e.ledger.sub(id, sbDup).Load() + e.ledger.sub(id, sbGapLost).Load() + e.ledger.sub(id, sbEndLost).Load(); bad != 0 {
					t.Errorf("subscriber %d: %d corrupt/dup/lost", id, bad)
				}
			}
			st := e.d.Status()
			if evict == 0 && st.SubscriberEvictions != 0 || evict > 0 && st.SubscriberEvictions != uint64(crashRounds(t)) {
				t.Errorf("daemon counted %d evictions", st.SubscriberEvictions)
			}
			if st.SubscriberKills != 0 {
				t.Errorf("daemon killed %d subscribers; eviction must spare them the first time", st.SubscriberKills)
			}
		})
	}
}

// TestCrashGroupMemberKilled: a queue-group member SIGKILLed while it
// holds a record: that record is counted lost by the group, exactly, and
// every other record is delivered once to some member.
func TestCrashGroupMemberKilled(t *testing.T) {
	for _, policy := range []wire.Policy{wire.PolicyBlock, wire.PolicyDropOldest} {
		t.Run(string(policy), func(t *testing.T) {
			crashGroupMember(t, policy)
		})
	}
}

func crashGroupMember(t *testing.T, policy wire.Policy) {
	e := newCrashEnv(t, func(c *daemon.Config) {})
	e.nextID = 0 // group streams have delivery bitmaps
	c := e.client()
	const topic = "crash.group-kill"
	// Large enough that nothing is lapped: every loss is a killed member's.
	if _, err := c.CreateTopic(context.Background(), client.TopicConfig{Name: topic, CapacityBytes: 4 << 20, MaxMessageBytes: 1024, Policy: policy}); err != nil {
		t.Fatal(err)
	}
	member := func(hold uint64) *Proc {
		return e.spawn("sub", topic, func(a *ChildArgs) { a.Group, a.Count, a.ID = "g", hold, 1000+a.ID })
	}
	steady := member(0)
	e.expect(steady, "ready")
	rounds := crashRounds(t)
	var streams []int
	for i := range rounds {
		h := member(uint64(1 + rand.IntN(5)))
		e.expect(h, "ready")
		p := e.spawn("pub", topic, func(a *ChildArgs) { a.Policy, a.PaceEvery = string(policy), 4 })
		streams = append(streams, p.Args.ID)
		e.expect(h, "holding")
		h.Kill()
		time.Sleep(20 * time.Millisecond)
		p.Signal(syscall.SIGTERM)
		e.expect(p, "done")
		_ = i
	}
	time.Sleep(200 * time.Millisecond)
	steady.Signal(syscall.SIGTERM)
	e.expect(steady, "checked")
	var missing uint64
	for _, s := range streams {
		n := e.ledger.stream(s, stAcked).Load()
		missing += n - e.ledger.delivered(s, n)
	}
	lost := ringCounters(t, c, topic).Lost
	t.Logf("%d members killed holding a record: %d records never delivered, %d counted lost by the group", rounds, missing, lost)
	if missing != uint64(rounds) || lost != uint64(rounds) {
		t.Errorf("never delivered %d, counted lost %d; want both %d (one held record per kill)", missing, lost, rounds)
	}
	if d := e.ledger.sub(steady.Args.ID, sbDup).Load(); d != 0 {
		t.Errorf("%d records delivered twice", d)
	}
}

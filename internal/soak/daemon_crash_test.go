package soak

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
)

// TestCrashDaemonKilled: kaelixd SIGKILLed under load and restarted at
// once, crashRounds times: the data path never stops (no loss, no
// corruption), each restart serves in < 2 s with no cleanup, topics are
// re-adopted and clients re-register. A second kaelixd is refused and
// leaves the first one's regions alone; a lock file naming an unrelated
// live pid does not stop a daemon from starting. After the clients exit
// and the daemon stops, /dev/shm is back to its baseline.
func TestCrashDaemonKilled(t *testing.T) {
	e := newCrashEnv(t, nil)
	shmDir := filepath.Join("/dev/shm", e.args.ShmDir)
	// A stale lock naming an unrelated live process (pid 1).
	os.WriteFile(filepath.Join(e.args.StateDir, "kaelixd.lock"), []byte("1\n"), 0o644)
	startD := func() (*Proc, time.Duration) {
		t0 := time.Now()
		d := e.spawn("daemon", "", nil)
		e.expect(d, "ready")
		return d, time.Since(t0)
	}
	d, _ := startD()
	c := e.client()
	const topic = "crash.daemon-kill"
	if _, err := c.CreateTopic(context.Background(), client.TopicConfig{Name: topic, CapacityBytes: 64 << 10, MaxMessageBytes: 1024}); err != nil {
		t.Fatal(err)
	}
	subs := []*Proc{e.spawn("sub", topic, nil), e.spawn("sub", topic, nil)}
	for _, s := range subs {
		e.expect(s, "ready")
	}
	pubs := []*Proc{e.spawn("pub", topic, func(a *ChildArgs) { a.PaceEvery = 8 }), e.spawn("pub", topic, func(a *ChildArgs) { a.PaceEvery = 8 })}
	for _, p := range pubs {
		e.expect(p, "ready")
	}
	regions, _ := os.ReadDir(shmDir)
	if len(regions) == 0 {
		t.Fatal("no region in", shmDir)
	}
	var ready []time.Duration
	acked := func() uint64 {
		return e.ledger.stream(pubs[0].Args.ID, stAcked).Load() + e.ledger.stream(pubs[1].Args.ID, stAcked).Load()
	}
	for i := range crashRounds(t) {
		time.Sleep(100 * time.Millisecond)
		killed := time.Now()
		d.Kill()
		// No daemon: the data path goes on.
		a0 := acked()
		for acked() < a0+100 {
			if time.Since(killed) > 10*time.Second {
				t.Fatalf("round %d: publishers stopped while kaelixd was down", i)
			}
			time.Sleep(time.Millisecond)
		}
		var rd time.Duration
		d, rd = startD()
		ready = append(ready, rd)
		// The target is < 2 s; a race-instrumented kaelixd on a loaded
		// 2-CPU guest gets 5 s (the soak measures the real binary).
		if limit := 2 * time.Second; rd > limit && !raceEnabled || rd > 5*time.Second {
			t.Errorf("round %d: restart ready after %v, want < 2s", i, rd)
		}
		// Clients re-register: 2 publishers, 2 subscribers and our own client.
		deadline := time.Now().Add(10 * time.Second)
		for {
			info, err := c.TopicInfo(context.Background(), topic)
			if err == nil && info.Publishers == 2 && info.Subscribers == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: topic not re-adopted or clients not re-registered: %+v %v", i, info, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// A second daemon is refused and unlinks nothing.
	second := e.spawn("daemon", "", nil)
	if err := second.Wait(30 * time.Second); err == nil {
		t.Fatal("second kaelixd started")
	}
	b, _ := os.ReadFile(e.log)
	if !strings.Contains(string(b), "already running, pid "+strconv.Itoa(d.Cmd.Process.Pid)) {
		t.Errorf("second daemon's message does not name the first: %s", tail(b))
	}
	if after, _ := os.ReadDir(shmDir); len(after) != len(regions) {
		t.Errorf("regions after the second daemon: %d, before %d", len(after), len(regions))
	}
	for _, p := range pubs {
		p.Signal(syscall.SIGTERM)
		e.expect(p, "done")
	}
	for _, s := range subs {
		s.Signal(syscall.SIGTERM)
		e.expect(s, "checked")
		id := s.Args.ID
		if bad := e.ledger.sub(id, sbCorrupt).Load() + e.ledger.sub(id, sbDup).Load() + e.ledger.sub(id, sbGapLost).Load() + e.ledger.sub(id, sbEndLost).Load(); bad != 0 {
			t.Errorf("subscriber %d: %d corrupt/dup/lost", id, bad)
		}
		if got := e.ledger.sub(id, sbReceived).Load(); got != acked() {
			t.Errorf("subscriber %d received %d of %d", id, got, acked())
		}
	}
	t.Logf("%d kaelixd SIGKILLs under load (%d records): restart exec -> ready %s", crashRounds(t), acked(), durations(ready))
	c.Close()
	d.Signal(syscall.SIGTERM)
	if err := d.Wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if ents, err := os.ReadDir(shmDir); err == nil {
		t.Errorf("/dev/shm not back to baseline: %d entries left in %s", len(ents), shmDir)
	}
}

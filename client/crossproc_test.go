package client_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/shm"
)

// TestCrossProcess2x3: 2 publisher processes x 3 subscriber processes
// through a real daemon over a block-mode MPMC topic: every subscriber gets
// every record of each publisher, in that publisher's order, with intact
// checksums and headers.
func TestCrossProcess2x3(t *testing.T) {
	perPub := 500_000 // 1M messages in all
	if raceEnabled || testing.Short() {
		perPub = 20_000
	}
	e := newEnv(t)
	startDaemon(t, e, nil)
	c := connect(t, e)
	ctx := context.Background()
	const topic = "xproc.two-by-three"
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: topic, CapacityBytes: 1 << 20, Policy: client.PolicyBlock}); err != nil {
		t.Fatal(err)
	}
	common := []string{topicEnv + "=" + topic, fmt.Sprintf("%s=%d", countEnv, perPub), pubsEnv + "=2"}
	var subs, pubs []*child
	for i := range 3 {
		subs = append(subs, startChild(t, e.environ("sub", append(common, fmt.Sprintf("%s=%d", idEnv, i))...)))
	}
	for _, s := range subs {
		s.expect(t, "ready", 30*time.Second)
	}
	start := time.Now()
	for i := range 2 {
		pubs = append(pubs, startChild(t, e.environ("pub", append(common, fmt.Sprintf("%s=%d", idEnv, i))...)))
	}
	for _, p := range pubs {
		p.expect(t, "done", 5*time.Minute)
	}
	for _, s := range subs {
		s.expect(t, "ok", 5*time.Minute)
	}
	el := time.Since(start)
	for _, ch := range append(pubs, subs...) {
		if err := ch.cmd.Wait(); err != nil {
			t.Errorf("helper: %v\n%s", err, ch.stderr)
		}
	}
	t.Logf("%d messages x 3 subscribers in %v (%.0f msg/s published)", 2*perPub, el.Round(time.Millisecond), float64(2*perPub)/el.Seconds())
}

// TestSubscriberKilled: a subscriber process that stops reading holds a
// block-mode publisher back; once it is killed with SIGKILL the daemon sees
// the death through its pidfd, reaps the ring, and the publisher continues
// within a second. A new subscriber then receives in order.
func TestSubscriberKilled(t *testing.T) {
	e := newEnv(t)
	exits := make(chan daemon.PeerExit, 16)
	startDaemon(t, e, func(cfg *daemon.Config) {
		cfg.Daemon.SweepInterval = time.Hour // prove the pidfd path, not the sweep
		cfg.OnPeerExit = func(p daemon.PeerExit) { exits <- p }
	})
	c := connect(t, e)
	ctx := context.Background()
	const topic = "xproc.killed-subscriber"
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: topic, CapacityBytes: 16 << 10, MaxMessageBytes: 256}); err != nil {
		t.Fatal(err)
	}
	pub, err := c.NewPublisher(ctx, topic, client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	var latencies []time.Duration
	for round := range 3 {
		stall := startChild(t, e.environ("stall", topicEnv+"="+topic))
		stall.expect(t, "ready", 30*time.Second)
		// Fill the ring until the stalled subscriber holds the publisher back.
		payload := make([]byte, 200)
		for {
			err := pub.TryPublish(client.Message{Payload: payload})
			if err == client.ErrBackPressured {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		killed := time.Now()
		if err := stall.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := pub.Publish(pctx, client.Message{Payload: payload})
		cancel()
		resumed := time.Since(killed)
		if err != nil {
			t.Fatalf("round %d: publisher still blocked after the subscriber died: %v", round, err)
		}
		var pe daemon.PeerExit
		select {
		case pe = <-exits:
		case <-time.After(10 * time.Second):
			t.Fatal("daemon did not report the death")
		}
		stall.cmd.Wait()
		det := pe.ReapedAt.Sub(killed)
		latencies = append(latencies, det)
		t.Logf("round %d: kill -> rings reaped %v (pidfd -> reaped %v, %d slot(s) freed); publisher resumed after %v",
			round, det.Round(time.Microsecond), pe.ReapedAt.Sub(pe.ExitedAt).Round(time.Microsecond), pe.SlotsFreed, resumed.Round(time.Microsecond))
		if resumed > time.Second {
			t.Errorf("round %d: publisher resumed after %v, want <= 1s", round, resumed)
		}
		if pe.SlotsFreed < 1 {
			t.Errorf("round %d: no slot freed", round)
		}
	}
	t.Logf("death detection latency (kill -> reaped): %v (target <= 10ms)", latencies)

	// A new subscriber attaches and receives in order.
	sub, err := c.Subscribe(ctx, topic, client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	pubDone := make(chan struct{})
	defer func() { <-pubDone }() // before pub.Close: the race detector cannot see the ring's ordering
	go func() {
		defer close(pubDone)
		for i := range 1000 {
			pub.Publish(ctx, client.Message{Payload: []byte(fmt.Sprint(i))})
		}
	}()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i := range 1000 {
		m, err := sub.Receive(rctx)
		if err != nil {
			t.Fatalf("receive %d: %v", i, err)
		}
		if string(m.Payload) != fmt.Sprint(i) {
			t.Fatalf("message %d: got %q", i, m.Payload)
		}
	}
}

// TestDaemonKilled: kaelixd (a child process) is killed with SIGKILL while
// a publisher and a subscriber exchange records; they carry on, a
// restarted daemon re-adopts the topic, new clients attach, the old client
// reconnects, and a second daemon on the same socket is refused.
func TestDaemonKilled(t *testing.T) {
	e := newEnv(t)
	d1 := startChild(t, e.environ("daemon"))
	d1.expect(t, "ready", 30*time.Second)
	c := connect(t, e)
	ctx := context.Background()
	const topic = "xproc.daemon-restart"
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: topic, Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	pub, err := c.NewPublisher(ctx, topic, client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, topic, client.SubscribeOptions{Partitions: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	seq := 0
	exchange := func(n int) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for range n {
			want := fmt.Sprint(seq)
			if err := pub.Publish(rctx, client.Message{Partition: 1, Payload: []byte(want), Headers: map[string]string{"n": want}}); err != nil {
				t.Fatal(err)
			}
			m, err := sub.Receive(rctx)
			if err != nil {
				t.Fatal(err)
			}
			if string(m.Payload) != want || m.Headers["n"] != want || m.Partition != 1 {
				t.Fatalf("got %q %v p%d, want %q", m.Payload, m.Headers, m.Partition, want)
			}
			seq++
		}
	}
	exchange(100)
	d1.cmd.Process.Signal(syscall.SIGKILL)
	d1.cmd.Wait()
	exchange(1000) // no daemon: the data path does not need it
	waitFor(t, "client notices the daemon is gone", func() bool { return !c.Connected() })
	if _, err := c.Topics(ctx); err == nil || !strings.Contains(err.Error(), "Broker is not running") {
		t.Fatalf("request without daemon: %v", err)
	}

	// Plant a stale region (a real one, of a topic the registry does not
	// hold) the restarted daemon must remove, and a file that is not a
	// region, which it must leave alone (it never deletes what it did not
	// make).
	stale := filepath.Join("/dev/shm", e.shmDir, "stale.p0")
	scfg := shm.Default()
	scfg.DirName, scfg.HugePages = e.shmDir, shm.PolicyOff
	sr, err := shm.Create(scfg, "stale.p0", shm.CreateOptions{SizeBytes: 4096, Label: "stale"})
	if err != nil {
		t.Fatal(err)
	}
	sr.Close()
	foreign := filepath.Join("/dev/shm", e.shmDir, "foreign.p0")
	if err := os.WriteFile(foreign, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}

	d2 := startChild(t, e.environ("daemon", "KAELIX_TEST_EPHEMERAL=1"))
	d2.expect(t, "ready", 30*time.Second)
	exchange(100)

	d3 := startChild(t, e.environ("daemon"))
	if err := d3.cmd.Wait(); err == nil || !strings.Contains(d3.stderr.String(), "already running, pid") {
		t.Errorf("second daemon: %v, stderr %q", err, d3.stderr)
	} else {
		t.Logf("second daemon refused: %s", strings.TrimSpace(d3.stderr.String()))
	}

	c2 := connect(t, e)
	info, err := c2.TopicInfo(ctx, topic)
	if err != nil {
		t.Fatalf("restarted daemon lost the topic: %v", err)
	}
	if info.Spec.Partitions != 2 {
		t.Fatalf("re-adopted topic: %+v", info.Spec)
	}
	sub2, err := c2.Subscribe(ctx, topic, client.SubscribeOptions{From: client.FromOldest, Partitions: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	exchange(10)
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := sub2.Receive(rctx); err != nil {
		t.Fatalf("new subscriber after restart: %v", err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale region %s not removed: %v", stale, err)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("a file that is not a region was touched: %v", err)
	}
	os.Remove(foreign)
	waitFor(t, "old client reconnects", c.Connected)
	waitFor(t, "old client's attachments re-registered", func() bool {
		info, err := c2.TopicInfo(ctx, topic)
		return err == nil && info.Publishers == 1 && info.Subscribers == 2
	})

	// A clean stop of the ephemeral daemon leaves nothing in /dev/shm.
	sub2.Close()
	c.Close()
	c2.Close()
	d2.cmd.Process.Signal(syscall.SIGTERM)
	if err := d2.cmd.Wait(); err != nil {
		t.Fatalf("daemon exit: %v\n%s", err, d2.stderr)
	}
	if ents, err := os.ReadDir(filepath.Join("/dev/shm", e.shmDir)); err == nil {
		t.Errorf("left in /dev/shm: %v", ents)
	}
	if _, err := os.Stat(e.socket); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var _ = sync.Mutex{}

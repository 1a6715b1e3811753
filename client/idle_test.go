package client_test

// Idle subscribers (issue 16.1): a subscriber parked in Receive on any
// number of partitions costs about what one on a single partition does,
// and still gets every message at once.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/stat"
)

const waitEnv = "KAELIX_TEST_WAIT"

// idleRoles are the helper roles of this file (see runHelper).
var idleRoles = map[string]func(env) int{
	// Subscribe to every partition of the topic with the wait strategy
	// named in waitEnv, print "ready", then Receive until killed, printing
	// "got PARTITION SEQ LATENCY_NS" per message (the payload carries
	// the publisher's ringbuf.MonotonicNS at publish, then the sequence).
	"idle-sub": runIdleSub,
}

func runIdleSub(e env) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "idle-sub: "+format+"\n", args...)
		return 1
	}
	ctx := context.Background()
	c, err := client.Connect(ctx, client.Options{SocketPath: e.socket, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fail("%v", err)
	}
	defer c.Close()
	wait := map[string]client.WaitStrategy{"blocking": client.WaitBlocking, "backoff": client.WaitBackoff}[os.Getenv(waitEnv)]
	sub, err := c.Subscribe(ctx, os.Getenv(topicEnv), client.SubscribeOptions{Wait: wait})
	if err != nil {
		return fail("%v", err)
	}
	fmt.Println("ready")
	for {
		m, err := sub.Receive(ctx)
		now := ringbuf.MonotonicNS()
		if err != nil {
			return fail("receive: %v", err)
		}
		if len(m.Payload) < 16 {
			return fail("payload of %d bytes", len(m.Payload))
		}
		sent := int64(binary.LittleEndian.Uint64(m.Payload))
		fmt.Printf("got %d %d %d\n", m.Partition, binary.LittleEndian.Uint64(m.Payload[8:]), now-sent)
	}
}

// procCPUTicks is a process's user + system CPU time in clock ticks
// (fields 14 and 15 of /proc/PID/stat; USER_HZ is 100 on Linux).
func procCPUTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:])) // f[0] is field 3
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("bad /proc/%d/stat: %q", pid, b)
	}
	return u + s
}

// topicRings maps every partition of a topic read-only, for its counters.
func topicRings(t *testing.T, c *client.Client, topic string) []*stat.RingView {
	t.Helper()
	info, err := c.TopicInfo(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var views []*stat.RingView
	for _, p := range info.Partitions {
		v, err := stat.OpenRingView(p.Path, p.ConsumerPath, p.SlotPaths(info.Spec.MaxSubscribers))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		views = append(views, v)
	}
	return views
}

// sleepCounts sums the futex sleeps and membarrier calls of a topic's rings.
func sleepCounts(views []*stat.RingView) (waits, fences uint64) {
	for _, v := range views {
		c := v.Ring.Counters()
		waits += c.Waits
		fences += c.Fences
	}
	return waits, fences
}

// TestIdleSubscriberCPU: subscriber processes parked in Receive, with
// the blocking and the backoff strategy, on topics of 1, 2 and 8
// partitions. Over a 3 s window each uses under 3% of a core (from
// /proc/PID/stat), and the rings' counters show what it did meanwhile:
// about ten futex sleeps a second (one per 100 ms bound) and no
// membarrier per sleep. Before the fix a 2-partition subscriber made
// about 1,000 sleeps and as many membarriers a second.
func TestIdleSubscriberCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("measures for several seconds")
	}
	e := newEnv(t)
	startDaemon(t, e, nil)
	c := connect(t, e)
	type idler struct {
		name  string
		ch    *child
		views []*stat.RingView
	}
	var idlers []idler
	for _, parts := range []int{1, 2, 8} {
		for _, wait := range []string{"blocking", "backoff"} {
			topic := fmt.Sprintf("idle.p%d.%s", parts, wait)
			if _, err := c.CreateTopic(context.Background(), client.TopicConfig{Name: topic, Partitions: parts, CapacityBytes: 64 << 10}); err != nil {
				t.Fatal(err)
			}
			ch := startChild(t, e.environ("idle-sub", topicEnv+"="+topic, waitEnv+"="+wait))
			idlers = append(idlers, idler{name: topic, ch: ch})
		}
	}
	for i := range idlers {
		idlers[i].ch.expect(t, "ready", 30*time.Second)
		idlers[i].views = topicRings(t, c, idlers[i].name)
	}
	time.Sleep(500 * time.Millisecond) // past the backoff strategy's spin and yield phases
	const window = 3 * time.Second
	ticks := make([]int64, len(idlers))
	waits := make([]uint64, len(idlers))
	fences := make([]uint64, len(idlers))
	for i, d := range idlers {
		ticks[i] = procCPUTicks(t, d.ch.cmd.Process.Pid)
		waits[i], fences[i] = sleepCounts(d.views)
	}
	start := time.Now()
	time.Sleep(window)
	el := time.Since(start).Seconds()
	for i, d := range idlers {
		cpu := float64(procCPUTicks(t, d.ch.cmd.Process.Pid)-ticks[i]) / 100 / el
		w, f := sleepCounts(d.views)
		wps, fps := float64(w-waits[i])/el, float64(f-fences[i])/el
		t.Logf("%-20s cpu %.2f%% of a core, %.1f futex sleeps/s, %.1f membarriers/s", d.name, 100*cpu, wps, fps)
		if cpu > 0.03 {
			t.Errorf("%s: idle subscriber used %.1f%% of a core, want under 3%%", d.name, 100*cpu)
		}
		if wps < 1 || wps > 40 {
			t.Errorf("%s: %.1f futex sleeps a second while idle, want about 10 (1 to 40)", d.name, wps)
		}
		if fps > 1 {
			t.Errorf("%s: %.1f membarriers a second while idle, want none per sleep", d.name, fps)
		}
	}
}

// TestSleepingSubscriberGetsEveryMessage: a subscriber process parked on
// 8 partitions (blocking strategy) while a publisher sends messages one at
// a time to random partitions at random intervals (0 to 30 ms, so the
// subscriber is asleep for most of them): it gets every message, each
// within a second of its publication (no lost wakeup; the bound is
// generous for a loaded machine, the log shows the real figures).
func TestSleepingSubscriberGetsEveryMessage(t *testing.T) {
	const parts = 8
	n := 300
	if testing.Short() || raceEnabled {
		n = 100
	}
	e := newEnv(t)
	startDaemon(t, e, nil)
	c := connect(t, e)
	ctx := context.Background()
	const topic = "idle.wakeups"
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: topic, Partitions: parts, CapacityBytes: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	sub := startChild(t, e.environ("idle-sub", topicEnv+"="+topic, waitEnv+"=blocking"))
	sub.expect(t, "ready", 30*time.Second)
	pub, err := c.NewPublisher(ctx, topic, client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	views := topicRings(t, c, topic)
	w0, _ := sleepCounts(views)
	rng := rand.New(rand.NewPCG(16, 1))
	sentTo := make([]int, n)
	var payload [16]byte
	for seq := range n {
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		part := rng.IntN(parts)
		sentTo[seq] = part
		binary.LittleEndian.PutUint64(payload[:], uint64(ringbuf.MonotonicNS()))
		binary.LittleEndian.PutUint64(payload[8:], uint64(seq))
		if err := pub.TryPublish(client.Message{Partition: part, Payload: payload[:]}); err != nil {
			t.Fatalf("publish %d: %v", seq, err)
		}
	}
	got := make([]bool, n)
	var worst, total int64
	for range n {
		line := sub.expect(t, "got ", 10*time.Second)
		var part, seq int
		var lat int64
		if _, err := fmt.Sscanf(line, "got %d %d %d", &part, &seq, &lat); err != nil || seq < 0 || seq >= n {
			t.Fatalf("bad line %q", line)
		}
		if got[seq] || part != sentTo[seq] {
			t.Fatalf("message %d: duplicate or on partition %d, sent to %d", seq, part, sentTo[seq])
		}
		got[seq] = true
		worst, total = max(worst, lat), total+lat
		if lat > int64(time.Second) {
			t.Errorf("message %d on partition %d arrived %v after its publication: a lost wakeup, found only by a timeout", seq, part, time.Duration(lat))
		}
	}
	w1, _ := sleepCounts(views)
	t.Logf("%d messages over %d partitions: latency mean %v, worst %v; %d futex sleeps", n, parts,
		time.Duration(total/int64(n)), time.Duration(worst), w1-w0)
	if w1-w0 < uint64(n)/4 {
		t.Errorf("only %d futex sleeps for %d sporadic messages: the subscriber did not sleep, the test proves nothing", w1-w0, n)
	}
}

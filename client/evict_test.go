package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
	"github.com/kaelix-io/kaelix/ringbuf"
)

// Eviction of subscribers that hold publishers back
// (daemon.evict_stalled_after), with real subscriber processes: the test
// binary re-executed in one of the roles below (see runHelper).

// exitChildEvicted is the status of a helper that learned of its
// eviction as it should (checkEvicted).
const exitChildEvicted = 7

// evictAfter is daemon.evict_stalled_after in most of these tests; the
// sweep runs every evictSweep.
const (
	evictAfter = 500 * time.Millisecond
	evictSweep = 50 * time.Millisecond
)

var evictRoles = map[string]func(env) int{
	// Receive in a loop (the test SIGSTOPs it); prints "got first" once.
	"evict-reader": runEvictee,
	// Subscribe, then sleep until SIGUSR1 without reading; then Receive.
	"evict-idle": runEvictee,
	// As evict-idle; once evicted, subscribe again and sleep again.
	"evict-resub": runEvictee,
	// Poll one message every 10 ms until SIGTERM.
	"evict-slow": runEvictee,
	// Publisher: loan space, print "claimed", send it on SIGUSR1.
	"loan-hold": runLoanHolder,
	// Queue-group members: hold the first message in the handler forever,
	// or read until SIGTERM.
	"group-hold":   runGroupMember,
	"group-reader": runGroupMember,
}

func runGroupMember(e env) int {
	hold := os.Getenv(roleEnv) == "group-hold"
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	ctx := context.Background()
	c, err := client.Connect(ctx, client.Options{SocketPath: e.socket, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	sub, err := c.Subscribe(ctx, os.Getenv(topicEnv), client.SubscribeOptions{Group: "workers"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	got := 0
	for {
		select {
		case <-term:
			fmt.Println("read", got)
			return 0
		default:
		}
		n, err := sub.Poll(func(*client.Message) {
			if hold {
				fmt.Println("holding")
				select {} // read in place, forever
			}
		}, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		got += n
		time.Sleep(100 * time.Microsecond)
	}
}

func runEvictee(e env) int {
	role := os.Getenv(roleEnv)
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "helper %s: "+format+"\n", append([]any{role}, args...)...)
		return 1
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	ctx := context.Background()
	c, err := client.Connect(ctx, client.Options{SocketPath: e.socket, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fail("%v", err)
	}
	defer c.Close()
	topic := os.Getenv(topicEnv)
	sub, err := c.Subscribe(ctx, topic, client.SubscribeOptions{Wait: client.WaitBackoff})
	if err != nil {
		return fail("%v", err)
	}
	fmt.Println("ready")
	switch role {
	case "evict-reader":
		for n := 0; ; n++ {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			_, err := sub.Receive(rctx)
			cancel()
			if err != nil {
				return checkEvicted(sub, topic, err)
			}
			if n == 0 {
				fmt.Println("got first")
			}
		}
	case "evict-idle", "evict-resub":
		<-usr1
		t0 := time.Now()
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err := sub.Receive(rctx)
		cancel()
		if d := time.Since(t0); d > 5*time.Second {
			return fail("Receive took %v to report %v", d, err)
		}
		if code := checkEvicted(sub, topic, err); code != exitChildEvicted || role == "evict-idle" {
			return code
		}
		// Subscribe again, as ErrEvicted suggests, and stall again.
		again, err := c.Subscribe(ctx, topic, client.SubscribeOptions{Wait: client.WaitBackoff})
		if err != nil {
			return fail("subscribing again: %v", err)
		}
		fmt.Println("resubscribed")
		<-usr1 // never comes: the daemon kills us first
		again.Close()
		return 0
	case "evict-slow":
		got := 0
		for {
			select {
			case <-term:
				fmt.Println("read", got)
				return 0
			case <-time.After(10 * time.Millisecond):
			}
			n, err := sub.Poll(func(*client.Message) {}, 1)
			if err != nil {
				return fail("poll: %v", err)
			}
			got += n
		}
	}
	return fail("unknown role")
}

// checkEvicted checks that err reports the eviction of partition 0 of
// topic, and that the subscriber keeps saying so without waiting; then it
// closes it and prints "evicted". It returns exitChildEvicted, or 1.
func checkEvicted(sub *client.Subscriber, topic string, err error) int {
	var ee *client.EvictedError
	if !errors.Is(err, client.ErrEvicted) || !errors.Is(err, ringbuf.ErrEvicted) || !errors.As(err, &ee) || ee.Topic != topic || ee.Partition != 0 {
		fmt.Fprintf(os.Stderr, "helper: not the eviction of %q partition 0: %v\n", topic, err)
		return 1
	}
	t0 := time.Now()
	n, err2 := sub.Poll(func(*client.Message) {}, 10)
	rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	_, err3 := sub.Receive(rctx)
	cancel()
	if n != 0 || !errors.Is(err2, client.ErrEvicted) || !errors.Is(err3, client.ErrEvicted) || time.Since(t0) > 5*time.Second {
		fmt.Fprintf(os.Stderr, "helper: after the eviction Poll gave %d, %v and Receive %v, in %v\n", n, err2, err3, time.Since(t0))
		return 1
	}
	if err := sub.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "helper: close: %v\n", err)
		return 1
	}
	fmt.Println("evicted", err)
	return exitChildEvicted
}

func runLoanHolder(e env) int {
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	ctx := context.Background()
	c, err := client.Connect(ctx, client.Options{SocketPath: e.socket, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	pub, err := c.NewPublisher(ctx, os.Getenv(topicEnv), client.PublisherOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	l, err := pub.Loan(100)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	copy(l.Buf, "loaned")
	fmt.Println("claimed")
	<-usr1
	if err := pub.Send(l); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("sent")
	<-usr1
	return 0
}

// evictEnv is a daemon with eviction on, a block topic with a 16 KiB
// ring, and a publisher on it in this process.
type evictEnv struct {
	e     env
	d     *daemon.Daemon
	c     *client.Client
	pub   *client.Publisher
	log   *testdaemon.Buffer
	topic string
}

func newEvictEnv(t *testing.T, topic string, after time.Duration) *evictEnv {
	t.Helper()
	v := &evictEnv{e: newEnv(t), log: &testdaemon.Buffer{}, topic: topic}
	v.d = startDaemon(t, v.e, func(cfg *daemon.Config) {
		cfg.Daemon.EvictStalledAfter = after
		cfg.Daemon.SweepInterval = evictSweep
		cfg.Logger = slog.New(slog.NewTextHandler(v.log, nil))
	})
	v.c = connect(t, v.e)
	ctx := context.Background()
	if _, err := v.c.CreateTopic(ctx, client.TopicConfig{Name: topic, CapacityBytes: 16 << 10, MaxMessageBytes: 256, Policy: client.PolicyBlock}); err != nil {
		t.Fatal(err)
	}
	pub, err := v.c.NewPublisher(ctx, topic, client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	v.pub = pub
	return v
}

func (v *evictEnv) child(t *testing.T, role string) *child {
	t.Helper()
	ch := startChild(t, v.e.environ(role, topicEnv+"="+v.topic))
	ch.expect(t, "ready", time.Minute)
	return ch
}

// fillBytes is the payload size of fill and publishBlocked.
const fillBytes = 200

// fill publishes until the ring refuses for lack of space.
func (v *evictEnv) fill(t *testing.T) int {
	t.Helper()
	payload := make([]byte, fillBytes)
	for n := 0; ; n++ {
		err := v.pub.TryPublish(client.Message{Payload: payload})
		if errors.Is(err, client.ErrBackPressured) {
			if n == 0 {
				t.Fatal("the ring was full before filling it")
			}
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// publishBlocked publishes one message as large as fill's, which must
// wait for space after fill, and returns how long it waited.
func (v *evictEnv) publishBlocked(t *testing.T, what string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	if err := v.pub.Publish(ctx, client.Message{Payload: make([]byte, fillBytes)}); err != nil {
		t.Fatalf("publisher not released (%s): %v\ndaemon log:\n%s", what, err, v.log)
	}
	return time.Since(t0)
}

// status checks the daemon's eviction counts, through the control
// socket. A kill is counted once the signal is sent, which the victim's
// death may beat: counts short of the wanted ones are read again for a
// while; others fail at once.
func (v *evictEnv) status(t *testing.T, evictions, kills uint64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := v.c.DaemonStatus(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.SubscriberEvictions == evictions && st.SubscriberKills == kills {
			return
		}
		if st.SubscriberEvictions > evictions || st.SubscriberKills > kills || time.Now().After(deadline) {
			t.Fatalf("daemon status: %d evictions, %d kills; want %d, %d\ndaemon log:\n%s", st.SubscriberEvictions, st.SubscriberKills, evictions, kills, v.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metrics checks /metrics: evictions by action and the partition's
// evicted slots.
func (v *evictEnv) metrics(t *testing.T, evicts, kills, slots float64) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Minute}
	resp, err := hc.Get("http://" + v.d.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string, labels ...string) float64 {
	next:
		for _, m := range fams[name].GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
				}
				if !found {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
		t.Fatalf("/metrics has no %s%v", name, labels)
		return 0
	}
	got := []float64{
		value("kaelix_subscriber_evictions_total", "action", "evict"),
		value("kaelix_subscriber_evictions_total", "action", "kill"),
		value("kaelix_partition_evicted_total", "topic", v.topic, "partition", "0"),
	}
	if want := []float64{evicts, kills, slots}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("/metrics: evictions{evict}, evictions{kill}, partition evicted = %v, want %v", got, want)
	}
}

// ringCounters returns partition 0's ring counters as the daemon reports
// them.
func (v *evictEnv) ringCounters(t *testing.T) (evicted uint64, subscribers int) {
	t.Helper()
	info, err := v.c.TopicInfo(context.Background(), v.topic)
	if err != nil {
		t.Fatal(err)
	}
	k := info.Partitions[0].Counters
	return k.Evicted, k.Subscribers
}

// procState returns pid's state letter from /proc (0 if it is gone).
func procState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

func waitState(t *testing.T, pid int, want byte) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for procState(pid) != want {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d: state %c, want %c", pid, procState(pid), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// exit waits (at most timeout) for the helper to end and returns how.
func (c *child) exit(t *testing.T, timeout time.Duration) *os.ProcessState {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case _, ok := <-c.lines:
			if !ok {
				c.cmd.Wait()
				return c.cmd.ProcessState
			}
		case <-deadline:
			t.Fatalf("helper still running after %v\nstderr:\n%s", timeout, c.stderr)
		}
	}
}

// TestEvictStoppedSubscriber: a subscriber process SIGSTOPped while it
// holds a block topic back is evicted, not killed: the publisher is
// released about evict_stalled_after later while the subscriber is still
// stopped; once continued, its Receive returns ErrEvicted (an
// *EvictedError; and again on later calls, without waiting), it closes
// and exits on its own. Counted in status, metrics and the ring.
func TestEvictStoppedSubscriber(t *testing.T) {
	v := newEvictEnv(t, "evict.stopped", evictAfter)
	ch := v.child(t, "evict-reader")
	pid := ch.cmd.Process.Pid
	if err := v.pub.Publish(context.Background(), client.Message{Payload: []byte("first")}); err != nil {
		t.Fatal(err)
	}
	ch.expect(t, "got first", time.Minute)
	ch.cmd.Process.Signal(syscall.SIGSTOP)
	waitState(t, pid, 'T')
	n := v.fill(t)
	waited := v.publishBlocked(t, "stopped subscriber")
	t.Logf("%d messages filled the ring; the next one waited %v for the eviction", n, waited.Round(time.Millisecond))
	if waited < evictAfter/2 {
		t.Errorf("publisher waited only %v: released before the eviction could happen (evict_stalled_after %v)", waited, evictAfter)
	}
	if st := procState(pid); st != 'T' {
		t.Fatalf("evicted subscriber: state %q, want still stopped (T)", st)
	}
	// The evicted subscriber no longer counts as one that can receive.
	if err := v.pub.TryPublish(client.Message{Payload: make([]byte, 200)}); err != client.ErrNotConnected {
		t.Fatalf("TryPublish after the eviction of the only subscriber: %v, want ErrNotConnected", err)
	}
	pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer pcancel()
	for range 100 { // nobody holds the ring now
		if err := v.pub.Publish(pctx, client.Message{Payload: make([]byte, 200)}); err != nil {
			t.Fatalf("publishing after the eviction: %v", err)
		}
	}
	v.status(t, 1, 0)
	v.metrics(t, 1, 0, 1)
	if ev, subs := v.ringCounters(t); ev != 1 || subs != 0 {
		t.Fatalf("ring counters: evicted %d, live subscriber slots %d; want 1, 0", ev, subs)
	}
	if !strings.Contains(v.log.String(), "subscriber evicted") || !strings.Contains(v.log.String(), "state=stopped") {
		t.Errorf("daemon log does not report the eviction of a stopped subscriber:\n%s", v.log)
	}

	ch.cmd.Process.Signal(syscall.SIGCONT)
	line := ch.expect(t, "evicted", time.Minute)
	t.Logf("subscriber after SIGCONT: %s", line)
	if ps := ch.exit(t, time.Minute); ps.ExitCode() != exitChildEvicted {
		t.Fatalf("evicted subscriber exited with %v, want status %d\nstderr:\n%s", ps, exitChildEvicted, ch.stderr)
	}
	v.status(t, 1, 0)
}

// TestEvictIdleSubscriber: a subscriber process that runs but never reads
// (it subscribed, then sleeps) is evicted likewise: the publisher is
// released, the process keeps running, and its next Receive returns
// ErrEvicted at once.
func TestEvictIdleSubscriber(t *testing.T) {
	v := newEvictEnv(t, "evict.idle", evictAfter)
	ch := v.child(t, "evict-idle")
	pid := ch.cmd.Process.Pid
	n := v.fill(t)
	waited := v.publishBlocked(t, "idle subscriber")
	t.Logf("%d messages filled the ring; the next one waited %v for the eviction", n, waited.Round(time.Millisecond))
	if waited < evictAfter/2 {
		t.Errorf("publisher waited only %v: released before the eviction could happen (evict_stalled_after %v)", waited, evictAfter)
	}
	if st := procState(pid); st == 0 || st == 'T' || st == 'Z' {
		t.Fatalf("evicted subscriber: state %q, want running", st)
	}
	v.status(t, 1, 0)
	v.metrics(t, 1, 0, 1)
	if ev, subs := v.ringCounters(t); ev != 1 || subs != 0 {
		t.Fatalf("ring counters: evicted %d, live subscriber slots %d; want 1, 0", ev, subs)
	}
	if !strings.Contains(v.log.String(), "state=running") {
		t.Errorf("daemon log does not report the eviction of a running subscriber:\n%s", v.log)
	}
	ch.cmd.Process.Signal(syscall.SIGUSR1)
	ch.expect(t, "evicted", time.Minute)
	if ps := ch.exit(t, time.Minute); ps.ExitCode() != exitChildEvicted {
		t.Fatalf("evicted subscriber exited with %v, want status %d\nstderr:\n%s", ps, exitChildEvicted, ch.stderr)
	}
}

// TestEvictRepeatOffenderKilled: a subscriber process evicted once that
// subscribes again and again holds the publishers back is killed
// (SIGKILL through its pidfd); the publisher is released, and the second
// eviction is counted as a kill.
func TestEvictRepeatOffenderKilled(t *testing.T) {
	v := newEvictEnv(t, "evict.repeat", evictAfter)
	ch := v.child(t, "evict-resub")
	v.fill(t)
	v.publishBlocked(t, "first eviction")
	v.status(t, 1, 0)
	ch.cmd.Process.Signal(syscall.SIGUSR1)
	ch.expect(t, "resubscribed", time.Minute)
	if _, subs := v.ringCounters(t); subs != 1 {
		t.Fatalf("%d live subscriber slots after the subscriber joined again, want 1", subs)
	}
	n := v.fill(t)
	waited := v.publishBlocked(t, "second stall")
	t.Logf("%d messages filled the ring again; the next one waited %v", n, waited.Round(time.Millisecond))
	if waited < evictAfter/2 {
		t.Errorf("publisher waited only %v the second time (evict_stalled_after %v)", waited, evictAfter)
	}
	ps := ch.exit(t, time.Minute)
	if ws, ok := ps.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("repeat offender ended with %v, want killed by SIGKILL\nstderr:\n%s\ndaemon log:\n%s", ps, ch.stderr, v.log)
	}
	v.status(t, 2, 1)
	v.metrics(t, 1, 1, 2)
	if !strings.Contains(v.log.String(), "subscriber killed") {
		t.Errorf("daemon log does not report the kill:\n%s", v.log)
	}
	// Its death freed the slot it was evicted from.
	deadline := time.Now().Add(time.Minute)
	for {
		info, err := v.c.TopicInfo(context.Background(), v.topic)
		if err != nil {
			t.Fatal(err)
		}
		if k := info.Partitions[0].Counters; k.Subscribers == 0 && k.Reaped >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the killed subscriber's slot was not reaped: %+v", info.Partitions[0].Counters)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEvictSparesSlowSubscriber: a subscriber that reads slowly holds the
// ring back for far longer than evict_stalled_after, but its position
// moves, so it is not evicted.
func TestEvictSparesSlowSubscriber(t *testing.T) {
	const after = time.Second // a noisy host may pause the reader for a while
	v := newEvictEnv(t, "evict.slow", after)
	ch := v.child(t, "evict-slow")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	payload := make([]byte, 200)
	for end := time.Now().Add(3 * after); time.Now().Before(end); {
		if err := v.pub.Publish(ctx, client.Message{Payload: payload}); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	info, err := v.c.TopicInfo(ctx, v.topic)
	if err != nil {
		t.Fatal(err)
	}
	if k := info.Partitions[0].Counters; k.BackPressure == 0 || k.SlowestLagBytes*2 < info.Spec.CapacityBytes {
		t.Fatalf("the slow subscriber did not hold the publisher back: %+v", k)
	}
	v.status(t, 0, 0)
	v.metrics(t, 0, 0, 0)
	ch.cmd.Process.Signal(syscall.SIGTERM)
	ch.expect(t, "read", time.Minute)
	if ps := ch.exit(t, time.Minute); ps.ExitCode() != 0 {
		t.Fatalf("slow subscriber: %v\nstderr:\n%s", ps, ch.stderr)
	}
}

// TestEvictSparesSubscribersOfStoppedPublisher: a publisher process
// stopped in the middle of a message (a loan) keeps its topic's
// subscribers at that message, holding the ring back through no fault of
// theirs: they are not evicted, and they read on once it sends.
func TestEvictSparesSubscribersOfStoppedPublisher(t *testing.T) {
	v := newEvictEnv(t, "evict.stopped-publisher", evictAfter)
	reader := v.child(t, "evict-reader")
	if err := v.pub.Publish(context.Background(), client.Message{Payload: []byte("first")}); err != nil {
		t.Fatal(err)
	}
	reader.expect(t, "got first", time.Minute)
	holder := startChild(t, v.e.environ("loan-hold", topicEnv+"="+v.topic))
	holder.expect(t, "claimed", time.Minute)
	holder.cmd.Process.Signal(syscall.SIGSTOP)
	waitState(t, holder.cmd.Process.Pid, 'T')
	v.fill(t)
	time.Sleep(4 * evictAfter)
	v.status(t, 0, 0)
	holder.cmd.Process.Signal(syscall.SIGCONT)
	holder.cmd.Process.Signal(syscall.SIGUSR1)
	holder.expect(t, "sent", time.Minute)
	deadline := time.Now().Add(time.Minute)
	for {
		info, err := v.c.TopicInfo(context.Background(), v.topic)
		if err != nil {
			t.Fatal(err)
		}
		if k := info.Partitions[0].Counters; k.Consumed == k.Published {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the subscriber did not read on after the loan was sent: %+v", info.Partitions[0].Counters)
		}
		time.Sleep(10 * time.Millisecond)
	}
	v.status(t, 0, 0)
	holder.cmd.Process.Signal(syscall.SIGUSR1)
	if ps := holder.exit(t, time.Minute); ps.ExitCode() != 0 {
		t.Fatalf("loan holder: %v\nstderr:\n%s", ps, holder.stderr)
	}
}

// TestEvictStoppedGroupMember: a queue-group member stopped while it
// holds a record, the other member reading on, holds the publishers back
// through its hold word alone; the ring lists the slot at the held
// record, so after evict_stalled_after the daemon evicts it like any
// other subscriber: without a kill, the publisher released, the held
// record counted lost by the group (the member might still deliver it if
// it ran again). The reading member is left alone.
func TestEvictStoppedGroupMember(t *testing.T) {
	v := newEvictEnv(t, "evict.group-hold", evictAfter)
	ch := v.child(t, "group-hold")
	if err := v.pub.Publish(context.Background(), client.Message{Payload: []byte("held")}); err != nil {
		t.Fatal(err)
	}
	ch.expect(t, "holding", time.Minute)
	reader := v.child(t, "group-reader")
	ch.cmd.Process.Signal(syscall.SIGSTOP)
	waitState(t, ch.cmd.Process.Pid, 'T')
	t.Cleanup(func() { ch.cmd.Process.Kill() })
	n := v.fill(t)
	waited := v.publishBlocked(t, "stopped group member")
	t.Logf("%d messages filled the ring; the next one waited %v", n, waited.Round(time.Millisecond))
	if waited < evictAfter/2 {
		t.Errorf("publisher waited only %v (evict_stalled_after %v)", waited, evictAfter)
	}
	v.status(t, 1, 0)
	v.metrics(t, 1, 0, 1)
	if err := syscall.Kill(ch.cmd.Process.Pid, 0); err != nil {
		t.Fatalf("the evicted member is gone (%v); eviction must not kill it", err)
	}
	info, err := v.c.TopicInfo(context.Background(), v.topic)
	if err != nil {
		t.Fatal(err)
	}
	if k := info.Partitions[0].Counters; k.Lost != 1 {
		t.Errorf("ring counters after the eviction: %+v, want the held record counted lost", k)
	}
	reader.cmd.Process.Signal(syscall.SIGTERM)
	reader.expect(t, "read", time.Minute)
	if ps := reader.exit(t, time.Minute); ps.ExitCode() != 0 {
		t.Fatalf("reading member: %v\nstderr:\n%s", ps, reader.stderr)
	}
}

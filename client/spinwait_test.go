package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/wire"
)

// spinRoles are the helper roles of this file (see runHelper).
var spinRoles = map[string]func(env) int{
	"spin-sub": runSpinSub,
}

// runSpinSub subscribes to the topic with WaitBusySpin, prints "ready",
// sleeps 200 ms (so that the publisher fills the ring and must wait),
// then reads countEnv messages by busy-spinning on Poll, checks their
// order and content, and prints "done N".
func runSpinSub(e env) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "spin-sub: "+format+"\n", args...)
		return 1
	}
	ctx := context.Background()
	c, err := client.Connect(ctx, client.Options{SocketPath: e.socket, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fail("%v", err)
	}
	defer c.Close()
	sub, err := c.Subscribe(ctx, os.Getenv(topicEnv), client.SubscribeOptions{Wait: client.WaitBusySpin})
	if err != nil {
		return fail("%v", err)
	}
	fmt.Println("ready")
	time.Sleep(200 * time.Millisecond)
	count := uint64(envInt(countEnv))
	next := uint64(0)
	var bad error
	h := func(m *client.Message) {
		_, seq, err := checkPayload(m.Payload)
		if bad == nil && (err != nil || seq != next) {
			bad = fmt.Errorf("message %d: sequence %d (%v)", next, seq, err)
		}
		if want := strconv.FormatUint(next, 10); bad == nil && next%10 == 0 && m.Headers["seq"] != want {
			bad = fmt.Errorf("message %d: headers %v, want seq=%s", next, m.Headers, want)
		}
		next++
	}
	deadline := time.Now().Add(2 * time.Minute)
	for next < count && bad == nil {
		if _, err := sub.Poll(h, 64); err != nil {
			return fail("poll: %v", err)
		}
		if time.Now().After(deadline) {
			return fail("only %d of %d messages within 2 minutes", next, count)
		}
	}
	if bad != nil {
		return fail("%v", bad)
	}
	fmt.Println("done", next)
	return 0
}

// TestPublishSpinWaitMakesNoFutexCall: a busy-spin pair in two processes
// (publisher here, subscriber in a child) on a small SPSC block topic. The
// subscriber starts reading only after the publisher has filled the ring,
// so Publish must wait; with WaitBusySpin and WaitYield it waits without a
// futex call: the ring's counters show back-pressure but no futex sleep,
// no FUTEX_WAKE and no membarrier, and the child gets every message in
// order (one in ten with headers, which take Publish's other path). The
// blocking control shows that those counters do see a sleeping publisher.
func TestPublishSpinWaitMakesNoFutexCall(t *testing.T) {
	n := 20000
	if testing.Short() || raceEnabled {
		n = 5000
	}
	for _, w := range []client.WaitStrategy{client.WaitBusySpin, client.WaitYield, client.WaitBlocking} {
		t.Run(w.String(), func(t *testing.T) {
			e := newEnv(t)
			startDaemon(t, e, nil)
			c := connect(t, e)
			ctx := context.Background()
			topic := "spin.wait." + w.String()
			if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: topic, Kind: wire.KindSPSC, CapacityBytes: 4096, MaxMessageBytes: 512}); err != nil {
				t.Fatal(err)
			}
			sub := startChild(t, e.environ("spin-sub", topicEnv+"="+topic, countEnv+"="+strconv.Itoa(n)))
			sub.expect(t, "ready", 30*time.Second)
			pub, err := c.NewPublisher(ctx, topic, client.PublisherOptions{Wait: w})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			if got := pub.WaitStrategy(); got != w {
				t.Fatalf("publisher asking for %v waits with %v", w, got)
			}
			views := topicRings(t, c, topic)
			buf := make([]byte, 256)
			for seq := range uint64(n) {
				m := client.Message{Payload: makePayload(buf, 1, seq)}
				if seq%10 == 0 {
					m.Headers = map[string]string{"seq": strconv.FormatUint(seq, 10)}
				}
				pctx, cancel := context.WithTimeout(ctx, time.Minute)
				err := pub.Publish(pctx, m)
				cancel()
				if err != nil {
					t.Fatalf("publish %d: %v", seq, err)
				}
			}
			sub.expect(t, "done", 2*time.Minute)
			ct := views[0].Ring.Counters()
			t.Logf("%v: %d messages, back-pressured %d times, %d futex sleeps, %d FUTEX_WAKE calls, %d membarriers", w, n, ct.BackPressure, ct.Waits, ct.Wakeups, ct.Fences)
			if ct.BackPressure == 0 {
				t.Fatalf("the publisher was never back-pressured (%d messages into a 4 KiB ring read after 200 ms): the test proves nothing", n)
			}
			if w == client.WaitBlocking {
				if ct.Waits == 0 {
					t.Errorf("a blocking publisher held back %d times never slept on the space doorbell", ct.BackPressure)
				}
				return
			}
			if ct.Waits != 0 || ct.Wakeups != 0 || ct.Fences != 0 {
				t.Errorf("%v publisher against a busy-spin subscriber: %d futex sleeps, %d FUTEX_WAKE calls, %d membarriers; want none", w, ct.Waits, ct.Wakeups, ct.Fences)
			}
		})
	}
}

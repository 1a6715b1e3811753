package client_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
)

func TestBrokerNotRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.sock")
	_, err := client.Connect(context.Background(), client.Options{SocketPath: path})
	if !errors.Is(err, client.ErrBrokerNotRunning) || !strings.HasPrefix(err.Error(), "Broker is not running: "+path) {
		t.Fatalf("Connect without daemon: %v", err)
	}
}

func TestErrors(t *testing.T) {
	e := newEnv(t)
	startDaemon(t, e, nil)
	c := connect(t, e)
	ctx := context.Background()
	for _, name := range []string{"", "../x", "a..b", strings.Repeat("x", 250), "a/b", "a\x00b", "caf\u00e9"} {
		_, err := c.CreateTopic(ctx, client.TopicConfig{Name: name})
		if !errors.Is(err, client.ErrInvalidTopicName) {
			t.Errorf("create %q: %v", name, err)
		}
		t.Logf("%q: %v", name, err)
	}
	if _, err := c.TopicInfo(ctx, "no.such.topic"); !errors.Is(err, client.ErrTopicNotFound) {
		t.Errorf("unknown topic: %v", err)
	}
	if _, err := c.Subscribe(ctx, "no.such.topic", client.SubscribeOptions{}); !errors.Is(err, client.ErrTopicNotFound) {
		t.Errorf("subscribe to unknown topic: %v", err)
	}
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: "errs", MaxMessageBytes: 128}); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateTopic(ctx, client.TopicConfig{Name: "errs", MaxMessageBytes: 256})
	if !errors.Is(err, client.ErrTopicConflict) || !strings.Contains(err.Error(), "max_message_bytes: existing 128, requested 256") {
		t.Errorf("duplicate create: %v", err)
	}
	pub, err := c.NewPublisher(ctx, "errs", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = pub.TryPublish(client.Message{Payload: make([]byte, 129)})
	var se *client.SizeError
	if !errors.As(err, &se) || se.MessageBytes != 129 || se.MaxMessageBytes != 128 {
		t.Errorf("oversized: %v", err)
	}
	t.Log(err)
	err = pub.TryPublish(client.NewMessage(make([]byte, 100), client.WithHeader("k", strings.Repeat("v", 40))))
	if !errors.Is(err, client.ErrMessageTooLarge) {
		t.Errorf("oversized with headers: %v", err)
	}
	if err := pub.TryPublish(client.Message{Partition: 3}); !errors.Is(err, client.ErrNoPartition) {
		t.Errorf("bad partition: %v", err)
	}
	if err := c.DeleteTopic(ctx, "errs", client.DeleteOptions{}); !errors.Is(err, client.ErrTopicInUse) {
		t.Errorf("delete while attached: %v", err)
	}
	// No subscriber on a block topic: TryPublish and Loan say so and
	// publish nothing.
	if err := pub.TryPublish(client.Message{Payload: []byte("x")}); err != client.ErrNotConnected {
		t.Errorf("TryPublish with no subscriber: %v, want ErrNotConnected", err)
	}
	if _, err := pub.Loan(8); err != client.ErrNotConnected {
		t.Errorf("Loan with no subscriber: %v, want ErrNotConnected", err)
	}
	if st := pub.Stats(); st.NotConnected != 2 || st.Published != 0 {
		t.Errorf("stats after two refusals: %+v", st)
	}
	sub, err := c.Subscribe(ctx, "errs", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := pub.Subscribers(0); n != 1 || !pub.Connected(0) || pub.Connected(1) {
		t.Errorf("after Subscribe returned: Subscribers(0) = %d, Connected(0) %v, Connected(1) %v; want 1, true, false", n, pub.Connected(0), pub.Connected(1))
	}
	// Loan misuse.
	l, err := pub.Loan(8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Loan(8); err != client.ErrLoanOutstanding {
		t.Errorf("second loan: %v", err)
	}
	if err := pub.TryPublish(client.Message{}); err != client.ErrLoanOutstanding {
		t.Errorf("publish during loan: %v", err)
	}
	if err := pub.Send(l); err != nil {
		t.Fatal(err)
	}
	if err := pub.Send(l); err != client.ErrStaleLoan {
		t.Errorf("double send: %v", err)
	}
	pub.Close()
	sub.Close()
	if err := c.DeleteTopic(ctx, "errs", client.DeleteOptions{}); err != nil {
		t.Errorf("delete after close: %v", err)
	}
}

func TestSPSCPartitionsAndKeys(t *testing.T) {
	e := newEnv(t)
	startDaemon(t, e, nil)
	c := connect(t, e)
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: "keyed", Partitions: 4, Kind: client.KindSPSC}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, "keyed", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := c.NewPublisher(ctx, "keyed", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewPublisher(ctx, "keyed", client.PublisherOptions{}); err == nil {
		t.Error("second SPSC publisher accepted")
	}
	b := client.Batch{}
	for i := range 40 {
		b = append(b, client.NewMessage([]byte(fmt.Sprint(i)), client.WithKey([]byte(fmt.Sprint("k", i%5)))))
	}
	for _, part := range b.Split(7) {
		if n, err := pub.PublishBatch(ctx, part); err != nil || n != len(part) {
			t.Fatal(n, err)
		}
	}
	byKey := map[string]int{}
	got := 0
	deadline := time.Now().Add(10 * time.Second)
	for got < 40 && time.Now().Before(deadline) {
		n, err := sub.Poll(func(m *client.Message) {
			var i int
			fmt.Sscan(string(m.Payload), &i)
			k := fmt.Sprint("k", i%5)
			if string(m.Key) != k {
				t.Errorf("message %d arrived with key %q, want %q", i, m.Key, k)
			}
			if p, ok := byKey[k]; ok && p != m.Partition {
				t.Errorf("key %s in partitions %d and %d", k, p, m.Partition)
			}
			byKey[k] = m.Partition
		}, 100)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	if got != 40 {
		t.Fatalf("got %d of 40", got)
	}

	// The key travels with headers too, and a message without one
	// arrives with none.
	sent := []client.Message{
		{Key: []byte("k1"), Headers: map[string]string{"trace": "t-1"}, Payload: []byte("with headers")},
		{Key: []byte("k1"), Payload: []byte("key only")},
		{Partition: byKey["k1"], Payload: []byte("plain")},
		{Partition: byKey["k1"], Headers: map[string]string{"trace": "t-2"}, Payload: []byte("headers only")},
	}
	for _, m := range sent {
		if err := pub.TryPublish(m); err != nil {
			t.Fatal(err)
		}
	}
	var recv []client.Message
	for deadline := time.Now().Add(10 * time.Second); len(recv) < len(sent) && time.Now().Before(deadline); {
		if _, err := sub.Poll(func(m *client.Message) { recv = append(recv, m.Clone()) }, 10); err != nil {
			t.Fatal(err)
		}
	}
	if len(recv) != len(sent) {
		t.Fatalf("got %d of %d", len(recv), len(sent))
	}
	for i, m := range recv {
		w := sent[i]
		if string(m.Payload) != string(w.Payload) || string(m.Key) != string(w.Key) || (m.Key == nil) != (w.Key == nil) ||
			m.Headers["trace"] != w.Headers["trace"] || len(m.Headers) != len(w.Headers) {
			t.Errorf("message %d: key %q headers %v payload %q; sent key %q headers %v payload %q", i, m.Key, m.Headers, m.Payload, w.Key, w.Headers, w.Payload)
		}
	}
}

func TestBatch(t *testing.T) {
	var b client.Batch
	for i := range 10 {
		b = append(b, client.NewMessage([]byte{byte(i)}))
	}
	parts := b.Split(3)
	if len(parts) != 4 || len(parts[3]) != 1 {
		t.Fatalf("Split(3): %d parts", len(parts))
	}
	m := parts[0].Merge(parts[1:]...)
	if len(m) != 10 || m[9].Payload[0] != 9 {
		t.Fatalf("Merge: %d", len(m))
	}
	if len(client.Batch(nil).Split(3)) != 0 || len(b.Split(0)) != 1 {
		t.Fatal("Split edge cases")
	}
}

func TestNoAllocs(t *testing.T) {
	e := newEnv(t)
	startDaemon(t, e, nil)
	c := connect(t, e)
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: "allocs", Policy: client.PolicyDropOldest}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, "allocs", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := c.NewPublisher(ctx, "allocs", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	msg := client.Message{Payload: make([]byte, 64)}
	n := 0
	h := func(m *client.Message) { n += len(m.Payload) }
	allocs := testing.AllocsPerRun(1000, func() {
		if err := pub.TryPublish(msg); err != nil {
			t.Fatal(err)
		}
		if k, err := sub.Poll(h, 1); k != 1 || err != nil {
			t.Fatal(k, err)
		}
	})
	if allocs != 0 {
		t.Errorf("TryPublish+Poll: %.1f allocs per message, want 0", allocs)
	}
	allocs = testing.AllocsPerRun(1000, func() {
		l, err := pub.Loan(32)
		if err != nil {
			t.Fatal(err)
		}
		l.Buf[0] = 1
		if err := pub.Send(l); err != nil {
			t.Fatal(err)
		}
		sub.Poll(h, 1)
	})
	if allocs != 0 {
		t.Errorf("Loan/Send+Poll: %.1f allocs per message, want 0", allocs)
	}
}

// PollWait allocates nothing per message, whether the message is ready or
// it has to wait for it (here: a publisher goroutine publishes only once
// the subscriber has asked, so most calls park first), and returns the
// context's error when nothing comes.
func TestPollWaitNoAllocs(t *testing.T) {
	e := newEnv(t)
	startDaemon(t, e, nil)
	c := connect(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: "pollwait", Policy: client.PolicyDropOldest}); err != nil {
		t.Fatal(err)
	}
	for _, wait := range []client.WaitStrategy{client.WaitBackoff, client.WaitBlocking} {
		sub, err := c.Subscribe(ctx, "pollwait", client.SubscribeOptions{Wait: wait})
		if err != nil {
			t.Fatal(err)
		}
		pub, err := c.NewPublisher(ctx, "pollwait", client.PublisherOptions{})
		if err != nil {
			t.Fatal(err)
		}
		msg := client.Message{Payload: make([]byte, 64)}
		got := 0
		h := func(m *client.Message) { got += len(m.Payload) }
		allocs := testing.AllocsPerRun(200, func() {
			if err := pub.TryPublish(msg); err != nil {
				t.Fatal(err)
			}
			if k, err := sub.PollWait(ctx, h, 8); k != 1 || err != nil {
				t.Fatal(k, err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: TryPublish+PollWait (ready): %.1f allocs per message, want 0", wait, allocs)
		}
		kick, done := make(chan struct{}, 1), make(chan struct{})
		go func() {
			defer close(done)
			for range kick {
				if err := pub.TryPublish(msg); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		allocs = testing.AllocsPerRun(200, func() {
			kick <- struct{}{}
			if k, err := sub.PollWait(ctx, h, 8); k != 1 || err != nil {
				t.Fatal(k, err)
			}
		})
		close(kick)
		<-done
		// Under -race the detector's bookkeeping allocates when goroutines
		// hand off (here, the kick channel); without it this is exact.
		if allocs != 0 && !raceEnabled {
			t.Errorf("%v: PollWait waiting for a publisher goroutine: %.1f allocs per message, want 0", wait, allocs)
		}
		if got != 64*(2*201) {
			t.Errorf("%v: %d payload bytes delivered, want %d", wait, got, 64*2*201)
		}
		short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
		if k, err := sub.PollWait(short, h, 8); k != 0 || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%v: PollWait on an empty topic: %d, %v; want 0, deadline exceeded", wait, k, err)
		}
		cancelShort()
		pub.Close()
		sub.Close()
	}
}

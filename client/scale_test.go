package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
)

// TestThousandTopics: 1,000 one-partition SPSC topics, each with a
// publisher and a subscriber, fit this process's RLIMIT_NOFILE with the
// daemon in it (kaelixd 4 descriptors per partition of one subscriber
// slot and no group slot, each handle 1; DESIGN.md, "Descriptor budget"),
// and a daemon restart re-adopts them all: every handle keeps working
// through the reconnect, with no attach of its own.
func TestThousandTopics(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 topics; skipped with -short")
	}
	const n = 1000
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	d := testdaemon.Start(t, testdaemon.WithDirs(e.dirs()), testdaemon.Persistent())
	c := connect(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	base := openFDs(t)
	pubs := make([]*client.Publisher, n)
	subs := make([]*client.Subscriber, n)
	for i := range n {
		name := fmt.Sprintf("scale.%04d", i)
		if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: name, Kind: client.KindSPSC, CapacityBytes: 4096, MaxMessageBytes: 256}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		var err error
		if subs[i], err = c.Subscribe(ctx, name, client.SubscribeOptions{}); err != nil {
			t.Fatalf("subscribe %s: %v", name, err)
		}
		if pubs[i], err = c.NewPublisher(ctx, name, client.PublisherOptions{}); err != nil {
			t.Fatalf("publisher %s: %v", name, err)
		}
	}
	used := openFDs(t) - base
	t.Logf("%d topics with a publisher and a subscriber each: %d descriptors (daemon and client), RLIMIT_NOFILE %d", n, used, lim.Cur)
	if used > 6*n+64 {
		t.Errorf("%d descriptors for %d topics, want at most %d (4 the daemon's and 2 the handles' per topic)", used, n, 6*n+64)
	}
	roundTrip := func(when string, tag byte) {
		t.Helper()
		for i, p := range pubs {
			if err := p.TryPublish(client.Message{Payload: []byte{tag, byte(i), byte(i >> 8)}}); err != nil {
				t.Fatalf("%s: publish on topic %d: %v", when, i, err)
			}
		}
		for i, s := range subs {
			var got []byte
			for deadline := time.Now().Add(time.Minute); got == nil; {
				if _, err := s.Poll(func(m *client.Message) { got = append([]byte{}, m.Payload...) }, 1); err != nil {
					t.Fatalf("%s: poll topic %d: %v", when, i, err)
				}
				if got == nil && time.Now().After(deadline) {
					t.Fatalf("%s: topic %d: nothing received", when, i)
				}
			}
			if want := []byte{tag, byte(i), byte(i >> 8)}; string(got) != string(want) {
				t.Fatalf("%s: topic %d received %v, want %v", when, i, got, want)
			}
		}
	}
	roundTrip("before the restart", 1)

	d = d.Restart()
	for deadline := time.Now().Add(2 * time.Minute); !c.Connected(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the client did not reconnect to the restarted daemon")
		}
	}
	topics, err := c.Topics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(topics) != n {
		t.Fatalf("the restarted daemon lists %d topics, want %d", len(topics), n)
	}
	roundTrip("after the restart", 2)
	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Clients) != 1 {
		t.Errorf("the restarted daemon lists %d clients, want 1", len(st.Clients))
	}
	for i := range n {
		pubs[i].Close()
		subs[i].Close()
	}
	_ = d
}

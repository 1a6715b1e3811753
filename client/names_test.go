package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
)

// runDaemon runs a daemon in this process, leaving its topics for the
// next one on e (not ephemeral), until the returned stop is called (or
// the test ends).
func runDaemon(t *testing.T, e env, mod func(*daemon.Config)) (stop func()) {
	t.Helper()
	d := testdaemon.Start(t, testdaemon.WithDirs(e.dirs()), testdaemon.Persistent(), testdaemon.WithConfig(mod))
	return func() { d.Stop() }
}

// TestTopicNameLengths walks the topic-name length boundaries end to end:
// 1, 193, 194 (the first length the old naming broke), 235 and 236 (the
// last full file name and the first digested one), 249 (the maximum), and
// two 249-byte names that differ only in their last byte. Each is created,
// published to, subscribed to and listed; then the daemon restarts,
// re-adopts them all, they carry traffic again and are deleted. 250
// bytes is refused with ErrInvalidTopicName.
func TestTopicNameLengths(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("x", 248)
	var names []string
	for _, n := range []int{1, 193, 194, 235, 236, 249} {
		names = append(names, fmt.Sprintf("%c%s", 'a'+len(names), strings.Repeat("q", n-1)))
	}
	names = append(names, long+"1", long+"2")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	exchange := func(c *client.Client, name string, round int) {
		t.Helper()
		sub, err := c.Subscribe(ctx, name, client.SubscribeOptions{})
		if err != nil {
			t.Fatalf("subscribe %d-byte name: %v", len(name), err)
		}
		defer sub.Close()
		pub, err := c.NewPublisher(ctx, name, client.PublisherOptions{})
		if err != nil {
			t.Fatalf("publisher %d-byte name: %v", len(name), err)
		}
		defer pub.Close()
		for i := range 10 {
			want := fmt.Sprintf("%s/%d/%d", name[len(name)-1:], round, i)
			if err := pub.Publish(ctx, client.Message{Payload: []byte(want)}); err != nil {
				t.Fatal(err)
			}
			m, err := sub.Receive(ctx)
			if err != nil || string(m.Payload) != want {
				t.Fatalf("%d-byte name: received %q, %v; want %q", len(name), m.Payload, err, want)
			}
		}
	}
	listed := func(c *client.Client) map[string]bool {
		t.Helper()
		ts, err := c.Topics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, ti := range ts {
			got[ti.Spec.Name] = true
		}
		return got
	}

	stop := runDaemon(t, e, nil)
	c := connect(t, e)
	for _, name := range names {
		if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: name, Partitions: 2}); err != nil {
			t.Fatalf("create %d-byte name: %v", len(name), err)
		}
		exchange(c, name, 0)
	}
	got := listed(c)
	for _, name := range names {
		if !got[name] {
			t.Errorf("%d-byte topic not listed", len(name))
		}
	}
	_, err := c.CreateTopic(ctx, client.TopicConfig{Name: long + "12"})
	if !errors.Is(err, client.ErrInvalidTopicName) {
		t.Fatalf("250-byte name: %v, want ErrInvalidTopicName", err)
	}
	c.Close()
	stop()

	stop = runDaemon(t, e, func(cfg *daemon.Config) { cfg.RemoveOnExit = true })
	c = connect(t, e)
	got = listed(c)
	for _, name := range names {
		if !got[name] {
			t.Fatalf("%d-byte topic not re-adopted after restart (have %d topics)", len(name), len(got))
		}
		exchange(c, name, 1)
		if err := c.DeleteTopic(ctx, name, client.DeleteOptions{}); err != nil {
			t.Fatalf("delete %d-byte name: %v", len(name), err)
		}
	}
	if got := listed(c); len(got) != 0 {
		t.Fatalf("topics left after delete: %v", got)
	}
	c.Close()
	stop()
}

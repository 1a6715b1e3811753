package client_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
)

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// regionFDs counts this process's open descriptors of topic's region
// files (file names topic.pN...): what the daemon and the handles hold,
// without the sockets, pidfds and pipes that come and go meanwhile.
func regionFDs(t *testing.T, dir, topic string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, dir+"/"+topic+".p") {
			n++
		}
	}
	return n
}

// TestHandleDescriptors: a publisher or subscriber keeps one descriptor
// per partition (its data region's), however many slot regions the topic
// has: the consumer and slot regions stay mapped without one. The daemon
// runs in this process, so the topic is made and the client connected
// before counting, and only descriptors of the topic's region files are
// counted (the daemon's sockets and pidfds come and go meanwhile: a full
// run of the package once counted 40 more of those).
func TestHandleDescriptors(t *testing.T) {
	e := newEnv(t)
	startDaemon(t, e, nil)
	c := connect(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const parts, slack = 8, 4
	info, err := c.CreateTopic(ctx, client.TopicConfig{Name: "fds", Partitions: parts})
	if err != nil {
		t.Fatal(err)
	}
	slots := info.Spec.MaxSubscribers + info.Spec.MaxGroups
	if slots < 8 {
		t.Fatalf("topic has %d slots; the test needs the default dozens to mean anything", slots)
	}
	dir := filepath.Dir(info.Partitions[0].Path)
	count := func() int { return regionFDs(t, dir, "fds") }
	base := count()
	pub, err := c.NewPublisher(ctx, "fds", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := count() - base; n > parts+slack {
		t.Errorf("a publisher on %d partitions of %d slot regions each holds %d descriptors, want at most %d", parts, slots, n, parts+slack)
	}
	sub, err := c.Subscribe(ctx, "fds", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := count() - base; n > 2*parts+slack {
		t.Errorf("a publisher and a subscriber on %d partitions hold %d descriptors, want at most %d", parts, n, 2*parts+slack)
	}
	// The handles still work: a record goes through every partition.
	for i := 0; i < parts; i++ {
		if err := pub.TryPublish(client.Message{Key: []byte{byte(i)}, Payload: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for deadline := time.Now().Add(30 * time.Second); got < parts && time.Now().Before(deadline); {
		n, err := sub.Poll(func(*client.Message) {}, parts)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	if got != parts {
		t.Fatalf("received %d of %d records", got, parts)
	}
	pub.Close()
	sub.Close()
	if n := count() - base; n > slack {
		t.Errorf("%d descriptors more than before once both handles are closed", n)
	}
}

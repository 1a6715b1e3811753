package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/wire"
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

var fdsRoles = map[string]func(env) int{
	// Connect, lower RLIMIT_NOFILE to 16 above what is open, then ask for
	// a publisher of fds.big (dozens of region descriptors) and print
	// "big ERR emfile=BOOL dropped=BOOL" (or "big ok"), then publish one
	// message on fds.small (3 descriptors) over the same connection and
	// print "small ok" or "small ERR".
	"fds-starved": func(e env) int {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := client.Connect(ctx, client.Options{SocketPath: e.socket})
		if err != nil {
			fmt.Println("connect", err)
			return 1
		}
		defer c.Close()
		ents, _ := os.ReadDir("/proc/self/fd")
		var lim unix.Rlimit
		unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
		lim.Cur = uint64(len(ents) + 16)
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			fmt.Println("setrlimit", err)
			return 1
		}
		if p, err := c.NewPublisher(ctx, "fds.big", client.PublisherOptions{}); err != nil {
			var dropped *wire.DescriptorsDroppedError
			fmt.Printf("big %v emfile=%v dropped=%v\n", err, errors.Is(err, unix.EMFILE), errors.As(err, &dropped))
		} else {
			p.Close()
			fmt.Println("big ok")
		}
		p, err := c.NewPublisher(ctx, "fds.small", client.PublisherOptions{})
		if err == nil {
			err = p.Publish(ctx, client.NewMessage([]byte("after")))
			p.Close()
		}
		if err != nil {
			fmt.Println("small", err)
			return 1
		}
		fmt.Println("small ok")
		return 0
	},
}

// TestOutOfDescriptors: a process at its RLIMIT_NOFILE asks for a
// publisher whose attach passes it more region descriptors than it may
// open. The kernel drops them (MSG_CTRUNC); the attach fails with an
// error naming the limit (errors.Is EMFILE), not a reconnect loop; the
// daemon detaches what it reserved for it; the same connection then
// attaches a small topic and publishes.
func TestOutOfDescriptors(t *testing.T) {
	e := newEnv(t)
	startDaemon(t, e, nil)
	c := connect(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: "fds.big", Partitions: 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: "fds.small", Kind: client.KindSPSC}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, "fds.small", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ch := startChild(t, e.environ("fds-starved"))
	big := ch.expect(t, "big ", 60*time.Second)
	if !strings.Contains(big, "RLIMIT_NOFILE") || !strings.Contains(big, "emfile=true") || !strings.Contains(big, "dropped=true") {
		t.Errorf("attach past the descriptor limit: %q, want an error naming RLIMIT_NOFILE, matching EMFILE", big)
	}
	ch.expect(t, "small ok", 60*time.Second)
	var got string
	for deadline := time.Now().Add(30 * time.Second); got == "" && time.Now().Before(deadline); {
		if _, err := sub.Poll(func(m *client.Message) { got = string(m.Payload) }, 1); err != nil {
			t.Fatal(err)
		}
	}
	if got != "after" {
		t.Errorf("the starved process's message after the refusal: %q", got)
	}
	if err := ch.cmd.Wait(); err != nil {
		t.Errorf("helper: %v\n%s", err, ch.stderr)
	}
	// What the daemon reserved for the refused publisher is detached.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		info, err := c.TopicInfo(ctx, "fds.big")
		if err != nil {
			t.Fatal(err)
		}
		if info.Publishers == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fds.big still has %d publishers after the refused attach", info.Publishers)
		}
	}
}

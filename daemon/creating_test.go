package daemon_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
)

// holdCreation makes d's creations of topic stop before partition at
// (outside the daemon's lock) until the returned release is called; held
// is closed once it has stopped there. Later creations and other topics
// are not held.
func holdCreation(t *testing.T, d *daemon.Daemon, topic string, at int, before func()) (held <-chan struct{}, release func()) {
	t.Helper()
	h, r := make(chan struct{}), make(chan struct{})
	var released bool
	var fired atomic.Bool
	daemon.SetCreateHook(d, func(name string, i int) {
		if name != topic || i != at || fired.Swap(true) {
			return // only the first creation of topic is held
		}
		if before != nil {
			before()
		}
		close(h)
		<-r
	})
	release = func() {
		if !released {
			released = true
			close(r)
		}
	}
	t.Cleanup(release) // never leave a creation held (the daemon's stop waits for it)
	return h, release
}

// heldCreate sends a create of spec on c, held by d before partition at
// (holdCreation), and returns once it is held, with release and the
// channel the create's result arrives on.
func heldCreate(t *testing.T, ctx context.Context, d *daemon.Daemon, c *client.Client, spec client.TopicConfig, at int) (release func(), created <-chan error) {
	t.Helper()
	held, release := holdCreation(t, d, spec.Name, at, nil)
	errc := make(chan error, 1)
	go func() {
		_, err := c.CreateTopic(ctx, spec)
		errc <- err
	}()
	select {
	case <-held:
	case err := <-errc:
		t.Fatalf("create returned before it was held: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("creation never reached the hook")
	}
	return release, errc
}

// topicFiles lists the region files of topic in the daemon's region
// directory.
func topicFiles(t *testing.T, d *testdaemon.Daemon, topic string) []string {
	t.Helper()
	ents, err := os.ReadDir(d.ShmDir())
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), topic+".p") {
			out = append(out, e.Name())
		}
	}
	return out
}

func connect(t *testing.T, ctx context.Context, d *testdaemon.Daemon) *client.Client {
	t.Helper()
	c, err := client.Connect(ctx, client.Options{SocketPath: d.SocketPath()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCreateOutsideLock holds a topic's creation after its first partition
// and shows that meanwhile list, info, status, other topics' creates and
// attaches all answer; a create of it with other parameters is refused at
// once; an open-or-create and attaches of it (on other connections) end
// once it is made, with the made topic.
func TestCreateOutsideLock(t *testing.T) {
	d := testdaemon.Start(t)
	const name = "big.creating"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	creator, other := connect(t, ctx, d), connect(t, ctx, d)
	spec := client.TopicConfig{Name: name, Partitions: 2, CapacityBytes: 1 << 20}
	release, created := heldCreate(t, ctx, d.Daemon, creator, spec, 1)

	// Everything below must answer while the creation is held: were any
	// of it to wait for the creation, the test would stop here (ctx).
	infos, err := other.Topics(ctx)
	if err != nil {
		t.Fatalf("list while creating: %v", err)
	}
	if len(infos) != 1 || infos[0].Spec.Name != name || !infos[0].Creating || len(infos[0].Partitions) != 0 {
		t.Fatalf("list while creating = %+v, want only %s, creating, no partitions", infos, name)
	}
	if ti, err := other.TopicInfo(ctx, name); err != nil || !ti.Creating || ti.Spec.Partitions != 2 || ti.PartitionsMade != 1 {
		t.Fatalf("info while creating = %+v, %v; want creating with its spec, 1 partition made", ti, err)
	}
	if st, err := other.DaemonStatus(ctx); err != nil || st.Topics != 0 {
		t.Fatalf("status while creating = %+v, %v; want it, with no topic registered yet", st, err)
	}
	attached := make(chan error, 2)
	waiter := connect(t, ctx, d) // its requests wait for the creation
	go func() {
		s, err := waiter.Subscribe(ctx, name, client.SubscribeOptions{})
		if err == nil {
			s.Close()
		}
		attached <- err
	}()
	go func() {
		p, err := connect(t, ctx, d).NewPublisher(ctx, name, client.PublisherOptions{})
		if err == nil {
			p.Close()
		}
		attached <- err
	}()
	diff := spec
	diff.CapacityBytes = 2 << 20
	if _, err := other.OpenOrCreateTopic(ctx, diff); !errors.Is(err, client.ErrTopicConflict) || !strings.Contains(err.Error(), "being created") {
		t.Fatalf("open-or-create with other parameters while creating = %v, want ErrTopicConflict", err)
	}
	if _, err := other.CreateTopic(ctx, client.TopicConfig{Name: "small.meanwhile"}); err != nil {
		t.Fatalf("create of another topic while creating: %v", err)
	}
	sub, err := other.Subscribe(ctx, "small.meanwhile", client.SubscribeOptions{})
	if err != nil {
		t.Fatalf("subscribe to another topic while creating: %v", err)
	}
	pub, err := other.NewPublisher(ctx, "small.meanwhile", client.PublisherOptions{})
	if err != nil {
		t.Fatalf("publisher of another topic while creating: %v", err)
	}
	if err := pub.Publish(ctx, client.NewMessage([]byte("meanwhile"))); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.Receive(ctx); err != nil || string(m.Payload) != "meanwhile" {
		t.Fatalf("receive = %q, %v", m.Payload, err)
	}
	opened := make(chan error, 1)
	go func() {
		ti, err := other.OpenOrCreateTopic(ctx, spec)
		if err == nil && (ti.Creating || len(ti.Partitions) != 2) {
			err = errors.New("open-or-create returned the topic before it was made")
		}
		opened <- err
	}()
	select {
	case err := <-created:
		t.Fatalf("create returned while held: %v", err)
	default:
	}

	release()
	if err := <-created; err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := <-opened; err != nil {
		t.Fatalf("open-or-create that waited for the creation: %v", err)
	}
	for range 2 {
		if err := <-attached; err != nil {
			t.Fatalf("attach sent while the topic was being created: %v", err)
		}
	}
	s, err := other.Subscribe(ctx, name, client.SubscribeOptions{})
	if err != nil {
		t.Fatalf("subscribe once created: %v", err)
	}
	s.Close()
	if ti, err := other.TopicInfo(ctx, name); err != nil || ti.Creating || len(ti.Partitions) != 2 {
		t.Fatalf("info once created = %+v, %v", ti, err)
	}
}

// TestDeleteWhileCreating deletes a topic whose creation is held after
// its first partition: the delete returns once the creation has been
// abandoned, the create fails saying why, an attach that was waiting for
// it fails with not found, no region file of the topic is left, and the
// name can be created again.
func TestDeleteWhileCreating(t *testing.T) {
	d := testdaemon.Start(t)
	const name = "del.creating"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := connect(t, ctx, d)
	release, created := heldCreate(t, ctx, d.Daemon, c, client.TopicConfig{Name: name, Partitions: 2}, 1)
	if len(topicFiles(t, d, name)) == 0 {
		t.Fatal("partition 0's regions not made before the hold")
	}
	deleted := make(chan error, 1)
	attached := make(chan error, 1)
	go func() {
		_, err := connect(t, ctx, d).Subscribe(ctx, name, client.SubscribeOptions{})
		attached <- err
	}()
	deleter := connect(t, ctx, d) // c's requests wait behind its create
	go func() { deleted <- deleter.DeleteTopic(ctx, name, client.DeleteOptions{}) }()
	// The delete waits for the creator to notice, which it does once
	// released; meanwhile the topic is still listed as being created (on
	// another connection: the daemon answers one connection's requests in
	// order).
	lister := connect(t, ctx, d)
	if infos, err := lister.Topics(ctx); err != nil || len(infos) != 1 || !infos[0].Creating {
		t.Fatalf("list while deleting a topic being created = %+v, %v", infos, err)
	}
	for !daemon.CreationAbandoned(d.Daemon, name) {
		select {
		case err := <-deleted:
			t.Fatalf("delete returned while the creation was held: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	release()
	if err := <-deleted; err != nil {
		t.Fatalf("delete of a topic being created: %v", err)
	}
	if err := <-created; !errors.Is(err, client.ErrTopicNotFound) || !strings.Contains(err.Error(), "deleted while it was being created") {
		t.Fatalf("create of a topic deleted meanwhile = %v, want ErrTopicNotFound saying so", err)
	}
	if err := <-attached; !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("subscribe sent while the topic was being created, then deleted = %v, want ErrTopicNotFound", err)
	}
	if left := topicFiles(t, d, name); len(left) > 0 {
		t.Fatalf("region files left after the abandoned creation: %v", left)
	}
	if infos, err := c.Topics(ctx); err != nil || len(infos) != 0 {
		t.Fatalf("list after = %+v, %v; want nothing", infos, err)
	}
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: name, Partitions: 2}); err != nil {
		t.Fatalf("create again: %v", err)
	}
}

// TestFailedCreateLeavesNothing makes a creation fail at its second
// partition (a foreign file where its consumer region goes): the first
// partition's regions and the placeholder are removed, the foreign file
// is left alone, and nothing of the topic is listed.
func TestFailedCreateLeavesNothing(t *testing.T) {
	d := testdaemon.Start(t)
	const name = "fail.creating"
	foreign := filepath.Join(d.ShmDir(), name+".p1.c")
	_, release := holdCreation(t, d.Daemon, name, 1, func() {
		if err := os.WriteFile(foreign, []byte("not a region"), 0o600); err != nil {
			t.Error(err)
		}
	})
	release() // the hook runs through, after planting the file
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := connect(t, ctx, d)
	_, err := c.CreateTopic(ctx, client.TopicConfig{Name: name, Partitions: 2})
	if !errors.Is(err, client.ErrTopicConflict) || !strings.Contains(err.Error(), "partition 1") {
		t.Fatalf("create over a foreign file = %v, want ErrTopicConflict at partition 1", err)
	}
	if left := topicFiles(t, d, name); len(left) != 1 || left[0] != name+".p1.c" {
		t.Fatalf("files left = %v, want only the foreign file", left)
	}
	if b, err := os.ReadFile(foreign); err != nil || string(b) != "not a region" {
		t.Fatalf("foreign file now %q, %v", b, err)
	}
	if infos, err := c.Topics(ctx); err != nil || len(infos) != 0 {
		t.Fatalf("list after a failed create = %+v, %v; want nothing", infos, err)
	}
	os.Remove(foreign)
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: name, Partitions: 2}); err != nil {
		t.Fatalf("create once the file is gone: %v", err)
	}
}

// TestReloadWhileCreating reloads a configuration that declares a topic a
// client is creating: with other parameters the reload is refused at once
// and changes nothing; with the same it succeeds once the creation is
// done (waiting for it if it got there first), and the topic is made once.
func TestReloadWhileCreating(t *testing.T) {
	f := startFile(t, baseTOML, nil)
	const name = "cfg.creating"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{SocketPath: f.d.SocketPath()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	release, created := heldCreate(t, ctx, f.d, c, client.TopicConfig{Name: name, CapacityBytes: 64 << 10}, 0)
	f.write(t, baseTOML+"\n[[topics]]\nname = \""+name+"\"\ncapacity = \"128KiB\"\n")
	if _, err := f.d.Reload(); err == nil || !strings.Contains(err.Error(), "being created with other parameters") {
		t.Fatalf("reload declaring the topic being created with another capacity = %v, want a conflict", err)
	}
	f.write(t, baseTOML+"\n[[topics]]\nname = \""+name+"\"\ncapacity = \"64KiB\"\n")
	reloaded := make(chan error, 1)
	go func() {
		_, err := f.d.Reload()
		reloaded <- err
	}()
	release()
	if err := <-created; err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := <-reloaded; err != nil {
		t.Fatalf("reload declaring the topic as created: %v", err)
	}
	if ti, err := c.TopicInfo(ctx, name); err != nil || ti.Creating || len(ti.Partitions) != 1 {
		t.Fatalf("info = %+v, %v", ti, err)
	}
}

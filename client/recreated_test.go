package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
)

// TestEphemeralRestartTellsHandles: an --ephemeral daemon stops (its
// region files are removed) and a new one starts on the same socket with a
// topic of the same name. The old Publisher and Subscriber, once their
// Client has reconnected, get a *TopicRecreatedError that counts exactly
// the records published into the old ring after the connection broke;
// re-attaching reaches the new topic.
func TestEphemeralRestartTellsHandles(t *testing.T) {
	e := newEnv(t)
	const topic = "re.created"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ephemeral := func(cfg *daemon.Config) { cfg.RemoveOnExit = true }

	stop := runDaemon(t, e, ephemeral)
	c := connect(t, e)
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: topic}); err != nil {
		t.Fatal(err)
	}
	pub, err := c.NewPublisher(ctx, topic, client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, topic, client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := pub.Publish(ctx, client.Message{Payload: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	waitFor(t, "client notices the daemon is gone", func() bool { return !c.Connected() })
	// Records published now go into a ring no daemon knows (the stopped
	// daemon marked it deleted; a publisher sees that on its slow path).
	sent := uint64(0)
	for range 5 {
		err := pub.TryPublish(client.Message{Payload: []byte("void")})
		switch {
		case err == nil:
			sent++
		case errors.Is(err, client.ErrTopicDeleted):
		default:
			t.Fatalf("publish with no daemon: %v", err)
		}
	}

	runDaemon(t, e, ephemeral)
	c2 := connect(t, e)
	if _, err := c2.CreateTopic(ctx, client.TopicConfig{Name: topic}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "old client reconnects", c.Connected)

	var re *client.TopicRecreatedError
	err = pub.TryPublish(client.Message{Payload: []byte("after")})
	if !errors.As(err, &re) || !errors.Is(err, client.ErrTopicRecreated) {
		t.Fatalf("publisher after the restart: %v, want a *TopicRecreatedError", err)
	}
	if re.Topic != topic || re.Published != sent || re.Since.IsZero() {
		t.Fatalf("publisher's error %+v: want topic %q, Published %d", re, topic, sent)
	}
	t.Logf("publisher told: %v", err)
	// The subscriber reads what it still can (the records published after
	// the connection broke), then is told too.
	got := uint64(0)
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	for {
		_, err := sub.Receive(rctx)
		if err == nil {
			got++
			continue
		}
		if !errors.As(err, &re) {
			t.Fatalf("subscriber after the restart: %v (after %d records), want a *TopicRecreatedError", err, got)
		}
		break
	}
	if got != sent {
		t.Errorf("subscriber read %d records from the old ring, %d were published", got, sent)
	}
	t.Logf("subscriber told: %v", re)

	// Re-attaching reaches the daemon's topic.
	pub.Close()
	sub.Close()
	pub, err = c.NewPublisher(ctx, topic, client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub2, err := c2.Subscribe(ctx, topic, client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close()
	if err := pub.Publish(ctx, client.Message{Payload: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	if m, err := sub2.Receive(rctx); err != nil || string(m.Payload) != "new" {
		t.Fatalf("new topic: %q %v", m.Payload, err)
	}
}

// Helper roles for the cross-process tests: a publisher and a subscriber
// that run until their handle returns ErrTopicRecreated, print "told"
// with the error's figures, and (the publisher) re-attach to the topic
// of that name and publish 100 more records. ErrTopicDeleted on the way
// (a stopping --ephemeral daemon marks its rings deleted) is printed once
// and waited out.
var toldRoles = map[string]func(env) int{
	"told-pub": func(e env) int { return toldHelper(e, true) },
	"told-sub": func(e env) int { return toldHelper(e, false) },
}

func toldHelper(e env, publisher bool) int {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{SocketPath: e.socket, Logger: slog.New(slog.DiscardHandler), ReconnectMax: 100 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, "error", err)
		return 1
	}
	defer c.Close()
	topic := os.Getenv(topicEnv)
	var re *client.TopicRecreatedError
	deleted := false
	handle := func(err error) (told bool, fatal error) {
		switch {
		case errors.As(err, &re):
			return true, nil
		case errors.Is(err, client.ErrTopicDeleted):
			if !deleted {
				fmt.Println("deleted")
				deleted = true
			}
			time.Sleep(5 * time.Millisecond)
			return false, nil
		}
		return false, err
	}
	if !publisher {
		sub, err := c.Subscribe(ctx, topic, client.SubscribeOptions{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "error", err)
			return 1
		}
		fmt.Println("ready")
		n := 0
		for {
			rctx, rcancel := context.WithTimeout(ctx, 100*time.Millisecond)
			_, err := sub.Receive(rctx)
			rcancel()
			if err == nil {
				n++
				if n == 100 {
					fmt.Println("receiving")
				}
				continue
			}
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				continue
			}
			told, fatal := handle(err)
			if fatal != nil {
				fmt.Fprintln(os.Stderr, "error", fatal)
				return 1
			}
			if told {
				fmt.Println("told", re.Published, re.Reason)
				return 0
			}
		}
	}
	pub, err := c.NewPublisher(ctx, topic, client.PublisherOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "error", err)
		return 1
	}
	fmt.Println("ready")
	for i := 0; ; i++ {
		err := pub.TryPublish(client.Message{Payload: []byte(fmt.Sprint("old ", i))})
		if err == nil || errors.Is(err, client.ErrBackPressured) || errors.Is(err, client.ErrNotConnected) {
			time.Sleep(200 * time.Microsecond)
			continue
		}
		told, fatal := handle(err)
		if fatal != nil {
			fmt.Fprintln(os.Stderr, "error", fatal)
			return 1
		}
		if told {
			break
		}
	}
	fmt.Println("told", re.Published, re.Reason)
	pub.Close()
	for {
		pub, err = c.NewPublisher(ctx, topic, client.PublisherOptions{})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "error", err)
			return 1
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Publish once the daemon's topic has a subscriber (nothing is kept
	// for absent subscribers under policy block).
	for {
		info, err := c.TopicInfo(ctx, topic)
		if err == nil && info.Subscribers > 0 {
			break
		}
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "error: no subscriber on the daemon's topic")
			return 1
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range 100 {
		if err := pub.Publish(ctx, client.Message{Payload: []byte(fmt.Sprint("new ", i))}); err != nil {
			fmt.Fprintln(os.Stderr, "error", err)
			return 1
		}
	}
	fmt.Println("republished 100")
	pub.Close()
	return 0
}

// receiveNew reads n records from sub, all "new ..." ones.
func receiveNew(t *testing.T, sub *client.Subscriber, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range n {
		m, err := sub.Receive(ctx)
		if err != nil || string(m.Payload) != fmt.Sprint("new ", i) {
			t.Fatalf("record %d on the daemon's topic: %q %v", i, m.Payload, err)
		}
	}
}

// TestEphemeralRestartCrossProcess is the reported case with real
// processes: a publisher and a subscriber process exchange records
// through an --ephemeral daemon (a process too), which stops and is
// started again; the topic is created again. Both processes are told
// (ErrTopicRecreated), and the publisher's re-attach reaches a new
// subscriber of the daemon's topic with every record.
func TestEphemeralRestartCrossProcess(t *testing.T) {
	e := newEnv(t)
	const topic = "re.xproc"
	d1 := startChild(t, e.environ("daemon", "KAELIX_TEST_EPHEMERAL=1"))
	d1.expect(t, "ready", 30*time.Second)
	c := connect(t, e)
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: topic}); err != nil {
		t.Fatal(err)
	}
	sub := startChild(t, e.environ("told-sub", topicEnv+"="+topic))
	sub.expect(t, "ready", 30*time.Second)
	pub := startChild(t, e.environ("told-pub", topicEnv+"="+topic))
	pub.expect(t, "ready", 30*time.Second)
	sub.expect(t, "receiving", 30*time.Second)
	c.Close()

	d1.cmd.Process.Signal(syscall.SIGTERM)
	if err := d1.cmd.Wait(); err != nil {
		t.Fatalf("daemon exit: %v\n%s", err, d1.stderr)
	}
	d2 := startChild(t, e.environ("daemon", "KAELIX_TEST_EPHEMERAL=1"))
	d2.expect(t, "ready", 30*time.Second)
	c2 := connect(t, e)
	if _, err := c2.CreateTopic(ctx, client.TopicConfig{Name: topic}); err != nil {
		t.Fatal(err)
	}
	fresh, err := c2.Subscribe(ctx, topic, client.SubscribeOptions{From: client.FromOldest})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []*child{pub, sub} {
		line := ch.expect(t, "told", 60*time.Second)
		t.Logf("told: %s", line)
		if !strings.Contains(line, "daemon restarted") {
			t.Errorf("reason: %q", line)
		}
	}
	pub.expect(t, "republished 100", 60*time.Second)
	receiveNew(t, fresh, 100)
	for _, ch := range []*child{pub, sub} {
		if err := ch.cmd.Wait(); err != nil {
			t.Errorf("helper: %v\n%s", err, ch.stderr)
		}
	}
	fresh.Close()
	c2.Close()
	d2.cmd.Process.Signal(syscall.SIGTERM)
	if err := d2.cmd.Wait(); err != nil {
		t.Fatalf("daemon exit: %v\n%s", err, d2.stderr)
	}
}

// TestRegionFilesRemovedCrossProcess: a topic's region files are deleted
// (as logind's RemoveIPC does) while a publisher and a subscriber process
// exchange records. The daemon notices at its next sweep: health says
// region_unlinked, kaelix_region_unlinked_total counts every file, the
// topic is re-created with new files (its paths exist again, other
// inodes), both processes are told (ErrTopicRecreated), and the
// publisher's re-attach reaches a subscriber of the new topic.
func TestRegionFilesRemovedCrossProcess(t *testing.T) {
	e := newEnv(t)
	const topic = "re.unlinked"
	d := startDaemon(t, e, func(cfg *daemon.Config) {
		cfg.Daemon.SweepInterval = 20 * time.Millisecond
		cfg.Network.Enabled, cfg.Network.Port = true, 0
	})
	c := connect(t, e)
	ctx := context.Background()
	info, err := c.CreateTopic(ctx, client.TopicConfig{Name: topic, MaxSubscribers: 4, MaxGroups: 1})
	if err != nil {
		t.Fatal(err)
	}
	sub := startChild(t, e.environ("told-sub", topicEnv+"="+topic))
	sub.expect(t, "ready", 30*time.Second)
	pub := startChild(t, e.environ("told-pub", topicEnv+"="+topic))
	pub.expect(t, "ready", 30*time.Second)
	sub.expect(t, "receiving", 30*time.Second)

	part := info.Partitions[0]
	paths := append([]string{part.Path, part.ConsumerPath}, part.SlotPaths(info.Spec.MaxSubscribers)...)
	inodes := map[string]uint64{}
	for _, p := range paths {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		inodes[p] = st.Ino
	}
	// Remove the files (only the topic's first ones: a sweep may re-create
	// the topic before the last is gone, and its new files must stay).
	removed := 0
	for _, p := range paths {
		var st syscall.Stat_t
		if syscall.Stat(p, &st) != nil || st.Ino != inodes[p] {
			continue
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		removed++
	}
	for _, ch := range []*child{pub, sub} {
		line := ch.expect(t, "told", 60*time.Second)
		t.Logf("told: %s", line)
		if !strings.Contains(line, "region files removed") {
			t.Errorf("reason: %q", line)
		}
	}
	h := d.Health()
	found := false
	for _, r := range h.Reasons {
		found = found || r.Rule == "region_unlinked" && strings.Contains(r.Message, topic) &&
			strings.Contains(r.Message, "partition 0: ") && strings.Count(r.Message, "/") <= strings.Count(paths[0], "/")
	}
	if h.Status != "degraded" || !found {
		t.Errorf("health after the files were removed: %+v", h)
	}
	// A sweep may run between two removals: the ones after it are of
	// files the re-creation unlinks itself, not counted.
	if n := scrapeCounter(t, d, "kaelix_region_unlinked_total"); n < 1 || n > float64(removed) {
		t.Errorf("kaelix_region_unlinked_total = %v, want 1..%d", n, removed)
	}
	// The children are told as soon as the topic is retired; its
	// re-creation may still be under way, and until it ends info shows it
	// Creating, with no partitions.
	var info2 client.TopicInfo
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		info2, err = c.TopicInfo(ctx, topic)
		if err != nil {
			t.Fatalf("topic after re-creation: %v", err)
		}
		if !info2.Creating && len(info2.Partitions) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the topic was never re-created: %+v", info2)
		}
	}
	for _, p := range append([]string{info2.Partitions[0].Path, info2.Partitions[0].ConsumerPath}, info2.Partitions[0].SlotPaths(info2.Spec.MaxSubscribers)...) {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil || st.Ino == inodes[p] {
			t.Errorf("re-created region %s: %v (inode %d, was %d)", p, err, st.Ino, inodes[p])
		}
	}
	fresh, err := c.Subscribe(ctx, topic, client.SubscribeOptions{From: client.FromOldest})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	pub.expect(t, "republished 100", 60*time.Second)
	receiveNew(t, fresh, 100)
	for _, ch := range []*child{pub, sub} {
		if err := ch.cmd.Wait(); err != nil {
			t.Errorf("helper: %v\n%s", err, ch.stderr)
		}
	}
}

// scrapeCounter reads one unlabelled sample from the daemon's /metrics.
func scrapeCounter(t *testing.T, d *daemon.Daemon, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + d.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// TestCreateNeverReplacesMappedFile: a daemon stops (not ephemeral: its
// files stay) while a subscriber process maps a topic's files; a daemon
// with another state dir, whose registry lists no topic, starts on the
// same region directory, so the files are leftovers it does not adopt. (A
// missing registry would have it rebuild the topic from the region
// headers instead: TestCorruptRegistryRebuilt in daemon.) Creating the
// topic again is refused while that process maps the old files, which
// stay untouched; once it is gone the leftover files are removed and the
// create succeeds.
func TestCreateNeverReplacesMappedFile(t *testing.T) {
	e := newEnv(t)
	const topic = "re.mapped"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stop := runDaemon(t, e, nil)
	c := connect(t, e)
	info, err := c.CreateTopic(ctx, client.TopicConfig{Name: topic, MaxSubscribers: 2, MaxGroups: 1})
	if err != nil {
		t.Fatal(err)
	}
	holder := startChild(t, e.environ("stall", topicEnv+"="+topic))
	holder.expect(t, "ready", 30*time.Second)
	c.Close()
	stop()

	var before syscall.Stat_t
	if err := syscall.Stat(info.Partitions[0].Path, &before); err != nil {
		t.Fatal(err)
	}
	e2 := e
	e2.state = t.TempDir()
	e2.socket = filepath.Join(e2.state, "k2.sock")
	if err := os.WriteFile(filepath.Join(e2.state, "topics.json"), []byte(`{"version": 2, "topics": []}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runDaemon(t, e2, func(cfg *daemon.Config) { cfg.RemoveOnExit = true })
	c2 := connect(t, e2)
	_, err = c2.CreateTopic(ctx, client.TopicConfig{Name: topic, MaxSubscribers: 2, MaxGroups: 1})
	if !errors.Is(err, client.ErrTopicInUse) || !strings.Contains(err.Error(), fmt.Sprint(holder.cmd.Process.Pid)) {
		t.Fatalf("create over files a live process maps: %v, want ErrTopicInUse naming pid %d", err, holder.cmd.Process.Pid)
	}
	var after syscall.Stat_t
	if err := syscall.Stat(info.Partitions[0].Path, &after); err != nil || after.Ino != before.Ino {
		t.Fatalf("the mapped file was replaced or removed: %v (inode %d, was %d)", err, after.Ino, before.Ino)
	}
	holder.cmd.Process.Kill()
	holder.cmd.Wait()
	if _, err := c2.CreateTopic(ctx, client.TopicConfig{Name: topic, MaxSubscribers: 2, MaxGroups: 1}); err != nil {
		t.Fatalf("create once nothing maps the leftover files: %v", err)
	}
	if err := syscall.Stat(info.Partitions[0].Path, &after); err != nil || after.Ino == before.Ino {
		t.Fatalf("re-created file: %v (inode %d, was %d)", err, after.Ino, before.Ino)
	}
}

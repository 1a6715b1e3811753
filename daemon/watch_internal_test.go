package daemon

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/client"
)

// TestWatcherStaleEvent: epoll_wait returns a dead client's event; before
// the watcher looks it up, the client's linger ends (remove closes its
// pidfd) and a new client connects, whose pidfd gets the same number. The
// stale event must not report the new, live client dead: in the churn
// soak it did, and peerExited freed the subscriber slots the new client
// attached in the meantime under it.
func TestWatcherStaleEvent(t *testing.T) {
	w, err := newWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.stop()
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	dead := &peer{pid: child.Process.Pid, pidfd: -1}
	if err := w.add(dead); err != nil {
		t.Fatal(err)
	}
	child.Process.Kill()
	child.Wait()
	ev := waitEvent(t, w)
	if ev.Fd != int32(dead.pidfd) {
		t.Fatalf("event for fd %d, want the dead child's pidfd %d", ev.Fd, dead.pidfd)
	}
	// Between epoll_wait and the lookup: the dead client's pidfd is
	// removed, and a live client's pidfd takes a number.
	deadFD := dead.pidfd
	w.remove(dead)
	live := &peer{pid: os.Getpid(), pidfd: -1}
	if err := w.add(live); err != nil {
		t.Fatal(err)
	}
	stale := []unix.EpollEvent{ev, {Events: ev.Events, Fd: int32(live.pidfd), Pad: ev.Pad}}
	if live.pidfd != deadFD {
		t.Logf("the live pidfd got %d, not the dead one's %d: checking the event as it would read with the number reused", live.pidfd, deadFD)
	}
	for _, e := range stale {
		if p := w.take(e); p != nil {
			t.Fatalf("stale event (fd %d, token %d) reported pid %d dead; it is alive", e.Fd, e.Pad, p.pid)
		}
	}
	if live.pidfd < 0 {
		t.Fatal("the live client's pidfd was closed by a stale event")
	}
	// The live client's own registration still reports its own death: the
	// event epoll gives for it carries its token.
	w.mu.Lock()
	tok := w.byFD[int32(live.pidfd)].tok
	w.mu.Unlock()
	if p := w.take(unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(live.pidfd), Pad: tok}); p != live {
		t.Fatalf("the live client's own event reported %v, want it", p)
	}
}

// waitEvent waits (generously) for one event in w's epoll set.
func waitEvent(t *testing.T, w *watcher) unix.EpollEvent {
	t.Helper()
	evs := make([]unix.EpollEvent, 1)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n, err := unix.EpollWait(w.epfd, evs, 100)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			return evs[0]
		}
	}
	t.Fatal("no epoll event within 10 s of the child's death")
	return unix.EpollEvent{}
}

// TestPeerExitedLiveClient: a death report for a client whose process
// still runs (what the stale event above produced) frees none of its
// slots: its subscriber goes on receiving.
func TestPeerExitedLiveClient(t *testing.T) {
	d := startInternal(t)
	ctx := context.Background()
	c, err := client.Connect(ctx, client.Options{SocketPath: d.SocketPath()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: "t", Partitions: 1, CapacityBytes: 64 << 10, MaxMessageBytes: 64}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, "t", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := c.NewPublisher(ctx, "t", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var me *peer
	d.mu.Lock()
	for _, p := range d.peers {
		if len(p.refs) > 0 {
			me = p
		}
	}
	d.mu.Unlock()
	if me == nil {
		t.Fatal("no connection holds a subscriber slot")
	}
	d.peerExited(me, time.Now())
	if err := pub.Publish(ctx, client.Message{Payload: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	got := 0
	for deadline := time.Now().Add(10 * time.Second); got == 0 && time.Now().Before(deadline); {
		if _, err := sub.Poll(func(*client.Message) { got++ }, 10); err != nil {
			t.Fatalf("Poll after a wrong death report: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if got != 1 {
		t.Fatalf("received %d messages after a wrong death report, want 1", got)
	}
}

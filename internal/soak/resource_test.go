package soak

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/shm"
)

// exchange publishes and receives n records on an existing topic.
func exchange(t *testing.T, pub *client.Publisher, k *checker, stream uint32, n int) {
	t.Helper()
	buf := make([]byte, MinRecordBytes+maxFill)
	start := k.next[stream]
	for i := range n {
		if err := pub.Publish(context.Background(), client.Message{Payload: encodeRecord(buf, stream, start+uint64(i), 0)}); err != nil {
			t.Fatalf("existing topic: publish: %v", err)
		}
	}
	k.until(t, "existing topic keeps working", 10*time.Second, func() bool { return k.next[stream] == start+uint64(n) })
	k.clean(t)
}

// TestExhaustedTmpfs: regions on a small test-mounted tmpfs. A topic
// that does not fit, and any topic once the tmpfs is nearly full, is
// refused at creation with a clear resource error, counted; the existing
// topic keeps working (its pages were reserved at creation, so nobody
// gets SIGBUS) and the daemon stays up.
func TestExhaustedTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot mount a test tmpfs")
	}
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=2m,mode=0755"); err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	e := newSecEnv(t, func(c *daemon.Config) {
		c.Shm.BaseDir = mnt
		c.Shm.MaxTopicShare = 0 // the allocation itself must fail here, not the size check before it
	})
	c := e.client()
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: "res.small", CapacityBytes: 256 << 10}); err != nil {
		t.Fatal(err)
	}
	pub, err := c.NewPublisher(ctx, "res.small", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	k := newChecker(t, c, "res.small")
	exchange(t, pub, k, 1, 100)

	_, err = c.CreateTopic(ctx, client.TopicConfig{Name: "res.big", CapacityBytes: 4 << 20})
	t.Logf("topic larger than the tmpfs: %v", err)
	if err == nil || !strings.Contains(err.Error(), "no space") {
		t.Fatalf("create of a topic larger than the tmpfs: %v, want a no-space error", err)
	}
	// Nearly full: a filler leaves less than one more region.
	var st unix.Statfs_t
	unix.Statfs(mnt, &st)
	filler := filepath.Join(mnt, "filler")
	if out, err := exec.Command("fallocate", "-l", itoa64(int64(st.Bavail)*st.Bsize-64<<10), filler).CombinedOutput(); err != nil {
		t.Fatalf("fallocate: %v %s", err, out)
	}
	_, err = c.CreateTopic(ctx, client.TopicConfig{Name: "res.more", CapacityBytes: 256 << 10})
	t.Logf("topic on a nearly full tmpfs: %v", err)
	if err == nil || !strings.Contains(err.Error(), "no space") {
		t.Fatalf("create on a nearly full tmpfs: %v", err)
	}
	exchange(t, pub, k, 1, 1000)
	m := metrics(t, e.d)
	if !strings.Contains(m, `kaelix_resource_refusals_total{resource="shm_space"} 2`) || !strings.Contains(m, "kaelix_region_allocation_failures_total 2") {
		t.Errorf("refusals not counted:\n%s", grepLines(m, "refusals")+grepLines(m, "allocation_failures"))
	}
	// Only res.small's regions (data, consumer, slots) are left.
	ents, _ := os.ReadDir(filepath.Join(mnt, e.args.ShmDir))
	for _, ent := range ents {
		if !strings.HasPrefix(ent.Name(), "res.small.p0") && ent.Name() != ".kaelixd.lock" {
			t.Errorf("region left after the failed creates: %s", ent.Name())
		}
	}
	if len(ents) < 2 {
		t.Errorf("res.small's regions are missing: %v", ents)
	}
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// TestExhaustedMemlock: kaelixd as an unprivileged user (no
// CAP_IPC_LOCK) with shm.mlock = required and RLIMIT_MEMLOCK of 64 KiB:
// a topic whose region cannot be locked is refused with the limit named,
// counted, and the daemon stays up and serves.
func TestExhaustedMemlock(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot run kaelixd as another user without CAP_IPC_LOCK")
	}
	e := newSecEnv(t, nil)
	home, err := os.MkdirTemp("", "kaelix-memlock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	mnt := filepath.Join(home, "shm")
	os.Mkdir(mnt, 0o700)
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=16m,mode=0700,uid=4250,gid=4250"); err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	os.Chown(home, 4250, 4250)
	a := e.args
	a.Socket, a.StateDir, a.ShmBase, a.Mlock, a.HTTP = filepath.Join(home, "d.sock"), home, mnt, true, true
	var old unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_MEMLOCK, &old)
	unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: 64 << 10, Max: old.Max}) // inherited by the child
	d, err := SpawnAs(e.exe, "daemon", a, "", 4250, 4250)
	unix.Setrlimit(unix.RLIMIT_MEMLOCK, &old)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Kill() })
	line, err := d.Expect("metrics", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(line, "metrics ")
	if _, err := d.Expect("ready", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	e.args.Socket = a.Socket
	c := e.client()
	_, err = c.CreateTopic(context.Background(), client.TopicConfig{Name: "res.locked", CapacityBytes: 1 << 20})
	t.Logf("topic that cannot be mlocked: %v", err)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "mlock") {
		t.Fatalf("create: %v, want an mlock error", err)
	}
	r, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(b), `kaelix_resource_refusals_total{resource="mlock"} 1`) {
		t.Errorf("refusal not counted:\n%s", grepLines(string(b), "refusals"))
	}
	if _, err := c.Topics(context.Background()); err != nil || d.Exited() {
		t.Errorf("daemon after the refusal: %v (exited %v)", err, d.Exited())
	}
}

// TestExhaustedHugePages: with shm.hugepages = required, a topic needing
// more huge pages than the node has free is refused with the node, the
// pages needed and free, and the file to raise; counted; the existing
// topic keeps working.
func TestExhaustedHugePages(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root")
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	if !strings.Contains(string(mounts), "hugetlbfs") {
		t.Skip("no hugetlbfs mounted (make test mounts one for its run as root)")
	}
	if b, _ := os.ReadFile("/proc/sys/vm/nr_hugepages"); strings.TrimSpace(string(b)) == "0" || len(b) == 0 {
		t.Skip("no huge pages reserved (make test reserves some for its run as root)")
	}
	e := newSecEnv(t, func(c *daemon.Config) { c.Shm.HugePages = shm.PolicyRequired })
	c := e.client()
	ctx := context.Background()
	_, err := c.CreateTopic(ctx, client.TopicConfig{Name: "res.huge", CapacityBytes: 1 << 30, MaxMessageBytes: 1024})
	t.Logf("topic needing more huge pages than free: %v", err)
	if err == nil || !strings.Contains(err.Error(), "huge") {
		t.Fatalf("create: %v, want a huge pages error", err)
	}
	m := metrics(t, e.d)
	if !strings.Contains(m, `kaelix_resource_refusals_total{resource="hugepages"} 1`) {
		t.Errorf("refusal not counted:\n%s", grepLines(m, "refusals"))
	}
	if st := e.d.Status(); st.Topics != 0 {
		t.Errorf("status after refusal: %+v", st)
	}
}

// TestLimitsReached: daemon.max_clients and a topic's subscriber slots.
// The client over the limit gets a clear error (counted for clients);
// connected clients and the existing subscriber carry on.
func TestLimitsReached(t *testing.T) {
	e := newCrashEnv(t, func(c *daemon.Config) { c.Daemon.MaxClients = 2 })
	c := e.client()
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: "res.limits", CapacityBytes: 64 << 10, MaxSubscribers: 1}); err != nil {
		t.Fatal(err)
	}
	pub, err := c.NewPublisher(ctx, "res.limits", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	k := newChecker(t, c, "res.limits")
	_, err = c.Subscribe(ctx, "res.limits", client.SubscribeOptions{})
	t.Logf("subscriber over the slot limit: %v", err)
	if !errors.Is(err, client.ErrNoSlot) {
		t.Errorf("second subscriber on a 1-slot topic: %v, want ErrNoSlot", err)
	}
	c2 := e.client()
	_, err = client.Connect(ctx, client.Options{SocketPath: e.args.Socket})
	t.Logf("client over daemon.max_clients: %v", err)
	if err == nil || !strings.Contains(err.Error(), "max_clients") {
		t.Errorf("third client: %v, want a max_clients error", err)
	}
	if _, err := c2.Topics(ctx); err != nil {
		t.Errorf("connected client after the refusal: %v", err)
	}
	exchange(t, pub, k, 3, 200)
}

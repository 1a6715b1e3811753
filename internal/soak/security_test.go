package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/daemon/config"
	"github.com/kaelix-io/kaelix/shm"
)

// secEnv is a daemon run as root whose socket anyone may reach, so that
// the daemon's own rules are what stands between other users and topics.
type secEnv struct {
	*crashEnv
	exe string // a copy of the test binary other users can execute
}

func newSecEnv(t *testing.T, mod func(*daemon.Config)) *secEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot run children as other users (uid 4242...); run the suite as root to test access control")
	}
	pub, err := os.MkdirTemp("", "kaelix-sec-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pub) })
	os.Chmod(pub, 0o755)
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(pub, "soak.test")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	e := newCrashEnv(t, func(c *daemon.Config) {
		c.Daemon.SocketPath = filepath.Join(pub, "kaelixd.sock")
		c.Security.SocketMode = 0o666
		c.Network.Enabled = true
		c.Network.Port = 0
		c.Daemon.SweepInterval = 50 * time.Millisecond
		c.Security.Access = []config.AccessRule{
			{Topics: "acl.*", Publish: config.Principals{UIDs: []int{4242}}, Subscribe: config.Principals{UIDs: []int{4243}}, Admin: config.Principals{GIDs: []int{5000}}},
			{Topics: "rogue.*", Publish: config.Principals{UIDs: []int{4242}}, Subscribe: config.Principals{UIDs: []int{4242}}},
			{Topics: "grp.*", Subscribe: config.Principals{UIDs: []int{4242, 4243}},
				Groups: []config.GroupAccess{{Names: "workers", Join: config.Principals{UIDs: []int{4242}}}}},
		}
		if mod != nil {
			mod(c)
		}
	})
	e.args.Socket = filepath.Join(pub, "kaelixd.sock")
	os.Chmod(e.log, 0o666)
	lf, _ := os.OpenFile(e.log, os.O_CREATE|os.O_WRONLY, 0o666)
	lf.Close()
	return &secEnv{crashEnv: e, exe: exe}
}

// probe runs op as uid/gid and returns its result line.
func (e *secEnv) probe(uid, gid uint32, op, topic string) string {
	e.t.Helper()
	a := e.args
	a.Group, a.Topic = op, topic
	p, err := SpawnAs(e.exe, "probe", a, "", uid, gid)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if !p.Exited() {
			p.Kill()
		}
	})
	l, err := p.Expect("result", 30*time.Second)
	if err != nil {
		e.t.Fatalf("probe %s as %d: %v", op, uid, err)
	}
	return strings.TrimPrefix(l, "result "+op+" ")
}

func metrics(t *testing.T, d *daemon.Daemon) string {
	t.Helper()
	r, err := http.Get("http://" + d.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

// TestAccessControl: per-topic rules decide every attach, create and
// delete by the peer's SO_PEERCRED identity, for children running as
// other users; none of them can open a region file by path.
func TestAccessControl(t *testing.T) {
	e := newSecEnv(t, nil)
	c := e.client()
	ctx := context.Background()
	info, err := c.CreateTopic(ctx, client.TopicConfig{Name: "acl.data", CapacityBytes: 64 << 10, Mode: 0o666})
	if err != nil {
		t.Fatal(err)
	}
	region := info.Partitions[0].Path
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: "grp.jobs", CapacityBytes: 64 << 10, Mode: 0o666}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		uid, gid  uint32
		op, topic string
		ok        bool
	}{
		{4242, 4242, "publish", "acl.data", true},
		{4242, 4242, "subscribe", "acl.data", false},
		{4243, 4243, "subscribe", "acl.data", true},
		{4243, 4243, "publish", "acl.data", false},
		{4244, 4244, "publish", "acl.data", false},
		{4244, 4244, "subscribe", "acl.data", false},
		{4244, 4244, "create", "acl.new", false},
		{4244, 4244, "delete", "acl.data", false},
		{4245, 5000, "create", "acl.admin", true},
		{4245, 5000, "delete", "acl.admin", true},
		{4242, 4242, "open-region", region, false},
		{4243, 4243, "open-region", region, false},
		{4242, 4242, "lie", "acl.forged", false}, // claims uid 0 in its hello
		// Queue groups guarded by security.access groups.
		{4242, 4242, "subscribe-group:workers", "grp.jobs", true},
		{4243, 4243, "subscribe-group:workers", "grp.jobs", false},
		{4242, 4242, "subscribe-group:others", "grp.jobs", false}, // no entry matches: nobody joins
		{4243, 4243, "subscribe", "grp.jobs", true},
	} {
		got := e.probe(tc.uid, tc.gid, tc.op, tc.topic)
		t.Logf("uid %d gid %d %s %s: %s", tc.uid, tc.gid, tc.op, tc.topic, got)
		if strings.HasPrefix(got, "ok") != tc.ok {
			t.Errorf("uid %d gid %d %s %s: %s, want ok=%v", tc.uid, tc.gid, tc.op, tc.topic, got, tc.ok)
		}
		if !tc.ok && tc.op != "open-region" && !strings.Contains(got, "permission") && !strings.Contains(got, "may not") {
			t.Errorf("%s refused without a permission error: %s", tc.op, got)
		}
		if tc.op == "open-region" && !strings.Contains(got, "permission denied") {
			t.Errorf("open-region: %s, want permission denied", got)
		}
	}
	st, err := os.Stat(filepath.Dir(region))
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("region directory %s: %v %v, want mode 0700", filepath.Dir(region), st.Mode(), err)
	}
}

// TestRogueClients: hostile clients (a legitimate publisher of rogue.*,
// uid 4242) send garbage, a frame declaring a 2 GiB body, a forged
// identity; truncate a region file; overwrite a ring header and a region
// header. The daemon survives each, drops or fences the culprit, logs and
// counts it; the victim's own subscriber gets an error on that topic
// (never SIGBUS), and other topics carry on.
func TestRogueClients(t *testing.T) {
	e := newSecEnv(t, nil)
	c := e.client()
	ctx := context.Background()
	for _, name := range []string{"acl.data", "rogue.trunc", "rogue.ring", "rogue.hdr"} {
		if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: name, CapacityBytes: 64 << 10}); err != nil {
			t.Fatal(err)
		}
	}
	good := newChecker(t, c, "acl.data")
	pub, err := c.NewPublisher(ctx, "acl.data", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	buf := make([]byte, MinRecordBytes+maxFill)
	var seq uint64
	traffic := func(what string) {
		t.Helper()
		for range 100 {
			if err := pub.Publish(ctx, client.Message{Payload: encodeRecord(buf, 7, seq, 0)}); err != nil {
				t.Fatalf("after %s: publish on a healthy topic: %v", what, err)
			}
			seq++
		}
		good.until(t, "healthy topic after "+what, 10*time.Second, func() bool { return good.got[7] == seq })
	}
	victim, err := c.Subscribe(ctx, "rogue.trunc", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()

	for _, op := range []string{"garbage", "huge"} {
		got := e.probe(4242, 4242, op, "")
		t.Logf("%s: %s", op, got)
		traffic(op)
	}
	got := e.probe(4242, 4242, "lie", "rogue.forged")
	if !strings.Contains(got, "err") {
		t.Errorf("forged identity: %s", got)
	}
	m := metrics(t, e.d)
	if !strings.Contains(m, `kaelix_clients_dropped_total{reason="bad_frame"} 2`) {
		t.Errorf("dropped clients not counted:\n%s", grepLines(m, "kaelix_clients_dropped"))
	}

	for _, tc := range []struct{ op, topic string }{{"truncate", "rogue.trunc"}, {"corrupt-ring", "rogue.ring"}, {"corrupt-shm-header", "rogue.hdr"}} {
		got := e.probe(4242, 4242, tc.op, tc.topic)
		t.Logf("%s %s: %s", tc.op, tc.topic, got)
		if !strings.HasPrefix(got, "ok") {
			t.Fatalf("%s: %s", tc.op, got)
		}
		// Within a sweep the partition is out of service: attaches get the reason.
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := c.Subscribe(ctx, tc.topic, client.SubscribeOptions{})
			if err != nil && strings.Contains(err.Error(), "out of service") {
				t.Logf("attach to %s: %v", tc.topic, err)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: attach still allowed after the damage: %v", tc.topic, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		traffic(tc.op)
	}
	// The victim subscriber mapped the truncated region: its Poll faults,
	// and the library turns SIGBUS into an error on that topic.
	_, err = victim.Poll(func(*client.Message) {}, 1)
	var fe *client.FaultError
	if !errors.As(err, &fe) || !errors.Is(err, shm.ErrFault) || fe.ReadOnly {
		t.Errorf("poll of a truncated region: %v, want a *client.FaultError (not a read-only write)", err)
	} else {
		t.Logf("victim subscriber: %v", err)
	}
	m = metrics(t, e.d)
	if panicked(m) {
		t.Errorf("a rogue client reached the per-connection recover:\n%s", grepLines(m, "dropped"))
	}
	if !strings.Contains(m, "kaelix_region_faults_total 3") {
		t.Errorf("region faults not counted:\n%s", grepLines(m, "kaelix_region_faults"))
	}
	if st := e.d.Status(); st.PID != os.Getpid() {
		t.Errorf("status: %+v", st)
	}
	traffic("everything")
	good.clean(t)
}

// panicked reports whether the metrics text m counts a client dropped by
// the daemon's per-connection recover. The series exists from the start
// (rare-event counters are exported at 0), so only its value tells.
func panicked(m string) bool {
	v := panicDrops.FindStringSubmatch(m)
	return v == nil || v[1] != "0"
}

var panicDrops = regexp.MustCompile(`(?m)^kaelix_clients_dropped_total\{reason="panic"\} (\S+)$`)

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return fmt.Sprint(out)
}

// TestSubscriberCannotWriteData: a subscriber of another user (uid 4242,
// allowed to subscribe to rogue.*) gets the data region through a
// descriptor it can neither write, ftruncate, map writable, mprotect
// writable, nor reopen for writing through /proc/self/fd, even on a topic
// whose mode would let anyone write (0666: data region files drop group
// and other write bits); its consumer region descriptor is writable. Of
// the subscriber slot regions (other consumers' cursors) it is handed only
// its own, writable: it holds no descriptor of any other and cannot open
// one by path.
func TestSubscriberCannotWriteData(t *testing.T) {
	e := newSecEnv(t, nil)
	c := e.client()
	ctx := context.Background()
	info, err := c.CreateTopic(ctx, client.TopicConfig{Name: "rogue.ro", CapacityBytes: 64 << 10, Mode: 0o666})
	if err != nil {
		t.Fatal(err)
	}
	p := info.Partitions[0]
	files := []struct {
		path string
		mode os.FileMode
	}{{p.Path, 0o644}, {p.ConsumerPath, 0o666}}
	for _, sp := range p.SlotPaths(info.Spec.MaxSubscribers) {
		files = append(files, struct {
			path string
			mode os.FileMode
		}{sp, 0o644})
	}
	for _, f := range files {
		st, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != f.mode {
			t.Errorf("%s: mode %v, want %v", f.path, st.Mode().Perm(), f.mode)
		}
	}
	got := e.probe(4242, 4242, "subscriber-write", "rogue.ro")
	t.Logf("subscriber-write: %s", got)
	if !strings.HasPrefix(got, "ok") {
		t.Errorf("subscriber of another user: %s", got)
	}
}

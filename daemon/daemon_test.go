package daemon_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
	"github.com/kaelix-io/kaelix/stat"
	"github.com/kaelix-io/kaelix/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start runs a daemon in-process on unique paths until the test ends.
func start(t *testing.T, mod func(*daemon.Config)) daemon.Config {
	t.Helper()
	return testdaemon.Start(t, testdaemon.WithConfig(mod)).Config
}

// rawConn is a protocol-level client for tests.
type rawConn struct {
	t  *testing.T
	c  *wire.Conn
	id uint32
}

func dial(t *testing.T, cfg daemon.Config, hello bool) *rawConn {
	t.Helper()
	uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: cfg.Daemon.SocketPath, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	r := &rawConn{t: t, c: wire.NewConn(uc)}
	t.Cleanup(func() { r.c.Close() })
	if hello {
		var hr wire.HelloReply
		if err := r.call(wire.TypeHello, wire.Hello{Version: wire.Version, Name: "raw"}, &hr); err != nil {
			t.Fatal(err)
		}
		if hr.PeerPID != os.Getpid() {
			t.Fatalf("SO_PEERCRED pid %d, want %d", hr.PeerPID, os.Getpid())
		}
	}
	return r
}

// call sends a request and decodes the reply; a TypeError reply is
// returned as *wire.Error.
func (r *rawConn) call(typ wire.Type, body, out any) error {
	r.t.Helper()
	r.id++
	f, err := wire.NewFrame(typ, r.id, body)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.c.WriteFrame(f); err != nil {
		return err
	}
	return r.read(out)
}

func (r *rawConn) read(out any) error {
	r.c.UnixConn().SetReadDeadline(time.Now().Add(10 * time.Second))
	f, files, err := r.c.ReadFrame()
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		return err
	}
	if we := wire.ReplyError(f); we != nil {
		return we
	}
	if out != nil {
		return wire.DecodeBody(f, out)
	}
	return nil
}

func code(err error) wire.Code {
	var we *wire.Error
	if errors.As(err, &we) {
		return we.Code
	}
	return ""
}

// healthy checks that a fresh, well-behaved client is served.
func healthy(t *testing.T, cfg daemon.Config, good *rawConn) {
	t.Helper()
	var st wire.Status
	if err := good.call(wire.TypeStatus, nil, &st); err != nil || st.PID != os.Getpid() {
		t.Fatalf("other client disturbed: %v %+v", err, st)
	}
}

func TestBadFrames(t *testing.T) {
	cfg := start(t, nil)
	good := dial(t, cfg, true)
	if err := good.call(wire.TypeCreate, wire.TopicSpec{Name: "bad.frames"}, nil); err != nil {
		t.Fatal(err)
	}
	hdr := func(typ byte, bodyLen uint32) []byte {
		b := make([]byte, wire.HeaderBytes)
		binary.LittleEndian.PutUint16(b, wire.Magic)
		b[2], b[3] = wire.Version, typ
		binary.LittleEndian.PutUint32(b[8:], bodyLen)
		return b
	}
	cases := []struct {
		name string
		send []byte
		want wire.Code // "" : the daemon just closes (no full frame to answer)
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: kaelix\r\n\r\n"), wire.CodeBadFrame},
		{"huge length", hdr(byte(wire.TypeList), 0xffffffff), wire.CodeBadFrame},
		{"just over max", hdr(byte(wire.TypeList), wire.MaxBodyBytes+1), wire.CodeBadFrame},
		{"bad version", func() []byte { b := hdr(1, 0); b[2] = 9; return b }(), wire.CodeVersion},
		{"truncated header", hdr(1, 0)[:7], ""},
		{"truncated body", append(hdr(byte(wire.TypeHello), 100), `{"version":1`...), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: cfg.Daemon.SocketPath, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			defer uc.Close()
			uc.Write(c.send)
			if c.want == "" {
				uc.CloseWrite()
			}
			r := &rawConn{t: t, c: wire.NewConn(uc)}
			err = r.read(nil)
			if c.want != "" && code(err) != c.want {
				t.Fatalf("reply %v, want code %s", err, c.want)
			}
			// The connection is closed afterwards.
			if err := r.read(nil); err == nil {
				t.Fatal("connection still open after a bad frame")
			}
			healthy(t, cfg, good)
		})
	}
}

func TestBadRequests(t *testing.T) {
	cfg := start(t, nil)
	good := dial(t, cfg, true)

	// Requests before hello are refused, the connection stays usable.
	r := dial(t, cfg, false)
	if err := r.call(wire.TypeList, nil, nil); code(err) != wire.CodeBadRequest {
		t.Fatalf("before hello: %v", err)
	}
	if err := r.call(wire.TypeHello, wire.Hello{Version: 99}, nil); code(err) != wire.CodeVersion {
		t.Fatalf("hello version 99: %v", err)
	}
	r = dial(t, cfg, true)
	if err := r.call(wire.Type(42), nil, nil); code(err) != wire.CodeBadRequest {
		t.Fatalf("unknown type: %v", err)
	}
	if err := r.call(wire.TypeCreate, "not an object", nil); code(err) != wire.CodeBadRequest {
		t.Fatalf("bad body: %v", err)
	}
	for _, name := range []string{"", "../x", "a..b", strings.Repeat("a", 250), "a/b", "a\x00b", "caf\u00e9"} {
		err := r.call(wire.TypeCreate, wire.TopicSpec{Name: name}, nil)
		if code(err) != wire.CodeInvalidName {
			t.Errorf("create %q: %v", name, err)
			continue
		}
		want := "Topic name contains invalid characters"
		if name == "" || len(name) > 249 {
			want = "Topic name must be 1 to 249 bytes long"
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("create %q: %q lacks %q", name, err, want)
		}
	}
	if err := r.call(wire.TypeInfo, wire.TopicRef{Name: "no.such"}, nil); code(err) != wire.CodeNotFound {
		t.Fatalf("unknown topic: %v", err)
	}
	if err := r.call(wire.TypeAttach, wire.Attach{Topic: "no.such", Role: wire.RolePublisher}, nil); code(err) != wire.CodeNotFound {
		t.Fatalf("attach unknown topic: %v", err)
	}
	if err := r.call(wire.TypeCreate, wire.TopicSpec{Name: "cap", CapacityBytes: 5000}, nil); code(err) != wire.CodeInvalidSpec {
		t.Fatalf("capacity not a power of two: %v", err)
	}
	if err := r.call(wire.TypeCreate, wire.TopicSpec{Name: "dup", Partitions: 2}, nil); err != nil {
		t.Fatal(err)
	}
	err := r.call(wire.TypeCreate, wire.TopicSpec{Name: "dup", Partitions: 3}, nil)
	if code(err) != wire.CodeConflict || !strings.Contains(err.Error(), "partitions: existing 2, requested 3") {
		t.Fatalf("duplicate create: %v", err)
	}
	if err := r.call(wire.TypeOpenOrCreate, wire.TopicSpec{Name: "dup", Partitions: 2}, nil); err != nil {
		t.Fatalf("open-or-create of an identical topic: %v", err)
	}
	if err := r.call(wire.TypeOpenOrCreate, wire.TopicSpec{Name: "dup", Partitions: 2, Policy: wire.PolicyReject}, nil); code(err) != wire.CodeConflict || !strings.Contains(err.Error(), "policy") {
		t.Fatalf("open-or-create with another policy: %v", err)
	}
	// Delete while attached.
	var ar wire.AttachReply
	if err := r.call(wire.TypeAttach, wire.Attach{Topic: "dup", Role: wire.RoleSubscriber}, &ar); err != nil {
		t.Fatal(err)
	}
	// Its slots are reserved, not joined: it is registered but cannot
	// receive yet, so it is not counted as a subscriber (issue 16.2).
	if ti := ar.Topic; ti.Subscribers != 0 || ti.JoiningSubscribers != 1 || ti.Partitions[0].Counters.Subscribers != 0 || ti.Partitions[1].Counters.Subscribers != 0 {
		t.Fatalf("a subscriber attached but not joined: TopicInfo subscribers %d, joining %d, ring subscribers %d %d; want 0, 1, 0 0",
			ti.Subscribers, ti.JoiningSubscribers, ti.Partitions[0].Counters.Subscribers, ti.Partitions[1].Counters.Subscribers)
	}
	if err := good.call(wire.TypeDelete, wire.Delete{Name: "dup"}, nil); code(err) != wire.CodeInUse {
		t.Fatalf("delete while attached: %v", err)
	}
	if err := r.call(wire.TypeDetach, wire.Detach{AttachmentID: ar.AttachmentID}, nil); err != nil {
		t.Fatal(err)
	}
	if err := good.call(wire.TypeDelete, wire.Delete{Name: "dup"}, nil); err != nil {
		t.Fatalf("delete after detach: %v", err)
	}
	if err := r.call(wire.TypeCreate, wire.TopicSpec{Name: "forced"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.call(wire.TypeAttach, wire.Attach{Topic: "forced", Role: wire.RolePublisher}, &ar); err != nil {
		t.Fatal(err)
	}
	if err := good.call(wire.TypeDelete, wire.Delete{Name: "forced", Force: true}, nil); err != nil {
		t.Fatalf("forced delete: %v", err)
	}
	healthy(t, cfg, good)
}

// TestManyBadClients runs garbage writers alongside a good client.
func TestManyBadClients(t *testing.T) {
	cfg := start(t, nil)
	good := dial(t, cfg, true)
	for i := range 50 {
		uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: cfg.Daemon.SocketPath, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		junk := make([]byte, 64+i*37)
		for j := range junk {
			junk[j] = byte(j*7 + i)
		}
		if i%2 == 0 {
			f, _ := wire.AppendFrame(nil, wire.Frame{Type: wire.TypeHello, Body: []byte(`{"version":1}`)})
			junk = append(f, junk...)
		}
		uc.Write(junk)
		uc.Close()
		healthy(t, cfg, good)
	}
}

func TestAlreadyRunning(t *testing.T) {
	cfg := start(t, nil)
	d, err := daemon.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Run(context.Background())
	var ar *daemon.AlreadyRunningError
	if !errors.As(err, &ar) || ar.PID != os.Getpid() || !strings.Contains(err.Error(), fmt.Sprintf("already running, pid %d", os.Getpid())) {
		t.Fatalf("second daemon: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := daemon.Default()
	cfg.Daemon.SocketPath = ""
	cfg.Daemon.HeartbeatInterval = 0
	cfg.Shm.DirName = "../x"
	err := cfg.Validate()
	for _, key := range []string{"daemon.socket_path", "daemon.heartbeat_interval", "shm.dir_name"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Validate: %v lacks %s", err, key)
		}
	}
	if err := daemon.Default().Validate(); err != nil {
		t.Errorf("Default invalid: %v", err)
	}
}

func TestRestartReadopts(t *testing.T) {
	dirs := testdaemon.NewDirs(t)
	dir, shmDir := dirs.StateDir, dirs.ShmDirName
	run := func(remove bool, f func(cfg daemon.Config)) {
		t.Helper()
		d := testdaemon.Start(t, testdaemon.WithDirs(dirs), testdaemon.WithConfig(func(c *daemon.Config) {
			c.RemoveOnExit = remove
		}))
		f(d.Config)
		if err := d.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	run(false, func(cfg daemon.Config) {
		r := dial(t, cfg, true)
		if err := r.call(wire.TypeCreate, wire.TopicSpec{Name: "keep.me", Partitions: 3, Kind: wire.KindSPSC}, nil); err != nil {
			t.Fatal(err)
		}
	})
	run(true, func(cfg daemon.Config) {
		r := dial(t, cfg, true)
		var ti wire.TopicInfo
		if err := r.call(wire.TypeInfo, wire.TopicRef{Name: "keep.me"}, &ti); err != nil {
			t.Fatalf("not re-adopted: %v", err)
		}
		if ti.Spec.Partitions != 3 || ti.Spec.Kind != wire.KindSPSC {
			t.Fatalf("re-adopted spec %+v", ti.Spec)
		}
		hb, err := stat.ReadHeartbeat(dir)
		if err != nil || hb.PID != os.Getpid() {
			t.Errorf("heartbeat %+v %v", hb, err)
		}
	})
	// Nothing left at all: no region, and no base directory on tmpfs or on
	// any hugetlbfs mount (regions land there when hugepages are free).
	for _, root := range append([]string{"/dev/shm"}, hugetlbfsMounts(t)...) {
		if _, err := os.Stat(filepath.Join(root, shmDir)); !os.IsNotExist(err) {
			ents, _ := os.ReadDir(filepath.Join(root, shmDir))
			t.Errorf("RemoveOnExit left %s (entries %v)", filepath.Join(root, shmDir), ents)
		}
	}
}

// hugetlbfsMounts lists this host's hugetlbfs mount points.
func hugetlbfsMounts(t *testing.T) []string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "hugetlbfs" {
			dirs = append(dirs, f[1])
		}
	}
	return dirs
}

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/internal/testdaemon"
	"github.com/kaelix-io/kaelix/wire"
)

// These tests run the real kaelixd binary (built once, by go build) in
// each way its start can fail, and check the exit code, the one error
// line, how long it took, and that the file system is as it was before:
// no socket, lock file, registry, region or directory left behind.

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// kaelixdBin builds cmd/kaelixd into a directory every user may read
// (the uid-dropping cases run it as nobody) and returns its path.
func kaelixdBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "kaelixd-startup-bin-"); binErr != nil {
			return
		}
		os.Chmod(binDir, 0o755)
		binPath = filepath.Join(binDir, "kaelixd")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/kaelix-io/kaelix/cmd/kaelixd").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// nobody is the uid the permission cases drop to when the tests run as
// root (root may write anywhere).
const nobody = 65534

// startEnv is one case's private paths. dir is world-traversable so that
// a child running as nobody reaches them.
type startEnv struct {
	dir     string // everything of the case, except the region directory
	socket  string
	state   string
	shmName string // region directory name under /dev/shm
	watch   []string
	pid     int    // a pid the case's error names ({pid}), set by its setup
	stderr  string // the child's, for tc.after
}

var startSeq int

func newStartEnv(t *testing.T) *startEnv {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755) // testing's per-test parent is 0700
	startSeq++
	e := &startEnv{dir: dir, socket: filepath.Join(dir, "run", "kaelixd.sock"), state: filepath.Join(dir, "state"),
		shmName: fmt.Sprintf("kaelix-starttest-%d-%d", os.Getpid(), startSeq)}
	e.watch = []string{dir, filepath.Join("/dev/shm", e.shmName)}
	own := filepath.Join("/dev/shm", e.shmName)
	t.Cleanup(func() { os.RemoveAll(own) })
	return e
}

// snapshot lists every path under roots with its file type: what a run
// must leave as it found it.
func snapshot(roots ...string) []string {
	var out []string
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					out = append(out, p+" (unreadable: "+err.Error()+")")
				}
				return nil
			}
			out = append(out, p+" "+de.Type().String())
			return nil
		})
	}
	slices.Sort(out)
	return out
}

// daemonProc is a running kaelixd child.
type daemonProc = testdaemon.Proc

// startKaelixd starts the built kaelixd with args, as uid unless 0, with
// the yield wait strategy; it is killed at cleanup if still running.
func startKaelixd(t *testing.T, uid uint32, args ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command(kaelixdBin(t), args...)
	cmd.Env = append(os.Environ(), "KAELIX_RUNTIME_WAIT_STRATEGY=yield")
	if uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
	}
	return testdaemon.StartProc(t, cmd)
}

// waitListening waits until the daemon answers on sock.
func waitListening(t *testing.T, p *daemonProc, sock string) {
	t.Helper()
	p.WaitReady(t, 20*time.Second, func() bool {
		_, err := configShow(t, sock)
		return err == nil
	})
}

// errorLines are stderr's lines that are not log records: the error
// main prints.
func errorLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if l != "" && !strings.HasPrefix(l, "time=") {
			out = append(out, l)
		}
	}
	return out
}

// unwritableDir makes dir, which the child cannot write in: a root-owned
// 0755 directory and the child runs as nobody (tests as root), or mode
// 0555 (tests as another user). It returns the uid to run the child as.
func unwritableDir(t *testing.T, dir string) uint32 {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		return nobody
	}
	os.Chmod(dir, 0o555)
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	return 0
}

// worldWritable lets nobody make the case's state and socket directories.
func (e *startEnv) worldWritable(t *testing.T) {
	t.Helper()
	for _, d := range []string{filepath.Dir(e.socket), e.state} {
		os.MkdirAll(d, 0o777)
		os.Chmod(d, 0o777)
	}
}

func TestStartupFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs kaelixd")
	}
	// Another daemon, for the two lock cases: it must be unharmed after.
	other := newStartEnv(t)
	op := startKaelixd(t, 0, "--socket", other.socket, "--state-dir", other.state, "--shm-dir", other.shmName, "--http-port", "0", "--ephemeral", "--no-watch")
	waitListening(t, op, other.socket)
	otherBefore := snapshot(other.watch...)

	type tc struct {
		name string
		// setup prepares the fixture and returns extra flags (replacing
		// the defaults of the same name) and the uid to run as (0: ours).
		setup func(t *testing.T, e *startEnv) ([]string, uint32)
		code  int
		msg   []string                        // substrings of the error line; "%s" is replaced by the env's path named after it
		after func(t *testing.T, e *startEnv) // optional: more checks once the refused daemon exited
	}
	cases := []tc{
		{"http port busy", func(t *testing.T, e *startEnv) ([]string, uint32) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			_, port, _ := net.SplitHostPort(ln.Addr().String())
			return []string{"--http-port", port}, 0
		}, 1, []string{"listen for HTTP (network.host:network.port) 127.0.0.1:", "address already in use", "--http-port", "network.enabled=false"}, nil},
		{"socket path is a directory", func(t *testing.T, e *startEnv) ([]string, uint32) {
			os.MkdirAll(filepath.Join(e.socket, "sub"), 0o755)
			return nil, 0
		}, 1, []string{"control socket (daemon.socket_path) {socket}", "is a directory, not a socket"}, nil},
		{"socket path is an empty directory (not removed)", func(t *testing.T, e *startEnv) ([]string, uint32) {
			os.MkdirAll(e.socket, 0o755)
			return nil, 0
		}, 1, []string{"control socket (daemon.socket_path) {socket}", "is a directory, not a socket"}, nil},
		{"socket directory under a regular file", func(t *testing.T, e *startEnv) ([]string, uint32) {
			f := filepath.Join(e.dir, "file")
			os.WriteFile(f, nil, 0o644)
			e.socket = filepath.Join(f, "kaelixd.sock")
			return nil, 0
		}, 2, []string{"daemon.socket_path: directory {dir}/file cannot be made: {dir}/file is a regular file, not a directory"}, nil},
		{"socket directory unwritable", func(t *testing.T, e *startEnv) ([]string, uint32) {
			e.worldWritable(t)
			ro := filepath.Join(e.dir, "ro")
			uid := unwritableDir(t, ro)
			e.socket = filepath.Join(ro, "kaelixd.sock")
			return nil, uid
		}, 2, []string{"daemon.socket_path: directory {dir}/ro is not writable: permission denied"}, nil},
		{"state directory under a regular file", func(t *testing.T, e *startEnv) ([]string, uint32) {
			f := filepath.Join(e.dir, "file")
			os.WriteFile(f, nil, 0o644)
			e.state = filepath.Join(f, "state")
			return nil, 0
		}, 2, []string{"daemon.state_dir: directory {dir}/file/state cannot be made: {dir}/file is a regular file, not a directory"}, nil},
		{"region directory is a regular file", func(t *testing.T, e *startEnv) ([]string, uint32) {
			os.WriteFile(filepath.Join("/dev/shm", e.shmName), nil, 0o644)
			return nil, 0
		}, 2, []string{"shm.dir_name: directory /dev/shm/{shm} cannot be made: /dev/shm/{shm} is a regular file, not a directory"}, nil},
		{"region directory unwritable", func(t *testing.T, e *startEnv) ([]string, uint32) {
			e.worldWritable(t)
			return nil, unwritableDir(t, filepath.Join("/dev/shm", e.shmName))
		}, 2, []string{"shm.dir_name: directory /dev/shm/{shm} is not writable: permission denied"}, nil},
		{"state directory locked by another daemon", func(t *testing.T, e *startEnv) ([]string, uint32) {
			e.state = other.state
			e.watch = append(e.watch, other.watch...)
			return nil, 0
		}, 3, []string{"kaelixd already running, pid " + strconv.Itoa(op.Cmd.Process.Pid), "state directory " + other.state + " is locked"}, nil},
		{"state directory of a live daemon whose lock file was deleted", func(t *testing.T, e *startEnv) ([]string, uint32) {
			// Its own daemon: the lock file is gone for good. Nothing but
			// the abstract state-directory lock stops the second one.
			x := newStartEnv(t)
			xp := startKaelixd(t, 0, "--socket", x.socket, "--state-dir", x.state, "--shm-dir", x.shmName, "--http-port", "0", "--ephemeral", "--no-watch")
			waitListening(t, xp, x.socket)
			if err := os.Remove(filepath.Join(x.state, "kaelixd.lock")); err != nil {
				t.Fatal(err)
			}
			e.state, e.pid = x.state, xp.Cmd.Process.Pid
			e.watch = append(e.watch, x.watch...)
			t.Cleanup(func() {
				if _, err := configShow(t, x.socket); err != nil {
					t.Errorf("the first daemon no longer answers: %v", err)
				}
			})
			return nil, 0
		}, 3, []string{"kaelixd already running, pid {pid}", "state directory {state} is locked"}, nil},
		{"control socket of a live daemon with another state dir", func(t *testing.T, e *startEnv) ([]string, uint32) {
			e.socket = other.socket
			e.watch = append(e.watch, other.watch...)
			return nil, 0
		}, 3, []string{"another kaelixd (pid " + strconv.Itoa(op.Cmd.Process.Pid) + ") serves the control socket " + other.socket, "--socket"}, nil},
		{"control socket answered by a process that holds no lock", func(t *testing.T, e *startEnv) ([]string, uint32) {
			// A daemon of an earlier version (no socket lock): only
			// dialling the socket shows that it is alive.
			os.MkdirAll(filepath.Dir(e.socket), 0o755)
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: e.socket, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			e.pid = os.Getpid()
			return nil, 0
		}, 3, []string{"another kaelixd (pid {pid}) serves the control socket {socket}"}, func(t *testing.T, e *startEnv) {
			if c, err := net.Dial("unix", e.socket); err != nil {
				t.Errorf("the live socket was taken: %v", err)
			} else {
				c.Close()
			}
		}},
		{"region directory locked by another daemon", func(t *testing.T, e *startEnv) ([]string, uint32) {
			e.shmName = other.shmName
			e.watch = append(e.watch, other.watch...)
			return nil, 0
		}, 3, []string{"another kaelixd uses the region directory /dev/shm/" + other.shmName, "--shm-dir"}, nil},
		{"bad config", func(t *testing.T, e *startEnv) ([]string, uint32) {
			f := filepath.Join(e.dir, "bad.toml")
			os.WriteFile(f, []byte("[network]\nport = \"not-a-number\"\n[bogus]\n"), 0o644)
			return []string{"--config", f}, 0
		}, 2, []string{"{dir}/bad.toml:2: network.port", "{dir}/bad.toml:3: bogus: unknown table"}, nil},
		{"http host that is no address of this host", func(t *testing.T, e *startEnv) ([]string, uint32) {
			return []string{"--http-host", "192.0.2.1"}, 0 // TEST-NET-1: assigned to no host
		}, 1, []string{"listen for HTTP (network.host:network.port) 192.0.2.1:0", "check the host (--http-host", "network.enabled=false"}, func(t *testing.T, e *startEnv) {
			if line := strings.Join(errorLines(e.stderr), " "); strings.Contains(line, "another port") || strings.Contains(line, "--http-port") {
				t.Errorf("advice about ports for a bad host:\n%s", e.stderr)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newStartEnv(t)
			extra, uid := c.setup(t, e)
			args := []string{"--socket", e.socket, "--state-dir", e.state, "--shm-dir", e.shmName, "--ephemeral", "--no-watch", "--http-port", "0"}
			for i := 0; i+1 < len(extra); i += 2 {
				if j := slices.Index(args, extra[i]); j >= 0 {
					args[j+1] = extra[i+1]
				} else {
					args = append(args, extra[i], extra[i+1])
				}
			}
			before := snapshot(e.watch...)
			p := startKaelixd(t, uid, args...)
			code, took := p.Wait(15 * time.Second)
			stderr := p.Stderr.String()
			if code == -1 {
				t.Fatalf("kaelixd still running after %v (hung):\n%s", took, stderr)
			}
			t.Logf("exit %d after %v: %s", code, took.Round(time.Millisecond), strings.Join(errorLines(stderr), " | "))
			if code != c.code {
				t.Errorf("exit code %d, want %d\n%s", code, c.code, stderr)
			}
			lines := errorLines(stderr)
			if c.code != 2 && len(lines) != 1 {
				t.Errorf("want exactly one error line, got %d:\n%s", len(lines), stderr)
			}
			for _, m := range c.msg {
				m = strings.NewReplacer("{socket}", e.socket, "{dir}", e.dir, "{shm}", e.shmName, "{state}", e.state, "{pid}", strconv.Itoa(e.pid)).Replace(m)
				if !strings.Contains(strings.Join(lines, "\n"), m) {
					t.Errorf("error lacks %q:\n%s", m, stderr)
				}
			}
			if after := snapshot(e.watch...); !slices.Equal(before, after) {
				t.Errorf("left the file system changed:\nbefore %q\nafter  %q", before, after)
			}
			if c.after != nil {
				e.stderr = stderr
				c.after(t, e)
			}
		})
	}
	// The other daemon still serves, its files untouched.
	if _, err := configShow(t, other.socket); err != nil {
		t.Errorf("the other daemon no longer answers: %v", err)
	}
	if after := snapshot(other.watch...); !slices.Equal(otherBefore, after) {
		t.Errorf("the other daemon's files changed:\nbefore %q\nafter  %q", otherBefore, after)
	}
	if err := op.Stop(15 * time.Second); err != nil {
		t.Errorf("other daemon: stop: %v\n%s", err, op.Stderr)
	}
}

// TestStartupSIGTERM stops kaelixd while it creates its declared topics:
// it stops at once (between two partitions), exits 0, and with
// --ephemeral leaves nothing: the topics it had made are removed.
func TestStartupSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs kaelixd")
	}
	e := newStartEnv(t)
	conf := filepath.Join(e.dir, "many.toml")
	var b strings.Builder
	const topics = 800 // about 40 region files each: seconds of work even on a fast host
	for i := range topics {
		fmt.Fprintf(&b, "[[topics]]\nname = \"declared.%d\"\npartitions = 2\ncapacity = \"64KiB\"\n", i)
	}
	os.WriteFile(conf, []byte(b.String()), 0o644)
	before := snapshot(e.watch...)
	p := startKaelixd(t, 0, "--config", conf, "--no-watch", "--socket", e.socket, "--state-dir", e.state, "--shm-dir", e.shmName, "--http-port", "0", "--ephemeral")
	regionDir := filepath.Join("/dev/shm", e.shmName)
	var made int
	for deadline := time.Now().Add(20 * time.Second); made < 100; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no regions appeared: %s", p.Stderr)
		}
		ents, _ := os.ReadDir(regionDir)
		made = len(ents)
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	sent := time.Now()
	code, _ := p.Wait(20 * time.Second)
	stderr := p.Stderr.String()
	if code == -1 {
		t.Fatalf("kaelixd did not stop within 20s of SIGTERM during start-up:\n%s", stderr)
	}
	t.Logf("SIGTERM after %d region files; exit %d %v later", made, code, time.Since(sent).Round(time.Millisecond))
	if code != 0 {
		t.Errorf("exit %d, want 0 (a requested stop)\n%s", code, stderr)
	}
	if strings.Contains(stderr, "kaelixd listening") {
		t.Fatalf("start-up finished before the signal (make more topics):\n%s", stderr)
	}
	if !strings.Contains(stderr, "stopped before it was ready") {
		t.Errorf("no 'stopped before it was ready' log:\n%s", stderr)
	}
	if after := snapshot(e.watch...); !slices.Equal(before, after) {
		t.Errorf("left the file system changed:\nbefore %q\nafter  %d entries, e.g. %q", before, len(after), after[:min(len(after), 10)])
	}
}

// TestStartupSIGTERMDuringPrefault: a SIGTERM while kaelixd reserves and
// prefaults a big declared topic's first region (1 GiB: about half a
// second of work, more on a loaded host) stops it between two chunks of
// that region (shm.StopChunkBytes), not after the region (nor the topic)
// is done: the log says how far the region had got, the second partition
// is never begun, and nothing is left behind.
func TestStartupSIGTERMDuringPrefault(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs kaelixd")
	}
	e := newStartEnv(t)
	conf := filepath.Join(e.dir, "big.toml")
	os.WriteFile(conf, []byte("[shm]\nprefault = true\nhugepages = \"off\"\n\n[[topics]]\nname = \"big\"\npartitions = 2\ncapacity = \"1GiB\"\n"), 0o644)
	before := snapshot(e.watch...)
	p := startKaelixd(t, 0, "--config", conf, "--no-watch", "--socket", e.socket, "--state-dir", e.state, "--shm-dir", e.shmName, "--http-port", "0", "--ephemeral")
	creating := filepath.Join("/dev/shm", e.shmName, ".big.p0.creating") // shm.Create's temporary name
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(creating); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared:\n%s", creating, p.Stderr)
		}
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	sent := time.Now()
	code, _ := p.Wait(20 * time.Second)
	took := time.Since(sent)
	stderr := p.Stderr.String()
	if code != 0 {
		t.Fatalf("exit %d, want 0 (a requested stop)\n%s", code, stderr)
	}
	m := regexp.MustCompile(`create (\S+) stopped after (\d+) of (\d+) bytes`).FindStringSubmatch(stderr)
	if m == nil || !strings.HasSuffix(m[1], "/big.p0") {
		t.Fatalf("no log of the first region's create stopped part-way:\n%s", stderr)
	}
	done, _ := strconv.ParseUint(m[2], 10, 64)
	total, _ := strconv.ParseUint(m[3], 10, 64)
	if done >= total || total < 1<<30 {
		t.Fatalf("stopped after %d of %d bytes: want part of a region of at least 1 GiB", done, total)
	}
	if strings.Contains(stderr, "big.p1") || strings.Contains(stderr, "kaelixd listening") || !strings.Contains(stderr, "stopped before it was ready") {
		t.Errorf("want a stop before the second partition and before serving, logged as such:\n%s", stderr)
	}
	if after := snapshot(e.watch...); !slices.Equal(before, after) {
		t.Errorf("left the file system changed:\nbefore %q\nafter  %q", before, after)
	}
	t.Logf("SIGTERM %d MiB into a %d MiB region: exit %v later", done>>20, total>>20, took.Round(time.Millisecond))
}

// TestStartupSIGHUP: a SIGHUP while kaelixd creates its declared topics is
// refused (logged: it is starting), never applied half-way; a change of
// the file made meanwhile is applied once it serves (the watcher's first
// look), so the topic added to the file exists afterwards.
func TestStartupSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs kaelixd")
	}
	e := newStartEnv(t)
	conf := filepath.Join(e.dir, "many.toml")
	var b strings.Builder
	// kaelixd keeps a descriptor per region (42 per partition with the
	// default slots): 300 partitions stay well inside RLIMIT_NOFILE.
	const topics = 150
	for i := range topics {
		fmt.Fprintf(&b, "[[topics]]\nname = \"declared.%d\"\npartitions = 2\ncapacity = \"64KiB\"\n", i)
	}
	os.WriteFile(conf, []byte(b.String()), 0o644)
	before := snapshot(e.watch...)
	p := startKaelixd(t, 0, "--config", conf, "--socket", e.socket, "--state-dir", e.state, "--shm-dir", e.shmName, "--http-port", "0", "--ephemeral")
	regionDir := filepath.Join("/dev/shm", e.shmName)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if ents, _ := os.ReadDir(regionDir); len(ents) >= 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no regions appeared: %s", p.Stderr)
		}
	}
	fmt.Fprintf(&b, "[[topics]]\nname = \"added.later\"\n")
	os.WriteFile(conf, []byte(b.String()), 0o644)
	p.Cmd.Process.Signal(syscall.SIGHUP)
	waitListening(t, p, e.socket)
	var names []string
	for deadline := time.Now().Add(20 * time.Second); !slices.Contains(names, "added.later"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("added.later never created (%d topics)\n%s", len(names), p.Stderr)
		}
		names = topicNames(t, e.socket)
	}
	stderr := p.Stderr.String()
	if !strings.Contains(stderr, "kaelixd is starting or stopping; reload once it serves") {
		t.Errorf("no refused reload logged:\n%s", stderr)
	}
	if strings.Index(stderr, "reload once it serves") > strings.Index(stderr, "kaelixd listening") {
		t.Errorf("the SIGHUP was handled after start-up, not during it:\n%s", stderr)
	}
	if len(names) != topics+1 {
		t.Errorf("%d topics, want %d", len(names), topics+1)
	}
	if err := p.Stop(30 * time.Second); err != nil {
		t.Errorf("stop: %v\n%s", err, p.Stderr)
	}
	// --ephemeral: a clean stop leaves nothing either (regions, registry,
	// lock files, the directories it made).
	if after := snapshot(e.watch...); !slices.Equal(before, after) {
		t.Errorf("left the file system changed:\nbefore %q\nafter  %q", before, after[:min(len(after), 10)])
	}
}

// topicNames lists a running kaelixd's topics.
func topicNames(t *testing.T, sock string) []string {
	uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return nil
	}
	c := wire.NewConn(uc)
	defer c.Close()
	var l wire.TopicList
	for i, req := range []struct {
		typ  wire.Type
		body any
		out  any
	}{{wire.TypeHello, wire.Hello{Version: wire.Version, Name: "test"}, nil}, {wire.TypeList, nil, &l}} {
		f, _ := wire.NewFrame(req.typ, uint32(i+1), req.body)
		if c.WriteFrame(f) != nil {
			return nil
		}
		uc.SetReadDeadline(time.Now().Add(10 * time.Second))
		rf, _, err := c.ReadFrame()
		if err != nil || wire.ReplyError(rf) != nil {
			return nil
		}
		if req.out != nil && wire.DecodeBody(rf, req.out) != nil {
			return nil
		}
	}
	var names []string
	for _, ti := range l.Topics {
		names = append(names, ti.Spec.Name)
	}
	return names
}

// TestSIGUSR1DumpsStacks: SIGUSR1 writes every goroutine's stack to
// stderr between two log lines, and kaelixd keeps serving.
func TestSIGUSR1DumpsStacks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs kaelixd")
	}
	e := newStartEnv(t)
	p := startKaelixd(t, 0, "--socket", e.socket, "--state-dir", e.state, "--shm-dir", e.shmName, "--http-port", "0", "--ephemeral")
	waitListening(t, p, e.socket)
	p.Cmd.Process.Signal(syscall.SIGUSR1)
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(p.Stderr.String(), "goroutine dump ends"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine dump within 20s:\n%s", p.Stderr)
		}
	}
	out := p.Stderr.String()
	dump := out[strings.Index(out, "goroutine dump begins"):strings.Index(out, "goroutine dump ends")]
	for _, want := range []string{"goroutine 1 [", "main.main()", "daemon.(*Daemon).Run"} {
		if !strings.Contains(dump, want) {
			t.Errorf("the dump has no %q:\n%s", want, dump)
		}
	}
	waitListening(t, p, e.socket) // still serving
	if err := p.Stop(30 * time.Second); err != nil {
		t.Errorf("stop: %v after the dump\n%s", err, p.Stderr)
	}
}

package supervise_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/internal/supervise"
	"go.uber.org/goleak"
)

const roleEnv = "KAELIX_SUPERVISE_TEST_ROLE"

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(child(role))
	}
	if role := os.Getenv(setRoleEnv); role != "" {
		setChild(role)
	}
	goleak.VerifyTestMain(m)
}

// child is a supervised helper process.
func child(role string) int {
	if err := supervise.WaitGate(); err != nil {
		fmt.Println("gate:", err)
		return 1
	}
	switch role {
	case "sleep":
		fmt.Println("ready", os.Getpid())
		select {}
	case "crash":
		fmt.Fprintln(os.Stderr, "crashing on purpose")
		return 3
	case "fds":
		var files []*os.File
		for {
			f, err := os.Open(os.DevNull)
			if err != nil {
				fmt.Println("opened", len(files), "then", errors.Is(err, syscall.EMFILE), err)
				return 0
			}
			files = append(files, f)
			if len(files) > 100000 {
				fmt.Println("opened", len(files), "no limit")
				return 0
			}
		}
	case "net":
		c, err := net.DialTimeout("tcp", os.Getenv("KAELIX_SUPERVISE_TEST_ADDR"), 2*time.Second)
		if err != nil {
			fmt.Println("connect failed:", err)
			return 0
		}
		c.Close()
		fmt.Println("connect ok")
		return 0
	}
	return 2
}

// lines collects a child's stdout lines.
type lines struct{ ch chan string }

func newLines(t *testing.T) (*lines, io.Writer) {
	r, w := io.Pipe()
	t.Cleanup(func() { w.Close() })
	l := &lines{ch: make(chan string, 1000)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			l.ch <- sc.Text()
		}
	}()
	return l, w
}

func (l *lines) next(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case s := <-l.ch:
			if strings.HasPrefix(s, prefix) {
				return s
			}
		case <-deadline:
			t.Fatalf("no line starting %q", prefix)
		}
	}
}

func spec(role string, out io.Writer) supervise.Spec {
	return supervise.Spec{
		Name: role, Path: os.Args[0], Args: []string{"-test.run=^$"},
		Env: append(os.Environ(), roleEnv+"="+role), Stdout: out, StartGate: true,
		Network: true,
		Policy:  supervise.Policy{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Grace: 2 * time.Second},
	}
}

func stop(t *testing.T, s *supervise.Supervisor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if st := s.Status(); st.State != supervise.Stopped || st.PID != 0 {
		t.Errorf("after Stop: %+v", st)
	}
}

func waitState(t *testing.T, s *supervise.Supervisor, ok func(supervise.Status) bool) supervise.Status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := s.Status()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("state never reached: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRestartAfterSIGKILL: a child killed with SIGKILL is started again.
func TestRestartAfterSIGKILL(t *testing.T) {
	l, w := newLines(t)
	s, err := supervise.Start(spec("sleep", w))
	if err != nil {
		t.Fatal(err)
	}
	defer stop(t, s)
	first, _ := strconv.Atoi(strings.Fields(l.next(t, "ready"))[1])
	if st := s.Status(); st.PID != first || st.State != supervise.Running {
		t.Fatalf("status %+v, child says pid %d", st, first)
	}
	syscall.Kill(first, syscall.SIGKILL)
	second, _ := strconv.Atoi(strings.Fields(l.next(t, "ready"))[1])
	if second == first {
		t.Fatal("same pid")
	}
	st := waitState(t, s, func(st supervise.Status) bool { return st.PID == second })
	if st.Restarts != 1 || st.LastExit != "killed by signal 9 (killed)" {
		t.Fatalf("status %+v", st)
	}
	s.Restart() // operator restart: not counted as a crash
	third, _ := strconv.Atoi(strings.Fields(l.next(t, "ready"))[1])
	st = waitState(t, s, func(st supervise.Status) bool { return st.PID == third })
	if st.Restarts != 2 || st.Crashes != 1 {
		t.Fatalf("after Restart: %+v", st)
	}
}

// TestGiveUpAfterCrashes: a child that keeps exiting is restarted with
// backoff, then given up on, with the reason; Restart revives it.
func TestGiveUpAfterCrashes(t *testing.T) {
	sp := spec("crash", nil)
	sp.Policy.MaxCrashes = 3
	s, err := supervise.Start(sp)
	if err != nil {
		t.Fatal(err)
	}
	defer stop(t, s)
	st := waitState(t, s, func(st supervise.Status) bool { return st.State == supervise.Failed })
	if st.Starts != 3 || !strings.Contains(st.Reason, "gave up after 3 exits") || !strings.Contains(st.Reason, "exit status 3") ||
		!strings.Contains(st.StderrHead, "crashing on purpose") {
		t.Fatalf("status %+v", st)
	}
	time.Sleep(100 * time.Millisecond)
	if s.Status().Starts != 3 {
		t.Fatal("restarted after giving up")
	}
	s.Restart()
	waitState(t, s, func(st supervise.Status) bool { return st.Starts == 6 && st.State == supervise.Failed })
}

// TestMemoryLimit: a child that allocates past max_memory_mb is stopped
// by the limit, and the hit is reported.
func TestMemoryLimit(t *testing.T) {
	// The child is built without -race: the race detector's shadow memory
	// would count against the limit.
	bin := t.TempDir() + "/alloc"
	build := exec.Command("go", "build", "-o", bin, "./testdata/alloc")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	l, w := newLines(t)
	sp := spec("alloc", w)
	sp.Path, sp.Args = bin, nil
	sp.Limits.MaxMemoryMB = 200
	sp.Policy.MaxCrashes = 1
	s, err := supervise.Start(sp)
	if err != nil {
		t.Fatal(err)
	}
	defer stop(t, s)
	l.next(t, "ready")
	st := waitState(t, s, func(st supervise.Status) bool { return st.State == supervise.Failed })
	if st.LimitHits["memory"] != 1 || !strings.Contains(st.Reason, "memory limit") || !strings.Contains(st.Limits.Memory, "RLIMIT_DATA 200 MiB") {
		t.Fatalf("status %+v", st)
	}
	max := 0
	for quiet := time.After(time.Second); ; {
		select {
		case s := <-l.ch:
			if f := strings.Fields(s); len(f) == 3 && f[0] == "allocated" {
				max, _ = strconv.Atoi(f[2])
			}
			continue
		case <-quiet:
		}
		break
	}
	if max < 64 || max > 200 {
		t.Fatalf("child allocated %d MiB before the 200 MiB limit stopped it (want 64 to 200)", max)
	}
	t.Logf("stopped after %d MiB; %s", max, strings.SplitN(st.StderrHead, "\n", 2)[0])
}

// TestFileLimit: past max_file_descriptors, open fails with EMFILE.
func TestFileLimit(t *testing.T) {
	l, w := newLines(t)
	sp := spec("fds", w)
	sp.Limits.MaxFileDescriptors = 32
	s, err := supervise.Start(sp)
	if err != nil {
		t.Fatal(err)
	}
	defer stop(t, s)
	f := strings.Fields(l.next(t, "opened"))
	n, _ := strconv.Atoi(f[1])
	if f[3] != "true" || n >= 32 || n == 0 {
		t.Fatalf("child: %v (want EMFILE after fewer than 32)", f)
	}
	if st := s.Status(); st.Limits.Files != "RLIMIT_NOFILE 32" {
		t.Fatalf("limits %+v", st.Limits)
	}
}

// TestNoNetwork: without can_access_network the child cannot connect to
// a listener on 127.0.0.1; with it, it can.
func TestNoNetwork(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for _, network := range []bool{false, true} {
		l, w := newLines(t)
		sp := spec("net", w)
		sp.Env = append(sp.Env, "KAELIX_SUPERVISE_TEST_ADDR="+ln.Addr().String())
		sp.Network = network
		s, err := supervise.Start(sp)
		if errors.Is(err, supervise.ErrNetworkIsolation) {
			t.Skipf("host forbids network namespaces: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		got := l.next(t, "connect")
		if network != (got == "connect ok") {
			t.Fatalf("network=%v: child says %q", network, got)
		}
		if st := s.Status(); network == strings.HasPrefix(st.Limits.Network, "isolated") {
			t.Fatalf("network=%v: limits say %q", network, st.Limits.Network)
		}
		stop(t, s)
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := supervise.Start(supervise.Spec{Name: "x", Path: "/nonexistent/binary", Network: true}); err == nil || !strings.Contains(err.Error(), "x") {
		t.Fatalf("missing binary: %v", err)
	}
	sp := spec("sleep", nil)
	sp.Limits.MaxCPUPercent = 50
	s, err := supervise.Start(sp)
	if err != nil {
		t.Fatal(err)
	}
	defer stop(t, s)
	// Enforced through cgroup v2 cpu.max where it can be, else said plainly.
	st := s.Status()
	if !strings.HasPrefix(st.Limits.CPU, "cpu limit not enforced: ") && !strings.HasPrefix(st.Limits.CPU, "cgroup v2 cpu.max 50%") {
		t.Fatalf("cpu limit status %q", st.Limits.CPU)
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil && st.Limits.Enforced() {
		t.Fatalf("cgroup v1 host, yet cpu limit status %q", st.Limits.CPU)
	}
}

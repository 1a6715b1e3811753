package supervise_test

import (
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/internal/supervise"
)

// Set tests' child roles: the test binary re-executes itself with
// setRoleEnv set (TestMain calls setChild).
const (
	setRoleEnv = "KAELIX_SUPERVISOR_TEST_ROLE"
	readyEnv   = "KAELIX_SUPERVISOR_TEST_READY"
)

func setChild(role string) {
	switch role {
	case "crash": // exit 3 after a moment
		time.Sleep(20 * time.Millisecond)
		os.Exit(3)
	case "serve": // run until SIGTERM
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		<-c
		os.Exit(0)
	case "stubborn": // ignore SIGTERM, then say so by creating the ready file
		signal.Ignore(syscall.SIGTERM)
		os.WriteFile(os.Getenv(readyEnv), nil, 0o600)
		time.Sleep(time.Hour)
		os.Exit(0)
	}
	os.Exit(2)
}

func setSpec(name, role string, args ...string) supervise.Spec {
	return supervise.Spec{Name: name, Path: os.Args[0], Args: append([]string{"-test.run=^$"}, args...), Env: append(os.Environ(), setRoleEnv+"="+role), Network: true}
}

func setStatus(s *supervise.Set, name string) supervise.Status {
	for _, st := range s.Status() {
		if st.Name == name {
			return st
		}
	}
	return supervise.Status{}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

// TestRestartBackoff: a crashing process is restarted with a doubling,
// bounded wait; the status says how it exited.
func TestRestartBackoff(t *testing.T) {
	s := supervise.NewSet(supervise.SetOptions{MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	defer s.Close()
	start := time.Now()
	if started, _, _, err := s.Apply([]supervise.Spec{setSpec("c", "crash")}); err != nil || len(started) != 1 {
		t.Fatalf("Apply: %v %v", started, err)
	}
	waitFor(t, "6 starts", func() bool { return setStatus(s, "c").Starts >= 6 })
	elapsed := time.Since(start)
	st := setStatus(s, "c")
	if st.LastExit != "exit status 3" {
		t.Errorf("last exit %q, want exit status 3", st.LastExit)
	}
	// Waits 50, 100, 200, 200, 200 ms between the 6 starts: at least 750ms.
	if elapsed < 750*time.Millisecond {
		t.Errorf("6 starts in %v: backoff not applied (want >= 750ms)", elapsed)
	}
}

// TestApplyHotReload: Apply adds, removes and restarts by declaration,
// leaving unchanged processes alone; Close stops everything, escalating
// to SIGKILL for a process that ignores SIGTERM.
func TestApplyHotReload(t *testing.T) {
	s := supervise.NewSet(supervise.SetOptions{StopTimeout: 300 * time.Millisecond})
	defer s.Close()
	if _, _, _, err := s.Apply([]supervise.Spec{setSpec("a", "serve"), setSpec("b", "serve")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a and b running", func() bool {
		return setStatus(s, "a").State == supervise.Running && setStatus(s, "b").State == supervise.Running
	})
	pidA, pidB := setStatus(s, "a").PID, setStatus(s, "b").PID
	ready := filepath.Join(t.TempDir(), "ready")
	stubborn := setSpec("c", "stubborn")
	stubborn.Env = append(stubborn.Env, readyEnv+"="+ready)
	started, stopped, restarted, err := s.Apply([]supervise.Spec{setSpec("a", "serve"), setSpec("b", "serve", "-test.v"), stubborn})
	if err != nil {
		t.Fatal(err)
	}
	if len(started) != 1 || started[0] != "c" || len(stopped) != 0 || len(restarted) != 1 || restarted[0] != "b" {
		t.Errorf("Apply: started %v stopped %v restarted %v; want [c] [] [b]", started, stopped, restarted)
	}
	waitFor(t, "b restarted and c running", func() bool {
		return setStatus(s, "b").State == supervise.Running && setStatus(s, "c").State == supervise.Running
	})
	if got := setStatus(s, "a").PID; got != pidA || !alive(pidA) {
		t.Errorf("unchanged a: pid %d -> %d (alive %v)", pidA, got, alive(pidA))
	}
	if alive(pidB) || setStatus(s, "b").PID == pidB {
		t.Errorf("changed b: old pid %d still there", pidB)
	}
	pidC := setStatus(s, "c").PID
	waitFor(t, "c ignoring SIGTERM", func() bool { _, err := os.Stat(ready); return err == nil })
	_, stopped, _, err = s.Apply([]supervise.Spec{stubborn})
	if err != nil || len(stopped) != 2 {
		t.Fatalf("Apply: stopped %v, %v", stopped, err)
	}
	if alive(pidA) {
		t.Errorf("removed a (pid %d) still alive", pidA)
	}
	start := time.Now()
	s.Close()
	if alive(pidC) {
		t.Errorf("stubborn c (pid %d) alive after Close", pidC)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("Close took %v: SIGTERM was not given its StopTimeout", d)
	}
	if _, _, _, err := s.Apply(nil); err != supervise.ErrClosed {
		t.Errorf("Apply after Close: %v, want ErrClosed", err)
	}
}

// TestApplyBadSpecs: duplicate names and missing paths are refused and
// change nothing.
func TestApplyBadSpecs(t *testing.T) {
	s := supervise.NewSet(supervise.SetOptions{})
	defer s.Close()
	for i, specs := range [][]supervise.Spec{
		{setSpec("x", "serve"), setSpec("x", "serve")},
		{{Name: "y"}},
		{{Path: "/bin/true"}},
	} {
		if _, _, _, err := s.Apply(specs); err == nil {
			t.Errorf("case %d: no error", i)
		}
	}
	if n := len(s.Status()); n != 0 {
		t.Errorf("%d processes after refused Applies", n)
	}
	// A path that does not exist: backoff, with the start error shown.
	if _, _, _, err := s.Apply([]supervise.Spec{{Name: "missing", Path: "/nonexistent/" + strconv.Itoa(os.Getpid())}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the start error", func() bool {
		st := setStatus(s, "missing")
		return st.State == supervise.Backoff && st.LastExit != ""
	})
}

// TestSetMemberLimits: a Set's member is a full Supervisor: the limits,
// start gate and policy of its Spec apply (here RLIMIT_NOFILE, and a
// Policy of its own that gives up), and a change of limits is a
// changed declaration, restarted by Apply.
func TestSetMemberLimits(t *testing.T) {
	l, w := newLines(t)
	s := supervise.NewSet(supervise.SetOptions{})
	defer s.Close()
	sp := spec("fds", w)
	sp.Limits.MaxFileDescriptors = 32
	sp.Policy.MaxCrashes = 2
	if started, _, _, err := s.Apply([]supervise.Spec{sp}); err != nil || len(started) != 1 {
		t.Fatalf("Apply: %v %v", started, err)
	}
	f := strings.Fields(l.next(t, "opened"))
	if n, _ := strconv.Atoi(f[1]); f[3] != "true" || n >= 32 || n == 0 {
		t.Fatalf("child: %v (want EMFILE after fewer than 32)", f)
	}
	waitFor(t, "given up after 2 exits", func() bool { return setStatus(s, "fds").State == supervise.Failed })
	if st := setStatus(s, "fds"); st.Limits.Files != "RLIMIT_NOFILE 32" || st.Starts != 2 {
		t.Fatalf("status %+v", st)
	}
	sp.Limits.MaxFileDescriptors = 48
	if _, _, restarted, err := s.Apply([]supervise.Spec{sp}); err != nil || len(restarted) != 1 {
		t.Fatalf("Apply with new limits: restarted %v, %v", restarted, err)
	}
	waitFor(t, "the new limit", func() bool { return setStatus(s, "fds").Limits.Files == "RLIMIT_NOFILE 48" })
	for {
		f = strings.Fields(l.next(t, "opened"))
		if n, _ := strconv.Atoi(f[1]); n > 32 {
			if f[3] != "true" || n >= 48 {
				t.Fatalf("child: %v (want EMFILE after fewer than 48)", f)
			}
			break
		}
	}
}

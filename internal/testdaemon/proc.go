package testdaemon

import (
	"bytes"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Buffer is a bytes.Buffer safe for concurrent use: a child process's
// stderr (written by exec's copier goroutine) or a daemon's log sink
// (written by its goroutines) that the test reads while they run.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it never fails.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Proc is a child process (a built kaelixd, as the end-to-end tests of
// cmd/kaelixctl and the startup tests of cmd/kaelixd run it) started by
// StartProc: its stderr is collected in Stderr, it dies with the test
// process (Pdeathsig), and the test's Cleanup kills it (SIGKILL) if it
// still runs. Use it from the test's goroutine.
type Proc struct {
	Cmd     *exec.Cmd
	Stderr  *Buffer   // the child's stderr, unless cmd.Stderr was set
	Started time.Time // when Start returned
	done    chan struct{}
	err     error // cmd.Wait's, once done is closed
}

// StartProc starts cmd (its Stderr, if nil, goes to Proc.Stderr; its
// SysProcAttr, if any, is kept with Pdeathsig set to SIGKILL) and fails
// the test if it cannot start.
func StartProc(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{Cmd: cmd, Stderr: new(Buffer), done: make(chan struct{})}
	if cmd.Stderr == nil {
		cmd.Stderr = p.Stderr
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	p.Started = time.Now()
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	return p
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits at most limit for the exit and returns the exit code and how
// long the process ran; -1 and limit if it still runs.
func (p *Proc) Wait(limit time.Duration) (int, time.Duration) {
	select {
	case <-p.done:
		return p.Cmd.ProcessState.ExitCode(), time.Since(p.Started)
	case <-time.After(limit):
		return -1, limit
	}
}

// Stop sends SIGTERM and waits at most limit for the exit. It returns
// Wait's error (nil for exit status 0), or, when the process outlives
// limit, kills it and says so.
func (p *Proc) Stop(limit time.Duration) error {
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(limit):
		p.Cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %v of SIGTERM", p.Cmd.Path, limit)
	}
}

// WaitReady polls ready every 20 ms until it reports true, for at most
// limit, and fails the test (with the child's stderr) if the process
// exits first or limit passes.
func (p *Proc) WaitReady(t testing.TB, limit time.Duration, ready func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		if ready() {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready: %v\n%s", p.Cmd.Path, p.err, p.Stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not ready within %v\n%s", p.Cmd.Path, limit, p.Stderr)
		}
	}
}

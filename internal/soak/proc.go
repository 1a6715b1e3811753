package soak

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kaelix-io/kaelix/internal/proc"
)

// Proc is one child process with its stdout readable line by line and its
// stderr appended to a log file.
type Proc struct {
	Role  string
	Args  ChildArgs
	Cmd   *exec.Cmd
	lines chan string
	exit  chan struct{} // closed when Wait returned
	err   error

	mu      sync.Mutex
	stopped bool // SIGSTOPped by the orchestrator and not yet continued
}

// Spawn starts exe as a child in role with args; stderr goes to logPath
// (appended).
func Spawn(exe, role string, args ChildArgs, logPath string, extraEnv ...string) (*Proc, error) {
	js, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(append(os.Environ(), RoleEnv+"="+role, ArgsEnv+"="+string(js)), extraEnv...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if logPath != "" {
		lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		defer lf.Close()
		cmd.Stderr = lf
	}
	// Children die with the harness (a crashed test must not leave
	// processes behind holding slots and regions).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: spawnCred}
	p := &Proc{Role: role, Args: args, Cmd: cmd, lines: make(chan string, 256), exit: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody reads: drop
			}
		}
		close(p.lines)
		p.err = cmd.Wait()
		close(p.exit)
	}()
	return p, nil
}

// Expect waits for a stdout line starting with prefix.
func (p *Proc) Expect(prefix string, timeout time.Duration) (string, error) {
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				<-p.exit
				return "", fmt.Errorf("%s %d exited before %q: %v", p.Role, p.Args.ID, prefix, p.err)
			}
			if strings.HasPrefix(l, prefix) {
				return l, nil
			}
		case <-deadline:
			return "", fmt.Errorf("%s %d: no %q within %v", p.Role, p.Args.ID, prefix, timeout)
		}
	}
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.exit:
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the process to exit and returns its error.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.exit:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s %d still running after %v", p.Role, p.Args.ID, timeout)
	}
}

// Signal sends sig (ignoring a process that already exited).
func (p *Proc) Signal(sig syscall.Signal) {
	if p.Exited() {
		return
	}
	p.mu.Lock()
	switch sig {
	case syscall.SIGSTOP:
		p.stopped = true
	case syscall.SIGCONT:
		p.stopped = false
	}
	p.mu.Unlock()
	p.Cmd.Process.Signal(sig)
}

// Kill sends SIGKILL and waits for the exit.
func (p *Proc) Kill() {
	p.Signal(syscall.SIGKILL)
	<-p.exit
}

// Stopped reports whether the orchestrator left it SIGSTOPped.
func (p *Proc) Stopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped
}

// WaitState waits until /proc/PID/stat shows state want (e.g. 'T').
func (p *Proc) WaitState(want byte, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if s, err := proc.ReadStat("", p.Cmd.Process.Pid); err == nil && s.State == want {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("%s %d: state %c not reached in %v", p.Role, p.Args.ID, want, timeout)
}

// SpawnAs is Spawn with the child running as uid/gid (and no
// supplementary groups): root only.
func SpawnAs(exe, role string, args ChildArgs, logPath string, uid, gid uint32) (*Proc, error) {
	spawnCred = &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}
	defer func() { spawnCred = nil }()
	return Spawn(exe, role, args, logPath)
}

// spawnCred is the credential of the next Spawn (SpawnAs; tests only,
// never concurrent).
var spawnCred *syscall.Credential

// Package supervise runs child processes and keeps them running. It is
// kaelixd's one supervisor, in two layers:
//
//   - Supervisor keeps ONE child running: it restarts the child with
//     bounded exponential backoff when it exits, gives up (and says so)
//     after MaxCrashes exits within Window (or never, with
//     Policy.Persist), applies resource limits and network isolation at
//     each start, and reports the child's state. Processor hosts use it.
//   - Set keeps a declared SET of children running, one Supervisor each,
//     and applies a new set of declarations live (hot reload: Apply starts
//     the new ones, stops the removed ones, restarts the changed ones and
//     leaves the others alone). kaelixd runs its [[bridges]] with it, and
//     is meant to run stream processors with it.
//
// The package is internal: its only users are kaelixd and the processor
// host, and its API follows what they need, not a promise to other
// programs (it replaced the public package supervisor, which had the set
// layer without limits, isolation or give-up).
//
// Stopping a child: SIGTERM, then SIGKILL after Policy.Grace. Each child
// is put in its own process group and gets PR_SET_PDEATHSIG SIGKILL, so
// it does not outlive a supervisor that is killed.
//
// # Limits
//
//   - File descriptors: RLIMIT_NOFILE (soft and hard), set with prlimit(2)
//     on the child. Opening past it fails with EMFILE.
//   - Memory: cgroup v2 memory.max (and memory.swap.max 0) in a child
//     cgroup of the supervisor's own, where it can make one (cgroup.go
//     says when); the kernel's OOM killer stops a child past it, counted
//     as a memory limit hit (memory.events oom_kill). Otherwise
//     RLIMIT_DATA (soft and hard), the private writable memory the child
//     maps (heap, thread stacks). Not RLIMIT_AS: a Go program reserves
//     hundreds of MB of address space at start, a varying amount
//     (measured: kaelix-proc under `ulimit -v` dies in runtime init at
//     400 MB, and at 1.2 GB in one run of four while 800 MB passed) and a
//     Kaelix client maps its rings shared, so the address-space limit
//     would measure neither what the child uses nor what it can take. A
//     child that allocates past RLIMIT_DATA gets ENOMEM; a Go child dies
//     with "out of memory", which is counted as a memory limit hit (found
//     in its stderr). A Go host needs about 128 MB with cgo's 8 MB thread
//     stacks. LimitStatus.Memory names the mechanism in effect.
//   - CPU percent: cgroup v2 cpu.max (quota max_cpu_percent% of a 100 ms
//     period) in the same child cgroup; where there is none, NOT
//     enforced, and LimitStatus.CPU says "cpu limit not enforced: " and
//     why.
//   - CPU set: Spec.CPUs is applied to every thread of the child with
//     sched_setaffinity before its gate opens (threads it makes later
//     inherit it).
//   - Network: without Spec.Network the child starts in a new, empty
//     network namespace (CLONE_NEWNET: only a loopback interface, down),
//     so it reaches no address, 127.0.0.1 included; Unix sockets by path
//     (kaelixd's control socket) and shared memory keep working. Where the
//     host forbids creating one (EPERM without CAP_SYS_ADMIN), Start
//     refuses unless Spec.AllowSharedNetwork accepts running without it.
//
// # Start gate
//
// Limits are applied after fork, by pid, so a child could run a moment
// without them. With Spec.StartGate the child gets a pipe as fd 3 (and
// KAELIX_START_GATE_FD=3) and must call WaitGate before running untrusted
// code: the supervisor writes to it once the limits are in place.
package supervise

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Limits bound a child's resources; 0 leaves one unlimited.
type Limits struct {
	MaxMemoryMB        int
	MaxCPUPercent      int
	MaxFileDescriptors int
}

// Policy is the restart policy. Zero fields take the defaults.
type Policy struct {
	MinBackoff time.Duration // first restart delay (default 100 ms), doubling per consecutive exit
	MaxBackoff time.Duration // bound of the delay (default 10 s)
	MaxCrashes int           // give up after this many exits within Window (default 5)
	Window     time.Duration // default 1 min; a run that lasts Window resets the backoff
	Grace      time.Duration // SIGTERM to SIGKILL on Stop/Restart (default 5 s)
	// Persist never gives up: MaxCrashes is not applied, and a start that
	// fails (no such file...) counts as an exit and is retried after the
	// backoff, the first one included (Start then does not fail; Status
	// shows the start error in LastExit). Set uses it.
	Persist bool
}

// Spec describes the child.
type Spec struct {
	Name string
	Path string
	Args []string // without argv[0]
	Env  []string // the whole environment (KEY=VALUE); nil: this process's environment
	Dir  string

	Stdout io.Writer // nil: discarded
	Stderr io.Writer // nil: discarded (the last 4 KiB are kept for Status either way)

	Limits Limits
	// Network lets the child use this host's network (can_access_network).
	Network bool
	// AllowSharedNetwork accepts starting without a private network
	// namespace where the host forbids creating one.
	AllowSharedNetwork bool
	StartGate          bool
	Policy             Policy
	Logger             *slog.Logger
	// CPUs, when set, is the child's CPU affinity (CPU numbers).
	CPUs []int
	// Credential, when set, runs the child as that user and group
	// (the supervisor must be root).
	Credential *syscall.Credential
	// CgroupRoot is where cgroup v2 is mounted ("": DefaultCgroupRoot).
	CgroupRoot string
}

// State is a child's life-cycle state.
type State string

const (
	Running State = "running"
	Backoff State = "backoff" // exited; restarting after the delay
	Failed  State = "failed"  // gave up: too many exits in the window, or it cannot start
	Stopped State = "stopped" // stopped by Stop
)

// Status is a snapshot of a supervised child.
type Status struct {
	Name      string
	State     State
	PID       int // 0 when not running
	Starts    int
	Restarts  int // starts after the first
	Crashes   int // exits within the current window
	LastExit  string
	Reason    string         // why it is failed or in backoff
	LimitHits map[string]int // "memory", "files": exits caused by a limit
	Limits    LimitStatus
	StartedAt time.Time
	Since     time.Time // when State was entered
	Next      time.Time // Backoff: when it starts again (zero otherwise)
	// StderrHead and StderrTail are the first and last 4 KiB the current
	// run (while running) or the last one wrote to stderr.
	StderrHead, StderrTail string
}

// LimitStatus says how each limit is applied, in words an operator reads.
type LimitStatus struct {
	Memory, CPU, Files, Network, CPUSet string
}

// Enforced reports whether every limit asked for is in effect (false when
// the CPU limit is not enforced).
func (ls LimitStatus) Enforced() bool { return !strings.HasPrefix(ls.CPU, "cpu limit not enforced") }

// Supervisor keeps one child running. Its methods are safe for concurrent
// use.
type Supervisor struct {
	spec   Spec
	log    *slog.Logger
	limits LimitStatus
	noNet  bool // start in a new network namespace
	cg     cgroupPlan

	mu        sync.Mutex // guards everything below
	cmd       *exec.Cmd
	st        Status
	exits     []time.Time
	began     time.Time // when the last start was tried
	backoff   time.Duration
	stopping  bool
	restartCh chan struct{}
	child     cgroup // the running child's cgroup ("" if none)
	tail      *tailBuffer
	done      chan struct{} // closed when the supervising goroutine ends
}

// ErrNetworkIsolation: the host does not allow a new network namespace and
// the spec does not accept running without one.
var ErrNetworkIsolation = errors.New("supervise: cannot isolate the network (new network namespace not permitted) and can_access_network is not granted; set the processor's allow_shared_network to run it anyway")

// Start starts the child and supervises it until Stop. The child gets
// SIGKILL if the OS thread that started it ends (Pdeathsig, so that no
// child outlives a crashed supervisor): call Start from a goroutine that
// is not locked to a thread about to exit. It fails at once
// (nothing left running) if the first start fails: no such file, network
// isolation refused.
func Start(spec Spec) (*Supervisor, error) {
	p := &spec.Policy
	if p.MinBackoff <= 0 {
		p.MinBackoff = 100 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 10 * time.Second
	}
	if p.MaxCrashes <= 0 {
		p.MaxCrashes = 5
	}
	if p.Window <= 0 {
		p.Window = time.Minute
	}
	if p.Grace <= 0 {
		p.Grace = 5 * time.Second
	}
	if spec.Logger == nil {
		spec.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Supervisor{spec: spec, log: spec.Logger.With("child", spec.Name), tail: &tailBuffer{max: 4096},
		restartCh: make(chan struct{}, 1), done: make(chan struct{}), backoff: p.MinBackoff}
	if l := spec.Limits; l.MaxMemoryMB > 0 || l.MaxCPUPercent > 0 {
		root := spec.CgroupRoot
		if root == "" {
			root = DefaultCgroupRoot
		}
		self, _ := os.ReadFile("/proc/self/cgroup")
		s.cg = planCgroup(root, string(self), l.MaxMemoryMB > 0, l.MaxCPUPercent > 0)
	}
	s.limits = describeLimits(spec.Limits, s.cg)
	if len(spec.CPUs) > 0 {
		s.limits.CPUSet = fmt.Sprint("sched_setaffinity ", spec.CPUs)
	}
	s.noNet = !spec.Network
	if s.noNet && !netnsAllowed() {
		if !spec.AllowSharedNetwork {
			return nil, fmt.Errorf("%s: %w", spec.Name, ErrNetworkIsolation)
		}
		s.noNet = false
		s.limits.Network = "NOT isolated: the host forbids a new network namespace and allow_shared_network accepts that"
	} else if s.noNet {
		s.limits.Network = "isolated: own network namespace (no interfaces up)"
	} else {
		s.limits.Network = "host network (can_access_network)"
	}
	s.st = Status{Name: spec.Name, Limits: s.limits, LimitHits: map[string]int{}, State: Backoff, Since: time.Now()}
	wait, err := s.start()
	if err != nil {
		if !p.Persist || errors.Is(err, ErrNetworkIsolation) {
			return nil, err
		}
		s.log.Error("cannot start", "err", err)
		wait = func() error { return err }
	}
	go s.supervise(wait)
	return s, nil
}

func describeLimits(l Limits, cg cgroupPlan) LimitStatus {
	ls := LimitStatus{Memory: "unlimited", CPU: "unlimited", Files: "unlimited", CPUSet: "all allowed CPUs"}
	switch {
	case l.MaxMemoryMB > 0 && cg.memory:
		ls.Memory = fmt.Sprintf("cgroup v2 memory.max %d MiB (under %s)", l.MaxMemoryMB, cg.parent)
	case l.MaxMemoryMB > 0:
		ls.Memory = fmt.Sprintf("RLIMIT_DATA %d MiB (cgroup v2 memory.max not available: %s)", l.MaxMemoryMB, cg.why)
	}
	switch {
	case l.MaxCPUPercent > 0 && cg.cpu:
		ls.CPU = fmt.Sprintf("cgroup v2 cpu.max %d%% of one CPU (under %s)", l.MaxCPUPercent, cg.parent)
	case l.MaxCPUPercent > 0:
		ls.CPU = fmt.Sprintf("cpu limit not enforced: max_cpu_percent %d needs cgroup v2 cpu.max: %s", l.MaxCPUPercent, cg.why)
	}
	if l.MaxFileDescriptors > 0 {
		ls.Files = fmt.Sprintf("RLIMIT_NOFILE %d", l.MaxFileDescriptors)
	}
	return ls
}

// netnsAllowed reports whether this process may create network
// namespaces: root, or CAP_SYS_ADMIN in its effective set.
func netnsAllowed() bool {
	if os.Geteuid() == 0 {
		return true
	}
	var hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if unix.Capget(&hdr, &data[0]) != nil {
		return false
	}
	return data[0].Effective&(1<<unix.CAP_SYS_ADMIN) != 0
}

// start forks the child, applies the limits, opens the gate. It returns a
// function that waits for the child's exit.
func (s *Supervisor) start() (func() error, error) {
	s.mu.Lock()
	s.began = time.Now()
	s.mu.Unlock()
	cmd := exec.Command(s.spec.Path, s.spec.Args...)
	cmd.Env = s.spec.Env
	cmd.Dir = s.spec.Dir
	cmd.Stdout = s.spec.Stdout
	s.tail.reset()
	if s.spec.Stderr != nil {
		cmd.Stderr = io.MultiWriter(s.spec.Stderr, s.tail)
	} else {
		cmd.Stderr = s.tail
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: s.spec.Credential}
	if s.noNet {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNET
	}
	var gateW *os.File
	if s.spec.StartGate {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		defer r.Close()
		gateW = w
		cmd.ExtraFiles = []*os.File{r}
		env := cmd.Env
		if env == nil {
			env = os.Environ()
		}
		cmd.Env = append(env, gateEnv+"=3")
	}
	s.mu.Lock()
	seq := s.st.Starts
	s.mu.Unlock()
	cg, err := s.cg.create(s.spec.Name, seq, s.spec.Limits)
	if err != nil {
		if gateW != nil {
			gateW.Close()
		}
		return nil, fmt.Errorf("supervise: %s: %w", s.spec.Name, err)
	}
	if err := cmd.Start(); err != nil {
		cg.remove()
		if gateW != nil {
			gateW.Close()
		}
		if s.noNet && errors.Is(err, syscall.EPERM) {
			return nil, fmt.Errorf("%s: %w", s.spec.Name, ErrNetworkIsolation)
		}
		return nil, fmt.Errorf("supervise: start %s: %w", s.spec.Name, err)
	}
	if err := s.applyLimits(cmd.Process.Pid, cg); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		cg.remove()
		if gateW != nil {
			gateW.Close()
		}
		return nil, fmt.Errorf("supervise: %s: limits: %w", s.spec.Name, err)
	}
	if gateW != nil {
		gateW.Write([]byte{1})
		gateW.Close()
	}
	s.mu.Lock()
	s.cmd = cmd
	s.child = cg
	s.st.State = Running
	s.st.PID = cmd.Process.Pid
	s.st.Starts++
	s.st.Restarts = s.st.Starts - 1
	s.st.StartedAt = time.Now()
	s.st.Since, s.st.Next = s.st.StartedAt, time.Time{}
	s.st.Reason = ""
	s.mu.Unlock()
	s.log.Info("started", "pid", cmd.Process.Pid, "memory", s.limits.Memory, "files", s.limits.Files, "cpu", s.limits.CPU, "network", s.limits.Network)
	return cmd.Wait, nil
}

func (s *Supervisor) applyLimits(pid int, cg cgroup) error {
	l := s.spec.Limits
	if err := cg.enter(pid); err != nil {
		return err
	}
	if len(s.spec.CPUs) > 0 {
		if err := setAffinity(pid, s.spec.CPUs); err != nil {
			return err
		}
	}
	if l.MaxFileDescriptors > 0 {
		n := uint64(l.MaxFileDescriptors)
		if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: n, Max: n}, nil); err != nil {
			return fmt.Errorf("RLIMIT_NOFILE %d: %w", n, err)
		}
	}
	if l.MaxMemoryMB > 0 && !s.cg.memory {
		n := uint64(l.MaxMemoryMB) << 20
		if err := unix.Prlimit(pid, unix.RLIMIT_DATA, &unix.Rlimit{Cur: n, Max: n}, nil); err != nil {
			return fmt.Errorf("RLIMIT_DATA %d MiB: %w", l.MaxMemoryMB, err)
		}
	}
	return nil
}

// supervise waits for each exit and restarts, until Stop or giving up.
func (s *Supervisor) supervise(wait func() error) {
	defer close(s.done)
	for {
		err := wait()
		now := time.Now()
		s.mu.Lock()
		ran := now.Sub(s.began)
		exit := describeExit(err)
		s.st.LastExit, s.st.PID, s.cmd = exit, 0, nil
		head, tail := s.tail.Head(), s.tail.String()
		s.st.StderrHead, s.st.StderrTail = head, tail
		oom := s.child.oomKills() > 0
		s.child.remove()
		s.child = ""
		if hit := limitHit(head+tail, err); hit != "" || oom {
			if oom {
				hit = "memory"
			}
			s.st.LimitHits[hit]++
			exit += " (" + hit + " limit)"
		}
		if s.stopping {
			s.st.State, s.st.Since = Stopped, now
			s.mu.Unlock()
			return
		}
		restartNow := false
		select {
		case <-s.restartCh:
			restartNow = true // Restart asked for this exit: no crash
		default:
		}
		if !restartNow {
			s.exits = append(s.exits, now)
			for len(s.exits) > 0 && now.Sub(s.exits[0]) > s.spec.Policy.Window {
				s.exits = s.exits[1:]
			}
			s.st.Crashes = len(s.exits)
			if ran >= s.spec.Policy.Window {
				s.backoff = s.spec.Policy.MinBackoff
			}
			if !s.spec.Policy.Persist && len(s.exits) >= s.spec.Policy.MaxCrashes {
				s.st.State, s.st.Since = Failed, now
				s.st.Reason = fmt.Sprintf("gave up after %d exits within %v; last: %s", len(s.exits), s.spec.Policy.Window, exit)
				s.mu.Unlock()
				s.log.Error("giving up", "reason", s.st.Reason)
				if !s.waitRestart() {
					return
				}
				s.mu.Lock()
				s.exits, s.st.Crashes, s.backoff = nil, 0, s.spec.Policy.MinBackoff
			} else {
				delay := s.backoff
				s.backoff = min(2*s.backoff, s.spec.Policy.MaxBackoff)
				s.st.State, s.st.Since, s.st.Next = Backoff, now, now.Add(delay)
				s.st.Reason = fmt.Sprintf("exited (%s); restarting in %v", exit, delay)
				s.mu.Unlock()
				s.log.Warn("exited; restarting", "exit", exit, "delay", delay)
				select {
				case <-time.After(delay):
				case <-s.restartCh:
				}
				s.mu.Lock()
			}
		}
		if s.stopping {
			s.st.State, s.st.Since, s.st.Next = Stopped, time.Now(), time.Time{}
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		for {
			w, err := s.start()
			if err == nil {
				wait = w
				break
			}
			if s.spec.Policy.Persist { // an exit like any other: back off and retry
				s.log.Error("cannot restart", "err", err)
				wait = func() error { return err }
				break
			}
			s.mu.Lock()
			s.st.State, s.st.Reason, s.st.Since = Failed, err.Error(), time.Now()
			s.mu.Unlock()
			s.log.Error("cannot restart", "err", err)
			if !s.waitRestart() {
				return
			}
		}
	}
}

// waitRestart parks a failed supervisor until Restart (true) or Stop.
func (s *Supervisor) waitRestart() bool {
	<-s.restartCh
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		s.st.State, s.st.Since = Stopped, time.Now()
		return false
	}
	return true
}

func describeExit(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
		}
		return fmt.Sprintf("exit status %d", ee.ExitCode())
	}
	if err != nil {
		return err.Error()
	}
	return "exit status 0"
}

// limitHit names the limit an exit ran into, judged from its stderr.
func limitHit(stderr string, err error) string {
	switch {
	case strings.Contains(stderr, "out of memory"), strings.Contains(stderr, "cannot allocate memory"),
		strings.Contains(stderr, "pthread_create failed"):
		return "memory"
	case strings.Contains(stderr, "too many open files"):
		return "files"
	}
	return ""
}

// Status returns the child's state.
func (s *Supervisor) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	if s.cmd != nil { // running: what it has written so far
		st.StderrHead, st.StderrTail = s.tail.Head(), s.tail.String()
	}
	st.LimitHits = make(map[string]int, len(s.st.LimitHits))
	for k, v := range s.st.LimitHits {
		st.LimitHits[k] = v
	}
	return st
}

// Restart stops the running child (SIGTERM, SIGKILL after the grace) and
// starts it again at once, or restarts a failed one (its crash count
// cleared). It returns without waiting for the new start.
func (s *Supervisor) Restart() {
	select {
	case s.restartCh <- struct{}{}:
	default:
	}
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd != nil {
		s.terminate(cmd)
	}
}

func (s *Supervisor) terminate(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	go func() {
		t := time.NewTimer(s.spec.Policy.Grace)
		defer t.Stop()
		select {
		case <-t.C:
			cmd.Process.Kill()
		case <-s.done:
		}
	}()
}

// Stop stops the child (SIGTERM, SIGKILL after the grace) and the
// supervision, and waits for both until ctx is done.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopping = true
	cmd := s.cmd
	s.mu.Unlock()
	select {
	case s.restartCh <- struct{}{}: // wakes a failed or backing-off supervisor
	default:
	}
	if cmd != nil {
		s.terminate(cmd)
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		if cmd != nil {
			cmd.Process.Kill()
		}
		return ctx.Err()
	}
}

// gateEnv names the start gate's descriptor in the child's environment.
const gateEnv = "KAELIX_START_GATE_FD"

// WaitGate is for the child: if it was started with a start gate, block
// until the supervisor has applied its limits. A no-op otherwise.
func WaitGate() error {
	if os.Getenv(gateEnv) == "" {
		return nil
	}
	f := os.NewFile(3, "start-gate")
	defer f.Close()
	var b [1]byte
	if _, err := f.Read(b[:]); err != nil {
		return fmt.Errorf("supervise: start gate: %w", err)
	}
	os.Unsetenv(gateEnv)
	return nil
}

// tailBuffer keeps the first and the last max bytes written to it (a Go
// program's fatal error is on its first line, then pages of stacks).
type tailBuffer struct {
	mu   sync.Mutex
	max  int
	head []byte
	b    []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := min(len(p), t.max-len(t.head)); n > 0 {
		t.head = append(t.head, p[:n]...)
	}
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = bytes.Clone(t.b[len(t.b)-t.max:])
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// Head returns the first bytes written.
func (t *tailBuffer) Head() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.head)
}

func (t *tailBuffer) reset() {
	t.mu.Lock()
	t.b, t.head = t.b[:0], t.head[:0]
	t.mu.Unlock()
}

// setAffinity sets the CPU affinity of every thread of pid (those it
// makes later inherit it from their creator).
func setAffinity(pid int, cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return fmt.Errorf("affinity: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("affinity %v: %w", cpus, err)
		}
	}
	return nil
}

// Package supervisor keeps a set of child processes running: it starts
// each declared process, restarts it when it exits with a bounded
// exponential backoff, and applies a new set of declarations live (hot
// reload: processes added are started, removed ones stopped, changed ones
// restarted, the others left alone). kaelixd is meant to use it for the
// bridges declared in its configuration, and later for stream processors.
//
// Stopping a process: SIGTERM, then SIGKILL after Options.StopTimeout.
// Each child is put in its own process group, and on Linux it gets
// PR_SET_PDEATHSIG SIGKILL, so it does not outlive a supervisor that is
// killed.
//
// A Supervisor is safe for concurrent use.
package supervisor

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"
)

// Spec declares one process. Name identifies it (unique within a set);
// two Specs are the same declaration when every field is equal.
type Spec struct {
	Name string
	Path string   // executable
	Args []string // arguments after the program name
	Env  []string // added to the supervisor's environment (KEY=VALUE)
	Dir  string   // working directory ("" inherits)
}

func (s Spec) equal(o Spec) bool {
	return s.Name == o.Name && s.Path == o.Path && s.Dir == o.Dir && slices.Equal(s.Args, o.Args) && slices.Equal(s.Env, o.Env)
}

// Options tune a Supervisor. The zero value takes the defaults noted.
type Options struct {
	// Restart backoff: the first restart waits MinBackoff (default
	// 200ms), each one after doubles it up to MaxBackoff (default 30s); a
	// process that ran at least StableAfter (default 10s) starts again
	// from MinBackoff.
	MinBackoff, MaxBackoff, StableAfter time.Duration
	// StopTimeout is how long a stopping process gets between SIGTERM
	// and SIGKILL (default 5s).
	StopTimeout time.Duration
	// Stdout and Stderr receive the children's output (nil: discarded).
	Stdout, Stderr io.Writer
	// Logger receives starts, exits and restarts (nil: discarded).
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	if o.StableAfter <= 0 {
		o.StableAfter = 10 * time.Second
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// State of a supervised process.
const (
	StateRunning = "running"
	StateBackoff = "backoff" // exited (or failed to start); restarting after a wait
	StateStopped = "stopped" // removed, or the supervisor closed
)

// Status is one process's state.
type Status struct {
	Name     string    `json:"name"`
	State    string    `json:"state"`
	PID      int       `json:"pid,omitempty"`
	Since    time.Time `json:"since"`               // when State was entered
	Starts   int       `json:"starts"`              // successful starts
	LastExit string    `json:"last_exit,omitempty"` // how the last run ended ("exit status 1", "signal: killed", a start error)
	Next     time.Time `json:"next,omitzero"`       // StateBackoff: when it starts again
}

// Supervisor runs the processes of the last Apply. Make it with New.
type Supervisor struct {
	opts Options

	mu     sync.Mutex // guards procs and closed
	procs  map[string]*proc
	closed bool
}

// proc is one supervised process; its goroutine owns cmd.
type proc struct {
	spec Spec
	stop chan struct{} // closed to stop it
	done chan struct{} // closed when its goroutine has ended

	mu sync.Mutex // guards st
	st Status
}

// New returns a Supervisor running nothing.
func New(opts Options) *Supervisor {
	opts.defaults()
	return &Supervisor{opts: opts, procs: map[string]*proc{}}
}

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("supervisor: closed")

// Apply makes specs the running set: it starts the new ones, stops (and
// waits for) those no longer declared, restarts those whose declaration
// changed and leaves the others running. It returns the names it
// started, stopped and restarted, each sorted. Errors: duplicate or empty
// names, an empty Path (nothing is changed then), ErrClosed.
func (s *Supervisor) Apply(specs []Spec) (started, stopped, restarted []string, err error) {
	want := map[string]Spec{}
	for _, sp := range specs {
		if sp.Name == "" || sp.Path == "" {
			return nil, nil, nil, fmt.Errorf("supervisor: spec %+v: name and path are required", sp)
		}
		if _, dup := want[sp.Name]; dup {
			return nil, nil, nil, fmt.Errorf("supervisor: %q declared twice", sp.Name)
		}
		want[sp.Name] = sp
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, nil, nil, ErrClosed
	}
	var toStop []*proc
	for name, p := range s.procs {
		sp, keep := want[name]
		switch {
		case !keep:
			stopped = append(stopped, name)
			toStop = append(toStop, p)
			delete(s.procs, name)
		case !sp.equal(p.spec):
			restarted = append(restarted, name)
			toStop = append(toStop, p)
			delete(s.procs, name)
		}
	}
	s.mu.Unlock()
	for _, p := range toStop { // outside the lock: stopping waits
		p.halt()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, nil, ErrClosed
	}
	for name, sp := range want {
		if _, running := s.procs[name]; running {
			continue
		}
		if !slices.Contains(restarted, name) {
			started = append(started, name)
		}
		p := &proc{spec: sp, stop: make(chan struct{}), done: make(chan struct{}), st: Status{Name: name, State: StateBackoff, Since: time.Now()}}
		s.procs[name] = p
		go p.run(s.opts)
	}
	sort.Strings(started)
	sort.Strings(stopped)
	sort.Strings(restarted)
	return started, stopped, restarted, nil
}

// Status returns every process's state, sorted by name.
func (s *Supervisor) Status() []Status {
	s.mu.Lock()
	ps := make([]*proc, 0, len(s.procs))
	for _, p := range s.procs {
		ps = append(ps, p)
	}
	s.mu.Unlock()
	out := make([]Status, 0, len(ps))
	for _, p := range ps {
		p.mu.Lock()
		out = append(out, p.st)
		p.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Close stops every process (SIGTERM, then SIGKILL after StopTimeout) and
// waits for them. Safe to call twice.
func (s *Supervisor) Close() {
	s.mu.Lock()
	s.closed = true
	ps := s.procs
	s.procs = map[string]*proc{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); p.halt() }()
	}
	wg.Wait()
}

func (p *proc) halt() {
	close(p.stop)
	<-p.done
}

func (p *proc) set(f func(*Status)) {
	p.mu.Lock()
	f(&p.st)
	p.mu.Unlock()
}

// run is the process's goroutine: start, wait, back off, start again,
// until stop is closed.
func (p *proc) run(o Options) {
	defer close(p.done)
	backoff := o.MinBackoff
	for {
		cmd := exec.Command(p.spec.Path, p.spec.Args...)
		cmd.Env = append(os.Environ(), p.spec.Env...)
		cmd.Dir = p.spec.Dir
		cmd.Stdout, cmd.Stderr = o.Stdout, o.Stderr
		cmd.SysProcAttr = sysProcAttr()
		started := time.Now()
		var exit string
		if err := cmd.Start(); err != nil {
			exit = err.Error()
			o.Logger.Error("supervised process did not start", "name", p.spec.Name, "err", err)
		} else {
			p.set(func(st *Status) {
				st.State, st.PID, st.Since, st.Next = StateRunning, cmd.Process.Pid, started, time.Time{}
				st.Starts++
			})
			o.Logger.Info("supervised process started", "name", p.spec.Name, "pid", cmd.Process.Pid)
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			select {
			case err := <-waited:
				exit = exitText(err)
			case <-p.stop:
				cmd.Process.Signal(syscall.SIGTERM)
				t := time.NewTimer(o.StopTimeout)
				select {
				case err := <-waited:
					exit = exitText(err)
				case <-t.C:
					cmd.Process.Kill()
					exit = exitText(<-waited)
				}
				t.Stop()
				p.set(func(st *Status) { st.State, st.PID, st.Since, st.LastExit = StateStopped, 0, time.Now(), exit })
				return
			}
			o.Logger.Warn("supervised process exited", "name", p.spec.Name, "exit", exit, "ran", time.Since(started).Round(time.Millisecond))
		}
		if time.Since(started) >= o.StableAfter {
			backoff = o.MinBackoff
		}
		next := time.Now().Add(backoff)
		p.set(func(st *Status) {
			st.State, st.PID, st.Since, st.LastExit, st.Next = StateBackoff, 0, time.Now(), exit, next
		})
		t := time.NewTimer(backoff)
		select {
		case <-p.stop:
			t.Stop()
			p.set(func(st *Status) { st.State, st.Since, st.Next = StateStopped, time.Now(), time.Time{} })
			return
		case <-t.C:
		}
		backoff = min(2*backoff, o.MaxBackoff)
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

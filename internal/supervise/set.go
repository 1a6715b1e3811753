package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"
)

// SetOptions tune a Set. The zero value takes the defaults noted.
type SetOptions struct {
	// Restart backoff of a Spec whose Policy is zero: the first restart
	// waits MinBackoff (default 200ms), each one after doubles it up to
	// MaxBackoff (default 30s); a child that ran at least StableAfter
	// (default 10s) starts again from MinBackoff. Such a child never
	// gives up (Policy.Persist).
	MinBackoff, MaxBackoff, StableAfter time.Duration
	// StopTimeout is how long a stopping child gets between SIGTERM and
	// SIGKILL (default 5s), for a Spec whose Policy is zero.
	StopTimeout time.Duration
	// Stdout and Stderr receive the output of children whose Spec leaves
	// them nil (nil: discarded).
	Stdout, Stderr io.Writer
	// Logger receives starts, exits and restarts, for children whose Spec
	// has none (nil: discarded).
	Logger *slog.Logger
}

func (o *SetOptions) defaults() {
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

// Set runs the children of the last Apply, one Supervisor each. Make it
// with NewSet. A Set is safe for concurrent use.
type Set struct {
	opts SetOptions

	mu     sync.Mutex // guards procs and closed
	procs  map[string]*member
	closed bool
}

type member struct {
	decl Spec // as declared (before the Set's defaults)
	sup  *Supervisor
}

// NewSet returns a Set running nothing.
func NewSet(opts SetOptions) *Set {
	opts.defaults()
	return &Set{opts: opts, procs: map[string]*member{}}
}

// ErrClosed is returned by Set.Apply after Close.
var ErrClosed = errors.New("supervise: set closed")

// sameDecl reports whether two Specs declare the same child: every field
// but the output writers and the logger.
func sameDecl(a, b Spec) bool {
	return a.Name == b.Name && a.Path == b.Path && a.Dir == b.Dir && slices.Equal(a.Args, b.Args) &&
		slices.Equal(a.Env, b.Env) && (a.Env == nil) == (b.Env == nil) && a.Limits == b.Limits &&
		a.Network == b.Network && a.AllowSharedNetwork == b.AllowSharedNetwork &&
		a.StartGate == b.StartGate && a.Policy == b.Policy && slices.Equal(a.CPUs, b.CPUs) &&
		a.CgroupRoot == b.CgroupRoot && sameCredential(a.Credential, b.Credential)
}

func sameCredential(a, b *syscall.Credential) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Uid == b.Uid && a.Gid == b.Gid && slices.Equal(a.Groups, b.Groups) && a.NoSetGroups == b.NoSetGroups
}

// Restart restarts the child named name (see Supervisor.Restart): a
// running one is stopped and started again at once, a failed one (given
// up) is started again with its crash count cleared. False if the Set
// runs no such child.
func (s *Set) Restart(name string) bool {
	s.mu.Lock()
	m, ok := s.procs[name]
	s.mu.Unlock()
	if ok {
		m.sup.Restart()
	}
	return ok
}

// Apply makes specs the running set: it starts the new ones, stops (and
// waits for) those no longer declared, restarts those whose declaration
// changed and leaves the others running. It returns the names it
// started, stopped and restarted, each sorted. A child whose start fails
// (no such file...) is kept and retried with backoff (Status shows the
// error) unless its Spec sets a Policy of its own. Errors: duplicate or
// empty names, an empty Path (nothing is changed then), ErrClosed, and
// children that cannot be supervised at all (ErrNetworkIsolation; they
// are left out, the others applied).
func (s *Set) Apply(specs []Spec) (started, stopped, restarted []string, err error) {
	want := map[string]Spec{}
	for _, sp := range specs {
		if sp.Name == "" || sp.Path == "" {
			return nil, nil, nil, fmt.Errorf("supervise: spec name %q path %q: name and path are required", sp.Name, sp.Path)
		}
		if _, dup := want[sp.Name]; dup {
			return nil, nil, nil, fmt.Errorf("supervise: %q declared twice", sp.Name)
		}
		want[sp.Name] = sp
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, nil, nil, ErrClosed
	}
	var toStop []*member
	for name, m := range s.procs {
		sp, keep := want[name]
		switch {
		case !keep:
			stopped = append(stopped, name)
			toStop = append(toStop, m)
			delete(s.procs, name)
		case !sameDecl(sp, m.decl):
			restarted = append(restarted, name)
			toStop = append(toStop, m)
			delete(s.procs, name)
		}
	}
	s.mu.Unlock()
	for _, m := range toStop { // outside the lock: stopping waits
		m.sup.Stop(context.Background())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, nil, ErrClosed
	}
	var errs []error
	for name, sp := range want {
		if _, running := s.procs[name]; running {
			continue
		}
		sup, serr := Start(s.withDefaults(sp))
		if serr != nil {
			errs = append(errs, serr)
			if slices.Contains(restarted, name) { // stopped, and not started again
				restarted = slices.DeleteFunc(restarted, func(n string) bool { return n == name })
				stopped = append(stopped, name)
			}
			continue
		}
		if !slices.Contains(restarted, name) {
			started = append(started, name)
		}
		s.procs[name] = &member{decl: sp, sup: sup}
	}
	sort.Strings(started)
	sort.Strings(stopped)
	sort.Strings(restarted)
	return started, stopped, restarted, errors.Join(errs...)
}

func (s *Set) withDefaults(sp Spec) Spec {
	if sp.Policy == (Policy{}) {
		sp.Policy = Policy{MinBackoff: s.opts.MinBackoff, MaxBackoff: s.opts.MaxBackoff, Window: s.opts.StableAfter, Grace: s.opts.StopTimeout, Persist: true}
	}
	if sp.Stdout == nil {
		sp.Stdout = s.opts.Stdout
	}
	if sp.Stderr == nil {
		sp.Stderr = s.opts.Stderr
	}
	if sp.Logger == nil {
		sp.Logger = s.opts.Logger
	}
	return sp
}

// Status returns every child's state, sorted by name.
func (s *Set) Status() []Status {
	s.mu.Lock()
	ms := make([]*member, 0, len(s.procs))
	for _, m := range s.procs {
		ms = append(ms, m)
	}
	s.mu.Unlock()
	out := make([]Status, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.sup.Status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Close stops every child (SIGTERM, then SIGKILL after the grace) and
// waits for them. Safe to call twice.
func (s *Set) Close() {
	s.mu.Lock()
	s.closed = true
	ms := s.procs
	s.procs = map[string]*member{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() { defer wg.Done(); m.sup.Stop(context.Background()) }()
	}
	wg.Wait()
}

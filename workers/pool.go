package workers

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kaelix-io/kaelix/numa"
	"golang.org/x/sys/unix"
)

// Config configures a Pool. The zero value is valid: one worker per
// allowed CPU, each pinned to one of them, three priority levels of 1024
// tasks, no spinning.
type Config struct {
	// WorkerThreads is the number of workers (worker_threads); 0: one per
	// CPU in CPUs.
	WorkerThreads int
	// CPUs are the CPUs workers are pinned to, worker i to
	// CPUs[i%len(CPUs)]. Nil: the CPUs this process may run on
	// (sched_getaffinity), or with NUMAAware those of NUMANode.
	CPUs []int
	// NoPin leaves workers unpinned (still locked to their OS threads).
	NoPin bool
	// NUMAAware places the workers on NUMANode's CPUs (those this process
	// may use), e.g. the node a served topic's rings are bound to. Needs
	// Topology (nil: numa.Load("/")). Ignored when CPUs is set.
	NUMAAware bool
	NUMANode  int
	Topology  *numa.Topology
	// PriorityLevels is the number of priorities (priority_levels,
	// default 3, at most 16): 0 is the lowest, PriorityLevels-1 the
	// highest.
	PriorityLevels int
	// TaskQueueDepth is each level's queue capacity (task_queue_depth,
	// default 1024). A full level refuses Spawn with ErrPoolExhausted.
	TaskQueueDepth int
	// TargetLatency (target_latency_us) picks how long an idle worker
	// spins before it parks: see SpinBudget.
	TargetLatency time.Duration
}

// SpinBudget is how long an idle worker keeps looking for work before it
// parks (on a condition variable: a futex sleep, waking in roughly 20 to
// 100 µs on a loaded host). A target latency under 1 ms cannot afford that
// wake-up, so the worker spins for the target itself (a task spawned
// within that time is taken with no wake-up; the spin burns the core);
// 0 or 1 ms and more: park at once.
func SpinBudget(target time.Duration) time.Duration {
	if target <= 0 || target >= time.Millisecond {
		return 0
	}
	return target
}

// Pool runs tasks on a fixed set of worker goroutines, each locked to its
// own OS thread (runtime.LockOSThread) for life and pinned with
// sched_setaffinity, taking tasks by priority with weighted round robin
// (see sched.go: higher levels first within each cycle, every backlogged
// level served at least once a cycle).
//
// All methods are safe for concurrent use. Tasks run to completion; a
// task that panics is counted (Stats.Panics) and its worker goes on.
type Pool struct {
	cfg  Config
	spin time.Duration
	mu   sync.Mutex // guards s, closed, sleepers; cond waits on it
	cond *sync.Cond
	s    *sched
	// pending mirrors s.pending for spinning workers, which read it
	// without the lock (an atomic load).
	pending  atomic.Int64
	sleepers int
	closed   bool
	workers  []*worker
	wg       sync.WaitGroup

	spawned, exhausted, ran []atomic.Uint64 // per level
	panics                  atomic.Uint64
}

type worker struct {
	id   int
	cpus []int // as pinned at start
	tid  atomic.Int32
}

// New starts the pool's workers and returns once each is pinned. Errors:
// a bad Config (named field), a CPU this process may not use (the
// sched_setaffinity error of the first worker that failed; no worker is
// left running).
func New(cfg Config) (*Pool, error) {
	if cfg.PriorityLevels == 0 {
		cfg.PriorityLevels = 3
	}
	if cfg.TaskQueueDepth == 0 {
		cfg.TaskQueueDepth = 1024
	}
	switch {
	case cfg.PriorityLevels < 1 || cfg.PriorityLevels > 16:
		return nil, fmt.Errorf("workers: priority_levels %d: want 1 to 16", cfg.PriorityLevels)
	case cfg.TaskQueueDepth < 1:
		return nil, fmt.Errorf("workers: task_queue_depth %d: want >= 1", cfg.TaskQueueDepth)
	case cfg.WorkerThreads < 0:
		return nil, fmt.Errorf("workers: worker_threads %d: want >= 0", cfg.WorkerThreads)
	case cfg.TargetLatency < 0:
		return nil, fmt.Errorf("workers: target_latency %v: want >= 0", cfg.TargetLatency)
	}
	cpus, err := placement(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.WorkerThreads == 0 {
		cfg.WorkerThreads = len(cpus)
	}
	cfg.CPUs = cpus
	p := &Pool{
		cfg: cfg, spin: SpinBudget(cfg.TargetLatency),
		s:         newSched(cfg.PriorityLevels, cfg.TaskQueueDepth),
		spawned:   make([]atomic.Uint64, cfg.PriorityLevels),
		exhausted: make([]atomic.Uint64, cfg.PriorityLevels),
		ran:       make([]atomic.Uint64, cfg.PriorityLevels),
	}
	p.cond = sync.NewCond(&p.mu)
	started := make(chan error, cfg.WorkerThreads)
	for i := range cfg.WorkerThreads {
		w := &worker{id: i}
		if !cfg.NoPin {
			w.cpus = []int{cpus[i%len(cpus)]}
		}
		p.workers = append(p.workers, w)
		p.wg.Add(1)
		go p.run(w, started)
	}
	var firstErr error
	for range cfg.WorkerThreads {
		if err := <-started; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		p.Close()
		return nil, firstErr
	}
	return p, nil
}

// placement resolves the CPUs workers are pinned to.
func placement(cfg Config) ([]int, error) {
	if len(cfg.CPUs) > 0 {
		return slices.Clone(cfg.CPUs), nil
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("workers: sched_getaffinity: %w", err)
	}
	var allowed []int
	for c := 0; c < 1024; c++ {
		if set.IsSet(c) {
			allowed = append(allowed, c)
		}
	}
	if !cfg.NUMAAware {
		return allowed, nil
	}
	topo := cfg.Topology
	if topo == nil {
		t, err := numa.Load("/")
		if err != nil {
			return nil, fmt.Errorf("workers: numa_aware: %w", err)
		}
		topo = t
	}
	n, ok := topo.Node(cfg.NUMANode)
	if !ok {
		return nil, fmt.Errorf("workers: numa_aware: node %d: no such node (nodes %v)", cfg.NUMANode, topo.NodeIDs())
	}
	var on []int
	for _, c := range n.CPUs {
		if slices.Contains(allowed, c) {
			on = append(on, c)
		}
	}
	if len(on) == 0 {
		return nil, fmt.Errorf("workers: numa_aware: node %d has no CPU this process may use (node CPUs %s, allowed %s)",
			cfg.NUMANode, numa.FormatCPUList(n.CPUs), numa.FormatCPUList(allowed))
	}
	return on, nil
}

// run is a worker's life: lock and pin the thread, then take tasks until
// the pool closes and its queues are empty. The goroutine exits still
// locked, so the runtime ends its (pinned) thread instead of reusing it.
func (p *Pool) run(w *worker, started chan<- error) {
	defer p.wg.Done()
	runtime.LockOSThread()
	if len(w.cpus) > 0 {
		if _, err := numa.PinThread(w.cpus...); err != nil {
			started <- fmt.Errorf("workers: worker %d: %w", w.id, err)
			return
		}
	}
	w.tid.Store(int32(unix.Gettid()))
	started <- nil
	for {
		task, level, ok := p.take()
		if !ok {
			return
		}
		p.exec(task, level)
	}
}

func (p *Pool) exec(task func(), level int) {
	defer func() {
		if v := recover(); v != nil {
			p.panics.Add(1)
		}
		p.ran[level].Add(1)
	}()
	task()
}

// take returns the next task, spinning up to the spin budget and then
// parking while there is none; ok is false once the pool is closed and
// drained.
func (p *Pool) take() (task func(), level int, ok bool) {
	if p.spin > 0 {
		deadline := time.Now().Add(p.spin)
		for p.pending.Load() == 0 && time.Now().Before(deadline) {
			// busy: the budget is the point (see SpinBudget)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if t, l := p.s.pop(); t != nil {
			p.pending.Add(-1)
			return t, l, true
		}
		if p.closed {
			return nil, -1, false
		}
		p.sleepers++
		p.cond.Wait()
		p.sleepers--
	}
}

// Spawn queues task at priority 0 (the lowest). See SpawnWithPriority.
func (p *Pool) Spawn(task func()) error { return p.SpawnWithPriority(0, task) }

// SpawnWithPriority queues task at priority prio (0 lowest,
// PriorityLevels-1 highest) and returns at once. Errors: ErrPoolExhausted
// (that level holds TaskQueueDepth tasks; nothing queued), ErrBadPriority,
// ErrClosed. It never blocks beyond the pool's mutex.
func (p *Pool) SpawnWithPriority(prio int, task func()) error {
	if prio < 0 || prio >= p.cfg.PriorityLevels {
		return fmt.Errorf("%w: %d (levels 0-%d)", ErrBadPriority, prio, p.cfg.PriorityLevels-1)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if !p.s.push(prio, task) {
		p.mu.Unlock()
		p.exhausted[prio].Add(1)
		return ErrPoolExhausted
	}
	p.pending.Add(1)
	wake := p.sleepers > 0
	p.mu.Unlock()
	if wake {
		p.cond.Signal()
	}
	p.spawned[prio].Add(1)
	return nil
}

// Pending returns the number of tasks queued (all levels), without the
// lock: a snapshot that may be stale at once.
func (p *Pool) Pending() int { return int(p.pending.Load()) }

// Workers returns the number of workers.
func (p *Pool) Workers() int { return len(p.workers) }

// PriorityLevels returns the number of priority levels.
func (p *Pool) PriorityLevels() int { return p.cfg.PriorityLevels }

// SpinBudget returns the idle spin this pool's workers use.
func (p *Pool) SpinBudget() time.Duration { return p.spin }

func (p *Pool) worker(i int) (*worker, error) {
	if i < 0 || i >= len(p.workers) {
		return nil, fmt.Errorf("%w: %d (pool has %d)", ErrNoSuchWorker, i, len(p.workers))
	}
	w := p.workers[i]
	if w.tid.Load() == 0 {
		return nil, fmt.Errorf("%w: %d has exited", ErrNoSuchWorker, i)
	}
	return w, nil
}

// SetWorkerAffinity re-pins worker i's thread to cpus (sched_setaffinity
// on its thread id; it takes effect at once, also mid-task). Errors:
// ErrNoSuchWorker, numa.ErrNoCPUs, or the syscall's error (a CPU this
// process may not use: EINVAL).
func (p *Pool) SetWorkerAffinity(i int, cpus ...int) error {
	w, err := p.worker(i)
	if err != nil {
		return err
	}
	if len(cpus) == 0 {
		return fmt.Errorf("workers: set affinity of worker %d: %w", i, numa.ErrNoCPUs)
	}
	var set unix.CPUSet
	for _, c := range cpus {
		if c < 0 || c >= 1024 {
			return fmt.Errorf("workers: set affinity of worker %d: cpu %d: %w", i, c, numa.ErrNoSuchCPU)
		}
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(int(w.tid.Load()), &set); err != nil {
		return fmt.Errorf("workers: set affinity of worker %d to %s: %w", i, numa.FormatCPUList(slices.Sorted(slices.Values(cpus))), err)
	}
	return nil
}

// WorkerAffinity reads back the CPUs worker i's thread may run on
// (sched_getaffinity on its thread id), ascending.
func (p *Pool) WorkerAffinity(i int) ([]int, error) {
	w, err := p.worker(i)
	if err != nil {
		return nil, err
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(int(w.tid.Load()), &set); err != nil {
		return nil, fmt.Errorf("workers: affinity of worker %d: %w", i, err)
	}
	var out []int
	for c := 0; c < 1024; c++ {
		if set.IsSet(c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// Stats are a pool's counts per priority level (index = priority).
type Stats struct {
	Spawned   []uint64 // tasks queued
	Exhausted []uint64 // Spawn refusals with ErrPoolExhausted
	Ran       []uint64 // tasks run (completed or panicked)
	Queued    []int    // tasks waiting now
	Panics    uint64
}

// Stats returns the pool's counts.
func (p *Pool) Stats() Stats {
	n := p.cfg.PriorityLevels
	st := Stats{Spawned: make([]uint64, n), Exhausted: make([]uint64, n), Ran: make([]uint64, n), Queued: make([]int, n), Panics: p.panics.Load()}
	p.mu.Lock()
	for i := range n {
		st.Queued[i] = p.s.queued(i)
	}
	p.mu.Unlock()
	for i := range n {
		st.Spawned[i], st.Exhausted[i], st.Ran[i] = p.spawned[i].Load(), p.exhausted[i].Load(), p.ran[i].Load()
	}
	return st
}

// Close stops taking tasks (Spawn returns ErrClosed), lets the workers run
// what is queued, and waits for them to exit (their pinned threads end
// with them). Idempotent. Do not call it from a task (it would wait for
// itself).
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cond.Broadcast()
	p.wg.Wait()
	return nil
}

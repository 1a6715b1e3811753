package workers_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/numa"
	"github.com/kaelix-io/kaelix/workers"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func allowed(t *testing.T) []int {
	t.Helper()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	var out []int
	for c := range 1024 {
		if set.IsSet(c) {
			out = append(out, c)
		}
	}
	return out
}

func newPool(t *testing.T, cfg workers.Config) *workers.Pool {
	t.Helper()
	p, err := workers.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// gate occupies the pool's only worker until the returned func is called.
func gate(t *testing.T, p *workers.Pool, prio int) (release func()) {
	t.Helper()
	running, open := make(chan struct{}), make(chan struct{})
	if err := p.SpawnWithPriority(prio, func() { close(running); <-open }); err != nil {
		t.Fatal(err)
	}
	<-running
	return sync.OnceFunc(func() { close(open) })
}

// TestExhaustedNeverBlocks: a full level refuses at once with the error
// "Worker pool exhausted"; other levels still take tasks.
func TestExhaustedNeverBlocks(t *testing.T) {
	p := newPool(t, workers.Config{WorkerThreads: 1, TaskQueueDepth: 4, PriorityLevels: 2})
	release := gate(t, p, 1)
	defer release()
	for i := range 4 {
		if err := p.Spawn(func() {}); err != nil {
			t.Fatalf("spawn %d: %v", i, err)
		}
	}
	done := make(chan error)
	go func() { done <- p.Spawn(func() {}) }()
	select {
	case err := <-done:
		if !errors.Is(err, workers.ErrPoolExhausted) || err.Error() != "Worker pool exhausted" {
			t.Fatalf("5th spawn: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Spawn blocked on a full queue")
	}
	if err := p.SpawnWithPriority(1, func() {}); err != nil {
		t.Fatalf("another level: %v", err)
	}
	if err := p.SpawnWithPriority(2, func() {}); !errors.Is(err, workers.ErrBadPriority) {
		t.Fatalf("priority 2 of 2 levels: %v", err)
	}
	st := p.Stats()
	if st.Exhausted[0] != 1 || st.Queued[0] != 4 || st.Queued[1] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestPriorityOrder: with one worker held, queued tasks then run in the
// weighted round robin's order: highest level first in each cycle, every
// level served every cycle, FIFO within a level.
func TestPriorityOrder(t *testing.T) {
	p := newPool(t, workers.Config{WorkerThreads: 1, PriorityLevels: 3, TaskQueueDepth: 64})
	release := gate(t, p, 0)
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	const per = 8
	for l := range 3 {
		for i := range per {
			wg.Add(1)
			name := string(rune('a'+l)) + string(rune('0'+i))
			if err := p.SpawnWithPriority(l, func() {
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
				wg.Done()
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	release()
	wg.Wait()
	// Cycle 1 (credits c4 b2 a1): the gate spent a's credit, so c0..c3 b0
	// b1; cycle 2: c4..c7 b2 b3 a0; c is empty now: cycles of b b a: b4 b5
	// a1, b6 b7 a2; then a alone.
	want := []string{"c0", "c1", "c2", "c3", "b0", "b1", "c4", "c5", "c6", "c7", "b2", "b3", "a0",
		"b4", "b5", "a1", "b6", "b7", "a2", "a3", "a4", "a5", "a6", "a7"}
	if !slices.Equal(order, want) {
		t.Fatalf("order\n got %v\nwant %v", order, want)
	}
}

// TestFairnessUnderLoad: two workers, every level flooded: while all
// are backlogged every level makes progress and the shares follow the
// weights (4:2:1) within generous bounds (two workers interleave their
// picks, so exact cycles are not promised).
func TestFairnessUnderLoad(t *testing.T) {
	p := newPool(t, workers.Config{WorkerThreads: 2, PriorityLevels: 3, TaskQueueDepth: 4096, NoPin: true})
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	release := make(chan struct{})
	var held sync.WaitGroup
	held.Add(2)
	for range 2 {
		p.SpawnWithPriority(2, func() { held.Done(); <-release })
	}
	held.Wait()
	const per = 3000
	for l := range 3 {
		for range per {
			wg.Add(1)
			p.SpawnWithPriority(l, func() {
				mu.Lock()
				order = append(order, l)
				mu.Unlock()
				wg.Done()
			})
		}
	}
	close(release)
	wg.Wait()
	// In the first 1400 runs no level can have emptied (level 2 would need
	// 3000): count the shares there.
	count := make([]int, 3)
	for _, l := range order[:1400] {
		count[l]++
	}
	share := func(l int) float64 { return float64(count[l]) / 1400 }
	if share(0) < 0.08 || share(0) > 0.22 || share(1) < 0.20 || share(1) > 0.37 || share(2) < 0.47 || share(2) > 0.67 {
		t.Fatalf("shares while backlogged %v of 1400 (weights 1:2:4 = 0.14, 0.29, 0.57)", count)
	}
	p.Close() // waits for the workers: every task's count is in
	if st := p.Stats(); st.Ran[0] != per || st.Ran[1] != per || st.Ran[2] != per+2 {
		t.Fatalf("ran %v", st.Ran)
	}
}

// TestPinAndReadBack: each worker is pinned to its CPU: the pool reads the
// thread's mask back, and a task sees the same mask and runs on that CPU.
// SetWorkerAffinity moves it.
func TestPinAndReadBack(t *testing.T) {
	cpus := allowed(t)
	for _, c := range cpus {
		p, err := workers.New(workers.Config{WorkerThreads: 1, CPUs: []int{c}})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := p.WorkerAffinity(0); err != nil || !slices.Equal(got, []int{c}) {
			t.Fatalf("cpu %d: read back %v, %v", c, got, err)
		}
		checkTaskOn(t, p, c)
		if len(cpus) > 1 {
			other := cpus[0]
			if other == c {
				other = cpus[1]
			}
			if err := p.SetWorkerAffinity(0, other); err != nil {
				t.Fatal(err)
			}
			if got, _ := p.WorkerAffinity(0); !slices.Equal(got, []int{other}) {
				t.Fatalf("after SetWorkerAffinity(%d): %v", other, got)
			}
			checkTaskOn(t, p, other)
		}
		p.Close()
	}
	p := newPool(t, workers.Config{WorkerThreads: 1})
	if err := p.SetWorkerAffinity(0, 1023); err == nil {
		t.Fatal("SetWorkerAffinity to a CPU this process may not use: no error")
	}
	if err := p.SetWorkerAffinity(3, 0); !errors.Is(err, workers.ErrNoSuchWorker) {
		t.Fatalf("worker 3: %v", err)
	}
	if _, err := workers.New(workers.Config{WorkerThreads: 1, CPUs: []int{1023}}); err == nil {
		t.Fatal("New pinned to an unusable CPU: no error")
	}
}

func checkTaskOn(t *testing.T, p *workers.Pool, cpu int) {
	t.Helper()
	type seen struct {
		mask []int
		cpu  int
	}
	ch := make(chan seen, 1)
	p.Spawn(func() {
		var set unix.CPUSet
		unix.SchedGetaffinity(0, &set)
		var mask []int
		for c := range 1024 {
			if set.IsSet(c) {
				mask = append(mask, c)
			}
		}
		c, _ := numa.CurrentCPU()
		ch <- seen{mask, c}
	})
	s := <-ch
	if !slices.Equal(s.mask, []int{cpu}) || s.cpu != cpu {
		t.Fatalf("task on worker pinned to %d: mask %v, ran on %d", cpu, s.mask, s.cpu)
	}
}

// TestNUMAPlacement: numa_aware places workers on the node's CPUs.
func TestNUMAPlacement(t *testing.T) {
	topo, err := numa.Load("/")
	if err != nil {
		t.Skipf("no NUMA topology: %v", err)
	}
	node := topo.NodeIDs()[0]
	n, _ := topo.Node(node)
	p := newPool(t, workers.Config{NUMAAware: true, NUMANode: node, Topology: topo})
	for i := range p.Workers() {
		got, _ := p.WorkerAffinity(i)
		if len(got) != 1 || !slices.Contains(n.CPUs, got[0]) {
			t.Fatalf("worker %d on %v, node %d has %v", i, got, node, n.CPUs)
		}
	}
	if _, err := workers.New(workers.Config{NUMAAware: true, NUMANode: 999, Topology: topo}); err == nil {
		t.Fatal("node 999: no error")
	}
}

func TestPanicCountedWorkerSurvives(t *testing.T) {
	p := newPool(t, workers.Config{WorkerThreads: 1})
	p.Spawn(func() { panic("boom") })
	done := make(chan struct{})
	p.Spawn(func() { close(done) })
	<-done
	if st := p.Stats(); st.Panics != 1 {
		t.Fatalf("panics %d", st.Panics)
	}
}

func TestCloseDrains(t *testing.T) {
	p, _ := workers.New(workers.Config{WorkerThreads: 1, TargetLatency: 50 * time.Microsecond})
	if p.SpinBudget() != 50*time.Microsecond {
		t.Fatalf("spin budget %v", p.SpinBudget())
	}
	var n int
	var mu sync.Mutex
	for range 100 {
		p.Spawn(func() { mu.Lock(); n++; mu.Unlock() })
	}
	p.Close()
	if n != 100 {
		t.Fatalf("ran %d of 100 queued before Close returned", n)
	}
	if err := p.Spawn(func() {}); !errors.Is(err, workers.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestSpinBudget(t *testing.T) {
	for _, c := range []struct{ in, want time.Duration }{{0, 0}, {5 * time.Microsecond, 5 * time.Microsecond}, {999 * time.Microsecond, 999 * time.Microsecond}, {time.Millisecond, 0}, {time.Second, 0}} {
		if got := workers.SpinBudget(c.in); got != c.want {
			t.Errorf("SpinBudget(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// Package workers is Kaelix's pinned task runtime: a fixed pool of worker
// goroutines, each locked to its own OS thread for life and pinned to a CPU
// (sched_setaffinity), NUMA-aware when asked (workers on the CPUs of the
// node a topic's rings are bound to), taking tasks from PriorityLevels
// queues of TaskQueueDepth each. Processor pipelines run their steps on it
// (processor.Pipeline.RunOn).
//
//	p, err := workers.New(workers.Config{WorkerThreads: 2, CPUs: []int{2, 3}, PriorityLevels: 3})
//	err = p.SpawnWithPriority(2, task) // ErrPoolExhausted ("Worker pool exhausted") if that level is full
//	err = p.SetWorkerAffinity(0, 4)
//	cpus, err := p.WorkerAffinity(0)
//	p.Close()
//
// # Scheduling
//
// Weighted round robin: level p (0 lowest) weighs 2^p; within each cycle
// the highest level with a task and credit goes first, and a backlogged
// level is served within a bounded number of picks, so higher priorities
// are served first without starving lower ones (sched.go states the bound;
// TestSchedProperties checks it, FIFO order and depth with random
// operations, TestSchedShares the exact shares).
//
// # Waiting
//
// Spawn never blocks: a full level returns ErrPoolExhausted at once. An
// idle worker spins for SpinBudget(TargetLatency) and then parks on a
// condition variable; Spawn wakes one parked worker. Spawning takes the
// pool's mutex: the pool schedules work units (a batch of records), not
// single records, whose path stays lock-free in the rings.
package workers

//go:build linux

package numa

import (
	"fmt"
	"runtime"
	"slices"

	"golang.org/x/sys/unix"
)

// maxPinCPU bounds the CPU ids PinThread accepts: unix.CPUSet is the glibc
// cpu_set_t of 1024 bits.
const maxPinCPU = 1024

// PinThread locks the calling goroutine to its OS thread
// (runtime.LockOSThread) and restricts that thread to cpus
// (sched_setaffinity(2) with pid 0). On return the thread already runs on
// one of cpus: the kernel migrates it before the call returns.
//
// restore undoes both: it puts back the thread's previous affinity mask,
// then calls runtime.UnlockOSThread. Call it exactly once, from the same
// goroutine, typically with defer; a second call does nothing, a call from
// another goroutine panics (it would change the wrong thread). If the old
// mask cannot be put back, restore leaves the goroutine locked, so the
// runtime retires the mis-pinned thread when the goroutine exits instead of
// reusing it. Pins nest: LockOSThread is counted.
//
// Threads the calling goroutine starts later (new goroutines) are not
// pinned; Go schedules them on any thread.
//
// Errors: ErrNoCPUs for no cpus; an error matching ErrNoSuchCPU for a
// negative id or one of 1024 and above; a *SyscallError wrapping EINVAL when
// none of cpus is online and allowed by this process's cpuset (see
// /proc/self/status Cpus_allowed_list). On error the thread is unlocked and
// its affinity unchanged.
func PinThread(cpus ...int) (restore func(), err error) {
	if len(cpus) == 0 {
		return nil, fmt.Errorf("numa: pin: %w", ErrNoCPUs)
	}
	var set unix.CPUSet
	for _, c := range cpus {
		if c < 0 || c >= maxPinCPU {
			return nil, fmt.Errorf("numa: pin: cpu %d: %w (ids 0-%d only)", c, ErrNoSuchCPU, maxPinCPU-1)
		}
		set.Set(c)
	}

	runtime.LockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		return nil, &SyscallError{Syscall: "sched_getaffinity", Err: err}
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return nil, &SyscallError{Syscall: "sched_setaffinity", Detail: "cpus " + FormatCPUList(slices.Sorted(slices.Values(cpus))), Err: err}
	}
	tid := unix.Gettid()
	done := false
	return func() {
		if done {
			return
		}
		if t := unix.Gettid(); t != tid {
			panic(fmt.Sprintf("numa: PinThread restore called on thread %d, pinned thread is %d (call it from the pinning goroutine)", t, tid))
		}
		done = true
		if err := unix.SchedSetaffinity(0, &old); err != nil {
			return // keep the thread locked: see the doc comment
		}
		runtime.UnlockOSThread()
	}, nil
}

// CurrentCPU returns the CPU the calling thread is running on (getcpu(2)).
// Unless the thread is pinned (PinThread) the answer may be stale by the
// time it is used: the scheduler may move the thread, and Go may move the
// goroutine to another thread. Errors: a *SyscallError (getcpu).
func CurrentCPU() (int, error) {
	cpu, _, err := getcpu()
	if err != nil {
		return -1, &SyscallError{Syscall: "getcpu", Err: err}
	}
	return cpu, nil
}

// NodeOfCaller returns the node of t holding the CPU the calling thread
// runs on (CurrentCPU, then t.NodeOfCPU); the same staleness caveat
// applies. Errors: those of CurrentCPU, or a *CPUError when t does not hold
// the CPU (t is stale or from another host).
func NodeOfCaller(t *Topology) (int, error) {
	cpu, err := CurrentCPU()
	if err != nil {
		return -1, err
	}
	return t.NodeOfCPU(cpu)
}

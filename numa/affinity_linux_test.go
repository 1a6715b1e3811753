//go:build linux

package numa

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// allowedCPUs returns the CPUs this thread may run on.
func allowedCPUs(t *testing.T) unix.CPUSet {
	t.Helper()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatalf("sched_getaffinity: %v", err)
	}
	return set
}

func TestPinThreadCPU0(t *testing.T) {
	runtime.LockOSThread() // keep one thread so the restored mask can be checked
	defer runtime.UnlockOSThread()
	before := allowedCPUs(t)
	if !before.IsSet(0) {
		t.Skipf("CPU 0 is not in this process's affinity mask (cpuset?): cannot pin to it")
	}
	restore, err := PinThread(0)
	if err != nil {
		t.Fatalf("PinThread(0): %v", err)
	}
	for range 100 {
		if cpu, err := CurrentCPU(); err != nil || cpu != 0 {
			restore()
			t.Fatalf("CurrentCPU() = %d, %v after PinThread(0); want 0", cpu, err)
		}
		runtime.Gosched() // the goroutine must stay on the pinned thread
	}
	if got := allowedCPUs(t); got.Count() != 1 || !got.IsSet(0) {
		t.Errorf("affinity while pinned has %d CPUs; want only CPU 0", got.Count())
	}
	restore()
	restore() // second call: no-op
	if after := allowedCPUs(t); after != before {
		t.Errorf("restore did not put back the affinity mask: %d CPUs, had %d", after.Count(), before.Count())
	}
}

// TestPinThreadEveryCPU pins to each CPU of the live topology in turn and
// checks CurrentCPU and NodeOfCaller agree with the topology.
func TestPinThreadEveryCPU(t *testing.T) {
	topo, err := Load("/")
	if err != nil {
		t.Skipf("cannot load the live topology: %v", err)
	}
	allowed := allowedCPUs(t)
	for _, n := range topo.Nodes {
		for _, cpu := range n.CPUs {
			if !allowed.IsSet(cpu) {
				continue // outside our cpuset
			}
			func() {
				restore, err := PinThread(cpu)
				if err != nil {
					t.Fatalf("PinThread(%d): %v", cpu, err)
				}
				defer restore()
				if got, err := CurrentCPU(); err != nil || got != cpu {
					t.Errorf("CurrentCPU() = %d, %v; want %d", got, err, cpu)
				}
				if got, err := NodeOfCaller(topo); err != nil || got != n.ID {
					t.Errorf("NodeOfCaller on cpu %d = %d, %v; want node %d", cpu, got, err, n.ID)
				}
			}()
		}
	}
}

func TestPinThreadErrors(t *testing.T) {
	if _, err := PinThread(); !errors.Is(err, ErrNoCPUs) {
		t.Errorf("PinThread() = %v; want ErrNoCPUs", err)
	}
	for _, cpu := range []int{-1, 1024} {
		if _, err := PinThread(cpu); !errors.Is(err, ErrNoSuchCPU) {
			t.Errorf("PinThread(%d) = %v; want ErrNoSuchCPU", cpu, err)
		}
	}
	// A CPU this process may not use (the highest id the mask holds, if
	// unusable): the kernel refuses with EINVAL.
	allowed := allowedCPUs(t)
	if allowed.IsSet(1023) {
		t.Skip("CPU 1023 is usable here: no unusable CPU to test EINVAL with")
	}
	_, err := PinThread(1023)
	var se *SyscallError
	if !errors.As(err, &se) || !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "sched_setaffinity (cpus 1023)") {
		t.Errorf("PinThread(1023) = %v; want *SyscallError sched_setaffinity EINVAL", err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if after := allowedCPUs(t); after != allowed {
		t.Errorf("failed PinThread changed the affinity mask")
	}
}

func TestPinThreadRestoreWrongGoroutine(t *testing.T) {
	restore, err := PinThread(allowedList(t)...)
	if err != nil {
		t.Fatalf("PinThread: %v", err)
	}
	defer restore()
	panicked := make(chan any)
	go func() {
		runtime.LockOSThread() // make sure this goroutine is on another thread
		defer runtime.UnlockOSThread()
		defer func() { panicked <- recover() }()
		restore()
	}()
	if p := <-panicked; p == nil || !strings.Contains(p.(string), "pinning goroutine") {
		t.Errorf("restore from another goroutine: recover() = %v; want a panic", p)
	}
}

func allowedList(t *testing.T) []int {
	set := allowedCPUs(t)
	var cpus []int
	for c := range maxPinCPU {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

func TestNodeOfCallerStaleTopology(t *testing.T) {
	topo := &Topology{Nodes: []Node{{ID: 0, CPUs: []int{}}}}
	if _, err := NodeOfCaller(topo); !errors.Is(err, ErrNoSuchCPU) {
		t.Errorf("NodeOfCaller(empty topology) = %v; want ErrNoSuchCPU", err)
	}
}

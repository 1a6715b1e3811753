package ringbuf

import (
	"os"
	"sync"
	"sync/atomic"
	"time"
	_ "unsafe" // for go:linkname

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/internal/proc"
)

// Process identity for slot ownership: a pid plus the process's start time
// in clock ticks since boot (field 22 of /proc/PID/stat), so that a reused
// pid is not mistaken for the slot's dead owner.

var self struct {
	once  sync.Once
	pid   uint32
	start uint64
}

func selfIdentity() (uint32, uint64) {
	self.once.Do(func() {
		self.pid = uint32(os.Getpid())
		self.start, _, _ = procStart(int(self.pid))
	})
	return self.pid, self.start
}

// procStart returns a process's start time and whether it is running (not
// a zombie). ok is false if the process does not exist.
func procStart(pid int) (start uint64, running bool, ok bool) {
	st, err := proc.ReadStat("", pid)
	if err != nil {
		return 0, false, false
	}
	return st.StartTicks, st.Running(), true
}

// ProcessStart returns a process's start time as slots record it (clock
// ticks since boot, field 22 of /proc/PID/stat), for
// Ring.ReserveSubscriberSlot. ok is false if the process does not exist
// or is a zombie.
func ProcessStart(pid int) (start uint64, ok bool) {
	s, running, exists := procStart(pid)
	return s, exists && running
}

// alive reports whether the process identified by pid and start time is
// still running. A zombie counts as dead: it can never write again.
func alive(pid uint32, start uint64) bool {
	if pid == 0 {
		return false
	}
	if me, myStart := selfIdentity(); pid == me && start == myStart {
		return true
	}
	s, running, ok := procStart(int(pid))
	return ok && running && s == start
}

//go:linkname nanotime runtime.nanotime
func nanotime() int64

// MonotonicNS returns CLOCK_MONOTONIC in nanoseconds, the clock of record
// timestamps; it is comparable across processes on one host.
func MonotonicNS() int64 { return nanotime() }

const (
	futexWait = 0 // FUTEX_WAIT without FUTEX_PRIVATE_FLAG: the word is shared
	futexWake = 1
)

// futexSleep waits while *addr == val, for at most d. Spurious returns are
// fine: callers re-check their condition.
func futexSleep(addr *uint32, val uint32, d time.Duration, ts *unix.Timespec) {
	*ts = unix.NsecToTimespec(int64(d))
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafePointer(addr)), futexWait, uintptr(val), uintptr(unsafePointer(ts)), 0, 0)
}

// futex_waitv(2) (Linux 5.16+): one sleep on up to futexWaitvMax futex
// words at once, which lets a consumer of several rings sleep on all their
// data doorbells (WaitSet). The syscall number is the same on amd64 and
// arm64 (the generic table).
const (
	sysFutexWaitv = 449
	futex2SizeU32 = 0x02 // FUTEX2_SIZE_U32, without FUTEX2_PRIVATE: the words are shared
	futexWaitvMax = 128  // FUTEX_WAITV_MAX
)

// futexWaiter is the kernel's struct futex_waitv (24 bytes).
type futexWaiter struct {
	val   uint64 // sleep only while the word holds this value
	uaddr uint64 // address of the 32-bit word
	flags uint32 // futex2SizeU32
	_     uint32 // reserved, 0
}

// waitvMissing is set once futex_waitv returned ENOSYS (a kernel older
// than 5.16): WaitSet then takes turns sleeping on one doorbell at a time.
var waitvMissing atomic.Bool

// futexWaitv waits while every word w[i].uaddr holds w[i].val, until
// deadlineNS (absolute CLOCK_MONOTONIC ns, the clock of nanotime). It
// returns false if the kernel has no futex_waitv. Spurious returns are
// fine: callers re-check their condition.
func futexWaitv(w []futexWaiter, deadlineNS int64, ts *unix.Timespec) bool {
	if waitvMissing.Load() {
		return false
	}
	*ts = unix.NsecToTimespec(deadlineNS)
	_, _, errno := unix.Syscall6(sysFutexWaitv, uintptr(unsafePointer(&w[0])), uintptr(len(w)), 0,
		uintptr(unsafePointer(ts)), uintptr(unix.CLOCK_MONOTONIC), 0)
	if errno == unix.ENOSYS {
		waitvMissing.Store(true)
		return false
	}
	return true
}

// osYield gives this thread's CPU to another runnable thread, if any
// (sched_yield(2)); with none it returns at once. runtime.Gosched would
// only offer this goroutine's P to other goroutines of this process.
func osYield() { unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }

// futexWakeAll wakes every waiter on addr.
func futexWakeAll(addr *uint32) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafePointer(addr)), futexWake, uintptr(1<<31-1), 0, 0, 0)
}

// Asymmetric fences (membarrier(2), MEMBARRIER_CMD_GLOBAL_EXPEDITED).
//
// A committing publisher stores the record's state word and then loads the
// waiter count; a sleeping subscriber increments the waiter count and then
// re-checks the state word. Both orders must hold (a Dekker pair), which
// on x86 needs a full fence on each side, since a load may pass an earlier
// plain store. A fence per commit stalls the publisher on the record
// line's ownership, so the fence is moved to the rare side: processes that
// publish register for expedited global membarrier once, commit with a
// plain store, and a sleeper calls membarrier before its re-check, which
// makes every running registered thread execute a full barrier. As in
// liburcu and Folly's asymmetricHeavyBarrier. Where registration fails,
// publishers fall back to a fenced (sequentially consistent) commit.

const (
	membarrierGlobalExpedited         = 1 << 1
	membarrierRegisterGlobalExpedited = 1 << 2
)

var registerFence struct {
	once sync.Once
	ok   bool
}

// lightFenceOK registers this process as a target of expedited global
// membarriers and reports whether publishers here may commit with plain
// stores.
func lightFenceOK() bool {
	registerFence.once.Do(func() {
		_, _, errno := unix.Syscall(unix.SYS_MEMBARRIER, membarrierRegisterGlobalExpedited, 0, 0)
		registerFence.ok = errno == 0
	})
	return registerFence.ok
}

// heavyFence makes every running thread of every registered process
// execute a full memory barrier. A sleeper calls it between announcing
// itself and re-checking the ring. An error (no membarrier) is harmless:
// publishers that could not register commit with a fenced store.
func heavyFence() {
	unix.Syscall(unix.SYS_MEMBARRIER, membarrierGlobalExpedited, 0, 0)
}

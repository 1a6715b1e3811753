package ringbuf

import (
	"bytes"
	"os"
	"strconv"
	"time"

	"github.com/kaelix-io/kaelix/internal/proc"
)

// A publisher relaunched right after kill -9 of its predecessor races the
// predecessor's exit: the kernel has delivered SIGKILL, but until it has
// unmapped the dying process's memory and closed its files the process
// still runs (in the kernel), /proc shows it alive, and its slot cannot be
// reaped: a slot is taken from a process only once it can never write
// again, that is once it is a zombie or gone. On SPSC rings (one publisher
// slot) NewPublisher then found no free slot about once in ten races.
//
// So NewPublisher, finding every slot held, waits for holders that are
// exiting and scans again, for at most ExitWait.

// ExitWait bounds how long NewPublisher waits for a dying holder of a
// publisher slot before it returns ErrNoSlot: the liveness bound of a
// killed process. Once SIGKILL is delivered the kernel tears the process
// down without running any more of its code, in time that grows with its
// memory: measured on a 2-CPU VM, 0.1 ms for a small process and 100-360
// ms for processes of 0.5-2 GB. 2 s covers processes of several GB on a
// loaded host; a holder that is not exiting ends the wait after
// exitGrace, so a slot held by a live publisher is refused after 250 ms.
const ExitWait = 2 * time.Second

// exitGrace is how long NewPublisher scans again even when no holder shows
// as exiting yet: between the kill and the dying thread marking itself
// exiting there is a window in which /proc shows neither the pending
// SIGKILL nor the exit. It is short on an idle host, but a dying thread
// preempted inside it on a loaded one (seen: past 20 ms under -race on
// 2 busy CPUs) keeps it open for a scheduling slice or more, so the grace
// is a quarter of a second: a slot held by a live publisher is refused
// after that long.
const exitGrace = 250 * time.Millisecond

// waitForExitingPublisher is called when NewPublisher found every
// publisher slot held. It reports whether to scan again, after sleeping a
// millisecond: the bound (ExitWait from *first, the time of the first
// call) has not passed, and the grace period has not passed or some holder
// is exiting or already dead (its slot is reaped on the next scan).
func (r *Ring) waitForExitingPublisher(first *int64) bool {
	now := nanotime()
	if *first == 0 {
		*first = now
	}
	if now-*first >= int64(ExitWait) {
		return false
	}
	dying := now-*first < int64(exitGrace)
	for i := 0; i < r.maxPublishers && !dying; i++ {
		off := r.publisherSlotOffset(i)
		if r.m.u32(off+pubStateOffset).Load() != slotActive {
			continue
		}
		pid, start := r.m.u32(off+pubPIDOffset).Load(), r.m.u64(off+pubStartOffset).Load()
		dying = !alive(pid, start) || exiting(int(pid))
	}
	if dying {
		time.Sleep(time.Millisecond)
	}
	return dying
}

// exiting reports whether process pid is being torn down: its main
// thread is exiting (PF_EXITING in /proc/PID/stat's flags) or has SIGKILL
// pending (/proc/PID/status SigPnd or ShdPnd). Such a process never runs
// its own code again.
func exiting(pid int) bool {
	s, err := proc.ReadStat("", pid)
	if err != nil {
		return false
	}
	if s.Flags&proc.PFExiting != 0 {
		return true
	}
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	const sigkill = 1 << (9 - 1)
	for _, key := range []string{"\nSigPnd:", "\nShdPnd:"} {
		i := bytes.Index(st, []byte(key))
		if i < 0 {
			continue
		}
		v := st[i+len(key):]
		if j := bytes.IndexByte(v, '\n'); j >= 0 {
			v = v[:j]
		}
		if m, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 64); err == nil && m&sigkill != 0 {
			return true
		}
	}
	return false
}

// ProcessExiting reports whether process pid is being torn down (see
// ExitWait): it will be a zombie, and its slots free to reap, within the
// time the kernel takes to unmap its memory. The daemon uses it to wait
// for such a process rather than refuse a subscriber slot it still holds.
func ProcessExiting(pid int) bool { return exiting(pid) }

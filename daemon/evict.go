package daemon

import (
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/daemon/wire"
)

// Eviction of stopped subscribers (daemon.evict_stalled_after).
//
// Under block and reject a subscriber that stops reading holds every
// publisher back once the ring fills. A dead one is reaped at once (its
// pidfd fires); a stopped one (SIGSTOP, a debugger: /proc state T or t)
// is alive and is waited for, by default for as long as it stays stopped.
// With evict_stalled_after set, a subscriber process that stays stopped
// that long while a block or reject ring it reads is at least half full is
// evicted: the daemon sends it SIGKILL through its pidfd (which names that
// process and no other, whatever happens to pid numbers), and the usual
// death path frees its slots and releases the publishers.
//
// Why a kill and not a quieter detach: a subscriber reads records in
// place, and its cursor lives in its own slot of the ring, which it writes
// when it resumes. Freeing the slot of a live process would let
// publishers overwrite the record it is reading, and its next cursor store
// could land in a slot another subscriber took meanwhile. Until the ring
// has an eviction handshake (a slot state the subscriber re-checks after
// each read), the only eviction that cannot hurt the others is ending the
// process. Only stopped processes are evicted, never a running slow one.

// evictStalled runs from the sweep. It evicts the subscribers that have
// been stopped for longer than the configured time.
func (d *Daemon) evictStalled(now time.Time) {
	after := d.cur.Load().cfg.Daemon.EvictStalledAfter
	if after <= 0 {
		return
	}
	var victims []*peer
	d.mu.Lock()
	for _, p := range d.peers {
		if p.exited || !d.readsHeldRing(p) {
			p.stoppedSince = time.Time{}
			continue
		}
		if !procStopped(d.shm.ProcRoot, p.pid) {
			p.stoppedSince = time.Time{}
			continue
		}
		if p.stoppedSince.IsZero() {
			p.stoppedSince = now
			continue
		}
		if now.Sub(p.stoppedSince) >= after {
			victims = append(victims, p)
		}
	}
	d.mu.Unlock()
	for _, p := range victims {
		if err := d.w.signal(p, unix.SIGKILL); err != nil {
			d.log.Warn("cannot evict stopped subscriber", "client", p.id, "pid", p.pid, "err", err)
			continue
		}
		d.evictions.Add(1)
		d.m.evictions.Inc()
		d.log.Warn("subscriber evicted: stopped while holding publishers back (daemon.evict_stalled_after)",
			"client", p.id, "pid", p.pid, "name", p.name, "stopped_for", now.Sub(p.stoppedSince).Round(time.Millisecond), "evict_stalled_after", after)
	}
}

// readsHeldRing reports whether p subscribes to a block or reject topic
// one of whose partitions is at least half full. d.mu held.
func (d *Daemon) readsHeldRing(p *peer) bool {
	for _, a := range p.attachments {
		if a.role != wire.RoleSubscriber || a.topic.spec.Policy == wire.PolicyDropOldest {
			continue
		}
		for _, part := range a.topic.parts {
			held := false
			d.withRing(part, func() { held = part.ring.Counters().SlowestLag*2 >= part.ring.CapacityBytes() })
			if held {
				return true
			}
		}
	}
	return false
}

// procStopped reports whether /proc says pid is stopped (T) or traced (t).
func procStopped(procRoot string, pid int) bool {
	b, err := os.ReadFile(procRoot + "/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == ')' {
			return i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't')
		}
	}
	return false
}

// signal sends sig to p through its pidfd (never by pid number).
func (w *watcher) signal(p *peer, sig unix.Signal) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p.pidfd < 0 {
		return &OpError{Op: "pidfd_send_signal", Path: "pid " + itoa(p.pid), Err: unix.ESRCH}
	}
	if err := unix.PidfdSendSignal(p.pidfd, sig, nil, 0); err != nil {
		return &OpError{Op: "pidfd_send_signal", Path: "pid " + itoa(p.pid), Err: err}
	}
	return nil
}

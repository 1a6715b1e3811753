package daemon

import (
	"encoding/binary"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// watcher turns client process deaths into callbacks within microseconds:
// one pidfd (pidfd_open) per client connection, all in one epoll set, and
// one goroutine blocked in epoll_wait. An eventfd in the set wakes it to
// stop.
//
// Invariants: a pidfd is in byFD exactly while it is in the epoll set; the
// watcher goroutine alone closes a pidfd after the set lost it, except
// remove, which deletes and closes under mu.
//
// An event names its pidfd by number, and numbers are reused: epoll_wait
// may return a dead client's event, then (before run looks it up) remove
// closes that pidfd and add gives the same number to a new, live client.
// Looked up by number alone, the stale event made the live client look
// dead, and peerExited freed the subscriber slots it had attached in the
// meantime under it (the 10-minute churn soak, 1 in 10,474 attaches). So
// each registration carries a token in the event's data beside the
// number, and an event whose token is not its pidfd's current one is
// dropped (take).
type watcher struct {
	epfd int
	evfd int

	mu      sync.Mutex        // guards byFD, seq and started
	byFD    map[int32]watched // pidfd -> its registration
	seq     int32             // the last token given (add)
	started bool              // run was called; stop waits for it only then
	done    chan struct{}     // closed when run returns
}

// watched is one registered pidfd: its peer and the token its events
// carry (EpollEvent.Pad).
type watched struct {
	p   *peer
	tok int32
}

func newWatcher() (*watcher, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, &OpError{Op: "epoll_create1", Err: err}
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, &OpError{Op: "eventfd", Err: err}
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, &OpError{Op: "epoll_ctl", Err: err}
	}
	return &watcher{epfd: epfd, evfd: evfd, byFD: map[int32]watched{}, done: make(chan struct{})}, nil
}

// add watches p.pid and stores the pidfd in p.pidfd.
func (w *watcher) add(p *peer) error {
	fd, err := unix.PidfdOpen(p.pid, 0)
	if err != nil {
		return &OpError{Op: "pidfd_open", Path: "pid " + itoa(p.pid), Err: err}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	if w.seq == 0 {
		w.seq = 1 // 0 is the eventfd's
	}
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd), Pad: w.seq}); err != nil {
		unix.Close(fd)
		return &OpError{Op: "epoll_ctl", Err: err}
	}
	p.pidfd = fd
	w.byFD[int32(fd)] = watched{p, w.seq}
	return nil
}

// remove stops watching p; a no-op if it is not watched.
func (w *watcher) remove(p *peer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p.pidfd < 0 || w.byFD[int32(p.pidfd)].p != p {
		return
	}
	delete(w.byFD, int32(p.pidfd))
	unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, p.pidfd, nil)
	unix.Close(p.pidfd)
	p.pidfd = -1
}

// run waits for deaths until stop; exited is called for each dead peer
// (already removed from the set) with the time its pidfd became readable.
// tick is called at least every tickEvery, for housekeeping.
// run is called at most once, before or without stop.
func (w *watcher) run(exited func(*peer, time.Time), tick func(), tickEvery time.Duration) {
	defer close(w.done)
	events := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(w.epfd, events, int(tickEvery/time.Millisecond))
		now := time.Now()
		if err != nil && err != unix.EINTR {
			return // only EBADF after close; nothing to recover
		}
		for _, ev := range events[:max(n, 0)] {
			if ev.Fd == int32(w.evfd) {
				return
			}
			if p := w.take(ev); p != nil {
				exited(p, now)
			}
		}
		tick()
	}
}

// take returns the peer whose death ev reports, and stops watching it; nil
// for a stale event: one whose pidfd was removed (remove) after
// epoll_wait returned it, its number perhaps given to another client's
// pidfd since, which is alive and must not be reported (see watcher).
func (w *watcher) take(ev unix.EpollEvent) *peer {
	w.mu.Lock()
	defer w.mu.Unlock()
	r, ok := w.byFD[ev.Fd]
	if !ok || r.tok != ev.Pad {
		return nil
	}
	delete(w.byFD, ev.Fd)
	unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, int(ev.Fd), nil)
	unix.Close(int(ev.Fd))
	r.p.pidfd = -1
	return r.p
}

// start runs run in a new goroutine; stop waits for it from then on.
func (w *watcher) start(exited func(*peer, time.Time), tick func(), tickEvery time.Duration) {
	w.mu.Lock()
	w.started = true
	w.mu.Unlock()
	go w.run(exited, tick, tickEvery)
}

// stop wakes run, waits for it if start was called, and releases the
// epoll set and every pidfd. A watcher that was never started (startup
// failed before serving) is released at once.
func (w *watcher) stop() {
	var one [8]byte
	binary.LittleEndian.PutUint64(one[:], 1)
	unix.Write(w.evfd, one[:])
	w.mu.Lock()
	started := w.started
	w.mu.Unlock()
	if started {
		<-w.done
	}
	w.mu.Lock()
	for fd, r := range w.byFD {
		unix.Close(int(fd))
		r.p.pidfd = -1
	}
	w.byFD = map[int32]watched{}
	w.mu.Unlock()
	unix.Close(w.epfd)
	unix.Close(w.evfd)
}

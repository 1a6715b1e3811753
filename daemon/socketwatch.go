package daemon

import (
	"errors"
	"io/fs"
	"os"
	"sync/atomic"
	"syscall"
)

// The control socket removed or replaced from outside. A Unix socket is
// reached by its path: once the file is removed (rm, a tmpfiles cleaner,
// a second daemon of an earlier version that took it for stale) or
// replaced by another socket, no new client reaches this daemon, though
// it runs and its clients already connected are served. Each sweep
// lstats the path and compares its device and inode with those of the
// socket this daemon bound; a mismatch is logged (once per change) and
// reported in health (rule socket, degraded, for as long as it lasts).
// The daemon does not bind the path again by itself: a replacement may
// be another daemon's. Restart it to serve the path again. On exit it
// removes the socket only if it is still the one it bound.

// sockWatch is the identity of the socket this daemon bound.
type sockWatch struct {
	path     string
	dev, ino uint64
	problem  atomic.Pointer[string] // what is wrong with the path now; nil: ours
}

// bound records the socket just bound at path.
func (s *sockWatch) bound(path string) {
	s.path = path
	if fi, err := os.Lstat(path); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			s.dev, s.ino = st.Dev, st.Ino
		}
	}
}

// ours reports whether path is still the socket bound, or else what it is.
func (s *sockWatch) ours() (bool, string) {
	fi, err := os.Lstat(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, "control socket " + s.path + " was removed from outside: new clients cannot connect to this daemon; restart it"
	case err != nil:
		return true, "" // cannot tell (EACCES on a parent): assume ours
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && (st.Dev != s.dev || st.Ino != s.ino) {
		return false, "control socket " + s.path + " was replaced from outside by another file: new clients do not reach this daemon; restart it"
	}
	return true, ""
}

// checkSocket is the sweep's look at the socket path.
func (d *Daemon) checkSocket() {
	s := &d.sock
	if s.path == "" {
		return
	}
	ok, msg := s.ours()
	old := s.problem.Load()
	switch {
	case !ok && (old == nil || *old != msg):
		s.problem.Store(&msg)
		d.log.Error("control socket removed or replaced from outside", "socket", s.path, "problem", msg)
	case ok && old != nil:
		s.problem.Store(nil)
		d.log.Info("control socket is this daemon's again", "socket", s.path)
	}
}

// removeSocket removes the socket this daemon bound, unless the path is
// another file by now.
func (d *Daemon) removeSocket() {
	if d.sock.path == "" {
		return
	}
	if ok, _ := d.sock.ours(); ok {
		os.Remove(d.sock.path)
	}
}

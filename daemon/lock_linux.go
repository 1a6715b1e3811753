package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// The daemon's single-instance locks are abstract Unix sockets: names in
// the network namespace, not files, bound and listening for the daemon's
// life and released by the kernel when it exits or dies. No one can
// delete them, as anyone could a lock file (after which a second daemon
// started, replaced the first one's live files, split the clients between
// two sets of rings, or took its control socket). Each is named after a
// canonical path (resolved through symlinks, so two spellings of one
// directory are one lock), hashed:
//
//	@kaelixd-state-<sha256>    the state directory (daemon.state_dir)
//	@kaelixd-regions-<sha256>  the region directory (shm.dir_name)
//	@kaelixd-socket-<sha256>   the control socket's path (daemon.socket_path)
//
// The identity locked is the path, not an inode: a directory deleted and
// made again is a new inode at the same path, and the daemon that owns
// the path must still be the only one to use it. (A flock on the
// directory itself would also clash with shm.Create's own flock of it.)
// Abstract sockets are per network namespace: daemons in different
// namespaces that share a directory are not stopped by them. A daemon
// refused a lock names the holder's pid, read with SO_PEERCRED on a
// connection to the lock socket (each lock accepts and closes such
// connections, so its backlog never fills).

// instanceLock is one held lock; Close releases it.
type instanceLock struct {
	ln   *net.UnixListener
	done chan struct{} // closed when the accept loop has ended
}

// errLockHeld: another process holds the lock.
var errLockHeld = errors.New("held by another process")

// takeLock binds the lock of kind ("state", "regions", "socket") for the
// canonical path canon. Errors: errLockHeld with the holder's pid (0 if
// unknown), or the bind error.
func takeLock(kind, canon string) (*instanceLock, int, error) {
	name := lockName(kind, canon)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
	if err != nil {
		if errors.Is(err, unix.EADDRINUSE) {
			return nil, lockHolder(name), errLockHeld
		}
		return nil, 0, err
	}
	l := &instanceLock{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				time.Sleep(50 * time.Millisecond) // EMFILE and the like: try again
				continue
			}
			c.Close() // a prober has read our pid already
		}
	}()
	return l, 0, nil
}

// Close releases the lock.
func (l *instanceLock) Close() error {
	err := l.ln.Close()
	<-l.done
	return err
}

// canonPath resolves p through symlinks; a path that cannot be resolved
// (it does not exist) is made absolute instead.
func canonPath(p string) (string, error) {
	if canon, err := filepath.EvalSymlinks(p); err == nil {
		return canon, nil
	}
	return filepath.Abs(p)
}

// lockRegionDir takes the one-daemon-per-region-directory lock. A daemon
// holding it already gives *AlreadyRunningError with SharedRegions and its
// pid.
func lockRegionDir(dir string) (*instanceLock, error) {
	canon, err := canonPath(dir)
	if err != nil {
		return nil, &OpError{Op: "resolve", Path: dir, Err: err}
	}
	l, pid, err := takeLock("regions", canon)
	switch {
	case errors.Is(err, errLockHeld):
		return nil, &AlreadyRunningError{PID: pid, LockPath: dir, SharedRegions: true}
	case err != nil:
		return nil, &OpError{Op: "bind region directory lock", Path: dir, Err: err}
	}
	return l, nil
}

// lockStateDir takes the one-daemon-per-state-directory lock. A daemon
// holding it already gives *AlreadyRunningError with its pid (or, if
// unknown, the one pidFile names).
func lockStateDir(dir string, pidFile func() int) (*instanceLock, error) {
	canon, err := canonPath(dir)
	if err != nil {
		return nil, &OpError{Op: "resolve", Path: dir, Err: err}
	}
	l, pid, err := takeLock("state", canon)
	switch {
	case errors.Is(err, errLockHeld):
		if pid == 0 {
			pid = pidFile()
		}
		return nil, &AlreadyRunningError{PID: pid, LockPath: dir}
	case err != nil:
		return nil, &OpError{Op: "bind state directory lock", Path: dir, Err: err}
	}
	return l, nil
}

// lockSocketPath takes the one-daemon-per-control-socket lock, on the
// socket's path with its directory resolved (the socket itself may not
// exist yet). A daemon holding it already gives *AlreadyRunningError with
// SharedSocket and its pid.
func lockSocketPath(path string) (*instanceLock, error) {
	dir, err := canonPath(filepath.Dir(path))
	if err != nil {
		return nil, &OpError{Op: "resolve", Path: path, Err: err}
	}
	l, pid, err := takeLock("socket", filepath.Join(dir, filepath.Base(path)))
	switch {
	case errors.Is(err, errLockHeld):
		return nil, &AlreadyRunningError{PID: pid, LockPath: path, SharedSocket: true}
	case err != nil:
		return nil, &OpError{Op: "bind control socket lock", Path: path, Err: err}
	}
	return l, nil
}

// lockName is the abstract socket name ("@" + ...) of kind for a
// canonical path.
func lockName(kind, canon string) string {
	sum := sha256.Sum256([]byte(canon))
	return "@kaelixd-" + kind + "-" + hex.EncodeToString(sum[:])
}

// lockHolder returns the pid of the process listening on the abstract
// socket name, or 0.
func lockHolder(name string) int {
	pid, _, _ := peerPID(&unix.SockaddrUnix{Name: name})
	return pid
}

// peerPID connects (without blocking) to the Unix socket at addr and
// returns the listener's pid (SO_PEERCRED; 0 if unknown) and whether
// something listens there: a full backlog (EAGAIN) is a live listener
// with pid 0. A refused connection (nobody listens: a stale socket file)
// gives false and a nil error; any other failure is returned.
func peerPID(addr *unix.SockaddrUnix) (int, bool, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return 0, false, err
	}
	defer unix.Close(fd)
	switch err := unix.Connect(fd, addr); {
	case errors.Is(err, unix.EAGAIN):
		return 0, true, nil
	case errors.Is(err, unix.ECONNREFUSED), errors.Is(err, unix.ENOENT):
		return 0, false, nil
	case err != nil:
		return 0, false, err
	}
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return 0, true, nil
	}
	return int(cred.Pid), true, nil
}

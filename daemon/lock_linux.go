package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockRegionDir takes the one-daemon-per-region-directory lock: an
// abstract Unix socket (a name in the network namespace, not a file)
// named after dir's canonical path, bound and listening for the daemon's
// life and released by the kernel when it exits or dies. No one can
// delete it, as anyone could the lock file earlier versions flocked in
// the directory, after which a second daemon started and replaced the
// first one's live files. The identity locked is the path, not the
// directory's inode: a directory deleted and made again is a new inode
// at the same path, and the daemon that owns the path must still be the
// only one to use it. (A flock on the directory itself would also clash
// with shm.Create's own flock of it.) The path is resolved through
// symlinks, so two spellings of one directory are one lock. Abstract
// sockets are per network namespace: daemons in different namespaces that
// share a region directory are not stopped by it.
//
// The returned file holds the socket; closing it releases the lock. A
// daemon holding it already gives *AlreadyRunningError with SharedRegions
// and its pid (read with SO_PEERCRED).
func lockRegionDir(dir string) (*os.File, error) {
	canon, err := filepath.EvalSymlinks(dir)
	if err != nil {
		if canon, err = filepath.Abs(dir); err != nil {
			return nil, &OpError{Op: "resolve", Path: dir, Err: err}
		}
	}
	addr := &unix.SockaddrUnix{Name: regionLockName(canon)}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, &OpError{Op: "socket", Path: dir, Err: err}
	}
	if err := unix.Bind(fd, addr); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EADDRINUSE) {
			return nil, &AlreadyRunningError{PID: lockHolder(addr), LockPath: dir, SharedRegions: true}
		}
		return nil, &OpError{Op: "bind region directory lock", Path: dir, Err: err}
	}
	if err := unix.Listen(fd, 4); err != nil { // so that lockHolder can connect and read the pid
		unix.Close(fd)
		return nil, &OpError{Op: "listen region directory lock", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), "region-dir-lock:"+canon), nil
}

// regionLockName is the abstract socket name ("@" + ...) for a canonical
// region directory path.
func regionLockName(canon string) string {
	sum := sha256.Sum256([]byte(canon))
	return "@kaelixd-regions-" + hex.EncodeToString(sum[:])
}

// lockHolder returns the pid of the process listening on addr, or 0.
func lockHolder(addr *unix.SockaddrUnix) int {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return 0
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, addr); err != nil {
		return 0
	}
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return 0
	}
	return int(cred.Pid)
}

package daemon

import (
	"errors"
	"fmt"

	"github.com/kaelix-io/kaelix/wire"
)

var (
	// ErrConfig: a Config field is invalid; the message names it. Fatal.
	ErrConfig = errors.New("kaelixd: invalid configuration")

	// ErrAlreadyRunning: another daemon holds the state directory's, the
	// region directory's or the control socket's lock (lock_linux.go), or
	// answers on the control socket. Returned as an *AlreadyRunningError
	// naming its pid. Remedy: use that daemon, stop it, or give this one
	// another socket, state dir and region directory.
	ErrAlreadyRunning = errors.New("kaelixd: already running")

	// ErrStopped: Run was called twice.
	ErrStopped = errors.New("kaelixd: Run already called")

	// ErrNoConfigSource: Reload on a daemon whose Config has no Loader.
	// Remedy: give Config.Loader (kaelixd does, from --config).
	ErrNoConfigSource = errors.New("kaelixd: no configuration source to reload from")

	// ErrNotRunning: the operation needs Run to be serving.
	ErrNotRunning = errors.New("kaelixd: not running")
)

// errStopping: Run's context ended while a topic was being created.
var errStopping = &wire.Error{Code: wire.CodeShuttingDown, Message: "kaelixd is stopping"}

// AlreadyRunningError is ErrAlreadyRunning.
type AlreadyRunningError struct {
	PID      int    // the holder's (SO_PEERCRED, or the lock file's text); 0 if unknown
	LockPath string // the state directory, the region directory or the socket path
	// SharedRegions: another daemon (with another state dir) uses the
	// same region directory (shm.dir_name).
	SharedRegions bool
	// SharedSocket: another daemon (with another state dir) serves the
	// same control socket path (daemon.socket_path).
	SharedSocket bool
}

func (e *AlreadyRunningError) Error() string {
	if e.SharedRegions && e.PID != 0 {
		return fmt.Sprintf("another kaelixd uses the region directory %s (pid %d, with another state dir); give this one its own --shm-dir", e.LockPath, e.PID)
	}
	if e.SharedRegions {
		return fmt.Sprintf("another kaelixd uses the region directory %s (with another state dir); give this one its own --shm-dir", e.LockPath)
	}
	if e.SharedSocket {
		pid := ""
		if e.PID != 0 {
			pid = fmt.Sprintf(" (pid %d)", e.PID)
		}
		return fmt.Sprintf("kaelixd already running: another kaelixd%s serves the control socket %s; use it, stop it, or give this one another --socket", pid, e.LockPath)
	}
	if e.PID == 0 {
		return fmt.Sprintf("kaelixd already running (state directory %s is locked; pid unknown)", e.LockPath)
	}
	return fmt.Sprintf("kaelixd already running, pid %d (state directory %s is locked)", e.PID, e.LockPath)
}

// Unwrap makes errors.Is(err, ErrAlreadyRunning) hold.
func (e *AlreadyRunningError) Unwrap() error { return ErrAlreadyRunning }

// OpError is a failed system call or file operation, like net.OpError.
type OpError struct {
	Op   string
	Path string
	Err  error
}

func (e *OpError) Error() string { return "kaelixd: " + e.Op + " " + e.Path + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *OpError) Unwrap() error { return e.Err }

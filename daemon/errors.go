package daemon

import (
	"errors"
	"fmt"

	"github.com/kaelix-io/kaelix/wire"
)

var (
	// ErrConfig: a Config field is invalid; the message names it. Fatal.
	ErrConfig = errors.New("kaelixd: invalid configuration")

	// ErrAlreadyRunning: another daemon holds the state directory's lock.
	// Returned as an *AlreadyRunningError naming its pid. Remedy: use that
	// daemon, stop it, or give this one another socket and state dir.
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
	PID      int    // as written in the lock file; 0 if unreadable (message only)
	LockPath string // the lock file, or the region directory
	// SharedRegions: another daemon (with another state dir) uses the
	// same region directory (shm.dir_name).
	SharedRegions bool
}

func (e *AlreadyRunningError) Error() string {
	if e.SharedRegions && e.PID != 0 {
		return fmt.Sprintf("another kaelixd uses the region directory %s (pid %d, with another state dir); give this one its own --shm-dir", e.LockPath, e.PID)
	}
	if e.SharedRegions {
		return fmt.Sprintf("another kaelixd uses the region directory %s (with another state dir); give this one its own --shm-dir", e.LockPath)
	}
	return fmt.Sprintf("kaelixd already running, pid %d (lock %s held)", e.PID, e.LockPath)
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

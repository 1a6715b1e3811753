package client

import (
	"errors"
	"io/fs"
	"strings"

	"github.com/kaelix-io/kaelix/internal/proc"
)

// procCommState returns a process's name (comm) and its state as
// BlockedError reports it, from /proc/PID/stat.
func procCommState(pid int) (comm, state string) {
	s, err := proc.ReadStat("", pid)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", "gone"
	case err != nil:
		return "", "unknown"
	case s.Stopped():
		return s.Comm, "stopped"
	case !s.Running():
		return s.Comm, "zombie"
	case strings.IndexByte("RSDIWPK", s.State) >= 0:
		return s.Comm, "running"
	}
	return s.Comm, "unknown"
}

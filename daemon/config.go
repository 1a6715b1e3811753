package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kaelix-io/kaelix/daemon/wire"
	"github.com/kaelix-io/kaelix/numa"
	"github.com/kaelix-io/kaelix/shm"
)

// Config configures a Daemon. Start from Default(); the zero value is not
// valid. A Config is a plain value: copy it freely.
type Config struct {
	// SocketPath is the control socket. Default wire.DefaultSocketPath():
	// $XDG_RUNTIME_DIR/kaelix/kaelixd.sock, /run/kaelix/kaelixd.sock as
	// root. Its directory is created 0700 if missing.
	SocketPath string
	// StateDir holds the lock file (kaelixd.lock), the topic registry
	// (topics.json) and the heartbeat file. Default: the socket's
	// directory. Created 0700 if missing.
	StateDir string
	// SocketMode is the control socket's permission; default 0600 (only the
	// daemon's user may connect). Widen it (0660 plus a group) to serve
	// other users; topics' Mode and GID then govern what each may attach.
	SocketMode os.FileMode
	// Shm says where and how regions are made. Default shm.Default() with
	// DirName "kaelix" (root) or "kaelix-UID", and Bind/Locate wired to
	// package numa.
	Shm shm.Config
	// RemoveOnExit removes every topic's regions, the registry and the
	// heartbeat file when Run returns after a clean stop, leaving nothing
	// in the shm base directory (kaelixd --ephemeral; what `make run`
	// uses). Default false: regions and registry stay, and the next daemon
	// re-adopts them, so a restart loses no topic.
	RemoveOnExit bool
	// HeartbeatInterval is how often the heartbeat counter and timestamp
	// advance (in the heartbeat file and Status). Default 100ms.
	HeartbeatInterval time.Duration
	// SweepInterval is how often every ring is swept for slots of dead
	// processes (ReapDead), the backstop for deaths the pidfd watch cannot
	// see (clients attached before a daemon restart that never
	// reconnected). Default 1s.
	SweepInterval time.Duration
	// Logger receives the daemon's log. Nil means slog.Default().
	Logger *slog.Logger
	// OnPeerExit, if set, is called (on the watcher goroutine; keep it
	// short) each time a client process is seen dying, after its rings
	// were reaped. For monitoring and tests.
	OnPeerExit func(PeerExit)
}

// PeerExit reports one client process's death.
type PeerExit struct {
	ClientID uint64
	Name     string
	PID      int
	// ExitedAt is when the pidfd became readable; ReapedAt is when every
	// ring the client had attached was reaped (ReapDead).
	ExitedAt, ReapedAt time.Time
	// SlotsFreed is the total ReapDead returned over those rings.
	SlotsFreed int
}

// Default returns the default configuration for the calling user: no root
// and no huge pages needed (huge pages are used when available).
func Default() Config {
	uid := os.Geteuid()
	sock := wire.DefaultSocketPath()
	s := shm.Default()
	if uid != 0 {
		s.DirName = "kaelix-" + strconv.Itoa(uid)
	}
	s.Bind = numa.Bind
	s.Locate = locate
	return Config{
		SocketPath:        sock,
		StateDir:          filepath.Dir(sock),
		SocketMode:        0o600,
		Shm:               s,
		HeartbeatInterval: 100 * time.Millisecond,
		SweepInterval:     time.Second,
	}
}

// locate adapts numa.Locate to shm.Config.Locate.
func locate(b []byte) (int, error) {
	n, _, err := numa.Locate(b)
	return n, err
}

// Validate reports every invalid field at once, each naming its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrConfig, key, fmt.Sprintf(format, args...)))
	}
	if c.SocketPath == "" {
		bad("SocketPath", "empty")
	} else if len(c.SocketPath) > 107 {
		bad("SocketPath", "%q is %d bytes; a Unix socket path holds at most 107", c.SocketPath, len(c.SocketPath))
	}
	if c.StateDir == "" {
		bad("StateDir", "empty")
	}
	if c.SocketMode&^os.ModePerm != 0 {
		bad("SocketMode", "%v has bits beyond the permission bits", c.SocketMode)
	}
	if c.HeartbeatInterval <= 0 {
		bad("HeartbeatInterval", "%v is not positive", c.HeartbeatInterval)
	}
	if c.SweepInterval <= 0 {
		bad("SweepInterval", "%v is not positive", c.SweepInterval)
	}
	if err := c.Shm.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w: Shm: %w", ErrConfig, err))
	}
	return errors.Join(errs...)
}

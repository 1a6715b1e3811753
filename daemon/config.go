package daemon

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/kaelix-io/kaelix/daemon/config"
	"github.com/kaelix-io/kaelix/numa"
	"github.com/kaelix-io/kaelix/shm"
)

// Config configures a Daemon: the operator's settings (config.Config, the
// [daemon], [shm], [network], [runtime], [telemetry], [security] and
// [[topics]] sections, embedded) plus what only an embedding program can
// give (hooks, a logger, where reloads read from). Start from Default();
// the zero value is not valid. A Config is a plain value: copy it freely
// (config.Config's slices are shared by copies; see config.Config.Clone).
type Config struct {
	config.Config

	// RemoveOnExit removes every topic's regions, the registry and the
	// heartbeat file when Run returns after a clean stop, leaving nothing
	// in the shm base directory (kaelixd --ephemeral; what `make run`
	// uses). Default false: regions and registry stay, and the next daemon
	// re-adopts them, so a restart loses no topic.
	RemoveOnExit bool
	// Logger receives the daemon's log, filtered by
	// telemetry.logging.level (which a reload may change). Nil means a
	// logger built from [telemetry.logging] (target and format).
	Logger *slog.Logger
	// OnPeerExit, if set, is called (on the watcher goroutine; keep it
	// short) each time a client process is seen dying, after its rings
	// were reaped. For monitoring and tests.
	OnPeerExit func(PeerExit)

	// Loader is where Reload reads the configuration again (file, the
	// environment and flags kept from start, in their precedence). Nil:
	// Reload fails with ErrNoConfigSource.
	Loader *config.Loader
	// Loaded, if set, is the load Config came from: its Sources are shown
	// by ConfigView and its file digest lets the watcher skip no-op events.
	Loaded *config.Loaded
	// WatchFile reloads when Loader.Path changes (fsnotify on its
	// directory and, for a symlink, its target's directory, so editors'
	// rename-and-replace and symlink swaps are seen), debounced by
	// ReloadDebounce (default 200ms).
	WatchFile      bool
	ReloadDebounce time.Duration
	// HelloTimeout is how long a new connection may take to send hello
	// (default 5 s): the daemon closes one that has not by then, so that
	// connections that never speak do not hold daemon.max_clients places.
	HelloTimeout time.Duration
	// HostRoot is where sysfs and procfs are read for the NUMA metrics,
	// the hugepage health rule and the environment check: "" is the live
	// host; tests give a numa fixture tree.
	HostRoot string
}

// PeerExit reports one client process's death.
type PeerExit struct {
	ClientID uint64
	Name     string
	PID      int
	// ExitedAt is when the pidfd became readable; ReapedAt is when every
	// ring the client had attached was reaped (ReapDead).
	ExitedAt, ReapedAt time.Time
	// SlotsFreed is the total ReapDead returned over those rings: the
	// slots of every dead process on them, not only this one's.
	SlotsFreed int
	// Died says the process died holding ring slots (whoever freed them):
	// it counts in kaelix_peer_deaths_total. False after a clean exit.
	Died bool
}

// Default returns the default configuration for an embedded daemon:
// config.Default() (no root and no huge pages needed; huge pages are used
// when reserved) except that the HTTP listener takes a free loopback port
// (network.port 0; see Daemon.HTTPAddr) so that embedded daemons and tests
// never fight over 9090. kaelixd itself defaults to 127.0.0.1:9090.
func Default() Config {
	c := config.Default()
	c.Network.Port = 0
	return Config{Config: c}
}

// Validate reports every invalid field at once, each naming its key.
func (c Config) Validate() error {
	var errs config.Errors
	if err := c.Config.Validate(); err != nil {
		errs = append(errs, err.(config.Errors)...)
	}
	if c.ReloadDebounce < 0 {
		errs = append(errs, &config.FieldError{Key: "ReloadDebounce", Msg: fmt.Sprintf("%v is negative", c.ReloadDebounce)})
	}
	if c.HelloTimeout < 0 {
		errs = append(errs, &config.FieldError{Key: "HelloTimeout", Msg: fmt.Sprintf("%v is negative", c.HelloTimeout)})
	}
	if c.WatchFile && (c.Loader == nil || c.Loader.Path == "") {
		errs = append(errs, &config.FieldError{Key: "WatchFile", Msg: "set without a Loader with a Path"})
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrConfig, errs)
}

// shmConfig derives the shm package's configuration from the [shm]
// section, with Bind and Locate wired to package numa.
func shmConfig(c config.Config) shm.Config {
	s := shm.Default()
	s.DirName = c.Shm.DirName
	s.TmpfsRoot = c.Shm.BaseDir
	s.HugetlbfsRoot = c.Shm.HugetlbfsDir
	s.HugePages = c.Shm.HugePages
	s.HugePageSizeBytes = uint64(c.Shm.PageSize)
	s.Mode = os.FileMode(c.Shm.FileMode)
	s.GID, _ = config.LookupGroup(c.Shm.Group)
	s.Bind = numa.Bind
	s.Locate = locate
	return s
}

// locate adapts numa.Locate to shm.Config.Locate.
func locate(b []byte) (int, error) {
	n, _, err := numa.Locate(b)
	return n, err
}

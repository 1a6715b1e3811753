// Package testdaemon runs an embedded kaelixd (a daemon.Daemon in the test's
// own process) for tests, the way nats-server's test.RunServer does: on
// paths of its own (a socket and state directory under t.TempDir, a region
// directory name unique per process and per call), logging nowhere, and
// stopped when the test ends.
//
//	d := testdaemon.Start(t)                      // ephemeral, defaults
//	c, err := client.Connect(ctx, client.Options{SocketPath: d.SocketPath()})
//
// Start returns once the daemon listens on its socket (Ready), or fails the
// test with Run's error. The test's Cleanup stops it (cancels Run's
// context), waits for Run to return and reports a Run error with t.Error,
// then removes the region directory from /dev/shm and from every hugetlbfs
// mount (regions land there when huge pages are reserved).
//
// Tests that need more than one daemon on the same paths (a restart that
// re-adopts regions, a daemon in a child process, a second daemon refused
// by the first) make the paths first with NewDirs and hand them to Start
// with WithDirs, or call Daemon.Restart. Persistent keeps the regions and
// the registry when a daemon stops (no Config.RemoveOnExit), so that the
// next one re-adopts them.
//
// The package is for tests only (it takes a testing.TB); it lives under
// internal/ so it is not part of Kaelix's API. Every function must be
// called from the test's goroutine, as t.Fatal requires.
package testdaemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/shm"
)

// seq makes region directory names unique per call within a process; the
// pid makes them unique between the test binaries go test runs at once.
var seq atomic.Int64

// Dirs are the paths one daemon (or a succession of daemons) runs on.
// A Dirs is a plain value: copy it freely, pass it to a child process in
// environment variables.
type Dirs struct {
	// SocketPath is the control socket (daemon.socket_path).
	SocketPath string
	// StateDir holds the lock, registry and heartbeat (daemon.state_dir).
	StateDir string
	// ShmDirName is the region directory's name under /dev/shm and under
	// each hugetlbfs mount (shm.dir_name): "kaelix-td-<pid>-<n>".
	ShmDirName string
}

// NewDirs makes a socket path and a state directory in a fresh
// t.TempDir() and a region directory name no other call in any process
// uses, and registers a Cleanup that removes that region directory (with
// whatever a test left in it) from /dev/shm and from every hugetlbfs mount.
// Nothing is created in /dev/shm: the daemon makes the directory.
func NewDirs(t testing.TB) Dirs {
	t.Helper()
	dir := t.TempDir()
	d := Dirs{
		SocketPath: filepath.Join(dir, "kaelixd.sock"),
		StateDir:   dir,
		ShmDirName: fmt.Sprintf("kaelix-td-%d-%d", os.Getpid(), seq.Add(1)),
	}
	t.Cleanup(func() { RemoveRegions(d.ShmDirName) })
	return d
}

// ShmDir is the region directory on tmpfs: /dev/shm/ShmDirName.
func (d Dirs) ShmDir() string { return filepath.Join("/dev/shm", d.ShmDirName) }

// Config is daemon.Default() on these paths with a logger that discards
// everything. RemoveOnExit is false (the daemon.Default() value); Start
// sets it unless Persistent is given.
func (d Dirs) Config() daemon.Config {
	cfg := daemon.Default()
	cfg.Daemon.SocketPath = d.SocketPath
	cfg.Daemon.StateDir = d.StateDir
	cfg.Shm.DirName = d.ShmDirName
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

// RemoveRegions removes the region directory called name, with everything
// in it, from /dev/shm and from every hugetlbfs mount of this host. An
// empty name removes nothing. Errors are ignored (a directory that is not
// there stays not there).
func RemoveRegions(name string) {
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
		return // never a path: only a directory name under the mounts
	}
	roots, _ := shm.HugetlbfsMounts("/proc")
	for _, root := range append([]string{"/dev/shm"}, roots...) {
		os.RemoveAll(filepath.Join(root, name))
	}
}

// Option changes how Start makes a daemon.
type Option func(*options)

type options struct {
	dirs       *Dirs
	persistent bool
	mods       []func(*daemon.Config)
}

// WithDirs runs the daemon on dirs (from NewDirs) instead of fresh ones:
// for a daemon that re-adopts what an earlier one left, or that child
// processes find through the same paths. Cleanup of the region directory
// is NewDirs's.
func WithDirs(dirs Dirs) Option { return func(o *options) { o.dirs = &dirs } }

// Persistent leaves the regions, registry and heartbeat in place when the
// daemon stops (Config.RemoveOnExit false, kaelixd without --ephemeral),
// so a daemon started next on the same Dirs re-adopts them. The default
// is ephemeral: a stopped daemon removes what it made.
func Persistent() Option { return func(o *options) { o.persistent = true } }

// WithConfig has mod change the configuration after Start has filled in
// the paths, logger and RemoveOnExit and before daemon.New: a topic to
// declare, a sweep interval, a hook, or a whole other Config (one from a
// config.Loader, say). Several WithConfig apply in order; a nil mod is
// none. A mod that moves
// shm.dir_name makes Cleanup remove that directory too.
func WithConfig(mod func(*daemon.Config)) Option {
	return func(o *options) {
		if mod != nil {
			o.mods = append(o.mods, mod)
		}
	}
}

// Daemon is a running embedded daemon. The embedded *daemon.Daemon gives
// its methods (SocketPath, StateDir, HTTPAddr, Status, Health, Reload...).
type Daemon struct {
	*daemon.Daemon
	// Config is what the daemon was made from (after every WithConfig).
	Config daemon.Config

	t       testing.TB
	cancel  context.CancelFunc
	done    chan error
	stopped bool
	err     error
}

// Start makes the configuration (Dirs.Config() on NewDirs(t) or on
// WithDirs's, RemoveOnExit unless Persistent, then each WithConfig), runs
// daemon.New and Run, and returns once the daemon is Ready. daemon.New's
// error, or a Run that returns before Ready, fails the test (t.Fatal).
// Cleanup stops the daemon as Stop does.
func Start(t testing.TB, opts ...Option) *Daemon {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	dirs := o.dirs
	if dirs == nil {
		d := NewDirs(t)
		dirs = &d
	}
	cfg := dirs.Config()
	cfg.RemoveOnExit = !o.persistent
	for _, mod := range o.mods {
		mod(&cfg)
	}
	return StartConfig(t, cfg)
}

// StartConfig runs a daemon on cfg exactly as given (no paths made, no
// logger set), returning once it is Ready; see Start. Cleanup stops it and
// removes cfg.Shm.DirName's region directories.
func StartConfig(t testing.TB, cfg daemon.Config) *Daemon {
	t.Helper()
	t.Cleanup(func() { RemoveRegions(cfg.Shm.DirName) })
	dd, err := daemon.New(cfg)
	if err != nil {
		t.Fatalf("testdaemon: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Daemon{Daemon: dd, Config: cfg, t: t, cancel: cancel, done: make(chan error, 1)}
	go func() { d.done <- dd.Run(ctx) }()
	select {
	case <-dd.Ready():
	case err := <-d.done:
		cancel()
		d.stopped, d.err = true, err
		if err == nil {
			err = errors.New("daemon.Run returned before Ready")
		}
		t.Fatalf("testdaemon: daemon Run: %v", err)
	}
	t.Cleanup(func() { d.Stop() })
	return d
}

// Stop cancels Run's context, waits for Run to return and returns its
// error, which it also reports with t.Error. Later calls return the same
// error and report nothing. Cleanup calls Stop.
func (d *Daemon) Stop() error {
	if d.stopped {
		return d.err
	}
	d.stopped = true
	d.cancel()
	d.err = <-d.done
	if d.err != nil {
		d.t.Errorf("testdaemon: daemon Run: %v", d.err)
	}
	return d.err
}

// Restart stops d (as Stop) and starts a new daemon on d.Config, the
// same paths, returning it once Ready. With Persistent, the new daemon
// re-adopts the topics d left.
func (d *Daemon) Restart() *Daemon {
	d.t.Helper()
	d.Stop()
	return StartConfig(d.t, d.Config)
}

// ShmDir is the region directory on tmpfs: shm.base_dir/shm.dir_name.
func (d *Daemon) ShmDir() string {
	return filepath.Join(d.Config.Shm.BaseDir, d.Config.Shm.DirName)
}

// Dirs returns the daemon's paths, for a child process or a second daemon.
func (d *Daemon) Dirs() Dirs {
	return Dirs{SocketPath: d.Config.Daemon.SocketPath, StateDir: d.Config.StateDirOrDefault(), ShmDirName: d.Config.Shm.DirName}
}

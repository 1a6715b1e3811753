package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/daemon/config"
	"github.com/kaelix-io/kaelix/internal/version"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/stat"
	"github.com/kaelix-io/kaelix/wire"
)

// Daemon is kaelixd: the topic registry and the control socket. Make one
// with New and run it with Run; it is embeddable (tests and applications
// run it in-process). A Daemon runs once. Its methods are safe for
// concurrent use. Do not copy a Daemon.
//
// Lock order: reloadMu, then mu, then watcher.mu; subsMu is a leaf (never
// held while calling out). mu guards topics, creating, peers and every
// topic's attachment counts and partitions; it is never held while writing
// to a socket, nor while a topic's regions are made (creating.go).
// reloadMu serializes reloads and guards lastDigest.
type Daemon struct {
	cfg      Config // as given to New; the live part is in cur
	log      *slog.Logger
	level    slog.LevelVar // telemetry.logging.level; set by reloads
	shm      shm.Config    // derived from cfg.Shm at New (not live)
	stateDir string

	cur        atomic.Pointer[current] // effective configuration; replaced whole by reloads
	reloadMu   sync.Mutex
	lastDigest [32]byte // of the file at the last reload attempt
	lastReload atomic.Pointer[wire.ReloadStatus]
	errRate    errorRate  // the error_rate health rule (errrate.go)
	subsMu     sync.Mutex // guards subs, nextSub
	subs       map[int]func(ConfigChange)
	nextSub    int

	m           *metrics
	httpAddr    string // set by Run before ready closes
	metricsAddr string
	deathNS     atomic.Int64               // unix ns of the last client reclaimed after dying
	lastDeath   atomic.Pointer[PeerExit]   // that client
	allocFailNS atomic.Int64               // unix ns of the last region allocation failure
	allocFail   atomic.Pointer[string]     // its message
	running     atomic.Bool                // between Ready and the end of Run
	procs       atomic.Pointer[processors] // [[processors]] (processors.go); set by Run
	rebuilt     atomic.Pointer[string]     // set by adopt when the registry was rebuilt from the region headers (rebuild.go)

	// instance identifies this Daemon (random, non-zero): written into
	// the header of every region it creates (shm Header.Instance).
	instance uint64

	ready     chan struct{} // closed once the socket listens
	quit      chan struct{} // closed once Run's context ends (quitOnce)
	quitClose sync.Once
	started   atomic.Bool
	startAt   time.Time

	mu       sync.Mutex
	topics   map[string]*topic
	creating map[string]*creation // topics being created, outside mu (creating.go)
	// createHook is copied into each creation (SetCreateHook, tests only).
	createHook func(topic string, partition int)
	peers      map[uint64]*peer
	nextID     uint64 // client and attachment ids
	closing    bool   // Run is stopping: refuse new peers

	w       *watcher
	lockF   *os.File      // StateDir/kaelixd.lock, flocked (for earlier versions, and the pid); not the guarantee
	shmLock *instanceLock // one daemon per region directory (lock_linux.go)
	heartF  *os.File
	beats   atomic.Uint64
	beatNS  atomic.Int64
	deaths  atomic.Uint64
	lastDet atomic.Int64

	stateLock *instanceLock // one daemon per state directory
	sockLock  *instanceLock // one daemon per control socket path
	sock      sockWatch     // the control socket this daemon bound (socketwatch.go)

	evictions  atomic.Uint64 // subscriber processes evicted, either way (evict.go)
	evictKills atomic.Uint64 // of those, killed for doing it again
	ev         evictState    // the sweep's eviction bookkeeping; guarded by mu

	deathLog deathLedger // whose deaths deaths counted (deaths.go)
	loop     *loopStats  // the housekeeping loop's time (loop.go)
	links    linkState   // region files removed from outside (unlinked.go)
}

// New checks cfg and returns a Daemon ready to Run. It touches nothing on
// disk. Errors: ErrConfig, listing every bad field.
func New(cfg Config) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Config = cfg.Config.Clone()
	if cfg.ReloadDebounce == 0 {
		cfg.ReloadDebounce = 200 * time.Millisecond
	}
	if cfg.HelloTimeout == 0 {
		cfg.HelloTimeout = 5 * time.Second
	}
	d := &Daemon{
		cfg:      cfg,
		ready:    make(chan struct{}),
		quit:     make(chan struct{}),
		topics:   map[string]*topic{},
		peers:    map[uint64]*peer{},
		subs:     map[int]func(ConfigChange){},
		stateDir: cfg.StateDirOrDefault(),
		instance: newInstanceID(),
	}
	base, err := baseHandler(cfg)
	if err != nil {
		return nil, err
	}
	d.level.Set(parseLevel(cfg.Telemetry.Logging.Level))
	d.log = slog.New(&levelHandler{h: base, lv: &d.level}).With("component", "kaelixd")
	d.shm = shmConfig(cfg.Config)
	d.shm.Logger = d.log
	var sources map[string]config.Source
	at := time.Now()
	if cfg.Loaded != nil {
		sources, at = cfg.Loaded.Sources, cfg.Loaded.At
		d.lastDigest = cfg.Loaded.Digest
	}
	d.cur.Store(newCurrent(cfg.Config, sources, at))
	d.loop = newLoopStats()
	d.m = newMetrics(d)
	return d, nil
}

// Ready is closed once Run listens on the socket.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// SocketPath returns the control socket's path.
func (d *Daemon) SocketPath() string { return d.cfg.Daemon.SocketPath }

// StateDir returns the state directory (lock, registry, heartbeat).
func (d *Daemon) StateDir() string { return d.stateDir }

// HTTPAddr returns the address the HTTP listener (/healthz, /metrics)
// is bound to, once Ready is closed; "" if network.enabled is false.
func (d *Daemon) HTTPAddr() string { return d.httpAddr }

// MetricsAddr returns the address serving /metrics: HTTPAddr, or the
// listener of telemetry.metrics.prometheus.port when that is set.
func (d *Daemon) MetricsAddr() string { return d.metricsAddr }

// Run takes the state directory's lock, re-adopts the registry left by an
// earlier daemon, listens on the socket and serves until ctx is done; then
// it disconnects every client, removes the socket and, with
// Config.RemoveOnExit, every region, its registry and lock files, and the
// directories it made (if empty). Regions stay mapped by clients, which
// keep publishing and subscribing while no daemon runs (with RemoveOnExit
// their rings are marked deleted first: clients get ErrTopicDeleted, and
// after they reconnect to a new daemon ErrTopicRecreated).
//
// Start-up order: check the host, make the directories, take the locks,
// bind the control socket and the HTTP listeners (nothing accepted yet),
// adopt the registry, create the declared topics, then serve. A failing
// step, or ctx ending before serving (kaelixd's SIGTERM), undoes what the
// earlier steps made: the socket, lock files and directories this start
// created, the topics it created, and with RemoveOnExit the adopted
// regions too, as a clean stop does. ctx is checked between steps and
// between the declared topics' partitions.
//
// Errors: *AlreadyRunningError (ErrAlreadyRunning), ErrStopped (second
// call), config.ErrInvalid (host check), *OpError naming the socket, lock,
// directory or HTTP address. A clean stop (also one before serving)
// returns nil. Signals are the caller's business (cmd/kaelixd maps SIGINT
// and SIGTERM to cancelling ctx).
func (d *Daemon) Run(ctx context.Context) error {
	if !d.started.CompareAndSwap(false, true) {
		return ErrStopped
	}
	d.startAt = time.Now()
	stopQuit := context.AfterFunc(ctx, d.quitOnce)
	defer stopQuit()
	st := &startup{d: d}
	ln, serveHTTP, stopHTTP, err := d.start(ctx, st)
	if err != nil || ctx.Err() != nil {
		st.undo()
		if err != nil {
			return err
		}
		d.log.Info("kaelixd stopped before it was ready", "removed_regions", d.cfg.RemoveOnExit)
		return nil
	}
	w := st.w
	defer d.lockF.Close() // releases the flock
	defer d.stateLock.Close()
	defer d.shmLock.Close()
	defer d.sockLock.Close()
	defer stopHTTP()
	serveHTTP()
	d.heartF, _ = os.OpenFile(d.heartbeatPath(), os.O_RDWR|os.O_CREATE, 0o644)
	d.heartbeat(time.Now())
	d.log.Info("kaelixd listening", "socket", d.cfg.Daemon.SocketPath, "state_dir", d.stateDir, "http", d.httpAddr,
		"shm_dir", filepath.Join(d.shm.TmpfsRoot, d.shm.DirName), "topics", len(d.topics), "pid", os.Getpid())
	if d.cfg.WatchFile {
		stopWatch, err := d.watchFile()
		if err != nil {
			d.log.Error("cannot watch the config file; reload with SIGHUP or kaelixctl config reload", "file", d.cfg.Loader.Path, "err", err)
		} else {
			defer stopWatch()
		}
	}

	var wg sync.WaitGroup // the accept loop and the connections; w.stop waits for the watcher
	lastSweep, lastBeat := time.Now(), time.Now()
	every := min(d.cfg.Daemon.HeartbeatInterval, d.cfg.Daemon.SweepInterval)
	w.start(d.peerExited, func() {
		d.loop.pass(every, func(now time.Time) { // loop.go: kaelix_daemon_loop_seconds
			if now.Sub(lastBeat) >= d.cfg.Daemon.HeartbeatInterval {
				d.heartbeat(now)
				lastBeat = now
			}
			if now.Sub(lastSweep) >= d.cfg.Daemon.SweepInterval {
				d.sweep()
				lastSweep = now
			}
		})
	}, every)
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	d.running.Store(true)
	defer d.running.Store(false)
	close(d.ready)
	stopProcs := d.startProcessors() // processors.go
	if d.cfg.WatchFile {
		// A change of the file while Run started was not applied (reloads
		// are refused until it serves): catch up, if there was one.
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.reload("file", true)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			uc, err := ln.AcceptUnix()
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
					d.log.Error("accept", "err", err)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.serve(uc)
			}()
		}
	}()
	<-ctx.Done()
	stopProcs() // they are clients: stopped before their connections close
	ln.Close()
	d.mu.Lock()
	d.closing = true
	for _, p := range d.peers {
		p.conn.UnixConn().Close() // serve closes the rest
	}
	d.mu.Unlock()
	w.stop()
	wg.Wait()
	d.removeSocket()
	d.closeAll(d.cfg.RemoveOnExit)
	if d.heartF != nil {
		d.heartF.Close()
	}
	if d.cfg.RemoveOnExit {
		os.Remove(d.statePath())
		os.Remove(d.heartbeatPath())
		// Last: no region is touched after this, so a daemon that starts
		// meanwhile (on a fresh lock file) cannot be hurt by us.
		os.Remove(d.regionLockPath())
		os.Remove(filepath.Join(d.stateDir, "kaelixd.lock"))
		shm.RemoveBaseDirs(d.shm) // tmpfs and hugetlbfs, each only if empty
		for i := len(st.dirs) - 1; i >= 0; i-- {
			os.Remove(st.dirs[i]) // the ones this start made, only if empty
		}
	}
	d.log.Info("kaelixd stopped", "removed_regions", d.cfg.RemoveOnExit)
	return nil
}

// quitOnce closes d.quit (once): Run's context ended.
func (d *Daemon) quitOnce() { d.quitClose.Do(func() { close(d.quit) }) }

// stopping reports whether Run's context has ended.
func (d *Daemon) stopping() bool {
	select {
	case <-d.quit:
		return true
	default:
		return false
	}
}

// startup records what Run's start-up steps made, for undo.
type startup struct {
	d         *Daemon
	dirs      []string // directories this start created, outermost first
	lockFiles []string // lock files this start created
	regionDir bool     // this start created the tmpfs region directory
	stateNew  bool     // the registry file did not exist before adopt
	adopted   bool     // adopt ran: d.topics holds the registry
	ln        *net.UnixListener
	stopHTTP  func()
	w         *watcher
}

// start runs the start-up steps up to serving. It returns early, with a
// nil error, when ctx ends; Run checks.
func (d *Daemon) start(ctx context.Context, st *startup) (ln *net.UnixListener, serveHTTP, stopHTTP func(), err error) {
	findings := config.Check(d.cfg.Config, config.LoadHost(d.cfg.Config, d.cfg.HostRoot))
	for _, f := range findings {
		if f.Severity == config.Warning {
			d.log.Warn("environment check", "key", f.Key, "finding", f.Msg)
		}
	}
	if err := config.CheckErrors(findings); err != nil {
		return nil, nil, nil, err
	}
	regionDir := filepath.Join(d.shm.TmpfsRoot, d.shm.DirName)
	for _, dir := range []struct{ what, path string }{
		{"state directory (daemon.state_dir)", d.stateDir},
		{"socket directory (daemon.socket_path)", filepath.Dir(d.cfg.Daemon.SocketPath)},
		{"region directory (shm.dir_name)", regionDir},
	} {
		made, err := mkdirAll(dir.path, 0o700)
		st.dirs = append(st.dirs, made...)
		if err != nil {
			return nil, nil, nil, &OpError{Op: "create the " + dir.what, Path: dir.path, Err: err}
		}
		if dir.path == regionDir && len(made) > 0 {
			st.regionDir = true
		}
	}
	if ctx.Err() != nil {
		return nil, nil, nil, nil
	}
	for _, p := range []string{filepath.Join(d.stateDir, "kaelixd.lock"), d.regionLockPath()} {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			st.lockFiles = append(st.lockFiles, p)
		}
	}
	if err := d.lock(); err != nil {
		// Never remove another daemon's lock file (nor one that a daemon
		// starting with us just made): the state dir's is ours only if
		// we flocked it, the region directory's never.
		st.lockFiles = slices.DeleteFunc(st.lockFiles, func(p string) bool { return d.lockF == nil || p == d.regionLockPath() })
		return nil, nil, nil, err
	}
	if st.w, err = newWatcher(); err != nil {
		return nil, nil, nil, err
	}
	if st.ln, err = d.listen(); err != nil {
		return nil, nil, nil, err
	}
	if ctx.Err() != nil {
		return nil, nil, nil, nil
	}
	serveHTTP, st.stopHTTP, err = d.bindHTTP()
	if err != nil {
		return nil, nil, nil, err
	}
	if ctx.Err() != nil {
		return nil, nil, nil, nil
	}
	_, serr := os.Lstat(d.statePath())
	st.stateNew = errors.Is(serr, fs.ErrNotExist)
	st.adopted = true
	if err := d.adopt(); err != nil {
		return nil, nil, nil, err
	}
	if ctx.Err() != nil {
		return nil, nil, nil, nil
	}
	err = d.declare(d.cfg.Config, nil)
	if err != nil {
		if d.stopping() {
			return nil, nil, nil, nil // the declared topics were rolled back
		}
		return nil, nil, nil, fmt.Errorf("kaelixd: declared topics: %w", err)
	}
	d.w = st.w
	return st.ln, serveHTTP, st.stopHTTP, nil
}

// undo reverses what start made, last step first. The locks are released
// last: until then no other daemon can start on these directories.
func (st *startup) undo() {
	d := st.d
	if st.stopHTTP != nil {
		st.stopHTTP()
	}
	if st.ln != nil {
		st.ln.Close()
		d.removeSocket()
	}
	if st.w != nil {
		st.w.stop()
	}
	if st.adopted {
		d.closeAll(d.cfg.RemoveOnExit)
		d.mu.Lock()
		empty := len(d.topics) == 0
		d.mu.Unlock()
		if d.cfg.RemoveOnExit || st.stateNew && empty {
			os.Remove(d.statePath())
		}
	}
	for _, p := range st.lockFiles {
		os.Remove(p) // created by this start; flocked by it, or by nobody
	}
	if d.cfg.RemoveOnExit && d.shmLock != nil {
		os.Remove(d.regionLockPath()) // as a clean stop does
	}
	if st.regionDir || d.cfg.RemoveOnExit && d.shmLock != nil {
		shm.RemoveBaseDirs(d.shm) // each only if empty; never a path we did not lock or make
	}
	for i := len(st.dirs) - 1; i >= 0; i-- {
		os.Remove(st.dirs[i]) // only if empty
	}
	if d.lockF != nil {
		d.lockF.Close()
	}
	for _, l := range []*instanceLock{d.stateLock, d.shmLock, d.sockLock} {
		if l != nil {
			l.Close()
		}
	}
}

// mkdirAll is os.MkdirAll that also returns the directories it created,
// outermost first (also when it fails part way).
func mkdirAll(dir string, perm os.FileMode) ([]string, error) {
	var missing []string
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil || !errors.Is(err, fs.ErrNotExist) {
			break
		}
		missing = append(missing, p)
		if p == filepath.Dir(p) {
			break
		}
	}
	slices.Reverse(missing)
	for i, p := range missing {
		if err := os.Mkdir(p, perm); err != nil && !errors.Is(err, fs.ErrExist) {
			return missing[:i], err
		}
	}
	if len(missing) == 0 {
		fi, err := os.Stat(dir)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			return nil, unix.ENOTDIR
		}
	}
	return missing, nil
}

// closeAll unmaps every topic; with remove, also deletes regions and empties
// the registry.
func (d *Daemon) closeAll(remove bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	// A creation in flight (a reload's, or a client's still finishing)
	// sees the daemon stopping after its current partition and removes
	// what it made: wait for it, so that nothing of it is left behind.
	for len(d.creating) > 0 {
		var done <-chan struct{}
		for _, c := range d.creating {
			done = c.done
			break
		}
		d.mu.Unlock()
		<-done
		d.mu.Lock()
	}
	for name, t := range d.topics {
		if remove {
			// Clients that still map the rings learn that their topic is
			// gone (ErrTopicDeleted), as after a forced delete.
			for _, p := range t.parts {
				d.withRing(p, func() { p.ring.MarkDeleted() })
			}
		}
		d.dropParts(t, remove)
		if remove {
			delete(d.topics, name)
		}
	}
}

// lock takes the daemon's single-instance locks (lock_linux.go): the
// state directory's, the region directory's and the control socket's.
// It also flocks StateDir/kaelixd.lock, as earlier versions did (so that
// neither starts beside the other), and writes this pid into it for their
// "already running, pid N" message. The file is not the guarantee: it may
// be deleted under a live daemon. Each lock taken is kept in d (undo
// releases it) also when a later one fails.
func (d *Daemon) lock() error {
	path := filepath.Join(d.stateDir, "kaelixd.lock")
	pidFile := func() int {
		b, _ := os.ReadFile(path)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return pid
	}
	var err error
	if d.stateLock, err = lockStateDir(d.stateDir, pidFile); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return &OpError{Op: "open", Path: path, Err: err}
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) { // an earlier version's daemon
			return &AlreadyRunningError{PID: pidFile(), LockPath: d.stateDir}
		}
		return &OpError{Op: "flock", Path: path, Err: err}
	}
	d.lockF = f
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	// Two daemons with different state dirs but one region directory
	// would each take the other's regions for stale ones, and replace
	// each other's files.
	dir := filepath.Join(d.shm.TmpfsRoot, d.shm.DirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return &OpError{Op: "mkdir", Path: dir, Err: err}
	}
	if d.shmLock, err = lockRegionDir(dir); err != nil {
		return err
	}
	// Nor may two share a socket path: the second would replace the
	// first's socket, and the first serve no one.
	d.sockLock, err = lockSocketPath(d.cfg.Daemon.SocketPath)
	return err
}

// regionLockPath is the lock file earlier versions kept in the tmpfs
// region directory (an ephemeral daemon removes a leftover one on exit).
func (d *Daemon) regionLockPath() string {
	return filepath.Join(d.shm.TmpfsRoot, d.shm.DirName, ".kaelixd.lock")
}

// listen replaces a stale socket and listens with SocketMode. A socket
// something answers on (a daemon of an earlier version, which the socket
// lock does not stop) is never removed: AlreadyRunningError. A path that
// exists and is not a socket (a directory, a regular file) is refused,
// never removed: it is not ours.
func (d *Daemon) listen() (*net.UnixListener, error) {
	const what = "the control socket (daemon.socket_path)"
	path := d.cfg.Daemon.SocketPath
	if fi, err := os.Lstat(path); err == nil && fi.Mode().Type() != fs.ModeSocket {
		return nil, &OpError{Op: "listen on " + what, Path: path,
			Err: fmt.Errorf("exists and is %s, not a socket; remove it or choose another path (--socket)", fileKind(fi))}
	} else if err == nil {
		switch pid, live, err := peerPID(&unix.SockaddrUnix{Name: path}); {
		case live:
			return nil, &AlreadyRunningError{PID: pid, LockPath: path, SharedSocket: true}
		case err != nil:
			return nil, &OpError{Op: "probe the existing socket " + what, Path: path,
				Err: fmt.Errorf("%w; cannot tell whether a daemon serves it: remove it if none does, or choose another path (--socket)", sysErr(err))}
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, &OpError{Op: "remove the stale socket " + what, Path: path, Err: sysErr(err)}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, &OpError{Op: "listen on " + what, Path: path, Err: sysErr(err)}
	}
	ln.SetUnlinkOnClose(false) // Run removes it once every client is gone
	d.sock.bound(path)
	fail := func(op string, err error) (*net.UnixListener, error) {
		ln.Close()
		d.removeSocket()
		return nil, &OpError{Op: op + " " + what, Path: path, Err: sysErr(err)}
	}
	if err := os.Chmod(path, os.FileMode(d.cfg.Security.SocketMode)); err != nil {
		return fail("chmod", err)
	}
	if gid, _ := config.LookupGroup(d.cfg.Security.SocketGroup); gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			return fail("chown (security.socket_group)", err)
		}
	}
	return ln, nil
}

// fileKind names fi's file type for messages: "a directory".
func fileKind(fi fs.FileInfo) string {
	switch t := fi.Mode().Type(); {
	case t == 0:
		return "a regular file"
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe"
	default:
		return "a special file"
	}
}

// The heartbeat file (stat.HeartbeatFile, layout there) is rewritten in
// place every HeartbeatInterval; stat.ReadHeartbeat reads it.
func (d *Daemon) heartbeatPath() string { return filepath.Join(d.stateDir, stat.HeartbeatFile) }

func (d *Daemon) heartbeat(now time.Time) {
	n := d.beats.Add(1)
	d.beatNS.Store(now.UnixNano())
	if d.heartF == nil {
		return
	}
	var b [stat.HeartbeatBytes]byte
	stat.EncodeHeartbeat(b[:], os.Getpid(), n, now)
	d.heartF.WriteAt(b[:], 0)
}

// sweep checks every partition's two regions (a client may have truncated
// or overwritten them), frees dead processes' slots in every ring, and
// evicts subscribers that hold publishers back if configured (evict.go).
func (d *Daemon) sweep() {
	d.mu.Lock()
	for _, t := range d.topics {
		for _, p := range t.parts {
			if p.closed || p.faulted != nil {
				continue
			}
			if err := p.check(); err != nil {
				d.markFaulted(p, err)
				continue
			}
			// A client may have overwritten the ring's headers: re-validate them.
			var aerr error
			if !d.withRing(p, func() { _, aerr = p.attachRing() }) {
				continue
			}
			if aerr != nil {
				d.markFaulted(p, aerr)
				continue
			}
			d.reapRing(p)
		}
	}
	d.expireReservations(time.Now())
	recreate := d.checkLinks()
	d.mu.Unlock()
	for _, r := range recreate {
		r.finish(d)
	}
	d.checkSocket()
	d.evictStalled(time.Now())
}

// withRing runs fn, which touches p's ring memory, under shm.Guard: a
// region truncated by a client faults (SIGBUS) and would otherwise kill
// the daemon. A fault marks the partition faulted. It reports whether fn
// ran to the end. d.mu held.
func (d *Daemon) withRing(p *partition, fn func()) bool {
	if p.closed || p.faulted != nil {
		return false
	}
	if err := shm.Guard(func() error { fn(); return nil }); err != nil {
		d.markFaulted(p, err)
		return false
	}
	return true
}

// markFaulted takes a partition out of service: nothing touches its
// memory again, attaches are refused with the reason, and the event is
// logged and counted. Clients already attached see their own errors on
// that topic (the client library guards its ring accesses); every other
// topic is unaffected. d.mu held.
func (d *Daemon) markFaulted(p *partition, err error) {
	if p.faulted != nil {
		return
	}
	p.faulted = err
	d.m.regionFaults.Inc()
	d.log.Error("region damaged by a client; partition out of service (delete and re-create the topic)",
		"topic", p.topic, "partition", p.index, "path", p.region.Path(), "consumer_path", p.consumer.Path(), "err", err)
}

// Status returns the daemon's status snapshot (also served as daemon status).
func (d *Daemon) Status() wire.Status {
	d.mu.Lock()
	topics, clients := len(d.topics), len(d.peers)
	d.mu.Unlock()
	return wire.Status{
		Version: wire.Version, PID: os.Getpid(), StartedNS: d.startAt.UnixNano(), UptimeNS: int64(time.Since(d.startAt)),
		SocketPath: d.cfg.Daemon.SocketPath, StateDir: d.stateDir, ShmDir: filepath.Join(d.shm.TmpfsRoot, d.shm.DirName),
		Topics: topics, Clients: clients, Heartbeats: d.beats.Load(), HeartbeatNS: d.beatNS.Load(),
		PeerDeaths: d.deaths.Load(), LastDetectionNS: d.lastDet.Load(), SubscriberEvictions: d.evictions.Load(),
		SubscriberKills: d.evictKills.Load(), HugeDir: shm.HugeDir(d.shm), Build: buildInfo(),
	}
}

// buildInfo is the daemon binary's build (internal/version).
func buildInfo() wire.BuildInfo {
	v := version.Get()
	return wire.BuildInfo{Version: v.Module, Commit: v.Commit, Modified: v.Modified, Go: v.Go}
}

package daemon

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/kaelix-io/kaelix/daemon/config"
	"github.com/kaelix-io/kaelix/wire"
)

// Reload protocol (nats server/reload.go is the model):
//
//  1. Load: the Loader re-reads the file and re-applies the environment and
//     flags captured at start over it, so they keep their precedence.
//  2. Validate: every error at once (config.Errors).
//  3. Diff against the configuration in effect; any change of a key that
//     is not live refuses the whole reload (config.NotLiveError, each key
//     with its old and new value).
//  4. Apply: declared topics not yet registered are created first (the
//     only step that can fail; the topics it made are removed again if it
//     does); then the new configuration is published with one atomic
//     pointer store (access rules, wait strategy, metrics toggles, health
//     thresholds, max clients) and the log level set.
//  5. Notify subscribers (OnConfigChange) with old, new and the time.
//
// A failure at any step changes nothing, is logged, counts in
// kaelix_config_reload_failures_total and makes health degraded until a
// reload succeeds.

// current is the configuration in effect. It is immutable: a reload makes
// a new one and swaps Daemon.cur.
type current struct {
	cfg     config.Config
	sources map[string]config.Source
	at      time.Time
}

func newCurrent(c config.Config, sources map[string]config.Source, at time.Time) *current {
	return &current{cfg: c, sources: sources, at: at}
}

// ConfigChange is what OnConfigChange subscribers receive after a
// successful reload. Old and New are the whole configurations (do not
// modify their slices); Changes lists the keys that differ.
type ConfigChange struct {
	Old, New config.Config
	Changes  []config.Change
	At       time.Time
}

// Config returns the configuration in effect (the one New was given, as
// changed by successful reloads). The result shares slices with the
// daemon's copy: Clone it before modifying them.
func (d *Daemon) Config() config.Config { return d.cur.Load().cfg }

// OnConfigChange registers fn to be called after each successful reload
// that changed something, on the reloading goroutine, after the change is
// in effect. Keep fn short; it must not call Reload. cancel unregisters it
// (fn may still be running when cancel returns).
func (d *Daemon) OnConfigChange(fn func(ConfigChange)) (cancel func()) {
	d.subsMu.Lock()
	defer d.subsMu.Unlock()
	d.nextSub++
	id := d.nextSub
	d.subs[id] = fn
	return func() {
		d.subsMu.Lock()
		delete(d.subs, id)
		d.subsMu.Unlock()
	}
}

// Reload re-reads the configuration through Config.Loader and applies it
// all or nothing (see the protocol above). It returns the changes applied
// (none if the result equals the configuration in effect). Errors:
// ErrNoConfigSource, config.Errors (errors.Is config.ErrInvalid), a
// *config.NotLiveError (config.ErrNotLive), or a topic creation failure
// (*wire.Error). Safe for concurrent use; reloads are serialized. It may
// be called before Run or while it serves; while Run starts or after it
// returned it fails with ErrNotRunning.
func (d *Daemon) Reload() ([]config.Change, error) { return d.reload("api", false) }

func (d *Daemon) reload(trigger string, onlyIfChanged bool) ([]config.Change, error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	if d.cfg.Loader == nil {
		return nil, d.reloadFailed(trigger, ErrNoConfigSource)
	}
	if d.started.Load() && !d.running.Load() {
		// Run is starting (or has stopped): topics declared now could be
		// made before the lock and the adoption, or after the regions
		// were removed. The file is read again once it serves (or on the
		// next SIGHUP).
		return nil, d.reloadFailed(trigger, fmt.Errorf("%w: kaelixd is starting or stopping; reload once it serves", ErrNotRunning))
	}
	if onlyIfChanged && d.cfg.Loader.Path != "" {
		b, err := os.ReadFile(d.cfg.Loader.Path)
		if err == nil && sha256.Sum256(b) == d.lastDigest {
			return nil, nil // an event that changed nothing (or a sibling file)
		}
	}
	ld, err := d.cfg.Loader.Load()
	if ld != nil {
		d.lastDigest = ld.Digest
	} else if b, rerr := os.ReadFile(d.cfg.Loader.Path); rerr == nil {
		d.lastDigest = sha256.Sum256(b)
	}
	if err != nil {
		return nil, d.reloadFailed(trigger, err)
	}
	for _, w := range ld.Warnings {
		d.log.Warn("config", "warning", w)
	}
	old := d.cur.Load()
	live, refused := config.Diff(old.cfg, ld.Config)
	if len(refused) > 0 {
		return nil, d.reloadFailed(trigger, &config.NotLiveError{Changes: refused})
	}
	err = d.declare(ld.Config, old.cfg.Topics)
	if err != nil {
		return nil, d.reloadFailed(trigger, err)
	}
	d.cur.Store(newCurrent(ld.Config, ld.Sources, ld.At))
	d.level.Set(parseLevel(ld.Config.Telemetry.Logging.Level))
	d.m.reloads.Inc()
	d.lastReload.Store(&wire.ReloadStatus{AtNS: ld.At.UnixNano(), OK: true, Trigger: trigger})
	for _, c := range live {
		d.log.Info("config reloaded", "key", c.Key, "old", unquoted(c.Old), "new", unquoted(c.New), "trigger", trigger)
	}
	if len(live) == 0 {
		d.log.Info("config reloaded; nothing changed", "trigger", trigger)
		return nil, nil
	}
	d.subsMu.Lock()
	fns := make([]func(ConfigChange), 0, len(d.subs))
	for _, fn := range d.subs {
		fns = append(fns, fn)
	}
	d.subsMu.Unlock()
	ch := ConfigChange{Old: old.cfg, New: ld.Config, Changes: live, At: ld.At}
	for _, fn := range fns {
		fn(ch)
	}
	return live, nil
}

func (d *Daemon) reloadFailed(trigger string, err error) error {
	d.m.reloadFailures.Inc()
	d.lastReload.Store(&wire.ReloadStatus{AtNS: time.Now().UnixNano(), Trigger: trigger, Error: err.Error()})
	d.log.Error("config reload failed; the last good configuration stays in effect", "trigger", trigger, "err", err)
	return err
}

// declare creates the declared topics of c that are not registered yet,
// skipping those in prev (already declared: a reload adds topics, it never
// re-checks old ones). All or nothing: on a failure the topics it created
// are removed. Called without d.mu (createTopic).
func (d *Daemon) declare(c config.Config, prev []config.Topic) error {
	had := map[string]bool{}
	for _, t := range prev {
		had[t.Name] = true
	}
	var ours []string // created by this declare
	for _, t := range c.Topics {
		if had[t.Name] {
			continue
		}
		made, err := false, error(nil)
		if d.stopping() {
			err = errStopping
		} else {
			_, made, err = d.createTopic(c.TopicSpec(t), true)
		}
		if err != nil {
			for _, n := range ours {
				d.deleteTopic(n, true)
			}
			return fmt.Errorf("topics[name=%s]: %w", t.Name, err)
		}
		if made {
			ours = append(ours, t.Name)
		}
	}
	return nil
}

// ConfigView returns the configuration in effect key by key, with each
// value's source, and the last reload's outcome (also served as config
// show).
func (d *Daemon) ConfigView() wire.ConfigView {
	cur := d.cur.Load()
	v := wire.ConfigView{LoadedNS: cur.at.UnixNano(), Entries: []wire.ConfigEntry{}}
	if d.cfg.Loader != nil {
		v.File = d.cfg.Loader.Path
	}
	for _, k := range config.Keys() {
		val, _ := cur.cfg.Get(k.Path)
		src := "embedded"
		if cur.sources != nil {
			src = cur.sources[k.Path].String()
		}
		v.Entries = append(v.Entries, wire.ConfigEntry{Key: k.Path, Value: val, Source: src, Live: k.Live, Effective: d.effective(k.Path, val)})
	}
	if r := d.lastReload.Load(); r != nil {
		v.LastReload = *r
	}
	return v
}

// watchFile reloads on changes of the config file: fsnotify on its
// directory (and its symlink target's), debounced; content identical to
// the last attempt is skipped. stop ends the goroutine and waits for it.
func (d *Daemon) watchFile() (stop func(), err error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	path, _ := filepath.Abs(d.cfg.Loader.Path)
	watched := map[string]bool{}
	real := path
	// relevant: an event on the file, on its symlink target, or on a
	// directory symlink on the way to the target (Kubernetes' ..data swap).
	// Other files in the directories (a log file beside the config) are
	// ignored, so they cannot drive reloads.
	relevant := func(name string) bool {
		name = filepath.Clean(name)
		return name == path || name == real || strings.HasPrefix(real, name+"/")
	}
	watchDirs := func() {
		dirs := []string{filepath.Dir(path)}
		if r, err := filepath.EvalSymlinks(path); err == nil {
			real = r
			dirs = append(dirs, filepath.Dir(r))
		}
		for _, dir := range dirs {
			if !watched[dir] {
				if err := w.Add(dir); err == nil {
					watched[dir] = true
				}
			}
		}
	}
	watchDirs()
	if len(watched) == 0 {
		w.Close()
		return nil, &OpError{Op: "watch", Path: filepath.Dir(path), Err: errors.New("cannot watch the directory")}
	}
	done := make(chan struct{})
	quit := make(chan struct{})
	go func() {
		defer close(done)
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		for {
			select {
			case <-quit:
				timer.Stop()
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if relevant(ev.Name) {
					d.log.Debug("config file event", "event", ev.String())
					timer.Reset(d.cfg.ReloadDebounce)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				d.log.Warn("config file watch", "err", err)
			case <-timer.C:
				d.reload("file", true)
				watchDirs()
			}
		}
	}()
	return func() {
		close(quit)
		<-done
		w.Close()
	}, nil
}

// unquoted is a value as config show prints it ("info" with its quotes)
// without the quotes, so that a JSON log holds "old":"info", not
// "old":"\"info\"".
func unquoted(v string) string {
	if u, err := strconv.Unquote(v); err == nil {
		return u
	}
	return v
}

// effective is the value the daemon resolved for key at start when the
// configured val leaves it open ("" directories, port 0), else "".
func (d *Daemon) effective(key, val string) string {
	var eff string
	switch key {
	case "daemon.state_dir":
		eff = strconv.Quote(d.stateDir)
	case "network.port":
		if _, port, err := net.SplitHostPort(d.httpAddr); err == nil {
			eff = port
		}
	case "telemetry.metrics.prometheus.port":
		if _, port, err := net.SplitHostPort(d.metricsAddr); err == nil && d.metricsAddr != d.httpAddr {
			eff = port
		}
	}
	if eff == val {
		return ""
	}
	return eff
}

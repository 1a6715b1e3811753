package daemon

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kaelix-io/kaelix/daemon/config"
	"github.com/kaelix-io/kaelix/internal/supervise"
	"github.com/kaelix-io/kaelix/numa"
	"github.com/kaelix-io/kaelix/processor"
	"github.com/kaelix-io/kaelix/processor/host"
	"github.com/kaelix-io/kaelix/wire"
)

// Stream processors ([[processors]]). kaelixd runs each one as a process
// of its own, supervised by internal/supervise (one Supervisor per
// processor, in a Set): a Stages processor is kaelix-proc with a generated
// one-pipeline configuration; a Command one is the user's program. Each
// process is a Kaelix client like any other (it attaches to the rings
// itself; the daemon stays off the data path) and sees the topic ACL as a
// client of its user.
//
// Files, in <state dir>/processors (0700), all made and removed by the
// daemon: <name>-<digest>.toml, the kaelix-proc configuration (the digest
// of its content in the name, so a changed configuration is a changed
// argument and the Set restarts it), and <name>.counters, the counters
// region the host stores its totals in (processor/host counters.go),
// which the daemon reads for status and metrics. A processor added or
// changed by a reload gets a fresh counters region.
//
// Reloads: the configuration is validated whole first (config
// validateProcessors; a bad entry refuses the reload, all or nothing);
// then added processors start, removed ones stop and changed ones restart,
// and the others are left alone (same process).
type processors struct {
	d   *Daemon
	dir string
	set *supervise.Set

	mu       sync.Mutex // guards decl, startErr
	decl     map[string]config.Processor
	startErr map[string]string // processors the Set could not supervise at all, and why
}

// processorsDir is where processor files live.
func (d *Daemon) processorsDir() string { return filepath.Join(d.stateDir, "processors") }

// startProcessors starts the configured processors and follows reloads;
// the returned stop stops them all (SIGTERM, SIGKILL after the grace) and
// removes their files.
func (d *Daemon) startProcessors() (stop func()) {
	ps := &processors{d: d, dir: d.processorsDir(), decl: map[string]config.Processor{}, startErr: map[string]string{},
		set: supervise.NewSet(supervise.SetOptions{Logger: d.log.With("part", "processors")})}
	d.procs.Store(ps)
	d.m.reg.MustRegister(&procCollector{ps})
	ps.apply(d.Config())
	cancel := d.OnConfigChange(func(ch ConfigChange) {
		if !reflect.DeepEqual(ch.Old.Processors, ch.New.Processors) || ch.Old.Daemon.SocketPath != ch.New.Daemon.SocketPath {
			ps.apply(ch.New)
		}
	})
	return func() {
		cancel()
		ps.set.Close()
		d.m.reg.Unregister(&procCollector{ps})
		os.RemoveAll(ps.dir)
	}
}

// apply makes cfg's processors the running set.
func (ps *processors) apply(cfg config.Config) {
	log := ps.d.log
	if len(cfg.Processors) > 0 {
		// 0711: a processor running as another user reaches its own
		// files (made for it below) and lists none.
		if err := os.MkdirAll(ps.dir, 0o711); err != nil {
			log.Error("processors: state directory", "err", err)
		}
		os.Chmod(ps.dir, 0o711)
	}
	ps.mu.Lock()
	old := ps.decl
	ps.mu.Unlock()
	decl := map[string]config.Processor{}
	var specs []supervise.Spec
	keep := map[string]bool{}
	errs := map[string]string{}
	for _, p := range cfg.Processors {
		decl[p.Name] = p
		counters := ps.countersPath(p.Name)
		if o, ok := old[p.Name]; !ok || !reflect.DeepEqual(o, p) {
			os.Remove(counters) // a new or changed processor counts from zero
		}
		sp, file, err := ps.spec(cfg, p)
		if err != nil {
			errs[p.Name] = err.Error()
			log.Error("processor not started", "processor", p.Name, "err", err)
			continue
		}
		keep[filepath.Base(counters)], keep[file] = true, true
		specs = append(specs, sp)
	}
	started, stopped, restarted, err := ps.set.Apply(specs)
	if err != nil {
		for _, e := range strings.Split(err.Error(), "\n") {
			name, _, _ := strings.Cut(e, ":")
			if _, ok := decl[name]; ok {
				errs[name] = e
			}
		}
		log.Error("processors", "err", err)
	}
	ps.mu.Lock()
	ps.decl, ps.startErr = decl, errs
	ps.mu.Unlock()
	if len(started)+len(stopped)+len(restarted) > 0 {
		log.Info("processors applied", "started", started, "stopped", stopped, "restarted", restarted)
	}
	entries, _ := os.ReadDir(ps.dir)
	for _, e := range entries { // configurations and regions of processors gone or changed
		if !keep[e.Name()] {
			os.Remove(filepath.Join(ps.dir, e.Name()))
		}
	}
}

func (ps *processors) countersPath(name string) string {
	return filepath.Join(ps.dir, name+".counters")
}

// spec is the process of processor p, and the base name of the
// configuration file it was given ("" for a command).
func (ps *processors) spec(cfg config.Config, p config.Processor) (supervise.Spec, string, error) {
	log := ps.d.log.With("processor", p.Name)
	sp := supervise.Spec{
		Name: p.Name, StartGate: true,
		Stdout: &lineLog{log: log, stream: "stdout"}, Stderr: &lineLog{log: log, stream: "stderr"},
		Limits: supervise.Limits{MaxMemoryMB: p.Limits.MaxMemoryMB, MaxCPUPercent: p.Limits.MaxCPUPercent,
			MaxFileDescriptors: p.Limits.MaxFileDescriptors},
		Network: p.Permissions.CanAccessNetwork, AllowSharedNetwork: p.AllowSharedNetwork,
		Policy: supervise.Policy{MaxCrashes: p.MaxCrashes, Window: p.CrashWindow, MinBackoff: p.MinBackoff, MaxBackoff: p.MaxBackoff},
	}
	if p.CPUs != "" {
		cpus, err := numa.ParseCPUList(p.CPUs)
		if err != nil {
			return sp, "", err
		}
		sp.CPUs = cpus
	}
	if p.User != "" || p.UserGroup != "" {
		cred, err := credential(p.User, p.UserGroup)
		if err != nil {
			return sp, "", err
		}
		sp.Credential = cred
	}
	counters := ps.countersPath(p.Name)
	if len(p.Command) > 0 {
		sp.Path, sp.Args = p.Command[0], p.Command[1:]
		sp.Env = append(os.Environ(), "KAELIX_PROCESSOR="+p.Name, "KAELIX_INPUT="+p.Input, "KAELIX_GROUP="+p.Group,
			"KAELIX_OUTPUTS="+strings.Join(p.Outputs, ","), "KAELIX_SOCKET="+cfg.Daemon.SocketPath, "KAELIX_COUNTERS="+counters)
		return sp, "", nil
	}
	text, err := tomlText(p.HostConfig())
	if err != nil {
		return sp, "", err
	}
	sum := sha256.Sum256(text)
	file := fmt.Sprintf("%s-%s.toml", p.Name, hex.EncodeToString(sum[:6]))
	path := filepath.Join(ps.dir, file)
	if err := os.WriteFile(path, text, 0o600); err != nil {
		return sp, "", err
	}
	// The counters region is made here (kept if it exists: totals run
	// across restarts), owned by the processor's user like its
	// configuration.
	cf, err := os.OpenFile(counters, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return sp, "", err
	}
	cf.Close()
	if sp.Credential != nil {
		for _, f := range []string{path, counters} {
			if err := os.Chown(f, int(sp.Credential.Uid), int(sp.Credential.Gid)); err != nil {
				return sp, "", err
			}
		}
	}
	sp.Path = p.Binary
	if sp.Path == "" {
		sp.Path = defaultProcBinary()
	}
	sp.Args = []string{"run", "--config", path, "--counters", counters, "--socket", cfg.Daemon.SocketPath}
	return sp, file, nil
}

func tomlText(v any) ([]byte, error) {
	var b strings.Builder
	if err := toml.NewEncoder(&b).Encode(v); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

func credential(userName, groupName string) (*syscall.Credential, error) {
	cred := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())}
	if userName != "" {
		u, err := user.Lookup(userName)
		if err != nil {
			return nil, err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred.Uid, cred.Gid = uint32(uid), uint32(gid)
	}
	if groupName != "" {
		gid, err := config.LookupGroup(groupName)
		if err != nil {
			return nil, err
		}
		cred.Gid = uint32(gid)
	}
	cred.NoSetGroups = os.Geteuid() != 0
	return cred, nil
}

// defaultProcBinary is kaelix-proc beside this executable, else the one
// on $PATH, else the bare name (the start error then says so).
func defaultProcBinary() string {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "kaelix-proc")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("kaelix-proc"); err == nil {
		return p
	}
	return "kaelix-proc"
}

// list describes every declared processor, in name order.
func (ps *processors) list(withStderr bool) []wire.ProcessorInfo {
	ps.mu.Lock()
	decl := make([]config.Processor, 0, len(ps.decl))
	for _, p := range ps.decl {
		decl = append(decl, p)
	}
	startErr := make(map[string]string, len(ps.startErr))
	for k, v := range ps.startErr {
		startErr[k] = v
	}
	ps.mu.Unlock()
	sort.Slice(decl, func(i, j int) bool { return decl[i].Name < decl[j].Name })
	status := map[string]supervise.Status{}
	for _, st := range ps.set.Status() {
		status[st.Name] = st
	}
	out := make([]wire.ProcessorInfo, 0, len(decl))
	for _, p := range decl {
		pi := wire.ProcessorInfo{Name: p.Name, Kind: "stages", Input: p.Input, Group: p.Group, Outputs: append([]string{}, p.Outputs...),
			Command: p.Command, LimitHits: map[string]int{}}
		if len(p.Command) > 0 {
			pi.Kind = "command"
		}
		for _, s := range p.Stages {
			pi.Stages = append(pi.Stages, s.Plugin)
		}
		st, ok := status[p.Name]
		switch {
		case ok:
			pi.State, pi.PID, pi.Restarts, pi.Crashes = string(st.State), st.PID, st.Restarts, st.Crashes
			pi.LastExit, pi.Reason = st.LastExit, st.Reason
			pi.SinceNS = st.Since.UnixNano()
			if !st.StartedAt.IsZero() {
				pi.StartedNS = st.StartedAt.UnixNano()
			}
			pi.Limits = wire.ProcessorLimits{Memory: st.Limits.Memory, CPU: st.Limits.CPU, Files: st.Limits.Files, Network: st.Limits.Network, CPUSet: st.Limits.CPUSet}
			pi.LimitHits = st.LimitHits
			if withStderr {
				pi.Stderr = st.StderrTail
			}
		default:
			pi.State, pi.Reason = wire.ProcessorFailed, startErr[p.Name]
			if pi.Reason == "" {
				pi.Reason = "not started"
			}
		}
		c, err := host.ReadCounters(ps.countersPath(p.Name))
		switch {
		case err == nil:
			pi.In, pi.Out, pi.Dropped, pi.Failed = c.In, c.Out, c.Dropped, c.Failed
			pi.Pipelines, pi.PipelinesRunning = int(c.Pipelines), int(c.Running)
			pi.TimedRecords, pi.TimedSumNS = c.Timing.Count, c.Timing.SumNS
			pi.Buckets = c.Timing.Buckets[:]
			for i := range c.Timing.Buckets {
				pi.BucketsNS = append(pi.BucketsNS, int64(processor.TimingBucketBound(i)))
			}
		case errors.Is(err, os.ErrNotExist), errors.Is(err, host.ErrCountersNotReady):
			pi.Counters = "no counts yet (the process has not written its counters region)"
		default:
			pi.Counters = err.Error()
		}
		out = append(out, pi)
	}
	return out
}

// restart restarts the named processor; false if none is running.
func (ps *processors) restart(name string) bool { return ps.set.Restart(name) }

// health adds the processors' health reasons: a processor given up on or
// that cannot start, and one crash-looping (in backoff after more than
// one exit within its window) make the daemon degraded.
func (ps *processors) health(add func(rule, status, format string, args ...any)) {
	for _, pi := range ps.list(false) {
		switch {
		case pi.State == wire.ProcessorFailed:
			add("processor", wire.HealthDegraded, "processor %q failed: %s", pi.Name, pi.Reason)
		case pi.State == wire.ProcessorBackoff && pi.Crashes > 1:
			add("processor", wire.HealthDegraded, "processor %q is crash-looping: %d exits within its crash window; %s", pi.Name, pi.Crashes, pi.Reason)
		case pi.State == wire.ProcessorRunning && pi.PipelinesRunning < pi.Pipelines && time.Since(time.Unix(0, pi.StartedNS)) > pipelineGrace:
			add("processor", wire.HealthDegraded, "processor %q runs (pid %d) but %d of its %d pipelines do not (retrying; kaelixctl processors info %s shows its stderr)",
				pi.Name, pi.PID, pi.Pipelines-pi.PipelinesRunning, pi.Pipelines, pi.Name)
		}
	}
}

// pipelineGrace is how long a started host may take to get its pipeline
// running before health says it does not.
const pipelineGrace = 5 * time.Second

// handleProcessors answers the processors and processor-restart requests.
func (d *Daemon) handleProcessors(p *peer, f wire.Frame) (any, *wire.Error) {
	ps := d.procs.Load()
	if f.Type == wire.TypeProcessors {
		if ps == nil {
			return wire.Processors{Processors: []wire.ProcessorInfo{}}, nil
		}
		return wire.Processors{Processors: ps.list(true)}, nil
	}
	var r wire.ProcessorRestart
	if err := wire.DecodeBody(f, &r); err != nil {
		return nil, wire.Errorf(wire.CodeBadRequest, "%v", err)
	}
	if !privileged(p) {
		return nil, wire.Errorf(wire.CodePermission, "uid %d may not restart processors (root or the daemon's user only)", p.uid)
	}
	if ps == nil || !ps.restart(r.Name) {
		return nil, wire.Errorf(wire.CodeNotFound, "no processor %q is running (kaelixctl processors list)", r.Name)
	}
	return wire.Empty{}, nil
}

// Processor metrics, read at scrape time from the supervisor and each
// processor's counters region.
var (
	procLabels    = []string{"processor"}
	descProcIn    = prometheus.NewDesc("kaelix_processor_records_in_total", "Records a processor read from its input (totals across its restarts).", procLabels, nil)
	descProcOut   = prometheus.NewDesc("kaelix_processor_records_out_total", "Records a processor published (one per output).", procLabels, nil)
	descProcDrop  = prometheus.NewDesc("kaelix_processor_records_dropped_total", "Records a processor's stages dropped.", procLabels, nil)
	descProcFail  = prometheus.NewDesc("kaelix_processor_records_failed_total", "Records a processor's stages failed, routed nowhere, or could not publish.", procLabels, nil)
	descProcTime  = prometheus.NewDesc("kaelix_processor_processing_seconds", "Processing time of one record in 16, from the first stage to published.", procLabels, nil)
	descProcRest  = prometheus.NewDesc("kaelix_processor_restarts_total", "Times kaelixd started a processor's process again.", procLabels, nil)
	descProcLimit = prometheus.NewDesc("kaelix_processor_limit_hits_total", "Processor exits caused by a resource limit, by limit (memory, files).", []string{"processor", "limit"}, nil)
	descProcUp    = prometheus.NewDesc("kaelix_processor_up", "1 while a processor's process runs, else 0.", procLabels, nil)
)

type procCollector struct{ ps *processors }

func (c *procCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descProcIn, descProcOut, descProcDrop, descProcFail, descProcTime, descProcRest, descProcLimit, descProcUp} {
		ch <- d
	}
}

func (c *procCollector) Collect(ch chan<- prometheus.Metric) {
	for _, pi := range c.ps.list(false) {
		counter := func(d *prometheus.Desc, v uint64, l ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{pi.Name}, l...)...)
		}
		counter(descProcIn, pi.In)
		counter(descProcOut, pi.Out)
		counter(descProcDrop, pi.Dropped)
		counter(descProcFail, pi.Failed)
		counter(descProcRest, uint64(pi.Restarts))
		for _, l := range []string{"memory", "files"} {
			counter(descProcLimit, uint64(pi.LimitHits[l]), l)
		}
		up := 0.0
		if pi.State == wire.ProcessorRunning {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descProcUp, prometheus.GaugeValue, up, pi.Name)
		buckets := map[float64]uint64{}
		var cum uint64
		for i, n := range pi.Buckets {
			cum += n
			if i < len(pi.BucketsNS) && pi.BucketsNS[i] > 0 {
				buckets[time.Duration(pi.BucketsNS[i]).Seconds()] = cum
			}
		}
		ch <- prometheus.MustNewConstHistogram(descProcTime, pi.TimedRecords, time.Duration(pi.TimedSumNS).Seconds(), buckets, pi.Name)
	}
}

// lineLog writes a child's output to the daemon's log, a record per line
// (at most 4 KiB each; the supervisor keeps the last 4 KiB of stderr for
// status too). Used by one child's output copier at a time.
type lineLog struct {
	log    *slog.Logger
	stream string
	buf    []byte
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 && len(l.buf) < 4096 {
			return len(p), nil
		}
		if i < 0 {
			i = len(l.buf)
		}
		line := string(l.buf[:i])
		l.buf = l.buf[min(i+1, len(l.buf)):]
		l.log.Info(line, "stream", l.stream)
	}
}

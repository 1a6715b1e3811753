package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon/config"
	"github.com/kaelix-io/kaelix/internal/bytesize"
	"github.com/kaelix-io/kaelix/internal/proc"
	"github.com/kaelix-io/kaelix/stat"
	"github.com/kaelix-io/kaelix/wire"
)

// StatCmd is `kaelixctl stat`: AeronStat and BacklogStat for Kaelix. Every
// figure is read straight from the rings' shared memory, mapped read-only
// (package stat), so it works with kaelixd answering, stopped, hung or
// dead. The region paths come from the daemon when it answers within
// --daemon-timeout, else from the registry it keeps in its state
// directory (topics.json), the files found under the region directories.
type StatCmd struct {
	Topic         string        `arg:"" optional:"" help:"Only this topic." predictor:"topic"`
	Watch         bool          `short:"w" help:"Refresh every --interval until Ctrl-C: redraws a terminal, one JSON object per line otherwise."`
	Interval      time.Duration `help:"Refresh interval with --watch." default:"1s"`
	StateDir      string        `name:"state-dir" help:"kaelixd's state directory (registry, heartbeat; default: the socket's directory)." placeholder:"DIR"`
	ShmDir        string        `name:"shm-dir" help:"kaelixd's region directory name under each hugetlbfs mount and /dev/shm (its --shm-dir, shm.dir_name; default kaelix as root, kaelix-UID otherwise)." placeholder:"NAME"`
	RegionDir     []string      `name:"region-dir" help:"A directory holding region files, instead of --shm-dir under the mounts; repeatable." placeholder:"DIR"`
	DaemonTimeout time.Duration `name:"daemon-timeout" help:"How long to wait for kaelixd before reading its registry instead." default:"1s"`
	NoDaemon      bool          `name:"no-daemon" help:"Do not ask kaelixd; read its registry."`
	Slots         bool          `help:"Text: also list every subscriber and queue-group slot (always in JSON)." default:"true" negatable:""`
}

// DaemonState is what a stat sample says about kaelixd.
type DaemonState struct {
	// State: "answering", "busy" (heartbeat advances, no answer), "hung"
	// (heartbeat stopped, process runs), "stopped" (SIGSTOP), "dead"
	// (heartbeat pid gone), "none" (no heartbeat file).
	State   string `json:"state"`
	PID     int    `json:"pid,omitempty"`
	Message string `json:"message,omitempty"`
	// HeartbeatCounter and HeartbeatAgeNS are the heartbeat file's last
	// tick and its age when sampled.
	HeartbeatCounter uint64 `json:"heartbeat_counter,omitempty"`
	HeartbeatAgeNS   int64  `json:"heartbeat_age_ns,omitempty"`
}

// StatSample is one sample: the JSON object `stat -o json` prints (one
// per line with --watch).
type StatSample struct {
	TimeNS int64 `json:"time_ns"` // unix ns
	// Source is where the region paths came from: "daemon" or "registry".
	Source     string           `json:"source"`
	Daemon     DaemonState      `json:"daemon"`
	Partitions []PartitionStats `json:"partitions"`
	Slots      []stat.SlotStat  `json:"slots"`
	// Errors lists what could not be read (a region missing, unreadable).
	Errors []string `json:"errors,omitempty"`
}

// statSampler keeps what successive samples share.
type statSampler struct {
	cmd      *StatCmd
	g        *Globals
	rd       stat.CounterReader
	parts    []stat.Partition
	source   string
	prevPub  map[string]uint64
	prevTime time.Time
	daemon   DaemonState
	errs     []string
}

func (cmd *StatCmd) stateDir(g *Globals) string {
	if cmd.StateDir != "" {
		return cmd.StateDir
	}
	sock := g.Socket
	if sock == "" {
		sock = client.DefaultSocketPath()
	}
	return filepath.Dir(sock)
}

// Run prints one sample, or one every --interval with --watch.
func (cmd *StatCmd) Run(g *Globals) error {
	s := &statSampler{cmd: cmd, g: g, prevPub: map[string]uint64{}}
	defer s.rd.Close()
	tty := isTerminal(g.stdout)
	for i := 0; ; i++ {
		sample, err := s.sample(i%10 == 0)
		if err != nil {
			return err
		}
		if g.json() {
			err = writeJSONLine(g.stdout, sample)
		} else {
			if cmd.Watch && tty {
				fmt.Fprint(g.stdout, "\x1b[H\x1b[2J")
			}
			err = cmd.printText(g.stdout, sample)
			if cmd.Watch && !tty {
				fmt.Fprintln(g.stdout)
			}
		}
		if err != nil {
			return err
		}
		if !cmd.Watch {
			if sample.Daemon.State != "answering" && !g.json() {
				fmt.Fprintf(g.stderr, "kaelixctl: %s\n", sample.Daemon.Message)
			}
			return nil
		}
		select {
		case <-g.ctx.Done():
			return nil
		case <-time.After(cmd.Interval):
		}
	}
}

// sample takes one sample; relist asks the daemon (or the registry) for
// the partitions again.
func (s *statSampler) sample(relist bool) (StatSample, error) {
	cmd, g := s.cmd, s.g
	out := StatSample{}
	if relist || s.parts == nil {
		ds, parts, source, errs, err := s.list()
		if err != nil {
			return out, err
		}
		out.Daemon = ds
		s.parts, s.source, s.errs = parts, source, errs
		s.rd.Close() // remap: slot regions come and go
		s.daemon = ds
	} else {
		out.Daemon = s.daemon
		if hb, err := stat.ReadHeartbeat(s.cmd.stateDir(g)); err == nil {
			out.Daemon.HeartbeatCounter, out.Daemon.HeartbeatAgeNS = hb.Counter, time.Since(hb.Time).Nanoseconds()
		}
	}
	out.Source, out.Errors = s.source, append([]string(nil), s.errs...)
	now := time.Now()
	out.TimeNS = now.UnixNano()
	out.Partitions, out.Slots = []PartitionStats{}, []stat.SlotStat{}
	for _, p := range s.parts {
		c, err := s.rd.Read(p)
		if err != nil {
			out.Errors = append(out.Errors, fmt.Sprintf("%s partition %d: %v", p.Topic, p.Index, err))
			continue
		}
		r := PartitionStats{Topic: p.Topic, Partition: p.Index, Counters: c, RatePerSec: -1}
		if old, ok := s.prevPub[p.DataPath]; ok && !s.prevTime.IsZero() && c.Published >= old {
			r.RatePerSec = float64(c.Published-old) / now.Sub(s.prevTime).Seconds()
		}
		s.prevPub[p.DataPath] = c.Published
		out.Partitions = append(out.Partitions, r)
		slots, err := s.rd.Slots(p)
		if err != nil {
			out.Errors = append(out.Errors, fmt.Sprintf("%s partition %d slots: %v", p.Topic, p.Index, err))
			continue
		}
		out.Slots = append(out.Slots, slots...)
	}
	s.prevTime = now
	if cmd.Topic != "" && len(s.parts) == 0 && len(out.Errors) == 0 && out.Daemon.State == "answering" {
		return out, &client.BrokerError{Op: "stat", Code: wire.CodeNotFound, Message: fmt.Sprintf("topic %q not found", cmd.Topic)}
	}
	return out, nil
}

// list finds the partitions: from the daemon if it answers in time, else
// from its registry.
func (s *statSampler) list() (DaemonState, []stat.Partition, string, []string, error) {
	cmd, g := s.cmd, s.g
	var cause error = errors.New("not asked (--no-daemon)")
	if !cmd.NoDaemon {
		short := *g
		if cmd.DaemonTimeout > 0 && (short.Timeout <= 0 || cmd.DaemonTimeout < short.Timeout) {
			short.Timeout = cmd.DaemonTimeout
		}
		var list wire.TopicList
		if cause = short.listTopics(&list); cause == nil {
			return s.daemonState(nil), stat.FromTopics(list.Topics, cmd.Topic), "daemon", nil, nil
		}
		var be *client.BrokerError
		if errors.As(cause, &be) {
			return DaemonState{}, nil, "", nil, cause // it answered: with an error
		}
	}
	ds := s.daemonState(cause)
	dir := cmd.stateDir(g)
	reg, err := stat.ReadRegistry(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ds, nil, "registry", nil, fmt.Errorf("%s, and there is no registry in %s (pass --state-dir): %w", ds.Message, dir, err)
		}
		return ds, nil, "registry", nil, err
	}
	dirs := cmd.RegionDir
	if len(dirs) == 0 && cmd.ShmDir == "" {
		// Where the daemon said it keeps them (its --shm-dir may not be
		// the default).
		for _, d := range reg.RegionDirs {
			if st, err := os.Stat(d); err == nil && st.IsDir() {
				dirs = append(dirs, d)
			}
		}
	}
	if len(dirs) == 0 {
		name := cmd.ShmDir
		if name == "" {
			name = config.Default().Shm.DirName // kaelixd's default for this user
		}
		dirs = stat.Dirs("", "", name)
	}
	parts, err := stat.FromRegistry(reg, dirs, cmd.Topic)
	var errs []string
	if err != nil {
		errs = append(errs, err.Error())
	}
	if len(parts) == 0 && err != nil {
		return ds, nil, "registry", nil, fmt.Errorf("%s, and no partition could be read: %w", ds.Message, err)
	}
	if cmd.Topic != "" && len(parts) == 0 && err == nil {
		return ds, nil, "registry", nil, &client.BrokerError{Op: "stat", Code: wire.CodeNotFound,
			Message: fmt.Sprintf("topic %q not in the registry %s", cmd.Topic, filepath.Join(dir, stat.RegistryFileName))}
	}
	return ds, parts, "registry", errs, nil
}

// daemonState judges a daemon that did not answer (cause) by its process
// and heartbeat: dead if the heartbeat's pid is gone, stopped if it is
// stopped, else busy if the heartbeat advances within 300 ms (three
// default intervals), else hung. A nil cause: it answered.
func (s *statSampler) daemonState(cause error) DaemonState {
	dir := s.cmd.stateDir(s.g)
	hb, err := stat.ReadHeartbeat(dir)
	if err != nil {
		if cause == nil {
			return DaemonState{State: "answering"}
		}
		return DaemonState{State: "none", Message: fmt.Sprintf("kaelixd is not answering (%v) and there is no heartbeat in %s; figures read from shared memory", cause, dir)}
	}
	ds := DaemonState{PID: hb.PID, HeartbeatCounter: hb.Counter, HeartbeatAgeNS: time.Since(hb.Time).Nanoseconds()}
	if cause == nil {
		ds.State = "answering"
		return ds
	}
	age := time.Duration(ds.HeartbeatAgeNS).Round(time.Millisecond)
	switch st := processState(hb.PID); {
	case st == 0:
		ds.State = "dead"
		ds.Message = fmt.Sprintf("kaelixd is not answering: its pid %d is gone (last heartbeat %v ago); figures read from shared memory", hb.PID, age)
	case st == 'T' || st == 't':
		ds.State = "stopped"
		ds.Message = fmt.Sprintf("kaelixd is not answering: pid %d is stopped (SIGSTOP or a debugger; `kill -CONT %d` resumes it), last heartbeat %v ago; figures read from shared memory", hb.PID, hb.PID, age)
	default:
		time.Sleep(300 * time.Millisecond)
		if again, err := stat.ReadHeartbeat(dir); err == nil && again.Counter != hb.Counter {
			ds.State, ds.HeartbeatCounter = "busy", again.Counter
			ds.Message = fmt.Sprintf("kaelixd is not answering: pid %d's heartbeat advances (busy or overloaded); figures read from shared memory", hb.PID)
		} else {
			ds.State = "hung"
			ds.Message = fmt.Sprintf("kaelixd is not answering: pid %d runs but its heartbeat stopped %v ago (hung?); figures read from shared memory", hb.PID, age)
		}
	}
	ds.Message += fmt.Sprintf(" [%v]", cause)
	return ds
}

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

// processState returns the state letter of /proc/PID/stat, or 0 if the
// process does not exist or is a zombie.
func processState(pid int) byte {
	if pid <= 0 {
		return 0
	}
	s, err := proc.ReadStat("", pid)
	if err != nil || !s.Running() {
		return 0
	}
	return s.State
}

func (cmd *StatCmd) printText(w io.Writer, s StatSample) error {
	switch s.Daemon.State {
	case "answering":
		fmt.Fprintf(w, "kaelixd answering (pid %d); figures read from shared memory\n\n", s.Daemon.PID)
	default:
		fmt.Fprintf(w, "%s\n\n", s.Daemon.Message)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TOPIC\tPART\tPUBLISHED\tRATE/S\tCONSUMED\tLOST\tBACKPRESS\tUNBLOCKED\tEVICTED\tPUBS\tSUBS\tLAG")
	for _, r := range s.Partitions {
		c := r.Counters
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Topic, r.Partition, c.Published, humanRate(r.RatePerSec), c.Consumed,
			c.Lost, c.BackPressure, c.Unblocked, c.Evicted, c.Publishers, c.Subscribers, bytesize.Human(c.SlowestLagBytes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if cmd.Slots && len(s.Slots) > 0 {
		fmt.Fprintln(w)
		tw = newTable(w)
		fmt.Fprintln(tw, "TOPIC\tPART\tSLOT\tROLE\tGROUP\tPID\tPROCESS\tSTATE\tPOSITION\tLAG\tLAG-BYTES\tCONSUMED\tLOST")
		for _, r := range s.Slots {
			group, lag := "-", "?"
			if r.Group >= 0 {
				group = strconv.Itoa(r.Group)
			}
			if r.LagRecords >= 0 {
				lag = strconv.FormatInt(r.LagRecords, 10)
			}
			proc := r.Process
			if proc == "" {
				proc = "-"
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\t%d\t%d\n", r.Topic, r.Partition, r.Slot, r.Role, group, r.PID, proc,
				r.State, r.Position, lag, bytesize.Human(r.LagBytes), r.Consumed, r.Lost)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, e := range s.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	return nil
}

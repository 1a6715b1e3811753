// Package soak is Kaelix's crash and soak harness: real kaelixd,
// publisher and subscriber processes exchanging checked records through
// real topics while they are killed (SIGKILL), stopped (SIGSTOP) and
// restarted at random, with a ledger that survives every kill and a final
// table of what arrived, what was lost and whether every loss is
// accounted for. cmd/kaelix-soak and scripts/soak.sh run it; its tests
// are the crash matrix of issue 7.
//
// Every record carries its stream (publisher incarnation), a gap-free
// sequence, a publish timestamp and a CRC-32C (record.go). Subscribers
// check each record as it arrives and count into the ledger (ledger.go):
// corrupt, duplicated, reordered, lost inside a stream (a gap) and, at
// the end, lost at the end of a stream (the publisher's committed count
// against the last sequence seen). Queue-group members set one bit per
// (stream, sequence) they got, so the orchestrator can count what the
// group never delivered and compare it with what the ring counted lost.
package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// Options configures Run.
type Options struct {
	Duration  time.Duration // chaos phase; default 1 minute
	KillEvery time.Duration // mean time between chaos actions; default 500ms
	// EvictAfter is the daemon's daemon.evict_stalled_after; the chaos
	// sometimes stops a subscriber for longer. Default 1s.
	EvictAfter time.Duration
	Dir        string    // run directory (logs, ledger, socket); default a new temp dir
	Exe        string    // child executable; default os.Executable()
	Seed       uint64    // random seed; 0 = from the clock
	Log        io.Writer // progress lines; nil = discard
	PaceEvery  int       // publishers sleep 1 ms every PaceEvery records; default 16
	// HugePages is kaelixd's shm.hugepages (default off: regions on
	// /dev/shm, where the final check looks for leftovers; with auto or
	// required data regions go to hugetlbfs and that check covers
	// /dev/shm only).
	HugePages shm.Policy
}

// topicPlan is one soak topic and the processes around it.
type topicPlan struct {
	name     string
	kind     wire.Kind
	policy   wire.Policy
	capacity uint64
	pubs     int
	subs     int    // broadcast subscribers
	members  int    // queue-group members
	group    string // group name if members > 0
}

var plans = []topicPlan{
	{name: "soak.spsc-block", kind: wire.KindSPSC, policy: wire.PolicyBlock, capacity: 256 << 10, pubs: 1, subs: 1},
	{name: "soak.mpmc-block", kind: wire.KindMPMC, policy: wire.PolicyBlock, capacity: 256 << 10, pubs: 3, subs: 3},
	{name: "soak.mpmc-drop-oldest", kind: wire.KindMPMC, policy: wire.PolicyDropOldest, capacity: 64 << 10, pubs: 2, subs: 2},
	{name: "soak.mpmc-reject", kind: wire.KindMPMC, policy: wire.PolicyReject, capacity: 128 << 10, pubs: 2, subs: 2},
	{name: "soak.group-block", kind: wire.KindMPMC, policy: wire.PolicyBlock, capacity: 256 << 10, pubs: 2, subs: 1, members: 3, group: "workers"},
}

// slot is one role kept running: restarted under a new identity whenever
// its process ends.
type slot struct {
	role   string // "pub" or "sub"
	topic  int
	group  string
	proc   *Proc
	killed bool // we sent SIGKILL; its exit is expected
}

// Report is the outcome of a run.
type Report struct {
	Topics   []TopicReport
	Groups   []GroupReport
	Kills    map[string]int // SIGKILLs sent, by role
	Stops    map[string]int // SIGSTOP/SIGCONT pairs, by role
	Evicted  int            // stopped subscribers evicted by the daemon (daemon.evict_stalled_after)
	Restarts int            // kaelixd SIGKILL + restart
	// MaxReady is the longest time from a restarted kaelixd's exec to its
	// socket serving; MaxKillToReady from the SIGKILL of the old one.
	MaxReady, MaxKillToReady time.Duration
	ChildFailures            []string // children that exited with an error on their own
	ShmLeft                  []string // region files left after the final clean stop
	Records                  uint64
	Elapsed                  time.Duration
	Failures                 []string
}

// TopicReport sums one topic's broadcast subscribers.
type TopicReport struct {
	Name, Kind, Policy string
	Published          uint64 // committed records (sum of the streams' acked counts)
	Streams            int
	Delivered          uint64
	Corrupt, Dup       uint64
	Reorder            uint64
	Lost               uint64 // gaps + ends of streams, over subscribers
	RingLost           uint64 // what the ring told those subscribers they lost
	Unblocked          uint64 // ring counter: dead publishers' claims skipped
	Reaped             uint64
	Stalled            uint64 // ErrStalled results (live publisher mid-claim)
	Errors             uint64
	MaxLatency         time.Duration
	SlowOver100ms      uint64
	Checked            int // subscribers that ran their final check
}

// GroupReport is one queue group's accounting.
type GroupReport struct {
	Topic, Group string
	Published    uint64
	Delivered    uint64 // distinct (stream, seq) delivered to some member
	Dup          uint64
	Missing      uint64 // published but never delivered
	CountedLost  uint64 // the ring's lost count for the topic (dead members' held records)
	Unaccounted  uint64 // missing beyond what was counted: silently lost
}

// Failed reports whether the run broke an invariant.
func (r *Report) Failed() bool { return len(r.Failures) > 0 }

// Run runs one soak and returns its report. It fails only if the harness
// itself cannot run; broken invariants are in Report.Failures.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Duration <= 0 {
		o.Duration = time.Minute
	}
	if o.KillEvery <= 0 {
		o.KillEvery = 500 * time.Millisecond
	}
	if o.EvictAfter <= 0 {
		o.EvictAfter = time.Second
	}
	if o.PaceEvery <= 0 {
		o.PaceEvery = 16
	}
	if err := defaultRun(&o.Log, &o.Seed, &o.Exe); err != nil {
		return nil, err
	}
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "kaelix-soak-")
		if err != nil {
			return nil, err
		}
		o.Dir = dir
	} else if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	fmt.Fprintf(o.Log, "soak: dir %s seed %d duration %v\n", o.Dir, o.Seed, o.Duration)
	base := ChildArgs{
		Socket: filepath.Join(o.Dir, "kaelixd.sock"), StateDir: o.Dir,
		ShmDir: fmt.Sprintf("kaelix-soak-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6),
		Ledger: filepath.Join(o.Dir, "ledger"), EvictAfter: o.EvictAfter, Sweep: 100 * time.Millisecond,
		HugePages: o.HugePages,
	}
	shmDir := filepath.Join("/dev/shm", base.ShmDir)
	l, err := CreateLedger(base.Ledger)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	daemonLog := filepath.Join(o.Dir, "kaelixd.log")
	childLog := filepath.Join(o.Dir, "children.log")
	rep := &Report{Kills: map[string]int{}, Stops: map[string]int{}}
	start := time.Now()

	startDaemon := func() (*Proc, error) {
		t0 := time.Now()
		p, err := Spawn(o.Exe, "daemon", base, daemonLog)
		if err != nil {
			return nil, err
		}
		if _, err := p.Expect("ready", 10*time.Second); err != nil {
			p.Kill()
			return nil, err
		}
		rep.MaxReady = max(rep.MaxReady, time.Since(t0))
		return p, nil
	}
	d, err := startDaemon()
	if err != nil {
		return nil, fmt.Errorf("soak: kaelixd: %w", err)
	}
	defer func() {
		if d != nil && !d.Exited() {
			d.Kill()
		}
		os.RemoveAll(shmDir)
	}()
	c, err := client.Connect(ctx, client.Options{SocketPath: base.Socket, Name: "soak", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	for _, p := range plans {
		spec := client.TopicConfig{Name: p.name, Kind: p.kind, Policy: p.policy, CapacityBytes: p.capacity, MaxMessageBytes: 1024}
		if p.kind == wire.KindSPSC {
			spec.MaxPublishers, spec.MaxSubscribers = 1, 1
		}
		if _, err := c.CreateTopic(ctx, spec); err != nil {
			return nil, fmt.Errorf("soak: create %s: %w", p.name, err)
		}
	}

	nextGroupStream, nextStream, nextSub := 0, MaxGroupStreams, 0
	var slots []*slot
	spawn := func(s *slot) error {
		p := plans[s.topic]
		a := base
		a.Topic, a.TopicIndex, a.Policy, a.PaceEvery = p.name, s.topic, string(p.policy), o.PaceEvery
		switch s.role {
		case "pub":
			if p.members > 0 {
				if nextGroupStream >= MaxGroupStreams {
					return errors.New("soak: out of group stream ids")
				}
				a.ID, a.Count = nextGroupStream, MaxGroupSeq
				nextGroupStream++
			} else {
				if nextStream >= MaxStreams {
					return errors.New("soak: out of stream ids")
				}
				a.ID = nextStream
				nextStream++
			}
		default:
			if nextSub >= MaxSubs {
				return errors.New("soak: out of subscriber ids")
			}
			a.ID, a.Group = nextSub, s.group
			nextSub++
		}
		proc, err := Spawn(o.Exe, s.role, a, childLog)
		if err != nil {
			return err
		}
		s.proc, s.killed = proc, false
		return nil
	}
	// Subscribers first, so publishers' streams start after they joined.
	for i, p := range plans {
		for range p.subs {
			slots = append(slots, &slot{role: "sub", topic: i})
		}
		for range p.members {
			slots = append(slots, &slot{role: "sub", topic: i, group: p.group})
		}
	}
	for _, s := range slots {
		if err := spawn(s); err != nil {
			return nil, err
		}
	}
	for _, s := range slots {
		if _, err := s.proc.Expect("ready", 30*time.Second); err != nil {
			return nil, err
		}
	}
	for i, p := range plans {
		for range p.pubs {
			s := &slot{role: "pub", topic: i}
			if err := spawn(s); err != nil {
				return nil, err
			}
			slots = append(slots, s)
		}
	}

	// restart replaces ended processes; an exit we did not cause is a
	// failure unless it is a publisher that finished its stream, or an
	// eviction of a subscriber we had stopped (it exits with ExitEvicted
	// once continued; a repeat offender would be killed while stopped).
	restart := func() error {
		for _, s := range slots {
			if !s.proc.Exited() {
				continue
			}
			switch {
			case s.killed:
			case s.role == "pub" && s.proc.err == nil:
			case s.role == "sub" && s.proc.Cmd.ProcessState.ExitCode() == ExitEvicted:
				rep.Evicted++
				fmt.Fprintf(o.Log, "soak: %s on %s evicted by kaelixd after a stop\n", s.role, plans[s.topic].name)
			case s.role == "sub" && s.proc.Stopped():
				if ws, ok := s.proc.Cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
					rep.Evicted++
					fmt.Fprintf(o.Log, "soak: %s on %s killed by kaelixd while stopped\n", s.role, plans[s.topic].name)
				}
			default:
				rep.ChildFailures = append(rep.ChildFailures, fmt.Sprintf("%s %d on %s: %v", s.role, s.proc.Args.ID, plans[s.topic].name, s.proc.err))
			}
			if err := spawn(s); err != nil {
				return err
			}
		}
		return nil
	}
	alive := func(pred func(*slot) bool) []*slot {
		var out []*slot
		for _, s := range slots {
			if pred(s) && !s.proc.Exited() && !s.proc.Stopped() {
				out = append(out, s)
			}
		}
		return out
	}
	type stopped struct {
		s     *slot
		proc  *Proc
		until time.Time
	}
	var stops []stopped

	chaosEnd := time.Now().Add(o.Duration)
	lastReport := time.Now()
	for time.Now().Before(chaosEnd) && ctx.Err() == nil {
		time.Sleep(time.Duration(rng.Int64N(int64(2 * o.KillEvery))))
		now := time.Now()
		kept := stops[:0]
		for _, st := range stops {
			if now.After(st.until) {
				st.proc.Signal(syscall.SIGCONT)
			} else {
				kept = append(kept, st)
			}
		}
		stops = kept
		if err := restart(); err != nil {
			return nil, err
		}
		if now.Sub(lastReport) > 30*time.Second {
			lastReport = now
			fmt.Fprintf(o.Log, "soak: %v elapsed, kills %v, stops %v, kaelixd restarts %d, evictions %d, child failures %d\n",
				time.Since(start).Round(time.Second), rep.Kills, rep.Stops, rep.Restarts, rep.Evicted, len(rep.ChildFailures))
		}
		pubs := alive(func(s *slot) bool { return s.role == "pub" })
		subs := alive(func(s *slot) bool { return s.role == "sub" && s.group == "" })
		members := alive(func(s *slot) bool { return s.group != "" })
		switch a := rng.IntN(100); {
		case a < 25 && len(pubs) > 0: // publisher SIGKILL (often mid-claim under load)
			s := pubs[rng.IntN(len(pubs))]
			s.killed = true
			s.proc.Kill()
			rep.Kills["publisher"]++
		case a < 40 && len(subs) > 0:
			s := subs[rng.IntN(len(subs))]
			s.killed = true
			s.proc.Kill()
			rep.Kills["subscriber"]++
		case a < 55 && len(members) > 1: // keep one member so the group lives on
			s := members[rng.IntN(len(members))]
			s.killed = true
			s.proc.Kill()
			rep.Kills["group member"]++
		case a < 65 && len(pubs) > 0: // slow publisher: stopped for less than the unblock timeout
			s := pubs[rng.IntN(len(pubs))]
			s.proc.Signal(syscall.SIGSTOP)
			stops = append(stops, stopped{s, s.proc, now.Add(time.Duration(10+rng.IntN(60)) * time.Millisecond)})
			rep.Stops["publisher"]++
		case a < 80 && len(subs)+len(members) > 0: // slow subscriber; sometimes past the eviction timeout
			all := append(subs, members...)
			s := all[rng.IntN(len(all))]
			if s.group != "" && len(members) < 2 {
				break
			}
			d := time.Duration(20+rng.IntN(300)) * time.Millisecond
			if rng.IntN(4) == 0 {
				d = o.EvictAfter + 2*time.Second
			}
			s.proc.Signal(syscall.SIGSTOP)
			stops = append(stops, stopped{s, s.proc, now.Add(d)})
			rep.Stops["subscriber"]++
		case a < 90: // kaelixd SIGKILL under load, restarted at once
			killed := time.Now()
			d.Kill()
			nd, err := startDaemon()
			if err != nil {
				return nil, fmt.Errorf("soak: restart kaelixd: %w", err)
			}
			d = nd
			rep.Restarts++
			rep.MaxKillToReady = max(rep.MaxKillToReady, time.Since(killed))
		}
	}

	// Wind down: continue everyone, stop publishers, then let subscribers
	// drain and check.
	fmt.Fprintf(o.Log, "soak: chaos over after %v; draining\n", time.Since(start).Round(time.Second))
	for _, st := range stops {
		st.proc.Signal(syscall.SIGCONT)
	}
	time.Sleep(50 * time.Millisecond)
	if err := restart(); err != nil {
		return nil, err
	}
	// A child restarted just now may not have installed its SIGTERM handler
	// yet (the Go runtime starts first); give it time, so that stopping it
	// is not mistaken for a failure.
	time.Sleep(time.Second)
	for _, s := range slots {
		if s.role == "pub" {
			s.proc.Signal(syscall.SIGTERM)
		}
	}
	for _, s := range slots {
		if s.role == "pub" {
			if err := s.proc.Wait(30 * time.Second); err != nil && !s.killed {
				rep.ChildFailures = append(rep.ChildFailures, fmt.Sprintf("pub %d on %s at stop: %v", s.proc.Args.ID, plans[s.topic].name, err))
				s.proc.Kill()
			}
		}
	}
	for _, s := range slots {
		if s.role == "sub" {
			s.proc.Signal(syscall.SIGTERM)
		}
	}
	for _, s := range slots {
		if s.role == "sub" {
			if err := s.proc.Wait(60 * time.Second); s.proc.Exited() && s.proc.Cmd.ProcessState.ExitCode() == ExitEvicted {
				rep.Evicted++ // stopped until the wind-down, evicted meanwhile
			} else if err != nil {
				rep.ChildFailures = append(rep.ChildFailures, fmt.Sprintf("sub %d on %s at stop: %v", s.proc.Args.ID, plans[s.topic].name, err))
				s.proc.Kill()
			}
		}
	}
	infos := map[string]client.TopicInfo{}
	for _, p := range plans {
		ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var info client.TopicInfo
		err := retry(func() (err error) { info, err = c.TopicInfo(ictx, p.name); return })
		cancel()
		if err != nil {
			return nil, fmt.Errorf("soak: topic info %s: %w", p.name, err)
		}
		infos[p.name] = info
	}
	c.Close()
	d.Signal(syscall.SIGTERM)
	if err := d.Wait(30 * time.Second); err != nil {
		rep.Failures = append(rep.Failures, fmt.Sprintf("kaelixd clean stop: %v", err))
		d.Kill()
	}
	if ents, err := os.ReadDir(shmDir); err == nil {
		for _, e := range ents {
			rep.ShmLeft = append(rep.ShmLeft, e.Name())
		}
	}
	rep.Elapsed = time.Since(start)
	collect(l, rep, infos, nextSub)
	judge(rep)
	return rep, nil
}

// collect sums the ledger into the report.
func collect(l *Ledger, rep *Report, infos map[string]client.TopicInfo, subs int) {
	for i, p := range plans {
		tr := TopicReport{Name: p.name, Kind: string(p.kind), Policy: string(p.policy)}
		for _, part := range infos[p.name].Partitions {
			tr.Unblocked += part.Counters.Unblocked
			tr.Reaped += part.Counters.Reaped
		}
		var streams []int
		for s := 0; s < MaxStreams; s++ {
			if l.stream(s, stTopic).Load() == uint64(i+1) {
				streams = append(streams, s)
				tr.Published += l.stream(s, stAcked).Load()
			}
		}
		tr.Streams = len(streams)
		rep.Records += tr.Published
		for s := 0; s < subs; s++ {
			if l.sub(s, sbTopic).Load() != uint64(i+1) || l.sub(s, sbGroup).Load() != 0 {
				continue
			}
			tr.Delivered += l.sub(s, sbReceived).Load()
			tr.Corrupt += l.sub(s, sbCorrupt).Load()
			tr.Dup += l.sub(s, sbDup).Load()
			tr.Reorder += l.sub(s, sbReorder).Load()
			tr.Lost += l.sub(s, sbGapLost).Load() + l.sub(s, sbEndLost).Load()
			tr.RingLost += l.sub(s, sbRingLost).Load()
			tr.Stalled += l.sub(s, sbStalled).Load()
			tr.Errors += l.sub(s, sbErrors).Load()
			tr.MaxLatency = max(tr.MaxLatency, time.Duration(l.sub(s, sbMaxLatNS).Load()))
			tr.SlowOver100ms += l.sub(s, sbLatOver).Load()
			if l.sub(s, sbChecked).Load() == 1 {
				tr.Checked++
			}
		}
		rep.Topics = append(rep.Topics, tr)
		if p.members == 0 {
			continue
		}
		gr := GroupReport{Topic: p.name, Group: p.group}
		for _, part := range infos[p.name].Partitions {
			gr.CountedLost += part.Counters.Lost
		}
		for s := 0; s < subs; s++ {
			if l.sub(s, sbTopic).Load() == uint64(i+1) && l.sub(s, sbGroup).Load() == 1 {
				gr.Dup += l.sub(s, sbDup).Load() + l.sub(s, sbReorder).Load() + l.sub(s, sbCorrupt).Load()
				tr.Errors += l.sub(s, sbErrors).Load()
			}
		}
		for _, s := range streams {
			n := min(l.stream(s, stAcked).Load(), MaxGroupSeq)
			got := l.delivered(s, n)
			gr.Published += n
			gr.Delivered += got
			gr.Missing += n - got
		}
		if gr.Missing > gr.CountedLost {
			gr.Unaccounted = gr.Missing - gr.CountedLost
		}
		rep.Groups = append(rep.Groups, gr)
	}
}

// judge lists every broken invariant.
func judge(rep *Report) {
	f := func(format string, args ...any) { rep.Failures = append(rep.Failures, fmt.Sprintf(format, args...)) }
	for _, t := range rep.Topics {
		if t.Corrupt+t.Dup+t.Reorder > 0 {
			f("%s: %d corrupt, %d duplicated, %d reordered records delivered", t.Name, t.Corrupt, t.Dup, t.Reorder)
		}
		if t.Policy != string(wire.PolicyDropOldest) && t.Lost > 0 {
			f("%s: %d records lost under policy %s", t.Name, t.Lost, t.Policy)
		}
		if t.Policy == string(wire.PolicyDropOldest) && t.Lost > t.RingLost {
			f("%s: %d records lost but only %d counted by the ring", t.Name, t.Lost, t.RingLost)
		}
		if t.Errors > 0 {
			f("%s: %d unexpected subscriber errors (see children.log)", t.Name, t.Errors)
		}
		if t.Published == 0 {
			f("%s: nothing published", t.Name)
		}
	}
	for _, g := range rep.Groups {
		if g.Dup > 0 {
			f("group %s on %s: %d records delivered twice, out of order or corrupt", g.Group, g.Topic, g.Dup)
		}
		if g.Unaccounted > 0 {
			f("group %s on %s: %d records never delivered and not counted lost", g.Group, g.Topic, g.Unaccounted)
		}
	}
	for _, c := range rep.ChildFailures {
		f("child failed: %s", c)
	}
	if len(rep.ShmLeft) > 0 {
		f("left in /dev/shm after the clean stop: %v", rep.ShmLeft)
	}
	if rep.MaxKillToReady > 2*time.Second {
		f("kaelixd restart took %v (kill to ready), want < 2s", rep.MaxKillToReady)
	}
}

// WriteTable prints the report as aligned text tables.
func (r *Report) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "topic\tkind\tpolicy\tstreams\tpublished\tdelivered\tcorrupt\tduplicated\treordered\tlost\tcounted lost\tunblocked\treaped\tstalled polls\tmax latency\t>100ms\t")
	for _, t := range r.Topics {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%v\t%d\t\n", t.Name, t.Kind, t.Policy, t.Streams, t.Published, t.Delivered,
			t.Corrupt, t.Dup, t.Reorder, t.Lost, t.RingLost, t.Unblocked, t.Reaped, t.Stalled, t.MaxLatency.Round(time.Microsecond), t.SlowOver100ms)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "queue group\ttopic\tpublished\tdelivered once\tdup/reorder/corrupt\tnever delivered\tcounted lost\tunaccounted\t")
	for _, g := range r.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", g.Group, g.Topic, g.Published, g.Delivered, g.Dup, g.Missing, g.CountedLost, g.Unaccounted)
	}
	tw.Flush()
	fmt.Fprintln(w)
	keys := func(m map[string]int) string {
		var ks []string
		for k, v := range m {
			ks = append(ks, fmt.Sprintf("%s %d", k, v))
		}
		sort.Strings(ks)
		return strings.Join(ks, ", ")
	}
	fmt.Fprintf(w, "elapsed %v; records %d\n", r.Elapsed.Round(time.Second), r.Records)
	fmt.Fprintf(w, "SIGKILL: %s; kaelixd %d (restart: exec to ready max %v, kill to ready max %v)\n", keys(r.Kills), r.Restarts, r.MaxReady.Round(time.Millisecond), r.MaxKillToReady.Round(time.Millisecond))
	fmt.Fprintf(w, "SIGSTOP: %s; stopped subscribers evicted by kaelixd: %d\n", keys(r.Stops), r.Evicted)
	if len(r.Failures) == 0 {
		fmt.Fprintln(w, "result: PASS (no corrupt, duplicated or reordered record; no loss under block/reject; every drop-oldest and queue-group loss counted)")
		return
	}
	fmt.Fprintln(w, "result: FAIL")
	for _, f := range r.Failures {
		fmt.Fprintln(w, "  -", f)
	}
}

// defaultRun fills the defaults both soaks share: progress to nowhere, a
// seed from the clock, this executable for the children.
func defaultRun(log *io.Writer, seed *uint64, exe *string) error {
	if *log == nil {
		*log = io.Discard
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	if *exe == "" {
		e, err := os.Executable()
		if err != nil {
			return err
		}
		*exe = e
	}
	return nil
}

package soak

// The client churn soak (issue 11, "also under load"): Procs client
// processes attach to and detach from random topics, about Rate times a
// minute in all, over Topics x Partitions partitions, while a beacon
// process publishes into every partition. The orchestrator SIGKILLs and
// SIGSTOPs/SIGCONTs them at random and replaces those that end; each also
// ends cleanly after a few attachments. Invariants checked:
//
//   - kaelixd's open descriptors, goroutines and region files end where
//     they started (measured with only the beacon attached, before and
//     after), and its anonymous memory does not grow beyond a bound;
//   - no slot leaks: once every churn process is gone, every partition's
//     ring holds exactly the beacon's publisher slot and no subscriber
//     slot, and the daemon registers the same;
//   - every subscriber that attached receives: each churn subscriber must
//     get a record within DeafAfter of running time after Subscribe
//     returned (the beacon publishes into every partition every 100 ms);
//   - no child fails on its own (only our SIGKILLs end processes early).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/shm"
)

// ChurnOptions configures RunChurn. Zero fields take the defaults of
// issue 11's soak: 50 processes, 1,000 attach/detach cycles a minute, 64
// topics x 4 partitions, 1 minute.
type ChurnOptions struct {
	Duration   time.Duration // churn phase; default 1 minute
	Procs      int           // churn processes alive at once; default 50
	Rate       int           // attach/detach cycles a minute, over all processes; default 1000
	Topics     int           // default 64
	Partitions int           // per topic; default 4
	// DeafAfter is how long a subscriber may run after attaching without
	// receiving a record before it counts as deaf. Default 2s: the beacon
	// publishes into every partition every 100 ms, so a subscriber that
	// runs 2 s without a record missed some 80 of them.
	DeafAfter time.Duration
	Dir       string     // run directory (logs, socket); default a new temp dir
	Exe       string     // child executable; default os.Executable()
	Seed      uint64     // random seed; 0 = from the clock
	Log       io.Writer  `json:"-"` // progress lines; nil = discard
	HugePages shm.Policy // kaelixd's shm.hugepages, as Options.HugePages
}

// ChurnArgs are a churn child's parameters (in ChildArgs.Churn).
type ChurnArgs struct {
	Topics     int           `json:"topics"`
	Partitions int           `json:"partitions"`
	Cycle      time.Duration `json:"cycle"`  // mean length of one attachment
	Cycles     int           `json:"cycles"` // attachments before a clean exit
	Seed       uint64        `json:"seed"`
	DeafAfter  time.Duration `json:"deaf_after"`
}

// ChurnSample is kaelixd's footprint at one moment.
type ChurnSample struct {
	RSSKiB, AnonKiB, ShmemKiB int // VmRSS, RssAnon, RssShmem
	FDs                       int
	Goroutines                int
	Threads                   int
	RegionFiles               int
	Clients                   int
}

// ChurnReport is the outcome of RunChurn.
type ChurnReport struct {
	Options           ChurnOptions
	Start, End        ChurnSample
	Peak              ChurnSample   // the largest of each figure, sampled every 15 s during the churn
	Elapsed           time.Duration // of the churn phase
	Spawns            int           // churn processes started
	Attaches          uint64        // Subscribe/NewPublisher that returned (subscribers + publishers)
	SubAttaches       uint64
	CleanDetaches     uint64 // Close, the process living on or exiting cleanly
	KilledAttached    int    // SIGKILLs of a process that held an attachment
	Kills             int
	Stops             int // SIGSTOP/SIGCONT pairs
	CleanExits        int
	AttachErrors      uint64 // attaches refused (e.g. no free slot); counted, not failures
	PeerDeaths        uint64 // kaelix_peer_deaths_total during the run
	BeaconRecords     uint64
	SubRecords        uint64 // records the churn subscribers received
	Deaf              []string
	ChildFailures     []string
	SlotLeaks         []string
	ShmLeft           []string
	Failures          []string
	FDsStart, FDsEnd  []string // descriptor targets, when the counts differ
	Seed              uint64
	Machine           string
	SettledIn         time.Duration // from the last churn process's end to no leak seen
	TopicsWithRecords int
	GoroutineDump     string // kaelixd's log holding its goroutine dump, when too many were left
}

// goroutineSlack is how many goroutines kaelixd may have at the end beyond
// the start: the HTTP server may keep an idle goroutine or two between
// scrapes.
const goroutineSlack = 2

// Failed reports whether an invariant broke.
func (r *ChurnReport) Failed() bool { return len(r.Failures) > 0 }

func (o *ChurnOptions) defaults() error {
	if o.Duration <= 0 {
		o.Duration = time.Minute
	}
	if o.Procs <= 0 {
		o.Procs = 50
	}
	if o.Rate <= 0 {
		o.Rate = 1000
	}
	if o.Topics <= 0 {
		o.Topics = 64
	}
	if o.Partitions <= 0 {
		o.Partitions = 4
	}
	if o.DeafAfter <= 0 {
		o.DeafAfter = 2 * time.Second
	}
	if err := defaultRun(&o.Log, &o.Seed, &o.Exe); err != nil {
		return err
	}
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "kaelix-churn-")
		if err != nil {
			return err
		}
		o.Dir = dir
	}
	return os.MkdirAll(o.Dir, 0o700)
}

func churnTopic(i int) string { return fmt.Sprintf("churn.t%02d", i) }

// churnSlot is one churn process position: a process replaced whenever it
// ends, until the run ends.
type churnSlot struct {
	mu       sync.Mutex
	proc     *Proc
	attached bool // between its "A" and "D" lines
	killed   bool // we sent SIGKILL to proc
	stopped  bool
}

// RunChurn runs the churn soak. It fails only if the harness cannot run;
// broken invariants are in ChurnReport.Failures.
func RunChurn(ctx context.Context, o ChurnOptions) (*ChurnReport, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	rep := &ChurnReport{Options: o, Seed: o.Seed, Machine: machine()}
	fmt.Fprintf(o.Log, "churn: dir %s seed %d: %d processes, %d attach/detach a minute, %d topics x %d partitions, %v\n",
		o.Dir, o.Seed, o.Procs, o.Rate, o.Topics, o.Partitions, o.Duration)
	base := ChildArgs{
		Socket: filepath.Join(o.Dir, "kaelixd.sock"), StateDir: o.Dir, HTTP: true, HugePages: o.HugePages,
		ShmDir: fmt.Sprintf("kaelix-churn-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6),
	}
	shmDir := filepath.Join("/dev/shm", base.ShmDir)
	childLog := filepath.Join(o.Dir, "children.log")

	d, err := Spawn(o.Exe, "daemon", base, filepath.Join(o.Dir, "kaelixd.log"))
	if err != nil {
		return nil, err
	}
	defer func() {
		if !d.Exited() {
			d.Kill()
		}
		os.RemoveAll(shmDir)
	}()
	line, err := d.Expect("metrics ", 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("churn: kaelixd: %w", err)
	}
	metricsAddr := strings.TrimPrefix(line, "metrics ")
	if _, err := d.Expect("ready", 30*time.Second); err != nil {
		return nil, fmt.Errorf("churn: kaelixd: %w", err)
	}
	c, err := client.Connect(ctx, client.Options{SocketPath: base.Socket, Name: "churn", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	for i := range o.Topics {
		spec := client.TopicConfig{Name: churnTopic(i), Partitions: o.Partitions, CapacityBytes: 64 << 10, MaxMessageBytes: 256,
			MaxPublishers: 8, MaxSubscribers: 16, MaxGroups: 1, Policy: client.PolicyDropOldest}
		if i%2 == 0 {
			spec.Policy = client.PolicyBlock
		}
		if _, err := c.CreateTopic(ctx, spec); err != nil {
			return nil, fmt.Errorf("churn: create %s: %w", spec.Name, err)
		}
	}
	ca := ChurnArgs{Topics: o.Topics, Partitions: o.Partitions, DeafAfter: o.DeafAfter,
		Cycle: time.Duration(int64(o.Procs) * int64(time.Minute) / int64(o.Rate))}
	ba := base
	ba.Churn = &ca
	beacon, err := Spawn(o.Exe, "churn-beacon", ba, childLog)
	if err != nil {
		return nil, err
	}
	defer func() {
		if !beacon.Exited() {
			beacon.Kill()
		}
	}()
	if _, err := beacon.Expect("ready", 60*time.Second); err != nil {
		return nil, fmt.Errorf("churn: beacon: %w", err)
	}
	var beaconErrs, beaconRecords atomic.Uint64
	var beaconMu sync.Mutex
	var beaconFirst string
	beaconRead := make(chan struct{})
	go func() {
		defer close(beaconRead)
		for l := range beacon.lines {
			switch {
			case strings.HasPrefix(l, "E "):
				if beaconErrs.Add(1) == 1 {
					beaconMu.Lock()
					beaconFirst = l
					beaconMu.Unlock()
				}
			case strings.HasPrefix(l, "published "):
				n, _ := strconv.ParseUint(strings.TrimPrefix(l, "published "), 10, 64)
				beaconRecords.Store(n)
			}
		}
	}()
	time.Sleep(2 * time.Second) // let the daemon settle with the beacon attached
	deaths0 := churnDeaths(ctx, c)
	if rep.Start, err = churnSample(ctx, d.Cmd.Process.Pid, metricsAddr, shmDir, c); err != nil {
		return nil, err
	}
	fdsStart := fdTargets(d.Cmd.Process.Pid)
	rep.Peak = rep.Start

	// The churn.
	var (
		attaches, subAttaches, detaches, attachErrs, subRecords atomic.Uint64
		mu                                                      sync.Mutex // guards rep's slices and counters below
		wg, readers                                             sync.WaitGroup
	)
	ending := make(chan struct{})
	slots := make([]*churnSlot, o.Procs)
	seq := 0
	spawn := func(s *churnSlot) error {
		mu.Lock()
		seq++
		a := base
		a.HTTP = false
		cc := ca
		cc.Seed = o.Seed + uint64(seq)*0x9e3779b97f4a7c15
		cc.Cycles = 2 + int(cc.Seed%5)
		a.Churn, a.ID = &cc, seq
		rep.Spawns++
		mu.Unlock()
		p, err := Spawn(o.Exe, "churn", a, childLog)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.proc, s.attached, s.killed, s.stopped = p, false, false, false
		s.mu.Unlock()
		readers.Add(1)
		go func() {
			defer readers.Done()
			for l := range p.lines {
				switch {
				case strings.HasPrefix(l, "A "):
					attaches.Add(1)
					if strings.HasPrefix(l, "A sub") {
						subAttaches.Add(1)
					}
					s.mu.Lock()
					s.attached = true
					s.mu.Unlock()
				case strings.HasPrefix(l, "D "):
					detaches.Add(1)
					f := strings.Fields(l)
					if n, err := strconv.ParseUint(f[len(f)-1], 10, 64); err == nil && f[1] == "sub" {
						subRecords.Add(n)
					}
					s.mu.Lock()
					s.attached = false
					s.mu.Unlock()
				case strings.HasPrefix(l, "N "):
					attachErrs.Add(1)
				case strings.HasPrefix(l, "DEAF "), strings.HasPrefix(l, "E "):
					mu.Lock()
					if strings.HasPrefix(l, "DEAF ") {
						rep.Deaf = append(rep.Deaf, fmt.Sprintf("churn %d: %s", p.Args.ID, l))
					} else {
						rep.ChildFailures = append(rep.ChildFailures, fmt.Sprintf("churn %d: %s", p.Args.ID, l))
					}
					mu.Unlock()
				}
			}
		}()
		return nil
	}
	for i := range slots {
		slots[i] = &churnSlot{}
		if err := spawn(slots[i]); err != nil {
			return nil, err
		}
	}
	// One supervisor per slot replaces its process when it ends.
	for _, s := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				s.mu.Lock()
				p := s.proc
				s.mu.Unlock()
				<-p.exit
				s.mu.Lock()
				killed := s.killed
				s.mu.Unlock()
				mu.Lock()
				switch {
				case killed:
				case p.err == nil:
					rep.CleanExits++
				default:
					select {
					case <-ending: // SIGTERMed or SIGKILLed at the end
					default:
						rep.ChildFailures = append(rep.ChildFailures, fmt.Sprintf("churn %d exited on its own: %v", p.Args.ID, p.err))
					}
				}
				mu.Unlock()
				select {
				case <-ending:
					return
				default:
				}
				if err := spawn(s); err != nil {
					mu.Lock()
					rep.Failures = append(rep.Failures, "respawn: "+err.Error())
					mu.Unlock()
					return
				}
			}
		}()
	}

	// Chaos: a fifth as many actions as attach/detach cycles, half SIGKILL,
	// half SIGSTOP for 0.1-1.5 s.
	chaosEvery := time.Duration(int64(time.Minute) * 5 / int64(o.Rate))
	start := time.Now()
	end := start.Add(o.Duration)
	lastLog := start
	type contAt struct {
		s    *churnSlot
		p    *Proc
		when time.Time
	}
	var conts []contAt
	for now := time.Now(); now.Before(end) && ctx.Err() == nil; now = time.Now() {
		time.Sleep(min(time.Duration(rng.Int64N(int64(2*chaosEvery))), time.Until(end)))
		now = time.Now()
		kept := conts[:0]
		for _, ct := range conts {
			if now.After(ct.when) {
				ct.p.Signal(syscall.SIGCONT)
				ct.s.mu.Lock()
				ct.s.stopped = false
				ct.s.mu.Unlock()
			} else {
				kept = append(kept, ct)
			}
		}
		conts = kept
		s := slots[rng.IntN(len(slots))]
		s.mu.Lock()
		p, busy := s.proc, s.stopped || s.killed
		attached := s.attached
		s.mu.Unlock()
		if busy || p.Exited() {
			continue
		}
		if rng.IntN(2) == 0 {
			s.mu.Lock()
			s.killed = true
			s.mu.Unlock()
			p.Signal(syscall.SIGKILL)
			mu.Lock()
			rep.Kills++
			if attached {
				rep.KilledAttached++
			}
			mu.Unlock()
		} else {
			p.Signal(syscall.SIGSTOP)
			s.mu.Lock()
			s.stopped = true
			s.mu.Unlock()
			conts = append(conts, contAt{s, p, now.Add(time.Duration(100+rng.IntN(1400)) * time.Millisecond)})
			mu.Lock()
			rep.Stops++
			mu.Unlock()
		}
		if now.Sub(lastLog) >= 15*time.Second {
			lastLog = now
			if smp, err := churnSample(ctx, d.Cmd.Process.Pid, metricsAddr, shmDir, c); err == nil {
				rep.Peak = smp.max(rep.Peak)
			}
			mu.Lock()
			fmt.Fprintf(o.Log, "churn: %v: %d attaches, %d clean detaches, %d kills, %d stops, %d spawns, %d deaf, %d child failures\n",
				now.Sub(start).Round(time.Second), attaches.Load(), detaches.Load(), rep.Kills, rep.Stops, rep.Spawns, len(rep.Deaf), len(rep.ChildFailures))
			mu.Unlock()
		}
	}
	rep.Elapsed = time.Since(start)

	// Wind down: continue the stopped, SIGTERM everyone (a clean detach),
	// SIGKILL what is left after 15 s.
	close(ending)
	for _, ct := range conts {
		ct.p.Signal(syscall.SIGCONT)
	}
	for _, s := range slots {
		s.mu.Lock()
		p := s.proc
		s.mu.Unlock()
		p.Signal(syscall.SIGCONT)
		p.Signal(syscall.SIGTERM)
	}
	for _, s := range slots {
		s.mu.Lock()
		p := s.proc
		s.mu.Unlock()
		if err := p.Wait(15 * time.Second); err != nil && !p.Exited() {
			mu.Lock()
			rep.Failures = append(rep.Failures, fmt.Sprintf("churn %d did not stop on SIGTERM in 15s", p.Args.ID))
			mu.Unlock()
			p.Kill()
		}
	}
	wg.Wait()
	readers.Wait() // every churn process's output read
	gone := time.Now()
	rep.Attaches, rep.SubAttaches, rep.CleanDetaches, rep.AttachErrors = attaches.Load(), subAttaches.Load(), detaches.Load(), attachErrs.Load()
	rep.SubRecords = subRecords.Load()
	fmt.Fprintf(o.Log, "churn: churn over after %v; settling\n", rep.Elapsed.Round(time.Second))

	// No slot leaks: only the beacon (one publisher slot per partition)
	// and this client remain. The daemon frees dead clients' slots within
	// milliseconds and forgets closed connections' pids after 2 s.
	var leaks []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		leaks = churnLeaks(ctx, c, o.Topics)
		if len(leaks) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep.SettledIn = time.Since(gone)
	rep.SlotLeaks = leaks
	time.Sleep(3 * time.Second) // lingering pidfds (2 s after a close) are dropped
	if rep.End, err = churnSample(ctx, d.Cmd.Process.Pid, metricsAddr, shmDir, c); err != nil {
		return nil, err
	}
	// A goroutine still finishing its work (an HTTP connection closing, a
	// timer's callback) shows in one sample and is gone in the next; a
	// leaked one stays in all of them. Sample for up to 15 s and keep the
	// fewest; if that is still too many, have kaelixd dump its stacks into
	// its log (SIGUSR1) so the report can say which.
	for until := time.Now().Add(15 * time.Second); rep.End.Goroutines > rep.Start.Goroutines+goroutineSlack && time.Now().Before(until); {
		time.Sleep(500 * time.Millisecond)
		if smp, err := churnSample(ctx, d.Cmd.Process.Pid, metricsAddr, shmDir, c); err == nil && smp.Goroutines < rep.End.Goroutines {
			rep.End.Goroutines = smp.Goroutines
		}
	}
	if rep.End.Goroutines > rep.Start.Goroutines+goroutineSlack {
		d.Signal(syscall.SIGUSR1)
		time.Sleep(time.Second)
		rep.GoroutineDump = filepath.Join(o.Dir, "kaelixd.log")
	}
	rep.PeerDeaths = churnDeaths(ctx, c) - deaths0
	if rep.End.FDs != rep.Start.FDs {
		rep.FDsStart, rep.FDsEnd = fdsStart, fdTargets(d.Cmd.Process.Pid)
	}
	for i := range o.Topics {
		if info, err := c.TopicInfo(ctx, churnTopic(i)); err == nil {
			var n uint64
			for _, p := range info.Partitions {
				n += p.Counters.Consumed
			}
			if n > 0 {
				rep.TopicsWithRecords++
			}
		}
	}

	// Stop the beacon, then the daemon; nothing may be left in /dev/shm.
	beacon.Signal(syscall.SIGTERM)
	if err := beacon.Wait(15 * time.Second); err != nil {
		rep.Failures = append(rep.Failures, "beacon: "+err.Error())
	} else {
		<-beaconRead
	}
	rep.BeaconRecords = beaconRecords.Load()
	beaconMu.Lock()
	if n := beaconErrs.Load(); n > 0 {
		rep.ChildFailures = append(rep.ChildFailures, fmt.Sprintf("beacon: %d publish errors, first: %s", n, beaconFirst))
	}
	beaconMu.Unlock()
	c.Close()
	d.Signal(syscall.SIGTERM)
	if err := d.Wait(30 * time.Second); err != nil {
		rep.Failures = append(rep.Failures, "kaelixd stop: "+err.Error())
	}
	if ents, err := os.ReadDir(shmDir); err == nil {
		for _, e := range ents {
			rep.ShmLeft = append(rep.ShmLeft, e.Name())
		}
	}
	rep.judge()
	return rep, nil
}

// judge fills Failures.
func (r *ChurnReport) judge() {
	f := func(format string, args ...any) { r.Failures = append(r.Failures, fmt.Sprintf(format, args...)) }
	s, e := r.Start, r.End
	if e.FDs != s.FDs {
		f("kaelixd open descriptors: %d at the start, %d at the end", s.FDs, e.FDs)
	}
	if e.RegionFiles != s.RegionFiles {
		f("region files: %d at the start, %d at the end", s.RegionFiles, e.RegionFiles)
	}
	if e.Goroutines > s.Goroutines+goroutineSlack {
		f("kaelixd goroutines: %d at the start, %d at the end (the fewest of 30 samples over 15 s); stacks in %s", s.Goroutines, e.Goroutines, r.GoroutineDump)
	}
	// Anonymous memory (the Go heap and stacks) may grow by what the
	// runtime keeps for reuse, not without bound. Shared memory grows as
	// the rings' pages are written, and is not judged.
	if e.AnonKiB > s.AnonKiB*3/2+16<<10 {
		f("kaelixd anonymous memory: %d KiB at the start, %d KiB at the end", s.AnonKiB, e.AnonKiB)
	}
	if e.Clients != s.Clients {
		f("clients: %d at the start, %d at the end", s.Clients, e.Clients)
	}
	for _, l := range r.SlotLeaks {
		f("slot leak: %s", l)
	}
	for _, d := range r.Deaf {
		f("deaf subscriber: %s", d)
	}
	for _, c := range r.ChildFailures {
		f("child failure: %s", c)
	}
	if len(r.ShmLeft) > 0 {
		f("%d region files left after kaelixd stopped: %v", len(r.ShmLeft), r.ShmLeft[:min(5, len(r.ShmLeft))])
	}
	if r.Attaches == 0 || r.SubAttaches == 0 {
		f("no attaches happened")
	}
	if r.PeerDeaths > uint64(r.Kills) {
		f("peer deaths %d exceed the %d SIGKILLs sent", r.PeerDeaths, r.Kills)
	}
}

// WriteTable prints the report.
func (r *ChurnReport) WriteTable(w io.Writer) {
	o := r.Options
	fmt.Fprintf(w, "client churn: %d processes, target %d attach/detach a minute, %d topics x %d partitions, %v (seed %d)\n",
		o.Procs, o.Rate, o.Topics, o.Partitions, r.Elapsed.Round(time.Second), r.Seed)
	fmt.Fprintf(w, "machine: %s\n\n", r.Machine)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "kaelixd\tstart\tpeak during churn\tend")
	row := func(name string, a, p, b int) { fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", name, a, p, b) }
	s, p, e := r.Start, r.Peak, r.End
	row("RSS (KiB)", s.RSSKiB, p.RSSKiB, e.RSSKiB)
	row("  anonymous (KiB)", s.AnonKiB, p.AnonKiB, e.AnonKiB)
	row("  shared memory (KiB)", s.ShmemKiB, p.ShmemKiB, e.ShmemKiB)
	row("open descriptors", s.FDs, p.FDs, e.FDs)
	row("goroutines", s.Goroutines, p.Goroutines, e.Goroutines)
	row("threads", s.Threads, p.Threads, e.Threads)
	row("region files", s.RegionFiles, p.RegionFiles, e.RegionFiles)
	row("clients", s.Clients, p.Clients, e.Clients)
	tw.Flush()
	mins := r.Elapsed.Minutes()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "attaches\t%d\t(%.0f a minute; %d subscribers, %d publishers)\n", r.Attaches, float64(r.Attaches)/mins, r.SubAttaches, r.Attaches-r.SubAttaches)
	fmt.Fprintf(tw, "clean detaches (Close)\t%d\t\n", r.CleanDetaches)
	fmt.Fprintf(tw, "SIGKILLs\t%d\t(%d holding an attachment)\n", r.Kills, r.KilledAttached)
	fmt.Fprintf(tw, "SIGSTOP/SIGCONT\t%d\t\n", r.Stops)
	fmt.Fprintf(tw, "clean process exits\t%d\t\n", r.CleanExits)
	fmt.Fprintf(tw, "processes started\t%d\t\n", r.Spawns)
	fmt.Fprintf(tw, "attaches refused\t%d\t(no free slot and the like; counted, not failures)\n", r.AttachErrors)
	fmt.Fprintf(tw, "peer deaths (daemon)\t%d\t\n", r.PeerDeaths)
	fmt.Fprintf(tw, "beacon records\t%d\t\n", r.BeaconRecords)
	fmt.Fprintf(tw, "records to churn subscribers\t%d\t(counted at clean detaches)\n", r.SubRecords)
	fmt.Fprintf(tw, "deaf subscribers\t%d\t\n", len(r.Deaf))
	fmt.Fprintf(tw, "slot leaks\t%d\t(settled %v after the last churn process ended)\n", len(r.SlotLeaks), r.SettledIn.Round(time.Millisecond))
	tw.Flush()
	if len(r.FDsStart) > 0 {
		fmt.Fprintf(w, "\ndescriptors at the start: %v\ndescriptors at the end: %v\n", r.FDsStart, r.FDsEnd)
	}
	if r.Failed() {
		fmt.Fprintf(w, "\nFAILED (%d):\n", len(r.Failures))
		for _, f := range r.Failures[:min(len(r.Failures), 40)] {
			fmt.Fprintf(w, "  %s\n", f)
		}
		return
	}
	fmt.Fprintln(w, "\nPASS: descriptors, goroutines and region files back where they started; no slot leak; every subscriber received")
}

var goroutinesRe = regexp.MustCompile(`(?m)^go_goroutines (\d+)`)

// churnSample measures kaelixd (pid) from /proc, its /metrics and the
// region directory.
func churnSample(ctx context.Context, pid int, metricsAddr, shmDir string, c *client.Client) (ChurnSample, error) {
	var s ChurnSample
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "VmRSS:":
			s.RSSKiB = n
		case "RssAnon:":
			s.AnonKiB = n
		case "RssShmem:":
			s.ShmemKiB = n
		case "Threads:":
			s.Threads = n
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.FDs = len(fds)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return s, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if m := goroutinesRe.FindSubmatch(body); m != nil {
		s.Goroutines, _ = strconv.Atoi(string(m[1]))
	} else {
		return s, errors.New("churn: no go_goroutines in kaelixd's /metrics")
	}
	ents, err := os.ReadDir(shmDir)
	if err != nil {
		return s, err
	}
	s.RegionFiles = len(ents)
	st, err := c.DaemonStatus(ctx)
	if err != nil {
		return s, err
	}
	s.Clients = st.Clients
	return s, nil
}

// max returns the larger of s and t in each field.
func (s ChurnSample) max(t ChurnSample) ChurnSample {
	return ChurnSample{RSSKiB: max(s.RSSKiB, t.RSSKiB), AnonKiB: max(s.AnonKiB, t.AnonKiB), ShmemKiB: max(s.ShmemKiB, t.ShmemKiB),
		FDs: max(s.FDs, t.FDs), Goroutines: max(s.Goroutines, t.Goroutines), Threads: max(s.Threads, t.Threads),
		RegionFiles: max(s.RegionFiles, t.RegionFiles), Clients: max(s.Clients, t.Clients)}
}

func churnDeaths(ctx context.Context, c *client.Client) uint64 {
	st, err := c.DaemonStatus(ctx)
	if err != nil {
		return 0
	}
	return st.PeerDeaths
}

// churnLeaks lists partitions whose slots or registrations are not
// exactly the beacon's: one publisher, no subscriber.
func churnLeaks(ctx context.Context, c *client.Client, topics int) []string {
	var out []string
	for i := range topics {
		info, err := c.TopicInfo(ctx, churnTopic(i))
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", churnTopic(i), err))
			continue
		}
		if info.Publishers != 1 || info.Subscribers != 0 {
			out = append(out, fmt.Sprintf("%s: daemon registers %d publishers, %d subscribers (want 1, 0)", info.Spec.Name, info.Publishers, info.Subscribers))
		}
		for _, p := range info.Partitions {
			if p.Counters.Publishers != 1 || p.Counters.Subscribers != 0 {
				out = append(out, fmt.Sprintf("%s partition %d: ring holds %d publisher, %d subscriber slots (want 1, 0)",
					info.Spec.Name, p.Index, p.Counters.Publishers, p.Counters.Subscribers))
			}
		}
	}
	return out
}

// fdTargets lists a process's descriptors' targets, sorted.
func fdTargets(pid int) []string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		t, _ := os.Readlink(filepath.Join(dir, e.Name()))
		if i := strings.IndexByte(t, ':'); i > 0 && strings.HasPrefix(t[i:], ":[") {
			t = t[:i] // socket:[inode] -> socket
		}
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// machine describes the host: CPUs, kernel, CPU model.
func machine() string {
	var u syscall.Utsname
	syscall.Uname(&u)
	str := func(b [65]int8) string {
		var s []byte
		for _, c := range b {
			if c == 0 {
				break
			}
			s = append(s, byte(c))
		}
		return string(s)
	}
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if i := strings.IndexByte(l, ':'); i > 0 {
					model = strings.TrimSpace(l[i+1:])
				}
				break
			}
		}
	}
	n := 0
	if b, err := os.ReadFile("/sys/devices/system/cpu/online"); err == nil {
		for _, r := range strings.Split(strings.TrimSpace(string(b)), ",") {
			lo, hi, ok := strings.Cut(r, "-")
			a, _ := strconv.Atoi(lo)
			z := a
			if ok {
				z, _ = strconv.Atoi(hi)
			}
			n += z - a + 1
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s %s %s", n, model, str(u.Sysname), str(u.Release), str(u.Machine))
}

// runChurn is a churn child: Cycles attachments to random topics, each a
// subscriber (2 in 3) or a publisher for a random time around Cycle,
// closed cleanly; then a clean exit. SIGTERM ends the current attachment
// early (cleanly). Lines: "A sub|pub TOPIC" after attaching, "D sub|pub
// TOPIC RECORDS" after Close, "N ..." for an attach refused, "DEAF ..."
// for a subscriber that received nothing within DeafAfter of running,
// "E ..." for any other error (a failure).
func runChurn(a ChildArgs) error {
	ca := a.Churn
	if ca == nil {
		return errors.New("churn: no churn args")
	}
	stop := terminated()
	rng := rand.New(rand.NewPCG(ca.Seed, ca.Seed>>7|1))
	ctx := context.Background()
	c, err := connect(ctx, a, fmt.Sprintf("churn-%d", a.ID))
	if err != nil {
		fmt.Println("E connect:", err)
		return err
	}
	defer c.Close()
	payload := make([]byte, 48)
	for cycle := 0; cycle < ca.Cycles && !stop.Load(); cycle++ {
		topic := churnTopic(rng.IntN(ca.Topics))
		dur := time.Duration(float64(ca.Cycle) * (0.2 + 1.6*rng.Float64()))
		if rng.IntN(3) < 2 {
			sub, err := c.Subscribe(ctx, topic, client.SubscribeOptions{Wait: client.WaitBackoff})
			if err != nil {
				fmt.Println("N sub", topic, err)
				time.Sleep(50 * time.Millisecond)
				continue
			}
			fmt.Println("A sub", topic)
			var got uint64
			h := func(*client.Message) { got++ }
			attached := time.Now()
			running := time.Duration(0) // time run since attaching, stops excluded
			last := attached
			deaf := false
			for time.Since(attached) < dur && !stop.Load() {
				_, err := sub.Poll(h, 256)
				if err != nil && !errors.Is(err, client.ErrLapped) {
					fmt.Println("E poll", topic, err)
					return err
				}
				now := time.Now()
				if gap := now.Sub(last); gap < 200*time.Millisecond {
					running += gap // a longer gap: we were stopped (or starved)
				}
				last = now
				if got == 0 && running > ca.DeafAfter && !deaf {
					deaf = true
					fmt.Printf("DEAF %s: nothing received in %v of running since Subscribe returned\n", topic, running.Round(time.Millisecond))
				}
				time.Sleep(2 * time.Millisecond)
			}
			if err := sub.Close(); err != nil {
				fmt.Println("E close", topic, err)
				return err
			}
			fmt.Println("D sub", topic, got)
			continue
		}
		pub, err := c.NewPublisher(ctx, topic, client.PublisherOptions{})
		if err != nil {
			fmt.Println("N pub", topic, err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		fmt.Println("A pub", topic)
		var sent uint64
		for t0 := time.Now(); time.Since(t0) < dur && !stop.Load(); {
			err := pub.TryPublish(client.Message{Partition: int(sent % uint64(ca.Partitions)), Payload: payload})
			switch {
			case err == nil:
				sent++
			case churnSkip(err):
			default:
				fmt.Println("E publish", topic, err)
				return err
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := pub.Close(); err != nil {
			fmt.Println("E close", topic, err)
			return err
		}
		fmt.Println("D pub", topic, sent)
	}
	return nil
}

// churnSkip reports whether a TryPublish result is an expected refusal
// (no room, or nobody to deliver to), not a failure.
func churnSkip(err error) bool {
	return errors.Is(err, client.ErrBackPressured) || errors.Is(err, client.ErrFull) || errors.Is(err, client.ErrNotConnected)
}

// runChurnBeacon publishes one record into every partition of every
// churn topic every 100 ms until SIGTERM; "ready" once attached to all,
// "published N" every second, "E ..." for unexpected errors (at most 20).
func runChurnBeacon(a ChildArgs) error {
	ca := a.Churn
	if ca == nil {
		return errors.New("churn: no churn args")
	}
	stop := terminated()
	ctx := context.Background()
	c, err := connect(ctx, a, "churn-beacon")
	if err != nil {
		return err
	}
	defer c.Close()
	pubs := make([]*client.Publisher, ca.Topics)
	for i := range pubs {
		if err := retry(func() (err error) {
			pubs[i], err = c.NewPublisher(ctx, churnTopic(i), client.PublisherOptions{})
			return
		}); err != nil {
			return err
		}
	}
	fmt.Println("ready")
	payload := make([]byte, 16)
	var n uint64
	errs := 0
	lastPrint := time.Now()
	for !stop.Load() {
		for _, p := range pubs {
			for part := range ca.Partitions {
				err := p.TryPublish(client.Message{Partition: part, Payload: payload})
				switch {
				case err == nil:
					n++
				case churnSkip(err):
				default:
					if errs++; errs <= 20 {
						fmt.Println("E publish", p.Topic(), part, err)
					}
				}
			}
		}
		if time.Since(lastPrint) >= time.Second {
			lastPrint = time.Now()
			fmt.Println("published", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Println("published", n)
	for _, p := range pubs {
		p.Close()
	}
	return nil
}

package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/stat"
	"github.com/nats-io/nats-server/v2/server"
)

// Modes.
const (
	ModePingPong   = "pingpong"
	ModeOneway     = "oneway"
	ModeThroughput = "throughput"
	ModeFanout     = "fanout"
	ModeFanin      = "fanin"
)

// Modes lists every mode.
var Modes = []string{ModePingPong, ModeOneway, ModeThroughput, ModeFanout, ModeFanin}

// WaitStrategies lists the Kaelix wait strategies.
var WaitStrategies = []string{"busy-spin", "yield", "backoff", "blocking"}

// Options are one invocation of the harness: a mode over a set of
// transports, wait strategies, sizes and batch settings. The zero value is
// not valid; start from DefaultOptions.
type Options struct {
	Mode       string
	Transports []string
	Waits      []string // Kaelix transports run once per strategy
	Sizes      []int    // payload bytes, each >= MinPayloadBytes
	Count      int      // measured records (round trips in pingpong) per run
	Duration   time.Duration
	Warmup     int        // records sent first and excluded
	RateHz     float64    // oneway, fanout, fanin: records/s per publisher... see Validate
	CPUs       []int      // parent's CPU, then peers' (cycled); nil: no pinning
	Peers      int        // fanout, fanin: N
	Batches    []int      // throughput: records per publish call (1: batching off)
	HugePages  shm.Policy // kaelixd's shm.hugepages for Kaelix regions: auto (fall back to tmpfs), required or off
	Timeout    time.Duration
	Label      string // tags the rows (e.g. "same-core")
	// Repeat runs each combination this many times and keeps the median
	// run (by records/s in throughput, p50 otherwise); 0 means 1.
	Repeat int
	// Interleave runs the cross-process transports of a pingpong or
	// throughput step (every wait strategy, every batch setting) in one
	// pair of processes, in rounds of one Block per path (interleave.go);
	// Rounds measured rounds (0: Duration/Block, at least 3).
	Interleave bool
	Block      time.Duration
	Rounds     int
	// CReference: instead of the transports, alternate Rounds runs of the
	// C ring (cref.go) and of copy-floor, Duration each, for every size.
	CReference bool
}

// DefaultOptions returns the defaults for mode.
func DefaultOptions(mode string) Options {
	o := Options{
		Mode:       mode,
		Transports: []string{"floor", "kaelix-spsc", "uds"},
		Waits:      []string{"busy-spin"},
		Sizes:      []int{64},
		Count:      100_000,
		Warmup:     10_000,
		RateHz:     20_000,
		Peers:      2,
		Batches:    []int{1},
		HugePages:  shm.PolicyAuto,
		Timeout:    5 * time.Minute,
	}
	if mode == ModeThroughput {
		o.Batches = []int{1, 32}
		o.Count = 2_000_000
	}
	return o
}

// Validate reports every invalid option at once.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrOptions}, a...)...))
	}
	if !slices.Contains(Modes, o.Mode) {
		errs = append(errs, fmt.Errorf("%w: %q (have %v)", ErrUnknownMode, o.Mode, Modes))
	}
	if len(o.Transports) == 0 {
		bad("--transports: none given")
	}
	for _, t := range o.Transports {
		if _, err := lookupTransport(t); err != nil {
			errs = append(errs, err)
		}
	}
	for _, w := range o.Waits {
		if !slices.Contains(WaitStrategies, w) {
			errs = append(errs, fmt.Errorf("%w: %q (busy-spin, yield, backoff or blocking)", ErrUnknownWait, w))
		}
	}
	if len(o.Sizes) == 0 {
		bad("--size: none given")
	}
	for _, s := range o.Sizes {
		if s < MinPayloadBytes || s > 1<<20 {
			bad("--size %d: want %d..%d bytes", s, MinPayloadBytes, 1<<20)
		}
	}
	if o.Count <= 0 && o.Duration <= 0 {
		bad("--count or --duration must be positive")
	}
	if o.Warmup < 0 {
		bad("--warmup %d: negative", o.Warmup)
	}
	if (o.Mode == ModeOneway || o.Mode == ModeFanout || o.Mode == ModeFanin) && o.RateHz <= 0 {
		bad("--rate must be positive for %s", o.Mode)
	}
	if (o.Mode == ModeFanout || o.Mode == ModeFanin) && (o.Peers < 1 || o.Peers > 64) {
		bad("--peers %d: want 1..64", o.Peers)
	}
	for _, b := range o.Batches {
		if b < 1 || b > 4096 {
			bad("--batch %d: want 1..4096", b)
		}
	}
	for _, c := range o.CPUs {
		if c < 0 || c >= 1024 {
			bad("--cpus %d: want 0..1023", c)
		}
	}
	return errors.Join(errs...)
}

// ParseInts parses "64,4096" (and "0-3" ranges).
func ParseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if a, b, ok := strings.Cut(f, "-"); ok {
			lo, err1 := strconv.Atoi(a)
			hi, err2 := strconv.Atoi(b)
			if err1 != nil || err2 != nil || hi < lo {
				return nil, fmt.Errorf("%w: bad range %q", ErrOptions, f)
			}
			for i := lo; i <= hi; i++ {
				out = append(out, i)
			}
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%w: bad number %q", ErrOptions, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// runEnv is the parent's state across the cases of a Run: a private
// directory for sockets, one for shared files on tmpfs, the embedded
// daemon (started on first use), and what each case's links hold.
type runEnv struct {
	env       *procEnv
	dir       string
	shmDir    string
	hugePages shm.Policy
	kd        *kaelixDaemon
	ns        *server.Server // embedded nats-server, started on first use in a case, stopped with it
	seq       int

	// Per case.
	listeners     map[string]net.Listener
	chans         map[string]chan []byte
	rings         map[string]*stat.RingView
	cleanup       []func()
	hugePagesUsed bool
}

// Session runs cases and collects results; it holds the daemon and
// directories between them. Close it when done.
type Session struct {
	r        *runEnv
	total0   uint64
	steal0   uint64
	haveCPU  bool
	progress *Progress
	Report   *Report
	groups   map[string]kase // interleaved groups run, by name, for re-runs
}

// NewSession prepares a session. command is recorded in the report.
func NewSession(ctx context.Context, command string, progress io.Writer) (*Session, error) {
	dir, err := os.MkdirTemp("", "kaelix-bench-")
	if err != nil {
		return nil, err
	}
	shmRoot := "/dev/shm"
	if st, err := os.Stat(shmRoot); err != nil || !st.IsDir() {
		shmRoot = dir
	}
	shmDir, err := os.MkdirTemp(shmRoot, "kaelix-bench-")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	r := &runEnv{dir: dir, shmDir: shmDir}
	r.env = &procEnv{ctx: ctx, parent: true, run: r}
	s := &Session{r: r, Report: &Report{Machine: ReadMachine("", command)}}
	s.Report.Machine.TimerResolutionNS = timerResolution()
	s.Report.Machine.MemcpyBytesPerS = memcpyBandwidth()
	if progress != nil {
		s.progress = NewProgress(progress)
	}
	s.total0, s.steal0, s.haveCPU = cpuTimes()
	return s, nil
}

// Close stops the daemon and removes the session's files.
func (s *Session) Close() error {
	var err error
	s.r.env.close()
	if s.r.kd != nil {
		err = s.r.kd.stop()
	}
	s.r.stopNATS()
	os.RemoveAll(s.r.shmDir)
	os.RemoveAll(s.r.dir)
	return err
}

func (r *runEnv) daemon() (*kaelixDaemon, error) {
	if r.kd != nil {
		return r.kd, nil
	}
	kd, err := startDaemon(r.env.ctx, r.dir, r.hugePages)
	if err != nil {
		return nil, err
	}
	r.kd = kd
	return kd, nil
}

// kase is one combination of an Options set, or, with paths, an
// interleaved group of them (t is then the first path's transport).
type kase struct {
	o     Options
	t     *transport
	wait  string
	size  int
	batch int
	paths []pathKase
}

func (s *Session) cases(o Options) ([]kase, []string) {
	var out []kase
	var notes []string
	if o.Interleave && interleavable(o.Mode) {
		var rest []string
		for _, size := range o.Sizes {
			g := kase{o: o, size: size}
			for _, name := range o.Transports {
				t, err := lookupTransport(name)
				if err != nil || !t.serves(o.Mode) || t.inProcess {
					if size == o.Sizes[0] {
						rest = append(rest, name)
					}
					continue
				}
				waits, batches := o.variants(t)
				for _, w := range waits {
					for _, b := range batches {
						g.paths = append(g.paths, pathKase{t: t, wait: w, batch: b})
					}
				}
			}
			if len(g.paths) > 0 {
				g.t, g.wait = g.paths[0].t, g.paths[0].wait
				out = append(out, g)
			}
		}
		if len(rest) == 0 {
			return out, notes
		}
		// In-process transports (chan) and the ones that cannot serve the
		// mode go the other way: their own case each, with a note.
		o.Transports = rest
		more, n := s.cases(Options{Mode: o.Mode, Transports: rest, Waits: o.Waits, Sizes: o.Sizes, Batches: o.Batches})
		for i := range more {
			more[i].o = o
		}
		return append(out, more...), append(notes, n...)
	}
	for _, name := range o.Transports {
		t, err := lookupTransport(name)
		if err != nil {
			notes = append(notes, err.Error())
			continue
		}
		if !t.serves(o.Mode) {
			notes = append(notes, fmt.Sprintf("%s: %s serves only %v; skipped", o.Mode, name, t.modes))
			continue
		}
		waits, batches := o.variants(t)
		for _, w := range waits {
			for _, size := range o.Sizes {
				for _, b := range batches {
					out = append(out, kase{o: o, t: t, wait: w, size: size, batch: b})
				}
			}
		}
	}
	return out, notes
}

// Run runs every case of o and appends the rows to the session's report.
func (s *Session) Run(ctx context.Context, o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	s.r.hugePages = o.HugePages
	if o.CReference {
		return s.RunCReference(ctx, o.Sizes, o.rounds(), o.Duration, o.CPUs)
	}
	cases, notes := s.cases(o)
	s.Report.Notes = append(s.Report.Notes, notes...)
	if s.progress != nil {
		s.progress.Add(len(cases))
	}
	for _, k := range cases {
		if s.progress != nil {
			if k.paths != nil {
				s.progress.Step(fmt.Sprintf("%s %dB interleaved: %d paths x %d rounds", o.Mode, k.size, len(k.paths), o.rounds()))
			} else {
				s.progress.Step(fmt.Sprintf("%s %s %s %dB", o.Mode, k.t.name, k.wait, k.size))
			}
		}
		var rows []Result
		var err error
		if k.paths != nil {
			rows, err = s.runGroup(ctx, k)
		} else {
			rows, err = s.runRepeated(ctx, k)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.Report.Notes = append(s.Report.Notes, fmt.Sprintf("%s %s %s %dB: FAILED: %v", o.Mode, k.t.name, k.wait, k.size, err))
			continue
		}
		s.Report.Results = append(s.Report.Results, rows...)
	}
	if s.progress != nil {
		s.progress.Done()
	}
	if total, steal, ok := cpuTimes(); ok && s.haveCPU && total > s.total0 {
		p := 100 * float64(steal-s.steal0) / float64(total-s.total0)
		s.Report.Machine.StealPercent = &p
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		start, _, _ := strings.Cut(s.Report.Machine.LoadAvg, "; end:")
		s.Report.Machine.LoadAvg = start + "; end: " + strings.TrimSpace(string(b))
	}
	return nil
}

// runRepeated runs k o.Repeat times and keeps the median run.
func (s *Session) runRepeated(ctx context.Context, k kase) ([]Result, error) {
	n := max(k.o.Repeat, 1)
	var runs [][]Result
	var errs []error
	for range n {
		rows, err := s.runCase(ctx, k)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			errs = append(errs, err)
			continue
		}
		runs = append(runs, rows)
	}
	if len(runs) == 0 {
		return nil, errors.Join(errs...)
	}
	key := func(rows []Result) float64 {
		if rows[0].RecordsPerS > 0 {
			return rows[0].RecordsPerS
		}
		return float64(rows[0].P50NS)
	}
	slices.SortFunc(runs, func(a, b []Result) int { return cmp.Compare(key(a), key(b)) })
	med := runs[len(runs)/2]
	if n > 1 {
		var all []string
		for _, r := range runs {
			if r[0].RecordsPerS > 0 {
				all = append(all, fmtRate(r[0].RecordsPerS))
			} else {
				all = append(all, fmtNS(r[0].P50NS))
			}
		}
		for i := range med {
			med[i].Runs = n
		}
		note := fmt.Sprintf("%s %s %s %dB batch %d: %d runs, kept the median of %v", k.o.Mode, k.t.name, k.wait, k.size, k.batch, n, all)
		if len(errs) > 0 {
			note += fmt.Sprintf("; %d FAILED: %v", len(errs), errors.Join(errs...))
		}
		s.Report.Notes = append(s.Report.Notes, note)
	}
	return med, nil
}

func cpuOf(cpus []int, i int) int {
	if len(cpus) == 0 {
		return -1
	}
	return cpus[i%len(cpus)]
}

func cpuString(cpus []int, peers int) string {
	if len(cpus) == 0 {
		return ""
	}
	parts := make([]string, 0, peers+1)
	for i := 0; i <= peers; i++ {
		parts = append(parts, strconv.Itoa(cpuOf(cpus, i)))
	}
	return strings.Join(parts, ",")
}

// begin starts one case of r: a context bounded by timeout (0: 5
// minutes), fresh per-case state (listeners, channels, rings, cleanups),
// and the parent's side of the case as r's environment; cancel ends the
// context early (a side failed). end undoes it
// all, in reverse: the environment back, the side closed, the cleanups
// run last first, the context cancelled.
func (r *runEnv) begin(parent context.Context, timeout time.Duration) (ctx context.Context, cancel context.CancelFunc, env *procEnv, end func()) {
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel = context.WithTimeout(parent, timeout)
	r.seq++
	r.listeners, r.chans, r.rings, r.cleanup, r.hugePagesUsed = map[string]net.Listener{}, map[string]chan []byte{}, map[string]*stat.RingView{}, nil, false
	env = &procEnv{ctx: ctx, parent: true, run: r}
	penv := r.env
	r.env = env
	return ctx, cancel, env, func() {
		r.env = penv
		env.close()
		for i := len(r.cleanup) - 1; i >= 0; i-- {
			r.cleanup[i]()
		}
		cancel()
	}
}

// variants are the wait strategies (o.Waits for a Kaelix transport, else
// the transport's own) and batch settings (o.Batches in throughput, else
// none) that transport t runs under o.
func (o Options) variants(t *transport) (waits []string, batches []int) {
	waits, batches = []string{t.inherentWait}, []int{0}
	if t.kaelix {
		waits = o.Waits
	}
	if o.Mode == ModeThroughput {
		batches = o.Batches
	}
	return waits, batches
}

// runCase wires the links, starts the peers, runs the parent's side and
// turns the sides' results into rows.
func (s *Session) runCase(parent context.Context, k kase) (rows []Result, err error) {
	o := k.o
	r := s.r
	ctx, cancel, env, end := r.begin(parent, o.Timeout)
	defer end()

	// Links and plans.
	n := 1
	if o.Mode == ModeFanout || o.Mode == ModeFanin {
		n = o.Peers
	}
	var links []linkSpec
	newLink := func(id string, pubs, subs int) int {
		links = append(links, linkSpec{ID: fmt.Sprintf("c%d-%s", r.seq, id), Transport: k.t.name, Size: k.size, Pubs: pubs, Subs: subs, Batch: k.batch, Wait: k.wait})
		return len(links) - 1
	}
	base := sidePlan{Mode: o.Mode, Size: k.size, Count: o.Count, Warmup: o.Warmup, DurationNS: int64(o.Duration), Batch: k.batch}
	if o.Mode == ModeThroughput && k.batch > 1 {
		// The source sends whole batches: the warm-up ends on one's edge.
		base.Warmup = roundUp(o.Warmup, k.batch)
	}
	base.NoPin = k.t.inProcess
	parentPlan := base
	parentPlan.CPU = cpuOf(o.CPUs, 0)
	peerPlans := make([]sidePlan, n)
	for i := range peerPlans {
		peerPlans[i] = base
		peerPlans[i].CPU = cpuOf(o.CPUs, 1+i)
		peerPlans[i].Peer = i
	}
	switch o.Mode {
	case ModePingPong:
		a, b := newLink("ping", 1, 1), newLink("pong", 1, 1)
		parentPlan.Role, parentPlan.Tx, parentPlan.Rx = "ping", []endRef{{a, 0}}, []endRef{{b, 0}}
		peerPlans[0].Role, peerPlans[0].Rx, peerPlans[0].Tx = "echo", []endRef{{a, 0}}, []endRef{{b, 0}}
	case ModeOneway, ModeThroughput:
		a := newLink("data", 1, 1)
		parentPlan.Role, parentPlan.Tx = "source", []endRef{{a, 0}}
		peerPlans[0].Role, peerPlans[0].Rx = "sink", []endRef{{a, 0}}
		if o.Mode == ModeOneway {
			parentPlan.RateHz = o.RateHz
		}
	case ModeFanout:
		parentPlan.Role, parentPlan.RateHz = "source", o.RateHz
		if k.t.multiSub || k.t.shareSub {
			a := newLink("fan", 1, n)
			parentPlan.Tx = []endRef{{a, 0}}
			if k.t.shareSub {
				parentPlan.Ends = n // one end marker per group member
			}
			for i := range peerPlans {
				peerPlans[i].Role, peerPlans[i].Rx = "sink", []endRef{{a, i}}
			}
		} else {
			for i := range peerPlans {
				a := newLink(fmt.Sprintf("fan%d", i), 1, 1)
				parentPlan.Tx = append(parentPlan.Tx, endRef{a, 0})
				peerPlans[i].Role, peerPlans[i].Rx = "sink", []endRef{{a, 0}}
			}
		}
	case ModeFanin:
		parentPlan.Role = "sink"
		rate := o.RateHz / float64(n)
		if k.t.multiPub {
			a := newLink("fan", n, 1)
			parentPlan.Rx, parentPlan.Ends = []endRef{{a, 0}}, n
			for i := range peerPlans {
				peerPlans[i].Role, peerPlans[i].Tx, peerPlans[i].RateHz = "source", []endRef{{a, i}}, rate
			}
		} else {
			for i := range peerPlans {
				a := newLink(fmt.Sprintf("fan%d", i), 1, 1)
				parentPlan.Rx = append(parentPlan.Rx, endRef{a, 0})
				peerPlans[i].Role, peerPlans[i].Tx, peerPlans[i].RateHz = "source", []endRef{{a, 0}}, rate
			}
		}
	}
	for i := range links {
		if err := k.t.newLink(r, &links[i]); err != nil {
			return nil, fmt.Errorf("link %s: %w", links[i].ID, err)
		}
	}
	parentPlan.Links = links
	for i := range peerPlans {
		peerPlans[i].Links = links
	}

	// Peers first (they dial and subscribe), then the parent's ends.
	peers := make([]peer, 0, n)
	defer func() {
		if err != nil {
			for _, p := range peers {
				p.kill()
			}
		}
	}()
	for _, pp := range peerPlans {
		if k.t.inProcess {
			peers = append(peers, runLocal(ctx, env, pp))
			continue
		}
		c, err := startChild(pp)
		if err != nil {
			return nil, err
		}
		peers = append(peers, c)
	}
	for _, p := range peers {
		if err := p.waitReady(); err != nil {
			return nil, err
		}
	}
	side, err := openSide(env, parentPlan)
	if err != nil {
		return nil, err
	}
	defer side.close()
	for _, p := range peers {
		if err := p.start(); err != nil {
			return nil, err
		}
	}
	var ringFutex0, ringFutex1 uint64
	if k.t.futexCalls != nil {
		ringFutex0 = s.linkFutex(k.t, links)
	}
	pres, perr := side.run()
	if k.t.futexCalls != nil {
		ringFutex1 = s.linkFutex(k.t, links)
	}
	if perr != nil {
		cancel()
		for _, p := range peers {
			p.kill()
		}
		return nil, perr
	}
	results := make([]sideResult, len(peers))
	for i, p := range peers {
		if results[i], err = p.result(); err != nil {
			return nil, err
		}
	}
	if os.Getenv("KAELIX_BENCH_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "debug %s %s %s: parent records=%d mallocs=%d sysrw=%d futex=%d; ring futex=%d\n",
			o.Mode, k.t.name, k.wait, pres.Records, pres.Mallocs, pres.SysRW, pres.Futex, ringFutex1-ringFutex0)
		for i, p := range results {
			fmt.Fprintf(os.Stderr, "debug   peer %d: records=%d mallocs=%d sysrw=%d futex=%d\n", i, p.Records, p.Mallocs, p.SysRW, p.Futex)
		}
	}
	return s.rows(k, pres, results, ringFutex1-ringFutex0)
}

func (s *Session) linkFutex(t *transport, links []linkSpec) uint64 {
	var n uint64
	for i := range links {
		n += t.futexCalls(s.r, &links[i])
	}
	return n
}

// rows builds the report rows of one case.
func (s *Session) rows(k kase, parent sideResult, peers []sideResult, ringFutex uint64) ([]Result, error) {
	o := k.o
	base := Result{Mode: o.Mode, Transport: k.t.name, Wait: k.wait, PayloadBytes: k.size, CPUs: cpuString(o.CPUs, len(peers)), Label: o.Label}
	if k.t.inProcess {
		base.CPUs = Unpinned
	}
	if o.Mode == ModeThroughput {
		base.Batch = k.batch
	}
	if k.t.name == "floor" || k.t.name == "futex-floor" {
		base.Wait = k.t.inherentWait
	}

	// Records the per-record figures divide by.
	var records int64
	switch o.Mode {
	case ModePingPong, ModeOneway, ModeThroughput, ModeFanout:
		records = parent.Records
	case ModeFanin:
		for _, p := range peers {
			records += p.Records
		}
	}
	mallocs, sys := parent.Mallocs, parent.SysRW+parent.Futex
	haveSys := parent.HaveSys
	if !k.t.inProcess { // in process, the parent's counts already cover the peers
		for _, p := range peers {
			mallocs += p.Mallocs
			sys += p.SysRW + p.Futex
			haveSys = haveSys && p.HaveSys
		}
	}
	futex := parent.Futex + ringFutex
	if !k.t.inProcess {
		for _, p := range peers {
			futex += p.Futex
		}
	}
	sys += ringFutex
	if records > 0 {
		a := float64(mallocs) / float64(records)
		base.AllocsPerRecord = &a
		if haveSys {
			y := float64(sys) / float64(records)
			base.SyscallsPerRecord = &y
		}
		if k.t.futexCalls != nil || futex > 0 || k.t.name == "futex-floor" {
			fu := float64(futex) / float64(records)
			base.FutexPerRecord = &fu
		}
	}

	decode := func(res sideResult) (map[int]*Histogram, error) {
		out := map[int]*Histogram{}
		for peer, enc := range res.Hists {
			h, err := DecodeHistogram(enc)
			if err != nil {
				return nil, err
			}
			out[peer] = h
		}
		return out, nil
	}

	switch o.Mode {
	case ModePingPong:
		hs, err := decode(parent)
		if err != nil {
			return nil, err
		}
		h := hs[0]
		if h == nil {
			return nil, fmt.Errorf("%w: no round trips measured", ErrPeer)
		}
		sum := h.Summary()
		base.setSummary(sum)
		base.OneWayP50NS, base.OneWayP99NS = sum.P50/2, sum.P99/2
		base.hist = h
		return []Result{base}, nil
	case ModeThroughput:
		sink := peers[0]
		base.Samples = sink.Records
		if sink.Records != parent.Records {
			return nil, fmt.Errorf("%w: sent %d measured records, received %d", ErrPeer, parent.Records, sink.Records)
		}
		if el := sink.LastNS - sink.FirstNS; el > 0 && sink.Records > 1 {
			base.RecordsPerS = float64(sink.Records-1) / (float64(el) / 1e9)
			base.BytesPerS = base.RecordsPerS * float64(k.size)
		}
		return []Result{base}, nil
	case ModeOneway:
		hs, err := decode(peers[0])
		if err != nil {
			return nil, err
		}
		h := hs[0]
		if h == nil {
			return nil, fmt.Errorf("%w: no records measured", ErrPeer)
		}
		base.setSummary(h.Summary())
		base.hist = h
		return []Result{base}, nil
	}

	// Fan modes: one histogram per subscriber (fanout) or per publisher
	// (fanin), and the merge.
	perPeer := make([]*Histogram, len(peers))
	if o.Mode == ModeFanout {
		for i, p := range peers {
			hs, err := decode(p)
			if err != nil {
				return nil, err
			}
			perPeer[i] = hs[0]
		}
	} else {
		hs, err := decode(parent)
		if err != nil {
			return nil, err
		}
		for i := range perPeer {
			perPeer[i] = hs[i]
		}
	}
	all := NewHistogram()
	var rows []Result
	var p50s, p99s []int64
	for i, h := range perPeer {
		row := base
		row.Peers, row.Peer = len(peers), i+1
		row.AllocsPerRecord, row.SyscallsPerRecord = nil, nil
		if h != nil {
			all.Merge(h)
			sum := h.Summary()
			row.setSummary(sum)
			p50s, p99s = append(p50s, sum.P50), append(p99s, sum.P99)
		}
		rows = append(rows, row)
	}
	agg := base
	agg.Peers = len(peers)
	agg.setSummary(all.Summary())
	agg.hist = all
	if len(p50s) > 0 {
		agg.SpreadP50NS = slices.Max(p50s) - slices.Min(p50s)
		agg.SpreadP99NS = slices.Max(p99s) - slices.Min(p99s)
	}
	return append([]Result{agg}, rows...), nil
}

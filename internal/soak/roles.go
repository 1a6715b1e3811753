package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// Child processes are this same executable re-run with RoleEnv naming the
// role and ArgsEnv carrying ChildArgs as JSON. A program (kaelix-soak, a
// test binary's TestMain) calls MaybeChild first thing in main.
const (
	RoleEnv = "KAELIX_SOAK_ROLE"
	ArgsEnv = "KAELIX_SOAK_ARGS"
)

// ExitEvicted is the exit status of a subscriber child that kaelixd
// evicted (daemon.evict_stalled_after) after the orchestrator stopped it:
// an expected outcome, not a failure.
const ExitEvicted = 3

// ChildArgs are a child's parameters.
type ChildArgs struct {
	Socket   string `json:"socket"`
	StateDir string `json:"state_dir"`
	ShmDir   string `json:"shm_dir"`
	Ledger   string `json:"ledger"`

	Topic      string `json:"topic,omitempty"`
	TopicIndex int    `json:"topic_index,omitempty"`
	Policy     string `json:"policy,omitempty"`
	ID         int    `json:"id"`              // stream id (publisher) or sub id (subscriber)
	Group      string `json:"group,omitempty"` // queue group (subscriber)
	Count      uint64 `json:"count,omitempty"` // publisher: records to send, 0 = until SIGTERM; subscriber: hold the Count-th record forever
	PaceEvery  int    `json:"pace_every,omitempty"`
	// Daemon.
	EvictAfter time.Duration `json:"evict_after,omitempty"`
	Sweep      time.Duration `json:"sweep,omitempty"`
	ShmBase    string        `json:"shm_base,omitempty"`  // tmpfs for regions; default /dev/shm
	Mlock      bool          `json:"mlock,omitempty"`     // shm.mlock = required
	HugePages  shm.Policy    `json:"hugepages,omitempty"` // shm.hugepages; default off
	HTTP       bool          `json:"http,omitempty"`      // serve /metrics on a free port; print "metrics ADDR"
	Churn      *ChurnArgs    `json:"churn,omitempty"`     // churn and churn-beacon roles (churn.go)
}

// childRoles are the roles MaybeChild runs, by the name in RoleEnv.
var childRoles = map[string]func(ChildArgs) error{
	"daemon":       runDaemon,
	"pub":          runPub,
	"sub":          runSub,
	"claim-hold":   runClaimHold,
	"probe":        runProbe,
	"churn":        runChurn,
	"churn-beacon": runChurnBeacon,
}

// MaybeChild runs the child role named in the environment, if any, and
// exits the process with its status; otherwise it returns.
func MaybeChild() {
	role := os.Getenv(RoleEnv)
	if role == "" {
		return
	}
	var a ChildArgs
	if err := json.Unmarshal([]byte(os.Getenv(ArgsEnv)), &a); err != nil {
		fmt.Fprintln(os.Stderr, "soak child: bad args:", err)
		os.Exit(2)
	}
	err := fmt.Errorf("unknown role %q", role)
	if run, ok := childRoles[role]; ok {
		err = run(a)
	}
	if errors.Is(err, client.ErrEvicted) {
		fmt.Fprintf(os.Stderr, "soak %s %d: %v\n", role, a.ID, err)
		os.Exit(ExitEvicted)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak %s %d: %v\n", role, a.ID, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// DaemonConfig is the daemon configuration of soak and crash runs.
func DaemonConfig(a ChildArgs) daemon.Config {
	cfg := daemon.Default()
	cfg.Daemon.SocketPath = a.Socket
	cfg.Daemon.StateDir = a.StateDir
	cfg.Shm.DirName = a.ShmDir
	cfg.Shm.HugePages = a.HugePages
	cfg.Network.Enabled = false
	cfg.RemoveOnExit = true
	if a.Sweep > 0 {
		cfg.Daemon.SweepInterval = a.Sweep
	}
	cfg.Daemon.EvictStalledAfter = a.EvictAfter
	if a.ShmBase != "" {
		cfg.Shm.BaseDir = a.ShmBase
	}
	if a.Mlock {
		cfg.Shm.Mlock = shm.PolicyRequired
	}
	if a.HTTP {
		cfg.Network.Enabled, cfg.Network.Port = true, 0
	}
	return cfg
}

func runDaemon(a ChildArgs) error {
	cfg := DaemonConfig(a)
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	d, err := daemon.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	defer d.HandleSignals(ctx, stop)() // kaelixd's table: SIGTERM stops, SIGUSR1 dumps stacks
	go func() {
		<-d.Ready()
		if a.HTTP {
			fmt.Println("metrics", d.MetricsAddr())
		}
		fmt.Println("ready")
	}()
	return d.Run(ctx)
}

// connect dials the daemon, retrying while it is down (it may be
// restarting) for up to 30 s.
func connect(ctx context.Context, a ChildArgs, name string) (*client.Client, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := client.Connect(ctx, client.Options{SocketPath: a.Socket, Name: name, Logger: slog.New(slog.DiscardHandler)})
		if err == nil || !errors.Is(err, client.ErrBrokerNotRunning) || time.Now().After(deadline) {
			return c, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// retry repeats op while the daemon is down, for up to 30 s.
func retry(op func() error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := op()
		if err == nil || !errors.Is(err, client.ErrBrokerNotRunning) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func terminated() *atomic.Bool {
	var stop atomic.Bool
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM)
	go func() {
		<-ch
		stop.Store(true)
	}()
	return &stop
}

// startChild is the start of a publisher or subscriber child: it watches
// for SIGTERM (stop), opens the ledger and connects as name-ID.
func startChild(a ChildArgs, name string) (stop *atomic.Bool, l *Ledger, c *client.Client, err error) {
	stop = terminated()
	if l, err = OpenLedger(a.Ledger); err != nil {
		return nil, nil, nil, err
	}
	if c, err = connect(context.Background(), a, fmt.Sprintf("%s-%d", name, a.ID)); err != nil {
		return nil, nil, nil, err
	}
	return stop, l, c, nil
}

// runPub publishes stream a.ID into a.Topic until SIGTERM or a.Count
// records, storing the committed count in the ledger after each commit.
func runPub(a ChildArgs) error {
	stop, l, c, err := startChild(a, "soak-pub")
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := context.Background()
	var pub *client.Publisher
	if err := retry(func() (err error) { pub, err = c.NewPublisher(ctx, a.Topic, client.PublisherOptions{}); return }); err != nil {
		return err
	}
	id := a.ID
	l.stream(id, stPID).Store(uint64(os.Getpid()))
	l.stream(id, stTopic).Store(uint64(a.TopicIndex + 1))
	l.stream(id, stStartNS).Store(uint64(client.MonotonicNS())) // before the first claim
	fmt.Println("ready")
	buf := make([]byte, MinRecordBytes+maxFill)
	acked := l.stream(id, stAcked)
	for seq := uint64(0); (a.Count == 0 || seq < a.Count) && !stop.Load(); {
		m := client.Message{Payload: encodeRecord(buf, uint32(id), seq, client.MonotonicNS())}
		var err error
		switch wire.Policy(a.Policy) {
		case wire.PolicyBlock:
			pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			err = pub.Publish(pctx, m)
			cancel()
			if err != nil && pctx.Err() != nil {
				continue // still back-pressured: retry the same record
			}
		default:
			err = pub.TryPublish(m)
			if err == client.ErrFull {
				time.Sleep(50 * time.Microsecond)
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("publish %d: %w", seq, err)
		}
		seq++
		acked.Store(seq)
		if a.PaceEvery > 0 && seq%uint64(a.PaceEvery) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	l.stream(id, stEndNS).Store(uint64(client.MonotonicNS()))
	fmt.Println("done", acked.Load())
	return nil
}

// subState is what a subscriber knows of one stream.
type subState struct {
	next   uint64 // next sequence expected
	gapped bool
}

// runSub receives a.Topic (in queue group a.Group if set), checking every
// record, until SIGTERM; then it drains and runs the final check.
func runSub(a ChildArgs) error {
	stop, l, c, err := startChild(a, "soak-sub")
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := context.Background()
	var sub *client.Subscriber
	if err := retry(func() (err error) {
		sub, err = c.Subscribe(ctx, a.Topic, client.SubscribeOptions{Group: a.Group})
		return
	}); err != nil {
		l.sub(a.ID, sbErrors).Add(1)
		return err
	}
	id := a.ID
	joinedNS := uint64(client.MonotonicNS()) // after joining: streams started later are expected whole
	l.sub(id, sbPID).Store(uint64(os.Getpid()))
	l.sub(id, sbStartNS).Store(joinedNS)
	if a.Group != "" {
		l.sub(id, sbGroup).Store(1)
	}
	l.sub(id, sbTopic).Store(uint64(a.TopicIndex + 1))
	fmt.Println("ready")
	group := a.Group != ""
	streams := map[uint32]*subState{}
	var (
		received = l.sub(id, sbReceived)
		corrupt  = l.sub(id, sbCorrupt)
		dup      = l.sub(id, sbDup)
		reorder  = l.sub(id, sbReorder)
		gapLost  = l.sub(id, sbGapLost)
		maxLat   = l.sub(id, sbMaxLatNS)
		latOver  = l.sub(id, sbLatOver)
	)
	h := func(m *client.Message) {
		stream, seq, sent, ok := decodeRecord(m.Payload)
		if !ok {
			corrupt.Add(1)
			return
		}
		if n := received.Add(1); a.Count > 0 && n == a.Count {
			// Crash tests: wait for SIGKILL while holding this record
			// (not marked delivered: the group must count it lost).
			fmt.Println("holding", stream, seq)
			select {}
		}
		if lat := client.MonotonicNS() - sent; lat > 0 {
			storeMax(maxLat, uint64(lat))
			if lat > int64(100*time.Millisecond) {
				latOver.Add(1)
			}
		}
		st := streams[stream]
		if group {
			if int(stream) < MaxGroupStreams && seq < MaxGroupSeq && l.markDelivered(int(stream), seq) {
				dup.Add(1)
			}
			if st == nil {
				streams[stream] = &subState{next: seq + 1}
			} else if seq < st.next {
				reorder.Add(1)
			} else {
				st.next = seq + 1
			}
			return
		}
		switch {
		case st == nil:
			st = &subState{}
			streams[stream] = st
			if l.stream(int(stream), stStartNS).Load() > joinedNS && seq > 0 {
				gapLost.Add(seq) // started after we joined: every record is ours
				st.gapped = true
			}
		case seq < st.next:
			if st.gapped {
				reorder.Add(1)
			} else {
				dup.Add(1)
			}
			return
		case seq > st.next:
			gapLost.Add(seq - st.next)
			st.gapped = true
		}
		st.next = seq + 1
	}
	// An eviction (daemon.evict_stalled_after, after the orchestrator
	// stopped us for longer than that) ends this incarnation with
	// ExitEvicted. Records read in place around the stop may have been
	// overwritten while we read them (the record handled last before an
	// eviction is suspect), so the checks made since the poll before the
	// one that reports the eviction are rolled back: the stop came during
	// that poll (then this one reports the eviction before reading
	// anything) or during this one.
	checks := [...]*atomic.Uint64{corrupt, dup, reorder, gapLost, maxLat, latOver}
	var before [2][len(checks)]uint64
	poll := func() (int, error) {
		before[0] = before[1]
		for i, c := range checks {
			before[1][i] = c.Load()
		}
		n, err := sub.Poll(h, 256)
		l.sub(id, sbRingLost).Store(sub.Lost())
		switch {
		case err == nil, err == client.ErrLapped:
			return n, nil
		case errors.Is(err, client.ErrStalled):
			l.sub(id, sbStalled).Add(1)
			return n, nil
		case errors.Is(err, client.ErrEvicted):
			for i, c := range checks {
				c.Store(before[0][i])
			}
			fmt.Println("evicted")
		}
		return n, err
	}
	for !stop.Load() {
		n, err := poll()
		if errors.Is(err, client.ErrEvicted) {
			return err
		}
		if err != nil {
			l.sub(id, sbErrors).Add(1)
			return fmt.Errorf("poll: %w", err)
		}
		if n == 0 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	// Drain: the orchestrator stopped the publishers first.
	quiet := time.Now()
	for deadline := time.Now().Add(20 * time.Second); time.Since(quiet) < 300*time.Millisecond && time.Now().Before(deadline); {
		n, err := poll()
		if errors.Is(err, client.ErrEvicted) {
			return err
		}
		if err != nil {
			l.sub(id, sbErrors).Add(1)
			return fmt.Errorf("poll: %w", err)
		}
		if n > 0 {
			quiet = time.Now()
		} else {
			time.Sleep(time.Millisecond)
		}
	}
	if !group {
		var endLost uint64
		for s := 0; s < MaxStreams; s++ {
			if l.stream(s, stTopic).Load() != uint64(a.TopicIndex+1) {
				continue
			}
			acked := l.stream(s, stAcked).Load()
			st := streams[uint32(s)]
			switch {
			case st != nil && st.next < acked:
				endLost += acked - st.next
			case st == nil && l.stream(s, stStartNS).Load() > joinedNS:
				endLost += acked
			}
		}
		l.sub(id, sbEndLost).Store(endLost)
	}
	l.sub(id, sbChecked).Store(1)
	fmt.Println("checked")
	return sub.Close()
}

// runClaimHold is the crash matrix's publisher that dies between claim and
// commit: it publishes a.Count records of stream a.ID, then loans space
// for one more, writes half of it, prints "claimed" and waits to be
// killed (or, on SIGCONT after SIGSTOP, for "commit" on stdin... it just
// commits after a.PaceEvery ms if that is set).
func runClaimHold(a ChildArgs) error {
	l, err := OpenLedger(a.Ledger)
	if err != nil {
		return err
	}
	ctx := context.Background()
	c, err := connect(ctx, a, fmt.Sprintf("soak-claim-%d", a.ID))
	if err != nil {
		return err
	}
	defer c.Close()
	pub, err := c.NewPublisher(ctx, a.Topic, client.PublisherOptions{})
	if err != nil {
		return err
	}
	id := a.ID
	l.stream(id, stTopic).Store(uint64(a.TopicIndex + 1))
	l.stream(id, stStartNS).Store(uint64(client.MonotonicNS()))
	buf := make([]byte, MinRecordBytes+maxFill)
	seq := uint64(0)
	for ; seq < a.Count; seq++ {
		if err := pub.Publish(ctx, client.Message{Payload: encodeRecord(buf, uint32(id), seq, client.MonotonicNS())}); err != nil {
			return err
		}
		l.stream(id, stAcked).Store(seq + 1)
	}
	rec := encodeRecord(buf, uint32(id), seq, client.MonotonicNS())
	loan, err := pub.Loan(len(rec))
	if err != nil {
		return err
	}
	copy(loan.Buf[:len(rec)/2], rec) // torn if anyone ever delivered it
	fmt.Println("claimed")
	if a.PaceEvery <= 0 {
		time.Sleep(time.Hour)
		return nil
	}
	time.Sleep(time.Duration(a.PaceEvery) * time.Millisecond)
	copy(loan.Buf, rec)
	if err := pub.Send(loan); err != nil {
		return err
	}
	l.stream(id, stAcked).Store(seq + 1)
	l.stream(id, stEndNS).Store(uint64(client.MonotonicNS()))
	fmt.Println("done", seq+1)
	return nil
}

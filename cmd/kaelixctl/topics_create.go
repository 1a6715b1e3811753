package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/internal/bytesize"
	"github.com/kaelix-io/kaelix/wire"
)

// TopicsCreateCmd is `kaelixctl topics create NAME`. Every flag left unset
// takes the daemon's default (wire.TopicSpec.Normalize): 1 partition, mpmc,
// 1 MiB per partition, 4 KiB max message, block, mode 0600, no NUMA binding.
type TopicsCreateCmd struct {
	Name           string   `arg:"" help:"Topic name: letters, digits, '-', '_', '.' (e.g. logs.app)."`
	Partitions     int      `help:"Number of partitions (one ring each)." default:"1" placeholder:"N"`
	Kind           string   `help:"Ring kind: mpmc (many publishers, broadcast and queue groups) or spsc (one publisher, one subscriber)." enum:"mpmc,spsc," default:""`
	Capacity       byteSize `help:"Ring data bytes per partition, a power of two >= 4KiB (e.g. 1MiB)." placeholder:"SIZE"`
	MaxMessage     byteSize `help:"Largest encoded message (payload plus headers)." placeholder:"SIZE"`
	Policy         string   `help:"When a ring is full: block (wait for the slowest subscriber), drop-oldest, or reject." enum:"block,drop-oldest,reject," default:""`
	Node           int      `help:"Place the regions on this NUMA node (-1: no binding)." default:"-1" placeholder:"N"`
	Mode           string   `help:"Permission bits of the regions and attach checks, octal (e.g. 0660)." placeholder:"MODE"`
	Group          string   `help:"Group (name or gid) of the regions, for --mode's group bits." placeholder:"GROUP"`
	MaxPublishers  int      `help:"Publisher slots per partition (mpmc)." placeholder:"N"`
	MaxSubscribers int      `help:"Subscriber slots per partition (mpmc)." placeholder:"N"`
	MaxGroups      int      `help:"Queue-group slots per partition (mpmc)." placeholder:"N"`
	IfNotExists    bool     `help:"Succeed if the topic exists with these parameters (open-or-create)."`
	Force          bool     `help:"Create it even if its regions would take more than kaelixd's share of free memory or region space (shm.max_topic_share, shm.max_topic_bytes)."`
}

// spec builds the TopicConfig from the flags.
func (cmd *TopicsCreateCmd) spec() (client.TopicConfig, error) {
	if cmd.Partitions < 1 || cmd.Partitions > wire.MaxPartitions {
		return client.TopicConfig{}, invalidf("--partitions %d: a topic has 1 to %d partitions", cmd.Partitions, wire.MaxPartitions)
	}
	// A ring holds messages of at most half its capacity less a record
	// header: a small --capacity with the default --max-message (4 KiB)
	// fails on the message size, so say which flag to change.
	const defaultMaxMessage, recordHeader = 4096, 32
	if c := uint64(cmd.Capacity); c > 0 && cmd.MaxMessage == 0 && c/2 >= recordHeader && c/2-recordHeader < defaultMaxMessage {
		return client.TopicConfig{}, invalidf("--capacity %s holds messages of at most %d bytes, less than the default --max-message of 4KiB: pass --max-message %d (or less), or a larger --capacity",
			bytesize.Human(c), c/2-recordHeader, c/2-recordHeader)
	}
	s := client.TopicConfig{
		Name:            cmd.Name,
		Partitions:      cmd.Partitions,
		Kind:            client.KindMPMC,
		CapacityBytes:   uint64(cmd.Capacity),
		MaxMessageBytes: uint32(min(uint64(cmd.MaxMessage), 1<<32-1)),
		Policy:          client.PolicyBlock,
		MaxPublishers:   cmd.MaxPublishers,
		MaxSubscribers:  cmd.MaxSubscribers,
		MaxGroups:       cmd.MaxGroups,
	}
	if cmd.Kind == "spsc" {
		s.Kind = client.KindSPSC
	}
	switch cmd.Policy {
	case "drop-oldest":
		s.Policy = client.PolicyDropOldest
	case "reject":
		s.Policy = client.PolicyReject
	}
	if cmd.Node >= 0 {
		s.BindNode, s.Node = true, cmd.Node
	}
	if cmd.Mode != "" {
		m, err := strconv.ParseUint(cmd.Mode, 8, 32)
		if err != nil || m == 0 || m > 0o777 {
			return s, invalidf("--mode %q: want octal permission bits such as 0600 or 0660", cmd.Mode)
		}
		s.Mode = uint32(m)
	}
	if cmd.Group != "" {
		gid, err := strconv.Atoi(cmd.Group)
		if err != nil {
			grp, lerr := user.LookupGroup(cmd.Group)
			if lerr != nil {
				return s, invalidf("--group %q: %v", cmd.Group, lerr)
			}
			gid, _ = strconv.Atoi(grp.Gid)
		}
		s.GID = gid
	}
	return s, client.ValidateTopicName(cmd.Name)
}

// Run creates the topic and describes it.
func (cmd *TopicsCreateCmd) Run(g *Globals) error {
	spec, err := cmd.spec()
	if err != nil {
		return err
	}
	c, err := g.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	// A big topic takes seconds (the daemon reserves, and may prefault,
	// every byte before it answers): on a terminal, say how long so far.
	// The watch of whileAnswering reads how many partitions are made.
	stop := func() {}
	var made atomic.Int64
	made.Store(-1)
	if isTerminal(g.stderr) && !g.json() {
		stop = progress(g.stderr, fmt.Sprintf("creating topic %s (%d × %s)", spec.Name, spec.Partitions, bytesize.Human(max(spec.CapacityBytes, 1<<20))), time.Second,
			func() string { return partitionsMade(made.Load(), spec.Partitions) })
	}
	var info client.TopicInfo
	err = g.whileAnswering(spec.Name, func(ctx context.Context) (err error) {
		info, err = c.CreateTopicWith(ctx, spec, client.CreateOptions{IfNotExists: cmd.IfNotExists, Force: cmd.Force})
		return err
	}, func(ti client.TopicInfo) {
		if ti.Creating {
			made.Store(int64(ti.PartitionsMade))
		}
	})
	stop()
	if err != nil {
		return err
	}
	if g.json() {
		return writeJSON(g.stdout, info)
	}
	s := info.Spec
	verb := "created"
	if cmd.IfNotExists {
		verb = "ready:"
	}
	fmt.Fprintf(g.stdout, "%s topic %s: %d × %s %s, policy %s, max message %s, pages %s\n",
		verb, s.Name, s.Partitions, bytesize.Human(s.CapacityBytes), s.Kind, s.Policy,
		bytesize.Human(uint64(s.MaxMessageBytes)), pagesOf(info))
	return nil
}

// pagesOf renders the partitions' page sizes and backing (pagesMix).
func pagesOf(info client.TopicInfo) string { return pagesMix(info.Partitions) }

// partitionsMade renders a creation's progress for progress: "" while
// not known (made < 0, partitions 0 or 1).
func partitionsMade(made int64, partitions int) string {
	if made < 0 || partitions < 2 {
		return ""
	}
	return fmt.Sprintf("%d of %d partitions made, ", made, partitions)
}

// progress writes "LABEL: [STATUS]Ns elapsed" to w every interval,
// rewriting one line (\r), until stop is called; status (may be nil) is
// asked each time. stop clears the line (if one was written) and waits
// for the writer. For terminals only.
func progress(w io.Writer, label string, every time.Duration, status func() string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		wrote := false
		for {
			select {
			case <-done:
				if wrote {
					fmt.Fprint(w, "\r\033[K")
				}
				return
			case now := <-t.C:
				st := ""
				if status != nil {
					st = status()
				}
				fmt.Fprintf(w, "\r\033[K%s: %s%s elapsed", label, st, now.Sub(start).Round(time.Second))
				wrote = true
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// whileAnswering runs call, a request that takes as long as the daemon
// needs to make topic (a create: seconds for a big topic), for as long as
// the daemon keeps answering. The daemon serves other connections while
// it makes a topic (creation is outside its lock), so rather than bounding
// call by --timeout, or by a guess of how long the size takes, a second
// connection asks for the topic every watchEvery, each answer bounded by
// --timeout, and passed to onInfo (may be nil). call is given up, with
// ErrBrokerNotAnswering, only when one of those goes unanswered. Without
// --timeout (0) call is not watched.
func (g *Globals) whileAnswering(topic string, call func(ctx context.Context) error, onInfo func(client.TopicInfo)) error {
	ctx, cancel := context.WithCancel(g.ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	if g.Timeout <= 0 {
		return <-done
	}
	tick := time.NewTicker(min(g.Timeout, watchEvery))
	defer tick.Stop()
	var watch *client.Client
	defer func() {
		if watch != nil {
			watch.Close()
		}
	}()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
		}
		var err error
		if watch == nil {
			watch, err = g.connect()
		}
		if err == nil {
			rctx, rcancel := g.reqCtx()
			var ti client.TopicInfo
			ti, err = watch.TopicInfo(rctx, topic)
			rcancel()
			if err == nil && onInfo != nil {
				onInfo(ti)
			}
			if errors.Is(err, context.DeadlineExceeded) && g.ctx.Err() == nil {
				err = fmt.Errorf("%w: no reply within --timeout %v to a topic info asked while creating %q", client.ErrBrokerNotAnswering, g.Timeout, topic)
			}
		}
		if errors.Is(err, client.ErrBrokerNotAnswering) || errors.Is(err, client.ErrBrokerNotRunning) {
			cancel()
			if cerr := <-done; cerr == nil {
				return nil // it was answered meanwhile
			}
			return fmt.Errorf("%w (the daemon may still be creating %q: see `kaelixctl topics info %s`)", err, topic, topic)
		}
	}
}

// watchEvery is how often whileAnswering checks that the daemon answers.
const watchEvery = time.Second

package client_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/shm"
)

func init() {
	// Subscriber: subscribe, print "ready" and how long Subscribe took,
	// then touch KAELIX_TEST_BALLAST_MB MiB and wait to be killed.
	evictRoles["sub-hold"] = holdRole(func(ctx context.Context, c *client.Client, topic string) (io.Closer, error) {
		return c.Subscribe(ctx, topic, client.SubscribeOptions{})
	})
	// Publisher: attach, print "ready" and how long NewPublisher took,
	// wait to be killed. With KAELIX_TEST_BALLAST_MB=N it first touches N
	// MiB after attaching, so that its death takes the kernel a while.
	evictRoles["pub-hold"] = holdRole(func(ctx context.Context, c *client.Client, topic string) (io.Closer, error) {
		return c.NewPublisher(ctx, topic, client.PublisherOptions{})
	})
}

// holdRole is a child role that connects, attaches to the topic in
// topicEnv with attach, touches KAELIX_TEST_BALLAST_MB MiB, prints "ready"
// and how long attach took (µs), and waits to be killed.
func holdRole(attach func(ctx context.Context, c *client.Client, topic string) (io.Closer, error)) func(env) int {
	return func(e env) int {
		ctx := context.Background()
		c, err := client.Connect(ctx, client.Options{SocketPath: e.socket})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer c.Close()
		t0 := time.Now()
		h, err := attach(ctx, c, os.Getenv(topicEnv))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer h.Close()
		took := time.Since(t0)
		ballast := make([]byte, envInt("KAELIX_TEST_BALLAST_MB")<<20)
		for i := 0; i < len(ballast); i += 4096 {
			ballast[i] = 1
		}
		fmt.Println("ready", took.Microseconds())
		time.Sleep(time.Hour)
		runtime.KeepAlive(ballast)
		return 0
	}
}

// TestPeerDeathsCountedOnce: 50 client processes (40 subscribers over two
// topics, 10 publishers) killed with one kill -9 of their process group
// raise kaelix_peer_deaths_total by exactly 50, although the first death
// the daemon handles frees most of the others' slots (ReapDead frees every
// dead slot on a ring); and clients that exit after a clean Close are not
// counted. The sweep is off, so this is the pidfd path alone.
func TestPeerDeathsCountedOnce(t *testing.T) {
	e := newEnv(t)
	exits := make(chan daemon.PeerExit, 256)
	d := startDaemon(t, e, func(cfg *daemon.Config) {
		cfg.Daemon.SweepInterval = time.Hour
		cfg.Shm.HugePages = shm.PolicyOff // whatever other tests reserve meanwhile
		cfg.OnPeerExit = func(p daemon.PeerExit) { exits <- p }
	})
	c := connect(t, e)
	ctx := context.Background()
	const wide, narrow = "deaths.wide", "deaths.narrow"
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: wide, Partitions: 2, CapacityBytes: 64 << 10, MaxSubscribers: 64}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: narrow, CapacityBytes: 64 << 10, MaxPublishers: 16, MaxSubscribers: 16}); err != nil {
		t.Fatal(err)
	}
	const subsWide, subsNarrow, pubs = 30, 10, 10
	roles := make([][2]string, 0, subsWide+subsNarrow+pubs)
	for range subsWide {
		roles = append(roles, [2]string{"stall", wide})
	}
	for range subsNarrow {
		roles = append(roles, [2]string{"stall", narrow})
	}
	for range pubs {
		roles = append(roles, [2]string{"pub-hold", narrow})
	}
	var kids []*exec.Cmd
	pgid := 0
	for i, r := range roles {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = e.environ(r[0], topicEnv+"="+r[1])
		cmd.Stderr = os.Stderr
		// One process group, so that one kill(2) kills them all at once.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid, Pdeathsig: syscall.SIGKILL}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			pgid = cmd.Process.Pid
			t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
		}
		kids = append(kids, cmd)
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "ready") {
					ready <- true
				}
			}
			close(ready)
		}()
		select {
		case ok := <-ready:
			if !ok {
				t.Fatalf("child %d (%s on %s) exited before ready", i, r[0], r[1])
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("child %d (%s on %s) not ready in 60s", i, r[0], r[1])
		}
	}
	base := d.Status().PeerDeaths

	// Clients that close cleanly and exit: no deaths.
	for i := range 3 {
		ch := startChild(t, e.environ("pub", topicEnv+"="+narrow, countEnv+"=10", fmt.Sprintf("%s=%d", idEnv, i)))
		ch.expect(t, "done", 60*time.Second)
		if err := ch.cmd.Wait(); err != nil {
			t.Fatalf("clean publisher: %v\n%s", err, ch.stderr)
		}
	}

	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for _, k := range kids {
		k.Wait()
	}
	want := base + uint64(len(roles))
	deadline := time.Now().Add(30 * time.Second)
	for d.Status().PeerDeaths < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// Every pidfd has fired by now or soon: let the stragglers report, then
	// the count must be exact (not above either).
	pidExits, died, freed := 0, 0, 0
	for quiet := time.After(3 * time.Second); pidExits < len(roles)+3; {
		select {
		case pe := <-exits:
			pidExits++
			freed += pe.SlotsFreed
			if pe.Died {
				died++
			}
		case <-quiet:
			t.Logf("only %d pidfd exits reported", pidExits)
			pidExits = len(roles) + 3
		}
	}
	got := d.Status().PeerDeaths - base
	t.Logf("killed %d clients with one kill -9 (and 3 clean exits): peer deaths +%d, %d exits reported as deaths, %d slots freed in all", len(roles), got, died, freed)
	if got != uint64(len(roles)) {
		t.Errorf("peer deaths +%d, want +%d (exactly one per killed client)", got, len(roles))
	}
	if died != len(roles) {
		t.Errorf("%d PeerExit reports say Died, want %d", died, len(roles))
	}
	// The connections close with the processes; the daemon drops their
	// registrations when it reads the end of each.
	var leaks []string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		leaks = leaks[:0]
		for _, name := range []string{wide, narrow} {
			info, err := c.TopicInfo(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if info.Publishers != 0 || info.Subscribers != 0 {
				leaks = append(leaks, fmt.Sprintf("%s: %d publishers, %d subscribers registered after every client died", name, info.Publishers, info.Subscribers))
			}
			for _, p := range info.Partitions {
				if p.Counters.Subscribers != 0 || p.Counters.Publishers != 0 {
					leaks = append(leaks, fmt.Sprintf("%s partition %d: %d publisher, %d subscriber slots held after every client died", name, p.Index, p.Counters.Publishers, p.Counters.Subscribers))
				}
			}
		}
		if len(leaks) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, l := range leaks {
		t.Error(l)
	}
}

// TestRelaunchRacesDying: on an SPSC topic (one publisher slot, one
// subscriber slot), a publisher or subscriber process is killed with
// kill -9 and a new one launched at once, 30 times each. The dying one
// holds 256 MiB, so the kernel takes tens of milliseconds to tear it down
// while the new one attaches: the relaunch finds the slot held by a
// process /proc still shows running, and must wait for it (up to
// ringbuf.ExitWait; ringbuf.NewPublisher for a publisher slot, the daemon
// for a subscriber slot) rather than fail with ErrNoSlot. Every relaunch
// gets the slot, and each killed process counts as one peer death,
// although the relaunched publisher, not the daemon, may free its slot.
func TestRelaunchRacesDying(t *testing.T) {
	for _, role := range []string{"pub-hold", "sub-hold"} {
		t.Run(role, func(t *testing.T) { relaunchRaces(t, role) })
	}
}

func relaunchRaces(t *testing.T, role string) {
	rounds := 30
	if testing.Short() {
		rounds = 10
	}
	e := newEnv(t)
	d := startDaemon(t, e, func(cfg *daemon.Config) {
		cfg.Daemon.SweepInterval = time.Hour
		cfg.Shm.HugePages = shm.PolicyOff // whatever other tests reserve meanwhile
	})
	c := connect(t, e)
	ctx := context.Background()
	const topic = "relaunch.spsc"
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: topic, Kind: client.KindSPSC, CapacityBytes: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	launch := func() *child {
		return startChild(t, e.environ(role, topicEnv+"="+topic, "KAELIX_TEST_BALLAST_MB=256"))
	}
	cur := launch()
	cur.expect(t, "ready", 60*time.Second)
	base := d.Status().PeerDeaths
	var took []time.Duration
	for range rounds {
		if err := cur.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		next := launch() // at once: no wait for the old one's exit
		line := next.expect(t, "ready", 60*time.Second)
		us, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "ready")))
		took = append(took, time.Duration(us)*time.Microsecond)
		cur.cmd.Wait()
		cur = next
	}
	slices.Sort(took)
	t.Logf("%s: %d kill -9 + immediate relaunches: every one got the slot; attaching took %v min, %v median, %v max", role, rounds, took[0], took[len(took)/2], took[len(took)-1])
	deadline := time.Now().Add(30 * time.Second)
	for d.Status().PeerDeaths < base+uint64(rounds) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a late double count would show now
	if got := d.Status().PeerDeaths - base; got != uint64(rounds) {
		t.Errorf("peer deaths +%d after %d killed publishers, want +%d", got, rounds, rounds)
	}
}

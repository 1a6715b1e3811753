package client_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
)

// Roles of the connectedness tests' helper processes (see runHelper).
var connectedRoles = map[string]func(env) int{
	"joiner": joinerRole,
}

// joinerRole subscribes anew for every "round R" line on stdin, reads
// the round's messages (wantEnv per partition, each tagged with R, its
// partition and its sequence), prints "got R N" with N the messages of
// round R it received, closes the subscription and prints "closed R".
// It prints "bad R ..." for a message of another round or out of order.
func joinerRole(e env) int {
	ctx := context.Background()
	c, err := client.Connect(ctx, client.Options{SocketPath: e.socket, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	topic, per := os.Getenv(topicEnv), envInt(countEnv)
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		round, err := strconv.Atoi(strings.TrimPrefix(in.Text(), "round "))
		if err != nil {
			return 0
		}
		sub, err := c.Subscribe(ctx, topic, client.SubscribeOptions{From: client.FromLatest, Wait: client.WaitBackoff})
		if err != nil {
			fmt.Println("bad", round, "subscribe:", err)
			continue
		}
		const parts = 2 // the test topic's
		next := make([]uint32, parts)
		got, bad := 0, ""
		h := func(m *client.Message) {
			r, p, seq := binary.LittleEndian.Uint32(m.Payload), binary.LittleEndian.Uint32(m.Payload[4:]), binary.LittleEndian.Uint32(m.Payload[8:])
			switch {
			case bad != "":
			case int(r) != round || int(p) != m.Partition:
				bad = fmt.Sprintf("message of round %d partition %d on partition %d", r, p, m.Partition)
			case seq != next[p]:
				bad = fmt.Sprintf("partition %d: message %d, want %d", p, seq, next[p])
			default:
				next[p]++
				got++
			}
		}
		deadline := time.Now().Add(20 * time.Second)
		for got < per*parts && bad == "" && time.Now().Before(deadline) {
			n, err := sub.Poll(h, 64)
			if err != nil {
				bad = "poll: " + err.Error()
			}
			if n == 0 {
				time.Sleep(50 * time.Microsecond)
			}
		}
		if bad != "" {
			fmt.Println("bad", round, bad)
		}
		fmt.Println("got", round, got)
		sub.Close()
		fmt.Println("closed", round)
	}
	return 0
}

// startJoiner is startChild with a stdin pipe.
func startJoiner(t *testing.T, e env, topic string, per int) (*child, *bufio.Writer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = e.environ("joiner", topicEnv+"="+topic, fmt.Sprintf("%s=%d", countEnv, per))
	w, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	ch := runChild(t, cmd)
	t.Cleanup(func() {
		w.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return ch, bufio.NewWriter(w)
}

// TestConnectedMeansEveryLaterMessage (issue 16, item 2): a publisher
// that publishes the moment it sees N subscribers loses nothing to any of
// them. Each round, three subscriber processes Subscribe anew while the
// publisher (this process) waits for three, on every partition of a
// 2-partition block topic, then publishes at once; every subscriber must
// get every message of the round. Even rounds wait with
// Publisher.WaitSubscribers, odd rounds by polling TopicInfo (as the
// issue's reproduction did). 100 rounds, 20 messages per partition each.
func TestConnectedMeansEveryLaterMessage(t *testing.T) {
	const (
		nsubs  = 3
		per    = 20
		rounds = 100
		topic  = "conn.every"
	)
	e := newEnv(t)
	startDaemon(t, e, nil)
	c := connect(t, e)
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: topic, Partitions: 2, CapacityBytes: 64 << 10, Policy: client.PolicyBlock}); err != nil {
		t.Fatal(err)
	}
	pub, err := c.NewPublisher(ctx, topic, client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	type joiner struct {
		ch *child
		in *bufio.Writer
	}
	var js []joiner
	for range nsubs {
		ch, in := startJoiner(t, e, topic, per)
		ch.expect(t, "ready", 30*time.Second)
		js = append(js, joiner{ch, in})
	}
	buf := make([]byte, 12)
	for round := range rounds {
		for p := range 2 {
			if n := pub.Subscribers(p); n != 0 {
				t.Fatalf("round %d: partition %d counts %d subscribers before anyone subscribed", round, p, n)
			}
		}
		for _, j := range js {
			fmt.Fprintf(j.in, "round %d\n", round)
			j.in.Flush()
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if round%2 == 0 {
			err = pub.WaitSubscribers(wctx, -1, nsubs)
		} else {
			for err = nil; err == nil; {
				info, ierr := c.TopicInfo(wctx, topic)
				if ierr != nil {
					err = ierr
				} else if info.Subscribers >= nsubs {
					break
				}
				if wctx.Err() != nil {
					err = wctx.Err()
				}
			}
		}
		cancel()
		if err != nil {
			t.Fatalf("round %d: waiting for %d subscribers: %v", round, nsubs, err)
		}
		// At once: no TryPublish may find a partition without them now.
		for p := range 2 {
			for seq := range per {
				binary.LittleEndian.PutUint32(buf, uint32(round))
				binary.LittleEndian.PutUint32(buf[4:], uint32(p))
				binary.LittleEndian.PutUint32(buf[8:], uint32(seq))
				if err := pub.TryPublish(client.NewMessage(buf, client.WithPartition(p))); err != nil {
					t.Fatalf("round %d partition %d message %d: %v (subscribers now %d)", round, p, seq, err, pub.Subscribers(p))
				}
			}
		}
		for i, j := range js {
			l := j.ch.expect(t, "got "+strconv.Itoa(round)+" ", 60*time.Second)
			if got := strings.TrimPrefix(l, "got "+strconv.Itoa(round)+" "); got != strconv.Itoa(2*per) {
				t.Errorf("round %d: subscriber %d got %s of %d messages", round, i, got, 2*per)
			}
		}
		for _, j := range js {
			j.ch.expect(t, "closed "+strconv.Itoa(round), 60*time.Second)
		}
		if t.Failed() {
			for i, j := range js {
				t.Logf("subscriber %d stderr: %s", i, j.ch.stderr)
			}
			t.FailNow()
		}
	}
	for i, j := range js {
		for {
			select {
			case l := <-j.ch.lines:
				if strings.HasPrefix(l, "bad") {
					t.Errorf("subscriber %d: %s", i, l)
				}
				continue
			default:
			}
			break
		}
	}
	t.Logf("%d rounds x %d subscribers x %d messages: none lost", rounds, nsubs, 2*per)
}

// TestPublishBlockedNamesStoppedSubscriber (issue 11, item 5): a Publish
// that times out behind a subscriber process stopped with SIGSTOP returns
// a *BlockedError naming the partition and that process (pid, name,
// stopped, lag), matchable with errors.Is against ErrBackPressured and
// the context's error. Continued but still not reading, it is reported
// running. Eviction is off (0s): nothing else releases the publisher.
func TestPublishBlockedNamesStoppedSubscriber(t *testing.T) {
	e := newEnv(t)
	startDaemon(t, e, func(cfg *daemon.Config) { cfg.Daemon.EvictStalledAfter = 0 })
	c := connect(t, e)
	ctx := context.Background()
	const topic = "conn.blocked"
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: topic, Partitions: 2, CapacityBytes: 16 << 10, MaxMessageBytes: 256}); err != nil {
		t.Fatal(err)
	}
	pub, err := c.NewPublisher(ctx, topic, client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	stall := startChild(t, e.environ("stall", topicEnv+"="+topic))
	stall.expect(t, "ready", 30*time.Second)
	pid := stall.cmd.Process.Pid
	if err := pub.WaitSubscribers(ctx, -1, 1); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 200)
	sent := 0
	for ; ; sent++ {
		err := pub.TryPublish(client.NewMessage(payload, client.WithPartition(1)))
		if err == client.ErrBackPressured {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	stall.cmd.Process.Signal(syscall.SIGSTOP)
	defer stall.cmd.Process.Signal(syscall.SIGCONT)
	waitState(t, pid, 'T')
	blocked := func(state string) *client.BlockedError {
		t.Helper()
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		err := pub.Publish(pctx, client.NewMessage(payload, client.WithPartition(1)))
		var be *client.BlockedError
		if !errors.As(err, &be) {
			t.Fatalf("Publish behind a %s subscriber: %v, want a *BlockedError", state, err)
		}
		if !errors.Is(err, client.ErrBackPressured) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("errors.Is(%v) fails for ErrBackPressured or context.DeadlineExceeded", err)
		}
		comm := filepath.Base(os.Args[0])
		if len(comm) > 15 {
			comm = comm[:15] // TASK_COMM_LEN
		}
		s := be.Slowest
		if be.Topic != topic || be.Partition != 1 || !be.Found || s.PID != pid || s.Comm != comm || s.State != state ||
			s.Group != -1 || s.Joining || s.LagRecords != uint64(sent) || s.LagBytes < uint64(sent)*232 {
			t.Errorf("BlockedError %+v; want topic %s partition 1, pid %d (%s) %s, %d records (>= %d bytes) behind",
				be, topic, pid, comm, state, sent, sent*232)
		}
		for _, want := range []string{`"conn.blocked" partition 1`, "pid " + strconv.Itoa(pid), "(" + comm + ")", state, strconv.Itoa(sent) + " records"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		return be
	}
	t.Log(blocked("stopped"))
	stall.cmd.Process.Signal(syscall.SIGCONT)
	waitState(t, pid, 'S')
	t.Log(blocked("running"))
	// Partition 0 has the same subscriber, far from full: not blocked.
	if err := pub.Publish(ctx, client.NewMessage(payload, client.WithPartition(0))); err != nil {
		t.Errorf("partition 0: %v", err)
	}
}

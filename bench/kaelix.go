package bench

// Kaelix transports: every record goes through the real client library
// (package client) to topics made by a real daemon (package daemon) that
// the parent process embeds. Child processes connect to its socket like
// any application.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/stat"
)

func init() {
	for _, name := range []string{"kaelix-spsc", "kaelix-mpmc", "kaelix-queue"} {
		t := &transport{
			name: name, kaelix: true,
			newLink:    newKaelixLink,
			openTx:     openKaelixTx,
			openRx:     openKaelixRx,
			futexCalls: kaelixFutexCalls,
			method:     "the ring's shared counters: FUTEX_WAKE (Wakeups) + FUTEX_WAIT (Waits), plus /proc/PID/io read+write counts",
		}
		switch name {
		case "kaelix-mpmc":
			t.multiPub, t.multiSub = true, true
		case "kaelix-queue":
			t.multiPub, t.shareSub = true, true
		}
		register(t)
	}
}

// kaelixDaemon is the daemon the parent embeds for a whole Run, with a
// private socket, state directory and shm directory.
type kaelixDaemon struct {
	cancel context.CancelFunc
	done   chan error
	socket string
}

func startDaemon(ctx context.Context, dir string, hugePages shm.Policy) (*kaelixDaemon, error) {
	cfg := daemon.Default()
	cfg.Daemon.SocketPath = filepath.Join(dir, "kaelixd.sock")
	cfg.Daemon.StateDir = dir
	cfg.Shm.DirName = fmt.Sprintf("kaelix-bench-%d-%d", os.Getpid(), time.Now().UnixNano())
	cfg.Shm.HugePages = hugePages
	cfg.RemoveOnExit = true
	cfg.Logger = slog.New(slog.DiscardHandler)
	// The heartbeat, the sweep and the HTTP listener make syscalls of
	// their own: keep them out of the measured windows' counts.
	cfg.Daemon.HeartbeatInterval = time.Hour
	cfg.Telemetry.Health.HeartbeatStale = 3 * time.Hour
	cfg.Daemon.SweepInterval = time.Hour
	cfg.Network.Enabled = false
	d, err := daemon.New(cfg)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	k := &kaelixDaemon{cancel: cancel, done: make(chan error, 1), socket: cfg.Daemon.SocketPath}
	go func() { k.done <- d.Run(dctx) }()
	select {
	case <-d.Ready():
		return k, nil
	case err := <-k.done:
		cancel()
		return nil, fmt.Errorf("bench: embedded kaelixd: %w", err)
	case <-time.After(10 * time.Second):
		cancel()
		return nil, errors.New("bench: embedded kaelixd did not start in 10s")
	}
}

func (k *kaelixDaemon) stop() error {
	k.cancel()
	return <-k.done
}

// kaelixClient is a process's connection to the daemon, shared by its ends.
type kaelixClient struct {
	c *client.Client
}

func (e *procEnv) kaelixConn(socket string) (*client.Client, error) {
	if e.kaelix != nil {
		return e.kaelix.c, nil
	}
	c, err := client.Connect(e.ctx, client.Options{SocketPath: socket, Name: "kaelix-bench", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	e.kaelix = &kaelixClient{c: c}
	return c, nil
}

func (k *kaelixClient) close() { k.c.Close() }

func newKaelixLink(r *runEnv, l *linkSpec) error {
	d, err := r.daemon()
	if err != nil {
		return err
	}
	l.Socket = d.socket
	l.Topic = fmt.Sprintf("bench.%d.%s", r.seq, l.ID)
	l.Group = l.Transport == "kaelix-queue"
	c, err := r.env.kaelixConn(d.socket)
	if err != nil {
		return err
	}
	capacity := uint64(4 << 20)
	for capacity < uint64(64*(l.Size+ringbuf.RecordHeaderLength)) {
		capacity *= 2
	}
	spec := client.TopicConfig{
		Name:            l.Topic,
		Kind:            client.KindMPMC,
		CapacityBytes:   capacity,
		MaxMessageBytes: uint32(max(l.Size, 64)),
		Policy:          client.PolicyBlock,
		MaxPublishers:   max(l.Pubs, 1),
		MaxSubscribers:  max(l.Subs, 1),
	}
	if l.Transport == "kaelix-spsc" {
		spec.Kind, spec.MaxPublishers, spec.MaxSubscribers = client.KindSPSC, 1, 1
	} else {
		spec.MaxGroups = 1
	}
	info, err := c.CreateTopic(r.env.ctx, spec)
	if err != nil {
		return fmt.Errorf("bench: topic %s: %w", l.Topic, err)
	}
	if len(info.Partitions) != 1 {
		return fmt.Errorf("bench: topic %s has %d partitions", l.Topic, len(info.Partitions))
	}
	part := info.Partitions[0]
	r.hugePagesUsed = r.hugePagesUsed || part.HugePages
	w, err := stat.OpenRingView(part.Path, part.ConsumerPath, part.SlotPaths(info.Spec.MaxSubscribers))
	if err != nil {
		return err
	}
	r.rings[l.ID] = w
	r.cleanup = append(r.cleanup, func() {
		w.Close()
		c.DeleteTopic(context.WithoutCancel(r.env.ctx), l.Topic, client.DeleteOptions{Force: true})
	})
	return nil
}

func kaelixFutexCalls(r *runEnv, l *linkSpec) uint64 {
	w, ok := r.rings[l.ID]
	if !ok {
		return 0
	}
	c := w.Ring.Counters()
	return c.Wakeups + c.Waits
}

func kaelixWait(s string) (client.WaitStrategy, error) {
	switch s {
	case "busy-spin":
		return client.WaitBusySpin, nil
	case "yield":
		return client.WaitYield, nil
	case "backoff", "":
		return client.WaitBackoff, nil
	case "blocking":
		return client.WaitBlocking, nil
	}
	return 0, fmt.Errorf("%w: %q (busy-spin, yield, backoff or blocking)", ErrUnknownWait, s)
}

type kaelixTx struct {
	ctx   context.Context
	pub   *client.Publisher
	msg   client.Message
	batch client.Batch
}

func openKaelixTx(e *procEnv, l *linkSpec, _ int) (Tx, error) {
	c, err := e.kaelixConn(l.Socket)
	if err != nil {
		return nil, err
	}
	// The publisher waits out back-pressure with the link's strategy too, so a
	// busy-spin pair makes no futex call on either side.
	w, err := kaelixWait(l.Wait)
	if err != nil {
		return nil, err
	}
	pub, err := c.NewPublisher(e.ctx, l.Topic, client.PublisherOptions{NoTimestamps: true, Wait: w})
	if err != nil {
		return nil, err
	}
	return &kaelixTx{ctx: e.ctx, pub: pub, batch: make(client.Batch, 0, max(l.Batch, 1))}, nil
}

// Send copies p into the ring with TryPublish (no allocation, no syscall
// unless a subscriber sleeps); while back-pressured it waits in Publish.
func (t *kaelixTx) Send(p []byte) error {
	t.msg.Payload = p
	err := t.pub.TryPublish(t.msg)
	if err == client.ErrBackPressured || err == client.ErrNotConnected { // Publish publishes with no subscriber too
		err = t.pub.Publish(t.ctx, t.msg)
	}
	return err
}

// SendBatch uses PublishBatch, the client's batch API.
func (t *kaelixTx) SendBatch(ps [][]byte) error {
	t.batch = t.batch[:0]
	for _, p := range ps {
		t.batch = append(t.batch, client.Message{Payload: p})
	}
	_, err := t.pub.PublishBatch(t.ctx, t.batch)
	return err
}

func (t *kaelixTx) Close() error { return t.pub.Close() }

type kaelixRx struct {
	ctx  context.Context
	sub  *client.Subscriber
	wait client.WaitStrategy
	h    func([]byte)
	onM  client.Handler
}

func openKaelixRx(e *procEnv, l *linkSpec, _ int) (Rx, error) {
	w, err := kaelixWait(l.Wait)
	if err != nil {
		return nil, err
	}
	c, err := e.kaelixConn(l.Socket)
	if err != nil {
		return nil, err
	}
	opts := client.SubscribeOptions{Wait: w}
	if l.Group {
		opts.Group = "bench"
	}
	sub, err := c.Subscribe(e.ctx, l.Topic, opts)
	if err != nil {
		return nil, err
	}
	r := &kaelixRx{ctx: e.ctx, sub: sub, wait: w}
	r.onM = func(m *client.Message) { r.h(m.Payload) }
	return r, nil
}

// Recv polls (zero copy, no allocation) with busy-spin and yield, the
// same loop as the ring's own strategies. With backoff and blocking it
// waits in Subscriber.PollWait, the client's zero-copy waiting receive
// (no allocation either), which spins, yields and parks on the ring's
// futex as the strategy says.
func (r *kaelixRx) Recv(h func([]byte), limit int) (int, error) {
	r.h = h
	if r.wait == client.WaitBackoff || r.wait == client.WaitBlocking {
		return r.sub.PollWait(r.ctx, r.onM, limit)
	}
	for spins := 1; ; spins++ {
		n, err := r.sub.Poll(r.onM, limit)
		if err == client.ErrStalled {
			// A publisher descheduled mid-record past the unblock timeout
			// (likely on a loaded host): retryable, the record will come.
			err = nil
		}
		if n > 0 || err != nil {
			return n, err
		}
		if r.wait == client.WaitYield {
			runtime.Gosched()
		}
		if spins%spinCheck == 0 {
			if err := r.ctx.Err(); err != nil {
				return 0, err
			}
		}
	}
}

func (r *kaelixRx) Close() error { return r.sub.Close() }

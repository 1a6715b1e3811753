package bench

// nats: core NATS publish/subscribe, the way a Go team would use it: a
// nats-server (github.com/nats-io/nats-server/v2) embedded in the parent
// process on a loopback port, and one nats.go connection per process
// (github.com/nats-io/nats.go). A link is a subject; the subscriber is a
// synchronous subscription (NextMsg), with no pending limits so that a
// burst is queued rather than dropped. Core NATS has no flow control: the
// harness's block acknowledgements (interleave.go) keep a throughput
// publisher from running more than a block ahead.

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

func init() {
	register(&transport{
		name: "nats", multiPub: true, multiSub: true,
		newLink: newNATSLink,
		openTx:  func(e *procEnv, l *linkSpec, _ int) (Tx, error) { return openNATS(e, l, false) },
		openRx:  func(e *procEnv, l *linkSpec, _ int) (Rx, error) { return openNATS(e, l, true) },
		method:  "/proc/PID/io syscr+syscw of both processes (the embedded server's socket reads and writes are in the parent's count)",
	})
}

// natsServer starts the case's embedded server on first use.
func (r *runEnv) natsServer() (*server.Server, error) {
	if r.ns != nil {
		return r.ns, nil
	}
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
		MaxPending: 1 << 30, WriteDeadline: 30 * time.Second, HTTPPort: 0,
	})
	if err != nil {
		return nil, fmt.Errorf("bench: nats-server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("bench: nats-server did not start in 10s")
	}
	r.ns = ns
	// One server per case: its background goroutines must not run (and
	// allocate) in the parent during later cases.
	r.cleanup = append(r.cleanup, r.stopNATS)
	return ns, nil
}

func (r *runEnv) stopNATS() {
	if r.ns != nil {
		r.ns.Shutdown()
		r.ns.WaitForShutdown()
		r.ns = nil
	}
}

func newNATSLink(r *runEnv, l *linkSpec) error {
	ns, err := r.natsServer()
	if err != nil {
		return err
	}
	l.Addr = ns.ClientURL()
	l.Topic = "bench." + l.ID
	return nil
}

// natsConn is this process's connection to url, shared by its ends.
func (e *procEnv) natsConn(url string) (*nats.Conn, error) {
	if nc, ok := e.nats[url]; ok {
		return nc, nil
	}
	nc, err := nats.Connect(url, nats.Name("kaelix-bench"), nats.NoReconnect())
	if err != nil {
		return nil, fmt.Errorf("bench: nats connect %s: %w", url, err)
	}
	if e.nats == nil {
		e.nats = map[string]*nats.Conn{}
	}
	e.nats[url] = nc
	return nc, nil
}

type natsEnd struct {
	e    *procEnv
	nc   *nats.Conn
	sub  *nats.Subscription
	subj string
}

func openNATS(e *procEnv, l *linkSpec, rx bool) (*natsEnd, error) {
	nc, err := e.natsConn(l.Addr)
	if err != nil {
		return nil, err
	}
	n := &natsEnd{e: e, nc: nc, subj: l.Topic}
	if rx {
		if n.sub, err = nc.SubscribeSync(l.Topic); err != nil {
			return nil, err
		}
		if err := n.sub.SetPendingLimits(-1, -1); err != nil {
			return nil, err
		}
		// The server has the subscription before anyone publishes.
		if err := nc.Flush(); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// Send publishes p (nats.go copies it into its write buffer; its flusher
// goroutine writes it out).
func (n *natsEnd) Send(p []byte) error { return n.nc.Publish(n.subj, p) }

func (n *natsEnd) SendBatch(ps [][]byte) error {
	for _, p := range ps {
		if err := n.nc.Publish(n.subj, p); err != nil {
			return err
		}
	}
	return nil
}

// Flush waits until the server has everything published so far (a
// PING/PONG round trip); the harness calls it only at block ends.
func (n *natsEnd) Flush() error { return n.nc.FlushTimeout(30 * time.Second) }

func (n *natsEnd) Recv(h func([]byte), limit int) (int, error) {
	m, err := n.sub.NextMsgWithContext(n.e.ctx)
	if err != nil {
		return 0, err
	}
	h(m.Data)
	k := 1
	for k < limit {
		if q, _, _ := n.sub.Pending(); q == 0 {
			break
		}
		if m, err = n.sub.NextMsg(time.Second); err != nil {
			return k, err
		}
		h(m.Data)
		k++
	}
	return k, nil
}

func (n *natsEnd) Close() error {
	if n.sub != nil {
		return n.sub.Unsubscribe()
	}
	return nil
}

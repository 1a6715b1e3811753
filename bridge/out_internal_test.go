package bridge

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// scriptedJS stands in for the stream: PublishMsgAsync answers each
// message at once, with an error for the Nats-Msg-Ids in fail (each
// once), and records every Nats-Msg-Id it was given. Only
// PublishMsgAsync is implemented.
type scriptedJS struct {
	jetstream.JetStream
	fail map[string]bool
	sent []string
}

type answered struct {
	ok  chan *jetstream.PubAck
	err chan error
	msg *nats.Msg
}

func (a answered) Ok() <-chan *jetstream.PubAck { return a.ok }
func (a answered) Err() <-chan error            { return a.err }
func (a answered) Msg() *nats.Msg               { return a.msg }

func (s *scriptedJS) PublishMsgAsync(m *nats.Msg, _ ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	id := strings.Clone(m.Header.Get(HdrMsgID)) // the builder reuses its storage
	s.sent = append(s.sent, id)
	a := answered{ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1), msg: m}
	if s.fail[id] {
		delete(s.fail, id)
		a.err <- jetstream.ErrAsyncPublishTimeout
	} else {
		a.ok <- &jetstream.PubAck{Stream: "S"}
	}
	return a, nil
}

// connectedNATS is a connection to an embedded server (the outbound
// loop checks the connection; the stream itself is scripted).
func connectedNATS(t *testing.T) *nats.Conn {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// TestAckedCountedOnce: a window whose first record is refused while the
// ones after it are acknowledged. Recovery republishes the refused one
// only; acked counts each record once (5), redelivered the one
// republished (1), and the committed position covers all five.
func TestAckedCountedOnce(t *testing.T) {
	b := &Bridge{log: slog.New(slog.DiscardHandler), nc: connectedNATS(t)}
	b.cfg.Host = "ha"
	b.cfg.NATS.AckTimeout = Duration(time.Second)
	r := &rule{cfg: Rule{Name: "o", Direction: Out, Topic: "t", Mode: JetStream, Subject: "k.{host}.{topic}.{partition}"}, b: b}
	js := &scriptedJS{fail: map[string]bool{"ha/t/0/10": true}}
	o := &outRule{rule: r, js: js, mb: newMsgBuilder(r.cfg.Subject), polled: map[int]uint64{}, next: map[int]uint64{}}
	for seq := uint64(10); seq < 15; seq++ {
		e := pend{part: 0, seq: seq, data: []byte("x")}
		o.publish(&e)
		o.pending = append(o.pending, e)
	}
	if !o.settle() {
		t.Fatal("settle: the refused head not reported")
	}
	if err := o.recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if o.settle() {
		t.Fatal("settle after recovery: head still failed")
	}
	want := []string{"ha/t/0/10", "ha/t/0/11", "ha/t/0/12", "ha/t/0/13", "ha/t/0/14", "ha/t/0/10"}
	if len(js.sent) != len(want) {
		t.Fatalf("published %v, want %v", js.sent, want)
	}
	for i := range want {
		if js.sent[i] != want[i] {
			t.Fatalf("published %v, want %v", js.sent, want)
		}
	}
	if got := o.m.acked.Load(); got != 5 {
		t.Errorf("acked %d, want 5", got)
	}
	if got := o.m.redelivered.Load(); got != 1 {
		t.Errorf("redelivered %d, want 1", got)
	}
	if got := o.m.forwarded.Load(); got != 5 {
		t.Errorf("forwarded %d, want 5", got)
	}
	if o.next[0] != 15 || o.head != len(o.pending) {
		t.Errorf("committed next %d (head %d of %d), want 15 and all", o.next[0], o.head, len(o.pending))
	}
}

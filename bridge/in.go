package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kaelix-io/kaelix/client"
)

// inRule is an inbound rule's run. Owned by the rule's goroutine.
type inRule struct {
	*rule
	pub     *client.Publisher
	nparts  int
	applied map[string]uint64    // origin HOST/TOPIC/PARTITION -> last origin sequence written locally
	keys    map[originKey]string // applied's keys, made once per origin partition
	dec     inDecoder
	dirty   bool
	// streamSeq (jetstream) is the stream sequence of the last message
	// handled (written or dropped): the consumer's durable position.
	streamSeq uint64
}

// begin is the start of a rule of either direction: its local topic must
// exist (an error saying to create it, else the daemon's), then its saved
// state is loaded.
func (r *rule) begin(ctx context.Context) (ruleState, error) {
	if _, err := r.b.kc.TopicInfo(ctx, r.cfg.Topic); err != nil {
		if errors.Is(err, client.ErrTopicNotFound) {
			return ruleState{}, fmt.Errorf("topic %q does not exist on kaelixd (%s): create it first", r.cfg.Topic, r.b.kc.SocketPath())
		}
		return ruleState{}, fmt.Errorf("topic %q: %w", r.cfg.Topic, err)
	}
	return loadState(r.b.cfg.StateDir, r.cfg.Name)
}

func (r *rule) runIn(ctx context.Context) error {
	kc := r.b.kc
	st, err := r.begin(ctx)
	if err != nil {
		return err
	}
	pub, err := kc.NewPublisher(ctx, r.cfg.Topic, client.PublisherOptions{Wait: waitStrategies[r.cfg.Wait]})
	if err != nil {
		return fmt.Errorf("publisher on %q: %w", r.cfg.Topic, err)
	}
	defer pub.Close()
	in := &inRule{rule: r, pub: pub, nparts: pub.Partitions(), applied: st.Applied, streamSeq: st.StreamSeq, keys: map[originKey]string{}}
	if in.applied == nil {
		in.applied = map[string]uint64{}
	}
	subject := strings.ReplaceAll(r.cfg.Subject, "{topic}", r.cfg.Topic)
	if r.cfg.Mode == Core {
		return in.loopCore(ctx, subject)
	}
	return in.loopJS(ctx, subject)
}

// inHeartbeat is the idle heartbeat an inbound JetStream rule asks of
// its ordered consumer: with none for 2*inHeartbeat (the consumer's
// server is gone), nats.go recreates the consumer after the last stream
// sequence returned.
const inHeartbeat = 2 * time.Second

// inBatchWait: an inbound JetStream batch is committed once no message
// came for this long.
const inBatchWait = 20 * time.Millisecond

// nextResult is one answer of the ordered consumer's Next.
type nextResult struct {
	m   jetstream.Msg
	err error
}

// outcome of one inbound message.
type outcome int

const (
	written outcome = iota // in the local ring
	dropped                // not written, and never will be: acknowledge it
)

// deliver writes one NATS message into the local ring, waiting while the
// ring is full (back-pressure: nothing is dropped, and nothing more is
// read meanwhile). It returns ctx's error if ctx ends first.
func (in *inRule) deliver(ctx context.Context, m *nats.Msg) (outcome, error) {
	id, ok, hs, rkey, err := in.dec.decode(m)
	if err != nil {
		in.m.lose(LostMalformed, 1)
		in.b.log.Warn("malformed message dropped", "rule", in.cfg.Name, "subject", m.Subject, "err", err)
		return dropped, nil
	}
	key := ""
	part := 0
	if ok {
		if id.Host == in.b.cfg.Host {
			in.m.skipped.Add(1) // our own records, back from NATS
			return dropped, nil
		}
		key = in.appliedKey(id)
		if last, seen := in.applied[key]; seen {
			if id.Sequence <= last {
				in.m.duplicates.Add(1)
				return dropped, nil
			}
			if id.Sequence > last+1 {
				in.m.lose(LostGap, id.Sequence-last-1)
			}
		}
		part = id.Partition % in.nparts
	}
	msg := client.Message{Payload: m.Data, Headers: hs, Partition: part}
	// The key goes along where it routes to that partition (the local
	// topic has the origin's partition count); elsewhere the origin's
	// partition wins and the key is not sent.
	if rkey != nil && client.PartitionOf(rkey, in.nparts) == part {
		msg.Key = rkey
	}
	// First without waiting (no context, no timer); while the ring is
	// full, or it has no subscriber (Publish writes anyway), wait in
	// Publish, which also reports anything else TryPublish refused.
	if err := in.pub.TryPublish(msg); err != nil {
		if o, err := in.publishWait(ctx, msg); o != written || err != nil {
			return o, err
		}
	}
	in.m.forwarded.Add(1)
	if ok {
		in.applied[key] = id.Sequence
		in.dirty = true
	}
	return written, nil
}

// originKey is an origin partition.
type originKey struct {
	host, topic string
	partition   int
}

// appliedKey is id's key in applied, HOST/TOPIC/PARTITION, built once
// per origin partition (the lookup by id's fields allocates nothing).
func (in *inRule) appliedKey(id Record) string {
	k := originKey{id.Host, id.Topic, id.Partition}
	if s, ok := in.keys[k]; ok {
		return s
	}
	s := id.Host + "/" + id.Topic + "/" + itoa(id.Partition)
	// The key keeps copies: id's strings are views of a NATS header.
	in.keys[originKey{strings.Clone(id.Host), strings.Clone(id.Topic), id.Partition}] = s
	return s
}

// publishWait publishes msg, waiting while the local ring is full.
func (in *inRule) publishWait(ctx context.Context, msg client.Message) (outcome, error) {
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := in.pub.Publish(pctx, msg)
		cancel()
		if err == nil {
			return written, nil
		}
		if ctx.Err() != nil {
			return dropped, ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			continue // the ring is still full: keep waiting
		}
		if errors.Is(err, client.ErrMessageTooLarge) {
			in.m.lose(LostTooLarge, 1)
			return dropped, nil
		}
		return dropped, err // ring fault, topic deleted: restart the rule
	}
}

// loopCore receives with a plain subscription: at most once. nats.go
// holds up to 64k messages (64 MiB) while the local ring is full; beyond
// that it drops them (counted in nats_dropped, and as gaps).
func (in *inRule) loopCore(ctx context.Context, subject string) error {
	sub, err := in.b.nc.SubscribeSync(subject)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", subject, err)
	}
	defer sub.Unsubscribe()
	sub.SetPendingLimits(65536, 64<<20)
	in.h.set(StateRunning, nil)
	lastUp := true
	for ctx.Err() == nil {
		m, err := sub.NextMsg(100 * time.Millisecond)
		if d, derr := sub.Dropped(); derr == nil {
			in.m.dropped.Store(uint64(d))
		}
		if up := in.b.nc.IsConnected(); up != lastUp {
			lastUp = up
			if up {
				in.h.set(StateRunning, nil)
			} else {
				in.h.set(StateWaiting, errors.New("nats disconnected"))
			}
		}
		if err != nil {
			if errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrSlowConsumer) {
				continue
			}
			return fmt.Errorf("receive %s: %w", subject, err)
		}
		if _, err := in.deliver(ctx, m); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

// loopJS reads the stream in order with an ordered consumer (nats.go
// recreates it at the next stream sequence after a gap, a reconnect or a
// NATS restart, so messages come strictly in stream order, each once),
// starting after the last stream sequence this rule handled. Every batch
// (Window messages, or fewer after 20ms with none) the rule saves that
// stream sequence and the applied origin sequences to its state file,
// after the batch is in the local ring: the file is the consumer's
// durable position. A bridge killed between its local write and the save
// reads that batch again and writes it again (at most one batch of
// duplicates per kill, each carrying the same Kaelix-Origin identity);
// origin sequences already written are dropped.
func (in *inRule) loopJS(ctx context.Context, subject string) error {
	if err := in.waitNATS(ctx); err != nil {
		return nil
	}
	js, err := jetstream.New(in.b.nc)
	if err != nil {
		return err
	}
	if err := ensureStream(ctx, js, in.cfg, subject); err != nil {
		return err
	}
	occ := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if in.streamSeq > 0 {
		occ.DeliverPolicy, occ.OptStartSeq = jetstream.DeliverByStartSequencePolicy, in.streamSeq+1
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cons, err := js.OrderedConsumer(cctx, in.cfg.Stream, occ)
	cancel()
	if err != nil {
		return fmt.Errorf("ordered consumer on stream %s: %w", in.cfg.Stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(in.cfg.Window), jetstream.PullHeartbeat(inHeartbeat))
	if err != nil {
		return fmt.Errorf("consume stream %s: %w", in.cfg.Stream, err)
	}
	// nats.go notices missing heartbeats (the consumer's server is gone,
	// and with it the pull request parked there) only inside a Next call
	// that lasts 2*inHeartbeat: a Next bounded by a short wait re-arms its
	// own timer each call and never fires it, and the consumer is never
	// recreated. So one goroutine calls Next without a bound and hands
	// each result over; this one waits for it with the batch timeout.
	next := make(chan nextResult)
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			m, err := it.Next()
			select {
			case next <- nextResult{m, err}:
			case <-stop:
				return
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
		}
	}()
	defer func() {
		it.Stop() // ends a Next in progress
		close(stop)
		<-readerDone
	}()
	in.h.set(StateRunning, nil)
	in.b.log.Info("rule running", "rule", in.cfg.Name, "topic", in.cfg.Topic, "subject", subject, "stream", in.cfg.Stream, "from_stream_seq", in.streamSeq+1)
	uncommitted := 0
	idle := time.NewTimer(inBatchWait)
	defer idle.Stop()
	for ctx.Err() == nil {
		idle.Reset(inBatchWait)
		var r nextResult
		select {
		case r = <-next:
		case <-idle.C:
			r.err = nats.ErrTimeout
		case <-ctx.Done():
			continue
		}
		m, err := r.m, r.err
		if err != nil {
			if uncommitted > 0 {
				in.commit(uncommitted)
				uncommitted = 0
			}
			switch {
			case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
				if in.b.nc.IsConnected() {
					in.h.set(StateRunning, nil)
				} else {
					in.h.set(StateWaiting, errors.New("nats disconnected"))
				}
			case errors.Is(err, jetstream.ErrMsgIteratorClosed):
				return errors.New("consumer iterator closed")
			default:
				in.h.set(StateWaiting, err)
				time.Sleep(20 * time.Millisecond)
			}
			continue
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("stream %s: message metadata: %w", in.cfg.Stream, err)
		}
		in.m.lagRecords.Store(int64(md.NumPending))
		nm := &nats.Msg{Subject: m.Subject(), Data: m.Data(), Header: m.Headers()}
		if _, err := in.deliver(ctx, nm); err != nil {
			in.commit(uncommitted)
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		in.streamSeq = md.Sequence.Stream
		in.dirty = true
		if uncommitted++; uncommitted >= in.cfg.Window {
			in.commit(uncommitted)
			uncommitted = 0
		}
	}
	in.commit(uncommitted)
	return nil
}

// commit saves the stream position and the applied origin positions; n
// is how many messages it covers (counted as acked).
func (in *inRule) commit(n int) {
	if !in.dirty || in.b.cfg.StateDir == "" {
		return
	}
	if err := saveState(in.b.cfg.StateDir, in.cfg.Name, ruleState{Applied: in.applied, StreamSeq: in.streamSeq}); err != nil {
		in.b.log.Error("saving positions", "rule", in.cfg.Name, "err", err)
		return
	}
	in.dirty = false
	in.m.acked.Add(uint64(n))
}

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
	applied map[string]uint64 // origin HOST/TOPIC/PARTITION -> last origin sequence written locally
	dirty   bool
	// holdGaps (jetstream): a message after a gap is held back (not
	// written, redelivered later) until the missing ones arrive or the
	// gap is older than gapTimeout; heldSince says since when, per key.
	holdGaps  bool
	heldSince map[string]time.Time
}

// Inbound JetStream timing: AckWait of the consumer (a message not
// acknowledged within it is redelivered: so are the messages in flight
// when NATS restarts), how long a message after a gap is held back
// before the gap is taken as real (counted lost), and the redelivery
// delay of a held message.
const (
	inAckWait      = 5 * time.Second
	gapTimeout     = 3 * inAckWait
	holdRedelivery = 200 * time.Millisecond
)

func (r *rule) runIn(ctx context.Context) error {
	kc := r.b.kc
	if _, err := kc.TopicInfo(ctx, r.cfg.Topic); err != nil {
		if errors.Is(err, client.ErrTopicNotFound) {
			return fmt.Errorf("topic %q does not exist on kaelixd (%s): create it first", r.cfg.Topic, kc.SocketPath())
		}
		return fmt.Errorf("topic %q: %w", r.cfg.Topic, err)
	}
	st, err := loadState(r.b.cfg.StateDir, r.cfg.Name)
	if err != nil {
		return err
	}
	pub, err := kc.NewPublisher(ctx, r.cfg.Topic, client.PublisherOptions{})
	if err != nil {
		return fmt.Errorf("publisher on %q: %w", r.cfg.Topic, err)
	}
	defer pub.Close()
	in := &inRule{rule: r, pub: pub, nparts: pub.Partitions(), applied: st.Applied, holdGaps: r.cfg.Mode == JetStream, heldSince: map[string]time.Time{}}
	if in.applied == nil {
		in.applied = map[string]uint64{}
	}
	subject := strings.ReplaceAll(r.cfg.Subject, "{topic}", r.cfg.Topic)
	if r.cfg.Mode == Core {
		return in.loopCore(ctx, subject)
	}
	return in.loopJS(ctx, subject)
}

// outcome of one inbound message.
type outcome int

const (
	written outcome = iota // in the local ring
	dropped                // not written, and never will be: acknowledge it
	held                   // not written yet: it follows a gap; have it redelivered
)

// deliver writes one NATS message into the local ring, waiting while the
// ring is full (back-pressure: nothing is dropped; keepAlive is called
// every few seconds meanwhile, e.g. to tell JetStream the message is in
// progress). It returns ctx's error if ctx ends first.
func (in *inRule) deliver(ctx context.Context, m *nats.Msg, keepAlive func()) (outcome, error) {
	id, ok, hs, err := fromNATS(m)
	if err != nil {
		in.m.lose(LostMalformed, 1)
		in.b.log.Warn("malformed message dropped", "rule", in.cfg.Name, "subject", m.Subject, "err", err)
		return dropped, nil
	}
	key := ""
	part := 0
	if ok {
		if id.host == in.b.cfg.Host {
			in.m.skipped.Add(1) // our own records, back from NATS
			return dropped, nil
		}
		key = id.host + "/" + id.topic + "/" + itoa(id.partition)
		if last, seen := in.applied[key]; seen {
			if id.sequence <= last {
				in.m.duplicates.Add(1)
				return dropped, nil
			}
			if id.sequence > last+1 {
				if in.holdGaps {
					since, ok := in.heldSince[key]
					if !ok {
						in.heldSince[key] = time.Now()
						return held, nil
					}
					if time.Since(since) < gapTimeout {
						return held, nil
					}
				}
				in.m.lose(LostGap, id.sequence-last-1)
			}
			delete(in.heldSince, key)
		}
		part = id.partition % in.nparts
	}
	msg := client.Message{Payload: m.Data, Headers: hs, Partition: part}
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := in.pub.Publish(pctx, msg)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return dropped, ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			if keepAlive != nil {
				keepAlive()
			}
			continue // the ring is still full: keep waiting
		}
		if errors.Is(err, client.ErrMessageTooLarge) {
			in.m.lose(LostTooLarge, 1)
			return dropped, nil
		}
		return dropped, err // ring fault, topic deleted: restart the rule
	}
	in.m.forwarded.Add(1)
	if ok {
		in.applied[key] = id.sequence
		in.dirty = true
	}
	return written, nil
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
		if _, err := in.deliver(ctx, m, nil); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

// loopJS consumes a durable pull consumer (AckExplicit): write messages
// into the local ring, and every batch (Window messages, or fewer after
// 20ms with none) save the applied origin positions to the state file,
// then acknowledge each message of the batch. A bridge killed between
// its local write and the state file write gets that batch again and
// writes it again (at most one batch of duplicates per kill, each
// carrying the same Kaelix-Origin-* identity); redeliveries while it runs
// are dropped by origin sequence. Order: messages in flight when the
// connection breaks come back only after AckWait, behind newer ones; a
// message that follows a gap in its origin sequence is therefore held
// back (negatively acknowledged with a short delay) until the missing
// ones arrive, or for at most gapTimeout, after which the gap is taken
// as real and counted lost.
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
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cons, err := js.CreateOrUpdateConsumer(cctx, in.cfg.Stream, jetstream.ConsumerConfig{
		Durable:       in.cfg.Durable,
		FilterSubject: subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       inAckWait,
		MaxAckPending: 4 * in.cfg.Window,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("consumer %s on stream %s: %w", in.cfg.Durable, in.cfg.Stream, err)
	}
	// A continuous pull (up to Window messages ahead); the batch written
	// since the last commit is committed when it reaches Window messages
	// or when no message came for 20ms.
	it, err := cons.Messages(jetstream.PullMaxMessages(in.cfg.Window))
	if err != nil {
		return fmt.Errorf("consume %s: %w", in.cfg.Durable, err)
	}
	defer it.Stop()
	in.h.set(StateRunning, nil)
	in.b.log.Info("rule running", "rule", in.cfg.Name, "topic", in.cfg.Topic, "subject", subject, "stream", in.cfg.Stream, "durable", in.cfg.Durable)
	var done []jetstream.Msg // handled since the last commit, to acknowledge
	for ctx.Err() == nil {
		m, err := it.Next(jetstream.NextMaxWait(20 * time.Millisecond))
		if err != nil {
			done = in.commit(done)
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
		if md, err := m.Metadata(); err == nil {
			if md.NumDelivered > 1 {
				in.m.redelivered.Add(1)
			}
			in.m.lagRecords.Store(int64(md.NumPending))
		}
		nm := &nats.Msg{Subject: m.Subject(), Data: m.Data(), Header: m.Headers()}
		out, err := in.deliver(ctx, nm, func() { m.InProgress() })
		if err != nil {
			in.commit(done)
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if out == held {
			m.NakWithDelay(holdRedelivery)
			continue
		}
		if done = append(done, m); len(done) >= in.cfg.Window {
			done = in.commit(done)
		}
	}
	in.commit(done)
	return nil
}

// commit saves the applied origin positions, then acknowledges each
// message handled (written or dropped) since the last commit. It returns
// done emptied, for reuse.
func (in *inRule) commit(done []jetstream.Msg) []jetstream.Msg {
	if in.dirty && in.b.cfg.StateDir != "" {
		if err := saveState(in.b.cfg.StateDir, in.cfg.Name, ruleState{Applied: in.applied}); err != nil {
			in.b.log.Error("saving applied positions", "rule", in.cfg.Name, "err", err)
		} else {
			in.dirty = false
		}
	}
	for _, m := range done {
		// A lost ack means a redelivery, which the origin sequence drops.
		if err := m.Ack(); err == nil {
			in.m.acked.Add(1)
		}
	}
	clear(done)
	return done[:0]
}

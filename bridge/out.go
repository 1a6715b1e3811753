package bridge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kaelix-io/kaelix/client"
)

// pendState is where an outbound JetStream record stands.
type pendState uint8

const (
	pendWaiting pendState = iota // published, no answer yet
	pendOK                       // acknowledged by the stream
	pendFailed                   // refused, timed out, or never sent
	pendNoop                     // not to be sent (bridged in): done once those before it are
)

// pend is an outbound record between read and acknowledged: what its
// NATS message is built from (again, for a republish).
type pend struct {
	part    int
	seq     uint64
	tsNS    int64
	key     []byte            // the message key, copied (nil: none)
	data    []byte            // the payload, copied out of the ring
	headers map[string]string // the record's headers, copied (nil: none)
	fut     jetstream.PubAckFuture
	gen     uint64 // NATS reconnect count when it was published
	state   pendState
	acked   bool // an acknowledgement was counted (a republish is not counted again)
}

// outRule is an outbound rule's run: the local subscriber, what it has
// read and what the far side has confirmed. Owned by the rule's goroutine.
type outRule struct {
	*rule
	sub      *client.Subscriber
	js       jetstream.JetStream
	mb       *msgBuilder
	polled   map[int]uint64 // next ring sequence expected, per partition (known once seen or committed)
	next     map[int]uint64 // committed: first sequence not yet acknowledged, per partition
	pending  []pend         // read, not committed, in read order
	head     int            // pending[:head] are done
	dirty    bool
	lastSave time.Time
	maxData  int64
	curErr   error
}

func (r *rule) runOut(ctx context.Context) error {
	kc := r.b.kc
	st, err := r.begin(ctx)
	if err != nil {
		return err
	}
	o := &outRule{rule: r, mb: newMsgBuilder(r.cfg.Subject), polled: map[int]uint64{}, next: map[int]uint64{}}
	if r.cfg.Mode == JetStream {
		for k, v := range st.Next {
			p, err := strconv.Atoi(k)
			if err != nil || p < 0 {
				return fmt.Errorf("state file %s: partition %q", statePath(r.b.cfg.StateDir, r.cfg.Name), k)
			}
			o.next[p], o.polled[p] = v, v
		}
	}
	// Nothing is read before NATS was reached once: a bridge that never
	// connected has forwarded nothing and lost nothing.
	if err := r.waitNATS(ctx); err != nil {
		return nil
	}
	if r.cfg.Mode == JetStream {
		js, err := jetstream.New(r.b.nc, jetstream.WithPublishAsyncMaxPending(2*r.cfg.Window+16),
			jetstream.WithPublishAsyncTimeout(time.Duration(r.b.cfg.NATS.AckTimeout)))
		if err != nil {
			return err
		}
		o.js = js
		if err := ensureStream(ctx, js, r.cfg, streamSubject(r.cfg)); err != nil {
			return err
		}
	}
	from := client.FromLatest
	if len(o.next) > 0 || r.cfg.From == "oldest" {
		from = client.FromOldest
	}
	sub, err := kc.Subscribe(ctx, r.cfg.Topic, client.SubscribeOptions{From: from, Wait: waitStrategies[r.cfg.Wait]})
	if err != nil {
		return fmt.Errorf("subscribe to %q: %w", r.cfg.Topic, err)
	}
	defer sub.Close()
	o.sub = sub
	o.maxData = r.b.nc.MaxPayload()
	r.h.set(StateRunning, nil)
	r.b.log.Info("rule running", "rule", r.cfg.Name, "topic", r.cfg.Topic, "subject", r.cfg.Subject, "mode", r.cfg.Mode, "from", from, "resume", o.next)
	if r.cfg.Mode == Core {
		return o.loopCore(ctx)
	}
	defer o.finish()
	return o.loopJS(ctx)
}

// streamSubject is the subject filter a rule's stream needs: the
// template with {host} and {partition} as '*'.
func streamSubject(rc Rule) string {
	return strings.NewReplacer("{host}", "*", "{topic}", rc.Topic, "{partition}", "*").Replace(rc.Subject)
}

// ensureStream makes the rule's stream if it does not exist, and adds
// subject to an existing stream that does not list it.
func ensureStream(ctx context.Context, js jetstream.JetStream, rc Rule, subject string) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := js.Stream(cctx, rc.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(cctx, jetstream.StreamConfig{
			Name: rc.Stream, Subjects: []string{subject}, Storage: jetstream.FileStorage,
			Duplicates: time.Duration(rc.DedupWindow), Replicas: rc.Replicas,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return ensureStream(ctx, js, rc, subject) // made by a peer meanwhile
		}
		if err != nil {
			return fmt.Errorf("create stream %s on %s: %w", rc.Stream, subject, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", rc.Stream, err)
	}
	sc := s.CachedInfo().Config
	for _, have := range sc.Subjects {
		if have == subject {
			return nil
		}
	}
	sc.Subjects = append(sc.Subjects, subject)
	if _, err := js.UpdateStream(cctx, sc); err != nil {
		return fmt.Errorf("stream %s: add subject %s: %w", rc.Stream, subject, err)
	}
	return nil
}

// read delivers the next ready records to h, up to limit, waiting at most
// wait for the first (parked on the ring's doorbells by the subscriber's
// wait strategy; PollWait delivers in place, without a copy).
func (o *outRule) read(ctx context.Context, h client.Handler, limit int, wait time.Duration) error {
	n, err := o.sub.Poll(h, limit)
	if err != nil && err != client.ErrLapped && err != client.ErrStalled {
		return err
	}
	if n > 0 || wait <= 0 {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, wait)
	_, err = o.sub.PollWait(rctx, h, limit)
	cancel()
	if err == nil || ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// admit checks a record against the partition's expected sequence:
// false for one already forwarded (a replay after a restart), and counts
// a gap for sequences that were never read.
func (o *outRule) admit(m *client.Message) bool {
	p, seq := m.Partition, m.ID.Sequence
	if want, known := o.polled[p]; known {
		if seq < want {
			return false
		}
		if seq > want {
			o.m.lose(LostGap, seq-want)
		}
	}
	o.polled[p] = seq + 1
	return true
}

// build returns the NATS message of a record, valid until the next build
// (see msgBuilder).
func (o *outRule) build(part int, seq uint64, tsNS int64, key, payload []byte, hs map[string]string) (*nats.Msg, error) {
	id := Record{Host: o.b.cfg.Host, Topic: o.cfg.Topic, Partition: part, Sequence: seq, TimestampNS: tsNS}
	return o.mb.build(id, key, payload, hs, o.cfg.Mode == JetStream)
}

func bridgedIn(m *client.Message) bool { _, ok := m.Headers[HdrOrigin]; return ok }

// loopCore forwards at most once: each record is published on the live
// connection or counted lost with its reason.
func (o *outRule) loopCore(ctx context.Context) error {
	nc := o.b.nc
	h := func(m *client.Message) {
		if !o.admit(m) {
			return
		}
		if bridgedIn(m) {
			o.m.skipped.Add(1)
			return
		}
		if int64(len(m.Payload)) > o.maxData {
			o.m.lose(LostTooLarge, 1)
			return
		}
		msg, err := o.build(m.Partition, m.ID.Sequence, m.TimestampNS, m.Key, m.Payload, m.Headers)
		if err == nil {
			err = nc.PublishMsg(msg) // copies into nats.go's write buffer; its flusher writes
		}
		switch {
		case err == nil:
			o.m.forwarded.Add(1)
		case errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, nats.ErrConnectionReconnecting) || !nc.IsConnected():
			o.m.lose(LostDisconnected, 1)
		case errors.Is(err, nats.ErrMaxPayload):
			o.m.lose(LostTooLarge, 1)
		default:
			o.m.lose(LostPublishError, 1)
			o.curErr = err
		}
	}
	lastState := true
	for ctx.Err() == nil {
		if err := o.read(ctx, h, 256, 100*time.Millisecond); err != nil {
			return err
		}
		if o.curErr != nil {
			o.b.log.Warn("publish failed; record counted lost", "rule", o.cfg.Name, "err", o.curErr)
			o.curErr = nil
		}
		o.m.lagBytes.Store(int64(o.sub.Lag()))
		if up := nc.IsConnected(); up != lastState {
			lastState = up
			if up {
				o.h.set(StateRunning, nil)
			} else {
				o.h.set(StateWaiting, errors.New("nats disconnected: records are counted lost"))
			}
		}
	}
	return nil
}

// loopJS forwards at least once, in order, deduplicated by Nats-Msg-Id:
// at most Window records are published and not yet acknowledged; a
// partition's committed position moves only over acknowledged records.
// On any failure it stops publishing, waits for every answer outstanding,
// and republishes everything from the first unacknowledged record in read
// order (the stream drops those it already holds). After a reconnect,
// nothing new is published until every answer from before it is in, so
// a record can never reach the stream ahead of an earlier one that was
// lost with the old connection.
func (o *outRule) loopJS(ctx context.Context) error {
	h := func(m *client.Message) {
		if !o.admit(m) {
			return
		}
		e := pend{part: m.Partition, seq: m.ID.Sequence, tsNS: m.TimestampNS}
		switch {
		case bridgedIn(m):
			o.m.skipped.Add(1)
			e.state = pendNoop
		case int64(len(m.Payload)) > o.maxData:
			o.m.lose(LostTooLarge, 1)
			e.state = pendNoop
		default:
			// The ring's record and the subscriber's header map are
			// reused once the handler returns: keep copies.
			e.data = append([]byte(nil), m.Payload...)
			if m.Key != nil {
				e.key = append([]byte(nil), m.Key...)
			}
			if m.Headers != nil {
				e.headers = maps.Clone(m.Headers)
			}
			if _, err := o.build(e.part, e.seq, e.tsNS, e.key, e.data, e.headers); err != nil {
				o.m.lose(LostPublishError, 1)
				e.state, e.key, e.data, e.headers = pendNoop, nil, nil, nil
				break
			}
			o.publish(&e)
		}
		o.pending = append(o.pending, e)
	}
	for ctx.Err() == nil {
		failed := o.settle()
		if failed {
			if err := o.recover(ctx); err != nil {
				return nil // ctx done
			}
			continue
		}
		o.maybeSave(false)
		out := len(o.pending) - o.head
		o.m.lagRecords.Store(int64(out))
		o.m.lagBytes.Store(int64(o.sub.Lag()))
		sameConn := out == 0 || o.pending[o.head].gen == o.b.reconnects()
		if out < o.cfg.Window && sameConn && o.b.nc.IsConnected() {
			wait := 100 * time.Millisecond
			if out > 0 {
				wait = time.Millisecond
			}
			if err := o.read(ctx, h, o.cfg.Window-out, wait); err != nil {
				return err
			}
			continue
		}
		o.awaitHead(ctx, 50*time.Millisecond)
	}
	return nil
}

// publish sends e asynchronously (no retries inside nats.go: a retry
// there could reorder records); a refused publish marks it failed.
func (o *outRule) publish(e *pend) {
	e.gen = o.b.reconnects()
	var fut jetstream.PubAckFuture
	msg, err := o.build(e.part, e.seq, e.tsNS, e.key, e.data, e.headers)
	if err == nil {
		// nats.go encodes msg before this returns and keeps it in the
		// future only for retries (none) and error callbacks (none set),
		// so the builder may reuse it.
		fut, err = o.js.PublishMsgAsync(msg, jetstream.WithRetryAttempts(0))
	}
	if err != nil {
		e.state, e.fut = pendFailed, nil
		return
	}
	e.state, e.fut = pendWaiting, fut
	o.m.forwarded.Add(1)
}

// poll takes e's answer if there is one, waiting for it until wait
// fires (nil: not at all).
func (o *outRule) poll(e *pend, wait <-chan time.Time) {
	if e.state != pendWaiting {
		return
	}
	if wait == nil {
		select {
		case <-e.fut.Ok():
			o.ackOK(e)
		case err := <-e.fut.Err():
			e.state = pendFailed
			o.curErr = err
		default:
		}
		return
	}
	select {
	case <-e.fut.Ok():
		o.ackOK(e)
	case err := <-e.fut.Err():
		e.state = pendFailed
		o.curErr = err
	case <-wait:
	}
}

// ackOK marks e acknowledged and counts its first acknowledgement (a
// record republished after a failure is not counted twice).
func (o *outRule) ackOK(e *pend) {
	e.state = pendOK
	if !e.acked {
		e.acked = true
		o.m.acked.Add(1)
	}
}

// settle commits the done records at the head and reports whether the
// head is a failed one.
func (o *outRule) settle() bool {
	for o.head < len(o.pending) {
		e := &o.pending[o.head]
		o.poll(e, nil)
		switch e.state {
		case pendWaiting:
			o.compact()
			return false
		case pendFailed:
			return true
		}
		o.next[e.part] = e.seq + 1
		o.dirty = true
		*e = pend{}
		o.head++
	}
	o.compact()
	return false
}

func (o *outRule) compact() {
	if o.head > 0 && (o.head == len(o.pending) || o.head > 4096) {
		n := copy(o.pending, o.pending[o.head:])
		clear(o.pending[n:])
		o.pending = o.pending[:n]
		o.head = 0
	}
}

// awaitHead waits up to d for the head record's answer.
func (o *outRule) awaitHead(ctx context.Context, d time.Duration) {
	if o.head == len(o.pending) {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		return
	}
	t := time.NewTimer(d)
	o.poll(&o.pending[o.head], t.C)
	t.Stop()
}

// recover waits for every outstanding answer, then for NATS, then
// republishes every record from the first failed one, in order.
func (o *outRule) recover(ctx context.Context) error {
	if o.curErr != nil {
		o.b.log.Warn("jetstream publish failed; republishing from the first unacknowledged record", "rule", o.cfg.Name, "err", o.curErr)
		o.curErr = nil
	}
	ackWait := time.Duration(o.b.cfg.NATS.AckTimeout) + time.Second
	for i := o.head; i < len(o.pending); i++ {
		t := time.NewTimer(ackWait)
		o.poll(&o.pending[i], t.C)
		t.Stop()
		if o.pending[i].state == pendWaiting { // no answer within the ack timeout: treat as failed
			o.pending[i].state = pendFailed
		}
	}
	if o.settle(); o.head == len(o.pending) {
		return nil
	}
	if err := o.waitNATS(ctx); err != nil {
		return err
	}
	// The first record goes alone, and the rest only once the stream has
	// acknowledged it: a burst sent while the stream is still recovering
	// (a leader election in a cluster) could have its first records
	// refused and later ones stored, out of order.
	probed := false
	for i := o.head; i < len(o.pending); i++ {
		e := &o.pending[i]
		if e.state == pendNoop || e.state == pendOK {
			continue // nothing to send, or in the stream already
		}
		o.m.redelivered.Add(1)
		o.m.forwarded.Add(^uint64(0)) // publish counts it again
		o.publish(e)
		if !probed && e.state == pendWaiting {
			t := time.NewTimer(ackWait)
			o.poll(e, t.C)
			t.Stop()
			if e.state == pendWaiting {
				e.state = pendFailed
			}
			probed = true
		}
		if e.state == pendFailed {
			// Refused again: back off a little and start over; records
			// after it are not sent yet.
			for j := i + 1; j < len(o.pending); j++ {
				if o.pending[j].state != pendNoop {
					o.pending[j].state, o.pending[j].fut = pendFailed, nil
				}
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			return nil
		}
	}
	return nil
}

// maybeSave writes the committed positions if they moved and the commit
// interval passed (always if force).
func (o *outRule) maybeSave(force bool) {
	if !o.dirty || !force && time.Since(o.lastSave) < time.Duration(o.b.cfg.CommitInterval) {
		return
	}
	st := ruleState{Next: make(map[string]uint64, len(o.next))}
	for p, v := range o.next {
		st.Next[itoa(p)] = v
	}
	if err := saveState(o.b.cfg.StateDir, o.cfg.Name, st); err != nil {
		o.b.log.Error("saving committed positions", "rule", o.cfg.Name, "err", err)
		return
	}
	o.dirty, o.lastSave = false, time.Now()
}

// finish waits (bounded by the ack timeout) for outstanding answers and
// commits what was acknowledged.
func (o *outRule) finish() {
	deadline := time.Now().Add(time.Duration(o.b.cfg.NATS.AckTimeout))
	for o.head < len(o.pending) && time.Now().Before(deadline) {
		if o.settle() {
			break
		}
		t := time.NewTimer(10 * time.Millisecond)
		if o.head < len(o.pending) {
			o.poll(&o.pending[o.head], t.C)
		}
		t.Stop()
	}
	o.settle()
	o.maybeSave(true)
}

package client

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// ErrTopicRecreated: the rings this Publisher or Subscriber maps are no
// longer its topic's. Either the daemon restarted without the topic or
// with a new topic of that name (an --ephemeral daemon removes its region
// files on exit; a daemon started afresh creates new ones), or the
// topic's region files were removed from outside (systemd-logind's
// RemoveIPC does this to a login user's files at logout) and the daemon
// re-created the topic with new rings. Records published through the old
// rings reach no subscriber of the daemon's topic. Returned as a
// *TopicRecreatedError with the cause and what was published into the
// old rings meanwhile, by every call of the handle from then on (a
// Subscriber first delivers what it can still read). Remedy: Close the
// handle and attach again (NewPublisher, Subscribe); the daemon's topic
// of that name, if any, is the one to use.
var ErrTopicRecreated = errors.New("topic recreated")

// TopicRecreatedError is ErrTopicRecreated for one handle.
type TopicRecreatedError struct {
	Topic string
	// Reason is "daemon restarted without the topic", "daemon restarted
	// with a new topic of that name" or "region files removed; the daemon
	// re-created the topic".
	Reason string
	// Since is when this process lost track of the rings: when its
	// connection to the daemon that owned them broke (restart), or when
	// it saw them retired (files removed).
	Since time.Time
	// Published is the number of records committed to the old rings of
	// the handle's partitions, by every publisher on them, after Since
	// and before the error was made: records the daemon's topic never
	// saw. (Files removed: records published between the daemon retiring
	// the rings and this process seeing it are not counted; the old
	// rings' subscribers still read them.)
	Published uint64
}

func (e *TopicRecreatedError) Error() string {
	return fmt.Sprintf("topic %q recreated: %s (%d records published into the old rings since %s); close this handle and attach again",
		e.Topic, e.Reason, e.Published, e.Since.Format(time.RFC3339Nano))
}

// Unwrap makes errors.Is(err, ErrTopicRecreated) hold.
func (e *TopicRecreatedError) Unwrap() error { return ErrTopicRecreated }

// Reasons of TopicRecreatedError.
const (
	reasonMissing   = "daemon restarted without the topic"
	reasonRecreated = "daemon restarted with a new topic of that name"
	reasonRemoved   = "region files removed; the daemon re-created the topic"
)

// ringWatch is what the Client needs of a handle's rings to tell whether
// they are the daemon's after a reconnect and to retire them if not. It
// is made before the handle is registered and never changes after; the
// Client touches the rings only while the handle is registered (under
// Client.mu; Close unregisters before unmapping).
type ringWatch struct {
	topic    string
	rings    []*ringbuf.Ring // one per attached partition, Resume.Partitions order
	writable bool            // rings have a writable data area (publisher)
	marks    []atomic.Uint64 // each ring's published count when the connection broke
	since    atomic.Int64    // unix ns of that
	err      atomic.Pointer[TopicRecreatedError]
}

func newRingWatch(topic string, rings []*ringbuf.Ring, writable bool) *ringWatch {
	return &ringWatch{topic: topic, rings: rings, writable: writable, marks: make([]atomic.Uint64, len(rings))}
}

// ringIDs returns the wire identities of the data regions, in order.
func ringIDs(data []*shm.Region) []wire.RingID {
	ids := make([]wire.RingID, len(data))
	for i, r := range data {
		h := r.Header()
		ids[i] = wire.RingID{Instance: h.Instance, CreatedNS: h.CreatedNS}
	}
	return ids
}

// published reads ring i's published counter (0 if its memory faults).
func (w *ringWatch) published(i int) uint64 {
	var n uint64
	shm.Guard(func() error { n = w.rings[i].Counters().Published; return nil })
	return n
}

// lost records the rings' published counts: the connection broke.
// Client.mu held.
func (w *ringWatch) lost(at time.Time) {
	for i := range w.rings {
		w.marks[i].Store(w.published(i))
	}
	w.since.Store(at.UnixNano())
}

// retire makes the handle's error (reason as wire.Stale.Reason) and,
// for a publisher, marks its rings recreated, which its own next publish
// sees (Publisher.tryPublish checks the ring's deleted word) and so does
// every other process still on them. Client.mu held.
func (w *ringWatch) retire(reason string) {
	e := &TopicRecreatedError{Topic: w.topic, Reason: reasonRecreated, Since: time.Unix(0, w.since.Load())}
	if reason == wire.StaleMissing {
		e.Reason = reasonMissing
	}
	for i := range w.rings {
		e.Published += w.published(i) - w.marks[i].Load()
	}
	w.err.CompareAndSwap(nil, e) // before the marks: whoever sees a mark finds the error
	for i := range w.rings {
		if w.writable {
			shm.Guard(func() error { w.rings[i].MarkRecreated(); return nil })
		}
	}
}

// deleted turns ringbuf.ErrDeleted from one of the handle's rings into
// the handle's error: its *TopicRecreatedError if the Client retired it,
// one for removed files if a ring is marked recreated (the daemon does
// that), else ErrTopicDeleted.
func (w *ringWatch) deleted() error {
	if e := w.err.Load(); e != nil {
		return e
	}
	recreated := false
	shm.Guard(func() error {
		for _, r := range w.rings {
			recreated = recreated || r.Recreated()
		}
		return nil
	})
	if !recreated {
		return ErrTopicDeleted
	}
	w.err.CompareAndSwap(nil, &TopicRecreatedError{Topic: w.topic, Reason: reasonRemoved, Since: time.Now()})
	return w.err.Load()
}

func (p *Publisher) watch() *ringWatch  { return p.w }
func (s *Subscriber) watch() *ringWatch { return s.w }

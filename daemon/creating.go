package daemon

import (
	"sync/atomic"
	"time"

	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/wire"
)

// Topics being created. Making a topic's regions takes time in proportion
// to its size (fallocate, and with shm.prefault every page touched: seconds
// per GiB), so createTopicWith makes them outside d.mu, behind a
// placeholder in Daemon.creating that owns the name until the creation
// ends. Meanwhile:
//
//   - list, stats and info answer, showing the topic with Creating set
//     (its spec, no partitions yet); daemon status answers too.
//   - an attach of the topic waits for the creation's outcome, then
//     attaches (or fails with not_found if the creation failed or was
//     abandoned). The daemon answers a connection's requests in order, so
//     that connection waits too; others do not. A client that gives up
//     meanwhile detaches the late attachment (client.abandoned).
//   - a second create or open-or-create of the name with the same
//     parameters waits for the outcome and then looks again: open-or-create
//     opens the new topic, create is refused as a duplicate, and either
//     makes the topic itself if the first creation failed. With other
//     parameters it is refused at once (conflict).
//   - delete abandons the creation (deleteTopic): the creator stops after
//     the partition it is making and removes everything it made; delete
//     returns once it has. A stopping daemon abandons it the same way.
//   - a reload declaring the topic is an open-or-create: it waits too.
//   - the size check (checkSize) of another new topic counts the regions
//     that creations in flight have still to make as already taken.
//
// A failed or abandoned creation removes every region it made and its
// placeholder, under d.mu, before anyone waiting on it looks again:
// nothing of it is left.

// creation is one topic being created. spec, rc, startNS, tmpfsPerPart
// and hook are set before it is published in Daemon.creating and then
// only read.
type creation struct {
	spec    wire.TopicSpec
	rc      ringbuf.Config
	startNS int64
	// tmpfsPerPart is what each of its partitions takes on the tmpfs
	// (topicFootprint), for other topics' size checks; 0 when the checks
	// are off.
	tmpfsPerPart uint64
	// hook, if set, runs before each partition is made (tests hold a
	// creation there: SetCreateHook in export_test.go).
	hook func(topic string, partition int)

	made    atomic.Int32  // partitions made so far
	deleted atomic.Bool   // deleteTopic asked for it to be abandoned
	done    chan struct{} // closed, under d.mu, when the placeholder is removed
}

// errDeletedWhileCreating fails a create whose topic was deleted before
// its regions were all made.
func errDeletedWhileCreating(name string) error {
	return wire.Errorf(wire.CodeNotFound, "topic %q was deleted while it was being created; nothing of it is left", name)
}

// beginCreate decides a create of spec. d.mu held. It returns the
// existing topic (open-or-create of an identical one), or a placeholder
// it registered, which the caller must pass to finishCreate, or a channel
// to wait on (the name is being created by another request: look again
// once it is closed), or the error that refuses it.
func (d *Daemon) beginCreate(spec wire.TopicSpec, rc ringbuf.Config, openOK, force bool) (*topic, *creation, <-chan struct{}, error) {
	if t, ok := d.topics[spec.Name]; ok {
		if diff := specDiff(t.spec, spec); diff != "" {
			return nil, nil, nil, wire.Errorf(wire.CodeConflict, "topic %q already exists with other parameters: %s", spec.Name, diff)
		}
		if openOK {
			return t, nil, nil, nil
		}
		return nil, nil, nil, wire.Errorf(wire.CodeConflict, "topic %q already exists (with the same parameters: open it with open-or-create, kaelixctl topics create --if-not-exists)", spec.Name)
	}
	if c := d.creating[spec.Name]; c != nil {
		if diff := specDiff(c.spec, spec); diff != "" {
			return nil, nil, nil, wire.Errorf(wire.CodeConflict, "topic %q is being created with other parameters: %s", spec.Name, diff)
		}
		return nil, nil, c.done, nil
	}
	if d.closing || d.stopping() {
		return nil, nil, nil, errStopping
	}
	c := &creation{spec: spec, rc: rc, startNS: time.Now().UnixNano(), hook: d.createHook, done: make(chan struct{})}
	if !force {
		fp, err := d.checkSize(spec, rc, d.pendingTmpfs())
		if err != nil {
			return nil, nil, nil, err
		}
		c.tmpfsPerPart = fp.Tmpfs / uint64(spec.Partitions)
	}
	if d.creating == nil {
		d.creating = map[string]*creation{}
	}
	d.creating[spec.Name] = c
	return nil, c, nil, nil
}

// finishCreate makes c's regions outside d.mu, then registers the topic,
// or on failure (or when it was deleted or the daemon stops meanwhile)
// removes what it made. Either way it removes the placeholder, also when
// making the regions panics (serve recovers it and drops the client).
func (d *Daemon) finishCreate(c *creation) (*topic, error) {
	t := &topic{spec: c.spec, createdNS: c.startNS}
	made := false
	defer func() {
		if !made { // makeParts panicked
			d.dropParts(t, true) // t is not published: no lock needed
			d.mu.Lock()
			delete(d.creating, c.spec.Name)
			close(c.done)
			d.mu.Unlock()
		}
	}()
	err := d.makeParts(c, t)
	made = true
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.creating, c.spec.Name)
	close(c.done) // its waiters look again once d.mu is free
	if err == nil && c.deleted.Load() {
		err = errDeletedWhileCreating(c.spec.Name)
	}
	if err == nil && d.closing {
		err = errStopping
	}
	if err != nil {
		d.dropParts(t, true)
		return nil, err
	}
	d.topics[c.spec.Name] = t
	d.saveState()
	d.log.Info("topic created", "topic", c.spec.Name, "partitions", c.spec.Partitions, "kind", c.spec.Kind, "policy", c.spec.Policy,
		"capacity_bytes", c.spec.CapacityBytes, "ms", time.Since(time.Unix(0, c.startNS)).Milliseconds())
	return t, nil
}

// pendingTmpfs is what the creations in flight have still to make on the
// tmpfs, in bytes. d.mu held.
func (d *Daemon) pendingTmpfs() uint64 {
	var n uint64
	for _, c := range d.creating {
		if left := c.spec.Partitions - int(c.made.Load()); left > 0 {
			n += uint64(left) * c.tmpfsPerPart
		}
	}
	return n
}

// info describes a topic being created: its spec, no partitions yet.
func (c *creation) info() wire.TopicInfo {
	return wire.TopicInfo{Spec: c.spec, CreatedNS: c.startNS, Creating: true, PartitionsMade: int(c.made.Load()), Partitions: []wire.PartitionInfo{}}
}

// describeTopic is the info of a registered topic or of one being
// created, and whether there is either. d.mu held.
func (d *Daemon) describeTopic(name string) (wire.TopicInfo, bool) {
	if t, ok := d.topics[name]; ok {
		return t.info(), true
	}
	if c, ok := d.creating[name]; ok {
		return c.info(), true
	}
	return wire.TopicInfo{}, false
}

package daemon

import (
	"errors"
	"io/fs"
	"os"
	"slices"

	"github.com/kaelix-io/kaelix/numa"
	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// Creating and deleting topics: their regions, rings and partitions.

// shmConfig is the daemon's shm config with a topic's file mode and group,
// for its consumer regions.
func (d *Daemon) shmConfig(s wire.TopicSpec) shm.Config {
	c := d.shm
	c.Mode = os.FileMode(s.Mode)
	c.GID = s.GID
	return c
}

// dataShmConfig is shmConfig for a topic's data regions: without group and
// other write bits, so that a subscriber of another user cannot reopen its
// read-only descriptor (through /proc/PID/fd) for writing. Nobody needs
// them: publishers get writable descriptors from the daemon.
func (d *Daemon) dataShmConfig(s wire.TopicSpec) shm.Config {
	c := d.shmConfig(s)
	c.Mode &^= 0o022
	return c
}

// regionAllocError is a region allocation failure (shm.Create).
type regionAllocError struct{ err error }

func (e regionAllocError) Error() string { return e.err.Error() }
func (e regionAllocError) Unwrap() error { return e.err }

// createRegion creates one region of a topic (opts.Label is the topic's
// name). It never replaces a file (shm.Create renames into place with
// RENAME_NOREPLACE): a file of that name that is not a Kaelix region
// (its header does not validate: someone else's file, or a corrupt one),
// or that holds another topic (its header's label), is refused with
// conflict and left alone; one that a live process maps is refused with
// in-use. Only a region of this same topic that nothing maps, a leftover
// of a topic no longer registered (its ring is gone), is removed and the
// create retried once. Other failures are a regionAllocError.
func (d *Daemon) createRegion(cfg shm.Config, name string, opts shm.CreateOptions) (*shm.Region, error) {
	r, err := shm.Create(cfg, name, opts)
	if !errors.Is(err, shm.ErrExist) {
		if err != nil {
			return nil, regionAllocError{err}
		}
		return r, nil
	}
	paths := shm.Existing(cfg, name)
	for _, path := range paths {
		h, herr := shm.ReadHeaderFile(path)
		if herr != nil {
			d.log.Error("region file name taken by a file that is not a Kaelix region; create refused, file left alone", "path", path, "topic", opts.Label, "err", herr)
			return nil, wire.Errorf(wire.CodeConflict, "file %s exists and is not a Kaelix region (%v); it is never replaced: move it away, or choose another topic name", path, herr)
		}
		if h.Label != opts.Label {
			d.log.Error("region file name taken by another topic; create refused", "path", path, "holds", h.Label, "topic", opts.Label)
			return nil, wire.Errorf(wire.CodeConflict, "region file %s already holds topic %q; it is never replaced: topic %q not created: delete that topic, or choose another name", path, h.Label, opts.Label)
		}
		if pid := mappedBy(cfg.ProcRoot, path); pid != 0 {
			return nil, wire.Errorf(wire.CodeInUse, "region file %s exists and live process %d maps it; it is never replaced: stop that process or remove the file", path, pid)
		}
	}
	for _, path := range paths {
		d.log.Warn("leftover region file of an unregistered topic removed before create", "path", path, "topic", opts.Label)
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, regionAllocError{err}
		}
	}
	if r, err = shm.Create(cfg, name, opts); err != nil {
		return nil, regionAllocError{err}
	}
	return r, nil
}

// createRegions creates partition i's regions (data, consumer, one per
// subscriber slot) and its ring; it never replaces an existing file
// (createRegion). On error nothing is left behind; an allocation failure
// is a regionAllocError, a refused name a *wire.Error.
func (d *Daemon) createRegions(spec wire.TopicSpec, rc ringbuf.Config, i int, opts shm.CreateOptions) (data, consumer *shm.Region, slots []*shm.Region, ring *ringbuf.Ring, err error) {
	dataBytes, consBytes, err := ringbuf.SizeFor(rc)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var made []*shm.Region
	drop := func() {
		for _, r := range made {
			r.Remove()
			r.Close()
		}
	}
	opts.Label, opts.Instance = spec.Name, d.instance
	opts.SizeBytes = uint64(dataBytes)
	data, err = d.createRegion(d.dataShmConfig(spec), regionName(spec.Name, i, false), opts)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	made = append(made, data)
	// The consumer area and the slots are a few KiB: on tmpfs pages they
	// cost no TLB reach worth a huge page of their own.
	cc := d.shmConfig(spec)
	cc.HugePages = shm.PolicyOff
	opts.SizeBytes = uint64(consBytes)
	consumer, err = d.createRegion(cc, regionName(spec.Name, i, true), opts)
	if err != nil {
		drop()
		return nil, nil, nil, nil, err
	}
	made = append(made, consumer)
	// Slot files get no group or other write bits: a subscriber is handed
	// its own slot's descriptor and must not reach another's by reopening
	// anything (as for data regions).
	sc := d.dataShmConfig(spec)
	sc.HugePages = shm.PolicyOff
	opts.SizeBytes = ringbuf.SlotBytes
	opts.BindNode = false
	mems := make([][]byte, rc.MaxSubscribers+rc.MaxGroups)
	for k := range mems {
		r, err := d.createRegion(sc, slotRegionName(spec.Name, i, k, rc.MaxSubscribers), opts)
		if err != nil {
			drop()
			return nil, nil, nil, nil, err
		}
		made = append(made, r)
		slots = append(slots, r)
		mems[k] = r.Data()
	}
	ring, err = ringbuf.Create(data.Data(), consumer.Data(), mems, rc)
	if err != nil {
		drop()
		return nil, nil, nil, nil, err
	}
	return data, consumer, slots, ring, nil
}

// openSlots opens partition i's slot regions (subscriber then queue-group
// slots), read-write.
func (d *Daemon) openSlots(spec wire.TopicSpec, rc ringbuf.Config, i int) ([]*shm.Region, error) {
	sc := d.shmConfig(spec)
	var slots []*shm.Region
	for k := 0; k < rc.MaxSubscribers+rc.MaxGroups; k++ {
		r, err := shm.Open(sc, slotRegionName(spec.Name, i, k, rc.MaxSubscribers), shm.AttachOptions{Label: spec.Name})
		if err != nil {
			for _, s := range slots {
				s.Close()
			}
			return nil, err
		}
		slots = append(slots, r)
	}
	return slots, nil
}

// createTopic makes a topic's regions and rings (createTopicWith without
// force). Called without d.mu.
func (d *Daemon) createTopic(spec wire.TopicSpec, openOK bool) (t *topic, made bool, err error) {
	return d.createTopicWith(spec, openOK, false)
}

// createTopicWith creates a topic (made), or with openOK opens an existing
// identical one (open-or-create); create refuses any existing topic,
// naming the differing field if any. force skips the size check
// (checkSize). Called without d.mu: the regions are made outside it,
// behind a placeholder (creating.go), so that other requests are served
// meanwhile. A create or open-or-create of a name being created waits for
// that creation's outcome, then looks again.
func (d *Daemon) createTopicWith(spec wire.TopicSpec, openOK, force bool) (t *topic, made bool, err error) {
	spec = spec.Normalize()
	rc, err := d.checkNewSpec(spec)
	if err != nil {
		return nil, false, err
	}
	for {
		d.mu.Lock()
		old, c, wait, err := d.beginCreate(spec, rc, openOK, force)
		d.mu.Unlock()
		switch {
		case err != nil:
			return nil, false, err
		case old != nil:
			return old, false, nil
		case wait != nil:
			<-wait // another request is creating it: look again once it is done
			continue
		}
		t, err := d.finishCreate(c)
		return t, err == nil, err
	}
}

// checkNewSpec is checkSpec, and that a bound NUMA node exists.
func (d *Daemon) checkNewSpec(spec wire.TopicSpec) (ringbuf.Config, error) {
	rc, err := checkSpec(spec)
	if err != nil || !spec.BindNode {
		return rc, err
	}
	// A node this host does not have is a bad parameter, not a failed
	// allocation (which would also degrade health).
	if topo, terr := numa.Load(d.cfg.HostRoot); terr == nil {
		var ids []int
		for _, n := range topo.Nodes {
			ids = append(ids, n.ID)
		}
		if !slices.Contains(ids, spec.Node) {
			return rc, wire.Errorf(wire.CodeInvalidSpec, "topic %q: node = %d: this host's NUMA nodes are %v", spec.Name, spec.Node, ids)
		}
	}
	return rc, nil
}

// makeParts creates c's partitions into t, outside d.mu, stopping early
// when the daemon stops or the topic is deleted meanwhile. On error the
// caller drops what t holds.
func (d *Daemon) makeParts(c *creation, t *topic) error {
	spec := c.spec
	for i := 0; i < spec.Partitions; i++ {
		if c.hook != nil {
			c.hook(spec.Name, i)
		}
		if d.stopping() { // a big topic takes seconds per partition
			return errStopping
		}
		if c.deleted.Load() {
			return errDeletedWhileCreating(spec.Name)
		}
		// Stop: a region of GiBs takes a second or more to reserve and
		// prefault; a stopping daemon ends it between chunks.
		data, consumer, slots, ring, err := d.createRegions(spec, c.rc, i, shm.CreateOptions{BindNode: spec.BindNode, Node: spec.Node,
			Prefault: d.cfg.Shm.Prefault, Mlock: d.cfg.Shm.Mlock, Stop: d.quit})
		if errors.Is(err, shm.ErrStopped) {
			d.log.Info("topic creation stopped: kaelixd is stopping; nothing of the topic left", "topic", spec.Name, "partition", i, "err", err)
			return errStopping
		}
		if err != nil {
			return d.createFailed(spec.Name, i, err)
		}
		p, err := newPartition(spec.Name, i, c.rc, data, consumer, slots, ring)
		if err != nil {
			for _, r := range append([]*shm.Region{data, consumer}, slots...) {
				r.Remove()
				r.Close()
			}
			return wire.Errorf(wire.CodeInternal, "topic %q: partition %d: %v", spec.Name, i, err)
		}
		if i == 0 {
			// The topic's creation time is its first region's, which a
			// registry rebuilt from the headers reads back (rebuild.go).
			t.createdNS = data.Header().CreatedNS
		}
		t.parts = append(t.parts, p)
		c.made.Add(1)
	}
	return nil
}

// createFailed turns a createRegions failure of partition i into the
// request's error, counting refusals and allocation failures.
func (d *Daemon) createFailed(name string, i int, err error) error {
	if we := (*wire.Error)(nil); errors.As(err, &we) {
		return wire.Errorf(we.Code, "topic %q: partition %d: %s", name, i, we.Message)
	}
	code := wire.CodeInternal
	for _, r := range []struct {
		err  error
		name string
	}{{shm.ErrNoSpace, "shm_space"}, {shm.ErrHugePagesUnavailable, "hugepages"}, {shm.ErrMlock, "mlock"}} {
		if errors.Is(err, r.err) {
			code = wire.CodeResource
			d.m.refused.WithLabelValues(r.name).Inc()
		}
	}
	werr := wire.Errorf(code, "topic %q: partition %d: %v", name, i, err)
	if errors.As(err, new(regionAllocError)) {
		d.allocFailed(werr.Message)
	}
	return werr
}

// dropParts unmaps a topic's partitions, removing the region files if remove.
func (d *Daemon) dropParts(t *topic, remove bool) {
	for _, p := range t.parts {
		if remove && !p.closed {
			for _, r := range p.regions() {
				if err := r.Remove(); err != nil {
					d.log.Warn("remove region", "err", err)
				}
			}
		}
		p.close()
	}
}

// deleteTopic removes a topic. Called without d.mu. A topic being
// created is deleted by abandoning its creation: the creator stops after
// the partition it is making, removes every region it made and fails its
// request (errDeletedWhileCreating); deleteTopic returns once it has, so
// that nothing of the topic is left when it returns.
func (d *Daemon) deleteTopic(name string, force bool) error {
	if err := wire.ValidateTopicName(name); err != nil {
		return &wire.Error{Code: wire.CodeInvalidName, Message: err.Error()}
	}
	d.mu.Lock()
	if c := d.creating[name]; c != nil {
		c.deleted.Store(true)
		d.mu.Unlock()
		<-c.done
		d.log.Info("topic deleted while being created; its creation was abandoned", "topic", name, "partitions_made", c.made.Load())
		return nil
	}
	defer d.mu.Unlock()
	return d.deleteLocked(name, force)
}

// deleteLocked removes a registered topic. d.mu held.
func (d *Daemon) deleteLocked(name string, force bool) error {
	t, ok := d.topics[name]
	if !ok {
		return wire.Errorf(wire.CodeNotFound, "topic %q not found", name)
	}
	if (t.pubs > 0 || t.subs > 0) && !force {
		return wire.Errorf(wire.CodeInUse, "topic %q is in use: %d publisher(s) and %d subscriber(s) attached; detach them or delete with force", name, t.pubs, t.subs)
	}
	delete(d.topics, name)
	// Clients that still map the rings (attached, by force, or ones whose
	// connection is gone) learn of it from the ring itself.
	for _, p := range t.parts {
		if !p.closed && p.faulted == nil {
			d.withRing(p, func() { p.ring.MarkDeleted() })
		}
	}
	d.dropParts(t, true)
	d.saveState()
	d.log.Info("topic deleted", "topic", name, "force", force, "publishers", t.pubs, "subscribers", t.subs)
	return nil
}

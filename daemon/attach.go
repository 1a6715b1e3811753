package daemon

import (
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/wire"
)

// Attaching: what a client is handed for each partition of a topic.
// Publishers get the data region read-write and every slot region (they
// read every cursor); subscribers get the data descriptor opened O_RDONLY,
// which cannot be mapped writable, and only the slot region reserved for
// them (and their queue group's), so that they cannot reach another
// consumer's cursor. Both get the consumer region read-write. The
// descriptors are duplicates, which survive a concurrent forced delete
// that closes the regions while the reply is being written.

// attach registers one attach request of p: it checks the request, hands
// out each partition's descriptors (reserving a subscriber's slots) and
// records the attachment. On any error nothing stays reserved. An attach
// of a topic being created waits for the creation's outcome (creating.go).
// d.mu is taken here; attachWaiting (exitwait.go) retries it.
func (d *Daemon) attach(p *peer, a wire.Attach) (any, []*os.File, *wire.Error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for c := d.creating[a.Topic]; c != nil; c = d.creating[a.Topic] {
		d.mu.Unlock()
		<-c.done
		d.mu.Lock()
	}
	t, parts, werr := d.checkAttach(p, a)
	if werr != nil {
		return nil, nil, werr
	}
	start, alive := ringbuf.ProcessStart(p.pid)
	if a.Role == wire.RoleSubscriber && !alive {
		return nil, nil, wire.Errorf(wire.CodeBadRequest, "process %d is gone", p.pid)
	}
	g := &grant{reply: wire.AttachReply{Partitions: parts}}
	for _, i := range parts {
		send, werr := d.grantPartition(p, procID{p.pid, start}, t, t.parts[i], a, g)
		if werr == nil {
			werr = g.dup(send, t.spec.Name, len(parts))
		}
		if werr != nil {
			g.abandon()
			return nil, nil, werr
		}
	}
	at := d.register(p, t, a.Role, parts, g)
	g.reply.AttachmentID, g.reply.Topic = at.id, t.info()
	return g.reply, g.files, nil
}

// checkAttach validates an attach request against the topic and the
// access rules, and returns the topic and the partitions asked for (all
// when none are named). d.mu held.
func (d *Daemon) checkAttach(p *peer, a wire.Attach) (*topic, []int, *wire.Error) {
	if a.Role != wire.RolePublisher && a.Role != wire.RoleSubscriber {
		return nil, nil, wire.Errorf(wire.CodeBadRequest, "role %q: want publisher or subscriber", a.Role)
	}
	t, werr := d.lookup(a.Topic)
	if werr != nil {
		return nil, nil, werr
	}
	if !d.allowed(p, t, a.Role) {
		return nil, nil, wire.Errorf(wire.CodePermission, "uid %d gid %d may not attach to topic %q as %s (security.access, else the topic's mode %#o and gid %d)", p.uid, p.gid, t.spec.Name, a.Role, t.spec.Mode, t.spec.GID)
	}
	parts := a.Partitions
	if len(parts) == 0 {
		parts = make([]int, len(t.parts))
		for i := range parts {
			parts[i] = i
		}
	}
	if len(parts) > wire.MaxPartitions {
		return nil, nil, wire.Errorf(wire.CodeBadRequest, "%d partitions requested; at most %d", len(parts), wire.MaxPartitions)
	}
	for _, i := range parts {
		if i < 0 || i >= len(t.parts) {
			return nil, nil, wire.Errorf(wire.CodeBadRequest, "topic %q has no partition %d (it has %d)", t.spec.Name, i, len(t.parts))
		}
	}
	if grouped(t, a) {
		if a.GroupName != "" && wire.GroupID(a.GroupName) != a.Group {
			return nil, nil, wire.Errorf(wire.CodeBadRequest, "queue group %q has id %d, not %d", a.GroupName, wire.GroupID(a.GroupName), a.Group)
		}
		if !privileged(p) && !groupDecides(d.cur.Load().cfg.Security.Access, p.uid, p.gids, t.spec.Name, a.GroupName) {
			return nil, nil, wire.Errorf(wire.CodePermission, "uid %d may not join queue group %q of topic %q (security.access groups)", p.uid, a.GroupName, t.spec.Name)
		}
	}
	return t, parts, nil
}

// grouped reports whether attach a joins a queue group of t. A group on
// an SPSC topic gets no group slot; the client's join then fails
// (ringbuf.ErrUnsupported) and its detach undoes the reservation.
func grouped(t *topic, a wire.Attach) bool {
	return a.Role == wire.RoleSubscriber && a.Group != 0 && t.spec.Kind == wire.KindMPMC
}

// grant collects what one attach hands out, partition by partition: the
// reply, the duplicated descriptors, the slots reserved for the
// subscriber and how to cancel those reservations.
type grant struct {
	reply wire.AttachReply
	files []*os.File
	undo  []func() // cancels the reservations made so far (only those not joined)
	refs  []slotRef
}

// abandon closes the descriptors and cancels the reservations of an
// attach that failed part way. d.mu held.
func (g *grant) abandon() {
	closeFiles(g.files)
	for _, u := range g.undo {
		u()
	}
}

// dup duplicates one partition's descriptors into the grant, refusing an
// attach of nparts partitions that would need more than one reply can
// carry.
func (g *grant) dup(send []*os.File, topic string, nparts int) *wire.Error {
	g.reply.Descriptors = append(g.reply.Descriptors, len(send))
	if len(g.files)+len(send) > wire.MaxFDs {
		return wire.Errorf(wire.CodeResource, "topic %q: an attach of %d partitions needs more than %d descriptors; attach fewer partitions at once", topic, nparts, wire.MaxFDs)
	}
	for _, f := range send {
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return wire.Errorf(wire.CodeResource, "dup region descriptor: %v", err)
		}
		g.files = append(g.files, os.NewFile(uintptr(fd), f.Name()))
	}
	return nil
}

// grantPartition returns the descriptors part hands to p's attach (the
// package comment above), reserving a subscriber's slot and queue-group
// slot into g. me is p's process identity. d.mu held.
func (d *Daemon) grantPartition(p *peer, me procID, t *topic, part *partition, a wire.Attach, g *grant) ([]*os.File, *wire.Error) {
	if f := part.faulted; f != nil {
		return nil, wire.Errorf(wire.CodeResource, "topic %q partition %d is out of service: its region was damaged by a client (%v); delete and re-create the topic", t.spec.Name, part.index, f)
	}
	send := []*os.File{part.region.File(), part.consumer.File()}
	if a.Role == wire.RolePublisher {
		for _, s := range part.slots {
			send = append(send, s.File())
		}
		return send, nil
	}
	send[0] = part.readOnly
	k, werr := d.reserveSubscriber(p, me, t, part, g)
	if werr != nil {
		return nil, werr
	}
	send = append(send, part.slots[k].File())
	if grouped(t, a) {
		gs, werr := d.reserveGroup(me, t, part, a.Group, g)
		if werr != nil {
			return nil, werr
		}
		send = append(send, part.slots[t.spec.MaxSubscribers+gs].File())
	}
	return send, nil
}

// reserveSubscriber reserves a subscriber slot of part for p (the
// partition's ledger chooses it) and records it in g. d.mu held.
func (d *Daemon) reserveSubscriber(p *peer, me procID, t *topic, part *partition, g *grant) (int, *wire.Error) {
	k, rerr := -1, error(nil)
	if !d.withRing(part, func() { k, rerr = part.leases.reserveSubscriber(part.ring, p, me, d.deathNoter()) }) {
		return -1, wire.Errorf(wire.CodeResource, "topic %q partition %d is out of service", t.spec.Name, part.index)
	}
	if rerr != nil {
		d.withRing(part, func() { p.slotExiting = part.leases.othersExiting(part.ring, me) }) // exitwait.go
		if !p.slotRetry {
			d.m.refused.WithLabelValues("subscriber_slots").Inc()
		}
		return -1, wire.Errorf(wire.CodeNoSlot, "topic %q partition %d: %v (max_subscribers %d)", t.spec.Name, part.index, rerr, t.spec.MaxSubscribers)
	}
	g.undo = append(g.undo, func() { d.withRing(part, func() { part.leases.cancelSubscriber(part.ring, k, me) }) })
	g.reply.Slots = append(g.reply.Slots, k)
	g.refs = append(g.refs, slotRef{part: part, slot: k, group: -1})
	return k, nil
}

// reserveGroup reserves (or joins) queue group id's slot of part for the
// subscriber slot just reserved into g. d.mu held.
func (d *Daemon) reserveGroup(me procID, t *topic, part *partition, id uint32, g *grant) (int, *wire.Error) {
	k := g.refs[len(g.refs)-1].slot
	gs, fresh, rerr := -1, false, error(nil)
	d.withRing(part, func() { gs, fresh, rerr = part.leases.reserveGroup(part.ring, k, id, me, d.deathNoter()) })
	if rerr != nil || gs < 0 {
		d.m.refused.WithLabelValues("group_slots").Inc()
		return -1, wire.Errorf(wire.CodeNoSlot, "topic %q partition %d: %v (max_groups %d)", t.spec.Name, part.index, rerr, t.spec.MaxGroups)
	}
	if fresh {
		g.undo = append(g.undo, func() { d.withRing(part, func() { part.leases.cancelGroup(part.ring, gs) }) })
	}
	g.reply.GroupSlots = append(g.reply.GroupSlots, gs)
	g.refs[len(g.refs)-1].group = gs
	return gs, nil
}

// register records the attachment g granted. d.mu held.
func (d *Daemon) register(p *peer, t *topic, role wire.Role, parts []int, g *grant) *attachment {
	d.nextID++
	at := &attachment{id: d.nextID, topic: t, role: role, undo: g.undo, refs: g.refs, made: time.Now()}
	p.refs = append(p.refs, g.refs...)
	p.attachments[at.id] = at
	for _, i := range parts {
		p.rings[t.parts[i]] = true
	}
	if role == wire.RolePublisher {
		t.pubs++
	} else {
		t.subs++
		t.addSub(at)
	}
	return at
}

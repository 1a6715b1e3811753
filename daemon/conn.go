package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/wire"
)

// peer is one client connection: its lease. Fields other than conn and
// pidfd are set before the peer is published in Daemon.peers and then only
// read, except attachments and exited (guarded by Daemon.mu) and pidfd
// (guarded by watcher.mu).
type peer struct {
	id        uint64
	name      string
	pid       int
	uid, gid  int
	gids      []int // gid and the supplementary groups, at connect
	connected time.Time
	conn      *wire.Conn
	pidfd     int

	attachments map[uint64]*attachment
	// rings keeps the partitions this peer ever attached, so that its death,
	// which the pidfd reports after its socket closed, reaps them.
	rings map[*partition]bool
	// refs are every slot the daemon reserved for this connection; its
	// death frees those it still holds the lease of (ledger.release).
	refs   []slotRef
	exited bool
	// start is the process's start time (ringbuf.ProcessStart), read at
	// connect: with pid, its identity in the rings' slots.
	start uint64
	// undetached says the connection closed while the client still had
	// attachments it never detached (a clean Close detaches each first).
	// Guarded by Daemon.mu.
	undetached bool
	// slotExiting: the last attach was refused a subscriber slot that an
	// exiting process holds; slotRetry: this attach is such a request
	// tried again, already counted as refused (exitwait.go). The serving
	// goroutine's alone.
	slotExiting, slotRetry bool
	// stoppedSince is when the sweep first saw the process stopped
	// (evict.go); zero while it runs. Guarded by Daemon.mu.
	stoppedSince time.Time
}

// attachment is one attach a client holds.
type attachment struct {
	id    uint64
	topic *topic
	role  wire.Role
	// undo cancels what attach reserved in the rings for this attachment
	// (subscriber slots, queue groups it made) and the subscriber has not
	// joined: run on detach and when the connection drops, it frees the
	// slots of a Subscribe that failed half-way.
	undo []func()
	// made is when attach reserved them; the sweep cancels what is still
	// not joined after unjoinedAfter (a client joins within milliseconds).
	made time.Time
	// refs are the slots attach reserved for this subscriber: the
	// daemon's own record of who owns which slot and which queue group it
	// joined. Eviction goes by it, never by what the owner wrote in its
	// slot (pid, group), which proves nothing.
	refs []slotRef
}

// unjoinedAfter is how long a reservation may stay unjoined before the
// sweep cancels it.
const unjoinedAfter = 10 * time.Second

// expireReservations cancels what attaches reserved and their
// subscribers did not join within unjoinedAfter. d.mu held.
func (d *Daemon) expireReservations(now time.Time) {
	for _, p := range d.peers {
		for _, a := range p.attachments {
			if a.undo == nil || now.Sub(a.made) < unjoinedAfter {
				continue
			}
			for _, u := range a.undo {
				u()
			}
			a.undo = nil
		}
	}
}

// slotRef is one subscriber slot the daemon reserved, in part, with the
// queue-group slot it handed along (-1: none).
type slotRef struct {
	part  *partition
	slot  int
	group int
}

// serve runs one client connection until it closes, breaks the protocol,
// or its process dies. It never lets a panic escape: a panic while handling
// a client's input is logged with its stack and only that client is
// dropped.
func (d *Daemon) serve(uc *net.UnixConn) {
	c := wire.NewConn(uc)
	c.RefuseDescriptors() // requests carry none: a client cannot pin descriptors here
	p := &peer{conn: c, pidfd: -1, connected: time.Now(), attachments: map[uint64]*attachment{}, rings: map[*partition]bool{}}
	if ucred, err := peerCred(uc); err == nil {
		p.pid, p.uid, p.gid = int(ucred.Pid), int(ucred.Uid), int(ucred.Gid)
	} else {
		d.log.Warn("SO_PEERCRED failed; dropping client", "err", err)
		c.Close()
		return
	}
	p.gids = peerGroups(d.shm.ProcRoot, p.pid, p.gid)
	p.start, _ = ringbuf.ProcessStart(p.pid)
	d.mu.Lock()
	if d.closing {
		d.mu.Unlock()
		c.Close()
		return
	}
	if max := d.cur.Load().cfg.Daemon.MaxClients; max > 0 && len(d.peers) >= max {
		d.mu.Unlock()
		d.log.Warn("client refused: daemon.max_clients reached", "max_clients", max, "pid", p.pid)
		d.m.refused.WithLabelValues("clients").Inc()
		// Read the client's hello first (briefly), so that it is not told
		// "broken pipe" while writing it but reads this reply.
		uc.SetReadDeadline(time.Now().Add(time.Second))
		var id uint32
		if f, files, err := c.ReadFrame(); err == nil {
			id = f.RequestID
			for _, f := range files {
				f.Close()
			}
		}
		d.reply(c, id, wire.CodeResource, "kaelixd serves at most "+itoa(max)+" clients (daemon.max_clients)")
		c.Close()
		return
	}
	d.nextID++
	p.id = d.nextID
	d.peers[p.id] = p
	d.mu.Unlock()
	if p.pid != os.Getpid() {
		if err := d.w.add(p); err != nil {
			d.log.Warn("cannot watch client pid; its death will be noticed by the periodic sweep", "client", p.id, "pid", p.pid, "err", err)
		}
	}
	log := d.log.With("client", p.id, "pid", p.pid, "uid", p.uid)
	defer func() {
		if r := recover(); r != nil {
			log.Error("panic while serving client; client dropped", "panic", r, "stack", string(debug.Stack()))
			d.m.dropped.WithLabelValues("panic").Inc()
		}
		c.Close()
		d.dropPeer(p)
	}()
	hello := false
	uc.SetReadDeadline(time.Now().Add(d.cfg.HelloTimeout)) // cleared by hello
	for {
		f, files, err := c.ReadFrame()
		for _, f := range files {
			f.Close()
		}
		if err == nil && (len(files) > 0 || c.PendingFDs() > 0) {
			err = fmt.Errorf("%w: requests carry no descriptors", wire.ErrDescriptors)
		}
		if err != nil {
			var fe *wire.FrameError
			switch {
			case errors.As(err, &fe):
				log.Warn("bad frame; client dropped", "err", err)
				d.m.dropped.WithLabelValues("bad_frame").Inc()
				d.reply(c, f.RequestID, fe.Code(), err.Error())
			case errors.Is(err, wire.ErrDescriptors):
				log.Warn("protocol violation; client dropped", "err", err)
				d.m.dropped.WithLabelValues("descriptors").Inc()
				d.reply(c, f.RequestID, wire.CodeBadRequest, err.Error())
			case !hello && errors.Is(err, os.ErrDeadlineExceeded):
				log.Debug("no hello within the hello timeout; connection closed", "hello_timeout", d.cfg.HelloTimeout)
			}
			return
		}
		if !hello && f.Type != wire.TypeHello {
			d.reply(c, f.RequestID, wire.CodeBadRequest, fmt.Sprintf("first request must be hello, got %s", f.Type))
			continue
		}
		began := time.Now()
		out, outFiles, werr := d.handle(p, f)
		result := "ok"
		if werr != nil {
			result = string(werr.Code)
		}
		// -v (telemetry.logging.level = debug): every control request, its
		// outcome and how long it took; a failure's message as the client
		// gets it.
		if log.Enabled(context.Background(), slog.LevelDebug) {
			if werr != nil {
				log.Debug("control request failed", "type", f.Type.String(), "request_id", f.RequestID, "code", result, "err", werr.Message, "us", time.Since(began).Microseconds())
			} else {
				log.Debug("control request", "type", f.Type.String(), "request_id", f.RequestID, "descriptors", len(outFiles), "us", time.Since(began).Microseconds())
			}
		}
		d.m.requests.WithLabelValues(f.Type.String(), result).Inc()
		d.errRate.request(werr != nil)
		if f.Type == wire.TypeHello && werr == nil {
			hello = true
			log = log.With("name", p.name)
			uc.SetReadDeadline(time.Time{})
		}
		var frame wire.Frame
		if werr != nil {
			frame, _ = wire.NewFrame(wire.TypeError, f.RequestID, werr)
		} else if frame, err = wire.NewFrame(f.Type.Reply(), f.RequestID, out); err != nil {
			frame, _ = wire.NewFrame(wire.TypeError, f.RequestID, wire.Errorf(wire.CodeInternal, "%v", err))
			outFiles = closeFiles(outFiles)
		}
		err = c.WriteFrame(frame, outFiles...)
		closeFiles(outFiles)
		if err != nil {
			log.Info("client gone while replying", "err", err)
			return
		}
	}
}

func closeFiles(fs []*os.File) []*os.File {
	for _, f := range fs {
		f.Close()
	}
	return nil
}

func (d *Daemon) reply(c *wire.Conn, id uint32, code wire.Code, msg string) {
	f, _ := wire.NewFrame(wire.TypeError, id, wire.Error{Code: code, Message: msg})
	c.UnixConn().SetWriteDeadline(time.Now().Add(time.Second))
	c.WriteFrame(f)
}

func peerCred(uc *net.UnixConn) (*unix.Ucred, error) {
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var serr error
	err = raw.Control(func(fd uintptr) { cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if err == nil {
		err = serr
	}
	return cred, err
}

// handle executes one request. It returns the reply body and descriptors,
// or an *wire.Error.
func (d *Daemon) handle(p *peer, f wire.Frame) (any, []*os.File, *wire.Error) {
	bad := func(err error) *wire.Error { return &wire.Error{Code: wire.CodeBadRequest, Message: err.Error()} }
	asWire := func(err error) *wire.Error {
		var we *wire.Error
		if errors.As(err, &we) {
			return we
		}
		return &wire.Error{Code: wire.CodeInternal, Message: err.Error()}
	}
	switch f.Type {
	case wire.TypeHello:
		var h wire.Hello
		if err := wire.DecodeBody(f, &h); err != nil {
			return nil, nil, bad(err)
		}
		if h.Version != wire.Version {
			return nil, nil, wire.Errorf(wire.CodeVersion, "client speaks protocol version %d, kaelixd speaks %d", h.Version, wire.Version)
		}
		p.name = h.Name
		if len(p.name) > 128 {
			p.name = p.name[:128]
		}
		ids, stale := d.resume(p, h.Attached)
		rt := d.cur.Load().cfg.Runtime
		return wire.HelloReply{Version: wire.Version, DaemonPID: os.Getpid(), ClientID: p.id, PeerPID: p.pid, PeerUID: p.uid, PeerGID: p.gid, AttachmentIDs: ids,
			WaitStrategy: rt.WaitStrategy, SpinBudgetUS: rt.TargetLatencyUS, Stale: stale, Instance: d.instance}, nil, nil
	case wire.TypeCreate, wire.TypeOpenOrCreate:
		var s wire.Create
		if err := wire.DecodeBody(f, &s); err != nil {
			return nil, nil, bad(err)
		}
		if werr := d.mayAdmin(p, s.Name); werr != nil {
			return nil, nil, werr
		}
		t, _, err := d.createTopicWith(s.TopicSpec, f.Type == wire.TypeOpenOrCreate, s.Force)
		if err != nil {
			return nil, nil, asWire(err)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		return t.info(), nil, nil
	case wire.TypeDelete:
		var del wire.Delete
		if err := wire.DecodeBody(f, &del); err != nil {
			return nil, nil, bad(err)
		}
		if werr := d.mayAdmin(p, del.Name); werr != nil {
			return nil, nil, werr
		}
		if err := d.deleteTopic(del.Name, del.Force); err != nil {
			return nil, nil, asWire(err)
		}
		return wire.Empty{}, nil, nil
	case wire.TypeList:
		var pg wire.Page
		if err := decodePage(f, &pg); err != nil {
			return nil, nil, bad(err)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		ts, next := d.topicPage(pg, 0)
		return wire.TopicList{Topics: ts, Next: next}, nil, nil
	case wire.TypeInfo:
		var ref wire.TopicRef
		if err := wire.DecodeBody(f, &ref); err != nil {
			return nil, nil, bad(err)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if c := d.creating[ref.Name]; c != nil {
			return c.info(), nil, nil
		}
		t, err := d.lookup(ref.Name)
		if err != nil {
			return nil, nil, err
		}
		return t.info(), nil, nil
	case wire.TypeAttach:
		var a wire.Attach
		if err := wire.DecodeBody(f, &a); err != nil {
			return nil, nil, bad(err)
		}
		return d.attachWaiting(p, a) // exitwait.go
	case wire.TypeDetach:
		var det wire.Detach
		if err := wire.DecodeBody(f, &det); err != nil {
			return nil, nil, bad(err)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		a, ok := p.attachments[det.AttachmentID]
		if !ok {
			return nil, nil, wire.Errorf(wire.CodeNotFound, "attachment %d not found", det.AttachmentID)
		}
		d.detachLocked(p, a)
		return wire.Empty{}, nil, nil
	case wire.TypeStats:
		var pg wire.Page
		if err := decodePage(f, &pg); err != nil {
			return nil, nil, bad(err)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		st := wire.Stats{Clients: []wire.ClientInfo{}}
		if pg.After == "" {
			for _, q := range d.peers {
				st.Clients = append(st.Clients, wire.ClientInfo{ID: q.id, Name: q.name, PID: q.pid, UID: q.uid, GID: q.gid, ConnectedNS: q.connected.UnixNano(), Attachments: len(q.attachments)})
			}
			slices.SortFunc(st.Clients, func(a, b wire.ClientInfo) int { return int(a.ID) - int(b.ID) })
		}
		used := 0
		if b, err := json.Marshal(st.Clients); err == nil {
			used = len(b)
		}
		st.Topics, st.Next = d.topicPage(pg, used)
		return st, nil, nil
	case wire.TypeStatus:
		return d.Status(), nil, nil
	case wire.TypeConfigShow:
		return d.ConfigView(), nil, nil
	case wire.TypeConfigReload:
		if !privileged(p) {
			return nil, nil, wire.Errorf(wire.CodePermission, "uid %d may not reload kaelixd's configuration (root or the daemon's user only)", p.uid)
		}
		changes, err := d.reload("request", false)
		if err != nil {
			return nil, nil, &wire.Error{Code: wire.CodeConfig, Message: err.Error()}
		}
		r := wire.ConfigReload{AtNS: time.Now().UnixNano(), Changes: []wire.ConfigChange{}}
		for _, c := range changes {
			r.Changes = append(r.Changes, wire.ConfigChange{Key: c.Key, Old: c.Old, New: c.New})
		}
		return r, nil, nil
	case wire.TypeHealth:
		return d.Health(), nil, nil
	case wire.TypeProcessors, wire.TypeProcessorRestart:
		r, err := d.handleProcessors(p, f) // processors.go
		return r, nil, err
	}
	return nil, nil, wire.Errorf(wire.CodeBadRequest, "unknown request type %d", uint8(f.Type))
}

// topicPage describes one page of topics (wire.Page): those named after
// pg.After in name order, at most pg.Limit (bounded by
// wire.MaxPageTopics), ending once the encoded infos plus used bytes
// reach wire.PageBudgetBytes; next is the last one's name if more follow,
// else "". At least one topic is listed when any follows pg.After. Topics
// being created are listed too (TopicInfo.Creating). d.mu held.
func (d *Daemon) topicPage(pg wire.Page, used int) (out []wire.TopicInfo, next string) {
	limit := pg.Limit
	if limit <= 0 || limit > wire.MaxPageTopics {
		limit = wire.MaxPageTopics
	}
	names := make([]string, 0, len(d.topics)+len(d.creating))
	for name := range d.topics {
		if name > pg.After {
			names = append(names, name)
		}
	}
	for name := range d.creating {
		if name > pg.After {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	out = []wire.TopicInfo{}
	for i, name := range names {
		if len(out) == limit || len(out) > 0 && used >= wire.PageBudgetBytes {
			return out, names[i-1]
		}
		ti, _ := d.describeTopic(name)
		if b, err := json.Marshal(ti); err == nil {
			used += len(b) + 1
		}
		out = append(out, ti)
	}
	return out, ""
}

// decodePage reads a list or stats request's body: a wire.Page, or
// nothing (the first page).
func decodePage(f wire.Frame, pg *wire.Page) error {
	if len(f.Body) == 0 {
		return nil
	}
	return wire.DecodeBody(f, pg)
}

// lookup finds a registered topic by a validated name (not one still
// being created). d.mu held.
func (d *Daemon) lookup(name string) (*topic, *wire.Error) {
	if err := wire.ValidateTopicName(name); err != nil {
		return nil, &wire.Error{Code: wire.CodeInvalidName, Message: err.Error()}
	}
	t, ok := d.topics[name]
	if !ok {
		return nil, wire.Errorf(wire.CodeNotFound, "topic %q not found", name)
	}
	return t, nil
}

// mayAdmin applies the access rules to a create or delete of topic name.
func (d *Daemon) mayAdmin(p *peer, name string) *wire.Error {
	if privileged(p) {
		return nil
	}
	if matched, ok := ruleDecides(d.cur.Load().cfg.Security.Access, p.uid, p.gids, name, actAdmin); matched && !ok {
		return wire.Errorf(wire.CodePermission, "uid %d gids %v may not administer topic %q (security.access)", p.uid, p.gids, name)
	}
	return nil
}

// allowed decides an attach: the first access rule matching the topic if
// any (security.access), else the topic's mode and group, like file
// permissions with the daemon's user as owner: publishers need the write
// bit, subscribers the read bit. Root and the daemon's own user pass.
func (d *Daemon) allowed(p *peer, t *topic, role wire.Role) bool {
	if privileged(p) {
		return true
	}
	act := actSubscribe
	if role == wire.RolePublisher {
		act = actPublish
	}
	if matched, ok := ruleDecides(d.cur.Load().cfg.Security.Access, p.uid, p.gids, t.spec.Name, act); matched {
		return ok
	}
	bit := uint32(0o4)
	if role == wire.RolePublisher {
		bit = 0o2
	}
	mode := t.spec.Mode
	if t.spec.GID >= 0 && p.gid == t.spec.GID {
		return mode&(bit<<3) != 0
	}
	return mode&bit != 0
}

// resume registers attachments a reconnecting client already holds and
// returns their new ids (0 for one whose topic is gone) and the entries
// whose rings are not this daemon's (staleResume).
func (d *Daemon) resume(p *peer, rs []wire.Resume) ([]uint64, []wire.Stale) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := make([]uint64, len(rs))
	if len(rs) > 4096 || len(p.attachments) > 0 {
		return ids, nil // a client resumes once, on a fresh connection, and not unboundedly
	}
	var stale []wire.Stale
	start, _ := ringbuf.ProcessStart(p.pid)
	for j, r := range rs {
		t, ok := d.topics[r.Topic]
		if why := staleResume(t, r); why != "" {
			stale = append(stale, wire.Stale{Index: j, Reason: why})
			d.log.Warn("client holds rings this daemon does not know; told to drop them", "client", p.id, "pid", p.pid, "topic", r.Topic, "role", r.Role, "reason", why)
			continue
		}
		if !ok || (r.Role != wire.RolePublisher && r.Role != wire.RoleSubscriber) || !d.allowed(p, t, r.Role) {
			continue
		}
		d.nextID++
		ids[j] = d.nextID
		at := &attachment{id: d.nextID, topic: t, role: r.Role}
		p.attachments[d.nextID] = at
		for k, i := range r.Partitions {
			if i < 0 || i >= len(t.parts) {
				continue
			}
			part := t.parts[i]
			p.rings[part] = true
			// The slots it says it holds become its again in the daemon's
			// record only if each also names this process: neither the
			// client's word nor the slot's alone.
			if r.Role != wire.RoleSubscriber || k >= len(r.Slots) {
				continue
			}
			ref := slotRef{part: part, slot: r.Slots[k], group: -1}
			if k < len(r.GroupSlots) {
				ref.group = r.GroupSlots[k]
			}
			if ls, held := part.leases.leaseOf(ref.slot); held && ls.p != nil && ls.p != p && !ls.p.exited {
				continue
			}
			named := false
			d.withRing(part, func() {
				for _, sl := range part.ring.SubscriberSlots() {
					named = named || sl.Index == ref.slot && int(sl.PID) == p.pid && sl.Start == start
				}
			})
			if !named {
				continue
			}
			if !part.leases.adopt(ref.slot, p, ref.group) {
				continue
			}
			at.refs = append(at.refs, ref)
			p.refs = append(p.refs, ref)
		}
		if r.Role == wire.RolePublisher {
			t.pubs++
		} else {
			t.subs++
			t.addSub(at)
		}
	}
	return ids, stale
}

// detachLocked drops one attachment's registration. d.mu held.
func (d *Daemon) detachLocked(p *peer, a *attachment) {
	delete(p.attachments, a.id)
	for _, u := range a.undo {
		u()
	}
	if a.role == wire.RolePublisher {
		a.topic.pubs--
	} else {
		a.topic.subs--
		delete(a.topic.subAts, a)
	}
}

// addSub records a subscriber attachment of t. d.mu held.
func (t *topic) addSub(a *attachment) {
	if t.subAts == nil {
		t.subAts = map[*attachment]bool{}
	}
	t.subAts[a] = true
}

// dropPeer forgets a closed connection's registrations. Its process may
// still be exiting (the kernel closes a dying process's sockets before its
// pidfd reports the exit), so the pidfd stays watched for lingerAfterClose
// and peerExited reaps its rings then.
func (d *Daemon) dropPeer(p *peer) {
	d.mu.Lock()
	p.undetached = p.undetached || len(p.attachments) > 0
	for _, a := range p.attachments {
		d.detachLocked(p, a)
	}
	delete(d.peers, p.id)
	d.mu.Unlock()
	time.AfterFunc(lingerAfterClose, func() {
		d.w.remove(p)
	})
}

// lingerAfterClose is how long a closed connection's pid stays watched.
const lingerAfterClose = 2 * time.Second

// peerExited runs on the watcher goroutine when a client's pidfd becomes
// readable: the process has exited. It reaps every ring the client had
// attached, so that a block-mode publisher is no longer held back by it and
// claims it left half-written are resolved, and closes its connection.
func (d *Daemon) peerExited(p *peer, at time.Time) {
	waitProcGone(p.pid, 50*time.Millisecond)
	if start, ok := ringbuf.ProcessStart(p.pid); ok && p.start != 0 && start == p.start {
		// The pidfd fires once the process has exited, so /proc shows it
		// a zombie or gone by now. One that still runs was reported by
		// mistake (a stale event once did, watcher): freeing by the
		// record would take slots it uses. The sweep reaps it once it is
		// really gone (reapRing judges each owner from /proc).
		d.log.Error("client reported exited but its process still runs; not reaped", "client", p.id, "pid", p.pid, "name", p.name)
		return
	}
	d.mu.Lock()
	freed := 0
	counted := false
	if !p.exited {
		p.exited = true
		me := ringbuf.Owner{PID: uint32(p.pid), Start: p.start}
		// First the slots reserved for it that it still owns, by the
		// daemon's record: what it wrote in them (a live pid, another
		// group's index) must not keep them or free someone else's group.
		for _, r := range p.refs {
			if r.part.closed {
				continue
			}
			d.withRing(r.part, func() {
				if r.part.leases.release(r.part.ring, r.slot, p) {
					freed++
					counted = d.noteDeath(me, at) || counted
				}
			})
		}
		// ReapDead frees every dead process's slots on these rings, and
		// counts each of them (deaths.go), this one included.
		for part := range p.rings {
			freed += d.reapRing(part)
		}
		// Its slots may all have been freed already: by another dead
		// client's reaping (counted then) or by a client (not seen). It
		// died holding them if it never detached.
		held := p.undetached || len(p.attachments) > 0
		counted = d.deathCounted(me) || held && d.noteDeath(me, at) || counted
	}
	d.mu.Unlock()
	p.conn.UnixConn().Close() // the serving goroutine then ends and drops the peer
	done := time.Now()
	if counted { // a client that closed its handles before exiting held nothing: not a death
		d.lastDet.Store(int64(done.Sub(at)))
	}
	// A clean exit (handles closed first, as every kaelixctl call does) is
	// routine: debug. A process that died holding ring slots (SIGKILL, a
	// crash) is an event an operator may want to see.
	if counted {
		d.log.Warn("client process died holding ring slots; slots reaped", "client", p.id, "pid", p.pid, "name", p.name, "slots_freed", freed, "reap_us", done.Sub(at).Microseconds())
	} else {
		d.log.Debug("client process exited", "client", p.id, "pid", p.pid, "name", p.name, "slots_freed", freed, "reap_us", done.Sub(at).Microseconds())
	}
	pe := PeerExit{ClientID: p.id, Name: p.name, PID: p.pid, ExitedAt: at, ReapedAt: done, SlotsFreed: freed, Died: counted}
	if counted { // a client that exits after a clean close holds nothing: not a health event
		d.lastDeath.Store(&pe)
		d.deathNS.Store(done.UnixNano())
	}
	if d.cfg.OnPeerExit != nil {
		d.cfg.OnPeerExit(pe)
	}
}

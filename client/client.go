package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kaelix-io/kaelix/wire"
)

// ValidateTopicName checks a topic name exactly as the daemon does: 1-249
// bytes of ASCII letters, digits, '-', '_' and '.', with no empty segment.
// The error (a *wire.TopicNameError) reads "Topic name contains invalid
// characters: ..." with the name and byte position, or a length error.
func ValidateTopicName(name string) error { return wire.ValidateTopicName(name) }

// DefaultSocketPath is the socket used when Options.SocketPath is empty.
func DefaultSocketPath() string { return wire.DefaultSocketPath() }

// Options configures Connect. The zero value is valid.
type Options struct {
	// SocketPath is kaelixd's control socket; "" means DefaultSocketPath().
	SocketPath string
	// Name identifies this client in the daemon's logs and stats; default
	// the program name.
	Name string
	// ReconnectMin and ReconnectMax bound the exponential backoff (with
	// jitter) between reconnect attempts after the daemon went away.
	// Defaults 20ms and 2s.
	ReconnectMin, ReconnectMax time.Duration
	// Logger receives reconnect notices. Nil means slog.Default().
	Logger *slog.Logger
}

// Client is a connection to kaelixd: it creates and inspects topics and
// attaches Publishers and Subscribers. The connection is the process's
// lease: the daemon watches this process while it is open.
//
// When the daemon goes away the Client reconnects in the background with
// backoff; Publishers and Subscribers keep working meanwhile (they use
// their mappings, never the daemon), and control requests fail with
// ErrBrokerNotRunning until the connection is back.
//
// A Client is safe for concurrent use by many goroutines. Do not copy it.
type Client struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex            // guards the fields below
	conn    *wire.Conn            // nil while disconnected
	downErr error                 // why conn is nil
	nextReq uint32                // request ids
	pending map[uint32]chan reply // requests awaiting their reply
	handles map[closer]wire.Resume
	closed  bool

	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	waitDefault atomic.Int32 // the daemon's default WaitStrategy, from the last hello
}

// defaultWait is the daemon's default wait strategy as of the last hello.
func (c *Client) defaultWait() WaitStrategy {
	if w := WaitStrategy(c.waitDefault.Load()); w != WaitDefault {
		return w
	}
	return WaitBackoff
}

// closer is a Publisher or Subscriber as the Client tracks it.
type closer interface {
	Close() error
	setAttachmentID(id uint64)
	watch() *ringWatch
}

type reply struct {
	f     wire.Frame // Body copied
	files []*os.File
	err   error
}

// Connect dials the daemon and says hello. With nothing listening it returns
// a *BrokerNotRunningError ("Broker is not running: <socket path>: cause");
// denied the socket (EACCES), a *SocketPermissionError (ErrPermission).
// ctx bounds the dial and the hello.
func Connect(ctx context.Context, opts Options) (*Client, error) {
	if opts.SocketPath == "" {
		opts.SocketPath = DefaultSocketPath()
	}
	if opts.Name == "" {
		opts.Name = filepath.Base(os.Args[0])
	}
	if opts.ReconnectMin <= 0 {
		opts.ReconnectMin = 20 * time.Millisecond
	}
	if opts.ReconnectMax < opts.ReconnectMin {
		opts.ReconnectMax = max(2*time.Second, opts.ReconnectMin)
	}
	c := &Client{opts: opts, log: opts.Logger, pending: map[uint32]chan reply{}, handles: map[closer]wire.Resume{}, done: make(chan struct{})}
	if c.log == nil {
		c.log = slog.Default()
	}
	conn, _, err := c.dial(ctx, nil)
	if err != nil {
		return nil, err
	}
	c.conn = conn
	c.wg.Add(1)
	go c.readLoop(conn)
	return c, nil
}

// SocketPath returns the socket the Client connects to.
func (c *Client) SocketPath() string { return c.opts.SocketPath }

// dial connects and exchanges hello synchronously.
func (c *Client) dial(ctx context.Context, resume []wire.Resume) (*wire.Conn, wire.HelloReply, error) {
	var hr wire.HelloReply
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", c.opts.SocketPath)
	if errors.Is(err, os.ErrPermission) { // the socket's mode and group, or a directory's: a daemon may well run
		return nil, hr, &SocketPermissionError{SocketPath: c.opts.SocketPath, Err: err}
	}
	if err != nil {
		return nil, hr, &BrokerNotRunningError{SocketPath: c.opts.SocketPath, Err: err}
	}
	conn := wire.NewConn(nc.(*net.UnixConn))
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	} else {
		nc.SetDeadline(time.Now().Add(10 * time.Second))
	}
	f, _ := wire.NewFrame(wire.TypeHello, 0, wire.Hello{Version: wire.Version, Name: c.opts.Name, Attached: resume})
	sent := time.Now()
	if err := conn.WriteFrame(f); err != nil {
		conn.Close()
		return nil, hr, &BrokerNotRunningError{SocketPath: c.opts.SocketPath, Err: err}
	}
	rf, files, err := conn.ReadFrame()
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		conn.Close()
		// A daemon killed between accept and hello resets the connection:
		// that is a daemon going away, not a protocol error.
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
			return nil, hr, &BrokerNotRunningError{SocketPath: c.opts.SocketPath, Err: err}
		}
		if errors.Is(err, os.ErrDeadlineExceeded) { // accepted, but nobody answers: stopped or hung
			return nil, hr, fmt.Errorf("%w: %s accepted the connection but sent no reply to hello in %v", ErrBrokerNotAnswering, c.opts.SocketPath, time.Since(sent).Round(time.Millisecond))
		}
		return nil, hr, fmt.Errorf("%w: hello: %w", ErrProtocol, err)
	}
	if we := wire.ReplyError(rf); we != nil {
		conn.Close()
		return nil, hr, &BrokerError{Op: "hello", Code: we.Code, Message: we.Message}
	}
	if rf.Type != wire.TypeHello.Reply() || wire.DecodeBody(rf, &hr) != nil {
		conn.Close()
		return nil, hr, fmt.Errorf("%w: unexpected hello reply %s", ErrProtocol, rf.Type)
	}
	nc.SetDeadline(time.Time{})
	c.waitDefault.Store(int32(parseWait(hr.WaitStrategy)))
	return conn, hr, nil
}

// readLoop dispatches replies until the connection fails, then starts the
// reconnect loop.
func (c *Client) readLoop(conn *wire.Conn) {
	defer c.wg.Done()
	for {
		f, files, err := conn.ReadFrame()
		var dropped *wire.DescriptorsDroppedError
		if errors.As(err, &dropped) {
			// The reply came without its region descriptors (this process
			// is out of them): its request fails, saying so, and what the
			// daemon attached for it is detached. The connection is fine.
			c.mu.Lock()
			ch := c.pending[f.RequestID]
			delete(c.pending, f.RequestID)
			c.mu.Unlock()
			c.abandoned(f)
			if ch != nil {
				ch <- reply{err: fmt.Errorf("kaelix: %w", err)}
			}
			continue
		}
		if err != nil {
			c.connLost(conn, err)
			return
		}
		f.Body = append([]byte(nil), f.Body...)
		c.mu.Lock()
		ch := c.pending[f.RequestID]
		delete(c.pending, f.RequestID)
		c.mu.Unlock()
		if ch == nil {
			closeFiles(files) // the requester gave up
			c.abandoned(f)
			continue
		}
		ch <- reply{f: f, files: files}
	}
}

// abandoned undoes a reply whose requester gave up: an attachment the
// daemon made (and the ring slots it reserved for it) is detached, in the
// background (readLoop must not wait for the detach's reply).
func (c *Client) abandoned(f wire.Frame) {
	if f.Type != wire.TypeAttach.Reply() {
		return
	}
	var ar wire.AttachReply
	if wire.DecodeBody(f, &ar) == nil && ar.AttachmentID != 0 {
		go c.release(nil, ar.AttachmentID)
	}
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

func (c *Client) connLost(conn *wire.Conn, err error) {
	conn.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != conn {
		return
	}
	c.conn = nil
	c.downErr = fmt.Errorf("connection lost (reconnecting): %w", err)
	for id, ch := range c.pending {
		ch <- reply{err: &BrokerNotRunningError{SocketPath: c.opts.SocketPath, Err: c.downErr}}
		delete(c.pending, id)
	}
	if c.closed {
		return
	}
	now := time.Now()
	for h := range c.handles {
		h.watch().lost(now)
	}
	c.log.Warn("kaelix: lost the broker connection; reconnecting", "socket", c.opts.SocketPath, "err", err)
	c.wg.Add(1)
	go c.reconnect()
}

// reconnect dials with exponential backoff and jitter until it succeeds or
// the Client is closed, re-registering the handles still open.
func (c *Client) reconnect() {
	defer c.wg.Done()
	delay := c.opts.ReconnectMin
	for {
		select {
		case <-c.done:
			return
		case <-time.After(delay/2 + rand.N(delay/2+1)):
		}
		c.mu.Lock()
		resume := make([]wire.Resume, 0, len(c.handles))
		hs := make([]closer, 0, len(c.handles))
		for h, r := range c.handles {
			resume = append(resume, r)
			hs = append(hs, h)
		}
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, hr, err := c.dial(ctx, resume)
		cancel()
		if err == nil {
			ids := hr.AttachmentIDs
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				conn.Close()
				return
			}
			for i, h := range hs {
				if i < len(ids) {
					h.setAttachmentID(ids[i])
				}
			}
			c.retire(hs, hr.Stale)
			c.conn, c.downErr = conn, nil
			c.wg.Add(1)
			go c.readLoop(conn)
			c.mu.Unlock()
			c.log.Info("kaelix: reconnected to the broker", "socket", c.opts.SocketPath, "handles", len(resume))
			return
		}
		delay = min(delay*2, c.opts.ReconnectMax)
	}
}

// Connected reports whether the control connection is currently up.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil
}

// request sends one request and waits for its reply, decoding the body into
// out. The returned files are the caller's.
func (c *Client) request(ctx context.Context, t wire.Type, body, out any) ([]*os.File, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	conn := c.conn
	if conn == nil {
		err := &BrokerNotRunningError{SocketPath: c.opts.SocketPath, Err: c.downErr}
		c.mu.Unlock()
		return nil, err
	}
	c.nextReq++
	id := c.nextReq
	ch := make(chan reply, 1)
	c.pending[id] = ch
	c.mu.Unlock()

	f, err := wire.NewFrame(t, id, body)
	if err == nil {
		err = conn.WriteFrame(f)
	}
	if err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, fmt.Errorf("kaelix: %s: %w", t, err)
	}
	var r reply
	select {
	case r = <-ch:
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		select { // the reply may have raced in
		case r = <-ch:
			closeFiles(r.files)
			c.abandoned(r.f)
		default:
		}
		return nil, fmt.Errorf("kaelix: %s: %w", t, ctx.Err())
	}
	if r.err != nil {
		return nil, r.err
	}
	if we := wire.ReplyError(r.f); we != nil {
		closeFiles(r.files)
		return nil, &BrokerError{Op: t.String(), Code: we.Code, Message: we.Message}
	}
	if r.f.Type != t.Reply() {
		closeFiles(r.files)
		return nil, fmt.Errorf("%w: %s answered with %s", ErrProtocol, t, r.f.Type)
	}
	if out != nil {
		if err := wire.DecodeBody(r.f, out); err != nil {
			closeFiles(r.files)
			return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
		}
	}
	return r.files, nil
}

// CreateTopic creates a topic. It fails with ErrTopicConflict if the topic
// exists (the message names the differing parameter, if any), ErrInvalidSpec,
// ErrInvalidTopicName, ErrTopicTooLarge (see CreateOptions.Force), or
// ErrBrokerNotRunning. Creating reserves every byte of the topic's rings
// (and prefaults them if the daemon is so configured): a topic of many GiB
// takes seconds; give ctx time for it.
func (c *Client) CreateTopic(ctx context.Context, cfg TopicConfig) (TopicInfo, error) {
	return c.CreateTopicWith(ctx, cfg, CreateOptions{})
}

// OpenOrCreateTopic returns the topic if it exists with the same parameters
// (zero fields compared as their defaults), else creates it. A topic with
// other parameters is ErrTopicConflict.
func (c *Client) OpenOrCreateTopic(ctx context.Context, cfg TopicConfig) (TopicInfo, error) {
	return c.CreateTopicWith(ctx, cfg, CreateOptions{IfNotExists: true})
}

// CreateOptions are the choices for CreateTopicWith.
type CreateOptions struct {
	// IfNotExists succeeds with the existing topic if it has the same
	// parameters (OpenOrCreateTopic).
	IfNotExists bool
	// Force creates the topic even if its regions would take more than the
	// daemon's share of free memory or region space (ErrTopicTooLarge).
	Force bool
}

// CreateTopicWith is CreateTopic (or OpenOrCreateTopic) with options.
func (c *Client) CreateTopicWith(ctx context.Context, cfg TopicConfig, opts CreateOptions) (TopicInfo, error) {
	var ti TopicInfo
	if err := ValidateTopicName(cfg.Name); err != nil {
		return ti, err
	}
	t := wire.TypeCreate
	if opts.IfNotExists {
		t = wire.TypeOpenOrCreate
	}
	_, err := c.request(ctx, t, wire.Create{TopicSpec: cfg.spec(), Force: opts.Force}, &ti)
	return ti, err
}

// DeleteOptions are the choices for DeleteTopic.
type DeleteOptions struct {
	// Force deletes the topic even while clients are attached: their
	// Publishers get ErrTopicDeleted at their next publish, their
	// Subscribers once they have read what was published before; they
	// keep their mappings until they close.
	Force bool
}

// DeleteTopic deletes a topic and its regions. Errors: ErrTopicNotFound,
// ErrTopicInUse (clients attached and not Force), ErrInvalidTopicName.
func (c *Client) DeleteTopic(ctx context.Context, name string, opts DeleteOptions) error {
	if err := ValidateTopicName(name); err != nil {
		return err
	}
	_, err := c.request(ctx, wire.TypeDelete, wire.Delete{Name: name, Force: opts.Force}, nil)
	return err
}

// Topics lists every topic, sorted by name, with live counters. It asks
// page after page (wire.Page) until the daemon has listed them all, so
// any number of topics is listed; a topic created or deleted meanwhile
// may be missing or present.
func (c *Client) Topics(ctx context.Context) ([]TopicInfo, error) {
	var out []TopicInfo
	pg := wire.Page{}
	for {
		var l struct { // wire.TopicList, decoded into this package's types
			Topics []TopicInfo `json:"topics"`
			Next   string      `json:"next"`
		}
		if _, err := c.request(ctx, wire.TypeList, pg, &l); err != nil {
			return out, err
		}
		out = append(out, l.Topics...)
		if l.Next == "" || l.Next <= pg.After {
			return out, nil
		}
		pg.After = l.Next
	}
}

// TopicInfo describes one topic. Errors: ErrTopicNotFound,
// ErrInvalidTopicName.
func (c *Client) TopicInfo(ctx context.Context, name string) (TopicInfo, error) {
	var ti TopicInfo
	if err := ValidateTopicName(name); err != nil {
		return ti, err
	}
	_, err := c.request(ctx, wire.TypeInfo, wire.TopicRef{Name: name}, &ti)
	return ti, err
}

// DaemonStatus returns the daemon's status (pid, uptime, heartbeat, counts).
func (c *Client) DaemonStatus(ctx context.Context) (DaemonStatus, error) {
	var s DaemonStatus
	_, err := c.request(ctx, wire.TypeStatus, nil, &s)
	return s, err
}

// Stats lists the daemon's connected clients and its topics, asking page
// after page of topics as Topics does (Next is "" in the result).
func (c *Client) Stats(ctx context.Context) (DaemonStats, error) {
	var s DaemonStats
	pg := wire.Page{}
	for {
		var page DaemonStats
		if _, err := c.request(ctx, wire.TypeStats, pg, &page); err != nil {
			return s, err
		}
		if pg.After == "" {
			s.Clients = page.Clients
		}
		s.Topics = append(s.Topics, page.Topics...)
		if page.Next == "" || page.Next <= pg.After {
			return s, nil
		}
		pg.After = page.Next
	}
}

// attach asks for a topic's regions. The files are the caller's (close
// them all, the flat list), and come grouped per entry of ar.Partitions:
// data region, consumer region, then slot regions (every slot for a
// publisher, the reserved one for a subscriber; see package wire).
func (c *Client) attach(ctx context.Context, topic string, role wire.Role, parts []int, group string) (ar wire.AttachReply, groups [][]*os.File, files []*os.File, err error) {
	if err := ValidateTopicName(topic); err != nil {
		return ar, nil, nil, err
	}
	files, err = c.request(ctx, wire.TypeAttach, wire.Attach{Topic: topic, Role: role, Partitions: parts, Group: wire.GroupID(group), GroupName: group}, &ar)
	if err != nil {
		return ar, nil, nil, err
	}
	bad := func(format string, args ...any) (wire.AttachReply, [][]*os.File, []*os.File, error) {
		closeFiles(files)
		return ar, nil, nil, fmt.Errorf("%w: attach reply: %s", ErrProtocol, fmt.Sprintf(format, args...))
	}
	if len(ar.Descriptors) != len(ar.Partitions) {
		return bad("%d descriptor counts for %d partitions", len(ar.Descriptors), len(ar.Partitions))
	}
	slots, gslots := ar.Topic.Spec.MaxSubscribers, ar.Topic.Spec.MaxGroups
	want := wire.RegionDescriptors + slots + gslots
	if role == wire.RoleSubscriber {
		want = wire.RegionDescriptors + 1
		if len(ar.Slots) != len(ar.Partitions) {
			return bad("%d reserved slots for %d partitions", len(ar.Slots), len(ar.Partitions))
		}
		if len(ar.GroupSlots) > 0 {
			want++
			if len(ar.GroupSlots) != len(ar.Partitions) {
				return bad("%d group slots for %d partitions", len(ar.GroupSlots), len(ar.Partitions))
			}
			for i, g := range ar.GroupSlots {
				if g < 0 || g >= gslots {
					return bad("partition %d: group slot %d of %d", i, g, gslots)
				}
			}
		}
	}
	at := 0
	for i, n := range ar.Descriptors {
		if n != want || at+n > len(files) {
			return bad("partition %d: %d descriptors (want %d), %d received in all", i, n, want, len(files))
		}
		if role == wire.RoleSubscriber && (ar.Slots[i] < 0 || ar.Slots[i] >= slots) {
			return bad("partition %d: reserved slot %d of %d", i, ar.Slots[i], slots)
		}
		groups = append(groups, files[at:at+n])
		at += n
	}
	if at != len(files) {
		return bad("%d descriptors received, %d announced", len(files), at)
	}
	return ar, groups, files, nil
}

// retire tells the handles the daemon listed as stale (their rings are
// not its topic's) and forgets them. c.mu held.
func (c *Client) retire(hs []closer, stale []wire.Stale) {
	for _, s := range stale {
		if s.Index < 0 || s.Index >= len(hs) {
			continue
		}
		h := hs[s.Index]
		r, ok := c.handles[h]
		if !ok {
			continue // closed meanwhile: its rings are unmapped
		}
		h.watch().retire(s.Reason)
		delete(c.handles, h)
		c.log.Warn("kaelix: the daemon does not know this handle's rings; it now returns ErrTopicRecreated", "topic", r.Topic, "role", r.Role, "reason", s.Reason)
	}
}

// unregister forgets h and reports whether it was registered. After it
// returns the Client no longer touches h's rings.
func (c *Client) unregister(h closer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.handles[h]
	delete(c.handles, h)
	return ok
}

// register records an open handle, for re-registration after a reconnect.
func (c *Client) register(h closer, r wire.Resume) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.handles[h] = r
	return nil
}

// release forgets a handle (nil: one never registered) and tells the
// daemon (best effort).
func (c *Client) release(h closer, attachmentID uint64) {
	c.mu.Lock()
	_, ok := c.handles[h]
	delete(c.handles, h)
	closed := c.closed
	c.mu.Unlock()
	if (ok || h == nil) && !closed {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c.request(ctx, wire.TypeDetach, wire.Detach{AttachmentID: attachmentID}, nil)
	}
}

// Close closes every Publisher and Subscriber made from c, then the
// connection, and stops reconnecting. Safe to call twice (then ErrClosed).
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	hs := make([]closer, 0, len(c.handles))
	for h := range c.handles {
		hs = append(hs, h)
	}
	c.mu.Unlock()
	for _, h := range hs {
		h.Close()
	}
	c.mu.Lock()
	c.closed = true
	close(c.done)
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		conn.UnixConn().Close() // readLoop closes the rest
	}
	c.wg.Wait()
	return nil
}

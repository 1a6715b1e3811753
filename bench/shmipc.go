package bench

// shmipc-go (github.com/cloudwego/shmipc-go), ByteDance's shared-memory
// IPC for Go: records go through shared memory, and the two processes
// synchronize over a Unix domain socket (the event the reader waits for).
// Used as its README shows: the parent runs the server side (a UDS
// listener, shmipc.Server, AcceptStream), the child the client side (a
// SessionManager dialing the socket, GetStream); shared memory is memfd,
// passed over the socket, so nothing is left in /dev/shm. A stream is
// opened lazily by its first message: the client sends a one-byte hello
// that the server reads first. Send writes the record into the stream's
// shared-memory buffer and flushes it (one queue element, and a wakeup of
// the peer when it waits); SendBatch flushes once per batch.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/cloudwego/shmipc-go"
)

func init() {
	shmipc.SetLogLevel(5) // shmipc's levelNoPrint
	register(&transport{
		name:    "shmipc-go",
		modes:   []string{ModePingPong, ModeOneway, ModeThroughput},
		newLink: newShmipcLink,
		openTx:  func(e *procEnv, l *linkSpec, _ int) (Tx, error) { return openShmipc(e, l) },
		openRx:  func(e *procEnv, l *linkSpec, _ int) (Rx, error) { return openShmipc(e, l) },
		method:  "/proc/PID/io syscr+syscw of both processes (shmipc's UDS event reads and writes, and its epoll loop's)",
	})
}

func shmipcConfig(size int) *shmipc.Config {
	c := shmipc.DefaultConfig()
	c.MemMapType = shmipc.MemMapTypeMemFd
	c.ShareMemoryBufferCap = 64 << 20
	c.QueueCap = 65535
	c.ConnectionWriteTimeout = 30 * time.Second
	c.LogOutput = io.Discard
	c.BufferSliceSizes = []*shmipc.SizePercentPair{
		{Size: uint32(size*32 + 256), Percent: 70},
		{Size: 16 << 10, Percent: 20},
		{Size: 64 << 10, Percent: 10},
	}
	return c
}

// shmipcServer is the parent's end of a link, set up by a goroutine that
// accepts the child's connection.
type shmipcServer struct {
	ready  chan struct{}
	sess   *shmipc.Session
	stream *shmipc.Stream
	err    error
}

var (
	shmipcMu      sync.Mutex
	shmipcServers = map[string]*shmipcServer{}
)

func newShmipcLink(r *runEnv, l *linkSpec) error {
	l.Addr = filepath.Join(r.dir, l.ID+".shmipc.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: l.Addr, Net: "unix"})
	if err != nil {
		return err
	}
	srv := &shmipcServer{ready: make(chan struct{})}
	shmipcMu.Lock()
	shmipcServers[l.ID] = srv
	shmipcMu.Unlock()
	go func() {
		defer close(srv.ready)
		defer ln.Close()
		ln.SetDeadline(time.Now().Add(60 * time.Second))
		conn, err := ln.Accept()
		if err != nil {
			srv.err = err
			return
		}
		if srv.sess, err = shmipc.Server(conn, shmipcConfig(l.Size)); err != nil {
			srv.err = err
			return
		}
		if srv.stream, err = srv.sess.AcceptStream(); err != nil {
			srv.err = err
			return
		}
		// The client's hello opens the stream.
		if _, err := srv.stream.BufferReader().ReadBytes(1); err != nil {
			srv.err = fmt.Errorf("hello: %w", err)
			return
		}
		srv.stream.BufferReader().ReleasePreviousRead()
	}()
	r.cleanup = append(r.cleanup, func() {
		ln.Close()
		shmipcMu.Lock()
		delete(shmipcServers, l.ID)
		shmipcMu.Unlock()
		<-srv.ready
		if srv.sess != nil {
			srv.sess.Close()
		}
	})
	return nil
}

type shmipcEnd struct {
	stream *shmipc.Stream
	w      shmipc.BufferWriter
	rd     shmipc.BufferReader
	size   int
	sm     *shmipc.SessionManager
	stop   func() bool
}

var errShmipcNoServer = errors.New("bench: shmipc-go: no server end for the link")

func openShmipc(e *procEnv, l *linkSpec) (*shmipcEnd, error) {
	s := &shmipcEnd{size: l.Size}
	if e.parent {
		shmipcMu.Lock()
		srv := shmipcServers[l.ID]
		shmipcMu.Unlock()
		if srv == nil {
			return nil, errShmipcNoServer
		}
		select {
		case <-srv.ready:
		case <-time.After(60 * time.Second):
			return nil, fmt.Errorf("bench: shmipc-go link %s: no client in 60s", l.ID)
		}
		if srv.err != nil {
			return nil, fmt.Errorf("bench: shmipc-go link %s: %w", l.ID, srv.err)
		}
		s.stream = srv.stream
	} else {
		conf := shmipc.DefaultSessionManagerConfig()
		conf.Config = shmipcConfig(l.Size)
		conf.ShareMemoryPathPrefix = "kaelix-bench-" + l.ID + "-" + strconv.Itoa(int(time.Now().UnixNano()))
		conf.QueuePath = conf.ShareMemoryPathPrefix + "_queue"
		conf.Network, conf.Address, conf.SessionNum = "unix", l.Addr, 1
		sm, err := shmipc.NewSessionManager(conf)
		if err != nil {
			return nil, fmt.Errorf("bench: shmipc-go session: %w", err)
		}
		s.sm = sm
		if s.stream, err = sm.GetStream(); err != nil {
			sm.Close()
			return nil, fmt.Errorf("bench: shmipc-go stream: %w", err)
		}
		if _, err := s.stream.BufferWriter().WriteBytes([]byte{1}); err != nil {
			sm.Close()
			return nil, err
		}
		if err := s.stream.Flush(false); err != nil {
			sm.Close()
			return nil, err
		}
	}
	s.w, s.rd = s.stream.BufferWriter(), s.stream.BufferReader()
	st := s.stream
	s.stop = context.AfterFunc(e.ctx, func() { st.Close() })
	return s, nil
}

func (s *shmipcEnd) Send(p []byte) error {
	if _, err := s.w.WriteBytes(p); err != nil {
		return err
	}
	return s.stream.Flush(false)
}

func (s *shmipcEnd) SendBatch(ps [][]byte) error {
	for _, p := range ps {
		if _, err := s.w.WriteBytes(p); err != nil {
			return err
		}
	}
	return s.stream.Flush(false)
}

func (s *shmipcEnd) Recv(h func([]byte), limit int) (int, error) {
	n := 0
	for {
		b, err := s.rd.ReadBytes(s.size)
		if err != nil {
			return n, err
		}
		h(b)
		s.rd.ReleasePreviousRead()
		if n++; n == limit || s.rd.Len() < s.size {
			return n, nil
		}
	}
}

func (s *shmipcEnd) Close() error {
	s.stop()
	if s.sm != nil {
		s.sm.PutBack(s.stream)
		return s.sm.Close()
	}
	return nil
}

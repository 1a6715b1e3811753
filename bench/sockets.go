package bench

// Socket transports: Unix domain sockets (stream and seqpacket) and TCP on
// loopback with TCP_NODELAY. The parent listens (one listener per link),
// the child dials. Records on stream sockets are framed by their fixed
// size; a seqpacket carries one record per packet.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"time"
)

func init() {
	for _, name := range []string{"uds", "uds-seqpacket", "tcp"} {
		register(&transport{
			name:    name,
			newLink: newSocketLink,
			openTx:  func(e *procEnv, l *linkSpec, _ int) (Tx, error) { return openSocket(e, l) },
			openRx:  func(e *procEnv, l *linkSpec, _ int) (Rx, error) { return openSocket(e, l) },
			method:  "/proc/PID/io syscr+syscw: read/write syscalls, including reads that found nothing (EAGAIN) before the poller parked",
		})
	}
}

func socketNetwork(transport string) string {
	switch transport {
	case "uds":
		return "unix"
	case "uds-seqpacket":
		return "unixpacket"
	}
	return "tcp"
}

func newSocketLink(r *runEnv, l *linkSpec) error {
	network := socketNetwork(l.Transport)
	addr := "127.0.0.1:0"
	if network != "tcp" {
		addr = filepath.Join(r.dir, l.ID+".sock")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return err
	}
	l.Addr = ln.Addr().String()
	r.listeners[l.ID] = ln
	r.cleanup = append(r.cleanup, func() { ln.Close() })
	return nil
}

type socketEnd struct {
	conn   net.Conn
	stop   func() bool
	packet bool
	size   int
	br     *bufio.Reader // stream reads when batching
	bufs   net.Buffers
	buf    []byte
}

// openSocket accepts (parent) or dials (child) the link's connection.
func openSocket(e *procEnv, l *linkSpec) (*socketEnd, error) {
	var conn net.Conn
	var err error
	if e.parent {
		ln, ok := e.run.listeners[l.ID]
		if !ok {
			return nil, fmt.Errorf("bench: no listener for link %s", l.ID)
		}
		if d, ok := ln.(interface{ SetDeadline(time.Time) error }); ok {
			d.SetDeadline(time.Now().Add(30 * time.Second))
		}
		conn, err = ln.Accept()
	} else {
		var d net.Dialer
		conn, err = d.DialContext(e.ctx, socketNetwork(l.Transport), l.Addr)
	}
	if err != nil {
		return nil, fmt.Errorf("bench: %s link %s: %w", l.Transport, l.ID, err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	s := &socketEnd{conn: conn, packet: l.Transport == "uds-seqpacket", size: l.Size, buf: make([]byte, l.Size)}
	if l.Batch > 1 && !s.packet {
		s.br = bufio.NewReaderSize(conn, 64<<10)
	}
	s.stop = context.AfterFunc(e.ctx, func() { conn.Close() })
	return s, nil
}

func (s *socketEnd) Send(p []byte) error {
	_, err := s.conn.Write(p)
	return err
}

// SendBatch writes a stream batch with one writev; seqpacket has no batch
// call in Go's net package (no sendmmsg), so it writes each packet.
func (s *socketEnd) SendBatch(ps [][]byte) error {
	if s.packet {
		for _, p := range ps {
			if _, err := s.conn.Write(p); err != nil {
				return err
			}
		}
		return nil
	}
	s.bufs = append(s.bufs[:0], ps...)
	_, err := s.bufs.WriteTo(s.conn)
	return err
}

func (s *socketEnd) Recv(h func([]byte), limit int) (int, error) {
	switch {
	case s.packet:
		n, err := s.conn.Read(s.buf)
		if err != nil {
			return 0, err
		}
		if n != s.size {
			return 0, fmt.Errorf("bench: seqpacket of %d bytes, want %d", n, s.size)
		}
		h(s.buf)
		return 1, nil
	case s.br == nil:
		if _, err := io.ReadFull(s.conn, s.buf); err != nil {
			return 0, err
		}
		h(s.buf)
		return 1, nil
	}
	n := 0
	for {
		if _, err := io.ReadFull(s.br, s.buf); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		h(s.buf)
		if n++; n == limit || s.br.Buffered() < s.size {
			return n, nil
		}
	}
}

func (s *socketEnd) Close() error {
	s.stop()
	return s.conn.Close()
}

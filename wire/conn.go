package wire

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Conn reads and writes frames, with their descriptors, on a Unix stream
// socket. One goroutine may read while others write; writes are serialized.
type Conn struct {
	uc *net.UnixConn

	// Reader state, owned by the reading goroutine.
	buf []byte // buffered bytes [r, w) not yet decoded
	r   int
	w   int
	oob []byte
	fds []int // descriptors received and not yet handed to a frame, in arrival order
	// truncated: a read since the last frame had its descriptors cut
	// short (MSG_CTRUNC); the frame being read is missing some.
	truncated bool
	// refuse: no descriptor may arrive on this Conn (a daemon's: requests
	// carry none); one that does is closed at once and fails the read.
	refuse bool

	wmu  sync.Mutex // guards wbuf and serializes writes
	wbuf []byte
}

// NewConn wraps uc. The Conn owns uc from then on.
func NewConn(uc *net.UnixConn) *Conn {
	return &Conn{
		uc:  uc,
		buf: make([]byte, 4096),
		oob: make([]byte, unix.CmsgSpace(4*fdsPerMessage)),
	}
}

// RefuseDescriptors makes every later read fail as soon as a descriptor
// arrives (closing it at once), instead of collecting descriptors for a
// frame: for a daemon, whose requests never carry any, so that a client
// cannot pin descriptors in it. Call before the first ReadFrame.
func (c *Conn) RefuseDescriptors() { c.refuse = true }

// UnixConn returns the underlying socket (for deadlines and SO_PEERCRED).
func (c *Conn) UnixConn() *net.UnixConn { return c.uc }

// ReadFrame reads the next frame and the descriptors announced in its
// header, as files the caller owns (close them). The frame's Body is valid
// until the next ReadFrame. Errors: io.EOF at a frame boundary, a
// *FrameError (ErrBadFrame) for a bad header, ErrDescriptors, or the
// socket's error: after those (but a deadline), close the Conn. A
// *DescriptorsDroppedError comes with the frame, whose descriptors the
// kernel could not all install (the process is out of descriptors): the
// Conn stays usable.
func (c *Conn) ReadFrame() (Frame, []*os.File, error) {
	for {
		f, n, err := Decode(c.buf[c.r:c.w])
		if err == nil && c.truncated && len(c.fds) < int(f.FDCount) {
			got := len(c.fds)
			for _, fd := range c.fds {
				unix.Close(fd)
			}
			c.fds, c.truncated = c.fds[:0], false
			c.r += n
			return f, nil, droppedError(int(f.FDCount), got)
		}
		if err == nil {
			c.truncated = false
			if int(f.FDCount) > len(c.fds) {
				return Frame{}, nil, fmt.Errorf("%w: frame announces %d descriptors, %d arrived", ErrDescriptors, f.FDCount, len(c.fds))
			}
			files := make([]*os.File, 0, f.FDCount)
			for _, fd := range c.fds[:f.FDCount] {
				files = append(files, os.NewFile(uintptr(fd), "kaelix-region"))
			}
			c.fds = append(c.fds[:0], c.fds[f.FDCount:]...)
			c.r += n
			return f, files, nil
		}
		if err != ErrShortFrame {
			return Frame{}, nil, err
		}
		if err := c.fill(); err != nil {
			return Frame{}, nil, err
		}
	}
}

// fill reads more bytes, growing the buffer up to one maximal frame.
func (c *Conn) fill() error {
	if c.r > 0 {
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
	}
	if c.w == len(c.buf) {
		need := len(c.buf) * 2
		if h, err := DecodeHeader(c.buf[:c.w]); err == nil {
			need = HeaderBytes + int(h.BodyLength)
		}
		nb := make([]byte, max(need, len(c.buf)+1))
		copy(nb, c.buf[:c.w])
		c.buf = nb
	}
	n, oobn, flags, _, err := c.uc.ReadMsgUnix(c.buf[c.w:], c.oob)
	if oobn > 0 {
		if perr := c.takeFDs(c.oob[:oobn]); perr != nil && err == nil {
			err = perr
		}
	}
	if flags&unix.MSG_CTRUNC != 0 {
		// The bytes are whole; the frame they belong to lacks
		// descriptors (ReadFrame reports it once the frame is in).
		c.truncated = true
	}
	c.w += n
	if n > 0 && err == nil {
		return nil
	}
	if err == nil {
		err = io.EOF
		if c.w > c.r {
			err = io.ErrUnexpectedEOF // the peer closed mid-frame
		}
	}
	return err
}

// droppedError describes a frame that lost descriptors, with this
// process's descriptor count and limit.
func droppedError(want, got int) *DescriptorsDroppedError {
	e := &DescriptorsDroppedError{Want: want, Got: got, Open: -1}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		e.Open = len(ents) - 1 // less the directory's own
	}
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil {
		e.Limit = lim.Cur
	}
	return e
}

func (c *Conn) takeFDs(oob []byte) error {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDescriptors, err)
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_RIGHTS {
			continue
		}
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrDescriptors, err)
		}
		if c.refuse && len(fds) > 0 {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return fmt.Errorf("%w: %d descriptors sent where none are accepted", ErrDescriptors, len(fds))
		}
		c.fds = append(c.fds, fds...)
	}
	if len(c.fds) > 4*MaxFDs {
		return fmt.Errorf("%w: %d descriptors pending", ErrDescriptors, len(c.fds))
	}
	return nil
}

// PendingFDs reports how many received descriptors no frame has claimed.
// A daemon treats any as a protocol violation (requests carry none).
func (c *Conn) PendingFDs() int { return len(c.fds) }

// WriteFrame writes f, sending files (if any) as SCM_RIGHTS: up to
// fdsPerMessage with each of the frame's first bytes, one byte per
// message, the rest with the remaining bytes. f.FDCount is set to
// len(files), at most MaxFDs. The caller keeps ownership of files. Safe
// for concurrent use.
func (c *Conn) WriteFrame(f Frame, files ...*os.File) error {
	if len(files) > MaxFDs {
		return &FrameError{Field: "descriptor count", Value: uint64(len(files)), Detail: fmt.Sprintf("exceeds the maximum of %d", MaxFDs)}
	}
	f.FDCount = uint16(len(files))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	c.wbuf, err = AppendFrame(c.wbuf[:0], f)
	if err != nil {
		return err
	}
	b := c.wbuf
	fds := make([]int, len(files))
	for i, file := range files {
		fds[i] = int(file.Fd())
	}
	for len(fds) > 0 {
		k := min(len(fds), fdsPerMessage)
		chunk := b
		if k < len(fds) {
			chunk = b[:1] // more descriptors follow with the next byte
		}
		n, _, err := c.uc.WriteMsgUnix(chunk, unix.UnixRights(fds[:k]...), nil)
		if err != nil {
			return err
		}
		b, fds = b[n:], fds[k:]
	}
	for len(b) > 0 {
		n, err := c.uc.Write(b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	if cap(c.wbuf) > 64<<10 {
		c.wbuf = nil // do not pin a large buffer
	}
	return nil
}

// Close closes the socket and any descriptors received but not claimed.
func (c *Conn) Close() error {
	for _, fd := range c.fds {
		unix.Close(fd)
	}
	c.fds = nil
	return c.uc.Close()
}

package soak

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/wire"
)

// runProbe is the security tests' child: it tries one operation (a.Group
// names it) on a.Topic, usually under another uid, and prints
// "result OP ok [detail]" or "result OP err MESSAGE".
func runProbe(a ChildArgs) error {
	op := a.Group
	res := func(err error, detail ...any) {
		if err != nil {
			fmt.Println("result", op, "err", err)
		} else {
			fmt.Println(append([]any{"result", op, "ok"}, detail...)...)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	switch op {
	case "open-region": // skip the daemon: open the region file by path
		f, err := os.OpenFile(a.Topic, os.O_RDONLY, 0)
		if err == nil {
			f.Close()
		}
		res(err)
		return nil
	case "garbage", "huge", "lie", "truncate", "corrupt-ring", "corrupt-shm-header", "subscriber-write":
		return rawProbe(ctx, a, op, res)
	}
	c, err := client.Connect(ctx, client.Options{SocketPath: a.Socket, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		res(err)
		return nil
	}
	defer c.Close()
	switch op {
	case "publish":
		p, err := c.NewPublisher(ctx, a.Topic, client.PublisherOptions{})
		if err == nil {
			err = p.TryPublish(client.Message{Payload: []byte("x")})
			if err == client.ErrNotConnected {
				err = nil // attached and allowed; nobody to publish to on a block topic
			}
			p.Close()
		}
		res(err)
	case "subscribe", "subscribe-group:workers", "subscribe-group:others":
		s, err := c.Subscribe(ctx, a.Topic, client.SubscribeOptions{Group: strings.TrimPrefix(strings.TrimPrefix(op, "subscribe"), "-group:")})
		if err == nil {
			s.Close()
		}
		res(err)
	case "create":
		_, err := c.CreateTopic(ctx, client.TopicConfig{Name: a.Topic, CapacityBytes: 64 << 10})
		res(err)
	case "delete":
		res(c.DeleteTopic(ctx, a.Topic, client.DeleteOptions{Force: true}))
	default:
		res(fmt.Errorf("unknown probe %q", op))
	}
	return nil
}

// rawProbe speaks the protocol by hand, as a hostile client would.
func rawProbe(ctx context.Context, a ChildArgs, op string, res func(error, ...any)) error {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", a.Socket)
	if err != nil {
		res(err)
		return nil
	}
	uc := nc.(*net.UnixConn)
	uc.SetDeadline(time.Now().Add(10 * time.Second))
	switch op {
	case "garbage":
		b := make([]byte, 4096)
		for i := range b {
			b[i] = byte(i*7 + 3)
		}
		uc.Write(b)
		_, err := uc.Read(b) // the daemon answers with an error and hangs up
		for err == nil {
			_, err = uc.Read(b)
		}
		res(nil, "disconnected:", err)
		return nil
	case "huge":
		var h [wire.HeaderBytes]byte
		binary.LittleEndian.PutUint16(h[0:], wire.Magic)
		h[2], h[3] = wire.Version, byte(wire.TypeHello)
		binary.LittleEndian.PutUint32(h[8:], 1<<31) // a 2 GiB body
		uc.Write(h[:])
		b := make([]byte, 512)
		_, err := uc.Read(b)
		for err == nil {
			_, err = uc.Read(b)
		}
		res(nil, "disconnected:", err)
		return nil
	}
	c := wire.NewConn(uc)
	call := func(t wire.Type, body any, out any) ([]*os.File, error) {
		f, err := wire.NewFrame(t, 1, body)
		if err != nil {
			return nil, err
		}
		if err := c.WriteFrame(f); err != nil {
			return nil, err
		}
		rf, files, err := c.ReadFrame()
		if err != nil {
			return nil, err
		}
		if we := wire.ReplyError(rf); we != nil {
			return files, we
		}
		return files, wire.DecodeBody(rf, out)
	}
	// A hello that claims to be root and pid 1: fields the protocol does
	// not have, and a name; the daemon must go by SO_PEERCRED alone.
	type lyingHello struct {
		wire.Hello
		UID int `json:"uid"`
		PID int `json:"pid"`
	}
	var hr wire.HelloReply
	if _, err := call(wire.TypeHello, lyingHello{Hello: wire.Hello{Version: wire.Version, Name: "root"}, UID: 0, PID: 1}, &hr); err != nil {
		res(err)
		return nil
	}
	if op == "lie" {
		fmt.Println("peer", hr.PeerUID, hr.PeerPID)
		_, err := call(wire.TypeCreate, wire.TopicSpec{Name: a.Topic, CapacityBytes: 64 << 10}, &wire.TopicInfo{})
		res(err)
		return nil
	}
	if op == "subscriber-write" {
		var ar wire.AttachReply
		files, err := call(wire.TypeAttach, wire.Attach{Topic: a.Topic, Role: wire.RoleSubscriber}, &ar)
		if err != nil {
			res(err)
			return nil
		}
		if len(files) != wire.RegionDescriptors+1 || len(ar.Topic.Partitions) == 0 || len(ar.Slots) != 1 {
			res(fmt.Errorf("attach gave %d descriptors and slots %v for %d partitions, want data, consumer and one slot", len(files), ar.Slots, len(ar.Partitions)))
			return nil
		}
		p := ar.Topic.Partitions[0]
		err = tryWriteData(files[0], files[1], p.Path)
		if err == nil {
			err = tryWriteSlots(files[2], p.SlotPaths(ar.Topic.Spec.MaxSubscribers), ar.Slots[0])
		}
		res(err)
		return nil
	}
	var ar wire.AttachReply
	files, err := call(wire.TypeAttach, wire.Attach{Topic: a.Topic, Role: wire.RolePublisher}, &ar)
	if err != nil {
		res(err)
		return nil
	}
	f := files[0]
	switch op {
	case "truncate":
		err = unix.Ftruncate(int(f.Fd()), 0)
	case "corrupt-ring", "corrupt-shm-header":
		var st unix.Stat_t
		unix.Fstat(int(f.Fd()), &st)
		var b []byte
		b, err = unix.Mmap(int(f.Fd()), 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err == nil {
			off := 4096 // the ring header, after the region header
			if op == "corrupt-shm-header" {
				off = 0
			}
			for i := range 64 {
				b[off+i] ^= 0xa5
			}
			unix.Munmap(b)
		}
	}
	res(err)
	// Stay connected until told to go: the daemon may evict us.
	time.Sleep(time.Hour)
	return nil
}

// tryWriteData is a subscriber trying every way to write the data region
// through what the daemon gave it (data, a descriptor of it; consumer, a
// descriptor of the consumer region) or by its path. It returns nil if
// every attempt was refused and the consumer region is writable, else an
// error naming what got through.
func tryWriteData(data, consumer *os.File, path string) error {
	fd := int(data.Fd())
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	var got []string
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err != nil || fl&unix.O_ACCMODE != unix.O_RDONLY {
		got = append(got, fmt.Sprintf("descriptor flags %#o (%v), want O_RDONLY", fl, err))
	}
	if b, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err == nil {
		unix.Munmap(b)
		got = append(got, "mmap PROT_WRITE succeeded")
	}
	if b, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ, unix.MAP_SHARED); err != nil {
		got = append(got, fmt.Sprintf("mmap PROT_READ: %v", err))
	} else {
		if unix.Mprotect(b, unix.PROT_READ|unix.PROT_WRITE) == nil {
			got = append(got, "mprotect PROT_WRITE succeeded")
		}
		unix.Munmap(b)
	}
	if _, err := unix.Pwrite(fd, []byte{0}, st.Size-1); err == nil {
		got = append(got, "pwrite succeeded")
	}
	if unix.Ftruncate(fd, 0) == nil {
		got = append(got, "ftruncate succeeded")
	}
	for _, p := range []string{"/proc/self/fd/" + strconv.Itoa(fd), path} {
		if f, err := os.OpenFile(p, os.O_RDWR, 0); err == nil {
			f.Close()
			got = append(got, "open "+p+" O_RDWR succeeded")
		}
	}
	var cst unix.Stat_t
	if err := unix.Fstat(int(consumer.Fd()), &cst); err != nil {
		return err
	}
	if b, err := unix.Mmap(int(consumer.Fd()), 0, int(cst.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		got = append(got, fmt.Sprintf("consumer region not writable: %v", err))
	} else {
		unix.Munmap(b)
	}
	if len(got) > 0 {
		return fmt.Errorf("data region writable: %s", strings.Join(got, "; "))
	}
	return nil
}

// tryWriteSlots is a subscriber trying to reach other consumers' cursors:
// own is the descriptor of its own slot region (index mine of paths),
// which must be writable; every other slot region must be out of reach,
// neither held as a descriptor nor openable by path. It returns nil if so,
// else an error naming what got through.
func tryWriteSlots(own *os.File, paths []string, mine int) error {
	var got []string
	var st unix.Stat_t
	if err := unix.Fstat(int(own.Fd()), &st); err != nil {
		return err
	}
	if b, err := unix.Mmap(int(own.Fd()), 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		got = append(got, fmt.Sprintf("own slot region not writable: %v", err))
	} else {
		unix.Munmap(b)
	}
	for k, path := range paths {
		if k == mine {
			continue
		}
		for _, flag := range []int{os.O_RDWR, os.O_RDONLY} {
			if f, err := os.OpenFile(path, flag, 0); err == nil {
				f.Close()
				got = append(got, fmt.Sprintf("open %s (flags %#o) succeeded", path, flag))
			}
		}
	}
	// No descriptor this process holds may be another slot region: each
	// held descriptor's target name must be its own slot's or no slot's.
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue
		}
		for k, path := range paths {
			if k != mine && target == path {
				got = append(got, fmt.Sprintf("holds descriptor %s of another subscriber's slot %s", e.Name(), path))
			}
		}
	}
	if len(paths) < 2 || mine < 0 || mine >= len(paths) {
		got = append(got, fmt.Sprintf("topic has %d slot regions; the test needs at least 2", len(paths)))
	}
	if len(got) > 0 {
		return fmt.Errorf("other slots reachable: %s", strings.Join(got, "; "))
	}
	return nil
}

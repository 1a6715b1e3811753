package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestHeaderLayout(t *testing.T) {
	// Pins the frame header: a change here is a protocol version bump.
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"magicOffset", magicOffset, 0},
		{"versionOffset", versionOffset, 2},
		{"typeOffset", typeOffset, 3},
		{"requestIDOffset", requestIDOffset, 4},
		{"bodyLengthOffset", bodyLengthOffset, 8},
		{"fdCountOffset", fdCountOffset, 12},
		{"reservedOffset", reservedOffset, 14},
		{"HeaderBytes", HeaderBytes, 16},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestFrameRoundTrip(t *testing.T) {
	bodies := []struct {
		typ  Type
		body any
		into any
	}{
		{TypeHello, Hello{Version: Version, Name: "x", Attached: []Resume{{Topic: "a.b", Role: RolePublisher, Partitions: []int{0, 2}}}}, &Hello{}},
		{TypeCreate, TopicSpec{Name: "t", Partitions: 3, Kind: KindSPSC, CapacityBytes: 8192, Policy: PolicyReject, Mode: 0o640, GID: 7}, &TopicSpec{}},
		{TypeDelete, Delete{Name: "t", Force: true}, &Delete{}},
		{TypeAttach, Attach{Topic: "t", Role: RoleSubscriber, Partitions: []int{1}}, &Attach{}},
		{TypeError, Error{Code: CodeConflict, Message: "m"}, &Error{}},
		{TypeStatus.Reply(), Status{PID: 3, Heartbeats: 9}, &Status{}},
	}
	var stream []byte
	for i, b := range bodies {
		f, err := NewFrame(b.typ, uint32(i+1), b.body)
		if err != nil {
			t.Fatal(err)
		}
		if stream, err = AppendFrame(stream, f); err != nil {
			t.Fatal(err)
		}
	}
	for i, b := range bodies {
		f, n, err := Decode(stream)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		stream = stream[n:]
		if f.Type != b.typ || f.RequestID != uint32(i+1) {
			t.Fatalf("frame %d: type %v id %d", i, f.Type, f.RequestID)
		}
		if err := DecodeBody(f, b.into); err != nil {
			t.Fatal(err)
		}
		if got := reflect.ValueOf(b.into).Elem().Interface(); !reflect.DeepEqual(got, b.body) {
			t.Errorf("frame %d: got %+v, want %+v", i, got, b.body)
		}
	}
	if len(stream) != 0 {
		t.Fatalf("%d bytes left", len(stream))
	}
}

func TestDecodeErrors(t *testing.T) {
	good, _ := AppendFrame(nil, Frame{Type: TypeList, RequestID: 1, Body: []byte("{}")})
	mut := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	cases := []struct {
		name  string
		in    []byte
		want  error
		field string
	}{
		{"empty", nil, ErrShortFrame, ""},
		{"short header", good[:HeaderBytes-1], ErrShortFrame, ""},
		{"short body", good[:len(good)-1], ErrShortFrame, ""},
		{"magic", mut(func(b []byte) { b[0] = 'G' }), ErrBadFrame, "magic"},
		{"version", mut(func(b []byte) { b[versionOffset] = 9 }), ErrBadFrame, "version"},
		{"reserved", mut(func(b []byte) { b[reservedOffset] = 1 }), ErrBadFrame, "reserved"},
		{"huge length", mut(func(b []byte) { copy(b[bodyLengthOffset:], []byte{0xff, 0xff, 0xff, 0xff}) }), ErrBadFrame, "body length"},
		{"just over max", mut(func(b []byte) { copy(b[bodyLengthOffset:], []byte{1, 0, 0x10, 0}) }), ErrBadFrame, "body length"},
		{"fds", mut(func(b []byte) { binary.LittleEndian.PutUint16(b[fdCountOffset:], MaxFDs+1) }), ErrBadFrame, "descriptor count"},
	}
	for _, c := range cases {
		_, _, err := Decode(c.in)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
			continue
		}
		var fe *FrameError
		if c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field) {
			t.Errorf("%s: err = %v, want field %q", c.name, err, c.field)
		}
	}
	if _, err := AppendFrame(nil, Frame{Body: make([]byte, MaxBodyBytes+1)}); !errors.Is(err, ErrBadFrame) {
		t.Errorf("AppendFrame oversized: %v", err)
	}
	if e := ReplyError(Frame{Type: TypeError, Body: []byte("nope")}); e == nil || e.Code != CodeProtocol {
		t.Errorf("ReplyError(garbage) = %v", e)
	}
}

func TestTopicNames(t *testing.T) {
	long := strings.Repeat("a", MaxTopicNameBytes)
	cases := []struct {
		name string
		pos  int // -2: valid; -1: length error; else offending byte
	}{
		{"a", -2},
		{"host.telemetry", -2},
		{"A-b_c.9", -2},
		{long, -2},
		{"", -1},
		{long + "a", -1},
		{"../x", 0},
		{".a", 0},
		{"a.", 1},
		{"a..b", 2},
		{"a/b", 1},
		{"a\x00b", 1},
		{"caf\u00e9", 3},
		{"a b", 1},
	}
	for _, c := range cases {
		err := ValidateTopicName(c.name)
		if c.pos == -2 {
			if err != nil {
				t.Errorf("%q: %v", c.name, err)
			}
			continue
		}
		var ne *TopicNameError
		if !errors.As(err, &ne) || !errors.Is(err, ErrInvalidTopicName) {
			t.Errorf("%q: err = %v, want *TopicNameError", c.name, err)
			continue
		}
		if ne.Pos != c.pos {
			t.Errorf("%q: pos %d, want %d (%v)", c.name, ne.Pos, c.pos, err)
		}
		want := "Topic name contains invalid characters"
		if c.pos == -1 {
			want = "Topic name must be 1 to 249 bytes long"
		}
		if !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: message %q, want prefix %q", c.name, err, want)
		}
	}
}

func TestConnDescriptors(t *testing.T) {
	fds, err := socketpair()
	if err != nil {
		t.Fatal(err)
	}
	a, b := NewConn(fds[0]), NewConn(fds[1])
	defer a.Close()
	defer b.Close()
	f1, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f1.Close()
	f1.WriteString("hello")
	big := bytes.Repeat([]byte("x"), 200000)
	wrote := make(chan struct{})
	defer func() { <-wrote }()
	go func() {
		defer close(wrote)
		fr, _ := NewFrame(TypeAttach.Reply(), 5, AttachReply{Partitions: []int{0, 1}})
		a.WriteFrame(fr, f1, f1)
		a.WriteFrame(Frame{Type: TypeList.Reply(), RequestID: 6, Body: append(append([]byte(`{"x":"`), big...), `"}`...)})
	}()
	fr, files, err := b.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if fr.RequestID != 5 || len(files) != 2 {
		t.Fatalf("frame %+v, %d files", fr, len(files))
	}
	buf := make([]byte, 5)
	if _, err := files[1].ReadAt(buf, 0); err != nil || string(buf) != "hello" {
		t.Fatalf("descriptor content %q, %v", buf, err)
	}
	for _, f := range files {
		f.Close()
	}
	fr, files, err = b.ReadFrame()
	if err != nil || fr.RequestID != 6 || len(files) != 0 || len(fr.Body) != len(big)+8 {
		t.Fatalf("big frame: %v %d %d", err, fr.RequestID, len(fr.Body))
	}
}

func socketpair() ([2]*net.UnixConn, error) {
	var out [2]*net.UnixConn
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: "@kaelix-wire-test-" + strings.ReplaceAll(os.Args[0], "/", "_")[max(0, len(os.Args[0])-40):], Net: "unix"})
	if err != nil {
		return out, err
	}
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		c, err := l.AcceptUnix()
		out[1] = c
		done <- err
	}()
	out[0], err = net.DialUnix("unix", nil, l.Addr().(*net.UnixAddr))
	if err != nil {
		return out, err
	}
	return out, <-done
}

// A frame may carry more descriptors than one message can (the kernel's
// SCM_MAX_FD is 253): they are spread over several messages, arrive in
// order, and the next frame gets none of them.
func TestConnManyDescriptors(t *testing.T) {
	fds, err := socketpair()
	if err != nil {
		t.Fatal(err)
	}
	a, b := NewConn(fds[0]), NewConn(fds[1])
	defer a.Close()
	defer b.Close()
	const n = 3*fdsPerMessage + 17
	files := make([]*os.File, n)
	for i := range files {
		f, err := os.CreateTemp(t.TempDir(), "x")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		f.WriteString(strconv.Itoa(i))
		files[i] = f
	}
	errc := make(chan error, 1)
	go func() {
		fr, _ := NewFrame(TypeAttach.Reply(), 5, AttachReply{Partitions: []int{0}})
		err := a.WriteFrame(fr, files...)
		if err == nil {
			err = a.WriteFrame(Frame{Type: TypeList.Reply(), RequestID: 6, Body: []byte(`{}`)})
		}
		errc <- err
	}()
	fr, got, err := b.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if fr.RequestID != 5 || len(got) != n {
		t.Fatalf("frame %d with %d descriptors, want 5 with %d", fr.RequestID, len(got), n)
	}
	for i, f := range got {
		buf := make([]byte, 8)
		k, _ := f.ReadAt(buf, 0)
		if string(buf[:k]) != strconv.Itoa(i) {
			t.Fatalf("descriptor %d reads %q: out of order", i, buf[:k])
		}
		f.Close()
	}
	fr, got, err = b.ReadFrame()
	if err != nil || fr.RequestID != 6 || len(got) != 0 || b.PendingFDs() != 0 {
		t.Fatalf("next frame: %v, id %d, %d descriptors, %d pending", err, fr.RequestID, len(got), b.PendingFDs())
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := a.WriteFrame(Frame{Type: TypeList.Reply(), RequestID: 7, Body: []byte(`{}`)}, make([]*os.File, MaxFDs+1)...); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("a frame with %d descriptors: %v, want ErrBadFrame", MaxFDs+1, err)
	}
}

package soak

import (
	"encoding/binary"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/wire"
)

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestAdvRequestDescriptorsPinnedInDaemon: requests never carry
// descriptors, and the daemon drops a client that sends any — but only
// once a whole frame has arrived. A client that announces a large body
// and then dribbles it one byte per sendmsg, each byte carrying 250
// descriptors, makes the daemon accept up to 4*MaxFDs (16384) descriptors
// into its own table per connection, and hold them while the connection
// stays idle. No topic rights are needed, only the socket. (The daemon
// here runs in the test process, so its descriptor count is ours.)
func TestAdvRequestDescriptorsPinnedInDaemon(t *testing.T) {
	e := newCrashEnv(t, func(c *daemon.Config) {})
	before := openFDs(t)
	uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: e.args.Socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	var h [wire.HeaderBytes]byte
	binary.LittleEndian.PutUint16(h[0:], wire.Magic)
	h[2], h[3] = wire.Version, byte(wire.TypeHello)
	binary.LittleEndian.PutUint32(h[4:], 1)
	binary.LittleEndian.PutUint32(h[8:], 1<<20-1) // a large, legal body
	if _, err := uc.Write(h[:]); err != nil {
		t.Fatal(err)
	}
	null, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	fds := make([]int, 250)
	for i := range fds {
		fds[i] = int(null.Fd())
	}
	sent := 0
	for i := 0; i < 40; i++ { // 10000 descriptors: modest
		if _, _, err := uc.WriteMsgUnix([]byte{'{'}, unix.UnixRights(fds...), nil); err != nil {
			t.Logf("send %d: %v (the daemon refused)", i, err)
			break
		}
		sent += len(fds)
	}
	time.Sleep(300 * time.Millisecond)
	pinned := openFDs(t) - before
	t.Logf("sent %d descriptors in 1-byte messages; the daemon's descriptor table grew by %d", sent, pinned)
	if pinned > 1000 {
		t.Errorf("one idle connection without a single complete request pins %d descriptors in kaelixd (limit here: %d)", pinned, rlimitNoFile())
	}
	uc.Close()
	time.Sleep(300 * time.Millisecond)
	t.Logf("after the client hung up: %d above the start", openFDs(t)-before)
}

func rlimitNoFile() uint64 {
	var r unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &r)
	return r.Cur
}

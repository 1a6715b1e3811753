package soak

import (
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/wire"
)

// TestDaemonSurvivesRandomFrames sends thousands of frames with valid
// headers and random or mutated bodies, of every request type, to a live
// kaelixd. It answers or drops each connection, stays up, and its
// per-connection recover never fires (kaelix_clients_dropped_total has
// no "panic" series): the paths do not need it.
func TestDaemonSurvivesRandomFrames(t *testing.T) {
	e := newCrashEnv(t, func(c *daemon.Config) { c.Network.Enabled, c.Network.Port = true, 0 })
	n := 3000
	if testing.Short() {
		n = 300
	}
	valid := []any{
		wire.Hello{Version: wire.Version, Name: "x"},
		wire.TopicSpec{Name: "fuzz.t", CapacityBytes: 64 << 10},
		wire.Attach{Topic: "fuzz.t", Role: wire.RolePublisher, Partitions: []int{0}},
		wire.Delete{Name: "fuzz.t", Force: true},
		wire.TopicRef{Name: "fuzz.t"},
		wire.Detach{AttachmentID: 1},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var c *wire.Conn
	dial := func() {
		nc, err := net.Dial("unix", e.args.Socket)
		if err != nil {
			t.Fatalf("daemon gone: %v", err)
		}
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		c = wire.NewConn(nc.(*net.UnixConn))
		f, _ := wire.NewFrame(wire.TypeHello, 0, valid[0])
		c.WriteFrame(f)
		c.ReadFrame()
	}
	dial()
	drops := 0
	for i := range n {
		body, _ := json.Marshal(valid[rng.IntN(len(valid))])
		switch rng.IntN(4) {
		case 0: // flip bytes
			for range 1 + rng.IntN(4) {
				body[rng.IntN(len(body))] ^= byte(1 + rng.IntN(255))
			}
		case 1: // truncate
			body = body[:rng.IntN(len(body))]
		case 2: // random bytes
			body = make([]byte, rng.IntN(256))
			for j := range body {
				body[j] = byte(rng.Uint32())
			}
		}
		var h [wire.HeaderBytes]byte
		binary.LittleEndian.PutUint16(h[0:], wire.Magic)
		h[2], h[3] = wire.Version, byte(1+rng.IntN(20))
		binary.LittleEndian.PutUint32(h[4:], uint32(i))
		binary.LittleEndian.PutUint32(h[8:], uint32(len(body)))
		_, err := c.UnixConn().Write(append(h[:], body...))
		if err == nil {
			_, files, rerr := c.ReadFrame()
			for _, f := range files {
				f.Close()
			}
			err = rerr
		}
		if err != nil {
			drops++
			c.Close()
			dial()
		}
	}
	c.Close()
	m := metrics(t, e.d)
	if panicked(m) {
		t.Errorf("a client input reached the recover:\n%s", grepLines(m, "dropped"))
	}
	if st := e.d.Status(); st.PID != os.Getpid() {
		t.Errorf("status %+v", st)
	}
	t.Logf("%d hostile frames, %d connections dropped by the daemon, no panic", n, drops)
}

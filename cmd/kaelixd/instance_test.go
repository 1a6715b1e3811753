package main

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/wire"
)

// httpAddr is the HTTP listener address a running kaelixd logged.
func httpAddr(t *testing.T, p *daemonProc) string {
	t.Helper()
	m := regexp.MustCompile(`msg="kaelixd listening".* http=(\S+)`).FindStringSubmatch(p.Stderr.String())
	if m == nil {
		t.Fatalf("no HTTP address in the log:\n%s", p.Stderr)
	}
	return m[1]
}

// healthz reads GET /healthz.
func healthz(t *testing.T, addr string) wire.Health {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h wire.Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

// waitSocketReason polls /healthz until the socket rule's message
// contains want; it returns that health.
func waitSocketReason(t *testing.T, p *daemonProc, want string) wire.Health {
	t.Helper()
	addr := httpAddr(t, p)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		h := healthz(t, addr)
		for _, r := range h.Reasons {
			if r.Rule == "socket" && strings.Contains(r.Message, want) {
				return h
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("health never said %q: %+v\n%s", want, h, p.Stderr)
		}
	}
}

// TestSocketRemovedFromOutside: the control socket of a live kaelixd is
// removed, then replaced by another process's socket. Each is reported in
// health (degraded, naming the path) and the log; on SIGTERM kaelixd
// leaves the replacement alone.
func TestSocketRemovedFromOutside(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs kaelixd")
	}
	e := newStartEnv(t)
	// Huge pages off: other tests of the run may hold every huge page,
	// which health reports (degraded), and this test is about the socket.
	p := startKaelixd(t, 0, "--socket", e.socket, "--state-dir", e.state, "--shm-dir", e.shmName, "--http-port", "0", "--ephemeral", "--no-watch",
		"--hugepages", "off", "--set", "daemon.sweep_interval=50ms")
	waitListening(t, p, e.socket)
	if h := healthz(t, httpAddr(t, p)); h.Status != wire.HealthHealthy {
		t.Fatalf("not healthy at start: %+v", h)
	}
	if err := os.Remove(e.socket); err != nil {
		t.Fatal(err)
	}
	h := waitSocketReason(t, p, "control socket "+e.socket+" was removed from outside")
	if h.Status != wire.HealthDegraded {
		t.Errorf("status %q with the socket removed, want degraded: %+v", h.Status, h)
	}
	t.Logf("removed: %+v", h.Reasons)

	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: e.socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ln.SetUnlinkOnClose(false)
	h = waitSocketReason(t, p, "control socket "+e.socket+" was replaced from outside")
	t.Logf("replaced: %+v", h.Reasons)
	if !strings.Contains(p.Stderr.String(), "control socket removed or replaced from outside") {
		t.Errorf("no log line:\n%s", p.Stderr)
	}

	if err := p.Stop(15 * time.Second); err != nil {
		t.Fatalf("stop: %v\n%s", err, p.Stderr)
	}
	c, err := net.Dial("unix", e.socket)
	if err != nil {
		t.Fatalf("kaelixd removed the socket it did not bind: %v", err)
	}
	c.Close()
	os.Remove(e.socket)
}

// TestHelloTimeout: connections that never send hello hold
// daemon.max_clients places only until the hello timeout (5 s): with
// max_clients 2 taken by two silent connections a client is refused;
// once kaelixd has closed them (not before 5 s) a client is served. A
// client that said hello stays connected however long it is idle.
func TestHelloTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs kaelixd")
	}
	e := newStartEnv(t)
	p := startKaelixd(t, 0, "--socket", e.socket, "--state-dir", e.state, "--shm-dir", e.shmName, "--http-port", "0", "--ephemeral", "--no-watch",
		"--set", "daemon.max_clients=3", "--log-level", "debug")
	waitListening(t, p, e.socket)

	// One client says hello and then idles past the timeout.
	greeted, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: e.socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer greeted.Close()
	gc := wire.NewConn(greeted)
	id := uint32(0)
	call := func(typ wire.Type, body, out any) error {
		id++
		f, _ := wire.NewFrame(typ, id, body)
		if err := gc.WriteFrame(f); err != nil {
			return err
		}
		greeted.SetReadDeadline(time.Now().Add(10 * time.Second))
		rf, _, err := gc.ReadFrame()
		if err != nil {
			return err
		}
		if we := wire.ReplyError(rf); we != nil {
			return we
		}
		if out != nil {
			return wire.DecodeBody(rf, out)
		}
		return nil
	}
	// waitClients waits until kaelixd counts n clients.
	waitClients := func(n int) {
		t.Helper()
		var st wire.Status
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if err := call(wire.TypeStatus, nil, &st); err != nil {
				t.Fatal(err)
			}
			if st.Clients == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("kaelixd counts %d clients, want %d", st.Clients, n)
			}
		}
	}
	if err := call(wire.TypeHello, wire.Hello{Version: wire.Version, Name: "greeted"}, nil); err != nil {
		t.Fatal(err)
	}
	waitClients(1) // waitListening's connection is gone

	var silent []*net.UnixConn
	var opened time.Time
	for range 2 {
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: e.socket, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	opened = time.Now()
	waitClients(3)
	// Every place is taken: a client is refused.
	_, err = configShow(t, e.socket)
	if we := (*wire.Error)(nil); !errors.As(err, &we) || !strings.Contains(we.Message, "daemon.max_clients") {
		t.Fatalf("a client was not refused with every place held by silent connections: %v\n%s", err, p.Stderr)
	}
	for i, c := range silent {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := c.Read(make([]byte, 64))
		took := time.Since(opened)
		if !errors.Is(err, io.EOF) {
			t.Fatalf("silent connection %d: read %d bytes, %v after %v; want EOF (closed by kaelixd)", i, n, err, took)
		}
		if took < 4500*time.Millisecond {
			t.Errorf("silent connection %d closed after %v, before the 5 s hello timeout", i, took)
		}
		t.Logf("silent connection %d closed by kaelixd %v after it was opened", i, took.Round(time.Millisecond))
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := configShow(t, e.socket); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no client served after the silent ones were closed: %v", err)
		}
	}
	if err := call(wire.TypeList, nil, nil); err != nil {
		t.Errorf("the client that said hello was dropped while idle: %v", err)
	}
	if n := strings.Count(p.Stderr.String(), "no hello within the hello timeout; connection closed"); n != 2 {
		t.Errorf("%d debug lines for the closed connections, want 2:\n%s", n, p.Stderr)
	}
	if err := p.Stop(15 * time.Second); err != nil {
		t.Errorf("stop: %v\n%s", err, p.Stderr)
	}
}

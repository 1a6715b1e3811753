package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/wire"
)

// request sends one request (after a hello) to the kaelixd at sock and
// decodes the reply into out; a TypeError reply is returned as *wire.Error.
func request(t *testing.T, sock string, typ wire.Type, body, out any) error {
	t.Helper()
	uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	c := wire.NewConn(uc)
	defer c.Close()
	for i, req := range []struct {
		typ       wire.Type
		body, out any
	}{{wire.TypeHello, wire.Hello{Version: wire.Version, Name: "test"}, nil}, {typ, body, out}} {
		f, err := wire.NewFrame(req.typ, uint32(i+1), req.body)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
		uc.SetReadDeadline(time.Now().Add(10 * time.Second))
		rf, files, err := c.ReadFrame()
		for _, f := range files {
			f.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		if we := wire.ReplyError(rf); we != nil {
			return we
		}
		if req.out != nil {
			if err := wire.DecodeBody(rf, req.out); err != nil {
				t.Fatal(err)
			}
		}
	}
	return nil
}

// TestCorruptRegistryBinary (F5, F8) runs the real kaelixd, not
// ephemeral: a topic survives a topics.json cut mid-array (rebuilt from
// its region headers, health degraded, no region removed), and a create
// over a foreign file at a region path is refused naming it, the file
// untouched.
func TestCorruptRegistryBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs kaelixd")
	}
	e := newStartEnv(t)
	regionDir := filepath.Join("/dev/shm", e.shmName)
	args := []string{"--socket", e.socket, "--state-dir", e.state, "--shm-dir", e.shmName, "--http-port", "0", "--set", "shm.hugepages=off"}
	stop := func(p *daemonProc) {
		t.Helper()
		if err := p.Stop(30 * time.Second); err != nil {
			t.Fatalf("stop: %v\n%s", err, p.Stderr)
		}
	}
	p := startKaelixd(t, 0, args...)
	waitListening(t, p, e.socket)
	if err := request(t, e.socket, wire.TypeCreate, wire.TopicSpec{Name: "jt", Partitions: 2, Policy: wire.PolicyDropOldest}, nil); err != nil {
		t.Fatal(err)
	}
	stop(p)
	regions := snapshot(regionDir)
	if len(regions) < 4 {
		t.Fatalf("regions of jt: %q", regions)
	}
	if err := os.WriteFile(filepath.Join(e.state, "topics.json"), []byte(`{"version": 2, "topics": [`), 0o600); err != nil {
		t.Fatal(err)
	}

	p = startKaelixd(t, 0, args...)
	waitListening(t, p, e.socket)
	var ti wire.TopicInfo
	if err := request(t, e.socket, wire.TypeInfo, wire.TopicRef{Name: "jt"}, &ti); err != nil {
		t.Fatalf("jt not rebuilt: %v\n%s", err, p.Stderr)
	}
	if ti.Spec.Partitions != 2 || ti.Spec.Policy != wire.PolicyDropOldest {
		t.Errorf("jt rebuilt as %+v", ti.Spec)
	}
	var h wire.Health
	if err := request(t, e.socket, wire.TypeHealth, nil, &h); err != nil {
		t.Fatal(err)
	}
	if h.Status != wire.HealthDegraded || !slices.ContainsFunc(h.Reasons, func(r wire.HealthReason) bool { return r.Rule == "registry_rebuilt" }) {
		t.Errorf("health %s %+v, want degraded by registry_rebuilt", h.Status, h.Reasons)
	}
	if after := snapshot(regionDir); !slices.Equal(after, regions) {
		t.Errorf("region dir changed by the rebuild:\nbefore %q\nafter  %q", regions, after)
	}

	precious := filepath.Join(regionDir, "pre.p0.c")
	if err := os.WriteFile(precious, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := request(t, e.socket, wire.TypeCreate, wire.TopicSpec{Name: "pre"}, nil)
	if we := (*wire.Error)(nil); !errors.As(err, &we) || we.Code != wire.CodeConflict || !strings.Contains(we.Message, precious) {
		t.Errorf("create over a foreign file = %v, want conflict naming %s", err, precious)
	}
	if b, err := os.ReadFile(precious); err != nil || !bytes.Equal(b, []byte("precious\n")) {
		t.Errorf("foreign file now %.16q, %v", b, err)
	}
	stop(p)
	if s := p.Stderr.String(); strings.Contains(s, "stale region removed") || !strings.Contains(s, "rebuilt from the region headers") {
		t.Errorf("log:\n%s", s)
	}
	if _, err := os.Stat(precious); err != nil {
		t.Errorf("foreign file gone after stop: %v", err)
	}
}

// TestCheckConfigBareDuration (F4): --check-config refuses a bare number
// for a duration, in the file and in --set, naming the key and the fix.
func TestCheckConfigBareDuration(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "k.toml")
	os.WriteFile(f, []byte("[daemon]\nevict_stalled_after = 7\n\n[bogus]\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"--check-config", f}, &out, &errb); code != 2 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, w := range []string{f + `:2: daemon.evict_stalled_after: want a duration string`, `evict_stalled_after = "7s"`, f + ":4: bogus: unknown table"} {
		if !strings.Contains(errb.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, errb.String())
		}
	}
	errb.Reset()
	empty := filepath.Join(dir, "empty.toml")
	os.WriteFile(empty, nil, 0o600)
	if code := run([]string{"--check-config", empty, "--set", "daemon.evict_stalled_after=7"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "daemon.evict_stalled_after") || !strings.Contains(errb.String(), "no unit") {
		t.Errorf("--set evict_stalled_after=7: exit %d: %s", code, errb.String())
	}
}

package daemon_test

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// TestRestartRefusesOldRingLayout: topics whose rings were written with
// earlier ring layouts (the version word of the data area says 3 or 4)
// are not adopted at restart: the daemon names the version it found and
// the one it reads, says what to do, leaves the regions' bytes as they
// were, and adopts the other topics.
func TestRestartRefusesOldRingLayout(t *testing.T) {
	dirs := testdaemon.NewDirs(t)
	var logs testdaemon.Buffer
	start := func() *testdaemon.Daemon {
		return testdaemon.Start(t, testdaemon.WithDirs(dirs), testdaemon.Persistent(), testdaemon.WithConfig(func(c *daemon.Config) {
			c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		}))
	}
	old := map[string]uint32{"old.v3": 3, "old.v4": 4}
	d := start()
	r := dial(t, d.Config, true)
	for _, name := range []string{"old.v3", "old.v4", "current"} {
		if err := r.call(wire.TypeCreate, wire.TopicSpec{Name: name, Partitions: 1, CapacityBytes: 8192, MaxMessageBytes: 512}, nil); err != nil {
			t.Fatal(err)
		}
	}
	r.c.Close()
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	// The ring's version word is the uint32 after its magic, at the start
	// of the region's data (after the shm header).
	written := map[string][]byte{}
	for name, v := range old {
		path := filepath.Join(dirs.ShmDir(), name+".p0")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		ring := b[shm.DataOffsetBytes:]
		if binary.LittleEndian.Uint64(ring) != ringbuf.Magic || binary.LittleEndian.Uint32(ring[8:]) != ringbuf.LayoutVersion {
			t.Fatalf("data region does not start with a layout-%d ring", ringbuf.LayoutVersion)
		}
		binary.LittleEndian.PutUint32(ring[8:], v)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		written[path] = b
	}

	d = start()
	defer d.Stop()
	r = dial(t, d.Config, true)
	for name, v := range old {
		if err := r.call(wire.TypeInfo, wire.TopicRef{Name: name}, nil); code(err) != wire.CodeNotFound {
			t.Errorf("topic with a layout-%d ring: %v, want not_found", v, err)
		}
	}
	if err := r.call(wire.TypeInfo, wire.TopicRef{Name: "current"}, nil); err != nil {
		t.Fatalf("the other topic was not re-adopted: %v", err)
	}
	log := logs.String()
	for _, want := range []string{
		"incompatible layout version 3, want 5", "topic=old.v3", "kaelixctl topics create old.v3",
		"incompatible layout version 4, want 5", "topic=old.v4", "kaelixctl topics create old.v4",
		"run that release again",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the daemon's log does not say %q:\n%s", want, log)
		}
	}
	for path, b := range written {
		after, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("the old region was not left in place: %v", err)
		}
		if !bytes.Equal(after, b) {
			t.Errorf("the daemon changed %s", path)
		}
	}
}

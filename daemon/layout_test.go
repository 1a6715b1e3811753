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

// TestRestartRefusesOldRingLayout: a topic whose ring was written with an
// earlier ring layout (the version word of its data area says 4) is not
// adopted at restart: the daemon names the version it found and the one
// it reads, says what to do, leaves the region's bytes as they were, and
// adopts the other topics.
func TestRestartRefusesOldRingLayout(t *testing.T) {
	dirs := testdaemon.NewDirs(t)
	var logs lockedBuf // debuglog_test.go
	start := func() *testdaemon.Daemon {
		return testdaemon.Start(t, testdaemon.WithDirs(dirs), testdaemon.Persistent(), testdaemon.WithConfig(func(c *daemon.Config) {
			c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		}))
	}
	d := start()
	r := dial(t, d.Config, true)
	for _, name := range []string{"old.layout", "current"} {
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
	path := filepath.Join(dirs.ShmDir(), "old.layout.p0")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ring := b[shm.DataOffsetBytes:]
	if binary.LittleEndian.Uint64(ring) != ringbuf.Magic || binary.LittleEndian.Uint32(ring[8:]) != ringbuf.LayoutVersion {
		t.Fatalf("data region does not start with a layout-%d ring", ringbuf.LayoutVersion)
	}
	old := uint32(ringbuf.LayoutVersion - 1)
	binary.LittleEndian.PutUint32(ring[8:], old)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	d = start()
	defer d.Stop()
	r = dial(t, d.Config, true)
	if err := r.call(wire.TypeInfo, wire.TopicRef{Name: "old.layout"}, nil); code(err) != wire.CodeNotFound {
		t.Fatalf("topic with a layout-%d ring: %v, want not_found", old, err)
	}
	if err := r.call(wire.TypeInfo, wire.TopicRef{Name: "current"}, nil); err != nil {
		t.Fatalf("the other topic was not re-adopted: %v", err)
	}
	log := logs.String()
	for _, want := range []string{"incompatible layout version 4, want 5", "topic=old.layout", "kaelixctl topics create old.layout", "run that release again"} {
		if !strings.Contains(log, want) {
			t.Errorf("the daemon's log does not say %q:\n%s", want, log)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the old region was not left in place: %v", err)
	}
	if !bytes.Equal(after, b) {
		t.Error("the daemon changed the old region's bytes")
	}
}

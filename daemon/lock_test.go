package daemon_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// TestRegionDirLockSurvivesDeletion: the region directory of a running
// daemon is deleted with everything in it (its files, and any lock file
// one could put there), then a second daemon with another state dir is
// started on it. The second is refused, naming the first's pid; the first
// notices its files are gone, re-creates the topic in a new directory,
// says so in health, and its new files carry its own instance and the
// topic's name.
func TestRegionDirLockSurvivesDeletion(t *testing.T) {
	cfg := start(t, func(c *daemon.Config) { c.Daemon.SweepInterval = 20 * time.Millisecond })
	r := dial(t, cfg, true)
	var ti wire.TopicInfo
	if err := r.call(wire.TypeCreate, wire.TopicSpec{Name: "locked.topic", MaxSubscribers: 2, MaxGroups: 1}, &ti); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("/dev/shm", cfg.Shm.DirName)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}

	second := cfg
	second.Daemon.StateDir = t.TempDir()
	second.Daemon.SocketPath = filepath.Join(second.Daemon.StateDir, "second.sock")
	second.Logger = slog.New(slog.DiscardHandler)
	d2, err := daemon.New(second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = d2.Run(ctx)
	var ar *daemon.AlreadyRunningError
	if !errors.As(err, &ar) || !ar.SharedRegions || ar.PID != os.Getpid() || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second daemon on the deleted region directory: %v, want AlreadyRunningError naming pid %d and %s", err, os.Getpid(), dir)
	}
	t.Logf("second daemon refused: %v", err)

	// The first re-creates the topic in a new directory at the same path.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var h wire.Health
		if err := r.call(wire.TypeHealth, nil, &h); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, reason := range h.Reasons {
			found = found || reason.Rule == "region_unlinked" && strings.Contains(reason.Message, "locked.topic")
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health never reported the removed files: %+v", h)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Health names the topic as soon as it is retired; its re-creation
	// ends outside d.mu, and until then info shows it Creating, with no
	// partitions.
	for {
		ti = wire.TopicInfo{} // creating is omitted once false: do not keep an earlier reply's
		if err := r.call(wire.TypeInfo, wire.TopicRef{Name: "locked.topic"}, &ti); err != nil {
			t.Fatal(err)
		}
		if !ti.Creating && len(ti.Partitions) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the topic was never re-created: %+v", ti)
		}
		time.Sleep(20 * time.Millisecond)
	}
	sc := shm.Default()
	sc.DirName = cfg.Shm.DirName
	for _, name := range []string{ti.Partitions[0].Region, ti.Partitions[0].ConsumerRegion} {
		reg, err := shm.Open(sc, name, shm.AttachOptions{ReadOnly: true, Label: "locked.topic"})
		if err != nil {
			t.Fatalf("re-created region %s: %v", name, err)
		}
		if reg.Header().Instance == 0 || reg.Header().CreatorPID != int64(os.Getpid()) {
			t.Errorf("re-created region %s header %+v: not the first daemon's", name, reg.Header())
		}
		reg.Close()
	}
}

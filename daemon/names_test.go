package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// topicOfLen returns a valid topic name of n bytes ending in tail.
func topicOfLen(n int, tail string) string {
	return strings.Repeat("n", n-len(tail)) + tail
}

// TestRegionNamesEveryLength: every valid topic name length maps to valid
// region file names (the longest suffix included), validation accepts it,
// and 250 bytes is refused with the invalid-name code. Names that share
// all but their last byte get distinct file names at every length, and
// a digested base never equals a short topic's name.
func TestRegionNamesEveryLength(t *testing.T) {
	if maxSuffixBytes != len(".p"+fmt.Sprint(wire.MaxPartitions-1)+".s"+fmt.Sprint(wire.MaxFDs-wire.RegionDescriptors-1)) {
		t.Fatalf("maxSuffixBytes %d does not cover partition %d and slot %d", maxSuffixBytes, wire.MaxPartitions-1, wire.MaxFDs-wire.RegionDescriptors-1)
	}
	for n := 1; n <= wire.MaxTopicNameBytes; n++ {
		a, b := topicOfLen(n, "a"), topicOfLen(n, "b")
		if err := validateTopicName(a); err != nil {
			t.Fatalf("length %d: %v", n, err)
		}
		for _, name := range []string{regionName(a, 63, false), regionName(a, 63, true), slotRegionName(a, 63, 4093, 4094), slotRegionName(a, 63, 4093, 32)} {
			if err := shm.ValidateName(name); err != nil {
				t.Fatalf("length %d: region name %q: %v", n, name, err)
			}
		}
		if regionBase(a) == regionBase(b) {
			t.Fatalf("length %d: %q and %q share region base %q", n, a, b, regionBase(a))
		}
		if long := regionBase(a); len(a) > fullNameMaxBytes && (!strings.Contains(long, "..") || wire.ValidateTopicName(long) == nil) {
			t.Fatalf("length %d: digested base %q could be a topic's own name", n, long)
		}
	}
	if err := validateTopicName(topicOfLen(wire.MaxTopicNameBytes+1, "a")); err == nil || err.Code != wire.CodeInvalidName {
		t.Fatalf("250 bytes: %v, want code %s", err, wire.CodeInvalidName)
	}
}

// TestEqualDigestsNeverShareFile forces every long name's digest to be the
// same: two 249-byte topics that differ only in their last byte then map
// to the same file names. The second create is refused (conflict, naming
// the file and the topic it holds), the first topic's files are untouched
// and still labelled with its name, and once the first is deleted the
// second can be created.
func TestEqualDigestsNeverShareFile(t *testing.T) {
	saved := nameDigest
	nameDigest = func(string) string { return strings.Repeat("0", digestHexBytes) }
	defer func() { nameDigest = saved }()

	d := startInternal(t)
	a, b := topicOfLen(wire.MaxTopicNameBytes, "a"), topicOfLen(wire.MaxTopicNameBytes, "b")
	if regionName(a, 0, false) != regionName(b, 0, false) {
		t.Fatal("the forced digest did not make the names collide")
	}
	ta, _, err := d.createTopic(wire.TopicSpec{Name: a, Partitions: 2}, false)
	if err != nil {
		t.Fatalf("create %d-byte topic: %v", len(a), err)
	}
	before := ta.parts[0].region.Header()
	_, _, err = d.createTopic(wire.TopicSpec{Name: b, Partitions: 2}, false)
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeConflict || !strings.Contains(we.Message, "already holds topic") {
		t.Fatalf("create of the colliding topic = %v, want a conflict naming the file's topic", err)
	}
	d.mu.Lock()
	_, ok := d.topics[b]
	d.mu.Unlock()
	if ok {
		t.Fatal("colliding topic registered")
	}
	for _, p := range ta.parts {
		if err := p.check(); err != nil {
			t.Fatalf("first topic's regions damaged: %v", err)
		}
		for _, r := range p.regions() {
			o, err := shm.Open(d.shm, r.Name(), shm.AttachOptions{ReadOnly: true, Label: a})
			if err != nil {
				t.Fatalf("first topic's file %s: %v", r.Path(), err)
			}
			o.Close()
			if _, err := shm.Open(d.shm, r.Name(), shm.AttachOptions{ReadOnly: true, Label: b}); !errors.Is(err, shm.ErrLabelMismatch) {
				t.Fatalf("open as the other topic = %v, want ErrLabelMismatch", err)
			}
		}
	}
	if h := ta.parts[0].region.Header(); h != before || h.Label != a || h.Instance != d.instance {
		t.Fatalf("first topic's header now %+v (label %d bytes), was %+v", h, len(h.Label), before)
	}
	if err := d.deleteTopic(a, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.createTopic(wire.TopicSpec{Name: b, Partitions: 2}, false); err != nil {
		t.Fatalf("create after the first was deleted: %v", err)
	}
}

// startInternal runs a daemon in-process (no socket clients needed).
func startInternal(t *testing.T) *Daemon {
	t.Helper()
	dir := t.TempDir()
	cfg := Default()
	cfg.Daemon.SocketPath = filepath.Join(dir, "k.sock")
	cfg.Daemon.StateDir = dir
	cfg.Shm.DirName = fmt.Sprintf("kaelix-itest-%d-%s", os.Getpid(), filepath.Base(dir))
	cfg.RemoveOnExit = true
	cfg.Logger = slog.New(slog.DiscardHandler)
	t.Cleanup(func() { os.RemoveAll(filepath.Join("/dev/shm", cfg.Shm.DirName)) })
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case <-d.Ready():
	case err := <-done:
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return d
}

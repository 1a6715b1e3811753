package daemon_test

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/daemon/config"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// TestTopicSizeLimit: a topic whose regions exceed shm.max_topic_bytes is
// refused with CodeTooLarge and the figures, Force creates it anyway, and
// a small one is not refused. The limit is a small fake one, so nothing
// big is allocated.
func TestTopicSizeLimit(t *testing.T) {
	cfg := start(t, func(c *daemon.Config) { c.Shm.MaxTopicBytes = config.Size(4 << 20); c.Shm.HugePages = shm.PolicyOff })
	r := dial(t, cfg, true)
	big := wire.TopicSpec{Name: "size.big", Partitions: 2, CapacityBytes: 4 << 20}
	err := r.call(wire.TypeCreate, big, nil)
	if code(err) != wire.CodeTooLarge {
		t.Fatalf("8 MiB of rings under a 4 MiB limit: %v, want %s", err, wire.CodeTooLarge)
	}
	msg := err.Error()
	t.Log(msg)
	// Two partitions of 4 MiB rings, plus headers, consumer and slot
	// regions: a little over 8 MiB in all, a little over 4 MiB each.
	m := regexp.MustCompile(`would take ([0-9.]+)MiB \(2 × ([0-9.]+)MiB per partition, all on /dev/shm\)`).FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("no figures in %q", msg)
	}
	if total, _ := strconv.ParseFloat(m[1], 64); total < 8 || total > 9 {
		t.Errorf("total %s MiB, want 8..9", m[1])
	}
	if per, _ := strconv.ParseFloat(m[2], 64); per < 4 || per > 4.5 {
		t.Errorf("per partition %s MiB, want 4..4.5", m[2])
	}
	for _, w := range []string{`topic "size.big"`, "more than shm.max_topic_bytes = 4MiB", "--force"} {
		if !strings.Contains(msg, w) {
			t.Errorf("message lacks %q: %s", w, msg)
		}
	}
	var list wire.TopicList
	if err := r.call(wire.TypeList, nil, &list); err != nil || len(list.Topics) != 0 {
		t.Fatalf("a refused topic was registered: %v %+v", err, list)
	}
	// Open-or-create is checked too.
	if err := r.call(wire.TypeOpenOrCreate, big, nil); code(err) != wire.CodeTooLarge {
		t.Errorf("open-or-create: %v", err)
	}
	var ti wire.TopicInfo
	if err := r.call(wire.TypeCreate, wire.Create{TopicSpec: big, Force: true}, &ti); err != nil {
		t.Fatalf("forced create: %v", err)
	}
	if ti.Spec.Name != big.Name || len(ti.Partitions) != 2 {
		t.Errorf("forced create made %+v", ti.Spec)
	}
	if err := r.call(wire.TypeCreate, wire.TopicSpec{Name: "size.small", CapacityBytes: 64 << 10}, nil); err != nil {
		t.Errorf("a 64 KiB topic under a 4 MiB limit: %v", err)
	}
}

// TestTopicSizeShare: with a tiny shm.max_topic_share every topic is more
// than that share of MemAvailable and of the tmpfs's free space; the
// message gives both figures. Share 0 turns the check off.
func TestTopicSizeShare(t *testing.T) {
	cfg := start(t, func(c *daemon.Config) { c.Shm.MaxTopicShare = 1e-7; c.Shm.HugePages = shm.PolicyOff })
	r := dial(t, cfg, true)
	err := r.call(wire.TypeCreate, wire.TopicSpec{Name: "share.one", CapacityBytes: 1 << 20}, nil)
	if code(err) != wire.CodeTooLarge {
		t.Fatalf("create under a 1e-7 share: %v", err)
	}
	msg := err.Error()
	t.Log(msg)
	for _, re := range []string{`more than shm.max_topic_share = 1e-07 of MemAvailable [0-9.]+[KMGT]iB \([0-9.]+[KMG]?i?B\)`,
		`more than shm.max_topic_share = 1e-07 of the [0-9.]+[KMGT]iB free on /dev/shm \([0-9.]+[KMG]?i?B\)`} {
		if !regexp.MustCompile(re).MatchString(msg) {
			t.Errorf("message does not match %s: %s", re, msg)
		}
	}
	off := start(t, func(c *daemon.Config) { c.Shm.MaxTopicShare = 0 })
	if err := dial(t, off, true).call(wire.TypeCreate, wire.TopicSpec{Name: "share.off", CapacityBytes: 1 << 20}, nil); err != nil {
		t.Errorf("share 0 (off): %v", err)
	}
}

// TestTopicSizeHugePages, on the single-node fixture (16 free 2 MiB
// pages on node 0, 32 MiB): with hugepages = auto a topic the pool holds
// is predicted on huge pages and not held to the share (the pool is there
// for regions); one it cannot hold is predicted on the tmpfs, where the
// share of MemAvailable applies. shm.max_topic_bytes bounds the total
// whatever the backing.
func TestTopicSizeHugePages(t *testing.T) {
	fixture := filepath.Join("..", "numa", "testdata", "single-node")
	cfg := start(t, func(c *daemon.Config) {
		c.HostRoot = fixture
		c.Shm.HugePages = shm.PolicyAuto
		c.Shm.MaxTopicShare = 1e-7
	})
	r := dial(t, cfg, true)
	// 10 partitions × (1 MiB ring + headers, at least half a huge page:
	// shm.SmallForHugePage): 20 MiB of the 32 MiB pool,
	// not refused for it; only the consumer and slot regions on the tmpfs
	// are over the 1e-7 share of MemAvailable.
	err := r.call(wire.TypeCreate, wire.TopicSpec{Name: "huge.fits", Partitions: 10, CapacityBytes: 1 << 20}, nil)
	if code(err) != wire.CodeTooLarge || !strings.Contains(err.Error(), " per partition, 20MiB of it on huge pages and ") || strings.Contains(err.Error(), "huge pages (") {
		t.Fatalf("auto, fits the pool: %v", err)
	}
	t.Log(err)
	// 64 KiB rings are too small for huge pages (shm.SmallForHugePage):
	// predicted on the tmpfs, though the pool would hold them.
	err = r.call(wire.TypeCreate, wire.TopicSpec{Name: "huge.small", Partitions: 10, CapacityBytes: 64 << 10}, nil)
	if code(err) != wire.CodeTooLarge || !strings.Contains(err.Error(), "all on /dev/shm") {
		t.Fatalf("auto, small rings: %v", err)
	}
	// 20 partitions: 40 MiB, more than the pool: predicted all on the tmpfs.
	err = r.call(wire.TypeCreate, wire.TopicSpec{Name: "huge.over", Partitions: 20, CapacityBytes: 1 << 20}, nil)
	if code(err) != wire.CodeTooLarge || !strings.Contains(err.Error(), "all on /dev/shm") {
		t.Fatalf("auto, over the pool: %v", err)
	}
	// A 0.5 share, 30 of the 32 MiB of huge pages: not refused by the
	// check (creating it may still fail on this host's real pool, in shm).
	half := start(t, func(c *daemon.Config) {
		c.HostRoot = fixture
		c.Shm.HugePages = shm.PolicyAuto
	})
	err = dial(t, half, true).call(wire.TypeCreate, wire.TopicSpec{Name: "huge.most", Partitions: 15, CapacityBytes: 1 << 20}, nil)
	if code(err) == wire.CodeTooLarge {
		t.Fatalf("30 of 32 MiB of huge pages refused by the share: %v", err)
	}
	bound := start(t, func(c *daemon.Config) {
		c.HostRoot = fixture
		c.Shm.HugePages = shm.PolicyAuto
		c.Shm.MaxTopicShare = 0
		c.Shm.MaxTopicBytes = config.Size(20 << 20)
	})
	err = dial(t, bound, true).call(wire.TypeCreate, wire.TopicSpec{Name: "huge.max", Partitions: 10, CapacityBytes: 1 << 20}, nil)
	if code(err) != wire.CodeTooLarge || !strings.Contains(err.Error(), "more than shm.max_topic_bytes = 20MiB") {
		t.Fatalf("10 partitions (20 MiB of huge pages plus the tmpfs part) under a 20 MiB bound: %v", err)
	}
}

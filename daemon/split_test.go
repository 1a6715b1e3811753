package daemon_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// attachFiles attaches as role and returns the reply and its descriptors.
func (r *rawConn) attachFiles(topic string, role wire.Role, group ...uint32) (wire.AttachReply, []*os.File) {
	r.t.Helper()
	r.id++
	a := wire.Attach{Topic: topic, Role: role}
	if len(group) > 0 {
		a.Group = group[0]
	}
	f, err := wire.NewFrame(wire.TypeAttach, r.id, a)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.c.WriteFrame(f); err != nil {
		r.t.Fatal(err)
	}
	r.c.UnixConn().SetReadDeadline(time.Now().Add(10 * time.Second))
	rf, files, err := r.c.ReadFrame()
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		for _, f := range files {
			f.Close()
		}
	})
	if we := wire.ReplyError(rf); we != nil {
		r.t.Fatal(we)
	}
	var ar wire.AttachReply
	if err := wire.DecodeBody(rf, &ar); err != nil {
		r.t.Fatal(err)
	}
	return ar, files
}

func sameFile(t *testing.T, f *os.File, path string) bool {
	t.Helper()
	var a, b unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(path, &b); err != nil {
		t.Fatal(err)
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

func accessMode(t *testing.T, f *os.File) int {
	t.Helper()
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fl & unix.O_ACCMODE
}

// TestAttachDescriptors: each partition has a data region, a consumer
// region and one slot region per subscriber slot; an attach reply carries
// them per partition, in order. Publishers get all read-write;
// subscribers get the data region through a descriptor opened O_RDONLY
// (no writable mapping, no ftruncate), the consumer region read-write,
// and only the slot reserved for them, read-write: no descriptor of any
// other consumer's cursor. Data and slot region files never get
// group/other write bits.
func TestAttachDescriptors(t *testing.T) {
	cfg := start(t, nil)
	r := dial(t, cfg, true)
	var ti wire.TopicInfo
	const subs = 3
	if err := r.call(wire.TypeCreate, wire.TopicSpec{Name: "split.fds", Partitions: 2, CapacityBytes: 8192, MaxMessageBytes: 512, Mode: 0o666, MaxSubscribers: subs}, &ti); err != nil {
		t.Fatal(err)
	}
	for i, p := range ti.Partitions {
		if p.Region != fmt.Sprintf("split.fds.p%d", i) || p.ConsumerRegion != p.Region+".c" || p.ConsumerSizeBytes == 0 || len(p.SlotPaths(ti.Spec.MaxSubscribers)) != subs+ti.Spec.MaxGroups {
			t.Errorf("partition %d: regions %q, %q (%d bytes), %d slot paths", i, p.Region, p.ConsumerRegion, p.ConsumerSizeBytes, len(p.SlotPaths(ti.Spec.MaxSubscribers)))
		}
		files := []struct {
			path string
			mode os.FileMode
		}{{p.Path, 0o644}, {p.ConsumerPath, 0o666}}
		for k, sp := range p.SlotPaths(ti.Spec.MaxSubscribers) {
			want := fmt.Sprintf("split.fds.p%d.s%d", i, k)
			if k >= subs {
				want = fmt.Sprintf("split.fds.p%d.g%d", i, k-subs)
			}
			if filepath.Base(sp) != want {
				t.Errorf("slot %d path %s", k, sp)
			}
			files = append(files, struct {
				path string
				mode os.FileMode
			}{sp, 0o644})
		}
		for _, f := range files {
			st, err := os.Stat(f.path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != f.mode {
				t.Errorf("%s: mode %v, want %v", f.path, st.Mode().Perm(), f.mode)
			}
		}
	}
	for _, role := range []wire.Role{wire.RolePublisher, wire.RoleSubscriber, wire.RoleSubscriber} {
		ar, files := r.attachFiles("split.fds", role)
		per := wire.RegionDescriptors + subs + ti.Spec.MaxGroups
		if role == wire.RoleSubscriber {
			per = wire.RegionDescriptors + 1
			if len(ar.Slots) != 2 {
				t.Fatalf("subscriber: reserved slots %v, want one per partition", ar.Slots)
			}
		}
		if len(files) != per*len(ar.Partitions) || len(ar.Partitions) != 2 || len(ar.Descriptors) != 2 || ar.Descriptors[0] != per {
			t.Fatalf("%s: %d descriptors (%v) for partitions %v", role, len(files), ar.Descriptors, ar.Partitions)
		}
		for j, i := range ar.Partitions {
			group := files[per*j : per*(j+1)]
			data, cons, slots := group[0], group[1], group[2:]
			p := ti.Partitions[i]
			if !sameFile(t, data, p.Path) || !sameFile(t, cons, p.ConsumerPath) {
				t.Fatalf("%s partition %d: descriptors are not the data and consumer regions", role, i)
			}
			for k, f := range slots {
				want := p.SlotPaths(ti.Spec.MaxSubscribers)[k]
				if role == wire.RoleSubscriber {
					want = p.SlotPaths(ti.Spec.MaxSubscribers)[ar.Slots[j]]
				}
				if !sameFile(t, f, want) {
					t.Fatalf("%s partition %d: slot descriptor %d is not %s", role, i, k, want)
				}
				if m := accessMode(t, f); m != unix.O_RDWR {
					t.Errorf("%s partition %d: slot descriptor mode %#o, want O_RDWR", role, i, m)
				}
			}
			if m := accessMode(t, cons); m != unix.O_RDWR {
				t.Errorf("%s partition %d: consumer descriptor mode %#o, want O_RDWR", role, i, m)
			}
			want := unix.O_RDWR
			if role == wire.RoleSubscriber {
				want = unix.O_RDONLY
			}
			if m := accessMode(t, data); m != want {
				t.Errorf("%s partition %d: data descriptor mode %#o, want %#o", role, i, m, want)
			}
			if role != wire.RoleSubscriber {
				continue
			}
			if b, err := unix.Mmap(int(data.Fd()), 0, int(p.SizeBytes), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != unix.EACCES {
				if err == nil {
					unix.Munmap(b)
				}
				t.Errorf("subscriber: writable mapping of the data region: %v, want EACCES", err)
			}
			if err := unix.Ftruncate(int(data.Fd()), 0); err == nil {
				t.Errorf("subscriber: ftruncate of the data region succeeded")
			}
			reg, err := shm.AttachFile(data, shm.AttachOptions{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			creg, err := shm.AttachFile(cons, shm.AttachOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sreg, err := shm.AttachFile(slots[0], shm.AttachOptions{})
			if err != nil {
				t.Fatal(err)
			}
			err = shm.Guard(func() error {
				areas := make([]ringbuf.SlotArea, subs+ti.Spec.MaxGroups)
				areas[ar.Slots[j]] = ringbuf.SlotArea{Mem: sreg.Data(), Writable: true}
				ring, err := ringbuf.Attach(reg.Data(), creg.Data(), areas, true)
				if err != nil {
					return err
				}
				sub, err := ring.NewSubscriber(ringbuf.SubscriberOptions{Slot: ar.Slots[j] + 1})
				if err != nil {
					return err
				}
				return sub.Close()
			})
			reg.Close()
			creg.Close()
			sreg.Close()
			if err != nil {
				t.Errorf("subscriber on the read-only data mapping and its own slot: %v", err)
			}
		}
	}
	// A queue-group member gets its own slot and its group's, no other:
	// two members of group 7 share one group slot, group 8 gets another.
	var seen []int
	for _, g := range []uint32{7, 7, 8} {
		ar, files := r.attachFiles("split.fds", wire.RoleSubscriber, g)
		per := wire.RegionDescriptors + 2
		if len(files) != per*2 || len(ar.GroupSlots) != 2 || ar.Descriptors[0] != per {
			t.Fatalf("group %d member: %d descriptors (%v), group slots %v", g, len(files), ar.Descriptors, ar.GroupSlots)
		}
		for j := range ar.Partitions {
			p := ti.Partitions[ar.Partitions[j]]
			if !sameFile(t, files[per*j+3], p.SlotPaths(ti.Spec.MaxSubscribers)[subs+ar.GroupSlots[j]]) {
				t.Fatalf("group %d member, partition %d: fourth descriptor is not its group's slot", g, j)
			}
		}
		seen = append(seen, ar.GroupSlots[0])
	}
	if seen[0] != seen[1] || seen[0] == seen[2] {
		t.Fatalf("group slots of members of groups 7, 7, 8: %v; want the first two equal, the third different", seen)
	}
}

// TestRestartSplitRegions: a restarted daemon re-adopts both regions of
// every partition (a missing pair is recreated empty), leaves a topic of
// the old one-region layout unadopted with its files in place for one
// run, and removes them as stale on the next start.
func TestRestartSplitRegions(t *testing.T) {
	dirs := testdaemon.NewDirs(t) // its Cleanup also empties hugetlbfs, where data regions may be
	dir, shmDir := dirs.StateDir, dirs.ShmDirName
	base := dirs.ShmDir()
	run := func(remove bool, f func(cfg daemon.Config)) {
		t.Helper()
		d := testdaemon.Start(t, testdaemon.WithDirs(dirs), testdaemon.WithConfig(func(c *daemon.Config) {
			c.RemoveOnExit = remove
		}))
		f(d.Config)
		if err := d.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(base, name))
		return err == nil
	}
	var before wire.TopicInfo
	run(false, func(cfg daemon.Config) {
		r := dial(t, cfg, true)
		for _, name := range []string{"keep.a", "keep.b"} {
			if err := r.call(wire.TypeCreate, wire.TopicSpec{Name: name, Partitions: 2, CapacityBytes: 8192, MaxMessageBytes: 512}, &before); err != nil {
				t.Fatal(err)
			}
		}
	})
	// keep.b loses a consumer region; a topic of the old layout appears
	// in the registry, with its one region per partition.
	if err := os.Remove(filepath.Join(base, "keep.b.p1.c")); err != nil {
		t.Fatal(err)
	}
	sc := shm.Default()
	sc.TmpfsRoot, sc.DirName, sc.HugePages = "/dev/shm", shmDir, shm.PolicyOff
	old, err := shm.Create(sc, "legacy.p0", shm.CreateOptions{SizeBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	// The start of a layout-3 ring: its magic, then its version.
	binary.LittleEndian.PutUint64(old.Data(), ringbuf.Magic)
	binary.LittleEndian.PutUint32(old.Data()[8:], 3)
	old.Close()
	path := filepath.Join(dir, "topics.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st["version"] != float64(2) {
		t.Fatalf("state file version %v, want 2", st["version"])
	}
	st["topics"] = append(st["topics"].([]any), map[string]any{
		"spec":       map[string]any{"name": "legacy", "partitions": 1, "capacity_bytes": 8192, "max_message_bytes": 512},
		"created_ns": 1,
		"regions":    []string{"legacy.p0"},
	})
	if b, err = json.Marshal(st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	run(false, func(cfg daemon.Config) {
		r := dial(t, cfg, true)
		for _, name := range []string{"keep.a", "keep.b"} {
			var ti wire.TopicInfo
			if err := r.call(wire.TypeInfo, wire.TopicRef{Name: name}, &ti); err != nil {
				t.Fatalf("%s not re-adopted: %v", name, err)
			}
			for _, p := range ti.Partitions {
				if len(p.SlotPaths(ti.Spec.MaxSubscribers)) == 0 {
					t.Errorf("%s partition %d: no slot regions", name, p.Index)
				}
				for _, path := range append([]string{p.Path, p.ConsumerPath}, p.SlotPaths(ti.Spec.MaxSubscribers)...) {
					if _, err := os.Stat(path); err != nil {
						t.Errorf("%s partition %d: %v", name, p.Index, err)
					}
				}
			}
			_, files := r.attachFiles(name, wire.RoleSubscriber)
			if len(files) != 2*(wire.RegionDescriptors+1) {
				t.Fatalf("%s: %d descriptors, want data, consumer and one slot per partition", name, len(files))
			}
		}
		if err := r.call(wire.TypeInfo, wire.TopicRef{Name: "legacy"}, nil); code(err) != wire.CodeNotFound {
			t.Errorf("old-layout topic: %v, want not_found", err)
		}
		if !exists("legacy.p0") {
			t.Errorf("old-layout region removed on the first start; want it left for an operator")
		}
	})
	run(true, func(cfg daemon.Config) {
		if exists("legacy.p0") {
			t.Errorf("old-layout region not removed as stale on the next start")
		}
		if !exists("keep.a.p0.c") || !exists("keep.b.p1.c") {
			t.Errorf("consumer regions missing after restart")
		}
	})
}

// A topic bound to a NUMA node the host does not have is a bad
// parameter (invalid_spec), not a failed allocation.
func TestCreateOnMissingNode(t *testing.T) {
	cfg := start(t, nil)
	r := dial(t, cfg, true)
	err := r.call(wire.TypeCreate, wire.TopicSpec{Name: "node.missing", BindNode: true, Node: 4095}, nil)
	if code(err) != wire.CodeInvalidSpec || !strings.Contains(err.Error(), "NUMA nodes are") {
		t.Fatalf("create on node 4095: %v, want invalid_spec naming the host's nodes", err)
	}
}

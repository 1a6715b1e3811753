package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// stateHarness runs non-ephemeral daemons one after the other on one
// state dir and one region dir (tmpfs only, so the paths are known).
type stateHarness struct {
	t      *testing.T
	dir    string // state dir
	shmDir string // region dir name
	logs   *testdaemon.Buffer
}

func newStateHarness(t *testing.T) *stateHarness {
	return &stateHarness{t: t, dir: t.TempDir(), shmDir: testdaemon.NewDirs(t).ShmDirName}
}

func (h *stateHarness) regionPath(name string) string {
	return filepath.Join("/dev/shm", h.shmDir, name)
}

// run starts a daemon, calls f with a connected client and stops it. It
// returns Run's error if the daemon did not start (f is not called).
func (h *stateHarness) run(f func(r *rawConn)) error {
	h.t.Helper()
	cfg := daemon.Default()
	cfg.Daemon.SocketPath, cfg.Daemon.StateDir, cfg.Shm.DirName = filepath.Join(h.dir, "s.sock"), h.dir, h.shmDir
	cfg.Shm.HugePages = shm.PolicyOff
	h.logs = &testdaemon.Buffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(h.logs, nil))
	d, err := daemon.New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case <-d.Ready():
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		h.t.Fatal("daemon neither ready nor failed after 30 s")
	}
	f(dial(h.t, cfg, true))
	cancel()
	if err := <-done; err != nil {
		h.t.Fatal(err)
	}
	return nil
}

// files lists the region dir with each file's content digest, to prove
// that nothing was removed or replaced.
func (h *stateHarness) files() map[string]string {
	h.t.Helper()
	ents, err := os.ReadDir(filepath.Join("/dev/shm", h.shmDir))
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		if e.Name()[0] == '.' {
			continue
		}
		b, err := os.ReadFile(h.regionPath(e.Name()))
		if err != nil {
			h.t.Fatal(err)
		}
		out[e.Name()] = fmt.Sprintf("%d bytes, header %x", len(b), b[:min(len(b), 512)])
	}
	return out
}

var rebuildSpecs = []wire.TopicSpec{
	{Name: "jt", Partitions: 3, CapacityBytes: 64 << 10, MaxMessageBytes: 1024, Policy: wire.PolicyDropOldest,
		MaxPublishers: 4, MaxSubscribers: 5, MaxGroups: 2, Mode: 0o640},
	{Name: "sp", Kind: wire.KindSPSC, Policy: wire.PolicyReject, CapacityBytes: 16 << 10},
	{Name: strings.Repeat("L", wire.MaxTopicNameBytes)}, // file names abbreviated: only the header has the name
}

// setupTopics creates rebuildSpecs and two files that are not regions
// under region-like names, and returns the topics' infos by name.
func (h *stateHarness) setupTopics() map[string]wire.TopicInfo {
	h.t.Helper()
	infos := map[string]wire.TopicInfo{}
	if err := h.run(func(r *rawConn) {
		for _, s := range rebuildSpecs {
			if err := r.call(wire.TypeCreate, s, nil); err != nil {
				h.t.Fatalf("create %.20s: %v", s.Name, err)
			}
			var ti wire.TopicInfo
			if err := r.call(wire.TypeInfo, wire.TopicRef{Name: s.Name}, &ti); err != nil {
				h.t.Fatal(err)
			}
			infos[s.Name] = ti
		}
	}); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(h.regionPath("precious.p0"), []byte("precious\n"), 0o600); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(h.regionPath("big.p0.c"), bytes.Repeat([]byte("x"), 8192), 0o600); err != nil {
		h.t.Fatal(err)
	}
	return infos
}

// registryMissing stands for a topics.json removed (not corrupt) in the
// registry tests.
const registryMissing = "<missing>"

// TestCorruptRegistryRebuilt (F5): with topics.json truncated mid-array,
// emptied, of an unknown version or missing, kaelixd rebuilds every topic
// from the region headers with the same spec and creation time, removes
// no file and changes none (foreign files included), reports health
// degraded with the reason, and keeps a bad file as topics.json.bad.
func TestCorruptRegistryRebuilt(t *testing.T) {
	for _, bad := range []string{`{"version": 2, "topics": [`, ``, `{"version": 99, "topics": []}`, registryMissing} {
		t.Run(fmt.Sprintf("%q", bad), func(t *testing.T) {
			h := newStateHarness(t)
			infos := h.setupTopics()
			before := h.files()
			// A plain restart keeps the foreign files too.
			if err := h.run(func(*rawConn) {}); err != nil {
				t.Fatal(err)
			}
			if after := h.files(); !mapsEqual(after, before) {
				t.Fatalf("plain restart changed the region dir:\n%v\nwant\n%v", keys(after), keys(before))
			}
			state := filepath.Join(h.dir, "topics.json")
			h.spoilRegistry(state, bad)
			err := h.run(func(r *rawConn) {
				var list wire.TopicList
				if err := r.call(wire.TypeList, nil, &list); err != nil {
					t.Fatal(err)
				}
				if len(list.Topics) != len(rebuildSpecs) {
					t.Errorf("rebuilt %d topics, want %d", len(list.Topics), len(rebuildSpecs))
				}
				for name, want := range infos {
					var ti wire.TopicInfo
					if err := r.call(wire.TypeInfo, wire.TopicRef{Name: name}, &ti); err != nil {
						t.Fatalf("topic %.20s not rebuilt: %v", name, err)
					}
					if ti.Spec != want.Spec || ti.CreatedNS != want.CreatedNS {
						t.Errorf("topic %.20s rebuilt as %+v created %d, want %+v created %d", name, ti.Spec, ti.CreatedNS, want.Spec, want.CreatedNS)
					}
				}
				var hl wire.Health
				if err := r.call(wire.TypeHealth, nil, &hl); err != nil {
					t.Fatal(err)
				}
				found := false
				for _, rs := range hl.Reasons {
					found = found || rs.Rule == "registry_rebuilt" && strings.Contains(rs.Message, state) &&
						strings.Contains(rs.Message, "missing") == (bad == registryMissing)
				}
				if hl.Status != wire.HealthDegraded || !found {
					t.Errorf("health %s %+v, want degraded with a registry_rebuilt reason naming %s", hl.Status, hl.Reasons, state)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(h.logs.String(), "stale region removed") {
				t.Errorf("a region was removed as stale:\n%s", h.logs.String())
			}
			if after := h.files(); !mapsEqual(after, before) {
				t.Fatalf("rebuild changed the region dir:\n%v\nwant\n%v", keys(after), keys(before))
			}
			if b, err := os.ReadFile(state + ".bad"); bad != registryMissing && (err != nil || string(b) != bad) {
				t.Errorf("topics.json.bad = %q, %v; want the bad file", b, err)
			} else if bad == registryMissing && err == nil {
				t.Errorf("topics.json.bad = %q for a missing registry; want none", b)
			}
			// The rebuilt registry was saved: the next start is healthy
			// and adopts the same topics.
			if err := h.run(func(r *rawConn) {
				var hl wire.Health
				if err := r.call(wire.TypeHealth, nil, &hl); err != nil {
					t.Fatal(err)
				}
				for _, rs := range hl.Reasons {
					if rs.Rule == "registry_rebuilt" {
						t.Errorf("registry_rebuilt still reported after a clean restart: %+v", rs)
					}
				}
				var list wire.TopicList
				if err := r.call(wire.TypeList, nil, &list); err != nil || len(list.Topics) != len(rebuildSpecs) {
					t.Errorf("after the rebuild, restart lists %d topics (%v), want %d", len(list.Topics), err, len(rebuildSpecs))
				}
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCorruptRegistryNotRebuildable (F5): when a region cannot be placed
// (a partition's consumer region missing, a region header corrupt),
// kaelixd refuses to start with an error naming the registry and the
// file, removes nothing and leaves topics.json as it was.
func TestCorruptRegistryNotRebuildable(t *testing.T) {
	for _, c := range []struct {
		name   string
		damage func(h *stateHarness) string // returns the file the error must name
	}{
		{"consumer region missing", func(h *stateHarness) string {
			p := h.regionPath("jt.p1.c")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"header corrupt", func(h *stateHarness) string {
			p := h.regionPath("jt.p2")
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte{0xff, 0xff}, 40); err != nil {
				t.Fatal(err)
			}
			return p
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newStateHarness(t)
			h.setupTopics()
			path := c.damage(h)
			before := h.files()
			state := filepath.Join(h.dir, "topics.json")
			for _, bad := range []string{`{"version": 2, "topics": [`, registryMissing} {
				h.spoilRegistry(state, bad)
				err := h.run(func(*rawConn) { t.Error("daemon started on an unrebuildable registry") })
				if err == nil || !strings.Contains(err.Error(), state) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "Move that file") ||
					strings.Contains(err.Error(), "missing,") != (bad == registryMissing) {
					t.Fatalf("start with registry %q = %v, want an error naming %s and %s and what to do", bad, err, state, path)
				}
				if after := h.files(); !mapsEqual(after, before) {
					t.Fatalf("refused start changed the region dir:\n%v\nwant\n%v", keys(after), keys(before))
				}
				if b, err := os.ReadFile(state); bad != registryMissing && (err != nil || string(b) != bad) {
					t.Errorf("topics.json = %q, %v; want it left as it was", b, err)
				} else if bad == registryMissing && err == nil {
					t.Errorf("topics.json = %q after a refused start; want it still missing", b)
				}
			}
		})
	}
}

// spoilRegistry writes bad over the registry at state, or removes it
// (registryMissing).
func (h *stateHarness) spoilRegistry(state, bad string) {
	h.t.Helper()
	if bad == registryMissing {
		if err := os.Remove(state); err != nil && !os.IsNotExist(err) {
			h.t.Fatal(err)
		}
		return
	}
	if err := os.WriteFile(state, []byte(bad), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// TestCreateNeverReplacesFile (F8, issue 16.3): a file at a region's path
// that is not a Kaelix region, or that holds another topic, makes the
// create fail with conflict naming the path; the file keeps its content
// and the topic leaves no file behind.
func TestCreateNeverReplacesFile(t *testing.T) {
	h := newStateHarness(t)
	if err := h.run(func(r *rawConn) {
		if err := r.call(wire.TypeCreate, wire.TopicSpec{Name: "other"}, nil); err != nil {
			t.Fatal(err)
		}
		otherC, err := os.ReadFile(h.regionPath("other.p0.c"))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			topic, file string
			content     []byte
			want        string
		}{
			{"pre", "pre.p0.c", []byte("precious\n"), "is not a Kaelix region"},
			{"pre2", "pre2.p0", bytes.Repeat([]byte("p"), 3*4096), "is not a Kaelix region"},
			{"pre3", "pre3.p0.c", otherC, `already holds topic "other"`},
			{"pre4", "pre4.p0.s3", otherC, `already holds topic "other"`},
		} {
			path := h.regionPath(c.file)
			if err := os.WriteFile(path, c.content, 0o600); err != nil {
				t.Fatal(err)
			}
			before := h.files()
			err := r.call(wire.TypeCreate, wire.TopicSpec{Name: c.topic}, nil)
			if code(err) != wire.CodeConflict || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("create %s over %s = %v, want conflict naming the path and %q", c.topic, c.file, err, c.want)
			}
			if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, c.content) {
				t.Errorf("%s changed: %.16q, %v", c.file, b, err)
			}
			if after := h.files(); !mapsEqual(after, before) {
				t.Errorf("refused create of %s changed the region dir:\n%v\nwant\n%v", c.topic, keys(after), keys(before))
			}
			if err := r.call(wire.TypeInfo, wire.TopicRef{Name: c.topic}, nil); code(err) != wire.CodeNotFound {
				t.Errorf("refused topic %s: info = %v, want not found", c.topic, err)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

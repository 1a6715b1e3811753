package numa

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	mib = 1 << 20
	gib = 1 << 30
)

func mustLoad(t *testing.T, root string) *Topology {
	t.Helper()
	topo, err := Load(root)
	if err != nil {
		t.Fatalf("Load(%q): %v", root, err)
	}
	return topo
}

func TestLoadTwoSocketFourNode(t *testing.T) {
	root := filepath.Join("testdata", "two-socket-four-node")
	topo := mustLoad(t, root)
	if got := topo.NodeIDs(); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Fatalf("node ids = %v; want [0 1 2 3]", got)
	}
	type pool struct{ size, total, free, surplus uint64 }
	want := []struct {
		cpus      []int
		dist      []int
		total     uint64
		free      uint64
		hugepages []pool
	}{
		{[]int{0, 1, 8, 9}, []int{10, 12, 20, 22}, 32 * gib, 20 * gib, []pool{{2 * mib, 512, 500, 0}, {gib, 4, 4, 0}}},
		{[]int{2, 3, 10, 11}, []int{12, 10, 22, 20}, 32 * gib, 30 * gib, []pool{{2 * mib, 256, 256, 0}, {gib, 2, 1, 0}}},
		{[]int{4, 5, 12, 13}, []int{20, 22, 10, 12}, 16 * gib, 8 * gib, []pool{{2 * mib, 128, 100, 2}, {gib, 0, 0, 0}}},
		{[]int{6, 7, 14, 15}, []int{22, 20, 12, 10}, 16 * gib, 15 * gib, []pool{{2 * mib, 0, 0, 0}, {gib, 1, 1, 0}}},
	}
	for i, w := range want {
		n, ok := topo.Node(i)
		if !ok {
			t.Fatalf("Node(%d) missing", i)
		}
		if n.ID != i || !slices.Equal(n.CPUs, w.cpus) || !slices.Equal(n.Distances, w.dist) {
			t.Errorf("node %d: id %d cpus %v distances %v; want cpus %v distances %v", i, n.ID, n.CPUs, n.Distances, w.cpus, w.dist)
		}
		if n.MemTotalBytes != w.total || n.MemFreeBytes != w.free {
			t.Errorf("node %d: mem total %d free %d; want %d %d", i, n.MemTotalBytes, n.MemFreeBytes, w.total, w.free)
		}
		if len(n.HugePages) != len(w.hugepages) {
			t.Fatalf("node %d: %d pools; want %d", i, len(n.HugePages), len(w.hugepages))
		}
		for j, p := range n.HugePages {
			wp := w.hugepages[j]
			if p.PageSizeBytes != wp.size || p.Total != wp.total || p.Free != wp.free || p.Surplus != wp.surplus {
				t.Errorf("node %d pool %d = %+v; want %+v", i, j, p, wp)
			}
			wantPath := filepath.Join(root, "sys/devices/system/node", "node"+string(rune('0'+i)), "hugepages",
				"hugepages-"+map[uint64]string{2 * mib: "2048", gib: "1048576"}[wp.size]+"kB", "nr_hugepages")
			if p.SysfsPath != wantPath {
				t.Errorf("node %d pool %d path %q; want %q", i, j, p.SysfsPath, wantPath)
			}
		}
	}
	if got := topo.CPUs(); !slices.Equal(got, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}) {
		t.Errorf("CPUs() = %v", got)
	}
	if _, ok := topo.Node(4); ok {
		t.Error("Node(4) found on a 4-node topology")
	}
}

func TestLoadFixtures(t *testing.T) {
	for _, tc := range []struct {
		tree  string
		nodes []int
		cpus  string
	}{
		{"two-socket-four-node", []int{0, 1, 2, 3}, "0-15"},
		{"hugepages-node0-only", []int{0, 1}, "0-7"},
		{"single-node", []int{0}, "0-7"},
		{"no-numa-dir", []int{0}, "0-3"},
	} {
		t.Run(tc.tree, func(t *testing.T) {
			topo := mustLoad(t, filepath.Join("testdata", tc.tree))
			if got := topo.NodeIDs(); !slices.Equal(got, tc.nodes) {
				t.Errorf("nodes = %v; want %v", got, tc.nodes)
			}
			if got := FormatCPUList(topo.CPUs()); got != tc.cpus {
				t.Errorf("cpus = %s; want %s", got, tc.cpus)
			}
			for _, n := range topo.Nodes {
				if len(n.Distances) <= n.ID || n.Distances[n.ID] != localDistance {
					t.Errorf("node %d: distances %v; want local distance %d at index %d", n.ID, n.Distances, localDistance, n.ID)
				}
			}
		})
	}
}

func TestHugePagesFree(t *testing.T) {
	root := filepath.Join("testdata", "hugepages-node0-only")
	topo := mustLoad(t, root)
	for _, tc := range []struct {
		node     int
		size     uint64
		wantFree uint64
		wantDir  string
	}{
		{0, 2 * mib, 60, "node0/hugepages/hugepages-2048kB"},
		{1, 2 * mib, 0, "node1/hugepages/hugepages-2048kB"},
		{0, gib, 0, "node0/hugepages/hugepages-1048576kB"},
	} {
		free, path, err := topo.HugePagesFree(tc.node, tc.size)
		want := filepath.Join(root, "sys/devices/system/node", tc.wantDir, "nr_hugepages")
		if err != nil || free != tc.wantFree || path != want {
			t.Errorf("HugePagesFree(%d, %d) = %d, %q, %v; want %d, %q", tc.node, tc.size, free, path, err, tc.wantFree, want)
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("SysfsPath does not exist: %v", err)
		}
	}

	_, _, err := topo.HugePagesFree(0, 4096)
	if !errors.Is(err, ErrNoHugePagePool) || !strings.Contains(err.Error(), "4KiB") || !strings.Contains(err.Error(), "[2MiB 1GiB]") {
		t.Errorf("4 KiB pool: err = %v; want ErrNoHugePagePool naming 4KiB and the sizes [2MiB 1GiB]", err)
	}
	_, _, err = topo.HugePagesFree(5, 2*mib)
	var ne *NodeError
	if !errors.As(err, &ne) || !errors.Is(err, ErrNoSuchNode) || ne.Node != 5 || !slices.Equal(ne.Nodes, []int{0, 1}) {
		t.Errorf("node 5: err = %v; want *NodeError for node 5 listing [0 1]", err)
	}
	if want := "numa: hugepages: node 5: no such NUMA node (nodes: 0-1)"; err == nil || err.Error() != want {
		t.Errorf("node 5: message %q; want %q", err, want)
	}

	// The fallback tree's pools come from sys/kernel/mm/hugepages.
	flat := mustLoad(t, filepath.Join("testdata", "no-numa-dir"))
	free, path, err := flat.HugePagesFree(0, 2*mib)
	if want := filepath.Join("testdata", "no-numa-dir", "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"); err != nil || free != 8 || path != want {
		t.Errorf("no-numa-dir HugePagesFree = %d, %q, %v; want 8, %q", free, path, err, want)
	}
}

func TestLoadNoNumaDir(t *testing.T) {
	topo := mustLoad(t, filepath.Join("testdata", "no-numa-dir"))
	if len(topo.Nodes) != 1 {
		t.Fatalf("%d nodes; want 1", len(topo.Nodes))
	}
	n := topo.Nodes[0]
	if n.ID != 0 || !slices.Equal(n.CPUs, []int{0, 1, 2, 3}) || !slices.Equal(n.Distances, []int{10}) {
		t.Errorf("node = %+v", n)
	}
	if n.MemTotalBytes != 8*gib || n.MemFreeBytes != 6*gib {
		t.Errorf("mem total %d free %d; want %d %d (from proc/meminfo)", n.MemTotalBytes, n.MemFreeBytes, 8*gib, 6*gib)
	}
}

func TestNodeForCPUs(t *testing.T) {
	topo := mustLoad(t, filepath.Join("testdata", "two-socket-four-node"))
	// node0 0-1,8-9  node1 2-3,10-11  node2 4-5,12-13  node3 6-7,14-15
	// distances: 0:[10 12 20 22] 1:[12 10 22 20] 2:[20 22 10 12] 3:[22 20 12 10]
	for _, tc := range []struct {
		name string
		cpus []int
		want int
	}{
		{"one cpu", []int{13}, 2},
		{"whole node incl. SMT sibling", []int{6, 7, 14, 15}, 3},
		{"majority wins", []int{2, 3, 10, 0}, 1},
		{"duplicates count once", []int{0, 4, 4, 4}, 0}, // 1 vs 1: tie, node0 sum 10+20 = node2 sum 20+10, lowest id
		{"tie broken by distance sum", []int{4, 12, 6, 14, 2}, 3},
		// node2: 2*10+2*12+22 = 66; node3: 2*12+2*10+20 = 64
		{"tie broken by distance sum, other socket", []int{0, 8, 2, 10, 4}, 0},
		// node0: 20+24+20 = 64; node1: 24+20+22 = 66
		{"full tie: lowest id", []int{0, 2}, 0},
		{"all cpus: lowest id", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, 0},
		{"one per node", []int{15, 11, 5, 1}, 0},
	} {
		got, err := topo.NodeForCPUs(tc.cpus)
		if err != nil || got != tc.want {
			t.Errorf("%s: NodeForCPUs(%v) = %d, %v; want %d", tc.name, tc.cpus, got, err, tc.want)
		}
	}

	if _, err := topo.NodeForCPUs(nil); !errors.Is(err, ErrNoCPUs) {
		t.Errorf("NodeForCPUs(nil) error = %v; want ErrNoCPUs", err)
	}
	_, err := topo.NodeForCPUs([]int{1, 16})
	var ce *CPUError
	if !errors.As(err, &ce) || !errors.Is(err, ErrNoSuchCPU) || ce.CPU != 16 {
		t.Fatalf("NodeForCPUs([1 16]) error = %v; want *CPUError for cpu 16", err)
	}
	if want := "numa: place: cpu 16: no such CPU (cpus: 0-15)"; err.Error() != want {
		t.Errorf("message %q; want %q", err, want)
	}
}

func TestNodeOfCPU(t *testing.T) {
	topo := mustLoad(t, filepath.Join("testdata", "two-socket-four-node"))
	for cpu, want := range map[int]int{0: 0, 9: 0, 2: 1, 11: 1, 4: 2, 13: 2, 7: 3, 15: 3} {
		if got, err := topo.NodeOfCPU(cpu); err != nil || got != want {
			t.Errorf("NodeOfCPU(%d) = %d, %v; want %d", cpu, got, err, want)
		}
	}
	for _, cpu := range []int{-1, 16, 1 << 20} {
		if got, err := topo.NodeOfCPU(cpu); !errors.Is(err, ErrNoSuchCPU) || got != -1 {
			t.Errorf("NodeOfCPU(%d) = %d, %v; want -1, ErrNoSuchCPU", cpu, got, err)
		}
	}
}

// brokenTree copies the single-node fixture into a temporary directory and
// applies edit, a map from a path relative to the tree to new content ("" with
// remove=true deletes the file).
func brokenTree(t *testing.T, src string, write map[string]string, remove ...string) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(filepath.Join("testdata", src))); err != nil {
		t.Fatal(err)
	}
	for rel, content := range write {
		p := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, rel := range remove {
		if err := os.RemoveAll(filepath.Join(dst, rel)); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestLoadErrors(t *testing.T) {
	const n0 = "sys/devices/system/node/node0/"
	const huge = n0 + "hugepages/hugepages-2048kB/"
	for _, tc := range []struct {
		name   string
		src    string
		write  map[string]string
		remove []string
		is     error  // errors.Is target
		file   string // relative path the message must name
		msg    string // further text the message must hold
	}{
		{"missing cpulist", "single-node", nil, []string{n0 + "cpulist"}, fs.ErrNotExist, n0 + "cpulist", "load node 0"},
		{"missing distance", "single-node", nil, []string{n0 + "distance"}, fs.ErrNotExist, n0 + "distance", ""},
		{"missing meminfo", "single-node", nil, []string{n0 + "meminfo"}, fs.ErrNotExist, n0 + "meminfo", ""},
		{"missing free_hugepages", "single-node", nil, []string{huge + "free_hugepages"}, fs.ErrNotExist, huge + "free_hugepages", ""},
		{"malformed cpulist", "single-node", map[string]string{n0 + "cpulist": "0-x\n"}, nil, ErrMalformed, n0 + "cpulist:1", `"0-x"`},
		{"reversed range", "single-node", map[string]string{n0 + "cpulist": "7-0\n"}, nil, ErrMalformed, n0 + "cpulist", "range end below start"},
		{"distance not a number", "single-node", map[string]string{n0 + "distance": "ten\n"}, nil, ErrMalformed, n0 + "distance:1", `"ten"`},
		{"distance count", "single-node", map[string]string{n0 + "distance": "10 20\n"}, nil, ErrMalformed, n0 + "distance", "2 distances for 1 nodes"},
		{"distance zero", "single-node", map[string]string{n0 + "distance": "0\n"}, nil, ErrMalformed, n0 + "distance", "not positive"},
		{"distance empty", "single-node", map[string]string{n0 + "distance": "\n"}, nil, ErrMalformed, n0 + "distance", "0 distances for 1 nodes"},
		{"meminfo no MemFree", "single-node", map[string]string{n0 + "meminfo": "Node 0 MemTotal: 1024 kB\n"}, nil, ErrMalformed, n0 + "meminfo", "no MemTotal or MemFree"},
		{"meminfo wrong node", "single-node", map[string]string{n0 + "meminfo": "Node 1 MemTotal: 1024 kB\n"}, nil, ErrMalformed, n0 + "meminfo:1", "line is for node 1"},
		{"meminfo bad unit", "single-node", map[string]string{n0 + "meminfo": "Node 0 MemTotal: 1024 MB\n"}, nil, ErrMalformed, n0 + "meminfo:1", `unit "MB"`},
		{"meminfo bad value", "single-node", map[string]string{n0 + "meminfo": "Node 0 MemTotal: lots kB\n"}, nil, ErrMalformed, n0 + "meminfo:1", "invalid syntax"},
		{"meminfo bad line", "single-node", map[string]string{n0 + "meminfo": "MemTotal: 1024 kB\n"}, nil, ErrMalformed, n0 + "meminfo:1", "want"},
		{"nr_hugepages not a number", "single-node", map[string]string{huge + "nr_hugepages": "-1\n"}, nil, ErrMalformed, huge + "nr_hugepages:1", `"-1"`},
		{"bad pool directory", "single-node", map[string]string{n0 + "hugepages/hugepages-2MB/nr_hugepages": "1\n"}, nil, ErrMalformed, n0 + "hugepages/hugepages-2MB", "hugepages-<size>kB"},
		{"empty node directory", "single-node", nil, []string{n0}, ErrMalformed, "sys/devices/system/node", "no nodeN directory"},
		{"no numa: missing cpu online", "no-numa-dir", nil, []string{"sys/devices/system/cpu/online"}, fs.ErrNotExist, "sys/devices/system/cpu/online", "no NUMA"},
		{"no numa: malformed cpu online", "no-numa-dir", map[string]string{"sys/devices/system/cpu/online": "0-\n"}, nil, ErrMalformed, "sys/devices/system/cpu/online:1", ""},
		{"no numa: missing meminfo", "no-numa-dir", nil, []string{"proc/meminfo"}, fs.ErrNotExist, "proc/meminfo", ""},
		{"no numa: meminfo without MemFree", "no-numa-dir", map[string]string{"proc/meminfo": "MemTotal: 1024 kB\n"}, nil, ErrMalformed, "proc/meminfo", "no MemTotal or MemFree"},
		{"no numa: malformed meminfo", "no-numa-dir", map[string]string{"proc/meminfo": "MemTotal: x kB\n"}, nil, ErrMalformed, "proc/meminfo", "invalid syntax"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := brokenTree(t, tc.src, tc.write, tc.remove...)
			topo, err := Load(root)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", topo)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v; want errors.Is %v", err, tc.is)
			}
			if msg := err.Error(); !strings.Contains(msg, filepath.Join(root, tc.file)) || !strings.Contains(msg, tc.msg) {
				t.Errorf("error %q; want it to name %s and hold %q", msg, filepath.Join(root, tc.file), tc.msg)
			}
		})
	}
}

// TestLoadSparseNodeIDs: the distance file has one column per online node,
// so with nodes 0 and 2 its second column is node 2, and Distances[1] is 0.
func TestLoadSparseNodeIDs(t *testing.T) {
	const base = "sys/devices/system/node/"
	root := brokenTree(t, "single-node", map[string]string{
		base + "node0/distance": "10 20\n",
		base + "node2/cpulist":  "4-7\n",
		base + "node2/distance": "20 10\n",
		base + "node2/meminfo":  "Node 2 MemTotal: 2048 kB\nNode 2 MemFree: 1024 kB\n",
		base + "online":         "0,2\n",
		base + "node0/cpulist":  "0-3\n",
	})
	topo := mustLoad(t, root)
	if got := topo.NodeIDs(); !slices.Equal(got, []int{0, 2}) {
		t.Fatalf("nodes %v; want [0 2]", got)
	}
	n2, _ := topo.Node(2)
	if !slices.Equal(topo.Nodes[0].Distances, []int{10, 0, 20}) || !slices.Equal(n2.Distances, []int{20, 0, 10}) {
		t.Errorf("distances %v, %v; want [10 0 20], [20 0 10]", topo.Nodes[0].Distances, n2.Distances)
	}
	if n2.MemTotalBytes != 2048*1024 || len(n2.HugePages) != 0 {
		t.Errorf("node 2 = %+v", n2)
	}
	if got, err := topo.NodeForCPUs([]int{0, 4, 5}); err != nil || got != 2 {
		t.Errorf("NodeForCPUs = %d, %v; want 2", got, err)
	}
}

// TestLoadLive: on this machine Load("/") and Load("") see every online CPU.
func TestLoadLive(t *testing.T) {
	online, err := readList("/sys/devices/system/cpu/online")
	if err != nil {
		t.Skipf("cannot read the live CPU list (no sysfs?): %v", err)
	}
	for _, root := range []string{"/", ""} {
		topo := mustLoad(t, root)
		if len(topo.Nodes) < 1 {
			t.Fatalf("Load(%q): no nodes", root)
		}
		if got := topo.CPUs(); !slices.Equal(got, online) {
			t.Errorf("Load(%q) CPUs %s; want online %s", root, FormatCPUList(got), FormatCPUList(online))
		}
		for _, n := range topo.Nodes {
			if n.MemTotalBytes == 0 && len(n.CPUs) > 0 && len(topo.Nodes) == 1 {
				t.Errorf("only node %d has no memory", n.ID)
			}
		}
		t.Logf("Load(%q): %d nodes, cpus %s", root, len(topo.Nodes), FormatCPUList(topo.CPUs()))
	}
}

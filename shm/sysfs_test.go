package shm

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

var (
	fixtureProc = mustAbs(filepath.Join("testdata", "proc"))
	fixtureSys  = mustAbs(filepath.Join("testdata", "sys"))
)

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return a
}

func TestFindHugetlbfsFixture(t *testing.T) {
	for _, tc := range []struct {
		pageSize uint64
		want     string
	}{
		{HugePage2M, "/dev/hugepages"},  // no pagesize option: meminfo's Hugepagesize
		{HugePage1G, "/mnt/huge one g"}, // octal escape decoded
		{4 << 20, ""},                   // no such mount
	} {
		got, err := findHugetlbfs(fixtureProc, tc.pageSize)
		if err != nil || got != tc.want {
			t.Errorf("findHugetlbfs(%d) = %q, %v; want %q", tc.pageSize, got, err, tc.want)
		}
	}
}

func TestReadHugePoolFixture(t *testing.T) {
	for _, tc := range []struct {
		node     int
		wantFree uint64
		wantPath string
	}{
		{-1, 32, "kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"}, // 40 free - 8 reserved
		{0, 30, "devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"},
		{1, 2, "devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages"},
	} {
		p, err := readHugePool(fixtureSys, tc.node, HugePage2M)
		if err != nil {
			t.Fatalf("node %d: %v", tc.node, err)
		}
		if p.FreePages != tc.wantFree || p.NrPath != filepath.Join(fixtureSys, tc.wantPath) {
			t.Errorf("node %d: got %+v, want free %d path %s", tc.node, p, tc.wantFree, tc.wantPath)
		}
	}
	if _, err := readHugePool(fixtureSys, 7, HugePage2M); err == nil {
		t.Error("node 7 (absent): want an error")
	}
}

func TestPlanHugeFixtureMessage(t *testing.T) {
	cfg := Default()
	cfg.ProcRoot, cfg.SysRoot = fixtureProc, fixtureSys
	// node 1 has 2 free pages; 5 MiB + header needs 3.
	_, err := planHuge(&cfg, 1, 5<<20)
	var he *HugePagesError
	if !errors.As(err, &he) {
		t.Fatalf("err = %v, want *HugePagesError", err)
	}
	msg := err.Error()
	for _, want := range []string{"node 1", "need 3 pages", "2097152 bytes", "2 free",
		filepath.Join(fixtureSys, "devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages")} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if root, err := planHuge(&cfg, 0, 5<<20); err != nil || root != "/dev/hugepages" {
		t.Errorf("node 0: root %q err %v; want /dev/hugepages, nil", root, err)
	}
}

func TestMlockBudget(t *testing.T) {
	st, err := readLockStatus(fixtureProc)
	if err != nil || st.LockedBytes != 128<<10 || st.CapIPCLock {
		t.Fatalf("readLockStatus = %+v, %v", st, err)
	}
	for _, tc := range []struct {
		limit, need uint64
		cap         bool
		ok          bool
	}{
		{8 << 20, 1 << 20, false, true},
		{8 << 20, 8 << 20, false, false}, // 128 KiB already locked
		{8 << 20, 64 << 20, true, true},  // CAP_IPC_LOCK ignores the limit
		{^uint64(0), 1 << 40, false, true},
		{8 << 20, ^uint64(0), false, false}, // overflow is refused
	} {
		s := st
		s.CapIPCLock = tc.cap
		why := mlockBudget(tc.limit, s, tc.need)
		if (why == "") != tc.ok {
			t.Errorf("mlockBudget(%d, %+v, %d) = %q, want ok=%v", tc.limit, s, tc.need, why, tc.ok)
		}
		if why != "" && !strings.Contains(why, "RLIMIT_MEMLOCK") {
			t.Errorf("reason %q does not name RLIMIT_MEMLOCK", why)
		}
	}
}

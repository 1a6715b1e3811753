//go:build linux

package numa

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// mapAnon maps size bytes of private anonymous memory, unmapped at cleanup.
func mapAnon(t *testing.T, size, flags int) []byte {
	t.Helper()
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|flags)
	if err != nil {
		t.Fatalf("mmap %d bytes: %v", size, err)
	}
	t.Cleanup(func() { _ = unix.Munmap(b) })
	return b
}

// touch writes one byte per page: the first touch that allocates them.
func touch(b []byte, step int) {
	for i := 0; i < len(b); i += step {
		b[i] = 1
	}
}

// memoryNodes returns the live nodes that have memory, or skips.
func memoryNodes(t *testing.T) []int {
	t.Helper()
	topo, err := Load("/")
	if err != nil {
		t.Skipf("cannot load the live topology: %v", err)
	}
	var ids []int
	for _, n := range topo.Nodes {
		if n.MemTotalBytes > 0 {
			ids = append(ids, n.ID)
		}
	}
	return ids
}

// checkBindLocate binds b to node, checks nothing is resident, touches it and
// checks every page landed on node.
func checkBindLocate(t *testing.T, b []byte, node int, policy Policy) {
	t.Helper()
	ps := os.Getpagesize()
	if err := BindPolicy(b, node, policy); err != nil {
		t.Fatalf("BindPolicy(node %d, %v): %v", node, policy, err)
	}
	if got, pages, err := Locate(b); !errors.Is(err, ErrNotResident) || got != -1 || len(pages) != 0 {
		t.Fatalf("Locate before touch = %d, %v, %v; want -1, empty, ErrNotResident", got, pages, err)
	}
	touch(b, ps)
	got, pages, err := Locate(b)
	if err != nil {
		t.Fatalf("Locate: %v", err)
	}
	if want := len(b) / ps; got != node || pages[node] != want || len(pages) != 1 {
		t.Fatalf("Locate = node %d, pages %v; want node %d with all %d pages", got, pages, node, want)
	}
}

func TestBindLocateAnonymous(t *testing.T) {
	ps := os.Getpagesize()
	for _, node := range memoryNodes(t) {
		for _, policy := range []Policy{PolicyBind, PolicyPreferred} {
			// 1500 pages: more than one move_pages batch.
			checkBindLocate(t, mapAnon(t, 1500*ps, 0), node, policy)
		}
	}
}

// TestBindLocateShm is the broker's case: a MAP_SHARED mapping of a tmpfs
// file in /dev/shm, where the policy is the file's shared policy.
func TestBindLocateShm(t *testing.T) {
	if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
		t.Skipf("no /dev/shm on this host (%v): cannot test shared tmpfs mappings", err)
	}
	const size = 256 << 10
	for _, node := range memoryNodes(t) {
		f, err := os.CreateTemp("/dev/shm", "kaelix-numa-test-*")
		if err != nil {
			t.Skipf("cannot create a file in /dev/shm: %v", err)
		}
		t.Cleanup(func() { _ = f.Close(); _ = os.Remove(f.Name()) })
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		b, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Munmap(b) })
		checkBindLocate(t, b, node, PolicyBind)
	}
}

// TestBindLocateHugetlb binds a 2 MiB hugepage; Locate counts it once per
// base page.
func TestBindLocateHugetlb(t *testing.T) {
	topo, err := Load("/")
	if err != nil {
		t.Skipf("cannot load the live topology: %v", err)
	}
	free, path, err := topo.HugePagesFree(0, 2<<20)
	if err != nil || free == 0 {
		t.Skipf("no free 2 MiB hugepage on node 0 (free %d, %v): reserve some with scripts/hugepages.sh reserve 8 (writes %s)", free, err, path)
	}
	b, err := unix.Mmap(-1, 0, 2<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_HUGETLB)
	if err != nil {
		t.Skipf("MAP_HUGETLB mmap failed although %d pages are free (cgroup hugetlb limit?): %v", free, err)
	}
	t.Cleanup(func() { _ = unix.Munmap(b) })
	checkBindLocate(t, b, 0, PolicyBind)
}

func TestBindErrors(t *testing.T) {
	ps := os.Getpagesize()
	b := mapAnon(t, 4*ps, 0)
	online, err := readList(liveNodeDir + "/online")
	if err != nil {
		online = []int{0}
	}
	for _, node := range []int{-1, 999, 1 << 20} {
		err := Bind(b, node)
		var ne *NodeError
		if !errors.As(err, &ne) || !errors.Is(err, ErrNoSuchNode) || ne.Node != node || !slices.Equal(ne.Nodes, online) {
			t.Errorf("Bind(node %d) = %v; want *NodeError listing %v", node, err, online)
			continue
		}
		if want := "nodes: " + FormatCPUList(online); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "bind: node") {
			t.Errorf("Bind(node %d) message %q; want it to name the node and %q", node, err, want)
		}
	}
	for name, r := range map[string][]byte{"empty": b[:0], "unaligned": b[1:], "nil": nil} {
		if err := Bind(r, 0); !errors.Is(err, ErrUnaligned) {
			t.Errorf("Bind(%s) = %v; want ErrUnaligned", name, err)
		}
		if _, _, err := Locate(r); !errors.Is(err, ErrUnaligned) {
			t.Errorf("Locate(%s) = %v; want ErrUnaligned", name, err)
		}
	}
	if err := BindPolicy(b, 0, Policy(7)); err == nil || !strings.Contains(err.Error(), "Policy(7)") {
		t.Errorf("BindPolicy(Policy(7)) = %v; want unknown policy error", err)
	}
	// A range that is no longer mapped: mbind fails with EFAULT (ENOMEM on
	// older kernels); move_pages reports -EFAULT per page, so nothing is
	// resident.
	gone, err := unix.Mmap(-1, 0, 2*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Munmap(gone); err != nil {
		t.Fatal(err)
	}
	err = Bind(gone, 0)
	var se *SyscallError
	if !errors.As(err, &se) || se.Syscall != "mbind" || !(errors.Is(err, unix.EFAULT) || errors.Is(err, unix.ENOMEM)) {
		t.Errorf("Bind(unmapped) = %v; want *SyscallError mbind EFAULT/ENOMEM", err)
	} else if !strings.Contains(err.Error(), "node 0, MPOL_BIND") {
		t.Errorf("Bind(unmapped) message %q lacks the node and policy", err)
	}
	if _, _, err := Locate(gone); !errors.Is(err, ErrNotResident) {
		t.Errorf("Locate(unmapped) = %v; want ErrNotResident", err)
	}
}

// TestBindAfterTouch: binding resident pages migrates those mapped only
// by this process (MPOL_MF_MOVE); on one node they are already there.
func TestBindAfterTouch(t *testing.T) {
	ps := os.Getpagesize()
	for _, node := range memoryNodes(t) {
		b := mapAnon(t, 16*ps, 0)
		touch(b, ps)
		if err := Bind(b, node); err != nil {
			t.Fatalf("Bind after touch to node %d: %v", node, err)
		}
		if got, pages, err := Locate(b); err != nil || got != node || pages[node] != 16 {
			t.Fatalf("Locate = %d, %v, %v; want node %d with 16 pages", got, pages, err, node)
		}
	}
}

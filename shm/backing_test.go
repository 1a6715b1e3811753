package shm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// hugeConfig returns a Config that requires 2 MiB huge pages on the host's
// hugetlbfs mount, with a unique base directory removed at cleanup, or
// skips the test saying why it cannot run.
func hugeConfig(t testing.TB, pagesNeeded uint64) Config {
	t.Helper()
	mnt, err := findHugetlbfs("/proc", HugePage2M)
	if err != nil || mnt == "" {
		t.Skipf("skipped: no hugetlbfs mount with 2 MiB pages (`make test` as root mounts one for its run): %v", err)
	}
	pool, err := readHugePool("/sys", -1, HugePage2M)
	if err != nil || pool.FreePages < pagesNeeded {
		t.Skipf("skipped: need %d free 2 MiB huge pages, have %d (%v); raise %s", pagesNeeded, pool.FreePages, err, pool.NrPath)
	}
	cfg := Default()
	cfg.HugePages = PolicyRequired
	cfg.DirName = fmt.Sprintf("kaelix-test-%d-%s", os.Getpid(), strings.NewReplacer("/", "-").Replace(t.Name()))
	t.Cleanup(func() { os.RemoveAll(filepath.Join(mnt, cfg.DirName)) })
	cfg.TmpfsRoot = t.TempDir()
	return cfg
}

func meminfoHugeFree(t testing.TB) uint64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "HugePages_Free:"); ok {
			v, _ := strconv.ParseUint(strings.TrimSpace(rest), 10, 64)
			return v
		}
	}
	t.Fatal("no HugePages_Free in /proc/meminfo")
	return 0
}

func TestCreateHugetlbfs(t *testing.T) {
	cfg := hugeConfig(t, 2)
	before := meminfoHugeFree(t)
	w := mustCreate(t, cfg, "huge", CreateOptions{SizeBytes: 3 << 20})
	after := meminfoHugeFree(t)
	h := w.Header()
	if h.PageSizeBytes != HugePage2M || h.TotalBytes != 4<<20 || h.Flags&FlagHugePages == 0 || h.Flags&FlagFallbackTmpfs != 0 {
		t.Fatalf("header %+v", h)
	}
	if before-after < 2 {
		t.Fatalf("HugePages_Free %d -> %d: want a drop of at least 2", before, after)
	}
	r, err := Open(cfg, "huge", AttachOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	copy(w.Data()[h.DataBytes-5:], "tail!")
	var got string
	if err := Guard(func() error { got = string(r.Data()[h.DataBytes-5:]); return nil }); err != nil || got != "tail!" {
		t.Fatalf("read %q, %v", got, err)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	// More pages than exist: a HugePagesError that says what to raise.
	_, err = Create(cfg, "toobig", CreateOptions{SizeBytes: (before + 1) * HugePage2M})
	if !errors.Is(err, ErrHugePagesUnavailable) || !strings.Contains(err.Error(), "hugepages-2048kB/nr_hugepages") {
		t.Fatalf("oversized huge Create = %v", err)
	}
}

// TestFullTmpfs mounts an 8 MiB tmpfs: a region that does not fit fails
// with ErrNoSpace and leaves nothing behind, and a region already there
// keeps working (every page of it was reserved at create).
func TestFullTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting a small tmpfs needs root")
	}
	root := t.TempDir()
	if err := unix.Mount("kaelix-test", root, "tmpfs", 0, "size=8m,mode=0755"); err != nil {
		t.Skipf("skipped: cannot mount tmpfs on %s: %v", root, err)
	}
	t.Cleanup(func() { unix.Unmount(root, unix.MNT_DETACH) })
	cfg := Default()
	cfg.TmpfsRoot, cfg.HugePages = root, PolicyOff

	keep := mustCreate(t, cfg, "keep", CreateOptions{SizeBytes: 4 << 20})
	_, err := Create(cfg, "big", CreateOptions{SizeBytes: 6 << 20})
	var ns *NoSpaceError
	if !errors.Is(err, ErrNoSpace) || !errors.Is(err, unix.ENOSPC) || !errors.As(err, &ns) {
		t.Fatalf("Create beyond free space = %v, want *NoSpaceError", err)
	}
	if ns.RequestedBytes != 6<<20+4096 || ns.FreeBytes == 0 || ns.FreeBytes >= 4<<20 ||
		!strings.Contains(err.Error(), filepath.Join(root, "kaelix", "big")) {
		t.Fatalf("NoSpaceError %+v (%v)", ns, err)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "kaelix"))
	if len(entries) != 1 || entries[0].Name() != "keep" {
		t.Fatalf("after failed Create the directory holds %v", entries)
	}
	data := keep.Data()
	if err := Guard(func() error {
		for i := range data {
			data[i] = byte(i)
		}
		return nil
	}); err != nil {
		t.Fatalf("writing the existing region: %v", err)
	}
	if err := keep.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestSmallRegionsSkipHugePages: under auto, a region smaller than half
// a huge page goes to tmpfs (no fallback flag, no huge page taken); one
// of half a page or more goes to huge pages; required takes a huge page
// for any size.
func TestSmallRegionsSkipHugePages(t *testing.T) {
	for _, tc := range []struct {
		size, page uint64
		small      bool
	}{
		{4096, HugePage2M, true},
		{HugePage2M/2 - HeaderBytes - 1, HugePage2M, true},
		{HugePage2M/2 - HeaderBytes, HugePage2M, false},
		{3 << 20, HugePage2M, false},
		{256 << 20, HugePage1G, true},
		{512 << 20, HugePage1G, false},
	} {
		if got := SmallForHugePage(tc.size, tc.page); got != tc.small {
			t.Errorf("SmallForHugePage(%d, %d) = %v, want %v", tc.size, tc.page, got, tc.small)
		}
	}
	cfg := hugeConfig(t, 2)
	cfg.HugePages = PolicyAuto
	tiny := mustCreate(t, cfg, "tiny", CreateOptions{SizeBytes: 4096})
	if h := tiny.Header(); h.PageSizeBytes != uint64(os.Getpagesize()) || h.Flags&(FlagHugePages|FlagFallbackTmpfs) != 0 ||
		!strings.HasPrefix(tiny.Path(), cfg.TmpfsRoot) {
		t.Fatalf("4 KiB region under auto: %s, header %+v", tiny.Path(), h)
	}
	big := mustCreate(t, cfg, "half", CreateOptions{SizeBytes: HugePage2M/2 - HeaderBytes})
	if h := big.Header(); h.PageSizeBytes != HugePage2M || h.Flags&FlagHugePages == 0 {
		t.Fatalf("half-page region under auto: header %+v", h)
	}
	cfg.HugePages = PolicyRequired
	req := mustCreate(t, cfg, "tinyreq", CreateOptions{SizeBytes: 4096})
	if h := req.Header(); h.PageSizeBytes != HugePage2M || h.Flags&FlagHugePages == 0 {
		t.Fatalf("4 KiB region under required: header %+v", h)
	}
}

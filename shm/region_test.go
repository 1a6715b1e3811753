package shm

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// tmpfsConfig returns a Config whose tmpfs root is a fresh directory under
// /dev/shm (removed at cleanup), huge pages off, logging into buf.
func tmpfsConfig(t testing.TB) (Config, *bytes.Buffer) {
	t.Helper()
	root, err := os.MkdirTemp("/dev/shm", "kaelix-shm-test-")
	if err != nil {
		t.Skipf("no /dev/shm to test on: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	var buf bytes.Buffer
	cfg := Default()
	cfg.TmpfsRoot = root
	cfg.HugePages = PolicyOff
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	return cfg, &buf
}

func mustCreate(t testing.TB, cfg Config, name string, opts CreateOptions) *Region {
	t.Helper()
	r, err := Create(cfg, name, opts)
	if err != nil {
		t.Fatalf("Create(%s): %v", name, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestCreateOpenTmpfs(t *testing.T) {
	cfg, _ := tmpfsConfig(t)
	w := mustCreate(t, cfg, "telemetry", CreateOptions{SizeBytes: 10000, Prefault: true})
	h := w.Header()
	if h.TotalBytes != 16384 || h.DataBytes != 16384-4096 || h.PageSizeBytes != 4096 ||
		h.Generation != 1 || h.NodeRequested != -1 || h.NodeActual != -1 ||
		h.Flags != FlagPrefaulted || h.CreatorPID != int64(os.Getpid()) || h.CreatedNS == 0 {
		t.Fatalf("header %+v", h)
	}
	copy(w.Data(), "hello")

	dirInfo, err := os.Stat(filepath.Join(cfg.TmpfsRoot, "kaelix"))
	if err != nil || dirInfo.Mode().Perm() != 0o700 {
		t.Fatalf("base dir: %v %v", dirInfo.Mode(), err)
	}
	r, err := Open(cfg, "telemetry", AttachOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Header() != h || !r.ReadOnly() || r.Name() != "telemetry" {
		t.Fatalf("attached header %+v, want %+v", r.Header(), h)
	}
	var got string
	if err := Guard(func() error { got = string(r.Data()[:5]); return nil }); err != nil || got != "hello" {
		t.Fatalf("read %q, %v", got, err)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	// By descriptor, as a client receiving it over SCM_RIGHTS would.
	byFD, err := AttachFD(int(w.File().Fd()), AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if byFD.Header() != h || byFD.Remove() != ErrNoPath {
		t.Fatal("AttachFD: wrong header or Remove did not say ErrNoPath")
	}
	byFD.Close()
	if err := byFD.Close(); err != ErrClosed {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := Create(cfg, "telemetry", CreateOptions{SizeBytes: 1}); !errors.Is(err, ErrExist) {
		t.Fatalf("Create existing = %v, want ErrExist", err)
	}
	if err := w.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(cfg, "telemetry", AttachOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open after Remove = %v", err)
	}
	// The removed region stays usable by those who have it mapped.
	if err := r.Check(); err != nil {
		t.Fatalf("Check after Remove: %v", err)
	}
}

func TestReplaceBumpsGeneration(t *testing.T) {
	cfg, _ := tmpfsConfig(t)
	old := mustCreate(t, cfg, "r", CreateOptions{SizeBytes: 4096})
	nu := mustCreate(t, cfg, "r", CreateOptions{SizeBytes: 8192, Replace: true})
	if nu.Header().Generation != 2 {
		t.Fatalf("generation %d, want 2", nu.Header().Generation)
	}
	if err := old.Check(); err != nil { // old mapping still intact
		t.Fatal(err)
	}
	if err := old.Remove(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("old.Remove = %v, want ENOENT (name is the new region's)", err)
	}
	entries, _ := os.ReadDir(filepath.Join(cfg.TmpfsRoot, "kaelix"))
	if len(entries) != 1 || entries[0].Name() != "r" {
		t.Fatalf("dir holds %v", entries)
	}
}

// TestTruncationFaults: another process's ftruncate must not kill us.
func TestTruncationFaults(t *testing.T) {
	cfg, _ := tmpfsConfig(t)
	w := mustCreate(t, cfg, "victim", CreateOptions{SizeBytes: 1 << 20, Prefault: true})
	r, err := Open(cfg, "victim", AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := os.Truncate(w.Path(), 0); err != nil {
		t.Fatal(err)
	}
	data := r.Data()
	var got byte
	err = Guard(func() error {
		got = data[len(data)/2] // SIGBUS: page beyond EOF
		return nil
	})
	if got != 0 {
		t.Errorf("read %d from a truncated page", got)
	}
	var fe *FaultError
	if !errors.Is(err, ErrFault) || !errors.As(err, &fe) || fe.Addr == 0 {
		t.Fatalf("Guard = %v, want *FaultError", err)
	}
	if err := r.Check(); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), w.Path()) {
		t.Fatalf("Check = %v, want ErrTruncated naming the path", err)
	}
	if _, err := Open(cfg, "victim", AttachOptions{}); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Open truncated = %v", err)
	}
	// Shrunk but still longer than a header: the size check refuses it.
	w2 := mustCreate(t, cfg, "victim2", CreateOptions{SizeBytes: 1 << 20})
	if err := os.Truncate(w2.Path(), 2*HeaderBytes); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(cfg, "victim2", AttachOptions{}); !errors.Is(err, ErrTruncated) ||
		!strings.Contains(err.Error(), "header says") {
		t.Fatalf("Open shrunk = %v", err)
	}
}

func TestReadOnlyMappingFaultsOnWrite(t *testing.T) {
	cfg, _ := tmpfsConfig(t)
	mustCreate(t, cfg, "ro", CreateOptions{SizeBytes: 4096})
	r, err := Open(cfg, "ro", AttachOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data := r.Data()
	if err := Guard(func() error { data[0] = 1; return nil }); !errors.Is(err, ErrFault) {
		t.Fatalf("write through read-only mapping: %v, want ErrFault", err)
	}
	// Non-fault panics pass through Guard untouched.
	defer func() {
		if recover() != "boom" {
			t.Error("Guard swallowed a non-fault panic")
		}
	}()
	_ = Guard(func() error { panic("boom") })
}

// TestOpenDamagedHeader: each kind of damage has its own error, naming the path.
func TestOpenDamagedHeader(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(b []byte)
		want   error
	}{
		{"corrupt", func(b []byte) { b[offGeneration] ^= 0x40 }, ErrCorrupt},
		{"magic", func(b []byte) { copy(b, "XXXXXXXX") }, ErrBadMagic},
		{"newer", func(b []byte) { ne.PutUint32(b[offVersion:], LayoutVersion+1) }, ErrIncompatibleVersion},
		{"notready", func(b []byte) { ne.PutUint32(b[offVersion:], 0) }, ErrNotReady},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := tmpfsConfig(t)
			w := mustCreate(t, cfg, "d", CreateOptions{SizeBytes: 4096})
			f, err := os.OpenFile(w.Path(), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, headerUsedBytes)
			f.ReadAt(b, 0)
			tc.damage(b)
			f.WriteAt(b, 0)
			f.Close()
			_, err = Open(cfg, "d", AttachOptions{})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), w.Path()) {
				t.Fatalf("Open = %v, want %v naming %s", err, tc.want, w.Path())
			}
			if tc.want == ErrIncompatibleVersion && !strings.Contains(err.Error(), "version 3 (newer than this build's 2)") {
				t.Errorf("message lacks both versions: %v", err)
			}
			if err := w.Check(); !errors.Is(err, tc.want) && !errors.Is(err, ErrCorrupt) {
				t.Errorf("creator's Check = %v", err)
			}
		})
	}
}

func TestModeIgnoresUmask(t *testing.T) {
	for _, umask := range []int{0, 0o022, 0o077} {
		for _, mode := range []os.FileMode{0o600, 0o640, 0o660} {
			cfg, _ := tmpfsConfig(t)
			cfg.Mode = mode
			old := syscall.Umask(umask)
			r, err := Create(cfg, "m", CreateOptions{SizeBytes: 1})
			syscall.Umask(old)
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(r.Path())
			di, _ := os.Stat(filepath.Dir(r.Path()))
			if fi.Mode().Perm() != mode || di.Mode().Perm() != 0o700 {
				t.Errorf("umask %#o mode %#o: file %#o dir %#o", umask, mode, fi.Mode().Perm(), di.Mode().Perm())
			}
			r.Close()
		}
	}
}

func TestUnsafeBaseDirRefused(t *testing.T) {
	cfg, _ := tmpfsConfig(t)
	dir := filepath.Join(cfg.TmpfsRoot, cfg.DirName)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	if _, err := Create(cfg, "x", CreateOptions{SizeBytes: 1}); !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Create in 0755 dir = %v, want ErrUnsafeDir", err)
	}
	os.Remove(dir)
	os.Symlink(t.TempDir(), dir)
	if _, err := Create(cfg, "x", CreateOptions{SizeBytes: 1}); !errors.Is(err, ErrUnsafeDir) {
		t.Fatalf("Create through symlinked dir = %v, want ErrUnsafeDir", err)
	}
}

func TestInvalidNames(t *testing.T) {
	cfg, _ := tmpfsConfig(t)
	for _, name := range []string{"", "a/b", "..", "../x", "a\x00b", ".hidden", "sp ace", strings.Repeat("a", MaxNameBytes+1)} {
		if _, err := Create(cfg, name, CreateOptions{SizeBytes: 1}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Create(%q) = %v, want ErrInvalidName", name, err)
		}
		if _, err := Open(cfg, name, AttachOptions{}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Open(%q) = %v, want ErrInvalidName", name, err)
		}
	}
	for _, name := range []string{"a", "a..b", "ring-0_v1.2", strings.Repeat("z", MaxNameBytes)} {
		if err := ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v", name, err)
		}
	}
}

func TestConfigValidateListsAll(t *testing.T) {
	err := Config{}.Validate()
	for _, field := range []string{"DirName", "TmpfsRoot", "HugePageSizeBytes", "Mode", "ProcRoot", "SysRoot"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("Validate of zero Config does not name %s: %v", field, err)
		}
	}
	cfg, _ := tmpfsConfig(t)
	if _, err := Create(cfg, "n", CreateOptions{SizeBytes: 1, BindNode: true}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("BindNode without Config.Bind = %v", err)
	}
}

func TestBindAndLocateHooks(t *testing.T) {
	cfg, _ := tmpfsConfig(t)
	var boundLen, boundNode int
	cfg.Bind = func(b []byte, node int) error { boundLen, boundNode = len(b), node; return nil }
	cfg.Locate = func(b []byte) (int, error) { return 0, nil }
	r := mustCreate(t, cfg, "numa", CreateOptions{SizeBytes: 8192, BindNode: true, Node: 0})
	if boundLen != int(r.Header().TotalBytes) || boundNode != 0 || r.Header().NodeRequested != 0 || r.Header().NodeActual != 0 {
		t.Fatalf("bind got len %d node %d; header %+v", boundLen, boundNode, r.Header())
	}
	cfg.Bind = func([]byte, int) error { return unix.EINVAL }
	if _, err := Create(cfg, "numa2", CreateOptions{SizeBytes: 1, BindNode: true, Node: 3}); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("failing Bind = %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.TmpfsRoot, cfg.DirName, ".numa2.creating")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("failed Create left its temporary file")
	}
}

func TestMlockAuto(t *testing.T) {
	cfg, _ := tmpfsConfig(t)
	r := mustCreate(t, cfg, "locked", CreateOptions{SizeBytes: 1 << 16, Mlock: PolicyAuto})
	// Either locked, or a warning was logged: never silent.
	t.Logf("flags %v", r.Header().Flags)
}

func TestHugePagesFallbackAndRequired(t *testing.T) {
	cfg, logs := tmpfsConfig(t)
	cfg.ProcRoot = t.TempDir() // no mounts file: no hugetlbfs found
	cfg.SysRoot = fixtureSys
	os.MkdirAll(filepath.Join(cfg.ProcRoot, "self"), 0o755)
	os.WriteFile(filepath.Join(cfg.ProcRoot, "self", "mounts"), []byte("tmpfs /dev/shm tmpfs rw 0 0\n"), 0o644)
	cfg.HugePages = PolicyAuto
	r := mustCreate(t, cfg, "fb", CreateOptions{SizeBytes: HugePage2M / 2})
	if r.Header().Flags&FlagFallbackTmpfs == 0 || r.Header().PageSizeBytes != 4096 {
		t.Fatalf("auto without hugetlbfs: header %+v", r.Header())
	}
	if !strings.Contains(logs.String(), "falls back to tmpfs") {
		t.Fatalf("no fallback warning logged: %q", logs)
	}
	cfg.HugePages = PolicyRequired
	_, err := Create(cfg, "req", CreateOptions{SizeBytes: 1})
	if !errors.Is(err, ErrHugePagesUnavailable) || !strings.Contains(err.Error(), "no hugetlbfs mount") ||
		!strings.Contains(err.Error(), "nr_hugepages") {
		t.Fatalf("required without hugetlbfs = %v", err)
	}
}

// TestOpenReadOnly: the reopened descriptor names the same file, is
// O_RDONLY, and can be mapped only PROT_READ: PROT_WRITE mappings,
// mprotect to PROT_WRITE, writes and ftruncate are refused by the kernel.
func TestOpenReadOnly(t *testing.T) {
	cfg, _ := tmpfsConfig(t)
	w := mustCreate(t, cfg, "ro", CreateOptions{SizeBytes: 1 << 16})
	f, err := w.OpenReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var a, b unix.Stat_t
	if err := unix.Fstat(int(w.File().Fd()), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fstat(int(f.Fd()), &b); err != nil {
		t.Fatal(err)
	}
	if a.Dev != b.Dev || a.Ino != b.Ino {
		t.Fatalf("reopened another file: %d:%d, want %d:%d", b.Dev, b.Ino, a.Dev, a.Ino)
	}
	if fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); err != nil || fl&unix.O_ACCMODE != unix.O_RDONLY {
		t.Fatalf("flags %#o, %v: want O_RDONLY", fl, err)
	}
	size := int(w.Header().TotalBytes)
	if m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != unix.EACCES {
		if err == nil {
			unix.Munmap(m)
		}
		t.Fatalf("writable mapping of the read-only descriptor: %v, want EACCES", err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	if err := unix.Mprotect(m, unix.PROT_READ|unix.PROT_WRITE); err != unix.EACCES {
		t.Fatalf("mprotect to PROT_WRITE: %v, want EACCES", err)
	}
	if _, err := unix.Pwrite(int(f.Fd()), []byte{1}, HeaderBytes); err == nil {
		t.Fatal("write through the read-only descriptor succeeded")
	}
	if err := unix.Ftruncate(int(f.Fd()), 0); err == nil {
		t.Fatal("ftruncate through the read-only descriptor succeeded")
	}
	r, err := AttachFile(f, AttachOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Header() != w.Header() {
		t.Fatalf("attached header %+v, want %+v", r.Header(), w.Header())
	}
	if _, err := AttachFile(f, AttachOptions{}); err == nil {
		t.Fatal("read-write attach of a read-only descriptor succeeded")
	}
	w.Close()
	if _, err := w.OpenReadOnly(); !errors.Is(err, ErrClosed) {
		t.Fatalf("OpenReadOnly after Close: %v, want ErrClosed", err)
	}
}

// TestLabelAndInstance: Create writes the label and instance into the
// header; Open with AttachOptions.Label accepts the same label and refuses
// another with ErrLabelMismatch quoting both; a label over MaxLabelBytes is
// refused at Create.
func TestLabelAndInstance(t *testing.T) {
	cfg, _ := tmpfsConfig(t)
	label := strings.Repeat("t", MaxLabelBytes)
	w := mustCreate(t, cfg, "labelled", CreateOptions{SizeBytes: 4096, Label: label, Instance: 0xfeedface})
	if h := w.Header(); h.Label != label || h.Instance != 0xfeedface {
		t.Fatalf("creator header label %q instance %#x", h.Label, h.Instance)
	}
	r, err := Open(cfg, "labelled", AttachOptions{ReadOnly: true, Label: label})
	if err != nil {
		t.Fatal(err)
	}
	if h := r.Header(); h.Label != label || h.Instance != 0xfeedface {
		t.Fatalf("attached header label %q instance %#x", h.Label, h.Instance)
	}
	r.Close()
	_, err = Open(cfg, "labelled", AttachOptions{Label: "other"})
	if !errors.Is(err, ErrLabelMismatch) || !strings.Contains(err.Error(), `want "other"`) {
		t.Fatalf("Open with another label = %v, want ErrLabelMismatch naming both", err)
	}
	if _, err := Create(cfg, "toolong", CreateOptions{SizeBytes: 4096, Label: label + "x"}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Create with a %d-byte label = %v, want ErrInvalidConfig", len(label)+1, err)
	}
	if err := w.Check(); err != nil {
		t.Fatalf("Check after attaches: %v", err)
	}
}

// TestLongestName: a name of MaxNameBytes makes a region (its temporary
// ".NAME.creating" must still fit NAME_MAX).
func TestLongestName(t *testing.T) {
	cfg, _ := tmpfsConfig(t)
	name := strings.Repeat("n", MaxNameBytes)
	mustCreate(t, cfg, name, CreateOptions{SizeBytes: 4096})
	if _, err := Open(cfg, name, AttachOptions{}); err != nil {
		t.Fatal(err)
	}
}

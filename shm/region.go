package shm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Region is one mapped region file: a header block and a data area (see
// layout.go). Create makes one; Open, AttachFile and AttachFD map an
// existing one.
//
// A *Region may be used from many goroutines: Header, Name, Path, File,
// ReadOnly, Check, Remove and Close are safe concurrently. The memory
// returned by Data is shared with other processes; this package imposes no
// protocol on it, and the race detector cannot see the other processes.
// Go's atomics (sync/atomic) are sequentially consistent, which makes them
// valid for cross-process protocols on this memory.
//
// Do not copy a Region.
type Region struct {
	mu       sync.Mutex // guards mem and f against Close
	mem      []byte     // whole file mapping; nil after Close
	f        *os.File
	hdr      Header // as validated at create/attach; immutable
	name     string // "" when attached by descriptor
	dir      string // base directory path; "" when attached by descriptor
	path     string // for messages; may be "" when attached by descriptor
	readOnly bool
	created  bool
}

// Create makes a new region file named name in the base directory of the
// chosen backing (hugetlbfs or tmpfs, per cfg.HugePages), reserves all of
// its pages, writes the header (layout version last) and publishes it under
// its name with an atomic rename, so no process can open a half-made region
// by name. The creator's mapping is read-write.
//
// Size: HeaderBytes + opts.SizeBytes rounded up to the page size.
//
// Errors: ErrInvalidConfig, ErrInvalidName, ErrExist, ErrBusy, ErrUnsafeDir,
// *NoSpaceError (ErrNoSpace; nothing is left behind), *HugePagesError
// (ErrHugePagesUnavailable, with PolicyRequired), ErrMlock (with mlock
// PolicyRequired), *StoppedError (ErrStopped: opts.Stop was closed;
// nothing is left behind), or an *OpError for other system call failures.
//
// Create is meant for the daemon: Create calls are serialized per base
// directory with flock, and one daemon should own a base directory. A
// ".NAME.creating" file left by a creator that crashed is removed by the
// next Create of that name.
func Create(cfg Config, name string, opts CreateOptions) (*Region, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if err := opts.validate(&cfg); err != nil {
		return nil, err
	}
	log := cfg.logger()
	node := -1
	if opts.BindNode {
		node = opts.Node
	}

	prev := existing(&cfg, name)
	if len(prev) > 0 && !opts.Replace {
		return nil, pathErr(prev[0], ErrExist, "region exists (set CreateOptions.Replace to re-create it)")
	}
	gen := uint64(1)
	for _, p := range prev {
		h, err := readHeaderFile(p)
		if err != nil {
			log.Warn("shm: replacing a region whose header is unreadable", "path", p, "err", err)
			continue
		}
		gen = max(gen, h.Generation+1)
	}

	var flags Flags
	small := cfg.HugePages == PolicyAuto && SmallForHugePage(opts.SizeBytes, cfg.HugePageSizeBytes)
	if small {
		log.Debug("shm: region smaller than half a huge page goes to tmpfs", "region", name, "size_bytes", opts.SizeBytes, "huge_page_bytes", cfg.HugePageSizeBytes)
	}
	if cfg.HugePages != PolicyOff && !small {
		root, err := planHuge(&cfg, node, opts.SizeBytes)
		if err == nil {
			var r *Region
			r, err = createIn(&cfg, root, cfg.HugePageSizeBytes, FlagHugePages, name, opts, gen, prev)
			// A hugetlbfs mount this user may not write (root's, mode
			// 0755) is as good as none: under auto, fall back to tmpfs.
			if err == nil || !errors.Is(err, ErrHugePagesUnavailable) && !(cfg.HugePages == PolicyAuto && errors.Is(err, fs.ErrPermission)) {
				return r, err
			}
		}
		if cfg.HugePages == PolicyRequired {
			return nil, err
		}
		log.Warn("shm: huge pages unavailable; region falls back to tmpfs", "region", name, "reason", err)
		flags |= FlagFallbackTmpfs
	}
	return createIn(&cfg, cfg.TmpfsRoot, uint64(os.Getpagesize()), flags, name, opts, gen, prev)
}

func (o *CreateOptions) validate(cfg *Config) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	if o.SizeBytes == 0 || o.SizeBytes > 1<<46 {
		bad("SizeBytes", "%d: want 1..%d", o.SizeBytes, uint64(1)<<46)
	}
	if o.BindNode && o.Node < 0 {
		bad("Node", "%d: want >= 0", o.Node)
	}
	if o.BindNode && cfg.Bind == nil {
		bad("BindNode", "set, but Config.Bind is nil")
	}
	if o.Mlock < PolicyOff || o.Mlock > PolicyRequired {
		bad("Mlock", "unknown policy %d", int(o.Mlock))
	}
	if len(o.Label) > MaxLabelBytes {
		bad("Label", "%d bytes: want at most %d", len(o.Label), MaxLabelBytes)
	}
	return errors.Join(errs...)
}

func roundUp(n, to uint64) uint64 { return (n + to - 1) / to * to }

// SmallForHugePage reports whether a region of sizeBytes (its area; the
// file adds HeaderBytes) is too small for huge pages of hugePageBytes
// under PolicyAuto: its file is less than half a huge page, so rounding
// it up to one would waste more than half the page (a 4 KiB ring would
// take a whole 2 MiB page, and a few dozen of them the host's pool). Such
// a region goes to tmpfs, without FlagFallbackTmpfs (nothing was
// missing). PolicyRequired puts it on huge pages all the same.
func SmallForHugePage(sizeBytes, hugePageBytes uint64) bool {
	return 2*(HeaderBytes+sizeBytes) < hugePageBytes
}

// hugeRoot returns the hugetlbfs mount to use, or "".
func hugeRoot(cfg *Config) string {
	if cfg.HugetlbfsRoot != "" {
		return cfg.HugetlbfsRoot
	}
	root, _ := findHugetlbfs(cfg.ProcRoot, cfg.HugePageSizeBytes)
	return root
}

// planHuge checks that a hugetlbfs mount of the wanted page size exists and
// that enough huge pages are free, and returns the mount.
func planHuge(cfg *Config, node int, size uint64) (string, error) {
	ps := cfg.HugePageSizeBytes
	need := roundUp(HeaderBytes+size, ps) / ps
	pool, perr := readHugePool(cfg.SysRoot, node, ps)
	herr := &HugePagesError{Node: node, PagesNeeded: need, PagesFree: pool.FreePages, PageSizeBytes: ps, SysfsPath: pool.NrPath}
	root := hugeRoot(cfg)
	switch {
	case root == "":
		herr.Reason = fmt.Sprintf("no hugetlbfs mount with pagesize=%dkB in %s", ps>>10, filepath.Join(cfg.ProcRoot, "self", "mounts"))
		return "", herr
	case perr != nil:
		herr.Reason = "cannot read the free count"
		herr.Err = perr
		return "", herr
	case pool.FreePages < need:
		return "", herr
	}
	return root, nil
}

// existing lists the paths of regions named name in both base directories.
func existing(cfg *Config, name string) []string {
	var out []string
	for _, root := range []string{hugeRoot(cfg), cfg.TmpfsRoot} {
		if root == "" {
			continue
		}
		p := filepath.Join(root, cfg.DirName, name)
		if _, err := os.Lstat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Existing returns the paths of the files named name in cfg's base
// directories (hugetlbfs first, then tmpfs), whatever they hold: the
// files Remove would unlink. For callers that must check each one first.
func Existing(cfg Config, name string) []string { return existing(&cfg, name) }

// ReadHeaderFile reads and validates the header of the file at path with
// pread (no mapping, so a truncated file cannot fault), without following
// a symbolic link. Errors: as ValidateHeader (ErrBadMagic for a file that
// is not a region), or an *OpError for open and read failures.
func ReadHeaderFile(path string) (Header, error) { return readHeaderFile(path) }

// readHeaderFile reads and validates the header of the file at p with
// pread (no mapping, so no fault risk).
func readHeaderFile(p string) (Header, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return Header{}, opErr("open", p, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, headerUsedBytes)
	n, err := unix.Pread(fd, buf, 0)
	if err != nil {
		return Header{}, opErr("read", p, err)
	}
	return validateHeader(buf[:n], ne.Uint32(pad(buf[:n])[offVersion:]), p)
}

// openBaseDir opens root/dirName, creating it 0700 if create is set and it
// is missing, and checks that it is private to this user.
func openBaseDir(root, dirName string, create bool) (int, string, error) {
	p := filepath.Join(root, dirName)
	made := false
	if create {
		switch err := unix.Mkdir(p, 0o700); err {
		case nil:
			made = true
		case unix.EEXIST:
		default:
			return -1, p, opErr("mkdir", p, err)
		}
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOTDIR || err == unix.ELOOP {
			return -1, p, pathErr(p, ErrUnsafeDir, "not a directory (or a symlink)")
		}
		return -1, p, opErr("open", p, err)
	}
	if made {
		// mkdir applied the umask; set the exact mode.
		if err := unix.Fchmod(fd, 0o700); err != nil {
			unix.Close(fd)
			return -1, p, opErr("chmod", p, err)
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, p, opErr("stat", p, err)
	}
	if int(st.Uid) != os.Geteuid() || st.Mode&0o077 != 0 {
		unix.Close(fd)
		return -1, p, pathErr(p, ErrUnsafeDir, "owner uid %d, mode %#o; want uid %d, mode 0700 (fix: chmod 700 %s)",
			st.Uid, st.Mode&0o7777, os.Geteuid(), p)
	}
	return fd, p, nil
}

// createIn builds the region in root/cfg.DirName. See Create.
func createIn(cfg *Config, root string, pageSize uint64, flags Flags, name string, opts CreateOptions, gen uint64, prev []string) (_ *Region, err error) {
	huge := flags&FlagHugePages != 0
	log := cfg.logger()
	dirfd, dir, err := openBaseDir(root, cfg.DirName, true)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dirfd) // also drops the flock
	if err := unix.Flock(dirfd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if err == unix.EWOULDBLOCK {
			return nil, pathErr(dir, ErrBusy, "another Create holds the lock")
		}
		return nil, opErr("flock", dir, err)
	}
	path := filepath.Join(dir, name)
	tmp := "." + name + ".creating"
	tmpPath := filepath.Join(dir, tmp)
	// We hold the directory lock, so any such file is a crashed creator's.
	if err := unix.Unlinkat(dirfd, tmp, 0); err != nil && err != unix.ENOENT {
		return nil, opErr("remove stale", tmpPath, err)
	}
	fd, err := unix.Openat(dirfd, tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(cfg.Mode))
	if err != nil {
		return nil, opErr("create", tmpPath, err)
	}
	var mem []byte
	published := false
	defer func() {
		if published {
			return
		}
		if mem != nil {
			_ = unix.Munmap(mem)
		}
		_ = unix.Close(fd)
		_ = unix.Unlinkat(dirfd, tmp, 0)
		var ns *NoSpaceError
		if errors.As(err, &ns) {
			ns.FreeBytes = freeBytes(dirfd)
		}
	}()

	if err := unix.Fchmod(fd, uint32(cfg.Mode)); err != nil { // exact mode whatever the umask
		return nil, opErr("chmod", tmpPath, err)
	}
	if cfg.GID >= 0 {
		if err := unix.Fchown(fd, -1, cfg.GID); err != nil {
			return nil, opErr("chown", tmpPath, err)
		}
	}
	total := roundUp(HeaderBytes+opts.SizeBytes, pageSize)
	noSpace := func(err error) error {
		ns := &NoSpaceError{Path: path, RequestedBytes: total, Err: err}
		if huge {
			return &HugePagesError{Node: nodeOf(opts), PagesNeeded: total / pageSize, PageSizeBytes: pageSize,
				SysfsPath: hugeSysfsPath(cfg, nodeOf(opts)), Reason: "the kernel refused the reservation", Err: ns}
		}
		return ns
	}
	if err := unix.Ftruncate(fd, int64(total)); err != nil {
		if err == unix.ENOSPC || err == unix.EFBIG {
			return nil, noSpace(err)
		}
		return nil, opErr("truncate", tmpPath, err)
	}
	// On hugetlbfs a shared mapping reserves its huge pages here.
	mem, err = unix.Mmap(fd, 0, int(total), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		mem = nil
		if err == unix.ENOMEM || err == unix.ENOSPC {
			return nil, noSpace(err)
		}
		return nil, opErr("mmap", tmpPath, err)
	}
	if !mappingAligned(mem) {
		return nil, pathErr(tmpPath, ErrCorrupt, "mapping is not 8-byte aligned")
	}
	if !huge && cfg.TransparentHugePages {
		if err := unix.Madvise(mem, unix.MADV_HUGEPAGE); err != nil {
			log.Warn("shm: madvise(MADV_HUGEPAGE) failed; continuing with 4 KiB pages", "path", path, "err", err)
		} else {
			flags |= FlagTHPAdvised
		}
	}
	if opts.BindNode {
		if err := cfg.Bind(mem, opts.Node); err != nil {
			return nil, fmt.Errorf("shm: bind %s to node %d: %w", path, opts.Node, err)
		}
	}
	prefault := opts.Prefault
	// fallocate on hugetlbfs allocates under the task's policy, not the
	// mapping's; a bound huge region has its pages faulted in through the
	// bound mapping instead. The mmap reservation and the free-page check
	// make this safe; Guard turns a SIGBUS (pages taken meanwhile) into an
	// error.
	allocate := !(huge && opts.BindNode)
	prefault = prefault || !allocate
	// Chunk by chunk, looking at opts.Stop before each: a big region takes
	// seconds, and a stopping daemon must not wait for it.
	chunk := roundUp(StopChunkBytes, pageSize)
	for off := uint64(0); off < total; off += chunk {
		if stopped(opts.Stop) {
			return nil, &StoppedError{Path: path, DoneBytes: off, TotalBytes: total}
		}
		n := min(chunk, total-off)
		if allocate {
			if err := unix.Fallocate(fd, 0, int64(off), int64(n)); err != nil {
				if err == unix.ENOSPC || err == unix.ENOMEM {
					return nil, noSpace(err)
				}
				return nil, opErr("fallocate", tmpPath, err)
			}
		}
		if prefault {
			if err := Guard(func() error { touchPages(mem[off:off+n], pageSize); return nil }); err != nil {
				return nil, noSpace(err)
			}
		}
		if chunkHook != nil {
			chunkHook(off+n, total)
		}
	}
	if prefault {
		flags |= FlagPrefaulted
	}
	if opts.Mlock != PolicyOff {
		if huge {
			flags |= FlagMlocked // hugetlb pages are never swapped; mlock does not apply
		} else if why := lockRegion(cfg, mem); why != "" {
			if opts.Mlock == PolicyRequired {
				return nil, pathErr(path, ErrMlock, "%s", why)
			}
			log.Warn("shm: region not locked in memory", "path", path, "reason", why)
		} else {
			flags |= FlagMlocked
		}
	}
	nodeActual := int32(-1)
	if cfg.Locate != nil {
		// Only pages mapped into this process can be located: fault in
		// (by reading) up to 8 evenly spaced pages first. Reading a page
		// that fallocate reserved maps it; it allocates nothing more.
		if flags&FlagPrefaulted == 0 {
			_ = Guard(func() error { readSample(mem, pageSize, 8); return nil })
		}
		if n, err := cfg.Locate(mem); err == nil {
			nodeActual = int32(n)
		} else {
			log.Warn("shm: cannot locate region pages", "path", path, "err", err)
		}
	}
	hdr := Header{
		Version:         LayoutVersion,
		TotalBytes:      total,
		DataOffsetBytes: DataOffsetBytes,
		DataBytes:       total - DataOffsetBytes,
		PageSizeBytes:   pageSize,
		NodeRequested:   int32(nodeOf(opts)),
		NodeActual:      nodeActual,
		Flags:           flags,
		CreatorPID:      int64(os.Getpid()),
		CreatedNS:       time.Now().UnixNano(),
		Generation:      gen,
		Instance:        opts.Instance,
		Label:           opts.Label,
	}
	hdr.putFields(mem)
	versionWord(mem).Store(LayoutVersion) // store-release: publishes the header

	if opts.Replace {
		err = unix.Renameat(dirfd, tmp, dirfd, name)
	} else {
		err = unix.Renameat2(dirfd, tmp, dirfd, name, unix.RENAME_NOREPLACE)
		if err == unix.EEXIST {
			return nil, pathErr(path, ErrExist, "region appeared during create")
		}
	}
	if err != nil {
		return nil, opErr("rename", path, err)
	}
	published = true
	for _, p := range prev {
		if p != path {
			_ = os.Remove(p) // the replaced region lived on the other backing
		}
	}
	return &Region{mem: mem, f: os.NewFile(uintptr(fd), path), hdr: hdr, name: name, dir: dir, path: path, created: true}, nil
}

func nodeOf(o CreateOptions) int {
	if o.BindNode {
		return o.Node
	}
	return -1
}

func hugeSysfsPath(cfg *Config, node int) string {
	pool, _ := readHugePool(cfg.SysRoot, node, cfg.HugePageSizeBytes)
	return pool.NrPath
}

// stopped reports whether stop is closed (never, for nil).
func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// chunkHook, if set (tests only), runs after each chunk Create reserved,
// with the bytes done so far and the total.
var chunkHook func(done, total uint64)

// touchPages writes one zero byte per page: the first touch, done once.
func touchPages(mem []byte, pageSize uint64) {
	for i := uint64(0); i < uint64(len(mem)); i += pageSize {
		mem[i] = 0
	}
}

// lockRegion mlocks mem after checking the RLIMIT_MEMLOCK budget; it
// returns "" on success, else why nothing was locked.
func lockRegion(cfg *Config, mem []byte) string {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
		return "getrlimit: " + err.Error()
	}
	st, err := readLockStatus(cfg.ProcRoot)
	if err != nil {
		return err.Error()
	}
	if why := mlockBudget(rl.Cur, st, uint64(len(mem))); why != "" {
		return why
	}
	if err := unix.Mlock(mem); err != nil {
		return "mlock: " + err.Error()
	}
	return ""
}

// freeBytes is the space left on dirfd's filesystem for this user, in bytes.
func freeBytes(dirfd int) uint64 {
	var s unix.Statfs_t
	if unix.Fstatfs(dirfd, &s) != nil {
		return 0
	}
	return s.Bavail * uint64(s.Bsize)
}

// Open maps the existing region named name, looking first in the hugetlbfs
// base directory, then in the tmpfs one. See AttachFile for the checks and
// errors; a missing region gives an *OpError wrapping ENOENT
// (errors.Is(err, fs.ErrNotExist)). ErrNotReady is retryable.
func Open(cfg Config, name string, opts AttachOptions) (*Region, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	flags := unix.O_RDWR
	if opts.ReadOnly {
		flags = unix.O_RDONLY
	}
	for _, root := range []string{hugeRoot(&cfg), cfg.TmpfsRoot} {
		if root == "" {
			continue
		}
		dirfd, dir, err := openBaseDir(root, cfg.DirName, false)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, name)
		fd, err := unix.Openat(dirfd, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(dirfd)
		if err == unix.ENOENT {
			continue
		}
		if err != nil {
			return nil, opErr("open", path, err)
		}
		r, err := attach(fd, path, opts)
		if err != nil {
			return nil, err
		}
		r.name, r.dir = name, dir
		return r, nil
	}
	return nil, opErr("open", filepath.Join(cfg.TmpfsRoot, cfg.DirName, name), unix.ENOENT)
}

// AttachFile maps the region open as f, typically a descriptor received
// over a Unix socket (SCM_RIGHTS). f is duplicated: the caller keeps
// ownership of f and may close it at once.
//
// Checks: the file is a regular file at least HeaderBytes long; the header
// is valid (ErrNotReady — retryable —, *VersionError, ErrBadMagic,
// ErrCorrupt); the file size equals the header's TotalBytes (ErrTruncated
// if shorter: someone with a writable descriptor called ftruncate); the
// page size matches the filesystem (ErrCorrupt). The header is read under
// Guard, so a concurrent truncation gives ErrFault, not a crash.
func AttachFile(f *os.File, opts AttachOptions) (*Region, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, opErr("attach", f.Name(), err)
	}
	var fd int
	var derr error
	if err := rc.Control(func(raw uintptr) {
		fd, derr = unix.FcntlInt(raw, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, opErr("attach", f.Name(), err)
	}
	if derr != nil {
		return nil, opErr("dup", f.Name(), derr)
	}
	return attach(fd, f.Name(), opts)
}

// AttachFD is AttachFile for a raw descriptor; fd is duplicated and stays
// the caller's to close.
func AttachFD(fd int, opts AttachOptions) (*Region, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, opErr("dup", "fd "+strconv.Itoa(fd), err)
	}
	path, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(nfd))
	return attach(nfd, path, opts)
}

// attach validates and maps fd, which it owns (closed on error).
func attach(fd int, path string, opts AttachOptions) (_ *Region, err error) {
	var mem []byte
	defer func() {
		if err != nil {
			if mem != nil {
				_ = unix.Munmap(mem)
			}
			_ = unix.Close(fd)
		}
	}()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, opErr("stat", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, pathErr(path, ErrBadMagic, "not a regular file")
	}
	if st.Size < HeaderBytes {
		return nil, pathErr(path, ErrTruncated, "file is %d bytes, shorter than the %d-byte header", st.Size, HeaderBytes)
	}
	prot := unix.PROT_READ | unix.PROT_WRITE
	if opts.ReadOnly {
		prot = unix.PROT_READ
	}
	mem, err = unix.Mmap(fd, 0, int(st.Size), prot, unix.MAP_SHARED)
	if err != nil {
		mem = nil
		return nil, opErr("mmap", path, err)
	}
	if !mappingAligned(mem) {
		return nil, pathErr(path, ErrCorrupt, "mapping is not 8-byte aligned")
	}
	hdr, err := readHeader(mem, path)
	if err != nil {
		return nil, err
	}
	if err := checkSize(hdr, uint64(st.Size), path); err != nil {
		return nil, err
	}
	if opts.Label != "" && hdr.Label != opts.Label {
		return nil, pathErr(path, ErrLabelMismatch, "header label %q, want %q", hdr.Label, opts.Label)
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return nil, opErr("statfs", path, err)
	}
	onHuge := sfs.Type == unix.HUGETLBFS_MAGIC
	if onHuge != (hdr.Flags&FlagHugePages != 0) || onHuge && uint64(sfs.Bsize) != hdr.PageSizeBytes {
		return nil, pathErr(path, ErrCorrupt, "header says page size %d, flags %v; file system page size %d, hugetlbfs %v",
			hdr.PageSizeBytes, hdr.Flags, sfs.Bsize, onHuge)
	}
	return &Region{mem: mem, f: os.NewFile(uintptr(fd), path), hdr: hdr, path: path, readOnly: opts.ReadOnly}, nil
}

// readHeader loads the version (load-acquire) and then the other fields of
// the mapped header, under Guard.
func readHeader(mem []byte, path string) (Header, error) {
	var hdr Header
	var verr error
	err := Guard(func() error {
		v := versionWord(mem).Load() // load-acquire: pairs with the creator's store
		var buf [headerUsedBytes]byte
		copy(buf[:], mem)
		hdr, verr = validateHeader(buf[:], v, path)
		return nil
	})
	if err != nil {
		return Header{}, fmt.Errorf("shm: reading header of %s: %w", pathOr(path), err)
	}
	return hdr, verr
}

func checkSize(h Header, size uint64, path string) error {
	switch {
	case size < h.TotalBytes:
		return pathErr(path, ErrTruncated, "file is %d bytes, header says %d", size, h.TotalBytes)
	case size > h.TotalBytes:
		return pathErr(path, ErrCorrupt, "file is %d bytes, header says %d (grown)", size, h.TotalBytes)
	}
	return nil
}

// Header returns the header as validated at create or attach time.
func (r *Region) Header() Header { return r.hdr }

// Name returns the region's name, or "" when attached by descriptor.
func (r *Region) Name() string { return r.name }

// Path returns the region file's path ("" or a /proc-derived guess when
// attached by descriptor; for messages only).
func (r *Region) Path() string { return r.path }

// ReadOnly reports whether the mapping is PROT_READ.
func (r *Region) ReadOnly() bool { return r.readOnly }

// File returns the region's open file, e.g. to send over a Unix socket
// with SCM_RIGHTS. The Region owns it: do not close it; it is valid until
// Close or DropFile (nil after DropFile). A receiver should use AttachFile
// or AttachFD.
func (r *Region) File() *os.File {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f
}

// DropFile closes the region's descriptor and keeps the mapping, for a
// process that maps many regions and needs none of their descriptors
// again (a client: a mapping holds no descriptor, so its descriptor count
// stays independent of how many regions it maps). Afterwards File returns
// nil, and Check, Linked, OpenReadOnly and Remove return ErrNoFile; Data
// and Close work as before. ErrClosed after Close; a second DropFile is a
// no-op.
func (r *Region) DropFile() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mem == nil {
		return ErrClosed
	}
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return opErr("close", r.path, err)
}

// OpenReadOnly opens the region's file anew, O_RDONLY, and returns the
// new descriptor, which the caller owns. It reopens this very file (through
// /proc/self/fd), whatever has happened to its name since. A descriptor
// opened this way can only be mapped PROT_READ: mmap with PROT_WRITE,
// mprotect to PROT_WRITE, write and ftruncate all fail on it. Hand it to a
// process that must read the region but never change it; that process can
// get a writable descriptor only by opening the file anew, which its
// permission bits (and the 0700 base directory) decide. ErrClosed after
// Close.
func (r *Region) OpenReadOnly() (*os.File, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mem == nil {
		return nil, ErrClosed
	}
	if r.f == nil {
		return nil, ErrNoFile
	}
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(int(r.f.Fd())), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, opErr("reopen read-only", r.path, err)
	}
	return os.NewFile(uintptr(fd), r.path), nil
}

// Data returns the data area: Header().DataBytes bytes starting at file
// offset DataOffsetBytes. The slice aliases shared memory and is valid until
// Close; using it after Close faults. Reads and writes of memory this
// process did not create must run inside Guard (the file can be truncated
// by another process at any time); a write through a ReadOnly region
// faults. Returns nil after Close.
func (r *Region) Data() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mem == nil {
		return nil
	}
	return r.mem[DataOffsetBytes:len(r.mem):len(r.mem)]
}

// Check re-validates the region: the file size against the header's
// TotalBytes (ErrTruncated, ErrCorrupt), and the live header against the one
// validated at attach (ErrCorrupt if it changed, or any ValidateHeader
// error), reading it under Guard (ErrFault). The daemon calls it
// periodically; a non-nil error means stop using Data and Close.
func (r *Region) Check() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mem == nil {
		return ErrClosed
	}
	if r.f == nil {
		return ErrNoFile
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(r.f.Fd()), &st); err != nil {
		return opErr("stat", r.path, err)
	}
	if err := checkSize(r.hdr, uint64(st.Size), r.path); err != nil {
		return err
	}
	h, err := readHeader(r.mem, r.path)
	if err != nil {
		return err
	}
	if h != r.hdr {
		return pathErr(r.path, ErrCorrupt, "header changed since attach: now %+v", h)
	}
	return nil
}

// Linked reports whether the region's file is still linked in a
// directory (fstat's link count is not 0). A region whose file was
// removed, or replaced by a rename over its name, stays mapped and
// usable, but no process can open it by name any more: another region of
// that name may appear. ErrClosed after Close.
func (r *Region) Linked() (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mem == nil {
		return false, ErrClosed
	}
	if r.f == nil {
		return false, ErrNoFile
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(r.f.Fd()), &st); err != nil {
		return false, opErr("stat", r.path, err)
	}
	return st.Nlink > 0, nil
}

// Close unmaps the region and closes its file. The file stays (see
// Remove). Data slices become invalid. A second Close returns ErrClosed.
func (r *Region) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mem == nil {
		return ErrClosed
	}
	err := opErr("munmap", r.path, unix.Munmap(r.mem))
	r.mem = nil
	if r.f != nil {
		if cerr := r.f.Close(); err == nil && cerr != nil {
			err = opErr("close", r.path, cerr)
		}
		r.f = nil
	}
	return err
}

// Remove unlinks the region's name if it still refers to this region's
// file (a re-created region of the same name is left alone: *OpError with
// ENOENT). Processes that have it mapped keep their memory until they
// Close; the pages are freed after the last one does. Remove does not
// Close. ErrNoPath when attached by descriptor.
func (r *Region) Remove() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mem == nil {
		return ErrClosed
	}
	if r.dir == "" {
		return ErrNoPath
	}
	if r.f == nil {
		return ErrNoFile
	}
	var mine, named unix.Stat_t
	if err := unix.Fstat(int(r.f.Fd()), &mine); err != nil {
		return opErr("stat", r.path, err)
	}
	if err := unix.Lstat(r.path, &named); err != nil {
		return opErr("remove", r.path, err)
	}
	if mine.Dev != named.Dev || mine.Ino != named.Ino {
		return opErr("remove", r.path, unix.ENOENT)
	}
	return opErr("remove", r.path, unix.Unlink(r.path))
}

// Remove unlinks the region named name from both base directories, whether
// or not it is valid. Attached processes keep their mappings. Returns an
// *OpError wrapping ENOENT if neither holds it.
func Remove(cfg Config, name string) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := ValidateName(name); err != nil {
		return err
	}
	paths := existing(&cfg, name)
	if len(paths) == 0 {
		return opErr("remove", filepath.Join(cfg.TmpfsRoot, cfg.DirName, name), unix.ENOENT)
	}
	for _, p := range paths {
		if err := unix.Unlink(p); err != nil && err != unix.ENOENT {
			return opErr("remove", p, err)
		}
	}
	return nil
}

// readSample reads one byte from up to n pages of b spread evenly, so that
// they are mapped into this process.
func readSample(b []byte, pageSize uint64, n int) {
	pages := uint64(len(b)) / pageSize
	if pages == 0 {
		return
	}
	step := max(pages/uint64(n), 1)
	var x byte
	for p := uint64(0); p < pages; p += step {
		x ^= b[p*pageSize]
	}
	runtime.KeepAlive(x) // the loads must happen
}

package shm

import (
	"errors"
	"fmt"
)

// Sentinel errors. Test with errors.Is; the returned error wraps one of these
// and, where a path is known, names it. Each says its cause and remedy.
var (
	// ErrInvalidName: a region name is empty, longer than MaxNameBytes,
	// starts with '.', or holds a byte other than ASCII letters, digits, '-',
	// '_' and '.'. Remedy: pick a name from that alphabet. Fatal.
	ErrInvalidName = errors.New("shm: invalid region name")

	// ErrInvalidConfig: a Config or option field is out of range. The message
	// names every bad field. Remedy: fix the configuration. Fatal.
	ErrInvalidConfig = errors.New("shm: invalid configuration")

	// ErrUnsafeDir: the base directory is not a directory, is a symlink, is
	// not owned by this process's effective user, or grants any permission to
	// group or others. It is never tightened silently (someone else set those
	// bits; they must decide). Remedy: chmod 0700 / chown the directory, or
	// remove it so that it is created afresh. Fatal.
	ErrUnsafeDir = errors.New("shm: base directory is not private")

	// ErrExist: Create found a region of that name and Replace was not set.
	// Remedy: Open it, Remove it, or set CreateOptions.Replace.
	ErrExist = errors.New("shm: region already exists")

	// ErrLabelMismatch: the region's header label is not the one
	// AttachOptions.Label asked for: the file holds something else (for
	// kaelixd, another topic). Returned with both labels. Fatal for this
	// attach: do not use the region.
	ErrLabelMismatch = errors.New("shm: region label mismatch")

	// ErrBusy: another Create holds the base directory's lock (Create calls
	// are serialized per directory). Retryable.
	ErrBusy = errors.New("shm: base directory is locked by another creator")

	// ErrNoSpace: the backing filesystem cannot hold the region (full
	// /dev/shm, a size-limited tmpfs, or a hugetlbfs mount out of pages).
	// Returned as a *NoSpaceError; the partial file has been removed.
	// Remedy: free space, raise the mount's size=, or ask for less.
	ErrNoSpace = errors.New("shm: no space for region")

	// ErrHugePagesUnavailable: policy PolicyRequired, and no hugetlbfs mount
	// of the wanted page size exists or too few free huge pages remain.
	// Returned as a *HugePagesError naming the node, the pages needed and
	// free, and the sysfs file to raise. Remedy: reserve pages (write the
	// sysfs file), mount hugetlbfs, or use PolicyAuto.
	ErrHugePagesUnavailable = errors.New("shm: huge pages unavailable")

	// ErrMlock: mlock was required but RLIMIT_MEMLOCK is too small (and the
	// process lacks CAP_IPC_LOCK) or mlock failed. Remedy: raise the limit
	// (ulimit -l, systemd LimitMEMLOCK=), grant CAP_IPC_LOCK, or use
	// PolicyAuto. Nothing was locked.
	ErrMlock = errors.New("shm: cannot lock region in memory")

	// ErrNotReady: the header's layout version is still 0: the creator has
	// not finished (or crashed before finishing). Retryable: attach again
	// after a short wait; give up after a deadline of your choosing.
	ErrNotReady = errors.New("shm: region not ready")

	// ErrIncompatibleVersion: the header's layout version is not
	// LayoutVersion. Returned as a *VersionError with both versions. Fatal:
	// the creator and this process run different Kaelix builds.
	ErrIncompatibleVersion = errors.New("shm: incompatible region layout version")

	// ErrBadMagic: the file does not start with Magic: it is not a Kaelix
	// region. Fatal.
	ErrBadMagic = errors.New("shm: not a region (bad magic)")

	// ErrCorrupt: the header checksum or its fields are inconsistent, or the
	// header changed after attach, or the file is bigger than the header
	// says. Fatal for this region: recreate it.
	ErrCorrupt = errors.New("shm: region header corrupt")

	// ErrTruncated: the file is shorter than its header says (someone with a
	// writable descriptor called ftruncate), or shorter than a header. Fatal
	// for this region: stop using its memory (reads outside Guard would kill
	// the process with SIGBUS) and recreate it.
	ErrTruncated = errors.New("shm: region file truncated")

	// ErrFault: Guard's callback touched memory that faulted (SIGBUS from a
	// truncated file, SIGSEGV from a write to a read-only mapping).
	// Returned as a *FaultError. The process is intact; the region is not:
	// call Check, then Close it.
	ErrFault = errors.New("shm: memory fault")

	// ErrClosed: the Region was closed.
	ErrClosed = errors.New("shm: region closed")

	// ErrStopped: CreateOptions.Stop was closed while Create reserved or
	// prefaulted the region's pages; nothing is left behind. Returned as
	// a *StoppedError.
	ErrStopped = errors.New("shm: create stopped")

	// ErrNoPath: Remove on a region attached by descriptor, whose name is
	// unknown. Remedy: remove it by name with the package-level Remove.
	ErrNoPath = errors.New("shm: region has no known path")

	// ErrNoFile: Check, Linked, OpenReadOnly or Remove on a region whose
	// descriptor was closed with DropFile. The mapping is still usable.
	ErrNoFile = errors.New("shm: region keeps no descriptor (DropFile)")
)

// OpError is a failed system call or file operation on a region, like
// net.OpError. Err is usually a syscall.Errno (errors.Is works against
// fs.ErrNotExist, fs.ErrPermission and the like).
type OpError struct {
	Op   string // "open", "mkdir", "fallocate", "mmap", ...
	Path string // file or directory; may be empty for AttachFD
	Err  error
}

func (e *OpError) Error() string {
	if e.Path == "" {
		return "shm: " + e.Op + ": " + e.Err.Error()
	}
	return "shm: " + e.Op + " " + e.Path + ": " + e.Err.Error()
}

func (e *OpError) Unwrap() error { return e.Err }

func opErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	return &OpError{Op: op, Path: path, Err: err}
}

// NoSpaceError is the ErrNoSpace error: errors.Is(err, ErrNoSpace) holds,
// and Unwrap gives the system error (ENOSPC).
type NoSpaceError struct {
	Path           string // the region's path (the partial file is gone)
	RequestedBytes uint64 // file size asked for, header included
	FreeBytes      uint64 // free on the filesystem after the partial file was removed (statfs f_bavail*f_bsize)
	Err            error
}

func (e *NoSpaceError) Error() string {
	return fmt.Sprintf("shm: no space for %s: requested %d bytes, %d bytes free on its filesystem: %v",
		e.Path, e.RequestedBytes, e.FreeBytes, e.Err)
}

func (e *NoSpaceError) Unwrap() error        { return e.Err }
func (e *NoSpaceError) Is(target error) bool { return target == ErrNoSpace }

// HugePagesError is the ErrHugePagesUnavailable error.
type HugePagesError struct {
	Node          int    // NUMA node asked for; -1 means any node
	PagesNeeded   uint64 // huge pages the region needs
	PagesFree     uint64 // free (unreserved) huge pages found
	PageSizeBytes uint64
	SysfsPath     string // the nr_hugepages file to raise
	Reason        string // e.g. "no hugetlbfs mount with pagesize=2048kB"
	Err           error  // underlying error, e.g. a *NoSpaceError; may be nil
}

func (e *HugePagesError) Error() string {
	node := fmt.Sprintf("node %d", e.Node)
	if e.Node < 0 {
		node = "any node"
	}
	msg := fmt.Sprintf("shm: huge pages unavailable on %s: need %d pages of %d bytes, %d free",
		node, e.PagesNeeded, e.PageSizeBytes, e.PagesFree)
	if e.Reason != "" {
		msg += " (" + e.Reason + ")"
	}
	msg += "; raise " + e.SysfsPath
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *HugePagesError) Unwrap() error        { return e.Err }
func (e *HugePagesError) Is(target error) bool { return target == ErrHugePagesUnavailable }

// VersionError is the ErrIncompatibleVersion error.
type VersionError struct {
	Path string
	Got  uint32 // version in the file
	Want uint32 // LayoutVersion
}

func (e *VersionError) Error() string {
	rel := "older"
	if e.Got > e.Want {
		rel = "newer"
	}
	return fmt.Sprintf("shm: %s: incompatible region layout version %d (%s than this build's %d)",
		pathOr(e.Path), e.Got, rel, e.Want)
}

func (e *VersionError) Is(target error) bool { return target == ErrIncompatibleVersion }

// FaultError is the ErrFault error: touching a mapped region faulted
// (SIGBUS: another process truncated the file, so the pages are gone; or
// SIGSEGV: a write to a read-only mapping). Guard returns it with Addr and
// Msg; the client returns the same type with Topic set and ReadOnly for a
// write into a subscriber's read-only data mapping. The handle or region
// is unusable; close it.
type FaultError struct {
	Addr uintptr // faulting address, as reported by the runtime
	Msg  string  // the runtime's description
	// Topic is the topic whose memory faulted, when the caller knows it
	// (the client does; Guard does not).
	Topic string
	// ReadOnly: the fault was a write to a read-only mapping (the file is
	// intact); for the client, a Poll handler writing into a Payload.
	ReadOnly bool
}

func (e *FaultError) Error() string {
	switch {
	case e.Topic == "":
		return fmt.Sprintf("shm: memory fault at %#x (%s); the mapping is no longer backed or not writable", e.Addr, e.Msg)
	case e.ReadOnly:
		return fmt.Sprintf("kaelix: topic %q: write to the read-only data mapping at %#x (subscribers may not modify a received Payload): %s", e.Topic, e.Addr, e.Msg)
	default:
		return fmt.Sprintf("kaelix: topic %q: shared memory fault at %#x (region truncated by another process?): %s", e.Topic, e.Addr, e.Msg)
	}
}

// Is makes errors.Is(err, ErrFault) hold.
func (e *FaultError) Is(target error) bool { return target == ErrFault }

// pathErr wraps a sentinel with the path and a detail: "shm: PATH: detail: sentinel".
func pathErr(path string, sentinel error, format string, args ...any) error {
	return fmt.Errorf("shm: %s: %s: %w", pathOr(path), fmt.Sprintf(format, args...), sentinel)
}

func pathOr(p string) string {
	if p == "" {
		return "(descriptor)"
	}
	return p
}

// StoppedError is ErrStopped with how far the create had got.
type StoppedError struct {
	Path       string
	DoneBytes  uint64 // bytes reserved (and prefaulted, if asked) before the stop
	TotalBytes uint64 // the file's size
}

func (e *StoppedError) Error() string {
	return fmt.Sprintf("shm: create %s stopped after %d of %d bytes; nothing left behind", e.Path, e.DoneBytes, e.TotalBytes)
}

func (e *StoppedError) Unwrap() error { return ErrStopped }

package shm

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// Policy is a three-way choice for an optional resource (huge pages, mlock).
// The zero value is PolicyOff.
type Policy int

const (
	// PolicyOff: do not use the resource.
	PolicyOff Policy = iota
	// PolicyAuto: use it when available; otherwise log a warning, record the
	// fallback in the region header, and carry on.
	PolicyAuto
	// PolicyRequired: use it or fail with a typed error that says how to
	// make it available.
	PolicyRequired
)

// String returns "off", "auto" or "required".
func (p Policy) String() string {
	switch p {
	case PolicyOff:
		return "off"
	case PolicyAuto:
		return "auto"
	case PolicyRequired:
		return "required"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// ParsePolicy parses "off", "auto" or "required".
func ParsePolicy(s string) (Policy, error) {
	for _, p := range []Policy{PolicyOff, PolicyAuto, PolicyRequired} {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w: policy %q: want off, auto or required", ErrInvalidConfig, s)
}

// MarshalText implements encoding.TextMarshaler.
func (p Policy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Policy) UnmarshalText(b []byte) error {
	v, err := ParsePolicy(string(b))
	if err == nil {
		*p = v
	}
	return err
}

// Page sizes in bytes accepted for Config.HugePageSizeBytes.
const (
	HugePage2M uint64 = 2 << 20
	HugePage1G uint64 = 1 << 30
)

// Config says where regions live and how they are backed. Start from
// Default(); the zero value is not usable (Validate rejects it). A Config is
// a plain value: copy it freely; the hooks and the logger it points to must
// be safe for concurrent use if regions are created concurrently.
type Config struct {
	// DirName is the base directory's name under each filesystem root; it
	// is created 0700 if missing, and an existing one with group or other
	// permission bits, or owned by another user, is refused (ErrUnsafeDir),
	// never tightened. Default "kaelix".
	DirName string
	// TmpfsRoot is the tmpfs mount for regions without huge pages.
	// Default "/dev/shm".
	TmpfsRoot string
	// HugetlbfsRoot is the hugetlbfs mount to use; "" means the first
	// hugetlbfs mount in ProcRoot/self/mounts whose pagesize option equals
	// HugePageSizeBytes.
	HugetlbfsRoot string
	// HugePages: PolicyAuto (default) uses hugetlbfs when a mount and enough
	// free pages exist, else tmpfs with a warning and FlagFallbackTmpfs;
	// a region smaller than half a huge page (SmallForHugePage) goes to
	// tmpfs under auto, without the flag.
	HugePages Policy
	// HugePageSizeBytes is HugePage2M (default) or HugePage1G.
	HugePageSizeBytes uint64
	// TransparentHugePages applies madvise(MADV_HUGEPAGE) to tmpfs regions
	// (effective when /sys/kernel/mm/transparent_hugepage/shmem_enabled is
	// "advise" or "always").
	TransparentHugePages bool
	// Mode is the permission of region files, applied with fchmod so the
	// umask does not change it. Only permission bits; default 0600.
	Mode os.FileMode
	// GID, if >= 0, is the group of region files (fchown). Default -1.
	GID int
	// ProcRoot and SysRoot are where procfs and sysfs are mounted; tests
	// point them at fixture trees. Defaults "/proc" and "/sys".
	ProcRoot, SysRoot string
	// Logger receives fallback and mlock warnings. Nil means slog.Default().
	Logger *slog.Logger
	// Bind, if set, is called by Create with the fresh mapping and
	// CreateOptions.Node (>= 0) before any page is touched, to set the NUMA
	// policy (the daemon wires numa.Bind here). Required when Node >= 0.
	Bind func(b []byte, node int) error
	// Locate, if set, is called by Create after the pages are allocated and
	// returns the node they are on; it is recorded as Header.NodeActual
	// (-1 when Locate is nil or fails).
	Locate func(b []byte) (int, error)
}

// Default returns the production configuration.
func Default() Config {
	return Config{
		DirName:           "kaelix",
		TmpfsRoot:         "/dev/shm",
		HugePages:         PolicyAuto,
		HugePageSizeBytes: HugePage2M,
		Mode:              0o600,
		GID:               -1,
		ProcRoot:          "/proc",
		SysRoot:           "/sys",
	}
}

// Validate reports every invalid field at once, each wrapped with
// ErrInvalidConfig and naming the field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	if err := ValidateName(c.DirName); err != nil {
		bad("DirName", "%q is not a valid name", c.DirName)
	}
	if !filepath.IsAbs(c.TmpfsRoot) {
		bad("TmpfsRoot", "%q is not an absolute path", c.TmpfsRoot)
	}
	if c.HugetlbfsRoot != "" && !filepath.IsAbs(c.HugetlbfsRoot) {
		bad("HugetlbfsRoot", "%q is not an absolute path", c.HugetlbfsRoot)
	}
	if c.HugePages < PolicyOff || c.HugePages > PolicyRequired {
		bad("HugePages", "unknown policy %d", int(c.HugePages))
	}
	if c.HugePageSizeBytes != HugePage2M && c.HugePageSizeBytes != HugePage1G {
		bad("HugePageSizeBytes", "%d: want %d (2 MiB) or %d (1 GiB)", c.HugePageSizeBytes, HugePage2M, HugePage1G)
	}
	if c.Mode&^os.ModePerm != 0 || c.Mode&0o600 != 0o600 {
		bad("Mode", "%#o: want permission bits including 0600", uint32(c.Mode))
	}
	if c.GID < -1 {
		bad("GID", "%d: want -1 (unchanged) or a group id", c.GID)
	}
	if !filepath.IsAbs(c.ProcRoot) {
		bad("ProcRoot", "%q is not an absolute path", c.ProcRoot)
	}
	if !filepath.IsAbs(c.SysRoot) {
		bad("SysRoot", "%q is not an absolute path", c.SysRoot)
	}
	return errors.Join(errs...)
}

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// CreateOptions are the per-region choices for Create. The zero value plus
// SizeBytes is a valid request (no NUMA binding, no prefault, no mlock).
type CreateOptions struct {
	// SizeBytes is the minimum data area size. The file is HeaderBytes +
	// SizeBytes rounded up to the page size; Header.DataBytes gives the
	// actual data area size. Must be > 0.
	SizeBytes uint64
	// BindNode asks for the region's pages on NUMA node Node, through
	// Config.Bind (which must then be set). Without it the kernel's default
	// policy applies and Header.NodeRequested is -1.
	BindNode bool
	// Node is the NUMA node (>= 0) used when BindNode is set.
	Node int
	// Prefault touches every page before the region is published, so that
	// the first access by a client does not page-fault.
	Prefault bool
	// Mlock locks the creator's mapping in memory (PolicyOff by default).
	// Only the region's range is locked (never mlockall), and the
	// RLIMIT_MEMLOCK budget is checked first, so later allocations of the
	// process are unaffected.
	Mlock Policy
	// Replace atomically replaces an existing region of the same name; the
	// new header's generation is the old one's plus one. Processes attached
	// to the old file keep it until they Close. Without Replace, an existing
	// name gives ErrExist.
	Replace bool
	// Label is written into the header (Header.Label): what the region
	// holds, at most MaxLabelBytes bytes. kaelixd writes the full topic
	// name, which a long topic's file name only abbreviates.
	Label string
	// Instance is written into the header (Header.Instance): the
	// creator's instance id (kaelixd: its daemon instance id). 0 = none.
	Instance uint64
	// Stop, if not nil, stops the create when closed: Create reserves
	// and prefaults the pages in chunks of StopChunkBytes (a second or
	// more for GiBs) and looks at Stop before each, returning a
	// *StoppedError (ErrStopped) with nothing left behind.
	Stop <-chan struct{}
}

// StopChunkBytes is how much of a region Create reserves (and prefaults)
// between two looks at CreateOptions.Stop, rounded up to the page size (a
// 1 GiB huge page is one chunk): about 50 ms of work at the 6 s per GiB
// measured prefaulting tmpfs on a loaded 2-CPU VM, a few ms on an idle
// host.
const StopChunkBytes = 8 << 20

// AttachOptions are the choices for Open, AttachFile and AttachFD.
type AttachOptions struct {
	// ReadOnly maps the region PROT_READ (and opens it O_RDONLY by name).
	// A write through it faults; inside Guard that is ErrFault.
	ReadOnly bool
	// Label, if not "", must equal the header's Label, else the attach
	// fails with ErrLabelMismatch (the file holds something else, e.g.
	// another topic whose name abbreviates to the same file name).
	Label string
}

package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/numa"
	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/shm"
)

// Severity grades a Finding.
type Severity int

// Severities. An Error finding stops kaelixd from starting (the config
// requires what the host lacks); a Warning is logged.
const (
	Warning Severity = iota
	Error
)

func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// Finding is one result of Check.
type Finding struct {
	Severity Severity
	Key      string // the key the finding is about
	Msg      string
}

func (f Finding) String() string { return f.Severity.String() + ": " + f.Key + ": " + f.Msg }

// Host is what Check knows about the machine. LoadHost reads it; tests
// build one from the numa fixture trees and chosen numbers.
type Host struct {
	// Topology is the NUMA topology; nil skips the NUMA and hugepage checks.
	Topology *numa.Topology
	// CPUs is the number of usable CPUs; 0 skips the worker_threads check.
	CPUs int
	// ShmTotalBytes and ShmFreeBytes describe the tmpfs at shm.base_dir; 0
	// skips the size check.
	ShmTotalBytes, ShmFreeBytes uint64
	// MemlockBytes is RLIMIT_MEMLOCK's soft limit (math.MaxUint64 when
	// unlimited).
	MemlockBytes uint64
	// Writable reports whether a directory can take new files; nil means
	// access(2) with W_OK|X_OK.
	Writable func(dir string) error
}

// LoadHost reads the host's facts for Check. root "" is the live host;
// another root is a fixture tree (its sys/ and proc/ are read for NUMA;
// the other facts still come from this machine).
func LoadHost(c Config, root string) Host {
	h := Host{CPUs: runtime.NumCPU(), MemlockBytes: math.MaxUint64}
	if t, err := numa.Load(root); err == nil {
		h.Topology = t
	}
	var st unix.Statfs_t
	if unix.Statfs(c.Shm.BaseDir, &st) == nil {
		h.ShmTotalBytes = st.Blocks * uint64(st.Bsize)
		h.ShmFreeBytes = st.Bavail * uint64(st.Bsize)
	}
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl) == nil && rl.Cur != unix.RLIM_INFINITY {
		h.MemlockBytes = rl.Cur
	}
	return h
}

// TopicBytes is the memory one declared topic takes: its partitions'
// regions (per partition a data and a consumer region, each a header
// block plus its part of the ring), 0 if the topic is invalid.
func (c Config) TopicBytes(t Topic) uint64 {
	rc, err := c.TopicSpec(t).RingConfig()
	if err != nil {
		return 0
	}
	d, cons, err := ringbuf.SizeFor(rc)
	if err != nil {
		return 0
	}
	s := c.TopicSpec(t)
	slots := uint64(rc.MaxSubscribers + rc.MaxGroups)
	return uint64(s.Partitions) * (uint64(d+cons) + slots*ringbuf.SlotBytes + (2+slots)*shm.DataOffsetBytes)
}

// Check compares c with the host and reports what will not work or will
// work worse than asked: huge pages requested but not reserved on a node, a
// topic on a NUMA node that does not exist, more worker threads than CPUs,
// declared topics larger than the tmpfs, RLIMIT_MEMLOCK below what mlock
// needs, and socket or state directories that cannot be written. A finding
// is an Error where the config requires the thing (hugepages = required,
// mlock = required, a named node, a directory to write), else a Warning.
func Check(c Config, h Host) []Finding {
	var out []Finding
	add := func(sev Severity, key, format string, args ...any) {
		out = append(out, Finding{Severity: sev, Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	var total uint64
	for _, t := range c.Topics {
		total += c.TopicBytes(t)
	}
	page := uint64(c.Shm.PageSize)
	if topo := h.Topology; topo != nil {
		ids := map[int]bool{}
		var all []int
		for _, n := range topo.Nodes {
			ids[n.ID] = true
			all = append(all, n.ID)
		}
		wanted := map[int]bool{}
		for i, t := range c.Topics {
			if t.NUMANode == nil || !c.Runtime.NUMAAware {
				continue
			}
			if !ids[*t.NUMANode] {
				add(Error, fmt.Sprintf("topics[%d].numa_node", i), "node %d does not exist on this host (nodes: %v)", *t.NUMANode, all)
				continue
			}
			wanted[*t.NUMANode] = true
		}
		if c.Shm.HugePages != shm.PolicyOff {
			sev := Warning
			if c.Shm.HugePages == shm.PolicyRequired {
				sev = Error
			}
			reserved := 0
			for _, n := range topo.Nodes {
				p, ok := n.Pool(page)
				has := ok && p.Total > 0
				if has {
					reserved++
				}
				if !has && (wanted[n.ID] || (len(wanted) == 0 && c.Shm.HugePages == shm.PolicyRequired)) {
					fix := "reserve some (scripts/hugepages.sh)"
					if ok {
						fix = "write a page count to " + p.SysfsPath
					}
					add(sev, "shm.hugepages", "%s but no %v pages are reserved on node %d; %s", c.Shm.HugePages, Size(page), n.ID, fix)
				}
			}
			if reserved == 0 && len(wanted) == 0 && c.Shm.HugePages == shm.PolicyAuto {
				add(Warning, "shm.hugepages", "auto: no %v pages are reserved on any node; regions will use tmpfs", Size(page))
			}
		}
	}
	if h.CPUs > 0 && c.Runtime.WorkerThreads > h.CPUs {
		add(Warning, "runtime.worker_threads", "%d exceeds the %d CPUs of this host", c.Runtime.WorkerThreads, h.CPUs)
	}
	if h.ShmTotalBytes > 0 && total > 0 {
		switch {
		case total > h.ShmTotalBytes:
			sev := Error
			if c.Shm.HugePages != shm.PolicyOff {
				sev = Warning // huge pages may hold them instead
			}
			add(sev, "topics", "declared topics need %v but %s holds %v", Size(total), c.Shm.BaseDir, Size(h.ShmTotalBytes))
		case total > h.ShmFreeBytes:
			add(Warning, "topics", "declared topics need %v but %s has %v free", Size(total), c.Shm.BaseDir, Size(h.ShmFreeBytes))
		}
	}
	if c.Shm.Mlock != shm.PolicyOff && total > h.MemlockBytes {
		sev := Warning
		if c.Shm.Mlock == shm.PolicyRequired {
			sev = Error
		}
		add(sev, "shm.mlock", "%s: declared topics need %v locked but RLIMIT_MEMLOCK is %v (raise it: ulimit -l, LimitMEMLOCK=)", c.Shm.Mlock, Size(total), Size(h.MemlockBytes))
	}
	writable := h.Writable
	if writable == nil {
		writable = accessWrite
	}
	for _, d := range []struct{ key, dir string }{
		{"daemon.socket_path", filepath.Dir(c.Daemon.SocketPath)},
		{"daemon.state_dir", c.StateDirOrDefault()},
		{"shm.dir_name", filepath.Join(c.Shm.BaseDir, c.Shm.DirName)},
	} {
		anc := existingAncestor(d.dir)
		if fi, err := os.Stat(anc); err == nil && !fi.IsDir() {
			add(Error, d.key, "directory %s cannot be made: %s is %s, not a directory", d.dir, anc, fileKind(fi))
		} else if err := writable(anc); err != nil {
			add(Error, d.key, "directory %s is not writable: %v", d.dir, err)
		}
	}
	return out
}

// CheckErrors returns the Error findings as one error, or nil.
func CheckErrors(fs []Finding) error {
	var msgs []string
	for _, f := range fs {
		if f.Severity == Error {
			msgs = append(msgs, f.Key+": "+f.Msg)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: this host cannot run the configuration:\n  %s", ErrInvalid, strings.Join(msgs, "\n  "))
}

// fileKind names fi's file type for messages: "a regular file".
func fileKind(fi fs.FileInfo) string {
	switch t := fi.Mode().Type(); {
	case t == 0:
		return "a regular file"
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case t&fs.ModeSocket != 0:
		return "a socket"
	default:
		return "a special file"
	}
}

func accessWrite(dir string) error { return unix.Access(dir, unix.W_OK|unix.X_OK) }

// existingAncestor returns dir or its closest ancestor that exists (a
// missing directory is created by the daemon in its parent).
func existingAncestor(dir string) string {
	for {
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR) {
			return dir
		}
		p := filepath.Dir(dir)
		if p == dir {
			return dir
		}
		dir = p
	}
}

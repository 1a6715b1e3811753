package shm

// Thin readers for procfs and sysfs, all under Config.ProcRoot / SysRoot so
// that tests run them against fixture trees in testdata/.

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kaelix-io/kaelix/internal/bytesize"
)

// mount is one line of /proc/self/mounts.
type mount struct {
	Dir     string
	FSType  string
	Options []string
}

// readMounts parses procRoot/self/mounts, decoding the octal escapes
// (\040 for space and so on) that the kernel uses in paths.
func readMounts(procRoot string) ([]mount, error) {
	p := filepath.Join(procRoot, "self", "mounts")
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, opErr("read", p, err)
	}
	var ms []mount
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 {
			continue
		}
		ms = append(ms, mount{Dir: unescapeMount(f[1]), FSType: f[2], Options: strings.Split(f[3], ",")})
	}
	return ms, nil
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// defaultHugePageSize reads Hugepagesize from procRoot/meminfo, in bytes.
func defaultHugePageSize(procRoot string) uint64 {
	data, err := os.ReadFile(filepath.Join(procRoot, "meminfo"))
	if err != nil {
		return HugePage2M
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Hugepagesize:"); ok {
			f := strings.Fields(rest)
			if v, err := strconv.ParseUint(f[0], 10, 64); err == nil && len(f) == 2 && f[1] == "kB" {
				return v << 10
			}
		}
	}
	return HugePage2M
}

// findHugetlbfs returns the first hugetlbfs mount with page size
// pageSize bytes (a mount without a pagesize option has the default size).
func findHugetlbfs(procRoot string, pageSize uint64) (string, error) {
	ms, err := readMounts(procRoot)
	if err != nil {
		return "", err
	}
	for _, m := range ms {
		if m.FSType != "hugetlbfs" {
			continue
		}
		size := defaultHugePageSize(procRoot)
		for _, o := range m.Options {
			if v, ok := strings.CutPrefix(o, "pagesize="); ok && v != "" {
				if n, err := bytesize.Parse(v); err == nil {
					size = n
				}
			}
		}
		if size == pageSize {
			return m.Dir, nil
		}
	}
	return "", nil
}

// hugePool describes the free huge pages of one size, globally or on a node.
type hugePool struct {
	FreePages uint64 // free minus reserved (global) or free (per node)
	NrPath    string // the nr_hugepages file an operator writes to add pages
}

// readHugePool reads the free huge pages of pageSize bytes on node (or on
// the whole system for node < 0) from sysfs under sysRoot.
//
// Global: /sys/kernel/mm/hugepages/hugepages-<kB>kB/{free,resv}_hugepages;
// free minus resv, since reserved pages are promised to existing mappings.
// Node:   /sys/devices/system/node/node<N>/hugepages/hugepages-<kB>kB/free_hugepages.
func readHugePool(sysRoot string, node int, pageSize uint64) (hugePool, error) {
	sub := fmt.Sprintf("hugepages-%dkB", pageSize>>10)
	dir := filepath.Join(sysRoot, "kernel", "mm", "hugepages", sub)
	if node >= 0 {
		dir = filepath.Join(sysRoot, "devices", "system", "node", fmt.Sprintf("node%d", node), "hugepages", sub)
	}
	pool := hugePool{NrPath: filepath.Join(dir, "nr_hugepages")}
	free, err := readUint(filepath.Join(dir, "free_hugepages"))
	if err != nil {
		return pool, err
	}
	if node < 0 {
		resv, err := readUint(filepath.Join(dir, "resv_hugepages"))
		if err != nil {
			return pool, err
		}
		if resv > free {
			resv = free
		}
		free -= resv
	}
	pool.FreePages = free
	return pool, nil
}

func readUint(p string) (uint64, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return 0, opErr("read", p, err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, opErr("parse", p, err)
	}
	return v, nil
}

// lockStatus is what mlockBudget needs from procRoot/self/status.
type lockStatus struct {
	LockedBytes uint64 // VmLck
	CapIPCLock  bool   // CAP_IPC_LOCK in CapEff: RLIMIT_MEMLOCK does not apply
}

const capIPCLock = 14

func readLockStatus(procRoot string) (lockStatus, error) {
	p := filepath.Join(procRoot, "self", "status")
	data, err := os.ReadFile(p)
	if err != nil {
		return lockStatus{}, opErr("read", p, err)
	}
	var st lockStatus
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "VmLck":
			if n, err := strconv.ParseUint(strings.TrimSuffix(v, " kB"), 10, 64); err == nil {
				st.LockedBytes = n << 10
			}
		case "CapEff":
			if n, err := strconv.ParseUint(v, 16, 64); err == nil {
				st.CapIPCLock = n&(1<<capIPCLock) != 0
			}
		}
	}
	return st, nil
}

// mlockBudget returns "" when locking need more bytes fits, else why not.
// limit is RLIMIT_MEMLOCK's soft limit in bytes.
func mlockBudget(limit uint64, st lockStatus, need uint64) string {
	if st.CapIPCLock {
		return ""
	}
	if limit == ^uint64(0) || st.LockedBytes+need <= limit && st.LockedBytes+need >= need {
		return ""
	}
	return fmt.Sprintf("RLIMIT_MEMLOCK is %d bytes, %d already locked, region needs %d more "+
		"(raise it: ulimit -l, LimitMEMLOCK= in the systemd unit, or grant CAP_IPC_LOCK)",
		limit, st.LockedBytes, need)
}

// RemoveBaseDirs removes cfg's base directory (DirName) from the tmpfs
// root and from every hugetlbfs mount, each only if it is empty: what a
// daemon that removes its regions on exit calls last, so that it leaves
// nothing behind. Errors are ignored: a directory that is not empty, or
// not there, stays as it is.
func RemoveBaseDirs(cfg Config) {
	if cfg.DirName == "" {
		return
	}
	roots := []string{cfg.TmpfsRoot, cfg.HugetlbfsRoot}
	if ms, err := readMounts(cfg.ProcRoot); err == nil {
		for _, m := range ms {
			if m.FSType == "hugetlbfs" {
				roots = append(roots, m.Dir)
			}
		}
	}
	for _, root := range roots {
		if root != "" {
			os.Remove(filepath.Join(root, cfg.DirName)) // only if empty
		}
	}
}

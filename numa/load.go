package numa

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Files read, relative to the root given to Load. Formats:
// Documentation/ABI/stable/sysfs-devices-node,
// Documentation/ABI/testing/sysfs-kernel-mm-hugepages,
// Documentation/admin-guide/cputopology.rst, proc(5) for /proc/meminfo.
const (
	nodeDirRel      = "sys/devices/system/node" // nodeN/{cpulist,distance,meminfo,hugepages/}
	cpuOnlineRel    = "sys/devices/system/cpu/online"
	globalHugeRel   = "sys/kernel/mm/hugepages" // hugepages-<K>kB/, used without NUMA
	procRel         = "proc"                    // meminfo, used without NUMA
	hugeDirPrefix   = "hugepages-"
	hugeDirSuffix   = "kB"
	localDistance   = 10 // LOCAL_DISTANCE in include/linux/topology.h
	nrHugePagesFile = "nr_hugepages"
)

// Load reads the NUMA topology of the host whose sysfs and procfs are
// mounted at root/sys and root/proc. root "" or "/" is the live host; any
// other root is a copy, such as the fixture trees under testdata/.
//
// It reads, for every root/sys/devices/system/node/nodeN directory:
// cpulist, distance, meminfo and hugepages/hugepages-<K>kB/{nr,free,surplus}_hugepages.
// A kernel built without NUMA has no node directory; Load then reports one
// node 0 holding root/sys/devices/system/cpu/online, the memory of
// root/proc/meminfo and the pools of root/sys/kernel/mm/hugepages, with
// Distances [10].
//
// Errors name the file at fault: a missing file wraps fs.ErrNotExist (in an
// *fs.PathError); a malformed one is a *ParseError matching ErrMalformed.
// Load does no caching and takes no locks; concurrent calls are safe.
func Load(root string) (*Topology, error) {
	if root == "" {
		root = "/"
	}
	nodeDir := filepath.Join(root, nodeDirRel)
	entries, err := os.ReadDir(nodeDir)
	if errors.Is(err, fs.ErrNotExist) {
		return loadFlat(root)
	}
	if err != nil {
		return nil, fmt.Errorf("numa: load: %w", err)
	}
	var ids []int
	for _, e := range entries {
		num, ok := strings.CutPrefix(e.Name(), "node")
		if !ok || !e.IsDir() {
			continue // has_cpu, online, possible, power, uevent, ...
		}
		id, err := strconv.Atoi(num)
		if err != nil || id < 0 {
			continue
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("numa: load: %w", &ParseError{Path: nodeDir, Err: errors.New("no nodeN directory")})
	}
	slices.Sort(ids)

	t := &Topology{Nodes: make([]Node, len(ids))}
	for i, id := range ids {
		if err := loadNode(&t.Nodes[i], filepath.Join(nodeDir, "node"+strconv.Itoa(id)), id, ids); err != nil {
			return nil, fmt.Errorf("numa: load node %d: %w", id, err)
		}
	}
	return t, nil
}

// loadNode fills n from the node directory dir. ids are all online nodes,
// ascending: the columns of the distance file.
func loadNode(n *Node, dir string, id int, ids []int) error {
	n.ID = id
	var err error
	if n.CPUs, err = readList(filepath.Join(dir, "cpulist")); err != nil {
		return err
	}
	if n.Distances, err = readDistances(filepath.Join(dir, "distance"), ids); err != nil {
		return err
	}
	if n.MemTotalBytes, n.MemFreeBytes, err = readMeminfo(filepath.Join(dir, "meminfo"), id); err != nil {
		return err
	}
	n.HugePages, err = readHugePools(filepath.Join(dir, "hugepages"))
	return err
}

// loadFlat builds the one-node topology of a kernel without NUMA.
func loadFlat(root string) (*Topology, error) {
	cpus, err := readList(filepath.Join(root, cpuOnlineRel))
	if err != nil {
		return nil, fmt.Errorf("numa: load (no NUMA): %w", err)
	}
	total, free, err := readMeminfo(filepath.Join(root, procRel, "meminfo"), -1)
	if err != nil {
		return nil, fmt.Errorf("numa: load (no NUMA): %w", err) // a *ParseError or *fs.PathError names the file
	}
	pools, err := readHugePools(filepath.Join(root, globalHugeRel))
	if err != nil {
		return nil, fmt.Errorf("numa: load (no NUMA): %w", err)
	}
	return &Topology{Nodes: []Node{{
		ID:            0,
		CPUs:          cpus,
		Distances:     []int{localDistance},
		MemTotalBytes: total,
		MemFreeBytes:  free,
		HugePages:     pools,
	}}}, nil
}

// readList reads a file in the kernel list format ("0-3,8-11").
func readList(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ids, err := parseList(string(b))
	if err != nil {
		return nil, &ParseError{Path: path, Line: 1, Text: strings.TrimSpace(string(b)), Err: err}
	}
	return ids, nil
}

// readDistances reads a node's distance file: one line of positive
// integers, one per online node in ascending id order (node_read_distance
// in drivers/base/node.c), and returns them indexed by node id.
func readDistances(path string, ids []int) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text := strings.TrimSpace(string(b))
	fields := strings.Fields(text)
	if len(fields) != len(ids) {
		return nil, &ParseError{Path: path, Line: 1, Text: text,
			Err: fmt.Errorf("%d distances for %d nodes", len(fields), len(ids))}
	}
	dist := make([]int, ids[len(ids)-1]+1)
	for i, f := range fields {
		d, err := strconv.Atoi(f)
		if err == nil && d <= 0 {
			err = fmt.Errorf("distance %d not positive", d)
		}
		if err != nil {
			return nil, &ParseError{Path: path, Line: 1, Text: text, Err: err}
		}
		dist[ids[i]] = d
	}
	return dist, nil
}

// readMeminfo reads MemTotal and MemFree (bytes) from a node's meminfo
// ("Node <id> <key>: <value> [kB]" lines) or, with node -1, from
// /proc/meminfo ("<key>: <value> [kB]"). Every line must have that form.
func readMeminfo(path string, node int) (total, free uint64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	var haveTotal, haveFree bool
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		bad := func(cause error) error { return &ParseError{Path: path, Line: i + 1, Text: line, Err: cause} }
		if node >= 0 {
			if len(f) < 4 || len(f) > 5 || f[0] != "Node" || !strings.HasSuffix(f[2], ":") {
				return 0, 0, bad(errors.New(`want "Node <id> <key>: <value> [kB]"`))
			}
			if f[1] != strconv.Itoa(node) {
				return 0, 0, bad(fmt.Errorf("line is for node %s, file is node %d's", f[1], node))
			}
			f = f[2:]
		} else if len(f) < 2 || len(f) > 3 || !strings.HasSuffix(f[0], ":") {
			return 0, 0, bad(errors.New(`want "<key>: <value> [kB]"`))
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return 0, 0, bad(err)
		}
		if len(f) == 3 {
			if f[2] != "kB" {
				return 0, 0, bad(fmt.Errorf("unit %q, want kB", f[2]))
			}
			v *= 1024
		}
		switch f[0] {
		case "MemTotal:":
			total, haveTotal = v, true
		case "MemFree:":
			free, haveFree = v, true
		}
	}
	if !haveTotal || !haveFree {
		return 0, 0, &ParseError{Path: path, Err: errors.New("no MemTotal or MemFree line")}
	}
	return total, free, nil
}

// readHugePools reads the hugepages-<K>kB directories under dir. A missing
// dir (no hugetlb support) yields no pools and no error.
func readHugePools(dir string) ([]HugePagePool, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pools []HugePagePool
	for _, e := range entries {
		kb, ok := strings.CutPrefix(e.Name(), hugeDirPrefix)
		if !ok {
			continue
		}
		kb, ok = strings.CutSuffix(kb, hugeDirSuffix)
		sub := filepath.Join(dir, e.Name())
		size, err := strconv.ParseUint(kb, 10, 64)
		if !ok || err != nil || size == 0 {
			return nil, &ParseError{Path: sub, Err: errors.New("directory name not hugepages-<size>kB")}
		}
		p := HugePagePool{PageSizeBytes: size * 1024, SysfsPath: filepath.Join(sub, nrHugePagesFile)}
		for _, c := range []struct {
			file string
			dst  *uint64
		}{
			{nrHugePagesFile, &p.Total},
			{"free_hugepages", &p.Free},
			{"surplus_hugepages", &p.Surplus},
		} {
			if *c.dst, err = readUint(filepath.Join(sub, c.file)); err != nil {
				return nil, err
			}
		}
		pools = append(pools, p)
	}
	slices.SortFunc(pools, func(a, b HugePagePool) int { return cmp.Compare(a.PageSizeBytes, b.PageSizeBytes) })
	return pools, nil
}

// readUint reads a file holding one decimal unsigned integer.
func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	text := strings.TrimSpace(string(b))
	v, err := strconv.ParseUint(text, 10, 64)
	if err != nil {
		return 0, &ParseError{Path: path, Line: 1, Text: text, Err: err}
	}
	return v, nil
}

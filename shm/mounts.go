package shm

import "path/filepath"

// HugetlbfsMounts lists the mount points of every hugetlbfs in
// procRoot/self/mounts ("/proc" on a live host), in mount order, for tools
// that look for regions without a Config (package stat). Errors: the
// mounts file's read error.
func HugetlbfsMounts(procRoot string) ([]string, error) {
	ms, err := readMounts(procRoot)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range ms {
		if m.FSType == "hugetlbfs" {
			out = append(out, m.Dir)
		}
	}
	return out, nil
}

// HugeDir is the base directory regions of cfg get on hugetlbfs (the mount
// of cfg's page size, then DirName), or "" when there is no such mount or
// cfg.HugePages is off.
func HugeDir(cfg Config) string {
	if cfg.HugePages == PolicyOff {
		return ""
	}
	root := hugeRoot(&cfg)
	if root == "" {
		return ""
	}
	return filepath.Join(root, cfg.DirName)
}

package stat

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// RegistryFileName is the daemon's topic registry in its state dir.
const RegistryFileName = "topics.json"

// Registry is the daemon's topic registry as it saves it (atomically:
// temp file, fsync, rename) at every create and delete: what a reader
// needs to find the regions without asking the daemon.
//
//	{"version": 2, "topics": [{"spec": {...}, "created_ns": N,
//	  "regions": ["T.p0", ...], "consumer_regions": ["T.p0.c", ...]}],
//	 "region_dirs": ["/dev/shm/kaelix", "/dev/hugepages/kaelix"]}
type Registry struct {
	Version int             `json:"version"`
	Topics  []RegistryTopic `json:"topics"`
	// RegionDirs are the directories the daemon keeps its regions in
	// (absent in registries of daemons before 2026-12-08).
	RegionDirs []string `json:"region_dirs,omitempty"`
}

// RegistryTopic is one topic of a Registry: its spec, creation time (unix
// ns) and region names, one data and one consumer region per partition.
// Slot regions are named after the data region (wire.SlotRegionName).
type RegistryTopic struct {
	Spec            wire.TopicSpec `json:"spec"`
	CreatedNS       int64          `json:"created_ns"`
	Regions         []string       `json:"regions"`
	ConsumerRegions []string       `json:"consumer_regions,omitempty"`
}

// RegistryVersion is the registry format this package reads.
const RegistryVersion = 2

// ReadRegistry reads the registry in stateDir. Errors: the read error
// (fs.ErrNotExist: no daemon has kept topics there), malformed JSON, or
// another version (named).
func ReadRegistry(stateDir string) (Registry, error) {
	path := filepath.Join(stateDir, RegistryFileName)
	b, err := os.ReadFile(path)
	if err != nil {
		return Registry{}, err
	}
	var r Registry
	if err := json.Unmarshal(b, &r); err != nil {
		return Registry{}, fmt.Errorf("stat: registry %s: %w", path, err)
	}
	if r.Version != RegistryVersion {
		return Registry{}, fmt.Errorf("stat: registry %s has version %d, want %d", path, r.Version, RegistryVersion)
	}
	return r, nil
}

// Dirs returns the directories regions may live in: dirName (the daemon's
// shm.dir_name, "kaelix" if "") under every hugetlbfs mount of
// procRoot/self/mounts, then under tmpfsRoot ("/dev/shm" if ""). Only
// directories that exist are listed.
func Dirs(procRoot, tmpfsRoot, dirName string) []string {
	if procRoot == "" {
		procRoot = "/proc"
	}
	if tmpfsRoot == "" {
		tmpfsRoot = "/dev/shm"
	}
	if dirName == "" {
		dirName = shm.Default().DirName
	}
	roots, _ := shm.HugetlbfsMounts(procRoot)
	var out []string
	for _, root := range append(roots, tmpfsRoot) {
		d := filepath.Join(root, dirName)
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			out = append(out, d)
		}
	}
	return out
}

// Find returns the path of region name in the first of dirs that holds
// it, or "" and an error wrapping fs.ErrNotExist.
func Find(dirs []string, name string) (string, error) {
	if err := shm.ValidateName(name); err != nil {
		return "", err
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if _, err := os.Lstat(p); err == nil {
			return p, nil
		}
	}
	if len(dirs) == 0 {
		return "", fmt.Errorf("stat: region %s: no region directory to look in (pass kaelixd's --shm-dir, or --region-dir): %w", name, fs.ErrNotExist)
	}
	return "", fmt.Errorf("stat: region %s not in %v: %w", name, dirs, fs.ErrNotExist)
}

// Partition names one partition's region files: what OpenRingView maps.
// SlotPaths has one entry per subscriber slot then per queue-group slot;
// "" for a slot whose file is absent (it is then not read).
type Partition struct {
	Topic        string   `json:"topic"`
	Index        int      `json:"partition"`
	DataPath     string   `json:"data_path"`
	ConsumerPath string   `json:"consumer_path"`
	SlotPaths    []string `json:"slot_paths,omitempty"`
}

// FromTopics lists the partitions of a daemon's topic list (the paths it
// reports), optionally only topic only ("" for all).
func FromTopics(list []wire.TopicInfo, only string) []Partition {
	var out []Partition
	for _, t := range list {
		if only != "" && t.Spec.Name != only {
			continue
		}
		for _, p := range t.Partitions {
			out = append(out, Partition{Topic: t.Spec.Name, Index: p.Index, DataPath: p.Path,
				ConsumerPath: p.ConsumerPath, SlotPaths: p.SlotPaths(t.Spec.MaxSubscribers)})
		}
	}
	return out
}

// FromRegistry lists the partitions of reg's topics (only topic only, ""
// for all), their files found in dirs (see Dirs). A partition whose data
// or consumer region is missing is left out and named in the error
// returned with the rest (errors.Join); a missing slot file is "".
func FromRegistry(reg Registry, dirs []string, only string) ([]Partition, error) {
	var out []Partition
	var errs []error
	for _, t := range reg.Topics {
		if only != "" && t.Spec.Name != only {
			continue
		}
		spec := t.Spec.Normalize()
		for i, data := range t.Regions {
			if i >= len(t.ConsumerRegions) {
				errs = append(errs, fmt.Errorf("stat: topic %q partition %d has no consumer region in the registry", t.Spec.Name, i))
				continue
			}
			dp, err := Find(dirs, data)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			cp, err := Find(dirs, t.ConsumerRegions[i])
			if err != nil {
				errs = append(errs, err)
				continue
			}
			p := Partition{Topic: t.Spec.Name, Index: i, DataPath: dp, ConsumerPath: cp,
				SlotPaths: make([]string, spec.MaxSubscribers+spec.MaxGroups)}
			for k := range p.SlotPaths {
				p.SlotPaths[k], _ = Find(dirs, wire.SlotRegionName(data, k, spec.MaxSubscribers))
			}
			out = append(out, p)
		}
	}
	return out, errors.Join(errs...)
}

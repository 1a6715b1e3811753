package daemon

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// Registry rebuild. When topics.json is missing or cannot be read
// (truncated, not JSON, an unknown version), adopt does not start empty,
// which would remove every region as stale: it rebuilds the registry from
// the region files, which describe themselves. (Missing, with no region
// there, is a first start.)
//
//	spec field         read from
//	name               data region header label (the full topic name)
//	partitions         data regions T.p0 .. T.pN-1 labelled T (no gap)
//	kind, policy       ring header (data region)
//	capacity_bytes     ring header
//	max_message_bytes  ring header (max payload)
//	max_publishers     ring header
//	max_subscribers    count of slot regions T.p0.sK
//	max_groups         count of queue-group slot regions T.p0.gJ
//	bind_node, node    region header's requested NUMA node (-1 = none)
//	mode, gid          the consumer region file's permission bits and group
//	created_ns         partition 0's region header creation time
//
// A file whose header does not validate as a Kaelix region's (bad magic,
// too short) is not a region: it is left alone and logged. Any region that
// fits no topic (another layout version, a corrupt header or ring, a
// partition missing, a name that is not its label's) makes the rebuild
// fail with an error naming the file: kaelixd then refuses to start and
// removes nothing, leaving topics.json in place for the operator.

// rebuildError is a region that the rebuild cannot place in a topic.
type rebuildError struct {
	path, why string
}

func (e *rebuildError) Error() string { return e.path + ": " + e.why }

// regionDirs lists the base directories regions of d may be in: tmpfs,
// and hugetlbfs if a mount of the page size exists (whatever the policy:
// an earlier daemon may have had huge pages on).
func (d *Daemon) regionDirs() []string {
	dirs := []string{filepath.Join(d.shm.TmpfsRoot, d.shm.DirName)}
	hc := d.shm
	if hc.HugePages == shm.PolicyOff {
		hc.HugePages = shm.PolicyAuto
	}
	if hd := shm.HugeDir(hc); hd != "" && hd != dirs[0] {
		dirs = append(dirs, hd)
	}
	return dirs
}

// rebuildState builds a state file from the region files' headers (see
// above). The regions are opened to read them and closed again.
func (d *Daemon) rebuildState() (stateFile, error) {
	type part struct {
		name string
		hdr  shm.Header
	}
	topics := map[string]map[int]part{}
	owned := map[string]string{} // consumer and slot region names -> path, to account for
	for _, dir := range d.regionDirs() {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			name := e.Name()
			if !e.Type().IsRegular() || name[0] == '.' || shm.ValidateName(name) != nil {
				continue
			}
			path := filepath.Join(dir, name)
			h, err := shm.ReadHeaderFile(path)
			if errors.Is(err, shm.ErrBadMagic) || errors.Is(err, shm.ErrTruncated) {
				d.log.Warn("file in the region directory is not a Kaelix region; left alone", "path", path, "err", err)
				continue
			}
			if err != nil {
				return stateFile{}, &rebuildError{path, fmt.Sprintf("region header unreadable: %v", err)}
			}
			i, ok := dataPartition(name)
			if !ok {
				owned[name] = path
				continue
			}
			if h.Label == "" || regionName(h.Label, i, false) != name {
				return stateFile{}, &rebuildError{path, fmt.Sprintf("data region whose header names topic %q, whose partition %d region would be %q", h.Label, i, regionName(h.Label, i, false))}
			}
			if topics[h.Label] == nil {
				topics[h.Label] = map[int]part{}
			}
			topics[h.Label][i] = part{name, h}
		}
	}
	st := stateFile{Version: stateVersion, Topics: []stateTopic{}}
	for _, tname := range slices.Sorted(maps.Keys(topics)) {
		parts := topics[tname]
		n := 0
		for i := range parts {
			n = max(n, i+1)
		}
		for i := 0; i < n; i++ {
			if _, ok := parts[i]; !ok {
				return stateFile{}, &rebuildError{filepath.Join(d.regionDirs()[0], regionName(tname, i, false)), fmt.Sprintf("missing: topic %q has data regions up to partition %d", tname, n-1)}
			}
		}
		spec, err := d.specFromRegions(tname, parts[0].hdr)
		if err != nil {
			return stateFile{}, err
		}
		spec.Partitions = n
		stt := stateTopic{Spec: spec, CreatedNS: parts[0].hdr.CreatedNS}
		for i := 0; i < n; i++ {
			// Every file of every partition must be there: adopt would
			// re-create a partition with a missing one empty, removing
			// the others.
			names := []string{regionName(tname, i, true)}
			for k := 0; k < spec.MaxSubscribers+spec.MaxGroups; k++ {
				names = append(names, slotRegionName(tname, i, k, spec.MaxSubscribers))
			}
			for _, rn := range names {
				if !d.regionExists(rn) {
					return stateFile{}, &rebuildError{filepath.Join(d.regionDirs()[0], rn), fmt.Sprintf("missing: topic %q partition %d has its data region %s but not this one", tname, i, parts[i].name)}
				}
			}
			stt.Regions = append(stt.Regions, parts[i].name)
			stt.ConsumerRegions = append(stt.ConsumerRegions, regionName(tname, i, true))
			delete(owned, regionName(tname, i, true))
			for k := 0; k < spec.MaxSubscribers+spec.MaxGroups; k++ {
				delete(owned, slotRegionName(tname, i, k, spec.MaxSubscribers))
			}
		}
		st.Topics = append(st.Topics, stt)
	}
	if len(owned) > 0 {
		name := slices.Min(slices.Collect(maps.Keys(owned)))
		return stateFile{}, &rebuildError{owned[name], "region of no topic whose data regions are present (a consumer or slot region without its data region)"}
	}
	return st, nil
}

// dataPartition reports whether name is a data region's (ends in ".pN")
// and its partition N.
func dataPartition(name string) (int, bool) {
	j := strings.LastIndex(name, ".p")
	if j < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(name[j+2:], 10, 31)
	if err != nil || name[j+2:] != strconv.FormatUint(n, 10) {
		return 0, false
	}
	return int(n), true
}

// specFromRegions reads topic name's spec from partition 0's regions: the
// ring header for kind, policy, geometry and publisher slots, the slot
// files for the subscriber and group slot counts, the consumer region
// file for mode and group, hdr for the NUMA node.
func (d *Daemon) specFromRegions(name string, hdr shm.Header) (wire.TopicSpec, error) {
	var rc ringbuf.Config
	for _, g := range []struct {
		n      *int
		suffix string
	}{{&rc.MaxSubscribers, slotSuffix}, {&rc.MaxGroups, groupSuffix}} {
		for {
			if !d.regionExists(partRegionName(name, 0, g.suffix+strconv.Itoa(*g.n))) {
				break
			}
			*g.n++
		}
	}
	spec := wire.TopicSpec{Name: name, Partitions: 1, MaxSubscribers: rc.MaxSubscribers, MaxGroups: rc.MaxGroups}
	dname, cname := regionName(name, 0, false), regionName(name, 0, true)
	fail := func(region string, err error) (wire.TopicSpec, error) {
		return wire.TopicSpec{}, &rebuildError{filepath.Join(d.regionDirs()[0], region), err.Error()}
	}
	sc := d.shm
	data, err := shm.Open(sc, dname, shm.AttachOptions{ReadOnly: true, Label: name})
	if err != nil {
		return fail(dname, err)
	}
	defer data.Close()
	consumer, err := shm.Open(sc, cname, shm.AttachOptions{ReadOnly: true, Label: name})
	if err != nil {
		return fail(cname, err)
	}
	defer consumer.Close()
	slots, err := d.openSlotsRO(name, rc)
	for _, s := range slots {
		defer s.Close()
	}
	if err != nil {
		return fail(dname, err)
	}
	areas := make([]ringbuf.SlotArea, len(slots))
	for i, s := range slots {
		areas[i] = ringbuf.SlotArea{Mem: s.Data()}
	}
	var ring *ringbuf.Ring
	if err := shm.Guard(func() error {
		var aerr error
		ring, aerr = ringbuf.Attach(data.Data(), consumer.Data(), areas, true)
		return aerr
	}); err != nil {
		return fail(dname, fmt.Errorf("ring not attachable with %d subscriber and %d group slot files: %w", rc.MaxSubscribers, rc.MaxGroups, err))
	}
	spec.Kind, spec.Policy = wire.KindOf(ring.Kind()), wire.PolicyOf(ring.Policy())
	spec.CapacityBytes = ring.CapacityBytes()
	spec.MaxMessageBytes = uint32(ring.MaxPayloadBytes())
	spec.MaxPublishers = ring.MaxPublishers()
	if hdr.NodeRequested >= 0 {
		spec.BindNode, spec.Node = true, int(hdr.NodeRequested)
	}
	if fi, err := os.Stat(consumer.Path()); err == nil {
		spec.Mode = uint32(fi.Mode().Perm())
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Gid) != os.Getegid() {
			spec.GID = int(st.Gid)
		}
	}
	spec = spec.Normalize()
	if _, err := checkSpec(spec); err != nil {
		return fail(dname, fmt.Errorf("spec read from the headers is invalid: %w", err))
	}
	return spec, nil
}

// regionExists reports whether a file named name is in a region dir.
func (d *Daemon) regionExists(name string) bool {
	for _, dir := range d.regionDirs() {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

// openSlotsRO opens partition 0's slot regions of topic name read-only.
func (d *Daemon) openSlotsRO(name string, rc ringbuf.Config) ([]*shm.Region, error) {
	var out []*shm.Region
	for k := 0; k < rc.MaxSubscribers+rc.MaxGroups; k++ {
		r, err := shm.Open(d.shm, slotRegionName(name, 0, k, rc.MaxSubscribers), shm.AttachOptions{ReadOnly: true, Label: name})
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

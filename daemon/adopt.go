package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/shm"
)

// Re-adopting a previous daemon's topics at start, and removing stale
// region files.

// adopt re-opens the topics of the state file left by an earlier daemon,
// then removes stale regions. Called from Run before the socket listens.
// A state file that is missing or unreadable is rebuilt from the region
// headers (rebuild.go), and then nothing is removed as stale.
//
// A partition's two regions named in the state file are re-opened
// read-write and their ring attached; if either is missing both are made
// afresh (the records are gone, the topic survives); a pair that will not
// attach (corrupt, another layout version) drops its topic from the
// registry but is left on disk for an operator. So are the topics of a
// version 1 state file, whose rings are whole in one region per partition:
// this daemon hands subscribers the data region read-only, which needs the
// two-region layout, so such a topic must be re-created (the next start
// removes its old files as stale once nothing maps them). A region file in
// the base directories that no adopted topic names is stale and is
// removed, unless a live process still maps it (its path is in some
// /proc/PID/maps, or its ring has live slots) — then it is only logged.
func (d *Daemon) adopt() error {
	b, err := os.ReadFile(d.statePath())
	var st stateFile
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// No registry: a first start, or one whose topics.json was
		// removed (or whose state dir moved) while the region directory
		// kept its regions. Those are rebuilt from their headers as for
		// an unreadable registry, never removed as stale.
		rst, err := d.rebuildState()
		if err != nil {
			d.log.Error("topic registry missing and the region directory holds regions not rebuildable from their headers; not starting, nothing removed", "path", d.statePath(), "region_dir", d.regionDirs()[0], "err", err)
			return fmt.Errorf("kaelixd: topic registry %s is missing, and the region directory %s holds regions that cannot be rebuilt into topics: %w. Nothing was removed. "+
				"Move that file out of the region directory (or restore %s from a backup) and start again; the registry is then rebuilt from the other regions", d.statePath(), d.regionDirs()[0], err, d.statePath())
		}
		if len(rst.Topics) > 0 {
			st = rst
			msg := fmt.Sprintf("topic registry %s was missing; %d topics rebuilt from the region headers in %s: check them (kaelixctl topics list)", d.statePath(), len(st.Topics), d.regionDirs()[0])
			d.rebuilt.Store(&msg)
			d.log.Warn("topic registry missing; topics rebuilt from the region headers, nothing removed", "path", d.statePath(), "region_dir", d.regionDirs()[0], "topics", len(st.Topics))
		}
	case err != nil:
		return &OpError{Op: "read", Path: d.statePath(), Err: err}
	default:
		if err := json.Unmarshal(b, &st); err != nil || st.Version != stateVersion && st.Version != 1 {
			why := fmt.Sprintf("version %d, want %d", st.Version, stateVersion)
			if err != nil {
				why = err.Error()
			}
			if st, err = d.rebuildState(); err != nil {
				d.log.Error("topic registry unreadable and not rebuildable from the region headers; not starting, nothing removed", "path", d.statePath(), "why", why, "err", err)
				return fmt.Errorf("kaelixd: topic registry %s is unreadable (%s) and cannot be rebuilt from the region headers: %w. Nothing was removed. "+
					"Move that file out of the region directory (or restore %s from a backup) and start again; the registry is then rebuilt from the other regions", d.statePath(), why, err, d.statePath())
			}
			bad := d.statePath() + ".bad"
			os.Rename(d.statePath(), bad)
			msg := fmt.Sprintf("topic registry %s was unreadable (%s; moved to %s); %d topics rebuilt from the region headers: check them (kaelixctl topics list)", d.statePath(), why, bad, len(st.Topics))
			d.rebuilt.Store(&msg)
			d.log.Error("topic registry unreadable; rebuilt from the region headers, nothing removed", "path", d.statePath(), "moved_to", bad, "why", why, "topics", len(st.Topics))
		}
	}
	keep := map[string]bool{}
	for _, stt := range st.Topics {
		if t := d.adoptTopic(stt); t != nil {
			d.topics[t.spec.Name] = t
			for _, p := range t.parts {
				for _, r := range p.regions() {
					keep[r.Name()] = true
				}
			}
		} else {
			for _, r := range append(stt.Regions, stt.ConsumerRegions...) {
				keep[r] = true // refused: leave its files for an operator
			}
			spec := stt.Spec.Normalize()
			for i := range stt.Regions {
				for k := 0; k < spec.MaxSubscribers+spec.MaxGroups; k++ {
					keep[slotRegionName(spec.Name, i, k, spec.MaxSubscribers)] = true
				}
			}
		}
	}
	if d.rebuilt.Load() == nil {
		d.removeStale(keep) // never on a rebuilt registry: it may lack a topic
	}
	d.saveState()
	return nil
}

func (d *Daemon) adoptTopic(stt stateTopic) *topic {
	spec := stt.Spec.Normalize()
	if len(stt.ConsumerRegions) == 0 && len(stt.Regions) > 0 {
		d.log.Error("topic created by an earlier kaelixd with each partition's ring in one region; this version keeps a data and a consumer region per partition "+
			"(subscribers map the data read-only), so the topic is not adopted: re-create it. Its files are left in place; the next start removes them once nothing maps them",
			"topic", spec.Name, "regions", stt.Regions)
		return nil
	}
	rc, err := checkSpec(spec)
	if err != nil || len(stt.Regions) != spec.Partitions || len(stt.ConsumerRegions) != spec.Partitions {
		d.log.Error("registry entry invalid; topic not adopted", "topic", spec.Name, "err", err, "regions", len(stt.Regions), "consumer_regions", len(stt.ConsumerRegions))
		return nil
	}
	t := &topic{spec: spec, createdNS: stt.CreatedNS}
	sc := d.shmConfig(spec)
	for i, name := range stt.Regions {
		cname := stt.ConsumerRegions[i]
		data, err := shm.Open(sc, name, shm.AttachOptions{Label: spec.Name})
		var consumer *shm.Region
		if err == nil {
			consumer, err = shm.Open(sc, cname, shm.AttachOptions{Label: spec.Name})
			if err != nil {
				data.Close()
				data = nil
			}
		}
		var slots []*shm.Region
		if err == nil {
			slots, err = d.openSlots(spec, rc, i)
			if err != nil {
				data.Close()
				consumer.Close()
				data, consumer = nil, nil
			}
		}
		var ring *ringbuf.Ring
		if errors.Is(err, fs.ErrNotExist) {
			d.log.Warn("region missing; recreating the partition empty", "topic", spec.Name, "partition", i, "region", name, "consumer_region", cname)
			if name != regionName(spec.Name, i, false) || cname != regionName(spec.Name, i, true) {
				err = fmt.Errorf("registry names regions %q and %q, want %q and %q", name, cname, regionName(spec.Name, i, false), regionName(spec.Name, i, true))
			} else {
				data, consumer, slots, ring, err = d.createRegions(spec, rc, i, shm.CreateOptions{BindNode: spec.BindNode, Node: spec.Node})
			}
		} else if err == nil {
			ring, err = attachApart(data, consumer, slots)
		}
		if err == nil && (ring.CapacityBytes() != rc.CapacityBytes || ring.MaxPayloadBytes() != int(rc.MaxPayloadBytes)) {
			err = fmt.Errorf("ring geometry differs from the registry (capacity %d, max payload %d)", ring.CapacityBytes(), ring.MaxPayloadBytes())
		}
		var p *partition
		if err == nil {
			p, err = newPartition(spec.Name, i, rc, data, consumer, slots, ring)
		}
		if err != nil {
			for _, r := range append([]*shm.Region{data, consumer}, slots...) {
				if r != nil {
					r.Close()
				}
			}
			if ve := (*ringbuf.VersionError)(nil); errors.As(err, &ve) {
				d.log.Error("region of another ring layout version; topic dropped from the registry, its files left in place (nothing of them was read past the version)",
					"topic", spec.Name, "partition", i, "region", name, "err", err,
					"fix", fmt.Sprintf("the topic was made by a Kaelix release whose rings have layout %d (this kaelixd reads %d): stop that release's clients and kaelixd, then either run that release again, or create the topic anew with this one (kaelixctl topics create %s; its old region files are removed as stale on the next start once nothing maps them)", ve.Got, ve.Want, spec.Name))
			} else {
				d.log.Error("region not adoptable; topic dropped from the registry, files left in place", "topic", spec.Name, "partition", i, "region", name, "consumer_region", cname, "err", err)
			}
			d.dropParts(t, false)
			return nil
		}
		t.parts = append(t.parts, p)
	}
	for _, p := range t.parts {
		d.withRing(p, func() { p.ring.ReapDead() })
	}
	d.log.Info("topic re-adopted", "topic", spec.Name, "partitions", len(t.parts))
	return t
}

// removeStale removes region files not in keep from the base directories
// this daemon knows, unless something live still uses them.
func (d *Daemon) removeStale(keep map[string]bool) {
	dirs := map[string]bool{filepath.Join(d.shm.TmpfsRoot, d.shm.DirName): true}
	if d.shm.HugetlbfsRoot != "" {
		dirs[filepath.Join(d.shm.HugetlbfsRoot, d.shm.DirName)] = true
	}
	for _, t := range d.topics {
		for _, p := range t.parts {
			dirs[filepath.Dir(p.region.Path())] = true
		}
	}
	for dir := range dirs {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			name := e.Name()
			if !e.Type().IsRegular() || keep[name] || name[0] == '.' || shm.ValidateName(name) != nil {
				continue
			}
			path := filepath.Join(dir, name)
			if _, err := shm.ReadHeaderFile(path); err != nil && !errors.Is(err, shm.ErrIncompatibleVersion) && !errors.Is(err, shm.ErrCorrupt) {
				d.log.Warn("file in the region directory is not a Kaelix region; left alone", "path", path, "err", err)
				continue
			}
			if pid := mappedBy(d.shm.ProcRoot, path); pid != 0 {
				d.log.Warn("unregistered region still mapped by a live process; left in place", "path", path, "pid", pid)
				continue
			}
			if isSlotRegion(name) {
				// Every live user of a slot region maps it: mappedBy
				// above is its whole liveness check.
			} else if live := liveSlots(d.shm, name); live > 0 {
				d.log.Warn("unregistered region has live ring slots; left in place", "path", path, "slots", live)
				continue
			}
			if err := shm.Remove(d.shm, name); err != nil {
				d.log.Warn("cannot remove stale region", "path", path, "err", err)
				continue
			}
			d.log.Info("stale region removed", "path", path)
		}
	}
}

// liveSlots opens a region and its partner (a data region's consumer
// region T.pN.c, or a consumer region's data region), frees its ring's
// dead slots and counts the live publisher and subscriber slots left (0 if
// they do not hold a ring of this layout; a region without a partner
// holds none).
func liveSlots(cfg shm.Config, name string) int {
	dataName, consName := name, name+consumerSuffix
	if strings.HasSuffix(name, consumerSuffix) {
		dataName, consName = strings.TrimSuffix(name, consumerSuffix), name
	}
	if shm.ValidateName(dataName) != nil || shm.ValidateName(consName) != nil {
		return 0
	}
	data, err := shm.Open(cfg, dataName, shm.AttachOptions{})
	if err != nil {
		return 0
	}
	defer data.Close()
	consumer, err := shm.Open(cfg, consName, shm.AttachOptions{})
	if err == nil {
		defer consumer.Close()
	}
	// Slot regions: T.pN.s0, T.pN.s1, ... (names of topics short enough
	// not to be hashed; a ring whose slots cannot be found counts 0).
	var slots []ringbuf.SlotArea
	for _, suffix := range []string{slotSuffix, groupSuffix} {
		for k := 0; consumer != nil; k++ {
			s, err := shm.Open(cfg, dataName+suffix+strconv.Itoa(k), shm.AttachOptions{})
			if err != nil {
				break
			}
			defer s.Close()
			slots = append(slots, ringbuf.SlotArea{Mem: s.Data(), Writable: true})
		}
	}
	n := 0
	shm.Guard(func() error {
		if consumer == nil {
			return nil
		}
		r, err := ringbuf.Attach(data.Data(), consumer.Data(), slots, false)
		if err == nil {
			r.ReapDead()
			c := r.Counters()
			n = c.Publishers + c.Subscribers + c.Joining
		}
		return nil
	})
	return n
}

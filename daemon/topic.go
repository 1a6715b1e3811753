package daemon

import (
	"os"
	"path/filepath"

	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/stat"
	"github.com/kaelix-io/kaelix/wire"
)

// The registry: topics and their partitions' regions (this file), their
// region file names (names.go), spec checks (spec.go), creation and
// deletion (create.go), the state file (state.go) and re-adoption at
// restart (adopt.go). Everything here is guarded by Daemon.mu.

// topic is one registered topic.
type topic struct {
	spec      wire.TopicSpec // normalized
	createdNS int64
	parts     []*partition
	pubs      int // publisher attachments registered by clients
	subs      int
	// subAts are the subscriber attachments (subs of them), whose slots
	// info checks to count only those able to receive. Guarded by
	// Daemon.mu.
	subAts map[*attachment]bool
}

// partition is one ring in its regions, all mapped read-write by the
// daemon: the data region (ring header, tail, publisher table, records),
// which subscribers are handed read-only, the consumer region (doorbells)
// and one slot region per subscriber and queue-group slot (a cursor each).
type partition struct {
	region   *shm.Region // data region
	consumer *shm.Region // consumer region
	// readOnly is the data region's file opened O_RDONLY: subscribers get
	// duplicates of it, which the kernel lets them map PROT_READ only.
	readOnly *os.File
	// slots are the subscriber slot regions, one per slot (the ring's
	// cursors have their own areas, ringbuf.Create): a subscriber gets its own,
	// publishers all of them.
	slots []*shm.Region
	ring  *ringbuf.Ring // ringbuf.Attach over all of them, read-write
	// leases decides and records who gets which subscriber and
	// queue-group slot (ledger.go; guarded by Daemon.mu).
	leases *ledger
	closed bool // the topic was deleted: regions unmapped, ring unusable
	// faulted is why the region can no longer be used (truncated,
	// header overwritten); the daemon stops touching its memory and
	// refuses new attaches. Set by withRing and the sweep's Check.
	faulted error
	topic   string
	index   int
}

func (p *partition) close() {
	if !p.closed {
		p.closed = true
		p.region.Close()
		p.consumer.Close()
		p.readOnly.Close()
		for _, r := range p.slots {
			r.Close()
		}
	}
}

// regions returns the partition's data, consumer and slot regions.
func (p *partition) regions() []*shm.Region {
	return append([]*shm.Region{p.region, p.consumer}, p.slots...)
}

// slotAreas is the slot regions' memory for ringbuf.Attach, all
// writable.
func slotAreas(slots []*shm.Region) []ringbuf.SlotArea {
	areas := make([]ringbuf.SlotArea, len(slots))
	for i, r := range slots {
		areas[i] = ringbuf.SlotArea{Mem: r.Data(), Writable: true}
	}
	return areas
}

// attachRing re-attaches the partition's ring over its regions (the sweep
// re-validates the headers this way). Call it under shm.Guard.
func (p *partition) attachRing() (*ringbuf.Ring, error) {
	return ringbuf.Attach(p.region.Data(), p.consumer.Data(), slotAreas(p.slots), false)
}

// check re-validates all its regions' files and headers (shm.Region.Check).
func (p *partition) check() error {
	for _, r := range p.regions() {
		if err := r.Check(); err != nil {
			return err
		}
	}
	return nil
}

// slotPaths lists the slot regions' file paths.
// slotDir is the directory of a partition's slot regions ("" without
// any): they are created together, all on tmpfs (createRegions), so one
// directory names them all (wire.PartitionInfo.SlotPaths).
func slotDir(slots []*shm.Region) string {
	if len(slots) == 0 {
		return ""
	}
	return filepath.Dir(slots[0].Path())
}

// attachApart attaches the ring of a data, a consumer and slot regions,
// all mapped read-write, under shm.Guard.
func attachApart(data, consumer *shm.Region, slots []*shm.Region) (*ringbuf.Ring, error) {
	var ring *ringbuf.Ring
	err := shm.Guard(func() error {
		var aerr error
		ring, aerr = ringbuf.Attach(data.Data(), consumer.Data(), slotAreas(slots), false)
		return aerr
	})
	return ring, err
}

// newPartition builds a partition from its two regions and attached
// ring, opening the read-only descriptor subscribers get. On error the
// caller still owns the regions.
func newPartition(topic string, index int, rc ringbuf.Config, data, consumer *shm.Region, slots []*shm.Region, ring *ringbuf.Ring) (*partition, error) {
	ro, err := data.OpenReadOnly()
	if err != nil {
		return nil, err
	}
	return &partition{region: data, consumer: consumer, slots: slots, readOnly: ro, ring: ring, topic: topic, index: index,
		leases: newLedger(rc.MaxSubscribers, rc.MaxGroups)}, nil
}

// info builds a topic's description with live counters. d.mu held.
func (t *topic) info() wire.TopicInfo {
	return t.infoWith(func(p *partition, fn func()) bool {
		if p.closed || p.faulted != nil {
			return false
		}
		return shm.Guard(func() error { fn(); return nil }) == nil
	})
}

// infoWith is info with ring reads run through guard, which reports
// whether they ran.
func (t *topic) infoWith(guard func(*partition, func()) bool) wire.TopicInfo {
	ti := wire.TopicInfo{Spec: t.spec, CreatedNS: t.createdNS, Publishers: t.pubs}
	ti.Subscribers, ti.JoiningSubscribers = t.joinedSubscribers(guard)
	for i, p := range t.parts {
		h := p.region.Header()
		pi := wire.PartitionInfo{
			Index: i, Region: p.region.Name(), Path: p.region.Path(), SizeBytes: h.TotalBytes,
			ConsumerRegion: p.consumer.Name(), ConsumerPath: p.consumer.Path(), ConsumerSizeBytes: p.consumer.Header().TotalBytes,
			Slots: len(p.slots), SlotDir: slotDir(p.slots),
			PageSizeBytes: h.PageSizeBytes, HugePages: h.Flags&shm.FlagHugePages != 0, FallbackTmpfs: h.Flags&shm.FlagFallbackTmpfs != 0, NodeActual: int(h.NodeActual),
		}
		var c ringbuf.Counters
		if guard(p, func() { c = p.ring.Counters() }) {
			pi.Counters = stat.WireCounters(c)
		}
		ti.Partitions = append(ti.Partitions, pi)
	}
	return ti
}

// joinedSubscribers splits the topic's subscriber attachments into those
// whose every reserved slot is active in its ring (the subscriber stored
// its read position: it receives every record published from now on) and
// those still joining. A resumed attachment whose slots the daemon could
// not confirm (no refs) counts as joined: it was receiving before the
// reconnect. d.mu held.
func (t *topic) joinedSubscribers(guard func(*partition, func()) bool) (joined, joining int) {
	active := map[*partition]map[int]bool{}
	for at := range t.subAts {
		ok := true
		for _, r := range at.refs {
			a, seen := active[r.part]
			if !seen {
				a = map[int]bool{}
				guard(r.part, func() {
					for _, sl := range r.part.ring.SubscriberSlots() {
						a[sl.Index] = !sl.Evicted && !sl.Reserved && !sl.Joining
					}
				})
				active[r.part] = a
			}
			ok = ok && a[r.slot]
		}
		if ok {
			joined++
		}
	}
	return joined, t.subs - joined
}

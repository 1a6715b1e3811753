package daemon

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kaelix-io/kaelix/numa"
	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/stat"
	"github.com/kaelix-io/kaelix/wire"
)

// The registry: topics, their partitions' regions, and the state file that
// lets a restarted daemon re-adopt them. Everything here is guarded by
// Daemon.mu.

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

// partition is one ring in two regions, both mapped read-write by the
// daemon: the data region (ring header, tail, publisher table, records)
// and the consumer region (cursors, doorbells, counters), split so that
// subscribers can be handed the data region read-only.
type partition struct {
	region   *shm.Region // data region
	consumer *shm.Region // consumer region
	// readOnly is the data region's file opened O_RDONLY: subscribers get
	// duplicates of it, which the kernel lets them map PROT_READ only.
	readOnly *os.File
	// slots are the subscriber slot regions, one per slot (the ring's
	// cursors live apart, ringbuf.CreateApart): a subscriber gets its own,
	// publishers all of them.
	slots []*shm.Region
	ring  *ringbuf.Ring // ringbuf.AttachApart over all of them, read-write
	// owner is, per subscriber slot, the connection its latest
	// reservation was made for (guarded by Daemon.mu).
	owner map[int]*peer
	// holders are, per slot region (subscriber slot k, or queue-group
	// slot g at MaxSubscribers+g), the processes that were handed its
	// descriptor as subscribers and may still map it writable. A free
	// slot goes to a new owner only once none of them but the new owner
	// itself is alive (guarded by Daemon.mu).
	holders map[int]map[procID]bool
	closed  bool // the topic was deleted: regions unmapped, ring unusable
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

// slotAreas is the slot regions' memory for ringbuf.AttachApart, all
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
	return ringbuf.AttachApart(p.region.Data(), p.consumer.Data(), slotAreas(p.slots), false)
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
		ring, aerr = ringbuf.AttachApart(data.Data(), consumer.Data(), slotAreas(slots), false)
		return aerr
	})
	return ring, err
}

// newPartition builds a partition from its two regions and attached
// ring, opening the read-only descriptor subscribers get. On error the
// caller still owns the regions.
func newPartition(topic string, index int, data, consumer *shm.Region, slots []*shm.Region, ring *ringbuf.Ring) (*partition, error) {
	ro, err := data.OpenReadOnly()
	if err != nil {
		return nil, err
	}
	return &partition{region: data, consumer: consumer, slots: slots, readOnly: ro, ring: ring, topic: topic, index: index}, nil
}

// stateVersion is the version of the state file's format. Version 2
// added each topic's consumer regions; a version 1 file (rings in one
// region per partition) is read, but its topics are not adopted.
const stateVersion = 2

// stateFile is topics.json in the state dir.
type stateFile struct {
	Version int          `json:"version"`
	Topics  []stateTopic `json:"topics"`
}

type stateTopic struct {
	Spec      wire.TopicSpec `json:"spec"`
	CreatedNS int64          `json:"created_ns"`
	Regions   []string       `json:"regions"` // data regions, one per partition
	// ConsumerRegions are the consumer regions, one per partition. Absent
	// in version 1 files, whose rings are whole in Regions.
	ConsumerRegions []string `json:"consumer_regions,omitempty"`
}

// consumerSuffix ends the name of every consumer region: partition N of
// topic T is the data region T.pN, the consumer region T.pN.c and the
// subscriber slot regions T.pN.s0, T.pN.s1, ... Data region names end in
// ".p" and digits, so none of them collide.
const consumerSuffix = ".c"

// slotSuffix starts the suffix of slot region names (then the slot index).
const slotSuffix = ".s"

// regionName names partition i's data region, or with consumer its
// consumer region (see regionBase).
func regionName(topicName string, i int, consumer bool) string {
	suffix := ""
	if consumer {
		suffix = consumerSuffix
	}
	return partRegionName(topicName, i, suffix)
}

// slotRegionName names slot region slot of partition i: subscriber slot
// k is T.pN.sK; queue-group slot j (slot = max_subscribers + j) is
// T.pN.gJ.
func slotRegionName(topicName string, i, slot, maxSubscribers int) string {
	if slot >= maxSubscribers {
		return partRegionName(topicName, i, groupSuffix+strconv.Itoa(slot-maxSubscribers))
	}
	return partRegionName(topicName, i, slotSuffix+strconv.Itoa(slot))
}

// groupSuffix starts the suffix of queue-group slot region names.
const groupSuffix = ".g"

// isSlotRegion reports whether name ends like a slot region's (".sK" or
// ".gJ" after a partition's ".pN").
func isSlotRegion(name string) bool {
	for _, suffix := range []string{slotSuffix, groupSuffix} {
		j := strings.LastIndex(name, suffix)
		if j < 0 || j+len(suffix) == len(name) {
			continue
		}
		if _, err := strconv.ParseUint(name[j+len(suffix):], 10, 31); err == nil && strings.Contains(name[:j], ".p") {
			return true
		}
	}
	return false
}

func partRegionName(topicName string, i int, extra string) string {
	return regionBase(topicName) + ".p" + strconv.Itoa(i) + extra
}

// Region file names. Every region of topic T is named regionBase(T) plus
// a partition suffix of at most maxSuffixBytes (".p63.s4093": partitions
// are at most wire.MaxPartitions, and a topic's slots per partition at
// most wire.MaxFDs). regionBase(T) is T itself when T is at most
// fullNameMaxBytes long; a longer T becomes its first longPrefixBytes
// bytes, "..", and a 128-bit SHA-256 digest of the whole name in hex:
//
//	T <= 235 bytes:  T                      + ".pN" [".c" | ".sK" | ".gJ"]
//	T >  235 bytes:  T[:201] ".." digest(T) + ".pN" [".c" | ".sK" | ".gJ"]
//
// A topic name never holds "..", so a digested base never equals a topic
// name's; two long names share a file name only if their digests collide
// (SHA-256 truncated to 128 bits). Even then they never share a file: each
// region's header holds the full topic name (shm Header.Label), checked at
// every open, and a create that finds a file holding another topic is
// refused (createRegion).
const (
	maxSuffixBytes   = len(".p63") + len(".s4093")
	fullNameMaxBytes = shm.MaxNameBytes - maxSuffixBytes
	digestHexBytes   = 32
	longPrefixBytes  = fullNameMaxBytes - len("..") - digestHexBytes
)

// nameDigest is the digest of a long topic name in its region file names.
// A variable so that a test can force two names to collide.
var nameDigest = func(topicName string) string {
	sum := sha256.Sum256([]byte(topicName))
	return hex.EncodeToString(sum[:digestHexBytes/2])
}

// regionBase is the part of every region name of topicName before the
// partition suffix (see maxSuffixBytes).
func regionBase(topicName string) string {
	if len(topicName) <= fullNameMaxBytes {
		return topicName
	}
	return topicName[:longPrefixBytes] + ".." + nameDigest(topicName)
}

// ringConfig turns a normalized spec into the ring config of each partition.
func ringConfig(s wire.TopicSpec) (ringbuf.Config, error) {
	var kind ringbuf.Kind
	switch s.Kind {
	case wire.KindSPSC:
		kind = ringbuf.SPSC
	case wire.KindMPMC:
		kind = ringbuf.MPMC
	default:
		return ringbuf.Config{}, wire.Errorf(wire.CodeInvalidSpec, "topic %q: kind %q: want spsc or mpmc", s.Name, s.Kind)
	}
	c := ringbuf.DefaultConfig(kind)
	switch s.Policy {
	case wire.PolicyBlock:
		c.Policy = ringbuf.PolicyBlock
	case wire.PolicyDropOldest:
		c.Policy = ringbuf.PolicyDropOldest
	case wire.PolicyReject:
		c.Policy = ringbuf.PolicyReject
	default:
		return ringbuf.Config{}, wire.Errorf(wire.CodeInvalidSpec, "topic %q: policy %q: want block, drop-oldest or reject", s.Name, s.Policy)
	}
	c.CapacityBytes = s.CapacityBytes
	c.MaxPayloadBytes = s.MaxMessageBytes
	c.MaxPublishers = s.MaxPublishers
	c.MaxSubscribers = s.MaxSubscribers
	c.MaxGroups = s.MaxGroups
	if kind == ringbuf.SPSC {
		c.MaxGroups = 0
	}
	if err := c.Validate(); err != nil {
		return ringbuf.Config{}, wire.Errorf(wire.CodeInvalidSpec, "topic %q: %v", s.Name, err)
	}
	return c, nil
}

// checkSpec validates a normalized spec.
func checkSpec(s wire.TopicSpec) (ringbuf.Config, error) {
	if err := validateTopicName(s.Name); err != nil {
		return ringbuf.Config{}, err
	}
	if s.Partitions < 1 || s.Partitions > wire.MaxPartitions {
		return ringbuf.Config{}, wire.Errorf(wire.CodeInvalidSpec, "topic %q: partitions = %d: want 1 to %d", s.Name, s.Partitions, wire.MaxPartitions)
	}
	if s.BindNode && s.Node < 0 {
		return ringbuf.Config{}, wire.Errorf(wire.CodeInvalidSpec, "topic %q: node = %d: want >= 0", s.Name, s.Node)
	}
	if s.Mode&^0o777 != 0 {
		return ringbuf.Config{}, wire.Errorf(wire.CodeInvalidSpec, "topic %q: mode = %#o: permission bits only", s.Name, s.Mode)
	}
	// A publisher gets every region of every partition in one attach.
	if n := s.Partitions * (wire.RegionDescriptors + s.MaxSubscribers + s.MaxGroups); n > wire.MaxFDs {
		return ringbuf.Config{}, wire.Errorf(wire.CodeInvalidSpec, "topic %q: partitions x (2 + max_subscribers + max_groups) = %d region files, over the %d one attach can carry: lower max_subscribers, max_groups or partitions", s.Name, n, wire.MaxFDs)
	}
	return ringConfig(s)
}

// validateTopicName checks a topic name (wire.ValidateTopicName) and that
// its longest region name is a valid region file name, so that a name the
// daemon cannot map to files is refused here, with the invalid-name code,
// and never at creation. (By construction of regionBase the second check
// cannot fail for a valid topic name; it guards the construction.)
func validateTopicName(name string) *wire.Error {
	if err := wire.ValidateTopicName(name); err != nil {
		return &wire.Error{Code: wire.CodeInvalidName, Message: err.Error()}
	}
	if err := shm.ValidateName(regionBase(name) + ".p63.s4093"); err != nil {
		return wire.Errorf(wire.CodeInvalidName, "topic name %q cannot be mapped to region files: %v", name, err)
	}
	return nil
}

// specDiff names the first field in which two normalized specs differ.
func specDiff(have, want wire.TopicSpec) string {
	type f struct {
		name       string
		have, want any
	}
	for _, x := range []f{
		{"partitions", have.Partitions, want.Partitions},
		{"kind", have.Kind, want.Kind},
		{"capacity_bytes", have.CapacityBytes, want.CapacityBytes},
		{"max_message_bytes", have.MaxMessageBytes, want.MaxMessageBytes},
		{"policy", have.Policy, want.Policy},
		{"bind_node", have.BindNode, want.BindNode},
		{"node", have.Node, want.Node},
		{"mode", fmt.Sprintf("%#o", have.Mode), fmt.Sprintf("%#o", want.Mode)},
		{"gid", have.GID, want.GID},
		{"max_publishers", have.MaxPublishers, want.MaxPublishers},
		{"max_subscribers", have.MaxSubscribers, want.MaxSubscribers},
		{"max_groups", have.MaxGroups, want.MaxGroups},
	} {
		if x.have != x.want {
			return fmt.Sprintf("%s: existing %v, requested %v", x.name, x.have, x.want)
		}
	}
	return ""
}

// shmConfig is the daemon's shm config with a topic's file mode and group,
// for its consumer regions.
func (d *Daemon) shmConfig(s wire.TopicSpec) shm.Config {
	c := d.shm
	c.Mode = os.FileMode(s.Mode)
	c.GID = s.GID
	return c
}

// dataShmConfig is shmConfig for a topic's data regions: without group and
// other write bits, so that a subscriber of another user cannot reopen its
// read-only descriptor (through /proc/PID/fd) for writing. Nobody needs
// them: publishers get writable descriptors from the daemon.
func (d *Daemon) dataShmConfig(s wire.TopicSpec) shm.Config {
	c := d.shmConfig(s)
	c.Mode &^= 0o022
	return c
}

// regionAllocError is a region allocation failure (shm.Create).
type regionAllocError struct{ err error }

func (e regionAllocError) Error() string { return e.err.Error() }
func (e regionAllocError) Unwrap() error { return e.err }

// createRegion creates one region of a topic (opts.Label is the topic's
// name). It never replaces a file (shm.Create renames into place with
// RENAME_NOREPLACE): a file of that name that is not a Kaelix region
// (its header does not validate: someone else's file, or a corrupt one),
// or that holds another topic (its header's label), is refused with
// conflict and left alone; one that a live process maps is refused with
// in-use. Only a region of this same topic that nothing maps, a leftover
// of a topic no longer registered (its ring is gone), is removed and the
// create retried once. Other failures are a regionAllocError.
func (d *Daemon) createRegion(cfg shm.Config, name string, opts shm.CreateOptions) (*shm.Region, error) {
	r, err := shm.Create(cfg, name, opts)
	if !errors.Is(err, shm.ErrExist) {
		if err != nil {
			return nil, regionAllocError{err}
		}
		return r, nil
	}
	paths := shm.Existing(cfg, name)
	for _, path := range paths {
		h, herr := shm.ReadHeaderFile(path)
		if herr != nil {
			d.log.Error("region file name taken by a file that is not a Kaelix region; create refused, file left alone", "path", path, "topic", opts.Label, "err", herr)
			return nil, wire.Errorf(wire.CodeConflict, "file %s exists and is not a Kaelix region (%v); it is never replaced: move it away, or choose another topic name", path, herr)
		}
		if h.Label != opts.Label {
			d.log.Error("region file name taken by another topic; create refused", "path", path, "holds", h.Label, "topic", opts.Label)
			return nil, wire.Errorf(wire.CodeConflict, "region file %s already holds topic %q; it is never replaced: topic %q not created: delete that topic, or choose another name", path, h.Label, opts.Label)
		}
		if pid := mappedBy(cfg.ProcRoot, path); pid != 0 {
			return nil, wire.Errorf(wire.CodeInUse, "region file %s exists and live process %d maps it; it is never replaced: stop that process or remove the file", path, pid)
		}
	}
	for _, path := range paths {
		d.log.Warn("leftover region file of an unregistered topic removed before create", "path", path, "topic", opts.Label)
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, regionAllocError{err}
		}
	}
	if r, err = shm.Create(cfg, name, opts); err != nil {
		return nil, regionAllocError{err}
	}
	return r, nil
}

// createRegions creates partition i's regions (data, consumer, one per
// subscriber slot) and its ring; it never replaces an existing file
// (createRegion). On error nothing is left behind; an allocation failure
// is a regionAllocError, a refused name a *wire.Error.
func (d *Daemon) createRegions(spec wire.TopicSpec, rc ringbuf.Config, i int, opts shm.CreateOptions) (data, consumer *shm.Region, slots []*shm.Region, ring *ringbuf.Ring, err error) {
	dataBytes, consBytes, err := ringbuf.SplitSizeFor(rc)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var made []*shm.Region
	drop := func() {
		for _, r := range made {
			r.Remove()
			r.Close()
		}
	}
	opts.Label, opts.Instance = spec.Name, d.instance
	opts.SizeBytes = uint64(dataBytes)
	data, err = d.createRegion(d.dataShmConfig(spec), regionName(spec.Name, i, false), opts)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	made = append(made, data)
	// The consumer area and the slots are a few KiB: on tmpfs pages they
	// cost no TLB reach worth a huge page of their own.
	cc := d.shmConfig(spec)
	cc.HugePages = shm.PolicyOff
	opts.SizeBytes = uint64(consBytes)
	consumer, err = d.createRegion(cc, regionName(spec.Name, i, true), opts)
	if err != nil {
		drop()
		return nil, nil, nil, nil, err
	}
	made = append(made, consumer)
	// Slot files get no group or other write bits: a subscriber is handed
	// its own slot's descriptor and must not reach another's by reopening
	// anything (as for data regions).
	sc := d.dataShmConfig(spec)
	sc.HugePages = shm.PolicyOff
	opts.SizeBytes = ringbuf.SlotBytes
	opts.BindNode = false
	mems := make([][]byte, rc.MaxSubscribers+rc.MaxGroups)
	for k := range mems {
		r, err := d.createRegion(sc, slotRegionName(spec.Name, i, k, rc.MaxSubscribers), opts)
		if err != nil {
			drop()
			return nil, nil, nil, nil, err
		}
		made = append(made, r)
		slots = append(slots, r)
		mems[k] = r.Data()
	}
	ring, err = ringbuf.CreateApart(data.Data(), consumer.Data(), mems, rc)
	if err != nil {
		drop()
		return nil, nil, nil, nil, err
	}
	return data, consumer, slots, ring, nil
}

// openSlots opens partition i's slot regions (subscriber then queue-group
// slots), read-write.
func (d *Daemon) openSlots(spec wire.TopicSpec, rc ringbuf.Config, i int) ([]*shm.Region, error) {
	sc := d.shmConfig(spec)
	var slots []*shm.Region
	for k := 0; k < rc.MaxSubscribers+rc.MaxGroups; k++ {
		r, err := shm.Open(sc, slotRegionName(spec.Name, i, k, rc.MaxSubscribers), shm.AttachOptions{Label: spec.Name})
		if err != nil {
			for _, s := range slots {
				s.Close()
			}
			return nil, err
		}
		slots = append(slots, r)
	}
	return slots, nil
}

// createTopic makes a topic's regions and rings. Called with d.mu held.
// openOK turns an existing identical topic into success (open-or-create);
// create refuses any existing topic, naming the differing field if any.
func (d *Daemon) createTopic(spec wire.TopicSpec, openOK bool) (*topic, error) {
	return d.createTopicWith(spec, openOK, false)
}

// createTopicWith is createTopic; force skips the size check (checkSize).
func (d *Daemon) createTopicWith(spec wire.TopicSpec, openOK, force bool) (*topic, error) {
	spec = spec.Normalize()
	rc, err := checkSpec(spec)
	if err != nil {
		return nil, err
	}
	if spec.BindNode {
		// A node this host does not have is a bad parameter, not a failed
		// allocation (which would also degrade health).
		if topo, terr := numa.Load(d.cfg.HostRoot); terr == nil {
			var ids []int
			for _, n := range topo.Nodes {
				ids = append(ids, n.ID)
			}
			if !slices.Contains(ids, spec.Node) {
				return nil, wire.Errorf(wire.CodeInvalidSpec, "topic %q: node = %d: this host's NUMA nodes are %v", spec.Name, spec.Node, ids)
			}
		}
	}
	if t, ok := d.topics[spec.Name]; ok {
		if diff := specDiff(t.spec, spec); diff != "" {
			return nil, wire.Errorf(wire.CodeConflict, "topic %q already exists with other parameters: %s", spec.Name, diff)
		}
		if openOK {
			return t, nil
		}
		return nil, wire.Errorf(wire.CodeConflict, "topic %q already exists (with the same parameters: open it with open-or-create, kaelixctl topics create --if-not-exists)", spec.Name)
	}
	if !force {
		if err := d.checkSize(spec, rc); err != nil {
			return nil, err
		}
	}
	t := &topic{spec: spec, createdNS: time.Now().UnixNano()}
	for i := 0; i < spec.Partitions; i++ {
		if d.stopping() { // a big topic takes seconds per partition
			d.dropParts(t, true)
			return nil, errStopping
		}
		data, consumer, slots, ring, err := d.createRegions(spec, rc, i, shm.CreateOptions{BindNode: spec.BindNode, Node: spec.Node,
			Prefault: d.cfg.Shm.Prefault, Mlock: d.cfg.Shm.Mlock})
		if err != nil {
			d.dropParts(t, true)
			if we := (*wire.Error)(nil); errors.As(err, &we) {
				return nil, wire.Errorf(we.Code, "topic %q: partition %d: %s", spec.Name, i, we.Message)
			}
			code := wire.CodeInternal
			for _, r := range []struct {
				err  error
				name string
			}{{shm.ErrNoSpace, "shm_space"}, {shm.ErrHugePagesUnavailable, "hugepages"}, {shm.ErrMlock, "mlock"}} {
				if errors.Is(err, r.err) {
					code = wire.CodeResource
					d.m.refused.WithLabelValues(r.name).Inc()
				}
			}
			werr := wire.Errorf(code, "topic %q: partition %d: %v", spec.Name, i, err)
			if errors.As(err, new(regionAllocError)) {
				d.allocFailed(werr.Message)
			}
			return nil, werr
		}
		p, err := newPartition(spec.Name, i, data, consumer, slots, ring)
		if err != nil {
			for _, r := range append([]*shm.Region{data, consumer}, slots...) {
				r.Remove()
				r.Close()
			}
			d.dropParts(t, true)
			return nil, wire.Errorf(wire.CodeInternal, "topic %q: partition %d: %v", spec.Name, i, err)
		}
		if i == 0 {
			// The topic's creation time is its first region's, which a
			// registry rebuilt from the headers reads back (rebuild.go).
			t.createdNS = data.Header().CreatedNS
		}
		t.parts = append(t.parts, p)
	}
	d.topics[spec.Name] = t
	d.saveState()
	d.log.Info("topic created", "topic", spec.Name, "partitions", spec.Partitions, "kind", spec.Kind, "policy", spec.Policy, "capacity_bytes", spec.CapacityBytes)
	return t, nil
}

// dropParts unmaps a topic's partitions, removing the region files if remove.
func (d *Daemon) dropParts(t *topic, remove bool) {
	for _, p := range t.parts {
		if remove && !p.closed {
			for _, r := range p.regions() {
				if err := r.Remove(); err != nil {
					d.log.Warn("remove region", "err", err)
				}
			}
		}
		p.close()
	}
}

// deleteTopic removes a topic. Called with d.mu held.
func (d *Daemon) deleteTopic(name string, force bool) error {
	if err := wire.ValidateTopicName(name); err != nil {
		return &wire.Error{Code: wire.CodeInvalidName, Message: err.Error()}
	}
	t, ok := d.topics[name]
	if !ok {
		return wire.Errorf(wire.CodeNotFound, "topic %q not found", name)
	}
	if (t.pubs > 0 || t.subs > 0) && !force {
		return wire.Errorf(wire.CodeInUse, "topic %q is in use: %d publisher(s) and %d subscriber(s) attached; detach them or delete with force", name, t.pubs, t.subs)
	}
	delete(d.topics, name)
	// Clients that still map the rings (attached, by force, or ones whose
	// connection is gone) learn of it from the ring itself.
	for _, p := range t.parts {
		if !p.closed && p.faulted == nil {
			d.withRing(p, func() { p.ring.MarkDeleted() })
		}
	}
	d.dropParts(t, true)
	d.saveState()
	d.log.Info("topic deleted", "topic", name, "force", force, "publishers", t.pubs, "subscribers", t.subs)
	return nil
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

func (d *Daemon) statePath() string { return filepath.Join(d.stateDir, "topics.json") }

// saveState writes the registry atomically (temp file, fsync, rename, fsync
// of the directory). d.mu held. A failure is logged: the regions are still
// served, and their headers let an operator recover.
func (d *Daemon) saveState() {
	st := stateFile{Version: stateVersion, Topics: []stateTopic{}}
	for _, t := range d.topics {
		stt := stateTopic{Spec: t.spec, CreatedNS: t.createdNS}
		for _, p := range t.parts {
			stt.Regions = append(stt.Regions, p.region.Name())
			stt.ConsumerRegions = append(stt.ConsumerRegions, p.consumer.Name())
		}
		st.Topics = append(st.Topics, stt)
	}
	if err := writeFileAtomic(d.statePath(), st); err != nil {
		d.log.Error("cannot save topic registry; a crash now would lose topics created since the last save", "err", err)
	}
}

func writeFileAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		dir.Sync()
		dir.Close()
	}
	return nil
}

// adopt re-opens the topics of the state file left by an earlier daemon,
// then removes stale regions. Called from Run before the socket listens.
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
			p, err = newPartition(spec.Name, i, data, consumer, slots, ring)
		}
		if err != nil {
			for _, r := range append([]*shm.Region{data, consumer}, slots...) {
				if r != nil {
					r.Close()
				}
			}
			d.log.Error("region not adoptable; topic dropped from the registry, files left in place", "topic", spec.Name, "partition", i, "region", name, "consumer_region", cname, "err", err)
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
// they do not hold a ring). A region without a partner is tried as a ring
// of the one-region layout.
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
	// Slots apart: T.pN.s0, T.pN.s1, ... (names of topics short enough
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
		var r *ringbuf.Ring
		var err error
		switch {
		case consumer != nil && len(slots) > 0:
			r, err = ringbuf.AttachApart(data.Data(), consumer.Data(), slots, false)
		case consumer != nil:
			r, err = ringbuf.AttachSplit(data.Data(), consumer.Data(), false)
		default:
			r, err = ringbuf.Attach(data.Data())
		}
		if err == nil {
			r.ReapDead()
			c := r.Counters()
			n = c.Publishers + c.Subscribers + c.Joining
		}
		return nil
	})
	return n
}

// newInstanceID returns a random non-zero daemon instance id.
func newInstanceID() uint64 {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err == nil {
			if id := binary.LittleEndian.Uint64(b[:]); id != 0 {
				return id
			}
		}
	}
}

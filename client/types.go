package client

import "github.com/kaelix-io/kaelix/wire"

// The client's admin types. They are plain values (copy them freely) and
// decode straight from the daemon's replies: their JSON names are the
// protocol's (package wire), which TestTypesMatchWire pins, so that a
// field added to one and not the other fails the build's tests.

// Kind is a topic's ring kind, KindSPSC or KindMPMC. It is the one kind
// type of Kaelix: the protocol, the daemon's config ([[topics]] kind) and
// this package all use it, and one mapping turns it into the ring's
// (wire.Kind.Ring); an unknown kind is refused, never defaulted.
type Kind = wire.Kind

// Policy is what a publisher does when a partition's ring is full:
// PolicyBlock, PolicyDropOldest or PolicyReject. Like Kind it is the one
// policy type of Kaelix, mapped to the ring's in one place.
type Policy = wire.Policy

// Topic kinds and overflow policies for TopicConfig.
const (
	// KindSPSC: one publisher and one subscriber per partition; no queue
	// groups. The cheapest claim (plain release stores).
	KindSPSC = wire.KindSPSC
	// KindMPMC: up to MaxPublishers publishers per partition (claims by
	// CAS), broadcast subscribers and queue groups. The default.
	KindMPMC = wire.KindMPMC
	// PolicyBlock: publishers wait for the slowest subscriber (Publish
	// waits, TryPublish returns ErrBackPressured). The default.
	PolicyBlock = wire.PolicyBlock
	// PolicyDropOldest: publishers overwrite the oldest records; a
	// subscriber that was overrun gets ErrLapped and counts its losses.
	PolicyDropOldest = wire.PolicyDropOldest
	// PolicyReject: a record that does not fit is refused at once
	// (ErrFull).
	PolicyReject = wire.PolicyReject
)

// TopicConfig describes a topic to create (CreateTopic, OpenOrCreateTopic).
// Every zero field takes the daemon's default, given with it; the daemon
// refuses a value out of range with ErrInvalidSpec naming it. A topic's
// config is fixed once it exists.
type TopicConfig struct {
	// Name is the topic's name: 1-249 bytes of ASCII letters, digits,
	// '-', '_' and '.' (ValidateTopicName).
	Name string `json:"name"`
	// Partitions is how many independent rings the topic has, 1 to
	// wire.MaxPartitions (64). Default 1.
	Partitions int `json:"partitions"`
	// Kind is the ring kind of every partition. Default KindMPMC.
	Kind Kind `json:"kind"`
	// CapacityBytes is each partition's ring data area: a power of two,
	// at least 4096. Default 1 MiB.
	CapacityBytes uint64 `json:"capacity_bytes"`
	// MaxMessageBytes bounds one encoded message (payload plus header
	// block), at most CapacityBytes/2 minus the record header. Default
	// 4096.
	MaxMessageBytes uint32 `json:"max_message_bytes"`
	// Policy is what publishers do when a partition is full. Default
	// PolicyBlock.
	Policy Policy `json:"policy"`
	// BindNode places the regions' pages on NUMA node Node (ignored
	// without it).
	BindNode bool `json:"bind_node"`
	Node     int  `json:"node"`
	// Mode is the permission of attach requests, checked against the
	// requesting process's uid and gid (owner = the daemon's user, group
	// = GID): publishers need write, subscribers read permission. It is
	// also the region files' mode, except that data region files never
	// get group or other write bits. Permission bits only; default 0600.
	Mode uint32 `json:"mode"`
	// GID is the region files' group; 0 or -1 (default) keeps the
	// daemon's.
	GID int `json:"gid"`
	// MaxPublishers and MaxSubscribers are the publisher and subscriber
	// slots of each partition: how many may attach at once (ErrNoSlot
	// past them). Defaults 16 and 32; an SPSC topic has 1 of each.
	MaxPublishers  int `json:"max_publishers"`
	MaxSubscribers int `json:"max_subscribers"`
	// MaxGroups is the queue-group slots of each partition (MPMC only):
	// how many queue groups may read it at once. Default 8.
	MaxGroups int `json:"max_groups"`
}

// Normalized returns c with every zero field replaced by its default, as
// the daemon does before it compares or creates a topic.
func (c TopicConfig) Normalized() TopicConfig { return TopicConfig(c.spec().Normalize()) }

// spec is c as the protocol carries it (the same fields).
func (c TopicConfig) spec() wire.TopicSpec { return wire.TopicSpec(c) }

// TopicInfo describes a topic and, per partition, its regions and
// counters as the daemon read them from shared memory when it replied.
type TopicInfo struct {
	// Spec is the topic's config, normalized (no zero field).
	Spec      TopicConfig `json:"spec"`
	CreatedNS int64       `json:"created_ns"` // creation time, unix ns
	// Publishers counts the publisher attachments the daemon holds.
	Publishers int `json:"publishers"`
	// Subscribers counts the subscriber attachments able to receive:
	// every record published from then on reaches them. A Subscribe
	// still in progress (slots reserved, not yet joined) is counted in
	// JoiningSubscribers instead.
	Subscribers        int `json:"subscribers"`
	JoiningSubscribers int `json:"joining_subscribers,omitempty"`
	// Partitions has one entry per partition, in index order.
	Partitions []PartitionInfo `json:"partitions"`
	// Creating: the daemon is still making the topic's regions (a big
	// topic takes seconds): Partitions is empty, and NewPublisher and
	// Subscribe wait for the creation to end (bounded by their ctx), then
	// attach, or fail with ErrTopicNotFound if it failed.
	Creating bool `json:"creating,omitempty"`
	// PartitionsMade counts, while Creating, the partitions whose regions
	// are made: the creation's progress.
	PartitionsMade int `json:"partitions_made,omitempty"`
}

// PartitionInfo describes one partition: its region files, their memory
// and its ring's counters.
type PartitionInfo struct {
	Index int `json:"index"` // 0 to Spec.Partitions-1
	// Region and Path name the data region (ring header, tail, publisher
	// table, records; subscribers map it read-only): its region name and
	// file. ConsumerRegion and ConsumerPath name the consumer region
	// (cursors, doorbells, counters), ConsumerSizeBytes its file size.
	// Tools that read rings straight from shared memory (package stat,
	// kaelixctl stat) open these; a Publisher or Subscriber gets them from
	// the daemon as descriptors and needs no path.
	Region            string `json:"region"`
	Path              string `json:"path"`
	ConsumerRegion    string `json:"consumer_region"`
	ConsumerPath      string `json:"consumer_path"`
	ConsumerSizeBytes uint64 `json:"consumer_size_bytes"`
	// Slots is the number of slot region files, one per subscriber slot
	// then one per queue-group slot, in directory SlotDir (SlotPaths
	// lists them).
	Slots   int    `json:"slots"`
	SlotDir string `json:"slot_dir,omitempty"`
	// SizeBytes is the data region file's size, PageSizeBytes the page
	// size backing it; HugePages says it is on hugetlbfs. FallbackTmpfs:
	// huge pages were asked for (policy auto) but none were free, so the
	// region is on tmpfs.
	SizeBytes     uint64 `json:"size_bytes"`
	PageSizeBytes uint64 `json:"page_size_bytes"`
	HugePages     bool   `json:"huge_pages"`
	FallbackTmpfs bool   `json:"fallback_tmpfs,omitempty"`
	// NodeActual is the NUMA node the data region's pages are on, -1 if
	// unknown.
	NodeActual int `json:"node_actual"`
	// Counters are the ring's counters when the daemon replied.
	Counters Counters `json:"counters"`
}

// SlotPaths lists the partition's slot region files, Slots of them in
// slot order (nil without a SlotDir); maxSubscribers is the topic's
// Spec.MaxSubscribers.
func (p PartitionInfo) SlotPaths(maxSubscribers int) []string {
	return wire.PartitionInfo{Region: p.Region, Slots: p.Slots, SlotDir: p.SlotDir}.SlotPaths(maxSubscribers)
}

// Counters are one partition's ring counters, read from shared memory
// (no lock: each is exact, together they are a near-instant snapshot).
// Records and events are counted since the ring was created.
type Counters struct {
	// Published counts records claimed (the tail sequence); Consumed the
	// records delivered, summed over subscriber slots and queue groups;
	// Lost the records lost to lapping (PolicyDropOldest) or to dead
	// queue-group members, summed likewise.
	Published uint64 `json:"published"`
	Consumed  uint64 `json:"consumed"`
	Lost      uint64 `json:"lost"`
	// BackPressure counts claims refused for lack of space (PolicyBlock
	// or PolicyReject); Rejected the records refused under PolicyReject.
	BackPressure uint64 `json:"back_pressure"`
	Rejected     uint64 `json:"rejected"`
	// Unblocked counts dead publishers' claims turned into skips, so
	// readers pass them; Reaped the slots of dead processes freed.
	Unblocked uint64 `json:"unblocked"`
	Reaped    uint64 `json:"reaped"`
	// Evicted counts subscriber slots taken from live owners that held
	// publishers back (daemon.evict_stalled_after); Tampered subscriber
	// slots found changed by another process.
	Evicted  uint64 `json:"evicted"`
	Tampered uint64 `json:"tampered"`
	// TailPosition is the bytes claimed since the ring was created.
	TailPosition uint64 `json:"tail_position"`
	// Publishers and Subscribers are the live slots in the ring (a
	// subscriber slot counts once it can receive).
	Publishers  int `json:"publishers"`
	Subscribers int `json:"subscribers"`
	// SlowestLagBytes is how far the slowest consumer is behind
	// TailPosition.
	SlowestLagBytes uint64 `json:"slowest_lag_bytes"`
}

// DaemonStatus is the daemon's status snapshot (DaemonStatus).
type DaemonStatus struct {
	Version    int    `json:"version"` // protocol version it speaks
	PID        int    `json:"pid"`
	StartedNS  int64  `json:"started_ns"` // unix ns
	UptimeNS   int64  `json:"uptime_ns"`
	SocketPath string `json:"socket_path"`
	StateDir   string `json:"state_dir"`
	ShmDir     string `json:"shm_dir"` // region directory on tmpfs
	Topics     int    `json:"topics"`
	Clients    int    `json:"clients"`
	// Heartbeats counts the daemon's heartbeat ticks; HeartbeatNS is the
	// last one's unix ns (also in the state dir's heartbeat file).
	Heartbeats  uint64 `json:"heartbeats"`
	HeartbeatNS int64  `json:"heartbeat_ns"`
	// PeerDeaths counts client processes that died holding ring slots (a
	// clean exit, handles closed first, is not counted); LastDetectionNS
	// is how long the last one took from its death being seen to its
	// rings reaped, in ns.
	PeerDeaths      uint64 `json:"peer_deaths"`
	LastDetectionNS int64  `json:"last_detection_ns"`
	// SubscriberEvictions counts subscribers evicted for holding
	// publishers back without reading (daemon.evict_stalled_after);
	// SubscriberKills those of them SIGKILLed for doing it again.
	SubscriberEvictions uint64 `json:"subscriber_evictions"`
	SubscriberKills     uint64 `json:"subscriber_kills"`
	// HugeDir is the region directory on hugetlbfs ("" without a mount of
	// the configured page size).
	HugeDir string `json:"huge_dir,omitempty"`
	// Build is what the daemon binary was built from.
	Build BuildInfo `json:"build"`
}

// BuildInfo names a binary's build: its module version ("(devel)" from a
// checkout), VCS commit ("" if unknown; Modified: uncommitted changes)
// and Go version.
type BuildInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

// DaemonStats lists the daemon's connected clients and its topics (Stats).
type DaemonStats struct {
	Clients []ClientInfo `json:"clients"`
	Topics  []TopicInfo  `json:"topics"`
	// Next is the protocol's paging cursor; "" in what Stats returns.
	Next string `json:"next,omitempty"`
}

// ClientInfo is one client connected to the daemon.
type ClientInfo struct {
	ID          uint64 `json:"id"`   // connection id, as in the daemon's logs
	Name        string `json:"name"` // Options.Name
	PID         int    `json:"pid"`  // by SO_PEERCRED
	UID         int    `json:"uid"`
	GID         int    `json:"gid"`
	ConnectedNS int64  `json:"connected_ns"` // unix ns
	Attachments int    `json:"attachments"`  // publishers and subscribers it holds
}

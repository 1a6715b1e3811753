package wire

import (
	"path/filepath"
	"strconv"
)

// Request and reply bodies. Every field's unit is in its name or comment;
// zero values mean "default" where the comment says so. These are plain
// values: copy them freely.

// Role is what a client attaches as.
type Role string

// Attach roles.
const (
	RolePublisher  Role = "publisher"
	RoleSubscriber Role = "subscriber"
)

// Kind is a topic's ring kind (see ringbuf.Kind).
type Kind string

// Ring kinds.
const (
	KindSPSC Kind = "spsc" // one publisher, one subscriber per partition
	KindMPMC Kind = "mpmc" // many publishers, broadcast subscribers and queue groups
)

// Policy is what a publisher does when a partition's ring is full (see
// ringbuf.Policy).
type Policy string

// Overflow policies.
const (
	PolicyBlock      Policy = "block"       // wait for the slowest subscriber
	PolicyDropOldest Policy = "drop-oldest" // overwrite; lapped subscribers count losses
	PolicyReject     Policy = "reject"      // refuse the record at once
)

// Hello is the first request of every connection.
type Hello struct {
	Version int    `json:"version"` // Version
	Name    string `json:"name"`    // client's name, for logs and stats
	// Attached lists attachments the client already holds from an earlier
	// connection (after a daemon restart), so the daemon counts them and
	// watches this process for them again. Descriptors are not resent.
	Attached []Resume `json:"attached,omitempty"`
}

// Resume is one attachment carried over a reconnect.
type Resume struct {
	Topic      string `json:"topic"`
	Role       Role   `json:"role"`
	Partitions []int  `json:"partitions"`
	// Slots and GroupSlots (subscribers) are the slots it holds, as its
	// attach reply gave them, so that a restarted daemon knows again whose
	// they are (it also checks that each slot names the process).
	Slots      []int `json:"slots,omitempty"`
	GroupSlots []int `json:"group_slots,omitempty"`
	// Rings identify the rings the client maps, one per entry of
	// Partitions, so that a restarted daemon can tell whether they are
	// its own (adopted) or rings it no longer knows (HelloReply.Stale).
	Rings []RingID `json:"rings,omitempty"`
}

// RingID identifies one partition's ring by its data region's header:
// the instance of the daemon that created it and its creation time (shm
// Header.Instance and CreatedNS). A ring re-created under the same name
// has another RingID; an adopted one keeps its own.
type RingID struct {
	Instance  uint64 `json:"instance"`
	CreatedNS int64  `json:"created_ns"`
}

// Stale is an entry of Hello.Attached whose rings the daemon does not
// know: its AttachmentIDs entry is 0 and the client must tell the
// handle's owner (client.ErrTopicRecreated).
type Stale struct {
	Index int `json:"index"` // into Hello.Attached
	// Reason is StaleRecreated or StaleMissing.
	Reason string `json:"reason"`
}

// Stale reasons.
const (
	StaleRecreated = "recreated" // the daemon's topic of that name has other rings
	StaleMissing   = "missing"   // the daemon has no topic of that name
)

// HelloReply answers Hello.
type HelloReply struct {
	Version   int    `json:"version"`
	DaemonPID int    `json:"daemon_pid"`
	ClientID  uint64 `json:"client_id"` // this connection's id in the daemon's logs
	PeerPID   int    `json:"peer_pid"`  // the client's pid as SO_PEERCRED reported it
	PeerUID   int    `json:"peer_uid"`
	PeerGID   int    `json:"peer_gid"`
	// AttachmentIDs are the new ids of Hello.Attached, in order (0 for an
	// entry whose topic no longer exists, or is not allowed, or is Stale).
	AttachmentIDs []uint64 `json:"attachment_ids,omitempty"`
	// Stale lists the entries of Hello.Attached whose rings are not the
	// daemon's (only entries that carried Rings are checked).
	Stale []Stale `json:"stale,omitempty"`
	// Instance identifies this daemon instance (random, non-zero, new at
	// every start): a client that sees it change knows the daemon
	// restarted. It is also written into the header of every region the
	// instance creates (RingID.Instance).
	Instance uint64 `json:"instance,omitempty"`
	// WaitStrategy and SpinBudgetUS are the daemon's default wait strategy
	// (busy-spin, yield, backoff, blocking) and backoff spin budget in
	// microseconds ([runtime] wait_strategy, target_latency_us), for
	// clients that do not choose their own. Live: a reload changes what
	// later hellos get.
	WaitStrategy string `json:"wait_strategy,omitempty"`
	SpinBudgetUS int    `json:"spin_budget_us,omitempty"`
}

// TopicSpec is the body of create and open-or-create, and describes a topic.
// Zero fields take defaults (see Normalize).
type TopicSpec struct {
	Name       string `json:"name"`
	Partitions int    `json:"partitions"` // 1..MaxPartitions; default 1
	Kind       Kind   `json:"kind"`       // default mpmc
	// CapacityBytes is each partition's ring data area: a power of two
	// >= 4096. Default 1 MiB.
	CapacityBytes uint64 `json:"capacity_bytes"`
	// MaxMessageBytes bounds one encoded message (payload plus header
	// block); at most CapacityBytes/2 minus the record header. Default 4096.
	MaxMessageBytes uint32 `json:"max_message_bytes"`
	Policy          Policy `json:"policy"` // default block
	// BindNode places the regions' pages on NUMA node Node.
	BindNode bool `json:"bind_node"`
	Node     int  `json:"node"`
	// Mode is the permission of attach requests (owner = daemon user,
	// group = GID): publishers need write, subscribers read permission.
	// It is also the region files' mode, except that data region files
	// never get group or other write bits: nobody writes a region through
	// its path, and a subscriber must not be able to reopen its read-only
	// descriptor of the data region for writing. Permission bits only;
	// default 0600.
	Mode uint32 `json:"mode"`
	// GID is the region files' group; -1 or 0 (default) keeps the daemon's.
	GID int `json:"gid"`
	// MaxPublishers and MaxSubscribers are per-partition slot counts
	// (SPSC: 1 each). Defaults 16 and 32 for MPMC.
	MaxPublishers  int `json:"max_publishers"`
	MaxSubscribers int `json:"max_subscribers"`
	// MaxGroups is the queue-group slots per partition (MPMC). Default 8.
	MaxGroups int `json:"max_groups"`
}

// Normalize returns s with every zero field replaced by its default.
func (s TopicSpec) Normalize() TopicSpec {
	if s.Partitions == 0 {
		s.Partitions = 1
	}
	if s.Kind == "" {
		s.Kind = KindMPMC
	}
	if s.CapacityBytes == 0 {
		s.CapacityBytes = 1 << 20
	}
	if s.MaxMessageBytes == 0 {
		s.MaxMessageBytes = 4096
	}
	if s.Policy == "" {
		s.Policy = PolicyBlock
	}
	if !s.BindNode {
		s.Node = 0
	}
	if s.Mode == 0 {
		s.Mode = 0o600
	}
	if s.GID <= 0 {
		s.GID = -1
	}
	if s.Kind == KindSPSC {
		if s.MaxPublishers == 0 {
			s.MaxPublishers = 1
		}
		if s.MaxSubscribers == 0 {
			s.MaxSubscribers = 1
		}
	} else {
		if s.MaxPublishers == 0 {
			s.MaxPublishers = 16
		}
		if s.MaxSubscribers == 0 {
			s.MaxSubscribers = 32
		}
		if s.MaxGroups == 0 {
			s.MaxGroups = 8
		}
	}
	return s
}

// Create is the body of create and open-or-create: the topic's spec, its
// fields inline (a bare TopicSpec is a valid Create), and Force.
type Create struct {
	TopicSpec
	// Force skips the daemon's size check (CodeTooLarge): the topic is
	// created even if its regions take more than shm.max_topic_share of
	// the host's free memory or region space, or shm.max_topic_bytes.
	Force bool `json:"force,omitempty"`
}

// Delete is the body of a delete request.
type Delete struct {
	Name  string `json:"name"`
	Force bool   `json:"force"` // delete even while clients are attached
}

// TopicRef names a topic (info).
type TopicRef struct {
	Name string `json:"name"`
}

// Empty is the body of requests and replies that carry nothing.
type Empty struct{}

// Page is the body of list and stats requests: one page of topics, in
// name order, those whose name sorts after After ("" from the first),
// at most Limit of them (0 or more than MaxPageTopics: MaxPageTopics). A
// nil or empty body asks for the first page. The daemon ends a page
// early once its reply nears PageBudgetBytes, so any number of topics
// lists in frames of at most MaxBodyBytes; the reply's Next is the
// After of the following page, "" after the last. Pages are read under
// separate locks: a topic created or deleted between two requests may be
// missed or seen, but no topic that exists throughout is skipped or
// listed twice.
type Page struct {
	After string `json:"after,omitempty"`
	Limit int    `json:"limit,omitempty"`
}

// MaxPageTopics bounds Page.Limit; PageBudgetBytes is the encoded size
// past which the daemon ends a page (the last topic added may take it up
// to MaxBodyBytes; one topic, at most MaxPartitions partitions, fits).
const (
	MaxPageTopics   = 1000
	PageBudgetBytes = MaxBodyBytes / 2
)

// TopicList answers list: one page of topics (see Page).
type TopicList struct {
	Topics []TopicInfo `json:"topics"`
	Next   string      `json:"next,omitempty"` // "" when no topic follows
}

// SlotRegionName names slot region slot of a partition whose data region
// is dataRegion: subscriber slot k is dataRegion.sK, queue-group slot j
// (slot = maxSubscribers + j) is dataRegion.gJ.
func SlotRegionName(dataRegion string, slot, maxSubscribers int) string {
	if slot >= maxSubscribers {
		return dataRegion + ".g" + strconv.Itoa(slot-maxSubscribers)
	}
	return dataRegion + ".s" + strconv.Itoa(slot)
}

// SlotPaths lists the partition's slot region files (Slots of them, in
// slot order; nil without a SlotDir); maxSubscribers is the topic's
// Spec.MaxSubscribers.
func (p PartitionInfo) SlotPaths(maxSubscribers int) []string {
	if p.SlotDir == "" || p.Slots <= 0 {
		return nil
	}
	out := make([]string, p.Slots)
	for k := range out {
		out[k] = filepath.Join(p.SlotDir, SlotRegionName(p.Region, k, maxSubscribers))
	}
	return out
}

// TopicInfo describes a topic and, per partition, its region and counters
// as read from shared memory when the reply was made.
type TopicInfo struct {
	Spec       TopicSpec `json:"spec"`
	CreatedNS  int64     `json:"created_ns"` // unix ns
	Publishers int       `json:"publishers"` // attachments registered with the daemon
	// Subscribers counts the subscriber attachments able to receive: each
	// of their ring slots is active (its read position is stored), so
	// every record published from then on reaches them. A Subscribe in
	// progress (slots reserved, not yet joined) is in JoiningSubscribers.
	Subscribers        int             `json:"subscribers"`
	JoiningSubscribers int             `json:"joining_subscribers,omitempty"`
	Partitions         []PartitionInfo `json:"partitions"`
	// Creating: the daemon is still making the topic's regions (a big
	// topic takes seconds); Partitions is empty, and an attach waits for
	// the creation to end.
	Creating bool `json:"creating,omitempty"`
	// PartitionsMade counts, while Creating, the partitions whose regions
	// are made (0 to Spec.Partitions-1): the progress of the creation.
	PartitionsMade int `json:"partitions_made,omitempty"`
}

// PartitionInfo describes one partition's regions and its ring.
type PartitionInfo struct {
	Index int `json:"index"`
	// Region and Path name the data region (ring header, tail, publisher
	// table, records), which subscribers map read-only; ConsumerRegion
	// and ConsumerPath the consumer region (doorbells, subscriber
	// epoch). Reading a ring's counters needs them and the slot regions
	// (see stat.CounterReader).
	Region            string `json:"region"` // data region name (shm.Open)
	Path              string `json:"path"`   // data region file path
	ConsumerRegion    string `json:"consumer_region"`
	ConsumerPath      string `json:"consumer_path"`
	ConsumerSizeBytes uint64 `json:"consumer_size_bytes"` // consumer region file size
	// Slots is the number of slot regions (each of the ring's cursors
	// has a region of its own; see ringbuf.Create): one per subscriber slot then one per
	// queue-group slot. They are files in SlotDir named after Region
	// (SlotRegionName); SlotPaths lists them. A reply names the directory
	// once rather than every file, so that it stays small (protocol 4).
	Slots   int    `json:"slots"`
	SlotDir string `json:"slot_dir,omitempty"`
	// SizeBytes is the data region file's size.
	SizeBytes     uint64 `json:"size_bytes"`
	PageSizeBytes uint64 `json:"page_size_bytes"`
	HugePages     bool   `json:"huge_pages"`
	// FallbackTmpfs: hugepages were asked for ("auto") but none were free,
	// so the region is on tmpfs.
	FallbackTmpfs bool     `json:"fallback_tmpfs,omitempty"`
	NodeActual    int      `json:"node_actual"` // -1 unknown
	Counters      Counters `json:"counters"`
}

// Counters mirrors ringbuf.Counters for one partition.
type Counters struct {
	Published       uint64 `json:"published"`
	Consumed        uint64 `json:"consumed"`
	Lost            uint64 `json:"lost"`
	BackPressure    uint64 `json:"back_pressure"`
	Rejected        uint64 `json:"rejected"`
	Unblocked       uint64 `json:"unblocked"`
	Reaped          uint64 `json:"reaped"`
	Evicted         uint64 `json:"evicted"`  // subscriber slots taken from live owners (daemon.evict_stalled_after)
	Tampered        uint64 `json:"tampered"` // changes to a subscriber's slot by another process, detected by it
	TailPosition    uint64 `json:"tail_position"`
	Publishers      int    `json:"publishers"` // live slots in the ring
	Subscribers     int    `json:"subscribers"`
	SlowestLagBytes uint64 `json:"slowest_lag_bytes"`
}

// Attach asks for a topic's regions.
type Attach struct {
	Topic      string `json:"topic"`
	Role       Role   `json:"role"`
	Partitions []int  `json:"partitions,omitempty"` // nil: all
	// Group is the queue group a subscriber joins (its id in the ring:
	// GroupID of its name); 0: broadcast. GroupName is that name, which
	// access rules on groups match (security.access groups); the daemon
	// refuses a name whose GroupID is not Group.
	Group     uint32 `json:"group,omitempty"`
	GroupName string `json:"group_name,omitempty"`
}

// AttachReply answers attach. Descriptors[i] descriptors for entry i of
// Partitions travel with the frame, partition after partition: the
// partition's data region (read-only for a subscriber), its consumer
// region, then slot regions — for a publisher every subscriber slot (0 to
// max_subscribers-1) then every queue-group slot (0 to max_groups-1); for
// a subscriber only the subscriber slot reserved for it, Slots[i], and for
// a queue-group member then its group's slot, GroupSlots[i] (see the
// package documentation, Descriptors).
type AttachReply struct {
	AttachmentID uint64    `json:"attachment_id"`
	Topic        TopicInfo `json:"topic"`
	Partitions   []int     `json:"partitions"`
	Descriptors  []int     `json:"descriptors"`           // per partition: RegionDescriptors + slot regions
	Slots        []int     `json:"slots,omitempty"`       // subscriber: the slot index reserved in each partition
	GroupSlots   []int     `json:"group_slots,omitempty"` // queue-group member: its group's slot index in each partition
}

// Detach releases an attachment (the client has closed its handles).
type Detach struct {
	AttachmentID uint64 `json:"attachment_id"`
}

// Stats answers stats: the daemon's clients and one page of its topics
// (the request's body is a Page). Clients are all in the first page's
// reply and none in the following pages'.
type Stats struct {
	Clients []ClientInfo `json:"clients"`
	Topics  []TopicInfo  `json:"topics"`
	Next    string       `json:"next,omitempty"` // "" when no topic follows
}

// ClientInfo is one connected client.
type ClientInfo struct {
	ID          uint64 `json:"id"`
	Name        string `json:"name"`
	PID         int    `json:"pid"`
	UID         int    `json:"uid"`
	GID         int    `json:"gid"`
	ConnectedNS int64  `json:"connected_ns"` // unix ns
	Attachments int    `json:"attachments"`
}

// Status answers daemon status.
type Status struct {
	Version    int    `json:"version"`
	PID        int    `json:"pid"`
	StartedNS  int64  `json:"started_ns"` // unix ns
	UptimeNS   int64  `json:"uptime_ns"`
	SocketPath string `json:"socket_path"`
	StateDir   string `json:"state_dir"`
	ShmDir     string `json:"shm_dir"`
	Topics     int    `json:"topics"`
	Clients    int    `json:"clients"`
	// Heartbeats counts the daemon's heartbeat ticks; HeartbeatNS is the
	// last one's unix ns (also in the state dir's heartbeat file).
	Heartbeats  uint64 `json:"heartbeats"`
	HeartbeatNS int64  `json:"heartbeat_ns"`
	// PeerDeaths counts client processes that died holding ring slots
	// (a clean exit, handles closed first, is not counted); LastDetectionNS
	// is how long the last one took from pidfd readiness to its rings
	// reaped.
	PeerDeaths      uint64 `json:"peer_deaths"`
	LastDetectionNS int64  `json:"last_detection_ns"`
	// SubscriberEvictions counts subscriber processes evicted for holding
	// publishers back without reading (daemon.evict_stalled_after);
	// SubscriberKills counts those of them that were SIGKILLed because
	// they did it again after an eviction (the others lost their ring
	// slots and lived on).
	SubscriberEvictions uint64 `json:"subscriber_evictions"`
	SubscriberKills     uint64 `json:"subscriber_kills"`
	// HugeDir is the region directory on hugetlbfs ("" without a mount of
	// the configured page size); data regions go there when huge pages
	// are free, everything else to ShmDir (tmpfs).
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

// ConfigView answers config show: the daemon's effective configuration,
// key by key, with where each value came from.
type ConfigView struct {
	File     string        `json:"file"`      // the config file, "" if none
	LoadedNS int64         `json:"loaded_ns"` // unix ns of the load in effect
	Entries  []ConfigEntry `json:"entries"`   // in key order
	// LastReload is the outcome of the latest reload attempt (zero if none).
	LastReload ReloadStatus `json:"last_reload"`
}

// ConfigEntry is one key of a ConfigView.
type ConfigEntry struct {
	Key    string `json:"key"`    // key path, e.g. "network.port"
	Value  string `json:"value"`  // as TOML would spell it (tables as JSON)
	Source string `json:"source"` // "default", "file PATH:LINE", "env NAME", "flag --x"
	Live   bool   `json:"live"`   // a reload may change it
	// Effective is what the daemon runs with when it is not Value as
	// written: a default resolved at start (state_dir "" is the socket's
	// directory, port 0 the port bound). "" when Value is it.
	Effective string `json:"effective,omitempty"`
}

// ReloadStatus is the outcome of one reload attempt.
type ReloadStatus struct {
	AtNS    int64  `json:"at_ns"` // unix ns; 0: no reload attempted yet
	OK      bool   `json:"ok"`
	Trigger string `json:"trigger,omitempty"` // file, signal, request, api
	Error   string `json:"error,omitempty"`
}

// ConfigReload answers config reload: what the reload changed.
type ConfigReload struct {
	AtNS    int64          `json:"at_ns"`
	Changes []ConfigChange `json:"changes"` // empty: the file changed nothing
}

// ConfigChange is one key a reload changed.
type ConfigChange struct {
	Key string `json:"key"`
	Old string `json:"old"`
	New string `json:"new"`
}

// Health statuses, best first.
const (
	HealthHealthy   = "healthy"
	HealthDegraded  = "degraded"
	HealthUnhealthy = "unhealthy"
	HealthUnknown   = "unknown"
)

// Health answers health (and GET /healthz): the worst status of the
// rules that fired, and why.
type Health struct {
	Status    string         `json:"status"`     // HealthHealthy ... HealthUnknown
	Reasons   []HealthReason `json:"reasons"`    // empty when healthy
	CheckedNS int64          `json:"checked_ns"` // unix ns
	PID       int            `json:"pid"`
	// Heartbeats and HeartbeatNS are the heartbeat counter and its last
	// tick (unix ns), as in Status.
	Heartbeats  uint64 `json:"heartbeats"`
	HeartbeatNS int64  `json:"heartbeat_ns"`
	// Errors is the error rate over the last minute (or since the daemon
	// started, if that is sooner), the older design's HealthMonitor
	// figures; nil when the daemon is not serving.
	Errors *ErrorRate `json:"errors,omitempty"`
}

// ErrorRate counts errors over a window: control requests that failed,
// and error records (rejected under the reject policy, dead publishers'
// claims turned into skips, subscriber slots found tampered with).
type ErrorRate struct {
	WindowNS       int64   `json:"window_ns"`
	Requests       uint64  `json:"requests"`
	FailedRequests uint64  `json:"failed_requests"`
	Records        uint64  `json:"records"`       // published
	ErrorRecords   uint64  `json:"error_records"` // rejected + unblocked + tampered
	PerMinute      float64 `json:"per_minute"`    // (failed requests + error records) per minute
	RequestShare   float64 `json:"request_share"` // failed / requests, 0 with no request
	RecordShare    float64 `json:"record_share"`  // error records / records, 0 with no record
}

// HealthReason is one rule that fired.
type HealthReason struct {
	Rule    string `json:"rule"`   // subscriber_lag, hugepages, reload, peer_reclaimed, region_alloc, heartbeat
	Status  string `json:"status"` // what this rule alone makes the daemon
	Message string `json:"message"`
}

// GroupID is a queue group's id in the ring: FNV-1a (32 bit) of its name,
// never 0 (0 means broadcast). "" is 0.
func GroupID(name string) uint32 {
	if name == "" {
		return 0
	}
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	if h == 0 {
		h = 1
	}
	return h
}

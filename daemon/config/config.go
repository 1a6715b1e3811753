package config

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// Config is kaelixd's configuration: one section per TOML table. Start from
// Default(); the zero value is not valid. A Config is a plain value, but its
// slices (Topics, Security.Access and the id lists in it) are shared by
// copies: use Clone before modifying a copy's slices.
//
// Every field is a key path: its TOML table and key joined by dots
// ("network.port"). Scalar keys may also be set from the environment
// (KAELIX_ + the key path upper-cased, dots as underscores:
// KAELIX_NETWORK_PORT) and from kaelixd's flags; Topics and Security.Access
// are tables and come from the file only.
type Config struct {
	Daemon    Daemon    `toml:"daemon"`
	Shm       Shm       `toml:"shm"`
	Network   Network   `toml:"network"`
	Runtime   Runtime   `toml:"runtime"`
	Telemetry Telemetry `toml:"telemetry"`
	Security  Security  `toml:"security"`
	Topics    []Topic   `toml:"topics"`
	Bridges   []Bridge  `toml:"bridges"`
	// Processors are stream processors kaelixd runs and supervises
	// (processors.go).
	Processors []Processor `toml:"processors"`
}

// Daemon is [daemon]: where kaelixd keeps its socket and state.
type Daemon struct {
	// SocketPath is the control socket (at most 107 bytes). Default
	// wire.DefaultSocketPath(): /run/kaelix/kaelixd.sock as root,
	// $XDG_RUNTIME_DIR/kaelix/kaelixd.sock otherwise.
	SocketPath string `toml:"socket_path"`
	// StateDir holds the lock, the topic registry and the heartbeat file;
	// "" (default) means the socket's directory.
	StateDir string `toml:"state_dir"`
	// MaxClients bounds concurrent control connections; 0 means no bound.
	// Default 1024. Live: applies to connections accepted afterwards.
	MaxClients int `toml:"max_clients"`
	// HeartbeatInterval is how often the heartbeat advances. Default 100ms.
	HeartbeatInterval time.Duration `toml:"heartbeat_interval"`
	// SweepInterval is how often every ring is reaped of dead processes'
	// slots (the backstop for the pidfd watch). Default 1s.
	SweepInterval time.Duration `toml:"sweep_interval"`
	// EvictStalledAfter is how long a subscriber may hold the publishers
	// of a block or reject partition back without reading before the
	// daemon evicts it. It holds them back while its ring slot is at least
	// half the capacity behind the tail; it is evicted once its position
	// has not moved for this long meanwhile, whether its process is
	// stopped (SIGSTOP, a debugger: /proc state T or t) or running. The
	// eviction spares the process: the daemon takes its slots in the
	// partitions it holds back, the publishers go on at once, and its next
	// read returns client.ErrEvicted (it may subscribe again). A process
	// that holds publishers back this long again after an eviction is
	// killed (SIGKILL through its pidfd). Slots of a topic one of whose
	// publisher processes is stopped are not held against their owners
	// (they may be waiting for that publisher's claim). A stopped
	// subscriber holding publishers back through a slot the ring cannot
	// take from it (one it is joining, a queue-group member's held record)
	// is killed instead. The sweep checks, so an eviction comes up to one
	// sweep_interval late. 0 never evicts: publishers wait for as long as
	// the subscriber does not read. Live. Evictions are counted
	// (kaelix_subscriber_evictions_total{action="evict"|"kill"},
	// kaelix_partition_evicted_total, daemon status) and logged.
	//
	// Default 5s, after Aeron's untethered subscriptions (a subscription
	// outside the flow-control window for untethered-window-limit-timeout,
	// default 5 s, stops holding the publication back; it rests for
	// untethered-resting-timeout, default 10 s, before it may rejoin).
	// Why 5 s: one stopped or wedged consumer must not halt a feed every
	// other consumer depends on for longer than an operator takes to
	// notice (a publisher blocked that long already says who blocks it);
	// and 5 s is three orders of magnitude above the stalls a healthy
	// subscriber has (GC pauses, page faults, scheduling delays: ms),
	// so a slow but live reader is never evicted (it must also be half a
	// ring behind and not move at all). A subscriber paused in a debugger
	// is evicted after 5 s and killed if it does it again: set 0 on a
	// development host, or for consumers that must never miss a record.
	EvictStalledAfter time.Duration `toml:"evict_stalled_after"`
}

// Shm is [shm]: where and how partition regions are made.
type Shm struct {
	// BaseDir is the tmpfs mount for regions without huge pages. Default
	// "/dev/shm".
	BaseDir string `toml:"base_dir"`
	// HugetlbfsDir is the hugetlbfs mount; "" finds the mount of PageSize.
	HugetlbfsDir string `toml:"hugetlbfs_dir"`
	// DirName is the directory under each mount that holds kaelixd's
	// regions. Default "kaelix" as root, "kaelix-UID" otherwise.
	DirName string `toml:"dir_name"`
	// HugePages is auto (default: use them when reserved), required or off.
	HugePages shm.Policy `toml:"hugepages"`
	// PageSize is the huge page size: 2MiB (default) or 1GiB.
	PageSize Size `toml:"page_size"`
	// Prefault touches every page of a new region before clients see it.
	Prefault bool `toml:"prefault"`
	// Mlock locks new regions in the daemon's memory: off (default), auto
	// (when RLIMIT_MEMLOCK allows) or required.
	Mlock shm.Policy `toml:"mlock"`
	// FileMode is the default permission of region files (0o600).
	FileMode FileMode `toml:"file_mode"`
	// Group is the default group (name or numeric id) of region files; ""
	// keeps the daemon's.
	Group string `toml:"group"`
	// MaxTopicShare bounds one topic at creation: what of its regions
	// lands on the tmpfs (RAM) must fit in this share of MemAvailable and
	// of the tmpfs's free space. Huge pages are not held to it (the pool
	// is memory set aside for regions). 0 <= share <= 1; 0 turns the
	// check off; default 0.5. A create with force (kaelixctl topics create
	// --force) skips it. Live.
	MaxTopicShare float64 `toml:"max_topic_share"`
	// MaxTopicBytes is an absolute bound on one topic's regions, checked
	// with MaxTopicShare; 0 (default) is none. Live.
	MaxTopicBytes Size `toml:"max_topic_bytes"`
}

// Network is [network]: the HTTP listener for /healthz and /metrics.
type Network struct {
	// Enabled starts the listener (default true).
	Enabled bool `toml:"enabled"`
	// Host is the address to listen on. Default "127.0.0.1": loopback only.
	Host string `toml:"host"`
	// Port is the TCP port, 0..65535; 0 picks a free port (the daemon
	// reports it). Default 9090.
	Port int `toml:"port"`
	// MaxConnections bounds concurrent HTTP connections (default 64).
	MaxConnections int `toml:"max_connections"`
}

// Runtime is [runtime]: defaults for waiting and the daemon's threads.
type Runtime struct {
	// WaitStrategy is the default wait strategy the daemon advertises to
	// clients in its hello reply: busy-spin, yield, backoff (default) or
	// blocking. Live.
	WaitStrategy string `toml:"wait_strategy"`
	// TargetLatencyUS is the spin budget in microseconds a backoff waiter
	// spins before it yields and parks (default 50). Live.
	TargetLatencyUS int `toml:"target_latency_us"`
	// NUMAAware binds declared topics with a numa_node to that node and
	// reports per-node metrics (default true).
	NUMAAware bool `toml:"numa_aware"`
	// WorkerThreads sets GOMAXPROCS for the daemon's own goroutines; 0
	// (default) leaves Go's choice.
	WorkerThreads int `toml:"worker_threads"`
}

// Telemetry is [telemetry]: logging, metrics and health thresholds.
type Telemetry struct {
	// Enabled serves /metrics (default true). Live.
	Enabled bool      `toml:"enabled"`
	Logging Logging   `toml:"logging"`
	Metrics Metrics   `toml:"metrics"`
	Health  HealthCfg `toml:"health"`
}

// Logging is [telemetry.logging].
type Logging struct {
	// Level is debug, info (default), warn or error. Live.
	Level string `toml:"level"`
	// Target is stderr (default), stdout, or a file path (appended).
	Target string `toml:"target"`
	// Format is text (default) or json.
	Format string `toml:"format"`
}

// Metrics is [telemetry.metrics].
type Metrics struct {
	Prometheus Prometheus `toml:"prometheus"`
}

// Prometheus is [telemetry.metrics.prometheus].
type Prometheus struct {
	// Enabled serves the Prometheus exposition at /metrics (default true).
	// Live.
	Enabled bool `toml:"enabled"`
	// Port, if non-zero, serves /metrics on a listener of its own (on
	// network.host); 0 (default) serves it on network.port.
	Port int `toml:"port"`
}

// HealthCfg is [telemetry.health]: thresholds of the health rules. Live.
type HealthCfg struct {
	// LagRatio: a subscriber whose lag exceeds this share of its ring's
	// capacity makes the daemon degraded. 0 < LagRatio <= 1; default 0.8.
	LagRatio float64 `toml:"lag_ratio"`
	// RecentWindow is how long a client reclaimed after dying or a region
	// allocation failure keeps the daemon degraded. Default 1m.
	RecentWindow time.Duration `toml:"recent_window"`
	// HeartbeatStale: a heartbeat older than this makes the daemon
	// unhealthy (hung). Default 2s; at least 2 x daemon.heartbeat_interval.
	HeartbeatStale time.Duration `toml:"heartbeat_stale"`
	// ErrorShare: over the last minute, failed control requests above this
	// share of requests, or error records (rejected, dead publishers'
	// claims skipped, tampered slots) above this share of records
	// published, make the daemon degraded (at least 5 errors, so that one
	// failure among three requests does not). 0 < ErrorShare <= 1;
	// default 0.05.
	ErrorShare float64 `toml:"error_share"`
}

// Security is [security]: socket permission, TLS and per-topic access.
type Security struct {
	// SocketMode is the control socket's permission (default 0o600).
	SocketMode FileMode `toml:"socket_mode"`
	// SocketGroup is the socket's group (name or id); "" keeps the daemon's.
	SocketGroup string `toml:"socket_group"`
	TLS         TLS    `toml:"tls"`
	// Access lists per-topic rules, first match wins; see AccessRule. Live.
	Access []AccessRule `toml:"access"`
}

// TLS is [security.tls]: TLS on the HTTP listener.
type TLS struct {
	Enabled  bool   `toml:"enabled"`
	CertPath string `toml:"cert_path"` // PEM certificate chain
	KeyPath  string `toml:"key_path"`  // PEM private key
}

// AccessRule is one [[security.access]] entry. Topics is a path.Match
// pattern over topic names ("sensors.*", "*"). For a topic it matches
// (first matching rule wins), a peer may publish, subscribe or administer
// (create, delete) only if its SO_PEERCRED uid, or its primary or a
// supplementary gid, is listed for that action. Root and the daemon's own
// user always may. Topics no rule matches keep the topic's mode and group
// for attach, and anyone who can connect may create and delete them.
type AccessRule struct {
	Topics    string     `toml:"topics"`
	Publish   Principals `toml:"publish"`
	Subscribe Principals `toml:"subscribe"`
	Admin     Principals `toml:"admin"`
	// Groups, if any, guard the topics' queue groups: a subscriber joins a
	// group only if the first entry whose Names pattern (path.Match)
	// matches the group's name lists it in Join; a group no entry matches
	// cannot be joined. Without Groups, any subscriber may join any group.
	Groups []GroupAccess `toml:"groups"`
}

// GroupAccess is one [[security.access.groups]] entry.
type GroupAccess struct {
	Names string     `toml:"names"`
	Join  Principals `toml:"join"`
}

// Principals lists the users and groups granted one action.
type Principals struct {
	UIDs []int `toml:"uids"`
	GIDs []int `toml:"gids"`
}

// Topic is one [[topics]] entry: a topic the daemon creates at start (and
// on reload, when added). Zero fields take wire.TopicSpec's defaults.
type Topic struct {
	Name            string `toml:"name"`
	Partitions      int    `toml:"partitions"`        // default 1
	Kind            string `toml:"kind"`              // spsc or mpmc (default)
	Capacity        Size   `toml:"capacity"`          // per partition, power of two; default 1MiB
	MaxMessageBytes Size   `toml:"max_message_bytes"` // default 4096
	Policy          string `toml:"policy"`            // block (default), drop-oldest, reject
	// NUMANode binds the topic's regions to a node (with runtime.numa_aware);
	// absent means no binding.
	NUMANode *int     `toml:"numa_node"`
	Mode     FileMode `toml:"mode"`  // default shm.file_mode
	Group    string   `toml:"group"` // default shm.group
}

// Default returns the configuration kaelixd runs with when nothing is set:
// no root and no huge pages needed (they are used when reserved), the HTTP
// listener on 127.0.0.1:9090.
func Default() Config {
	uid := os.Geteuid()
	dirName := "kaelix"
	if uid != 0 {
		dirName = "kaelix-" + strconv.Itoa(uid)
	}
	return Config{
		Daemon: Daemon{
			SocketPath:        wire.DefaultSocketPath(),
			MaxClients:        1024,
			HeartbeatInterval: 100 * time.Millisecond,
			SweepInterval:     time.Second,
			EvictStalledAfter: 5 * time.Second,
		},
		Shm: Shm{
			BaseDir:       "/dev/shm",
			DirName:       dirName,
			HugePages:     shm.PolicyAuto,
			PageSize:      Size(shm.HugePage2M),
			Mlock:         shm.PolicyOff,
			FileMode:      0o600,
			MaxTopicShare: 0.5,
		},
		Network: Network{Enabled: true, Host: "127.0.0.1", Port: 9090, MaxConnections: 64},
		Runtime: Runtime{WaitStrategy: "backoff", TargetLatencyUS: 50, NUMAAware: true},
		Telemetry: Telemetry{
			Enabled: true,
			Logging: Logging{Level: "info", Target: "stderr", Format: "text"},
			Metrics: Metrics{Prometheus: Prometheus{Enabled: true}},
			Health:  HealthCfg{LagRatio: 0.8, RecentWindow: time.Minute, HeartbeatStale: 2 * time.Second, ErrorShare: 0.05},
		},
		Security: Security{SocketMode: 0o600},
	}
}

// Clone returns a deep copy of c.
func (c Config) Clone() Config {
	c.Topics = append([]Topic(nil), c.Topics...)
	c.Bridges = append([]Bridge(nil), c.Bridges...)
	c.Processors = append([]Processor(nil), c.Processors...)
	for i := range c.Topics {
		if n := c.Topics[i].NUMANode; n != nil {
			v := *n
			c.Topics[i].NUMANode = &v
		}
	}
	acc := make([]AccessRule, len(c.Security.Access))
	for i, r := range c.Security.Access {
		for _, p := range []*Principals{&r.Publish, &r.Subscribe, &r.Admin} {
			p.UIDs = append([]int(nil), p.UIDs...)
			p.GIDs = append([]int(nil), p.GIDs...)
		}
		if r.Groups != nil {
			gs := make([]GroupAccess, len(r.Groups))
			for j, g := range r.Groups {
				g.Join.UIDs = append([]int(nil), g.Join.UIDs...)
				g.Join.GIDs = append([]int(nil), g.Join.GIDs...)
				gs[j] = g
			}
			r.Groups = gs
		}
		acc[i] = r
	}
	if c.Security.Access != nil {
		c.Security.Access = acc
	}
	return c
}

// StateDirOrDefault returns Daemon.StateDir, or the socket's directory when
// it is empty.
func (c Config) StateDirOrDefault() string {
	if c.Daemon.StateDir != "" {
		return c.Daemon.StateDir
	}
	return filepath.Dir(c.Daemon.SocketPath)
}

// HTTPAddr is network.host:network.port.
func (c Config) HTTPAddr() string {
	return net.JoinHostPort(c.Network.Host, strconv.Itoa(c.Network.Port))
}

// Levels, wait strategies and the other enumerations Validate accepts.
var (
	logLevels     = []string{"debug", "info", "warn", "error"}
	logFormats    = []string{"text", "json"}
	waitNames     = []string{"busy-spin", "yield", "backoff", "blocking"}
	topicKinds    = []string{string(wire.KindSPSC), string(wire.KindMPMC)}
	topicPolicies = []string{string(wire.PolicyBlock), string(wire.PolicyDropOldest), string(wire.PolicyReject)}
)

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

// Validate checks c and reports every invalid key at once, as Errors
// (each a *FieldError naming its key path). It reads nothing from the host
// except group names (os/user); host checks are Check's job.
func (c Config) Validate() error {
	var errs Errors
	bad := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	d := c.Daemon
	switch {
	case d.SocketPath == "":
		bad("daemon.socket_path", "empty")
	case len(d.SocketPath) > 107:
		bad("daemon.socket_path", "%q is %d bytes; a Unix socket path holds at most 107", d.SocketPath, len(d.SocketPath))
	case !filepath.IsAbs(d.SocketPath):
		bad("daemon.socket_path", "%q is not an absolute path", d.SocketPath)
	}
	if d.StateDir != "" && !filepath.IsAbs(d.StateDir) {
		bad("daemon.state_dir", "%q is not an absolute path", d.StateDir)
	}
	if d.MaxClients < 0 {
		bad("daemon.max_clients", "%d is negative (0 means no bound)", d.MaxClients)
	}
	if d.HeartbeatInterval < time.Millisecond {
		bad("daemon.heartbeat_interval", "%v: want at least 1ms", d.HeartbeatInterval)
	}
	if d.EvictStalledAfter < 0 {
		bad("daemon.evict_stalled_after", "%v is negative (0 means never evict)", d.EvictStalledAfter)
	}
	if d.SweepInterval < time.Millisecond {
		bad("daemon.sweep_interval", "%v: want at least 1ms", d.SweepInterval)
	}

	s := c.Shm
	if !filepath.IsAbs(s.BaseDir) {
		bad("shm.base_dir", "%q is not an absolute path", s.BaseDir)
	}
	if s.HugetlbfsDir != "" && !filepath.IsAbs(s.HugetlbfsDir) {
		bad("shm.hugetlbfs_dir", "%q is not an absolute path", s.HugetlbfsDir)
	}
	if err := shm.ValidateName(s.DirName); err != nil {
		bad("shm.dir_name", "%q: %v", s.DirName, err)
	}
	if uint64(s.PageSize) != shm.HugePage2M && uint64(s.PageSize) != shm.HugePage1G {
		bad("shm.page_size", "%v: want 2MiB or 1GiB", s.PageSize)
	}
	if s.FileMode&^0o777 != 0 {
		bad("shm.file_mode", "%v has bits beyond the permission bits (write it in octal: 0o600)", s.FileMode)
	}
	if _, err := LookupGroup(s.Group); err != nil {
		bad("shm.group", "%v", err)
	}
	if !(s.MaxTopicShare >= 0 && s.MaxTopicShare <= 1) {
		bad("shm.max_topic_share", "%v: want 0 (no check) to 1", s.MaxTopicShare)
	}

	n := c.Network
	if n.Port < 0 || n.Port > 65535 {
		bad("network.port", "%d: want 0 to 65535", n.Port)
	}
	if n.Enabled && n.Host == "" {
		bad("network.host", "empty")
	}
	if n.MaxConnections < 1 {
		bad("network.max_connections", "%d: want at least 1", n.MaxConnections)
	}

	r := c.Runtime
	if !oneOf(r.WaitStrategy, waitNames) {
		bad("runtime.wait_strategy", "%q: want one of %s", r.WaitStrategy, strings.Join(waitNames, ", "))
	}
	if r.TargetLatencyUS < 0 || r.TargetLatencyUS > 1_000_000 {
		bad("runtime.target_latency_us", "%d: want 0 to 1000000", r.TargetLatencyUS)
	}
	if r.WorkerThreads < 0 || r.WorkerThreads > 4096 {
		bad("runtime.worker_threads", "%d: want 0 (Go's choice) to 4096", r.WorkerThreads)
	}

	t := c.Telemetry
	if !oneOf(t.Logging.Level, logLevels) {
		bad("telemetry.logging.level", "%q: want one of %s", t.Logging.Level, strings.Join(logLevels, ", "))
	}
	if !oneOf(t.Logging.Format, logFormats) {
		bad("telemetry.logging.format", "%q: want text or json", t.Logging.Format)
	}
	if tg := t.Logging.Target; tg == "" || (tg != "stderr" && tg != "stdout" && !filepath.IsAbs(tg)) {
		bad("telemetry.logging.target", "%q: want stderr, stdout or an absolute file path", tg)
	}
	if p := t.Metrics.Prometheus.Port; p < 0 || p > 65535 {
		bad("telemetry.metrics.prometheus.port", "%d: want 0 (share network.port) to 65535", p)
	} else if p != 0 && p == n.Port {
		bad("telemetry.metrics.prometheus.port", "%d is network.port; use 0 to share that listener", p)
	}
	if h := t.Health; !(h.LagRatio > 0 && h.LagRatio <= 1) {
		bad("telemetry.health.lag_ratio", "%v: want more than 0 and at most 1", h.LagRatio)
	}
	if h := t.Health; !(h.ErrorShare > 0 && h.ErrorShare <= 1) {
		bad("telemetry.health.error_share", "%v: want more than 0 and at most 1", h.ErrorShare)
	}
	if t.Health.RecentWindow < 0 {
		bad("telemetry.health.recent_window", "%v is negative", t.Health.RecentWindow)
	}
	if t.Health.HeartbeatStale < 2*d.HeartbeatInterval {
		bad("telemetry.health.heartbeat_stale", "%v: want at least twice daemon.heartbeat_interval (%v)", t.Health.HeartbeatStale, d.HeartbeatInterval)
	}

	sec := c.Security
	if sec.SocketMode&^0o777 != 0 {
		bad("security.socket_mode", "%v has bits beyond the permission bits (write it in octal: 0o660)", sec.SocketMode)
	}
	if _, err := LookupGroup(sec.SocketGroup); err != nil {
		bad("security.socket_group", "%v", err)
	}
	if sec.TLS.Enabled {
		if sec.TLS.CertPath == "" {
			bad("security.tls.cert_path", "empty while security.tls.enabled")
		}
		if sec.TLS.KeyPath == "" {
			bad("security.tls.key_path", "empty while security.tls.enabled")
		}
	}
	for i, a := range sec.Access {
		key := fmt.Sprintf("security.access[%d]", i)
		if a.Topics == "" {
			bad(key+".topics", "empty pattern")
		} else if _, err := path.Match(a.Topics, "x"); err != nil {
			bad(key+".topics", "%q: %v", a.Topics, err)
		}
		for _, p := range []struct {
			name string
			p    Principals
		}{{"publish", a.Publish}, {"subscribe", a.Subscribe}, {"admin", a.Admin}} {
			for _, id := range append(append([]int(nil), p.p.UIDs...), p.p.GIDs...) {
				if id < 0 {
					bad(key+"."+p.name, "id %d is negative", id)
				}
			}
		}
		for j, g := range a.Groups {
			gkey := fmt.Sprintf("%s.groups[%d]", key, j)
			if g.Names == "" {
				bad(gkey+".names", "empty pattern")
			} else if _, err := path.Match(g.Names, "x"); err != nil {
				bad(gkey+".names", "%q: %v", g.Names, err)
			}
			for _, id := range append(append([]int(nil), g.Join.UIDs...), g.Join.GIDs...) {
				if id < 0 {
					bad(gkey+".join", "id %d is negative", id)
				}
			}
		}
	}

	c.validateBridges(bad)
	c.validateProcessors(bad)
	seen := map[string]int{}
	for i, tp := range c.Topics {
		key := fmt.Sprintf("topics[%d]", i)
		if err := wire.ValidateTopicName(tp.Name); err != nil {
			bad(key+".name", "%v", err)
		} else if j, dup := seen[tp.Name]; dup {
			bad(key+".name", "%q is also declared by topics[%d]", tp.Name, j)
		} else {
			seen[tp.Name] = i
		}
		if tp.Kind != "" && !oneOf(tp.Kind, topicKinds) {
			bad(key+".kind", "%q: want spsc or mpmc", tp.Kind)
		}
		if tp.Policy != "" && !oneOf(tp.Policy, topicPolicies) {
			bad(key+".policy", "%q: want block, drop-oldest or reject", tp.Policy)
		}
		if tp.Partitions < 0 || tp.Partitions > wire.MaxPartitions {
			bad(key+".partitions", "%d: want 1 to %d", tp.Partitions, wire.MaxPartitions)
		}
		if tp.NUMANode != nil && *tp.NUMANode < 0 {
			bad(key+".numa_node", "%d is negative", *tp.NUMANode)
		}
		if tp.Mode&^0o777 != 0 {
			bad(key+".mode", "%v has bits beyond the permission bits", tp.Mode)
		}
		if _, err := LookupGroup(tp.Group); err != nil {
			bad(key+".group", "%v", err)
		}
		if tp.MaxMessageBytes > 1<<31 {
			bad(key+".max_message_bytes", "%v is too large", tp.MaxMessageBytes)
		}
		if oneOf(tp.Kind, append(topicKinds, "")) && oneOf(tp.Policy, append(topicPolicies, "")) && tp.Partitions >= 0 && tp.MaxMessageBytes <= 1<<31 {
			if _, err := c.TopicSpec(tp).RingConfig(); err != nil {
				bad(key+".capacity", "%v", err)
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// TopicSpec turns a declared topic into the wire spec the daemon creates,
// with the shm section's mode and group as defaults, normalized.
func (c Config) TopicSpec(t Topic) wire.TopicSpec {
	s := wire.TopicSpec{
		Name: t.Name, Partitions: t.Partitions, Kind: wire.Kind(t.Kind), CapacityBytes: uint64(t.Capacity),
		MaxMessageBytes: uint32(t.MaxMessageBytes), Policy: wire.Policy(t.Policy), Mode: uint32(t.Mode),
	}
	if s.Mode == 0 {
		s.Mode = uint32(c.Shm.FileMode)
	}
	grp := t.Group
	if grp == "" {
		grp = c.Shm.Group
	}
	if gid, err := LookupGroup(grp); err == nil {
		s.GID = gid
	}
	if t.NUMANode != nil && c.Runtime.NUMAAware {
		s.BindNode, s.Node = true, *t.NUMANode
	}
	return s.Normalize()
}

// LookupGroup resolves a group given by name or numeric id; "" is -1 (the
// daemon's own group).
func LookupGroup(g string) (int, error) {
	if g == "" {
		return -1, nil
	}
	if id, err := strconv.Atoi(g); err == nil {
		if id < 0 {
			return 0, fmt.Errorf("group id %d is negative", id)
		}
		return id, nil
	}
	grp, err := user.LookupGroup(g)
	if err != nil {
		return 0, fmt.Errorf("group %q: %w", g, err)
	}
	return strconv.Atoi(grp.Gid)
}

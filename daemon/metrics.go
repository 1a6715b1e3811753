package daemon

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kaelix-io/kaelix/numa"
	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// metrics is the daemon's Prometheus registry (one per Daemon, so that
// embedded daemons never collide in the global one). Ring counters are
// read from the shared-memory headers at scrape time by collector: the
// data path never talks to the daemon to be counted. Daemon-side events
// (reloads, control requests, allocation failures) are ordinary counters
// bumped on the control path.
type metrics struct {
	reg            *prometheus.Registry
	reloads        prometheus.Counter
	reloadFailures prometheus.Counter
	allocFailures  prometheus.Counter
	requests       *prometheus.CounterVec
	evictions      *prometheus.CounterVec // by action: evict, kill
	regionFaults   prometheus.Counter
	// dropped counts clients the daemon disconnected for misbehaving, by
	// reason (bad_frame, descriptors, panic).
	dropped *prometheus.CounterVec
	// refused counts creates and attaches refused for lack of a resource,
	// by resource (shm_space, hugepages, mlock, clients, slots).
	refused *prometheus.CounterVec
}

func newMetrics(d *Daemon) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		reloads: prometheus.NewCounter(prometheus.CounterOpts{Name: "kaelix_config_reloads_total",
			Help: "Configuration reloads that succeeded."}),
		reloadFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "kaelix_config_reload_failures_total",
			Help: "Configuration reloads refused or failed; the last good configuration stayed in effect."}),
		allocFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "kaelix_region_allocation_failures_total",
			Help: "Shared-memory region allocations that failed."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kaelix_control_requests_total",
			Help: "Control-socket requests by type and result (ok or the error code)."}, []string{"type", "result"}),
	}
	m.evictions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kaelix_subscriber_evictions_total",
		Help: "Subscriber processes evicted for holding block/reject publishers back without reading for daemon.evict_stalled_after, " +
			"by action: evict (its ring slots taken, the process lives on) or kill (SIGKILL, for doing it again after an eviction)."},
		[]string{"action"})
	m.evictions.WithLabelValues("evict")
	m.evictions.WithLabelValues("kill")
	m.regionFaults = prometheus.NewCounter(prometheus.CounterOpts{Name: "kaelix_region_faults_total",
		Help: "Partitions taken out of service because their region was truncated or its header overwritten."})
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kaelix_clients_dropped_total",
		Help: "Clients disconnected for breaking the protocol, by reason."}, []string{"reason"})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kaelix_resource_refusals_total",
		Help: "Topic creations, connections and attaches refused for lack of a resource, by resource."}, []string{"resource"})
	// kaelix_build_info: 1, labelled with what the binary was built from
	// (the convention of Go's and node_exporter's build_info).
	b := buildInfo()
	buildInfoGauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kaelix_build_info",
		Help: "1, labelled with the kaelixd binary's module version, VCS commit and Go version."}, []string{"version", "commit", "goversion"})
	buildInfoGauge.WithLabelValues(b.Version, b.Commit, b.Go).Set(1)
	m.reg.MustRegister(buildInfoGauge)
	// Every label value a counter can take is exported from the start (at
	// 0), so that rate() and absent() work before the first event.
	for _, r := range []string{"bad_frame", "descriptors", "panic"} {
		m.dropped.WithLabelValues(r)
	}
	for _, r := range []string{"clients", "subscriber_slots", "group_slots", "shm_space", "hugepages", "mlock", "topic_size"} {
		m.refused.WithLabelValues(r)
	}
	m.reg.MustRegister(m.evictions, m.regionFaults, m.dropped, m.refused, d.loop.passes, d.loop.lag, d.links.init())
	m.reg.MustRegister(m.reloads, m.reloadFailures, m.allocFailures, m.requests, &collector{d: d},
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	return m
}

var (
	partLabels = []string{"topic", "partition"}
	nodeLabels = []string{"node", "page_size_bytes"}
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// Per partition, from the ring's shared counters.
var (
	descPublished     = desc("kaelix_partition_published_records_total", "Records claimed by publishers (the ring's tail sequence).", partLabels...)
	descPublishedB    = desc("kaelix_partition_published_ring_bytes_total", "Ring bytes claimed by publishers: payload, the 32-byte record headers, alignment and wrap padding (the ring's tail position); compare with kaelix_partition_slowest_consumer_position_bytes, not with payload bytes.", partLabels...)
	descConsumed      = desc("kaelix_partition_consumed_records_total", "Records delivered, summed over subscribers and queue groups.", partLabels...)
	descConsumedBytes = desc("kaelix_partition_consumed_payload_bytes_total", "Payload bytes delivered (record payload only, message header block included), summed over subscribers and queue groups.", partLabels...)
	descConsumedB     = desc("kaelix_partition_slowest_consumer_position_bytes", "Byte position of the slowest subscriber (published bytes minus its lag): bytes consumed by every subscriber.", partLabels...)
	descLost          = desc("kaelix_partition_lost_records_total", "Records lost by lapped subscribers (drop-oldest) or dead group members.", partLabels...)
	descBackPressure  = desc("kaelix_partition_back_pressure_total", "Claims refused for lack of space (block and reject policies).", partLabels...)
	descRejected      = desc("kaelix_partition_rejected_records_total", "Records refused under the reject policy.", partLabels...)
	descUnblocked     = desc("kaelix_partition_unblocked_records_total", "Claims of dead publishers turned into skips.", partLabels...)
	descWaits         = desc("kaelix_partition_waits_total", "Futex sleeps by subscribers and publishers.", partLabels...)
	descWakeups       = desc("kaelix_partition_wakeups_total", "FUTEX_WAKE calls by publishers and subscribers.", partLabels...)
	descLapped        = desc("kaelix_partition_lapped_total", "Gaps lapping opened in subscribers' sequences (drop-oldest); each lost record is in kaelix_partition_lost_records_total.", partLabels...)
	descFences        = desc("kaelix_partition_fences_total", "membarrier calls by sleepers, one per park (not per futex sleep).", partLabels...)
	descReaped        = desc("kaelix_partition_reaped_slots_total", "Slots of dead processes freed.", partLabels...)
	descEvicted       = desc("kaelix_partition_evicted_total", "Subscriber slots taken from live owners that held publishers back (daemon.evict_stalled_after).", partLabels...)
	descTampered      = desc("kaelix_partition_tampered_total", "Changes to a subscriber's own slot by another process, detected by the subscriber (threat model).", partLabels...)
	descPublishers    = desc("kaelix_partition_publishers", "Live publisher slots.", partLabels...)
	descSubscribers   = desc("kaelix_partition_subscribers", "Subscriber slots able to receive (active: the read position is in the ring); reserved or joining slots are not counted.", partLabels...)
	descLag           = desc("kaelix_partition_slowest_lag_bytes", "Bytes between the tail and the slowest subscriber.", partLabels...)
	descCapacity      = desc("kaelix_partition_capacity_bytes", "Ring data capacity.", partLabels...)

	descNodeRegions = desc("kaelix_numa_regions", "Regions (two per partition: data and consumer) whose pages are on the node, by page size.", nodeLabels...)
	descNodeBytes   = desc("kaelix_numa_region_bytes", "Bytes of the regions on the node, by page size.", nodeLabels...)
	descHugeTotal   = desc("kaelix_numa_hugepages", "Huge pages reserved on the node (the pool size, a gauge).", nodeLabels...)
	descHugeFree    = desc("kaelix_numa_hugepages_free", "Reserved huge pages not in use on the node.", nodeLabels...)
	descHugeUsed    = desc("kaelix_numa_hugepages_used", "Reserved huge pages in use on the node.", nodeLabels...)

	descClients    = desc("kaelix_clients", "Connected clients.")
	descTopics     = desc("kaelix_topics", "Registered topics.")
	descHeartbeats = desc("kaelix_heartbeats_total", "Daemon heartbeat ticks.")
	descDeaths     = desc("kaelix_peer_deaths_total", "Client processes that died holding ring slots, reclaimed (clean exits are not counted).")
	descHealth     = desc("kaelix_health_status", "1 for the daemon's current health status.", "status")
	descErrPerMin  = desc("kaelix_health_errors_per_minute", "Failed control requests plus error records (rejected, dead publishers' claims, tampered slots) per minute, over the last minute.")
	descErrShare   = desc("kaelix_health_error_ratio", "Share of failed control requests (kind=requests) or error records among published ones (kind=records) over the last minute; above telemetry.health.error_share (with at least 5 errors) health is degraded.", "kind")
	descReloadTime = desc("kaelix_config_last_reload_timestamp_seconds", "Unix time of the last configuration reload attempt (absent before the first).")
	descReloadOK   = desc("kaelix_config_last_reload_success", "1 if the last configuration reload succeeded, 0 if it was refused (absent before the first).")

	// Per consumer slot (BacklogStat): bounded by the topic's
	// max_subscribers + max_groups per partition, never by pids. slot is
	// the subscriber slot index, or "g" and the queue-group slot index.
	slotLabels      = []string{"topic", "partition", "slot"}
	descSlotLag     = desc("kaelix_slot_lag_bytes", "Ring bytes between the tail and the consumer slot's position.", slotLabels...)
	descSlotLagRecs = desc("kaelix_slot_lag_records", "Records between the tail and the consumer slot's position (absent when the record there was overwritten).", slotLabels...)
	descSlotCons    = desc("kaelix_slot_consumed_records_total", "Records delivered by the slot (cumulative over its owners).", slotLabels...)
	descSlotLost    = desc("kaelix_slot_lost_records_total", "Records the slot lost (lapped, or a dead member's held record for a group slot).", slotLabels...)
)

// collector reads the rings' counters and the host's hugepage pools at
// scrape time.
type collector struct{ d *Daemon }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPublished, descPublishedB, descConsumed, descConsumedBytes, descConsumedB, descLost, descBackPressure,
		descRejected, descUnblocked, descWaits, descWakeups, descFences, descLapped, descReaped, descEvicted, descTampered, descPublishers, descSubscribers, descLag,
		descCapacity, descNodeRegions, descNodeBytes, descHugeTotal, descHugeFree, descHugeUsed, descClients, descTopics,
		descHeartbeats, descDeaths, descHealth, descReloadTime, descReloadOK, descErrPerMin, descErrShare, descSlotLag, descSlotLagRecs, descSlotCons, descSlotLost} {
		ch <- d
	}
}

type nodeKey struct {
	node int
	page uint64
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	regions := map[nodeKey][2]uint64{}
	d.mu.Lock()
	topics, clients := len(d.topics), len(d.peers)
	for name, t := range d.topics {
		for i, p := range t.parts {
			var r ringbuf.Counters
			if !d.withRing(p, func() { r = p.ring.Counters() }) {
				continue
			}
			l := []string{name, strconv.Itoa(i)}
			counter(descPublished, r.Published, l...)
			counter(descPublishedB, r.TailPosition, l...)
			counter(descConsumed, r.Consumed, l...)
			counter(descConsumedBytes, r.ConsumedBytes, l...)
			gauge(descConsumedB, float64(r.TailPosition-min(r.SlowestLag, r.TailPosition)), l...)
			counter(descLost, r.Lost, l...)
			counter(descBackPressure, r.BackPressure, l...)
			counter(descRejected, r.Rejected, l...)
			counter(descUnblocked, r.Unblocked, l...)
			counter(descWaits, r.Waits, l...)
			counter(descWakeups, r.Wakeups, l...)
			counter(descFences, r.Fences, l...)
			counter(descLapped, r.Lapped, l...)
			counter(descReaped, r.Reaped, l...)
			counter(descEvicted, r.Evicted, l...)
			counter(descTampered, r.Tampered, l...)
			gauge(descPublishers, float64(r.Publishers), l...)
			gauge(descSubscribers, float64(r.Subscribers), l...)
			gauge(descLag, float64(r.SlowestLag), l...)
			gauge(descCapacity, float64(p.ring.CapacityBytes()), l...)
			var slots []ringbuf.SlotBacklog
			d.withRing(p, func() { slots = p.ring.Backlog() })
			for _, b := range slots {
				slot := strconv.Itoa(b.Index)
				if b.State == "group" {
					slot = "g" + slot
				}
				sl := []string{name, strconv.Itoa(i), slot}
				gauge(descSlotLag, float64(b.LagBytes), sl...)
				if b.LagRecordsKnown {
					gauge(descSlotLagRecs, float64(b.LagRecords), sl...)
				}
				counter(descSlotCons, b.Consumed, sl...)
				counter(descSlotLost, b.Lost, sl...)
			}
			for _, reg := range p.regions() {
				h := reg.Header()
				k := nodeKey{int(h.NodeActual), h.PageSizeBytes}
				v := regions[k]
				regions[k] = [2]uint64{v[0] + 1, v[1] + h.TotalBytes}
			}
		}
	}
	d.mu.Unlock()
	for k, v := range regions {
		l := []string{strconv.Itoa(k.node), strconv.FormatUint(k.page, 10)}
		gauge(descNodeRegions, float64(v[0]), l...)
		gauge(descNodeBytes, float64(v[1]), l...)
	}
	if cfg := d.cur.Load().cfg; cfg.Runtime.NUMAAware && cfg.Shm.HugePages != shm.PolicyOff {
		if topo, err := numa.Load(d.cfg.HostRoot); err == nil {
			for _, n := range topo.Nodes {
				for _, pool := range n.HugePages {
					l := []string{strconv.Itoa(n.ID), strconv.FormatUint(pool.PageSizeBytes, 10)}
					gauge(descHugeTotal, float64(pool.Total), l...)
					gauge(descHugeFree, float64(pool.Free), l...)
					gauge(descHugeUsed, float64(pool.Total-min(pool.Free, pool.Total)), l...)
				}
			}
		}
	}
	gauge(descClients, float64(clients))
	gauge(descTopics, float64(topics))
	counter(descHeartbeats, d.beats.Load())
	counter(descDeaths, d.deaths.Load())
	if r := d.lastReload.Load(); r != nil {
		gauge(descReloadTime, float64(r.AtNS)/1e9)
		ok := 0.0
		if r.OK {
			ok = 1
		}
		gauge(descReloadOK, ok)
	}
	hh := d.Health()
	status := hh.Status
	if e := hh.Errors; e != nil {
		gauge(descErrPerMin, e.PerMinute)
		gauge(descErrShare, e.RequestShare, "requests")
		gauge(descErrShare, e.RecordShare, "records")
	}
	for _, s := range []string{wire.HealthHealthy, wire.HealthDegraded, wire.HealthUnhealthy, wire.HealthUnknown} {
		v := 0.0
		if s == status {
			v = 1
		}
		gauge(descHealth, v, s)
	}
}

package daemon

import (
	"fmt"
	"os"
	"time"

	"github.com/kaelix-io/kaelix/daemon/config"
	"github.com/kaelix-io/kaelix/numa"
	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// Health rules. Each rule that fires adds a reason; the daemon's status is
// the worst of them (healthy < degraded < unhealthy < unknown).
//
//	rule            fires when                                         status
//	not_running     Run is not serving (not started, or stopped)       unknown
//	heartbeat       the heartbeat is older than heartbeat_stale        unhealthy
//	subscriber_lag  a partition's slowest subscriber lags more than    degraded
//	                lag_ratio of its ring's capacity
//	hugepages       hugepages is not off and a node's pool of the      degraded
//	                configured page size is reserved but all in use
//	reload          the last reload attempt failed                     degraded
//	peer_reclaimed  a client died and was reclaimed within             degraded
//	                recent_window
//	region_alloc    a region allocation failed within recent_window    degraded
//	region_unlinked a topic's region files were removed or replaced    degraded
//	                from outside within recent_window (unlinked.go)
//	error_rate      over the last minute, failed control requests or   degraded
//	                error records above error_share of requests or
//	                records (and at least 5 errors; errrate.go)
//	registry_rebuilt topics.json was unreadable at start and the        degraded
//	                registry was rebuilt from the region headers
//	                (rebuild.go); until the daemon restarts
//	socket          the control socket's path was removed or replaced   degraded
//	                from outside, for as long as it is (socketwatch.go)
//	processor       a [[processors]] entry failed (given up after too    degraded
//	                many crashes, or cannot start) or is crash-looping
//	                (in backoff after 2+ exits in its window; processors.go)
//
// Thresholds are [telemetry.health] and live.

var healthRank = map[string]int{wire.HealthHealthy: 0, wire.HealthDegraded: 1, wire.HealthUnhealthy: 2, wire.HealthUnknown: 3}

// Health evaluates the health rules now and returns the snapshot (also
// served as GET /healthz and the health request). It reads ring counters
// from shared memory and the hugepage pools from sysfs; it is safe for
// concurrent use.
func (d *Daemon) Health() wire.Health {
	now := time.Now()
	cfg := d.cur.Load().cfg
	hc := cfg.Telemetry.Health
	h := wire.Health{Status: wire.HealthHealthy, Reasons: []wire.HealthReason{}, CheckedNS: now.UnixNano(), PID: os.Getpid(),
		Heartbeats: d.beats.Load(), HeartbeatNS: d.beatNS.Load()}
	add := func(rule, status, format string, args ...any) {
		h.Reasons = append(h.Reasons, wire.HealthReason{Rule: rule, Status: status, Message: fmt.Sprintf(format, args...)})
		if healthRank[status] > healthRank[h.Status] {
			h.Status = status
		}
	}
	if !d.running.Load() {
		add("not_running", wire.HealthUnknown, "kaelixd is not serving (not started or stopped)")
		return h
	}
	if age := now.Sub(time.Unix(0, h.HeartbeatNS)); age > hc.HeartbeatStale {
		add("heartbeat", wire.HealthUnhealthy, "last heartbeat %v ago (more than %v): the daemon's housekeeping loop is stuck", age.Round(time.Millisecond), hc.HeartbeatStale)
	}
	var records, errRecords uint64
	d.mu.Lock()
	for _, t := range d.topics {
		for i, p := range t.parts {
			if p.faulted != nil {
				add("region_fault", wire.HealthDegraded, "topic %q partition %d is out of service: %v", t.spec.Name, i, p.faulted)
				continue
			}
			var c ringbuf.Counters
			if !d.withRing(p, func() { c = p.ring.Counters() }) {
				continue
			}
			records += c.Published
			errRecords += recordErrors(c)
			capacity := p.ring.CapacityBytes()
			if c.Subscribers > 0 && capacity > 0 && float64(c.SlowestLag) > hc.LagRatio*float64(capacity) {
				add("subscriber_lag", wire.HealthDegraded, "topic %q partition %d: slowest subscriber lags %d of %d bytes (%.0f%% > %.0f%%)",
					t.spec.Name, i, c.SlowestLag, capacity, 100*float64(c.SlowestLag)/float64(capacity), 100*hc.LagRatio)
			}
		}
	}
	d.mu.Unlock()
	er := d.errRate.observe(now, records, errRecords)
	h.Errors = &er
	if er.FailedRequests >= errMinimum && er.RequestShare > hc.ErrorShare {
		add("error_rate", wire.HealthDegraded, "%d of %d control requests failed in the last %v (%.1f%% > %.1f%%)",
			er.FailedRequests, er.Requests, time.Duration(er.WindowNS).Round(time.Second), 100*er.RequestShare, 100*hc.ErrorShare)
	}
	if er.ErrorRecords >= errMinimum && er.RecordShare > hc.ErrorShare {
		add("error_rate", wire.HealthDegraded, "%d of %d records were errors (rejected, dead publishers' claims, tampered slots) in the last %v (%.1f%% > %.1f%%)",
			er.ErrorRecords, er.Records, time.Duration(er.WindowNS).Round(time.Second), 100*er.RecordShare, 100*hc.ErrorShare)
	}
	if cfg.Shm.HugePages != shm.PolicyOff {
		if topo, err := numa.Load(d.cfg.HostRoot); err == nil {
			for _, n := range topo.Nodes {
				if pool, ok := n.Pool(uint64(cfg.Shm.PageSize)); ok && pool.Total > 0 && pool.Free == 0 {
					add("hugepages", wire.HealthDegraded, "node %d: all %d huge pages of %v are in use; new regions fall back to tmpfs or fail", n.ID, pool.Total, config.Size(pool.PageSizeBytes))
				}
			}
		}
	}
	if r := d.lastReload.Load(); r != nil && !r.OK {
		add("reload", wire.HealthDegraded, "last config reload (%s, %s) failed; the previous configuration is in effect: %s", r.Trigger, time.Unix(0, r.AtNS).Format(time.RFC3339), r.Error)
	}
	if ns := d.deathNS.Load(); ns != 0 && now.Sub(time.Unix(0, ns)) < hc.RecentWindow {
		pe := d.lastDeath.Load()
		add("peer_reclaimed", wire.HealthDegraded, "client pid %d (%s) died %v ago; %d ring slots reclaimed", pe.PID, pe.Name, now.Sub(time.Unix(0, ns)).Round(time.Millisecond), pe.SlotsFreed)
	}
	if ns, msg := d.links.last(); ns != 0 && now.Sub(time.Unix(0, ns)) < hc.RecentWindow {
		add("region_unlinked", wire.HealthDegraded, "%v ago: %s", now.Sub(time.Unix(0, ns)).Round(time.Millisecond), msg)
	}
	if msg := d.rebuilt.Load(); msg != nil {
		add("registry_rebuilt", wire.HealthDegraded, "%s", *msg)
	}
	if msg := d.sock.problem.Load(); msg != nil {
		add("socket", wire.HealthDegraded, "%s", *msg)
	}
	if ps := d.procs.Load(); ps != nil {
		ps.health(add) // processors.go
	}
	if ns := d.allocFailNS.Load(); ns != 0 && now.Sub(time.Unix(0, ns)) < hc.RecentWindow {
		add("region_alloc", wire.HealthDegraded, "region allocation failed %v ago: %s", now.Sub(time.Unix(0, ns)).Round(time.Millisecond), *d.allocFail.Load())
	}
	return h
}

// allocFailed records a region allocation failure for health and metrics.
func (d *Daemon) allocFailed(msg string) {
	d.allocFail.Store(&msg)
	d.allocFailNS.Store(time.Now().UnixNano())
	d.m.allocFailures.Inc()
}

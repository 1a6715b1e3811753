package daemon

import (
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Region files removed from outside. The daemon holds every region of
// every topic open; each sweep fstats them (one system call per region)
// and a link count of 0 means the file was removed from its directory
// (rm, a deleted region directory, systemd-logind's RemoveIPC at a login
// user's logout) or replaced by a rename over its name. The rings still
// work for whoever maps them, but nobody can open them by name, a
// restarted daemon could not adopt them, and a new file of that name
// could appear. So the daemon retires the topic's rings
// (ringbuf.MarkRecreated: attached clients get client.ErrTopicRecreated)
// and re-creates the topic with the same parameters and new files, logs
// it, counts it in kaelix_region_unlinked_total and reports it in health
// (region_unlinked, degraded for recent_window).

// linkState is the daemon's record of removed region files.
type linkState struct {
	unlinked prometheus.Counter
	lastNS   atomic.Int64           // unix ns of the last detection
	lastMsg  atomic.Pointer[string] // what it was
}

// init makes the counter and returns it for registration.
func (l *linkState) init() prometheus.Counter {
	l.unlinked = prometheus.NewCounter(prometheus.CounterOpts{Name: "kaelix_region_unlinked_total",
		Help: "Region files of live topics found removed or replaced from outside (link count 0); each such topic was re-created with new rings."})
	return l.unlinked
}

// last returns the time (unix ns, 0 if never) and message of the last
// detection.
func (l *linkState) last() (int64, string) {
	ns := l.lastNS.Load()
	if ns == 0 {
		return 0, ""
	}
	return ns, *l.lastMsg.Load()
}

// checkLinks finds the topics one of whose region files is unlinked and
// re-creates them. d.mu held (the sweep).
func (d *Daemon) checkLinks() {
	gone := map[string][]unlinkedPart{}
	for name, t := range d.topics {
		for i, p := range t.parts {
			if p.closed || p.faulted != nil {
				continue
			}
			u := unlinkedPart{index: i}
			for _, r := range p.regions() {
				if linked, err := r.Linked(); err == nil && !linked {
					if u.files == 0 {
						u.first = r.Path()
					}
					u.files++
				}
			}
			if u.files > 0 {
				gone[name] = append(gone[name], u)
			}
		}
	}
	names := make([]string, 0, len(gone))
	for name := range gone {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		d.recreateUnlinked(d.topics[name], gone[name])
	}
}

// unlinkedPart is one partition's removed region files: how many, and
// the first one's path.
type unlinkedPart struct {
	index, files int
	first        string
}

// unlinkedSummary describes a topic's removed files in a line of bounded
// length (a partition has some 40 regions): the total, then per
// partition (the first three) the count and the first path.
func unlinkedSummary(name string, gone []unlinkedPart) (files int, summary string) {
	var parts []string
	for i, u := range gone {
		files += u.files
		if i < 3 {
			parts = append(parts, fmt.Sprintf("partition %d: %d (first %s)", u.index, u.files, u.first))
		}
	}
	if len(gone) > 3 {
		parts = append(parts, fmt.Sprintf("%d more partitions", len(gone)-3))
	}
	return files, fmt.Sprintf("topic %q: %d region file(s) removed or replaced from outside (%s)", name, files, strings.Join(parts, "; "))
}

// recreateUnlinked retires t's rings and re-creates t with new files.
// d.mu held.
func (d *Daemon) recreateUnlinked(t *topic, gone []unlinkedPart) {
	name := t.spec.Name
	files, summary := unlinkedSummary(name, gone)
	d.links.unlinked.Add(float64(files))
	for _, p := range t.parts {
		d.withRing(p, func() { p.ring.MarkRecreated() })
	}
	delete(d.topics, name)
	d.dropParts(t, true) // unlinks what is left of it (only files that are still its own)
	_, err := d.createTopic(t.spec, false)
	outcome := "re-created with new rings; attached clients get ErrTopicRecreated"
	if err != nil {
		outcome = "could not be re-created (" + err.Error() + "); create it again"
		d.saveState()
	}
	msg := summary + "; " + outcome
	d.links.lastMsg.Store(&msg)
	d.links.lastNS.Store(time.Now().UnixNano())
	d.log.Error("region files of a live topic were removed or replaced from outside",
		"topic", name, "files", files, "first", gone[0].first, "partitions", len(gone), "publishers", t.pubs, "subscribers", t.subs, "outcome", outcome,
		"hint", "systemd-logind removes a login user's shared memory at logout unless RemoveIPC=no; run kaelixd as a system user or set RemoveIPC=no")
}

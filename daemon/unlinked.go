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

// checkLinks finds the topics one of whose region files is unlinked,
// retires them and begins re-creating them (their names are placeholders
// from then on: creating.go). d.mu held (the sweep), which then finishes
// the re-creations with d.mu released (recreation.finish).
func (d *Daemon) checkLinks() []recreation {
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
	var rs []recreation
	for _, name := range names {
		rs = append(rs, d.recreateUnlinked(d.topics[name], gone[name]))
	}
	return rs
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

// recreation is a topic retired because its files were removed, being
// re-created.
type recreation struct {
	t       *topic // the retired topic
	gone    []unlinkedPart
	c       *creation // its placeholder; nil when the create was refused at once
	err     error     // why
	summary string
	files   int
}

// recreateUnlinked retires t's rings and begins re-creating t with new
// files. d.mu held.
func (d *Daemon) recreateUnlinked(t *topic, gone []unlinkedPart) recreation {
	r := recreation{t: t, gone: gone}
	r.files, r.summary = unlinkedSummary(t.spec.Name, gone)
	d.links.unlinked.Add(float64(r.files))
	// Health shows it from now on (the re-creation finishes outside d.mu,
	// and the clients are told at once): finish adds the outcome.
	msg := r.summary + "; being re-created with new rings"
	d.links.lastMsg.Store(&msg)
	d.links.lastNS.Store(time.Now().UnixNano())
	for _, p := range t.parts {
		d.withRing(p, func() { p.ring.MarkRecreated() })
	}
	delete(d.topics, t.spec.Name)
	d.dropParts(t, true) // unlinks what is left of it (only files that are still its own)
	rc, err := ringConfig(t.spec)
	if err == nil {
		_, r.c, _, err = d.beginCreate(t.spec, rc, false, false)
	}
	if r.err = err; err != nil {
		d.saveState()
	}
	return r
}

// finish makes the re-created topic's regions (d.mu not held) and reports
// the outcome.
func (r recreation) finish(d *Daemon) {
	err := r.err
	if r.c != nil {
		_, err = d.finishCreate(r.c)
		if err != nil {
			d.mu.Lock()
			d.saveState()
			d.mu.Unlock()
		}
	}
	outcome := "re-created with new rings; attached clients get ErrTopicRecreated"
	if err != nil {
		outcome = "could not be re-created (" + err.Error() + "); create it again"
	}
	msg := r.summary + "; " + outcome
	d.links.lastMsg.Store(&msg)
	d.links.lastNS.Store(time.Now().UnixNano())
	d.log.Error("region files of a live topic were removed or replaced from outside",
		"topic", r.t.spec.Name, "files", r.files, "first", r.gone[0].first, "partitions", len(r.gone), "publishers", r.t.pubs, "subscribers", r.t.subs, "outcome", outcome,
		"hint", "systemd-logind removes a login user's shared memory at logout unless RemoveIPC=no; run kaelixd as a system user or set RemoveIPC=no")
}

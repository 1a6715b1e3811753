package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/internal/bytesize"
)

// TopicsListCmd is `kaelixctl topics list`.
//
// Counters are the ones the daemon reads from each partition's ring header in
// shared memory when it answers (wire.Counters); the CLI does not map the
// regions itself. The rate is the published counter sampled twice,
// --interval apart, divided by the time between the two replies.
type TopicsListCmd struct {
	Interval time.Duration `help:"Sample the published counters this far apart for RATE/S; 0 skips the rate." default:"200ms"`
}

// TopicRow is one topic's line of `topics list`: the typed snapshot the text
// and JSON front ends both render.
type TopicRow struct {
	Name            string `json:"name"`
	Partitions      int    `json:"partitions"`
	Kind            string `json:"kind"`
	Policy          string `json:"policy"`
	CapacityBytes   uint64 `json:"capacity_bytes"` // per partition
	MaxMessageBytes uint32 `json:"max_message_bytes"`
	PageSizeBytes   uint64 `json:"page_size_bytes"`          // of partition 0's region
	HugePages       bool   `json:"huge_pages"`               // every partition on hugetlbfs (else tmpfs)
	FallbackTmpfs   bool   `json:"fallback_tmpfs,omitempty"` // some partition fell back to tmpfs (no free hugepages)
	// Pages is the PAGES column: the partitions' page sizes and backing,
	// with counts when they differ ("2M huge ×51, 4K tmpfs ×13 (fallback)").
	Pages string `json:"pages"`
	// NUMANode is where the pages are (-1 unknown or mixed); BindNode says
	// whether the topic asked for a node, and Node which.
	NUMANode int  `json:"numa_node"`
	BindNode bool `json:"bind_node"`
	Node     int  `json:"node"`
	// Publishers and Subscribers are live slots in the rings (the most of
	// any partition); Attached* are attachments registered with the daemon.
	Publishers          int    `json:"publishers"`
	Subscribers         int    `json:"subscribers"`
	AttachedPublishers  int    `json:"attached_publishers"`
	AttachedSubscribers int    `json:"attached_subscribers"`
	Published           uint64 `json:"published"` // summed over partitions
	Lost                uint64 `json:"lost"`
	// RatePerSec is messages published per second over the sampling
	// interval; -1 when not sampled (--interval 0 or a new topic).
	RatePerSec      float64 `json:"rate_per_sec"`
	SlowestLagBytes uint64  `json:"slowest_lag_bytes"` // the slowest subscriber of any partition
	// Creating: the daemon is still making the topic's regions (no
	// partition figures yet; the PAGES column says "creating").
	Creating bool `json:"creating,omitempty"`
}

// TopicList is `topics list --format json`.
type TopicList struct {
	IntervalNS int64      `json:"interval_ns"` // the rate's sampling interval
	Topics     []TopicRow `json:"topics"`
}

// listTopics returns the snapshot: topics sorted by name, with rates
// sampled over interval (none if interval <= 0). It waits interval, bounded
// by ctx.
func listTopics(ctx context.Context, g *Globals, c *client.Client, interval time.Duration) (TopicList, error) {
	first, t0, err := topicsOnce(g, c)
	if err != nil {
		return TopicList{}, err
	}
	out := TopicList{Topics: make([]TopicRow, 0, len(first))}
	last, t1 := first, t0
	if interval > 0 {
		select {
		case <-ctx.Done():
			return TopicList{}, ctx.Err()
		case <-time.After(interval):
		}
		if last, t1, err = topicsOnce(g, c); err != nil {
			return TopicList{}, err
		}
		out.IntervalNS = t1.Sub(t0).Nanoseconds()
	}
	before := make(map[string]uint64, len(first))
	for _, ti := range first {
		before[ti.Spec.Name] = publishedOf(ti)
	}
	for _, ti := range last {
		row := rowOf(ti)
		row.RatePerSec = -1
		if p0, ok := before[ti.Spec.Name]; ok && interval > 0 && row.Published >= p0 {
			row.RatePerSec = float64(row.Published-p0) / t1.Sub(t0).Seconds()
		}
		out.Topics = append(out.Topics, row)
	}
	return out, nil
}

func topicsOnce(g *Globals, c *client.Client) ([]client.TopicInfo, time.Time, error) {
	ctx, cancel := g.reqCtx()
	defer cancel()
	ts, err := c.Topics(ctx)
	return ts, time.Now(), err
}

func publishedOf(ti client.TopicInfo) uint64 {
	var n uint64
	for _, p := range ti.Partitions {
		n += p.Counters.Published
	}
	return n
}

// rowOf summarizes a TopicInfo (rate not set).
func rowOf(ti client.TopicInfo) TopicRow {
	s := ti.Spec
	r := TopicRow{
		Name: s.Name, Partitions: s.Partitions, Kind: string(s.Kind), Policy: string(s.Policy),
		CapacityBytes: s.CapacityBytes, MaxMessageBytes: s.MaxMessageBytes,
		BindNode: s.BindNode, Node: s.Node, NUMANode: -1,
		AttachedPublishers: ti.Publishers, AttachedSubscribers: ti.Subscribers,
		HugePages: len(ti.Partitions) > 0, Pages: pagesMix(ti.Partitions),
		Creating: ti.Creating,
	}
	if ti.Creating {
		r.Pages = "creating"
	}
	for i, p := range ti.Partitions {
		if i == 0 {
			r.PageSizeBytes, r.NUMANode = p.PageSizeBytes, p.NodeActual
		} else if p.NodeActual != r.NUMANode {
			r.NUMANode = -1
		}
		r.HugePages = r.HugePages && p.HugePages
		r.FallbackTmpfs = r.FallbackTmpfs || p.FallbackTmpfs
		c := p.Counters
		r.Published += c.Published
		r.Lost += c.Lost
		r.Publishers = max(r.Publishers, c.Publishers)
		r.Subscribers = max(r.Subscribers, c.Subscribers)
		r.SlowestLagBytes = max(r.SlowestLagBytes, c.SlowestLagBytes)
	}
	return r
}

// Run prints the table or the JSON document.
func (cmd *TopicsListCmd) Run(g *Globals) error {
	c, err := g.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	list, err := listTopics(g.ctx, g, c, cmd.Interval)
	if err != nil {
		return err
	}
	if g.json() {
		return writeJSON(g.stdout, list)
	}
	if len(list.Topics) == 0 {
		fmt.Fprintln(g.stdout, "no topics (create one with `kaelixctl topics create NAME`)")
		return nil
	}
	tw := newTable(g.stdout)
	fmt.Fprintln(tw, "TOPIC\tPARTS\tKIND\tPOLICY\tCAPACITY\tPAGES\tNODE\tPUBS\tSUBS\tPUBLISHED\tRATE/S\tLAG")
	for _, r := range list.Topics {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n",
			r.Name, r.Partitions, r.Kind, r.Policy, bytesize.Human(r.CapacityBytes),
			r.Pages, nodeLabel(r), r.Publishers, r.Subscribers,
			r.Published, humanRate(r.RatePerSec), bytesize.Human(r.SlowestLagBytes))
	}
	return tw.Flush()
}

// nodeLabel renders the NUMA column: the node the pages are on ("-" if
// unknown), with "(bound)" when the topic asked for that node, or
// "(want N)" when it asked for another.
func nodeLabel(r TopicRow) string {
	s := "-"
	if r.NUMANode >= 0 {
		s = strconv.Itoa(r.NUMANode)
	}
	switch {
	case !r.BindNode:
		return s
	case r.NUMANode == r.Node:
		return s + " (bound)"
	default:
		return s + " (want " + strconv.Itoa(r.Node) + ")"
	}
}

// partitionNodes lists the distinct actual nodes of a topic's partitions.
func partitionNodes(ti client.TopicInfo) string {
	var ns []string
	for _, p := range ti.Partitions {
		s := "-"
		if p.NodeActual >= 0 {
			s = strconv.Itoa(p.NodeActual)
		}
		if !slices.Contains(ns, s) {
			ns = append(ns, s)
		}
	}
	return strings.Join(ns, ",")
}

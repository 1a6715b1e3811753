package main

import (
	"fmt"
	"os/user"
	"strconv"
	"syscall"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/internal/bytesize"
)

// TopicsInfoCmd is `kaelixctl topics info NAME`: the topic's parameters and
// one line per partition with its region and ring counters (read by the
// daemon from shared memory). --format json prints the daemon's TopicInfo.
type TopicsInfoCmd struct {
	Name string `arg:"" help:"Topic to describe." predictor:"topic"`
}

// Run describes the topic.
func (cmd *TopicsInfoCmd) Run(g *Globals) error {
	c, err := g.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := g.reqCtx()
	defer cancel()
	info, err := c.TopicInfo(ctx, cmd.Name)
	if err != nil {
		return err
	}
	if g.json() {
		return writeJSON(g.stdout, info)
	}
	s := info.Spec
	w := g.stdout
	fmt.Fprintf(w, "topic:        %s\n", s.Name)
	fmt.Fprintf(w, "kind:         %s, policy %s\n", s.Kind, s.Policy)
	fmt.Fprintf(w, "partitions:   %d × %s ring, max message %s\n", s.Partitions, bytesize.Human(s.CapacityBytes), bytesize.Human(uint64(s.MaxMessageBytes)))
	fmt.Fprintf(w, "slots:        %d publishers, %d subscribers, %d groups per partition\n", s.MaxPublishers, s.MaxSubscribers, s.MaxGroups)
	fmt.Fprintf(w, "access:       mode %04o, group %s\n", s.Mode, topicGroupLabel(info))
	numa := "unbound"
	if s.BindNode {
		numa = "bound to node " + strconv.Itoa(s.Node)
	}
	fmt.Fprintf(w, "numa:         %s; pages on node %s\n", numa, partitionNodes(info))
	joining := ""
	if info.JoiningSubscribers > 0 {
		joining = fmt.Sprintf(", %d still joining", info.JoiningSubscribers)
	}
	fmt.Fprintf(w, "attached:     %d publishers, %d subscribers receiving%s (registered with the daemon)\n", info.Publishers, info.Subscribers, joining)
	if info.Creating {
		fmt.Fprintf(w, "created:      not yet: being created since %s (an attach waits for it)\n", unixNS(info.CreatedNS))
		return nil
	}
	fmt.Fprintf(w, "created:      %s\n\n", unixNS(info.CreatedNS))
	tw := newTable(w)
	fmt.Fprintln(tw, "PART\tPAGES\tNODE\tSIZE\tPUBLISHED\tCONSUMED\tLOST\tBACKPRESSURE\tREJECTED\tEVICTED\tPUBS\tSUBS\tLAG\tPATH")
	for _, p := range info.Partitions {
		k := p.Counters
		node := "-"
		if p.NodeActual >= 0 {
			node = strconv.Itoa(p.NodeActual)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n",
			p.Index, pageLabel(p.PageSizeBytes, p.HugePages)+fallbackLabel(p.FallbackTmpfs), node, bytesize.Human(p.SizeBytes),
			k.Published, k.Consumed, k.Lost, k.BackPressure, k.Rejected, k.Evicted, k.Publishers, k.Subscribers,
			bytesize.Human(k.SlowestLagBytes), p.Path)
	}
	return tw.Flush()
}

// topicGroupLabel names the topic's group: the spec's, or for the
// daemon's default (-1; also what gid 0, e.g. --group root, becomes) the
// group its region files actually have, as "NAME (GID, the daemon's)".
func topicGroupLabel(info client.TopicInfo) string {
	if info.Spec.GID >= 0 || len(info.Partitions) == 0 {
		return groupLabel(info.Spec.GID)
	}
	var st syscall.Stat_t
	if syscall.Stat(info.Partitions[0].Path, &st) != nil {
		return groupLabel(-1)
	}
	gid := strconv.Itoa(int(st.Gid))
	if grp, err := user.LookupGroupId(gid); err == nil {
		return grp.Name + " (" + gid + ", the daemon's)"
	}
	return gid + " (the daemon's)"
}

// groupLabel renders a gid with its name, or "daemon's" for -1.
func groupLabel(gid int) string {
	if gid < 0 {
		return "daemon's"
	}
	if grp, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return grp.Name + " (" + strconv.Itoa(gid) + ")"
	}
	return strconv.Itoa(gid)
}

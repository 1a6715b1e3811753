package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/internal/bytesize"
	"github.com/kaelix-io/kaelix/internal/proc"
	"github.com/kaelix-io/kaelix/stat"
)

// DaemonStatusCmd is `kaelixctl daemon status`: the daemon's status
// snapshot (client.DaemonStatus) and, with --clients, the connected clients.
// --format json prints the snapshot, or {"status": ..., "clients": [...]}
// with --clients.
//
// A daemon that accepts the connection but does not answer within
// --timeout (stopped, hung, overloaded) is reported as not answering,
// with its pid, process state and heartbeat age from the state directory:
// exit code 8.
type DaemonStatusCmd struct {
	Clients  bool   `help:"Also list the connected clients."`
	StateDir string `name:"state-dir" help:"kaelixd's state directory, for the heartbeat when it does not answer (default: the socket's directory)." placeholder:"DIR"`
}

// Run prints the status.
func (cmd *DaemonStatusCmd) Run(g *Globals) error {
	c, err := g.connect()
	if err != nil {
		return cmd.notAnswering(g, err)
	}
	defer c.Close()
	ctx, cancel := g.reqCtx()
	defer cancel()
	st, err := c.DaemonStatus(ctx)
	if errors.Is(err, context.DeadlineExceeded) && g.ctx.Err() == nil {
		err = fmt.Errorf("%w: no reply to the status request in %v", client.ErrBrokerNotAnswering, g.Timeout)
	}
	if err != nil {
		return cmd.notAnswering(g, err)
	}
	var stats client.DaemonStats
	var slots []ClientSlot
	if cmd.Clients {
		if stats, err = c.Stats(ctx); err != nil {
			return err
		}
		slots = clientSlots(stats)
	}
	if g.json() {
		if cmd.Clients {
			return writeJSON(g.stdout, map[string]any{"status": st, "clients": stats.Clients, "slots": slots})
		}
		return writeJSON(g.stdout, st)
	}
	w := g.stdout
	fmt.Fprintf(w, "kaelixd:      running, pid %d, protocol v%d\n", st.PID, st.Version)
	if b := st.Build; b.Go != "" {
		commit := b.Commit
		if len(commit) > 12 {
			commit = commit[:12]
		}
		if commit == "" {
			commit = "unknown"
		} else if b.Modified {
			commit += "+dirty"
		}
		fmt.Fprintf(w, "version:      %s (commit %s, %s)\n", b.Version, commit, b.Go)
	}
	fmt.Fprintf(w, "uptime:       %v (since %s)\n", time.Duration(st.UptimeNS).Round(time.Millisecond), unixNS(st.StartedNS))
	fmt.Fprintf(w, "socket:       %s\n", st.SocketPath)
	fmt.Fprintf(w, "state dir:    %s\n", st.StateDir)
	if st.HugeDir != "" {
		fmt.Fprintf(w, "regions:      %s (hugetlbfs: data regions while huge pages are free), %s (tmpfs)\n", st.HugeDir, st.ShmDir)
	} else {
		fmt.Fprintf(w, "regions:      %s (tmpfs)\n", st.ShmDir)
	}
	fmt.Fprintf(w, "topics:       %d\n", st.Topics)
	fmt.Fprintf(w, "clients:      %d (this one included)\n", st.Clients)
	age := "-"
	if st.HeartbeatNS != 0 {
		age = time.Since(time.Unix(0, st.HeartbeatNS)).Round(time.Millisecond).String() + " ago"
	}
	fmt.Fprintf(w, "heartbeat:    #%d, %s\n", st.Heartbeats, age)
	fmt.Fprintf(w, "peer deaths:  %d", st.PeerDeaths)
	if st.PeerDeaths > 0 {
		fmt.Fprintf(w, " (last detected and reaped in %v)", time.Duration(st.LastDetectionNS))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "evictions:    %d subscriber(s) that held publishers back, %d of them killed for doing it again\n",
		st.SubscriberEvictions, st.SubscriberKills)
	if !cmd.Clients {
		return nil
	}
	fmt.Fprintln(w)
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tNAME\tPID\tUID\tGID\tATTACHMENTS\tCONNECTED")
	for _, cl := range stats.Clients {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%d\t%s\n", cl.ID, cl.Name, cl.PID, cl.UID, cl.GID, cl.Attachments, unixNS(cl.ConnectedNS))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(slots) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "CLIENT\tPID\tTOPIC\tPART\tSLOT\tROLE\tGROUP\tSTATE\tLAG\tLAG-BYTES\tCONSUMED\tLOST")
	for _, cs := range slots {
		r := cs.SlotStat
		id, group, lag := "-", "-", "?"
		if cs.ClientID != 0 {
			id = strconv.FormatUint(cs.ClientID, 10)
		}
		if r.Group >= 0 {
			group = strconv.Itoa(r.Group)
		}
		if r.LagRecords >= 0 {
			lag = strconv.FormatInt(r.LagRecords, 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", id, r.PID, r.Topic, r.Partition, r.Slot, r.Role, group,
			r.State, lag, bytesize.Human(r.LagBytes), r.Consumed, r.Lost)
	}
	return tw.Flush()
}

// ClientSlot is one consumer slot of `daemon status --clients`: the slot
// as `kaelixctl stat` reads it from shared memory, with the connected
// client whose pid owns it (ClientID 0: none connected, e.g. a dead
// owner not reaped yet, or a queue group's own slot).
type ClientSlot struct {
	ClientID uint64 `json:"client_id,omitempty"`
	stat.SlotStat
}

// clientSlots reads every consumer slot of the daemon's topics from shared
// memory (read-only) and names the client owning each; partitions that
// cannot be read are skipped.
func clientSlots(stats client.DaemonStats) []ClientSlot {
	byPID := map[int]uint64{}
	for _, cl := range stats.Clients {
		byPID[cl.PID] = cl.ID
	}
	var rd stat.CounterReader
	defer rd.Close()
	var out []ClientSlot
	for _, p := range statPartitions(stats.Topics) {
		rows, err := rd.Slots(p)
		if err != nil {
			continue
		}
		for _, r := range rows {
			out = append(out, ClientSlot{ClientID: byPID[r.PID], SlotStat: r})
		}
	}
	return out
}

// notAnswering adds what the state directory and /proc say about a daemon
// that does not answer (client.ErrBrokerNotAnswering): its pid, whether it
// is stopped, and its heartbeat's age. Other errors are returned as they
// are.
func (cmd *DaemonStatusCmd) notAnswering(g *Globals, err error) error {
	if !errors.Is(err, client.ErrBrokerNotAnswering) {
		return err
	}
	dir := cmd.StateDir
	if dir == "" {
		sock := g.Socket
		if sock == "" {
			sock = client.DefaultSocketPath()
		}
		dir = filepath.Dir(sock)
	}
	hb, herr := stat.ReadHeartbeat(dir)
	if herr != nil {
		return fmt.Errorf("kaelixd is not answering (no heartbeat in %s): %w", dir, err)
	}
	state := "running but not answering (hung or overloaded)"
	if s, rerr := proc.ReadStat("", hb.PID); rerr != nil {
		state = "not found in /proc"
	} else {
		switch s.State {
		case 'T':
			state = "stopped (SIGSTOP; resume it with kill -CONT " + strconv.Itoa(hb.PID) + ")"
		case 't':
			state = "stopped by a debugger"
		case 'D':
			state = "blocked in the kernel (uninterruptible sleep)"
		case 'Z', 'X':
			state = "dead (a zombie)"
		}
	}
	return fmt.Errorf("kaelixd is not answering: pid %d is %s; last heartbeat %v ago: %w",
		hb.PID, state, time.Since(hb.Time).Round(time.Millisecond), err)
}

// statPartitions names the region files of topics' partitions as the
// daemon reported them, for package stat to read.
func statPartitions(topics []client.TopicInfo) []stat.Partition {
	var out []stat.Partition
	for _, t := range topics {
		for _, p := range t.Partitions {
			out = append(out, stat.Partition{Topic: t.Spec.Name, Index: p.Index, DataPath: p.Path,
				ConsumerPath: p.ConsumerPath, SlotPaths: p.SlotPaths(t.Spec.MaxSubscribers)})
		}
	}
	return out
}

package main

import (
	"fmt"
	"time"

	"github.com/kaelix-io/kaelix/client"
)

// DaemonStatusCmd is `kaelixctl daemon status`: the daemon's status
// snapshot (wire.Status) and, with --clients, the connected clients.
// --format json prints the snapshot, or {"status": ..., "clients": [...]}
// with --clients.
type DaemonStatusCmd struct {
	Clients bool `help:"Also list the connected clients."`
}

// Run prints the status.
func (cmd *DaemonStatusCmd) Run(g *Globals) error {
	c, err := g.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := g.reqCtx()
	defer cancel()
	st, err := c.DaemonStatus(ctx)
	if err != nil {
		return err
	}
	var stats client.DaemonStats
	if cmd.Clients {
		if stats, err = c.Stats(ctx); err != nil {
			return err
		}
	}
	if g.json() {
		if cmd.Clients {
			return writeJSON(g.stdout, map[string]any{"status": st, "clients": stats.Clients})
		}
		return writeJSON(g.stdout, st)
	}
	w := g.stdout
	fmt.Fprintf(w, "kaelixd:      running, pid %d, protocol v%d\n", st.PID, st.Version)
	fmt.Fprintf(w, "uptime:       %v (since %s)\n", time.Duration(st.UptimeNS).Round(time.Millisecond), unixNS(st.StartedNS))
	fmt.Fprintf(w, "socket:       %s\n", st.SocketPath)
	fmt.Fprintf(w, "state dir:    %s\n", st.StateDir)
	fmt.Fprintf(w, "regions:      %s\n", st.ShmDir)
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
	return tw.Flush()
}

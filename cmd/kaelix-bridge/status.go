package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/kaelix-io/kaelix/bridge"
)

// StatusCmd reads a running bridge's /status.
type StatusCmd struct {
	HTTP string `help:"The bridge's HTTP address (its http setting or --http)." default:"127.0.0.1:9091" placeholder:"HOST:PORT"`
}

// Run prints the status as a table (or JSON); exit 3 if degraded.
func (c *StatusCmd) Run(g *Globals) error {
	ctx, cancel := context.WithTimeout(g.ctx, g.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.HTTP+"/status", nil)
	if err != nil {
		return &codedError{exitUsage, err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("bridge not reachable at %s: %w", c.HTTP, err)
	}
	defer resp.Body.Close()
	var st bridge.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return fmt.Errorf("bridge at %s: bad /status: %w", c.HTTP, err)
	}
	if g.Format == "json" {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(st)
	} else {
		printStatus(g, st)
	}
	if !st.Healthy {
		return &codedError{exitDegraded, fmt.Errorf("degraded")}
	}
	return nil
}

func printStatus(g *Globals, st bridge.Status) {
	nats := "connected to " + st.NATS.URL
	if !st.NATS.Connected {
		nats = "DISCONNECTED (" + st.NATS.LastError + ")"
	}
	fmt.Fprintf(g.stdout, "host %s, nats %s, %d reconnects\n", st.Host, nats, st.NATS.Reconnects)
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RULE\tDIR\tMODE\tTOPIC\tSUBJECT\tSTATE\tFORWARDED\tACKED\tREDELIVERED\tDUPS\tSKIPPED\tLOST\tLAG")
	for _, r := range st.Rules {
		lost := fmt.Sprint(r.LostTotal)
		if r.LostTotal > 0 {
			var parts []string
			for k, v := range r.Lost {
				parts = append(parts, fmt.Sprintf("%s=%d", k, v))
			}
			sort.Strings(parts)
			lost += " (" + strings.Join(parts, ",") + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%d\n", r.Name, r.Direction, r.Mode, r.Topic, r.Subject,
			r.State, r.Forwarded, r.Acked, r.Redelivered, r.Duplicates, r.Skipped, lost, r.LagRecords)
	}
	w.Flush()
	for _, r := range st.Rules {
		if r.Error != "" {
			fmt.Fprintf(g.stdout, "%s: %s\n", r.Name, r.Error)
		}
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/kaelix-io/kaelix/bridge/bridgestat"
)

// StatusCmd reads a running bridge's status: its /status over HTTP, or
// its status file (--file).
type StatusCmd struct {
	HTTP string `help:"The bridge's HTTP address (its http setting or --http; default 127.0.0.1:9091)." placeholder:"HOST:PORT"`
	File string `help:"Read the bridge's status file instead (its status_file or --status-file; kaelixd's bridges: STATE_DIR/bridges/NAME.status)." placeholder:"PATH"`
}

// Run prints the status as a table (or JSON); exit 3 if degraded or, for
// a status file, stale.
func (c *StatusCmd) Run(g *Globals) error {
	st, stale, err := c.read(g)
	if err != nil {
		return err
	}
	if g.Format == "json" {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(st)
	} else {
		if stale != "" {
			fmt.Fprintln(g.stdout, stale)
		}
		bridgestat.Render(g.stdout, st)
	}
	switch {
	case stale != "":
		return &codedError{exitDegraded, fmt.Errorf("stale status")}
	case !st.Healthy:
		return &codedError{exitDegraded, fmt.Errorf("degraded")}
	}
	return nil
}

// read returns the status and, for a stale status file, a line saying so.
func (c *StatusCmd) read(g *Globals) (bridgestat.Status, string, error) {
	if c.File != "" && c.HTTP != "" {
		return bridgestat.Status{}, "", &codedError{exitUsage, fmt.Errorf("--file and --http: give one")}
	}
	if c.File != "" {
		f, err := bridgestat.ReadFile(c.File)
		if err != nil {
			return bridgestat.Status{}, "", err
		}
		now := time.Now()
		if f.Stale(now) {
			return f.Status, fmt.Sprintf("STALE: written %s ago by pid %d (the bridge is stopped, hung or gone); its last status:", f.Age(now).Round(time.Second), f.PID), nil
		}
		return f.Status, "", nil
	}
	ctx, cancel := context.WithTimeout(g.ctx, g.Timeout)
	defer cancel()
	addr := c.HTTP
	if addr == "" {
		addr = "127.0.0.1:9091"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return bridgestat.Status{}, "", &codedError{exitUsage, err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return bridgestat.Status{}, "", fmt.Errorf("bridge not reachable at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	var st bridgestat.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return bridgestat.Status{}, "", fmt.Errorf("bridge at %s: bad /status: %w", addr, err)
	}
	return st, "", nil
}

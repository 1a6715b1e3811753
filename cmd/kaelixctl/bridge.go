package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/BurntSushi/toml"

	"github.com/kaelix-io/kaelix/wire"
)

// BridgeCmd groups the bridge verbs: the [[bridges]] kaelixd declares
// (from its configuration), each one's state read from the bridge's own
// /status (the http address in the bridge's TOML file).
type BridgeCmd struct {
	List BridgeListCmd `cmd:"" default:"1" help:"List the bridges kaelixd runs: health, NATS connection, rules."`
	Info BridgeInfoCmd `cmd:"" help:"One bridge's rules and counters (forwarded, acked, redelivered, lost, lag)."`
}

// BridgeListCmd is `bridge list`.
type BridgeListCmd struct{}

// BridgeInfoCmd is `bridge info NAME`.
type BridgeInfoCmd struct {
	Name string `arg:"" help:"The bridge's name in kaelixd's [[bridges]]."`
}

// declaredBridge is a [[bridges]] entry as config show reports it.
type declaredBridge struct {
	Name   string `json:"name"`
	Config string `json:"config"`
	Binary string `json:"binary"`
}

// bridgeStatus is the part of kaelix-bridge's /status (package bridge's
// Status) this tool prints.
type bridgeStatus struct {
	Host    string `json:"host"`
	Healthy bool   `json:"healthy"`
	NATS    struct {
		Connected  bool   `json:"connected"`
		URL        string `json:"url"`
		Reconnects uint64 `json:"reconnects"`
		LastError  string `json:"last_error"`
	} `json:"nats"`
	Rules []struct {
		Name        string            `json:"name"`
		Direction   string            `json:"direction"`
		Topic       string            `json:"topic"`
		Subject     string            `json:"subject"`
		Mode        string            `json:"mode"`
		State       string            `json:"state"`
		Error       string            `json:"error"`
		Forwarded   uint64            `json:"forwarded"`
		Acked       uint64            `json:"acked"`
		Redelivered uint64            `json:"redelivered"`
		Duplicates  uint64            `json:"duplicates"`
		Skipped     uint64            `json:"skipped"`
		Lost        map[string]uint64 `json:"lost"`
		LostTotal   uint64            `json:"lost_total"`
		LagRecords  int64             `json:"lag_records"`
	} `json:"rules"`
}

// bridgeView is one bridge as listed: its declaration and what its
// /status said (Status nil and Error set when it could not be read).
type bridgeView struct {
	declaredBridge
	HTTP   string        `json:"http,omitempty"`
	Status *bridgeStatus `json:"status,omitempty"`
	Error  string        `json:"error,omitempty"`
}

func (g *Globals) bridges() ([]bridgeView, error) {
	var v wire.ConfigView
	if err := g.control(wire.TypeConfigShow, &v); err != nil {
		return nil, err
	}
	var decl []declaredBridge
	for _, e := range v.Entries {
		if e.Key == "bridges" && e.Value != "" && e.Value != "null" {
			if err := json.Unmarshal([]byte(e.Value), &decl); err != nil {
				return nil, fmt.Errorf("kaelixd's bridges %q: %w", e.Value, err)
			}
		}
	}
	out := make([]bridgeView, len(decl))
	for i, d := range decl {
		out[i] = g.bridgeView(d)
	}
	return out, nil
}

func (g *Globals) bridgeView(d declaredBridge) bridgeView {
	bv := bridgeView{declaredBridge: d}
	var file struct {
		HTTP string `toml:"http"`
	}
	if _, err := toml.DecodeFile(d.Config, &file); err != nil {
		bv.Error = fmt.Sprintf("its config: %v", err)
		return bv
	}
	if bv.HTTP = file.HTTP; bv.HTTP == "" {
		bv.Error = "its config sets no http address: no status to read"
		return bv
	}
	ctx, cancel := g.reqCtx()
	defer cancel()
	st, err := fetchBridgeStatus(ctx, bv.HTTP)
	if err != nil {
		bv.Error = err.Error()
		return bv
	}
	bv.Status = st
	return bv
}

func fetchBridgeStatus(ctx context.Context, addr string) (*bridgeStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("not reachable at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	var st bridgeStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("bad /status at %s: %w", addr, err)
	}
	return &st, nil
}

// Run prints one line per declared bridge.
func (c *BridgeListCmd) Run(g *Globals) error {
	bs, err := g.bridges()
	if err != nil {
		return err
	}
	if g.json() {
		return json.NewEncoder(g.stdout).Encode(bs)
	}
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "BRIDGE\tHTTP\tHEALTH\tNATS\tRULES\tFORWARDED\tLOST")
	for _, b := range bs {
		if b.Status == nil {
			fmt.Fprintf(w, "%s\t%s\tunknown\t-\t-\t-\t-\t(%s)\n", b.Name, b.HTTP, b.Error)
			continue
		}
		health, nats := "healthy", "connected"
		if !b.Status.Healthy {
			health = "degraded"
		}
		if !b.Status.NATS.Connected {
			nats = "disconnected"
		}
		var running int
		var fwd, lost uint64
		for _, r := range b.Status.Rules {
			if r.State == "running" {
				running++
			}
			fwd += r.Forwarded
			lost += r.LostTotal
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d/%d running\t%d\t%d\n", b.Name, b.HTTP, health, nats, running, len(b.Status.Rules), fwd, lost)
	}
	return w.Flush()
}

// Run prints one bridge's rules.
func (c *BridgeInfoCmd) Run(g *Globals) error {
	bs, err := g.bridges()
	if err != nil {
		return err
	}
	for _, b := range bs {
		if b.Name != c.Name {
			continue
		}
		if g.json() {
			return json.NewEncoder(g.stdout).Encode(b)
		}
		fmt.Fprintf(g.stdout, "bridge %s: config %s, http %s\n", b.Name, b.Config, b.HTTP)
		if b.Status == nil {
			return fmt.Errorf("bridge %s: %s", b.Name, b.Error)
		}
		st := b.Status
		nats := "connected to " + st.NATS.URL
		if !st.NATS.Connected {
			nats = "DISCONNECTED (" + st.NATS.LastError + ")"
		}
		fmt.Fprintf(g.stdout, "host %s, nats %s, %d reconnects, healthy %v\n", st.Host, nats, st.NATS.Reconnects, st.Healthy)
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
		return nil
	}
	return errors.New("kaelixd declares no bridge named " + c.Name + " (kaelixctl bridge list)")
}

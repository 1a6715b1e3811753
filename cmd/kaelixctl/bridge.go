package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"text/tabwriter"
	"time"

	"github.com/kaelix-io/kaelix/bridge/bridgestat"
	"github.com/kaelix-io/kaelix/wire"
)

// BridgeCmd groups the bridge verbs: the [[bridges]] kaelixd declares
// (from its configuration), each one's state read from the status file
// the bridge rewrites every second in kaelixd's state directory
// (bridgestat.StatusPath): no HTTP, and a hung or dead bridge shows as
// stale with its last status.
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

// bridgeView is one bridge as listed: its declaration and its status
// file (Status nil and Error set when it could not be read).
type bridgeView struct {
	declaredBridge
	StatusFile string             `json:"status_file"`
	Status     *bridgestat.Status `json:"status,omitempty"`
	// PID wrote the status AgeNS before it was read; Stale: the bridge
	// missed its rewrites (stopped, hung or gone), Status is its last.
	PID   int    `json:"pid,omitempty"`
	AgeNS int64  `json:"age_ns,omitempty"`
	Stale bool   `json:"stale,omitempty"`
	Error string `json:"error,omitempty"`
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
	if len(decl) == 0 {
		return nil, nil
	}
	var st wire.Status
	if err := g.control(wire.TypeStatus, &st); err != nil {
		return nil, err
	}
	out := make([]bridgeView, len(decl))
	now := time.Now()
	for i, d := range decl {
		out[i] = readBridge(d, st.StateDir, now)
	}
	return out, nil
}

func readBridge(d declaredBridge, stateDir string, now time.Time) bridgeView {
	bv := bridgeView{declaredBridge: d, StatusFile: bridgestat.StatusPath(stateDir, d.Name)}
	f, err := bridgestat.ReadFile(bv.StatusFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		bv.Error = "no status file yet: the bridge has not started (kaelixd's log says why)"
		return bv
	case err != nil:
		bv.Error = err.Error()
		return bv
	}
	bv.Status, bv.PID, bv.AgeNS, bv.Stale = &f.Status, f.PID, int64(f.Age(now)), f.Stale(now)
	return bv
}

// updated is a bridge's status age for listings: "1s ago", or "STALE 12s
// ago (pid 4242)".
func (b bridgeView) updated() string {
	age := time.Duration(b.AgeNS).Round(time.Second)
	if b.Stale {
		return fmt.Sprintf("STALE %s ago (pid %d)", age, b.PID)
	}
	return fmt.Sprintf("%s ago", age)
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
	if len(bs) == 0 {
		fmt.Fprintln(g.stdout, "kaelixd declares no [[bridges]]")
		return nil
	}
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "BRIDGE\tHEALTH\tNATS\tRULES\tFORWARDED\tLOST\tUPDATED")
	for _, b := range bs {
		if b.Status == nil {
			fmt.Fprintf(w, "%s\tunknown\t-\t-\t-\t-\t(%s)\n", b.Name, b.Error)
			continue
		}
		health, nats, rules, fwd, lost := bridgestat.Summary(*b.Status)
		if b.Stale {
			health = "unknown"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", b.Name, health, nats, rules, fwd, lost, b.updated())
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
		fmt.Fprintf(g.stdout, "bridge %s: config %s, status file %s\n", b.Name, b.Config, b.StatusFile)
		if b.Status == nil {
			return fmt.Errorf("bridge %s: %s", b.Name, b.Error)
		}
		age := time.Duration(b.AgeNS).Round(time.Second)
		if b.Stale {
			fmt.Fprintf(g.stdout, "STALE: written %s ago by pid %d, which missed its rewrites (stopped, hung or gone); its last status:\n", age, b.PID)
		} else {
			fmt.Fprintf(g.stdout, "written %s ago by pid %d\n", age, b.PID)
		}
		return bridgestat.Render(g.stdout, *b.Status)
	}
	return errors.New("kaelixd declares no bridge named " + c.Name + " (kaelixctl bridge list)")
}

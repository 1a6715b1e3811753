package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/stat"
	"github.com/kaelix-io/kaelix/wire"
)

// Health exit codes, the monitoring-plugin convention: scripts and
// Nagios-style checks read them directly.
const (
	exitHealthy   = 0
	exitDegraded  = 1
	exitUnhealthy = 2
	exitUnknown   = 3
)

// HealthCmd is `kaelixctl health`: kaelixd's health status and reasons.
// When the daemon does not answer, the heartbeat file in its state
// directory tells a busy daemon (heartbeat advancing: degraded) from a hung
// one (heartbeat stopped: unhealthy) and from none at all (unknown).
//
// Exit code: 0 healthy, 1 degraded, 2 unhealthy (also: kaelixd is dead —
// its socket is left and its heartbeat stopped —, or hung), 3 unknown (no
// socket at the path: never started there, or a typo).
type HealthCmd struct {
	StateDir string `name:"state-dir" help:"kaelixd's state directory, for the heartbeat (default: the socket's directory)." placeholder:"DIR"`
}

// Run prints the health and exits with its code.
func (cmd *HealthCmd) Run(g *Globals) error {
	var h wire.Health
	err := g.control(wire.TypeHealth, &h)
	if err != nil {
		h = cmd.fromHeartbeat(g, err)
	}
	if g.json() {
		if err := writeJSON(g.stdout, h); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(g.stdout, "%s\n", h.Status)
		for _, r := range h.Reasons {
			fmt.Fprintf(g.stdout, "  %-9s %-15s %s\n", r.Status, r.Rule, r.Message)
		}
		if e := h.Errors; e != nil {
			fmt.Fprintf(g.stdout, "  errors over %v: %.1f/min; %d of %d requests failed (%.2f%%), %d of %d records errors (%.2f%%)\n",
				time.Duration(e.WindowNS).Round(time.Second), e.PerMinute, e.FailedRequests, e.Requests, 100*e.RequestShare,
				e.ErrorRecords, e.Records, 100*e.RecordShare)
		}
	}
	code := map[string]int{wire.HealthHealthy: exitHealthy, wire.HealthDegraded: exitDegraded,
		wire.HealthUnhealthy: exitUnhealthy}[h.Status]
	if h.Status == wire.HealthUnknown || (code == 0 && h.Status != wire.HealthHealthy) {
		code = exitUnknown
	}
	if code != exitHealthy {
		panic(exitRequest(code)) // run returns the code (see cli.go)
	}
	return nil
}

// fromHeartbeat judges a daemon that did not answer by its heartbeat file:
// read twice, 300ms apart (three default heartbeat intervals).
func (cmd *HealthCmd) fromHeartbeat(g *Globals, cause error) wire.Health {
	dir := cmd.StateDir
	if dir == "" {
		sock := g.Socket
		if sock == "" {
			sock = client.DefaultSocketPath()
		}
		dir = filepath.Dir(sock)
	}
	h := wire.Health{Status: wire.HealthUnknown, CheckedNS: time.Now().UnixNano()}
	if errors.Is(cause, syscall.ENOENT) {
		// No socket at all: nothing to judge (a daemon that never ran
		// there, or a typo), whatever heartbeat another daemon left in
		// the same directory.
		sock := g.Socket
		if sock == "" {
			sock = client.DefaultSocketPath()
		}
		h.Reasons = []wire.HealthReason{{Rule: "unreachable", Status: wire.HealthUnknown,
			Message: fmt.Sprintf("no daemon at %s (no such socket)", sock)}}
		return h
	}
	first, err := stat.ReadHeartbeat(dir)
	if err != nil {
		h.Reasons = []wire.HealthReason{{Rule: "unreachable", Status: wire.HealthUnknown,
			Message: fmt.Sprintf("no answer (%v) and no heartbeat in %s", cause, dir)}}
		return h
	}
	time.Sleep(300 * time.Millisecond)
	second, _ := stat.ReadHeartbeat(dir)
	h.PID, h.Heartbeats, h.HeartbeatNS = second.PID, second.Counter, second.Time.UnixNano()
	switch {
	case errors.Is(cause, client.ErrBrokerNotRunning) && second.Counter == first.Counter:
		// The socket is there but nothing listens, and the heartbeat
		// stopped: the daemon died (a clean exit removes both).
		h.Status = wire.HealthUnhealthy
		h.Reasons = []wire.HealthReason{{Rule: "dead", Status: wire.HealthUnhealthy,
			Message: fmt.Sprintf("kaelixd is dead: nothing listens on its socket and the heartbeat (pid %d) stopped %v ago", second.PID, time.Since(second.Time).Round(time.Millisecond))}}
	case second.Counter != first.Counter:
		h.Status = wire.HealthDegraded
		h.Reasons = []wire.HealthReason{{Rule: "heartbeat", Status: wire.HealthDegraded,
			Message: fmt.Sprintf("busy: pid %d's heartbeat advances but it did not answer (%v)", second.PID, cause)}}
	default:
		h.Status = wire.HealthUnhealthy
		h.Reasons = []wire.HealthReason{{Rule: "heartbeat", Status: wire.HealthUnhealthy,
			Message: fmt.Sprintf("hung: pid %d's heartbeat stopped %v ago and it did not answer (%v)", second.PID, time.Since(second.Time).Round(time.Millisecond), cause)}}
	}
	return h
}

// Package bridgestat is a kaelix-bridge's status as other programs read
// it: the Status and RuleStatus types (what /status serves and what the
// status file holds), the status file a bridge rewrites every second, and
// the one text rendering that `kaelix-bridge status` and `kaelixctl
// bridge info` print.
//
// It imports only the standard library (no NATS, metrics or HTTP
// package), so kaelixctl reads a bridge's state without linking any of
// them: kaelixd starts each bridge it supervises with --status-file
// STATE_DIR/bridges/NAME.status (StatusPath), and kaelixctl reads that
// file, with or without a live daemon or a live bridge (File.Age tells a
// stale file from a fresh one).
//
// The file is JSON (File), replaced whole by rename, so a reader sees one
// complete write or the one before it, never a mix.
package bridgestat

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// RuleStatus is one rule's state and counters. Counts are since the
// bridge process started.
type RuleStatus struct {
	Name      string `json:"name"`
	Direction string `json:"direction"` // "out" (local topic to NATS) or "in"
	Topic     string `json:"topic"`
	Subject   string `json:"subject"`
	Mode      string `json:"mode"` // "core" or "jetstream"
	// State is starting, running, waiting (NATS not connected), failed
	// (retried with backoff; Error says why), invalid or stopped.
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	// Starts counts the rule's set-ups (1 + retries).
	Starts int `json:"starts"`
	// Forwarded: out, published to NATS; in, written to the local ring.
	Forwarded uint64 `json:"forwarded"`
	// Acked: out jetstream, acknowledged by the stream; in jetstream,
	// messages whose stream position was committed.
	Acked uint64 `json:"acked"`
	// Redelivered: out, republished after a failed or unconfirmed publish.
	Redelivered uint64 `json:"redelivered"`
	// Duplicates: in, records already written, dropped.
	Duplicates uint64 `json:"duplicates"`
	// Skipped: out, records bridged in (not sent back); in, records from
	// this host.
	Skipped uint64 `json:"skipped"`
	// Lost counts records lost by reason (package bridge's Lost*
	// constants); LostTotal is their sum.
	Lost      map[string]uint64 `json:"lost"`
	LostTotal uint64            `json:"lost_total"`
	// Dropped: in core, messages nats.go dropped as a slow consumer.
	Dropped uint64 `json:"nats_dropped"`
	// LagBytes: out, local ring bytes not read yet. LagRecords: out,
	// published and not acknowledged; in jetstream, stream messages not
	// read yet.
	LagBytes   int64  `json:"lag_bytes"`
	LagRecords int64  `json:"lag_records"`
	Reconnects uint64 `json:"reconnects"`
}

// Status is a bridge's state: the NATS connection and every rule.
type Status struct {
	Host string `json:"host"`
	// Healthy is false (degraded) while NATS is disconnected or a rule
	// is not running.
	Healthy bool `json:"healthy"`
	NATS    struct {
		Connected bool `json:"connected"`
		// URL is the server connected to, its password redacted.
		URL        string `json:"url,omitempty"`
		Reconnects uint64 `json:"reconnects"`
		LastError  string `json:"last_error,omitempty"`
	} `json:"nats"`
	Rules []RuleStatus `json:"rules"`
}

// Version is the status file's format version (File.Version).
const Version = 1

// File is the status file's content: a Status and who wrote it when.
type File struct {
	Version int `json:"version"`
	// PID is the bridge process that wrote it.
	PID int `json:"pid"`
	// WrittenNS is when it was written (unix ns); IntervalNS how often
	// the bridge rewrites it.
	WrittenNS  int64  `json:"written_ns"`
	IntervalNS int64  `json:"interval_ns"`
	Status     Status `json:"status"`
}

// Interval is how often a bridge rewrites its status file.
const Interval = time.Second

// StatusPath is where kaelixd has the bridge it declares as name write its
// status: STATE_DIR/bridges/NAME.status. Names are validated by kaelixd's
// configuration (letters, digits, '-', '_', '.'), so one is a file name.
func StatusPath(stateDir, name string) string {
	return filepath.Join(stateDir, "bridges", name+".status")
}

// WriteFile replaces the status file at path with st, written now by
// this process: a temporary file beside it, then a rename, so a reader
// never sees half a write. It makes the directory (mode 0755) if needed.
// Errors: the directory, write or rename error.
func WriteFile(path string, st Status, now time.Time) error {
	b, err := json.Marshal(File{Version: Version, PID: os.Getpid(), WrittenNS: now.UnixNano(), IntervalNS: int64(Interval), Status: st})
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// ReadFile reads the status file at path. Errors: the read error
// (fs.ErrNotExist: the bridge has not written it yet, or was never
// started with it), malformed JSON, or another format version (named).
func ReadFile(path string) (File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return File{}, err
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return File{}, fmt.Errorf("bridge status file %s: %w", path, err)
	}
	if f.Version != Version {
		return File{}, fmt.Errorf("bridge status file %s: version %d, want %d", path, f.Version, Version)
	}
	return f, nil
}

// Age is how long before now the file was written.
func (f File) Age(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, f.WrittenNS))
}

// Stale reports whether the writer has missed its rewrites: the file is
// older than three intervals plus two seconds of grace (a loaded host
// delays a tick, never by that much), so its bridge is stopped, hung or
// gone and Status is its last word, not its state.
func (f File) Stale(now time.Time) bool {
	return f.Age(now) > 3*time.Duration(f.IntervalNS)+2*time.Second
}

// Render writes st as text: a line for the host and the NATS connection,
// a table with one row per rule, then each failing rule's error.
func Render(w io.Writer, st Status) error {
	nats := "connected to " + st.NATS.URL
	if !st.NATS.Connected {
		nats = "DISCONNECTED"
		if st.NATS.LastError != "" {
			nats += " (" + st.NATS.LastError + ")"
		}
	}
	health := "healthy"
	if !st.Healthy {
		health = "degraded"
	}
	fmt.Fprintf(w, "host %s, %s, nats %s, %d reconnects\n", st.Host, health, nats, st.NATS.Reconnects)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tDIR\tMODE\tTOPIC\tSUBJECT\tSTATE\tFORWARDED\tACKED\tREDELIVERED\tDUPS\tSKIPPED\tLOST\tLAG")
	for _, r := range st.Rules {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%d\n", r.Name, r.Direction, r.Mode, r.Topic, r.Subject,
			r.State, r.Forwarded, r.Acked, r.Redelivered, r.Duplicates, r.Skipped, LostText(r), r.LagRecords)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range st.Rules {
		if r.Error != "" {
			if _, err := fmt.Fprintf(w, "%s: %s\n", r.Name, r.Error); err != nil {
				return err
			}
		}
	}
	return nil
}

// LostText is a rule's lost count with its reasons: "3 (gap=3)", "0".
func LostText(r RuleStatus) string {
	s := fmt.Sprint(r.LostTotal)
	if r.LostTotal == 0 {
		return s
	}
	parts := make([]string, 0, len(r.Lost))
	for k, v := range r.Lost {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return s + " (" + strings.Join(parts, ",") + ")"
}

// Summary is one line about st for listings: health, NATS connection,
// rules running, records forwarded and lost.
func Summary(st Status) (health, nats, rules string, forwarded, lost uint64) {
	health, nats = "healthy", "connected"
	if !st.Healthy {
		health = "degraded"
	}
	if !st.NATS.Connected {
		nats = "disconnected"
	}
	running := 0
	for _, r := range st.Rules {
		if r.State == "running" {
			running++
		}
		forwarded += r.Forwarded
		lost += r.LostTotal
	}
	return health, nats, fmt.Sprintf("%d/%d running", running, len(st.Rules)), forwarded, lost
}

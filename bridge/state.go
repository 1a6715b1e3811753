package bridge

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// ruleState is what a rule commits to StateDir/RULE.state (JSON),
// replaced atomically (write a temporary file, rename it over the old one),
// so a process killed at any instant leaves the previous or the new
// version, never a torn one. No fsync: the file is for surviving a kill
// of the bridge, which the page cache does; after a host crash the replay
// of an older position is deduplicated (outbound JetStream) within the
// stream's window.
type ruleState struct {
	// Next (outbound) maps a partition to the sequence of the first
	// record not yet acknowledged by the stream.
	Next map[string]uint64 `json:"next,omitempty"`
	// Applied (inbound) maps an origin "HOST/TOPIC/PARTITION" to the last
	// origin sequence written into the local ring.
	Applied map[string]uint64 `json:"applied,omitempty"`
	// StreamSeq (inbound jetstream) is the stream sequence of the last
	// message handled: reading resumes after it.
	StreamSeq uint64 `json:"stream_seq,omitempty"`
}

func statePath(dir, rule string) string { return filepath.Join(dir, rule+".state") }

// loadState reads a rule's state; a missing file is an empty state.
func loadState(dir, rule string) (ruleState, error) {
	var st ruleState
	if dir == "" {
		return st, nil
	}
	b, err := os.ReadFile(statePath(dir, rule))
	if os.IsNotExist(err) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("state file %s: %w", statePath(dir, rule), err)
	}
	return st, nil
}

// saveState replaces a rule's state file atomically.
func saveState(dir, rule string, st ruleState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+rule+".state.*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), statePath(dir, rule)); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

func itoa(i int) string { return strconv.Itoa(i) }

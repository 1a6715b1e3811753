// Package proc reads what Kaelix needs of a process from /proc/PID/stat:
// its state, flags and start time. The (pid, start time) pair is a
// process's identity: a pid is reused, a pid with its start time (clock
// ticks since boot, field 22) names one process for the life of the boot.
// Ring slots record that pair (ringbuf.ProcessStart writes it), and every
// reader that judges whether a slot's owner lives, is stopped or has gone
// reads it back here.
//
// Every function takes procRoot, the proc mount ("" is "/proc"), so tests
// can point it at a fixture tree. Nothing here caches: each call reads the
// file once (one open, read, close; no allocation beyond the read).
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// Stat is the part of /proc/PID/stat Kaelix reads.
type Stat struct {
	PID  int
	Comm string // field 2 without its parentheses (may hold spaces and ')')
	// State is field 3: 'R' running, 'S' sleeping, 'D' disk sleep, 'T'
	// stopped, 't' traced, 'Z' zombie, 'X' dead, ...
	State byte
	Flags uint64 // field 9, the kernel's PF_* flags
	// StartTicks is field 22: when the process started, in clock ticks
	// since boot. With PID it identifies the process (Identity).
	StartTicks uint64
}

// Identity is a process's (pid, start time): see the package doc.
type Identity struct {
	PID        int
	StartTicks uint64
}

// PFExiting is the PF_EXITING flag of Stat.Flags: the process is being
// torn down and never runs its own code again.
const PFExiting = 0x4

// ErrMalformed: a stat file that does not read as /proc/PID/stat.
var ErrMalformed = errors.New("proc: malformed stat file")

// ReadStat reads /proc/PID/stat under procRoot. Errors: the read's (an
// fs.ErrNotExist one when there is no such process) or ErrMalformed.
func ReadStat(procRoot string, pid int) (Stat, error) {
	if procRoot == "" {
		procRoot = "/proc"
	}
	if pid <= 0 {
		return Stat{}, fmt.Errorf("proc: pid %d: %w", pid, os.ErrNotExist)
	}
	b, err := os.ReadFile(procRoot + "/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(b)
}

// ParseStat parses the contents of a /proc/PID/stat file. comm may hold
// spaces and parentheses: it ends at the last ')'.
func ParseStat(b []byte) (Stat, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 1 || end < open {
		return Stat{}, ErrMalformed
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return Stat{}, ErrMalformed
	}
	f := bytes.Fields(b[end+1:])
	// f[0] is field 3 (state), f[6] field 9 (flags), f[19] field 22.
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, ErrMalformed
	}
	s := Stat{PID: pid, Comm: string(b[open+1 : end]), State: f[0][0]}
	if s.Flags, err = strconv.ParseUint(string(f[6]), 10, 64); err != nil {
		return Stat{}, ErrMalformed
	}
	if s.StartTicks, err = strconv.ParseUint(string(f[19]), 10, 64); err != nil {
		return Stat{}, ErrMalformed
	}
	return s, nil
}

// Running reports whether the process can still run: it is neither a
// zombie nor dead (a stopped process is running in this sense).
func (s Stat) Running() bool { return s.State != 'Z' && s.State != 'X' && s.State != 'x' }

// Stopped reports a stopped (SIGSTOP) or traced process.
func (s Stat) Stopped() bool { return s.State == 'T' || s.State == 't' }

// Identity is s's (pid, start time).
func (s Stat) Identity() Identity { return Identity{PID: s.PID, StartTicks: s.StartTicks} }

// Alive reports whether the process id names still runs: its pid exists,
// is no zombie, and started at id.StartTicks (0 skips that check: any
// process with the pid).
func (id Identity) Alive(procRoot string) bool {
	s, err := ReadStat(procRoot, id.PID)
	return err == nil && s.Running() && (id.StartTicks == 0 || s.StartTicks == id.StartTicks)
}

package stat

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// HeartbeatFile is the heartbeat's file name in the daemon's state dir.
//
// Layout: 24 bytes, little-endian, rewritten in place (one pwrite) every
// daemon.heartbeat_interval:
//
//	0  pid      u64  the daemon's pid
//	8  counter  u64  ticks since the daemon started (1, 2, ...)
//	16 time     i64  unix ns of the last tick
//
// A reader that sees counter and time stand still knows the daemon is
// stopped, hung or gone; one that sees them move knows it runs.
const HeartbeatFile = "heartbeat"

const (
	heartbeatPIDOffset     = 0
	heartbeatCounterOffset = heartbeatPIDOffset + 8
	heartbeatTimeOffset    = heartbeatCounterOffset + 8
	// HeartbeatBytes is the heartbeat file's size.
	HeartbeatBytes = heartbeatTimeOffset + 8
)

// Heartbeat is a daemon's last heartbeat as read from its state dir.
type Heartbeat struct {
	PID     int       `json:"pid"`
	Counter uint64    `json:"counter"`
	Time    time.Time `json:"time"`
}

// EncodeHeartbeat fills b (HeartbeatBytes long) with a heartbeat, in the
// layout above (the daemon writes it).
func EncodeHeartbeat(b []byte, pid int, counter uint64, now time.Time) {
	binary.LittleEndian.PutUint64(b[heartbeatPIDOffset:], uint64(pid))
	binary.LittleEndian.PutUint64(b[heartbeatCounterOffset:], counter)
	binary.LittleEndian.PutUint64(b[heartbeatTimeOffset:], uint64(now.UnixNano()))
}

// ReadHeartbeat reads the heartbeat file in stateDir, for tools that want
// to tell a busy daemon from a hung one without a round trip: read twice,
// a heartbeat interval apart; a live daemon's Counter advances. Errors:
// the file's read error (fs.ErrNotExist: no daemon ever ran there, or it
// removed the file at a clean exit), or a file shorter than
// HeartbeatBytes.
func ReadHeartbeat(stateDir string) (Heartbeat, error) {
	path := filepath.Join(stateDir, HeartbeatFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return Heartbeat{}, err
	}
	if len(b) < HeartbeatBytes {
		return Heartbeat{}, fmt.Errorf("stat: heartbeat file %s is %d bytes, want %d", path, len(b), HeartbeatBytes)
	}
	return Heartbeat{
		PID:     int(binary.LittleEndian.Uint64(b[heartbeatPIDOffset:])),
		Counter: binary.LittleEndian.Uint64(b[heartbeatCounterOffset:]),
		Time:    time.Unix(0, int64(binary.LittleEndian.Uint64(b[heartbeatTimeOffset:]))),
	}, nil
}

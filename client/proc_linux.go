package client

import (
	"bytes"
	"os"
	"strconv"
)

// procCommState returns a process's name (/proc/PID/comm) and its state
// as BlockedError reports it, from /proc/PID/stat's third field.
func procCommState(pid int) (comm, state string) {
	dir := "/proc/" + strconv.Itoa(pid)
	if b, err := os.ReadFile(dir + "/comm"); err == nil {
		comm = string(bytes.TrimRight(b, "\n"))
	}
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		if os.IsNotExist(err) {
			return comm, "gone"
		}
		return comm, "unknown"
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return comm, "unknown"
	}
	switch b[i+2] {
	case 'T', 't':
		return comm, "stopped"
	case 'Z', 'X', 'x':
		return comm, "zombie"
	case 'R', 'S', 'D', 'I', 'W', 'P', 'K':
		return comm, "running"
	}
	return comm, "unknown"
}

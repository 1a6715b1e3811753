package daemon

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kaelix-io/kaelix/internal/proc"
)

// mappedBy returns the pid of a live process (other than this one) that maps
// path, per procRoot/PID/maps, or 0. Processes whose maps this user cannot
// read are not seen (run as root to see all).
func mappedBy(procRoot, path string) int {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return 0
	}
	self := os.Getpid()
	needle := []byte(" " + path)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		f, err := os.Open(filepath.Join(procRoot, e.Name(), "maps"))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Bytes()
			if bytes.HasSuffix(line, needle) {
				found = true
				break
			}
		}
		f.Close()
		if found {
			return pid
		}
	}
	return 0
}

// procRunning reports whether /proc says pid is a running (not zombie)
// process.
func procRunning(pid int) bool {
	s, err := proc.ReadStat("", pid)
	return err == nil && s.Running()
}

// waitProcGone waits, at most limit, until /proc agrees that pid (whose
// pidfd reported its exit) no longer runs, so that ReapDead, which judges
// liveness from /proc, sees it dead. It returns at once in the usual case.
func waitProcGone(pid int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for procRunning(pid) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

package ringbuf

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/internal/mapfile"
)

var mapSeq atomic.Int64

// sharedMapping creates a file of size bytes on tmpfs (/dev/shm if
// writable, else t.TempDir()) with a unique name, maps it MAP_SHARED and
// returns the mapping and the file's path. Both are removed at cleanup.
func sharedMapping(t testing.TB, size int) ([]byte, string) {
	t.Helper()
	dir := "/dev/shm"
	if unix.Access(dir, unix.W_OK) != nil {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("kaelix-ringtest-%d-%d", os.Getpid(), mapSeq.Add(1)))
	t.Cleanup(func() { os.Remove(path) })
	b, err := mapFile(path, size, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(b) })
	return b, path
}

// mapFile maps path (creating it with size bytes if create; opening,
// size 0 maps the whole file) MAP_SHARED.
var mapFile = mapfile.Shared

// newTestRing creates a ring with c in a fresh shared mapping.
func newTestRing(t testing.TB, c Config) (*Ring, []byte, string) {
	t.Helper()
	size, err := sizeIn(c)
	if err != nil {
		t.Fatal(err)
	}
	b, path := sharedMapping(t, size)
	r, err := createIn(b, c)
	if err != nil {
		t.Fatal(err)
	}
	return r, b, path
}

package ringbuf

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
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

// mapFile maps path (creating it with size bytes if create) MAP_SHARED.
func mapFile(path string, size int, create bool) ([]byte, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if create {
		if err := f.Truncate(int64(size)); err != nil {
			return nil, err
		}
	} else {
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		size = int(st.Size())
	}
	return unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
}

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

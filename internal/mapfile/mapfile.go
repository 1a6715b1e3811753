// Package mapfile maps a regular file MAP_SHARED read-write: the one
// helper behind the benchmark harness's mailboxes and the ring tests'
// shared mappings, so that two processes mapping the same path see the
// same bytes.
package mapfile

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Shared maps path MAP_SHARED, PROT_READ|PROT_WRITE, and returns the
// mapping (unmap it with unix.Munmap).
//
// With create, the file is made (O_EXCL: an existing one is an error, it
// is never truncated) with mode 0600 and size bytes, which must be > 0.
// Without create, the file must exist; size 0 maps all of it, size > 0
// maps its first size bytes and fails if the file is shorter. The file
// descriptor is closed before Shared returns; errors name the path.
func Shared(path string, size int, create bool) ([]byte, error) {
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
		switch {
		case size == 0:
			size = int(st.Size())
		case st.Size() < int64(size):
			return nil, fmt.Errorf("mapfile: %s is %d bytes, want %d", path, st.Size(), size)
		}
	}
	b, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: path, Err: err}
	}
	return b, nil
}

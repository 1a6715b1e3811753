package bench

// All unsafe code of the package lives in this file: typed accessors to
// words of a shared mapping, and the raw futex calls of futex-floor.

import (
	"errors"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/internal/mapfile"
)

// sharedMem is a MAP_SHARED mapping of a file, used by the floors. Offsets
// passed to the accessors must be 8-byte aligned and inside the mapping
// (checked once by the callers' layouts, never per access).
type sharedMem struct {
	b []byte
}

// mapShared maps path (creating it with size bytes if create; see
// mapfile.Shared) and checks the mapping is cache-line aligned.
func mapShared(path string, size int, create bool) (*sharedMem, error) {
	b, err := mapfile.Shared(path, size, create)
	if err != nil {
		return nil, err
	}
	if uintptr(unsafe.Pointer(&b[0]))%64 != 0 {
		unix.Munmap(b)
		return nil, errors.New("bench: mapping not cache-line aligned")
	}
	return &sharedMem{b: b}, nil
}

func (m *sharedMem) close() error {
	if m.b == nil {
		return nil
	}
	err := unix.Munmap(m.b)
	m.b = nil
	return err
}

// u64 is the 64-bit word at off, for atomic access.
func (m *sharedMem) u64(off int) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&m.b[off]))
}

// u32 is the 32-bit word at off, for atomic access and futexes.
func (m *sharedMem) u32(off int) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&m.b[off]))
}

// bytes is the n bytes at off, for plain copies published by a
// store-release of a sequence word.
func (m *sharedMem) bytes(off, n int) []byte { return m.b[off : off+n : off+n] }

// Futex operations without FUTEX_PRIVATE_FLAG: the words are shared
// between processes.
const (
	futexWaitOp = 0
	futexWakeOp = 1
)

// futexWaitShared sleeps while *w == val, for at most d (a shared futex:
// the word is in a mapping other processes see). Spurious returns are
// fine. ts is the caller's scratch, so that the call does not allocate.
func futexWaitShared(w *atomic.Uint32, val uint32, d time.Duration, ts *unix.Timespec) {
	*ts = unix.NsecToTimespec(int64(d))
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWaitOp, uintptr(val), uintptr(unsafe.Pointer(ts)), 0, 0)
}

// futexWakeShared wakes every sleeper on w.
func futexWakeShared(w *atomic.Uint32) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWakeOp, uintptr(1<<31-1), 0, 0, 0)
}

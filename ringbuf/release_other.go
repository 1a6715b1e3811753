//go:build !amd64

package ringbuf

import "sync/atomic"

// storeRelease64 stores v at off with release ordering (a sequentially
// consistent store where the architecture needs a barrier for it).
func (m *mem) storeRelease64(off uintptr, v uint64) {
	m.u64(off).Store(v)
}

// storeRelease64 is mem.storeRelease64 for a word already resolved.
func storeRelease64(w *atomic.Uint64, v uint64) { w.Store(v) }

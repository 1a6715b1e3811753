//go:build !amd64

package ringbuf

// storeRelease64 stores v at off with release ordering (a sequentially
// consistent store where the architecture needs a barrier for it).
func (m mem) storeRelease64(off uintptr, v uint64) {
	m.u64(off).Store(v)
}

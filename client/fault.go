package client

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"unsafe"

	"github.com/kaelix-io/kaelix/shm"
)

// FaultError: touching a topic's shared memory faulted. Another process
// truncated the region file (SIGBUS), so the partition's memory is gone.
// The handle is unusable; close it. The daemon takes the partition out of
// service (attaches are refused with the reason); delete and re-create the
// topic. errors.Is(err, shm.ErrFault) holds.
type FaultError struct {
	Topic string
	Addr  uintptr
	Msg   string
}

func (e *FaultError) Error() string {
	return fmt.Sprintf("kaelix: topic %q: shared memory fault at %#x (region truncated by another process?): %s", e.Topic, e.Addr, e.Msg)
}

// Is makes errors.Is(err, shm.ErrFault) hold.
func (e *FaultError) Is(target error) bool { return target == shm.ErrFault }

// recoverFault is deferred by every entry point that touches shared
// memory, with old = debug.SetPanicOnFault(true) evaluated on entry:
//
//	defer recoverFault(&err, topic, handle, debug.SetPanicOnFault(true))
//
// While it is set, a memory fault of the calling goroutine panics instead
// of killing the process; recoverFault restores the flag and turns such a
// panic, if its address lies in one of the handle's regions, into a
// *FaultError in *err. SetPanicOnFault is a per-goroutine
// flag: a few nanoseconds, no syscall, no allocation. Other panics (from
// the caller's handler) pass through unchanged.
func recoverFault(err *error, topic string, m mapper, old bool) {
	debug.SetPanicOnFault(old)
	r := recover()
	if r == nil {
		return
	}
	if re, ok := r.(interface {
		runtime.Error
		Addr() uintptr
	}); ok && m.owns(re.Addr()) {
		*err = &FaultError{Topic: topic, Addr: re.Addr(), Msg: re.Error()}
		return
	}
	panic(r) // not our memory: the caller's bug (a nil dereference in a handler) stays a crash
}

// mapper is a handle that maps regions.
type mapper interface {
	// owns reports whether addr lies in one of the handle's mappings.
	owns(addr uintptr) bool
}

func inRegion(r *shm.Region, addr uintptr) bool {
	if r == nil {
		return false
	}
	b := r.Data()
	if len(b) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(&b[0]))
	return addr >= start && addr-start < uintptr(len(b))
}

func (s *Subscriber) owns(addr uintptr) bool {
	for i := range s.parts {
		if inRegion(s.parts[i].region, addr) {
			return true
		}
	}
	return false
}

func (p *Publisher) owns(addr uintptr) bool {
	for i := range p.parts {
		if inRegion(p.parts[i].region, addr) {
			return true
		}
	}
	return false
}

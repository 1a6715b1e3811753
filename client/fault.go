package client

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"unsafe"

	"github.com/kaelix-io/kaelix/shm"
)

// FaultError: touching a topic's shared memory faulted. Another process
// truncated a region file (SIGBUS), so the partition's memory is gone.
// The handle is unusable; close it. The daemon takes the partition out of
// service (attaches are refused with the reason); delete and re-create the
// topic. errors.Is(err, ErrFault) holds.
//
// A subscriber maps the data region read-only, so a Poll handler that
// writes into a message's Payload faults too (ReadOnly is set, and the
// handle is just as unusable): the record stays intact for every other
// reader.
type FaultError struct {
	Topic string
	Addr  uintptr
	Msg   string
	// ReadOnly: the fault was a write to a subscriber's read-only data
	// mapping (its file is intact).
	ReadOnly bool
}

func (e *FaultError) Error() string {
	if e.ReadOnly {
		return fmt.Sprintf("kaelix: topic %q: write to the read-only data mapping at %#x (subscribers may not modify a received Payload): %s", e.Topic, e.Addr, e.Msg)
	}
	return fmt.Sprintf("kaelix: topic %q: shared memory fault at %#x (region truncated by another process?): %s", e.Topic, e.Addr, e.Msg)
}

// Is makes errors.Is(err, ErrFault) hold.
func (e *FaultError) Is(target error) bool { return target == ErrFault }

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
	}); ok {
		if mine, ro := m.owns(re.Addr()); mine {
			*err = &FaultError{Topic: topic, Addr: re.Addr(), Msg: re.Error(), ReadOnly: ro}
			return
		}
	}
	panic(r) // not our memory: the caller's bug (a nil dereference in a handler) stays a crash
}

// faultFrom is recoverFault for a recovered value r, for the hot entry
// points (TryPublish, Poll), which defer a method of their own (cheaper
// than recoverFault's closure): it is called only when r != nil.
//
//go:noinline
func faultFrom(err *error, topic string, m mapper, r any) {
	if re, ok := r.(interface {
		runtime.Error
		Addr() uintptr
	}); ok {
		if mine, ro := m.owns(re.Addr()); mine {
			*err = &FaultError{Topic: topic, Addr: re.Addr(), Msg: re.Error(), ReadOnly: ro}
			return
		}
	}
	panic(r) // not our memory: the caller's bug stays a crash
}

// mapper is a handle that maps regions.
type mapper interface {
	// owns reports whether addr lies in one of the handle's mappings, and
	// whether a fault there was a write to a read-only mapping.
	owns(addr uintptr) (mine, readOnlyWrite bool)
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

func (s *Subscriber) owns(addr uintptr) (bool, bool) {
	for i := range s.parts {
		if mine, ro := s.parts[i].owns(addr); mine {
			return true, ro
		}
	}
	return false, false
}

func (p *Publisher) owns(addr uintptr) (bool, bool) {
	for i := range p.parts {
		if mine, ro := p.parts[i].owns(addr); mine {
			return true, ro
		}
	}
	return false, false
}

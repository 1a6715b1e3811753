package client

import (
	"runtime/debug"
	"unsafe"

	"github.com/kaelix-io/kaelix/shm"
)

// FaultError: touching a topic's shared memory faulted. Another process
// truncated a region file (SIGBUS), so the partition's memory is gone.
// The handle is unusable; close it. The daemon takes the partition out of
// service (attaches are refused with the reason); delete and re-create the
// topic. errors.Is(err, ErrFault) holds. Fields: Topic, Addr (the faulting
// address), Msg (the runtime's description), ReadOnly.
//
// A subscriber maps the data region read-only, so a Poll handler that
// writes into a message's Payload faults too (ReadOnly is set, and the
// handle is just as unusable): the record stays intact for every other
// reader. It is shm's fault error, the one every package returns.
type FaultError = shm.FaultError

// recoverFault is deferred by every entry point that touches shared
// memory, with old = debug.SetPanicOnFault(true) evaluated on entry:
//
//	defer recoverFault(&err, topic, handle, debug.SetPanicOnFault(true))
//
// While it is set, a memory fault of the calling goroutine panics instead
// of killing the process; recoverFault restores the flag and hands such a
// panic to faultFrom. SetPanicOnFault is a per-goroutine flag: a few
// nanoseconds, no syscall, no allocation.
func recoverFault(err *error, topic string, m mapper, old bool) {
	debug.SetPanicOnFault(old)
	if r := recover(); r != nil {
		faultFrom(err, topic, m, r)
	}
}

// faultFrom turns a recovered value r into a *FaultError in *err if r is
// a memory fault (shm.FaultAddr) in one of m's regions; any other panic
// (a nil dereference in the caller's handler) is re-raised unchanged. The
// hot entry points (TryPublish, Poll) call it from a deferred method of
// their own (cheaper than recoverFault's closure), only when r != nil.
//
//go:noinline
func faultFrom(err *error, topic string, m mapper, r any) {
	if addr, msg, ok := shm.FaultAddr(r); ok {
		if mine, ro := m.owns(addr); mine {
			*err = &FaultError{Topic: topic, Addr: addr, Msg: msg, ReadOnly: ro}
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

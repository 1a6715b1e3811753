package shm

import (
	"runtime"
	"runtime/debug"
)

// Guard runs fn so that a memory fault inside it becomes an error instead of
// killing the process. Use it for every access to memory this process did
// not create: another process holding a writable descriptor can ftruncate
// the file, after which touching the lost pages raises SIGBUS; a write to a
// read-only mapping raises SIGSEGV. Inside Guard either one unwinds fn and
// Guard returns a *FaultError (errors.Is(err, ErrFault)). Otherwise Guard
// returns fn's error.
//
// Guard locks fn to its OS thread and sets debug.SetPanicOnFault for the
// calling goroutine only, restoring both afterwards. Faults are recognised
// only in fn's own goroutine: do not start goroutines that touch the region
// from inside fn. Panics that are not faults propagate unchanged. After a
// fault, stores fn made before the fault remain; treat the region as lost
// (Check tells why) and Close it.
//
// Guard may be called from any goroutine, concurrently. It costs a few
// hundred nanoseconds: guard a batch of work, not each byte.
func Guard(fn func() error) (err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if addr, msg, ok := FaultAddr(r); ok {
			err = &FaultError{Addr: addr, Msg: msg}
			return
		}
		panic(r)
	}()
	return fn()
}

// FaultAddr reports whether r, a value recovered from a panic, is a memory
// fault (the runtime.Error that debug.SetPanicOnFault turns SIGBUS and
// SIGSEGV into, which has an Addr method since Go 1.17), and if so the
// faulting address and the runtime's message. Guard uses it, and so do
// the client's publish and poll paths, which set SetPanicOnFault
// themselves (no OS thread lock: a few nanoseconds) and call this only
// once a panic was recovered. It never allocates.
func FaultAddr(r any) (addr uintptr, msg string, ok bool) {
	re, ok := r.(interface {
		runtime.Error
		Addr() uintptr
	})
	if !ok {
		return 0, "", false
	}
	return re.Addr(), re.Error(), true
}

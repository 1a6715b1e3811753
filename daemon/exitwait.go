package daemon

import (
	"os"
	"time"

	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/wire"
)

// A subscriber relaunched right after kill -9 of its predecessor asks for a
// slot the predecessor still holds: /proc shows a killed process running
// until the kernel has torn it down (ringbuf.ExitWait), and neither the
// ring nor the daemon's record of who was handed a slot's descriptor
// (the partition's ledger: ledger.othersExiting) gives the slot away before. On a topic with one
// subscriber slot (SPSC) the attach failed with no_slot. So an attach
// refused for want of a subscriber slot is tried again, every millisecond,
// for the first exitGrace and then while a process that keeps a slot is
// exiting, for at most ringbuf.ExitWait, as ringbuf.NewPublisher does for
// publisher slots. The wait is on the client's own serving goroutine, with
// d.mu released between tries: other clients are not held up.

// exitGrace is how long a refused attach is tried again even when no
// holder shows as exiting yet: between a kill and the dying thread marking
// itself exiting, /proc shows neither the pending SIGKILL nor the exit; on
// a loaded host that window can outlast a scheduling slice (as for
// publisher slots, ringbuf/exiting.go).
const exitGrace = 250 * time.Millisecond

// attachWaiting is attach, tried again while it is refused for want of a
// subscriber slot that an exiting process holds. Runs on p's serving
// goroutine.
func (d *Daemon) attachWaiting(p *peer, a wire.Attach) (any, []*os.File, *wire.Error) {
	t0 := time.Now()
	defer func() { p.slotRetry = false }()
	for {
		p.slotExiting = false
		reply, files, werr := d.attach(p, a)
		p.slotRetry = true
		if werr == nil || werr.Code != wire.CodeNoSlot || time.Since(t0) >= ringbuf.ExitWait ||
			!p.slotExiting && time.Since(t0) >= exitGrace {
			return reply, files, werr
		}
		time.Sleep(time.Millisecond)
	}
}

package daemon

import (
	"os"

	"github.com/kaelix-io/kaelix/daemon/wire"
	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/shm"
)

// CounterReader reads partitions' ring counters straight from their
// region files in shared memory, for tools (kaelixctl topics stats) that
// watch counters without a round trip to the daemon per sample. It keeps
// each region mapped read-only until Close. Not safe for concurrent use.
type CounterReader struct {
	open map[string]*mappedRing
}

type mappedRing struct {
	reg  *shm.Region
	ring *ringbuf.Ring
}

// Read returns the counters of the ring in the region file at path (as in
// wire.PartitionInfo.Path). The file is opened read-only, which needs only
// read permission on it. Errors: the file's open or attach error, or
// shm.ErrFault if the region was truncated under us.
func (r *CounterReader) Read(path string) (wire.Counters, error) {
	if r.open == nil {
		r.open = map[string]*mappedRing{}
	}
	m, ok := r.open[path]
	if !ok {
		f, err := os.Open(path)
		if err != nil {
			return wire.Counters{}, err
		}
		reg, err := shm.AttachFile(f, shm.AttachOptions{ReadOnly: true})
		f.Close()
		if err != nil {
			return wire.Counters{}, err
		}
		var ring *ringbuf.Ring
		if err := shm.Guard(func() error {
			var aerr error
			ring, aerr = ringbuf.Attach(reg.Data())
			return aerr
		}); err != nil {
			reg.Close()
			return wire.Counters{}, err
		}
		m = &mappedRing{reg: reg, ring: ring}
		r.open[path] = m
	}
	var c ringbuf.Counters
	err := shm.Guard(func() error {
		c = m.ring.Counters()
		return nil
	})
	if err != nil {
		return wire.Counters{}, err
	}
	return wire.Counters{
		Published: c.Published, Consumed: c.Consumed, Lost: c.Lost, BackPressure: c.BackPressure,
		Rejected: c.Rejected, Unblocked: c.Unblocked, Reaped: c.Reaped, TailPosition: c.TailPosition,
		Publishers: c.Publishers, Subscribers: c.Subscribers, SlowestLagBytes: c.SlowestLag,
	}, nil
}

// Close unmaps every region.
func (r *CounterReader) Close() error {
	for p, m := range r.open {
		m.reg.Close()
		delete(r.open, p)
	}
	return nil
}

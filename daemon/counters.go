package daemon

import (
	"os"

	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// CounterReader reads partitions' ring counters straight from their
// region files in shared memory, for tools (kaelixctl topics stats) that
// watch counters without a round trip to the daemon per sample. It keeps
// each partition's two regions mapped read-only until Close. Not safe for
// concurrent use.
type CounterReader struct {
	open map[string]*RingView
}

// RingView is one partition's ring mapped read-only (its data and consumer
// regions), to read its counters from shared memory without attaching as
// a client. Ring must not be used to publish or subscribe. Close unmaps.
type RingView struct {
	data, consumer *shm.Region
	slots          []*shm.Region
	Ring           *ringbuf.Ring
}

// Close unmaps its regions.
func (m *RingView) Close() error {
	for _, r := range append([]*shm.Region{m.data, m.consumer}, m.slots...) {
		if r != nil {
			r.Close()
		}
	}
	return nil
}

// Read returns the counters of the ring of partition p (as listed by the
// daemon): most live in its consumer region (p.ConsumerPath), the tail in
// its data region (p.Path), per-subscriber ones in its slot regions
// (p.SlotPaths). The files are opened read-only, which needs only read
// permission on them. Errors: a file's open or attach error, or
// shm.ErrFault if a region was truncated under us.
func (r *CounterReader) Read(p wire.PartitionInfo) (wire.Counters, error) {
	if r.open == nil {
		r.open = map[string]*RingView{}
	}
	key := p.Path + "\x00" + p.ConsumerPath
	m, ok := r.open[key]
	if !ok {
		var err error
		if m, err = OpenRingView(p.Path, p.ConsumerPath, p.SlotPaths); err != nil {
			return wire.Counters{}, err
		}
		r.open[key] = m
	}
	var c ringbuf.Counters
	err := shm.Guard(func() error {
		c = m.Ring.Counters()
		return nil
	})
	if err != nil {
		return wire.Counters{}, err
	}
	return wire.Counters{
		Published: c.Published, Consumed: c.Consumed, Lost: c.Lost, BackPressure: c.BackPressure,
		Rejected: c.Rejected, Unblocked: c.Unblocked, Reaped: c.Reaped, Evicted: c.Evicted, Tampered: c.Tampered, TailPosition: c.TailPosition,
		Publishers: c.Publishers, Subscribers: c.Subscribers, SlowestLagBytes: c.SlowestLag,
	}, nil
}

// OpenRingView maps a partition's data, consumer and slot region files
// (the paths the daemon lists in PartitionInfo) PROT_READ and attaches
// their ring. It needs only read permission on the files. Errors: an open
// or attach error, or shm.ErrFault if a region is truncated.
func OpenRingView(dataPath, consumerPath string, slotPaths []string) (*RingView, error) {
	open := func(path string) (*shm.Region, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return shm.AttachFile(f, shm.AttachOptions{ReadOnly: true})
	}
	data, err := open(dataPath)
	if err != nil {
		return nil, err
	}
	consumer, err := open(consumerPath)
	if err != nil {
		data.Close()
		return nil, err
	}
	m := &RingView{data: data, consumer: consumer}
	areas := make([]ringbuf.SlotArea, len(slotPaths))
	for i, path := range slotPaths {
		r, err := open(path)
		if err != nil {
			m.Close()
			return nil, err
		}
		m.slots = append(m.slots, r)
		areas[i] = ringbuf.SlotArea{Mem: r.Data()}
	}
	if err := shm.Guard(func() error {
		var aerr error
		m.Ring, aerr = ringbuf.AttachApart(data.Data(), consumer.Data(), areas, true)
		return aerr
	}); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Close unmaps every region.
func (r *CounterReader) Close() error {
	for k, m := range r.open {
		m.Close()
		delete(r.open, k)
	}
	return nil
}

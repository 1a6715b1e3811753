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
// each partition's two regions mapped read-only until Close. Not safe for
// concurrent use.
type CounterReader struct {
	open map[string]*mappedRing
}

type mappedRing struct {
	data, consumer *shm.Region
	ring           *ringbuf.Ring
}

func (m *mappedRing) close() {
	m.data.Close()
	m.consumer.Close()
}

// Read returns the counters of the ring of partition p (as listed by the
// daemon): most live in its consumer region (p.ConsumerPath), the tail in
// its data region (p.Path). Both files are opened read-only, which needs
// only read permission on them. Errors: a file's open or attach error, or
// shm.ErrFault if a region was truncated under us.
func (r *CounterReader) Read(p wire.PartitionInfo) (wire.Counters, error) {
	if r.open == nil {
		r.open = map[string]*mappedRing{}
	}
	key := p.Path + "\x00" + p.ConsumerPath
	m, ok := r.open[key]
	if !ok {
		var err error
		if m, err = mapRingReadOnly(p.Path, p.ConsumerPath); err != nil {
			return wire.Counters{}, err
		}
		r.open[key] = m
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

// mapRingReadOnly maps a partition's data and consumer region files
// PROT_READ and attaches their ring, for reading its counters.
func mapRingReadOnly(dataPath, consumerPath string) (*mappedRing, error) {
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
	m := &mappedRing{data: data, consumer: consumer}
	if err := shm.Guard(func() error {
		var aerr error
		m.ring, aerr = ringbuf.AttachSplit(data.Data(), consumer.Data(), true)
		return aerr
	}); err != nil {
		m.close()
		return nil, err
	}
	return m, nil
}

// Close unmaps every region.
func (r *CounterReader) Close() error {
	for k, m := range r.open {
		m.close()
		delete(r.open, k)
	}
	return nil
}

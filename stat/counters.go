package stat

import "github.com/kaelix-io/kaelix/wire"

// CounterReader reads partitions' ring counters and slots straight from
// their region files, keeping each partition mapped read-only between
// reads until Close, for tools that sample repeatedly (kaelixctl stat
// --watch, the daemon's metrics). Not safe for concurrent use.
type CounterReader struct {
	open map[string]*RingView
}

// View returns p's ring view, mapping it on first use. Errors as
// OpenRingView.
func (r *CounterReader) View(p Partition) (*RingView, error) {
	if r.open == nil {
		r.open = map[string]*RingView{}
	}
	key := p.DataPath + "\x00" + p.ConsumerPath
	if v, ok := r.open[key]; ok {
		return v, nil
	}
	v, err := OpenRingView(p.DataPath, p.ConsumerPath, p.SlotPaths)
	if err != nil {
		return nil, err
	}
	r.open[key] = v
	return v, nil
}

// Read returns the counters of partition p's ring. Errors as
// OpenRingView, or shm.ErrFault if a region was truncated under us.
func (r *CounterReader) Read(p Partition) (wire.Counters, error) {
	v, err := r.View(p)
	if err != nil {
		return wire.Counters{}, err
	}
	c, err := v.Counters()
	if err != nil {
		r.forget(p)
		return wire.Counters{}, err
	}
	return WireCounters(c), nil
}

// ReadInfo is Read for a partition of the topic spec as the daemon lists it.
func (r *CounterReader) ReadInfo(spec wire.TopicSpec, p wire.PartitionInfo) (wire.Counters, error) {
	return r.Read(Partition{Topic: spec.Name, Index: p.Index, DataPath: p.Path, ConsumerPath: p.ConsumerPath, SlotPaths: p.SlotPaths(spec.MaxSubscribers)})
}

// Slots returns partition p's slots (RingView.Slots, procRoot "/proc").
func (r *CounterReader) Slots(p Partition) ([]SlotStat, error) {
	v, err := r.View(p)
	if err != nil {
		return nil, err
	}
	s, err := v.Slots(p.Topic, p.Index, "")
	if err != nil {
		r.forget(p)
	}
	return s, err
}

// Retain unmaps every view but those of keep (partitions deleted since).
func (r *CounterReader) Retain(keep []Partition) {
	want := map[string]bool{}
	for _, p := range keep {
		want[p.DataPath+"\x00"+p.ConsumerPath] = true
	}
	for k, v := range r.open {
		if !want[k] {
			v.Close()
			delete(r.open, k)
		}
	}
}

func (r *CounterReader) forget(p Partition) {
	key := p.DataPath + "\x00" + p.ConsumerPath
	if v, ok := r.open[key]; ok {
		v.Close()
		delete(r.open, key)
	}
}

// Close unmaps every region.
func (r *CounterReader) Close() error {
	r.Retain(nil)
	return nil
}

package processor

import (
	"sync/atomic"
	"time"
)

// Processing time. One record in TimingSampleEvery (the In count a
// multiple of it) is timed from its hand-over to the first stage until
// its verdict is carried out (published to every output, which includes
// waiting on a back-pressured one; or dropped, failed). Two clock reads
// (vDSO, no syscall) per sampled record keep the cost off the others.
// The times go into a histogram of TimingBuckets power-of-two buckets.
const (
	// TimingSampleEvery: one record in this many is timed (a power of 2).
	TimingSampleEvery = 16
	// TimingBuckets: bucket i < TimingBuckets-1 counts times below
	// TimingBucketBound(i); the last one counts the rest.
	TimingBuckets = 22
	// timingFirstBoundNS is the first bucket's upper bound.
	timingFirstBoundNS = 64
)

// TimingBucketBound is bucket i's exclusive upper bound: 64 ns << i
// (64 ns to 67 ms); the last bucket has none (0 returned).
func TimingBucketBound(i int) time.Duration {
	if i < 0 || i >= TimingBuckets-1 {
		return 0
	}
	return time.Duration(timingFirstBoundNS) << i
}

// Timing is the processing time histogram of the sampled records.
type Timing struct {
	Count   uint64 // sampled records
	SumNS   uint64 // their total time
	Buckets [TimingBuckets]uint64
}

// timing is the live histogram (one writer: the pipeline's goroutine or
// worker; Stats reads from any goroutine).
type timing struct {
	count, sum atomic.Uint64
	buckets    [TimingBuckets]atomic.Uint64
}

func (t *timing) observe(d time.Duration) {
	ns := uint64(max(d, 0))
	i := 0
	for i < TimingBuckets-1 && ns >= timingFirstBoundNS<<i {
		i++
	}
	t.buckets[i].Add(1)
	t.sum.Add(ns)
	t.count.Add(1)
}

func (t *timing) snapshot() Timing {
	var s Timing
	for i := range t.buckets {
		s.Buckets[i] = t.buckets[i].Load()
	}
	s.SumNS = t.sum.Load()
	s.Count = t.count.Load()
	return s
}

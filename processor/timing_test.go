package processor

import (
	"testing"
	"time"
)

// TestTimingBuckets pins the bucket edges: a time lands in the first
// bucket whose bound exceeds it; past the last bound, in the last bucket.
func TestTimingBuckets(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want int
	}{{0, 0}, {63, 0}, {64, 1}, {127, 1}, {128, 2}, {time.Microsecond, 4}, {TimingBucketBound(20) - 1, 20}, {TimingBucketBound(20), 21}, {time.Hour, 21}, {-5, 0}}
	for _, c := range cases {
		var tm timing
		tm.observe(c.d)
		s := tm.snapshot()
		if s.Count != 1 || s.Buckets[c.want] != 1 {
			t.Errorf("%v: buckets %v, want 1 in [%d]", c.d, s.Buckets, c.want)
		}
	}
	if TimingBucketBound(0) != 64 || TimingBucketBound(20) != 64<<20 || TimingBucketBound(21) != 0 {
		t.Errorf("bounds %v %v %v", TimingBucketBound(0), TimingBucketBound(20), TimingBucketBound(21))
	}
}

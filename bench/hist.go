package bench

import (
	"fmt"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram is a latency histogram in nanoseconds: an HDR histogram from
// 1 ns to 100 s with 3 significant digits. Values outside the range are
// clamped to it and counted. The zero value is not usable; use
// NewHistogram. A Histogram is not safe for concurrent use.
type Histogram struct {
	h       *hdrhistogram.Histogram
	clamped int64
}

const (
	histLowestNS  = 1
	histHighestNS = 100_000_000_000
	histDigits    = 3
)

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{h: hdrhistogram.New(histLowestNS, histHighestNS, histDigits)}
}

func clamp(ns int64) (int64, bool) {
	switch {
	case ns < histLowestNS:
		return histLowestNS, true
	case ns > histHighestNS:
		return histHighestNS, true
	}
	return ns, false
}

// Record adds one sample of ns nanoseconds. It does not allocate.
func (h *Histogram) Record(ns int64) {
	v, c := clamp(ns)
	if c {
		h.clamped++
	}
	h.h.RecordValue(v)
}

// RecordCorrected adds a sample taken by a loop that meant to take one
// every intervalNS: a sample longer than the interval also adds the
// samples the stalled loop failed to take (ns - interval, ns - 2*interval,
// ...), as HdrHistogram's RecordCorrectedValue. For closed loops that
// cannot stamp an intended send time.
func (h *Histogram) RecordCorrected(ns, intervalNS int64) {
	v, c := clamp(ns)
	if c {
		h.clamped++
	}
	h.h.RecordCorrectedValue(v, intervalNS)
}

// Reset empties h.
func (h *Histogram) Reset() {
	h.h.Reset()
	h.clamped = 0
}

// Merge adds o's samples to h.
func (h *Histogram) Merge(o *Histogram) {
	h.h.Merge(o.h)
	h.clamped += o.clamped
}

// Count is the number of samples.
func (h *Histogram) Count() int64 { return h.h.TotalCount() }

// Quantile returns the value at percentile q (0 < q <= 100), in ns.
func (h *Histogram) Quantile(q float64) int64 { return h.h.ValueAtQuantile(q) }

// Encode returns the histogram in HdrHistogram's compressed V2 encoding
// (base64 text), as children send theirs to the parent.
func (h *Histogram) Encode() (string, error) {
	b, err := h.h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return "", fmt.Errorf("bench: encode histogram: %w", err)
	}
	return string(b), nil
}

// DecodeHistogram is Encode's inverse.
func DecodeHistogram(s string) (*Histogram, error) {
	h, err := hdrhistogram.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadHistogram, err)
	}
	return &Histogram{h: h}, nil
}

// Summary is a histogram's figures, in ns.
type Summary struct {
	Samples                    int64
	P50, P90, P99, P999, P9999 int64
	Max                        int64
	Mean                       float64
}

// Summary returns the percentiles the report shows.
func (h *Histogram) Summary() Summary {
	if h.h.TotalCount() == 0 {
		return Summary{}
	}
	v := h.h.ValueAtPercentilesSlice([]float64{50, 90, 99, 99.9, 99.99})
	return Summary{
		Samples: h.h.TotalCount(),
		P50:     v[0], P90: v[1], P99: v[2], P999: v[3], P9999: v[4],
		Max:  h.h.Max(),
		Mean: h.h.Mean(),
	}
}

// schedule is a fixed-rate send schedule: record i is due at
// start + i*interval. Latency measured from due(i) rather than from the
// actual send is corrected for coordinated omission: when the sender is
// held up, the records it could not send on time carry the delay.
type schedule struct {
	startNS    int64
	intervalNS float64
}

func (s schedule) due(i int) int64 { return s.startNS + int64(float64(i)*s.intervalNS) }

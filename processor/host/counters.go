package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/processor"
)

// The counters region: how a processor host shows its counts to kaelixd
// without a round trip. kaelixd names a file (in its state directory) per
// processor and passes it as `kaelix-proc run --counters FILE`; the host
// maps it shared and stores its totals there every CountersInterval; the
// daemon maps it read-only and reads them when asked (status, metrics).
// One writer (the host's sampler goroutine), any number of readers; every
// word is 8-byte aligned and stored and loaded atomically (Go's atomics
// are sequentially consistent; the race detector cannot see the other
// process). The region outlives the host: a host that starts on a region
// with a valid header adds its counts to the totals found there, so the
// totals run across restarts (the counts of a killed host since its last
// store, at most one CountersInterval, are lost).
//
//	 0                   8                  16                 24
//	+-------------------+------------------+------------------+------------------+
//	| magic "KXPCNT01"  | version (last)   | writer pid       | updated unix ns  |
//	+-------------------+------------------+------------------+------------------+
//	| records in        | records out      | dropped          | failed           |  32
//	+-------------------+------------------+------------------+------------------+
//	| pipeline starts   | pipelines        | running          | timed records    |  64
//	+-------------------+------------------+------------------+------------------+
//	| timed sum ns      | buckets[0..21] ...                                        |  96
//	+-------------------+------------------+------------------+------------------+
//	                                                           CountersLength = 280
//
// pipelines is how many the host runs, running how many of them are in
// phase running now (the others are starting or retrying: an input or
// output it may not attach to, say; its stderr says why).
//
// buckets are processor.Timing's: bucket i counts sampled processing times
// below processor.TimingBucketBound(i).
const (
	CountersMagic   uint64 = 0x3130544e_4350584b // "KXPCNT01" in file order (little-endian)
	CountersVersion uint64 = 1

	countersMagicOffset   = 0
	countersVersionOffset = countersMagicOffset + 8
	countersPIDOffset     = countersVersionOffset + 8
	countersUpdatedOffset = countersPIDOffset + 8
	countersInOffset      = countersUpdatedOffset + 8
	countersOutOffset     = countersInOffset + 8
	countersDroppedOffset = countersOutOffset + 8
	countersFailedOffset  = countersDroppedOffset + 8
	countersStartsOffset  = countersFailedOffset + 8
	countersPipesOffset   = countersStartsOffset + 8
	countersRunningOffset = countersPipesOffset + 8
	countersTimedOffset   = countersRunningOffset + 8
	countersSumOffset     = countersTimedOffset + 8
	countersBucketsOffset = countersSumOffset + 8
	// CountersLength is the region's size in bytes.
	CountersLength = countersBucketsOffset + 8*processor.TimingBuckets

	// CountersInterval is how often a host stores its counts.
	CountersInterval = 100 * time.Millisecond
)

// Counters are a host's totals as read from its counters region.
type Counters struct {
	PID       int   // the host that stored them last
	UpdatedNS int64 // when (unix ns)
	In        uint64
	Out       uint64
	Dropped   uint64
	Failed    uint64
	Starts    uint64 // pipeline starts (runs) inside the host
	Pipelines uint64 // pipelines the host runs
	Running   uint64 // of them, in phase running when stored
	Timing    processor.Timing
}

// ErrCountersNotReady: the region has no valid header yet (its host has
// not started, or is not a kaelix-proc); retry later.
var ErrCountersNotReady = errors.New("host: counters region not written yet")

func mapCounters(path string, write bool) ([]byte, error) {
	flag, prot := os.O_RDONLY, unix.PROT_READ
	if write {
		flag, prot = os.O_RDWR|os.O_CREATE, unix.PROT_READ|unix.PROT_WRITE
	}
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() < CountersLength {
		if !write {
			return nil, ErrCountersNotReady
		}
		if err := f.Truncate(CountersLength); err != nil {
			return nil, err
		}
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, CountersLength, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("host: map counters %s: %w", path, err)
	}
	return mem, nil
}

// ReadCounters maps the counters region at path, reads it and unmaps it.
// Errors: ErrCountersNotReady, an incompatible version (both named), the
// file's own errors (os.ErrNotExist).
func ReadCounters(path string) (Counters, error) {
	mem, err := mapCounters(path, false)
	if err != nil {
		return Counters{}, err
	}
	defer unix.Munmap(mem)
	return readCounters(mem)
}

func readCounters(mem []byte) (Counters, error) {
	if v := word(mem, countersVersionOffset).Load(); v != CountersVersion || word(mem, countersMagicOffset).Load() != CountersMagic {
		if v == 0 {
			return Counters{}, ErrCountersNotReady
		}
		return Counters{}, fmt.Errorf("host: counters region version %d, this build reads %d", v, CountersVersion)
	}
	c := Counters{
		PID: int(word(mem, countersPIDOffset).Load()), UpdatedNS: int64(word(mem, countersUpdatedOffset).Load()),
		In: word(mem, countersInOffset).Load(), Out: word(mem, countersOutOffset).Load(),
		Dropped: word(mem, countersDroppedOffset).Load(), Failed: word(mem, countersFailedOffset).Load(),
		Starts: word(mem, countersStartsOffset).Load(), Pipelines: word(mem, countersPipesOffset).Load(),
		Running: word(mem, countersRunningOffset).Load(),
	}
	c.Timing.Count = word(mem, countersTimedOffset).Load()
	c.Timing.SumNS = word(mem, countersSumOffset).Load()
	for i := range c.Timing.Buckets {
		c.Timing.Buckets[i] = word(mem, countersBucketsOffset+8*i).Load()
	}
	return c, nil
}

func writeCounters(mem []byte, c Counters) {
	word(mem, countersInOffset).Store(c.In)
	word(mem, countersOutOffset).Store(c.Out)
	word(mem, countersDroppedOffset).Store(c.Dropped)
	word(mem, countersFailedOffset).Store(c.Failed)
	word(mem, countersStartsOffset).Store(c.Starts)
	word(mem, countersPipesOffset).Store(c.Pipelines)
	word(mem, countersRunningOffset).Store(c.Running)
	word(mem, countersTimedOffset).Store(c.Timing.Count)
	word(mem, countersSumOffset).Store(c.Timing.SumNS)
	for i, b := range c.Timing.Buckets {
		word(mem, countersBucketsOffset+8*i).Store(b)
	}
	word(mem, countersUpdatedOffset).Store(uint64(c.UpdatedNS))
}

func (c *Counters) add(s processor.Stats) {
	c.In += s.In
	c.Out += s.Out
	c.Dropped += s.Dropped
	c.Failed += s.Failed
	c.Timing.Count += s.Timing.Count
	c.Timing.SumNS += s.Timing.SumNS
	for i, b := range s.Timing.Buckets {
		c.Timing.Buckets[i] += b
	}
}

// CountersEnv is the environment variable in which kaelixd gives a
// command processor the path of its counters region (see ExportStats).
const CountersEnv = "KAELIX_COUNTERS"

// ExportCounters stores h's totals (every pipeline's) in the counters
// region at path every CountersInterval until ctx is done, then once more,
// and unmaps it. It continues the totals of a valid region it finds.
// Errors are the region's (creating, mapping); it returns nil when ctx is
// done. Run it beside Host.Run.
func ExportCounters(ctx context.Context, path string, h *Host) error {
	return export(ctx, path, h.Status)
}

// ExportStats is ExportCounters for a program that runs its own
// pipelines (a kaelixd command processor): it stores the totals of the
// pipelines' Stats that stats returns (one entry per pipeline, each
// counted as running) in the region at path (for a command processor
// os.Getenv(CountersEnv); kaelixd then shows its records in, out,
// dropped, failed and processing time) every CountersInterval until ctx
// is done, then once more, and unmaps it. stats is called on ExportStats'
// goroutine: Pipeline.Stats is safe there. Counts continue those of a
// valid region it finds (an earlier run's), so give it a pipeline's counts
// from its start. Errors are the region's (creating, mapping); it returns
// nil when ctx is done.
//
//	p, _ := processor.NewPipeline(ctx, c, cfg)
//	go host.ExportStats(ctx, os.Getenv(host.CountersEnv), func() []processor.Stats { return []processor.Stats{p.Stats()} })
//	p.Run(ctx)
func ExportStats(ctx context.Context, path string, stats func() []processor.Stats) error {
	return export(ctx, path, func() []PipelineStatus {
		var out []PipelineStatus
		for _, st := range stats() {
			out = append(out, PipelineStatus{Name: st.Name, Phase: "running", Starts: 1, Stats: st})
		}
		return out
	})
}

// export stores the totals of status's pipelines in the region at path
// until ctx is done.
func export(ctx context.Context, path string, status func() []PipelineStatus) error {
	mem, err := mapCounters(path, true)
	if err != nil {
		return err
	}
	defer unix.Munmap(mem)
	base, err := readCounters(mem)
	if err != nil {
		base = Counters{}
		word(mem, countersVersionOffset).Store(0) // not ready while the header is written
		word(mem, countersMagicOffset).Store(CountersMagic)
		writeCounters(mem, base)
	}
	word(mem, countersPIDOffset).Store(uint64(os.Getpid()))
	word(mem, countersVersionOffset).Store(CountersVersion) // store-release: the header is valid
	// A pipeline restarted inside the host starts its Stats from zero: the
	// counts of its earlier runs (as last sampled) go into done.
	type seen struct {
		starts int
		stats  processor.Stats
	}
	last := map[string]seen{}
	done := base
	store := func() {
		total := done
		total.Starts = base.Starts
		total.Pipelines, total.Running = 0, 0
		for i, ps := range status() {
			if ps.Name == "" {
				ps.Name = strconv.Itoa(i) // unnamed pipelines are told apart by place
			}
			total.Pipelines++
			if ps.Phase == "running" {
				total.Running++
			}
			if l, ok := last[ps.Name]; ok && l.starts != ps.Starts {
				done.add(l.stats)
				total.add(l.stats)
			}
			last[ps.Name] = seen{ps.Starts, ps.Stats}
			total.add(ps.Stats)
			total.Starts += uint64(ps.Starts)
		}
		total.UpdatedNS = time.Now().UnixNano()
		writeCounters(mem, total)
	}
	t := time.NewTicker(CountersInterval)
	defer t.Stop()
	for {
		store()
		select {
		case <-ctx.Done():
			store()
			return nil
		case <-t.C:
		}
	}
}

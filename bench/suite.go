package bench

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// SuitePingBytes is the payload of the suite's latency runs: with the
// 16-byte harness header it leaves a Kaelix record (32-byte ring header)
// at one 64-byte line, and a floor mailbox (8-byte seq) inside one line.
const SuitePingBytes = 32

// Suite returns the standard suite's steps: each side on its own core
// (cpus 0,1), blocking ping-pong also with both on core 0, every transport
// this binary has. scale multiplies the durations (1 for the real suite,
// smaller for a smoke run).
func Suite(scale float64) []Options {
	d := func(s float64) time.Duration { return time.Duration(s * scale * float64(time.Second)) }
	have := func(names ...string) []string {
		var out []string
		for _, n := range names {
			if _, ok := transports[n]; ok {
				out = append(out, n)
			}
		}
		return out
	}
	cross := []int{0, 1}
	warm := max(int(5000*scale), 100)
	ping := DefaultOptions(ModePingPong)
	ping.Transports = have("floor", "futex-floor", "copy-floor", "kaelix-spsc", "kaelix-mpmc", "kaelix-queue", "uds", "uds-seqpacket", "tcp", "chan", "nats")
	ping.Waits = slices.Clone(WaitStrategies)
	ping.Sizes, ping.Duration, ping.Warmup, ping.CPUs = []int{SuitePingBytes}, d(1.5), warm, cross

	same := ping
	same.Transports = have("futex-floor", "kaelix-spsc", "uds")
	same.Waits = []string{"blocking"}
	same.CPUs = []int{0, 0}
	same.Label = "same-core"

	thr := DefaultOptions(ModeThroughput)
	thr.Transports = have("copy-floor", "kaelix-spsc", "kaelix-mpmc", "kaelix-queue", "uds", "uds-seqpacket", "tcp", "chan", "nats")
	thr.Sizes, thr.Batches, thr.Duration, thr.Warmup, thr.CPUs = []int{64, 4096}, []int{1, 32}, d(0.6), 10*warm, cross
	thr.Repeat = 3 // one slow run on this shared VM must not decide a ratio

	one := DefaultOptions(ModeOneway)
	one.Transports = have("copy-floor", "kaelix-spsc", "uds", "tcp", "chan", "nats")
	one.Waits = []string{"busy-spin", "backoff", "blocking"}
	one.Sizes, one.RateHz, one.Duration, one.Warmup, one.CPUs = []int{64}, 20_000, d(1.5), warm, cross

	fout := DefaultOptions(ModeFanout)
	fout.Transports = have("copy-floor", "kaelix-spsc", "kaelix-mpmc", "kaelix-queue", "uds", "chan", "nats")
	fout.Waits = []string{"blocking"}
	fout.Sizes, fout.RateHz, fout.Peers, fout.Duration, fout.Warmup, fout.CPUs = []int{64}, 10_000, 2, d(1), warm, cross

	fin := fout
	fin.Mode = ModeFanin
	fin.Transports = have("copy-floor", "kaelix-spsc", "kaelix-mpmc", "uds", "chan", "nats")
	return []Options{ping, same, thr, one, fout, fin}
}

// RunSuite runs the steps into one report and judges the claims.
func (s *Session) RunSuite(ctx context.Context, steps []Options) error {
	for _, o := range steps {
		if err := s.Run(ctx, o); err != nil {
			return err
		}
	}
	s.Report.Claims = EvaluateClaims(s.Report, SuitePingBytes)
	return nil
}

// WriteClaims writes claims.json into dir.
func (r *Report) WriteClaims(dir string) error {
	b, err := json.MarshalIndent(r.Claims, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "claims.json"), append(b, '\n'), 0o644)
}

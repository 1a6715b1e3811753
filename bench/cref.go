package bench

// The C reference: cring/cring.c, a fixed-slot SPSC ring in C between two
// processes (see its header), built with the host's C compiler when the
// suite runs. It tells whether copy-floor, the Go floor, is a real floor:
// the suite alternates runs of cring and of copy-floor (one at a time,
// not batched) in rounds and compares them round by round. Two programs
// cannot share processes, so these rounds alternate whole runs of a
// fraction of a second, not blocks inside one pair of processes.

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

//go:embed cring/cring.c
var cringSource []byte

// CRingTransport names the C reference's rows.
const CRingTransport = "c-ring"

// buildCRing compiles cring.c into dir; it returns "" and the reason when
// no C compiler is there.
func buildCRing(ctx context.Context, dir string) (string, error) {
	var cc string
	for _, name := range []string{os.Getenv("CC"), "cc", "gcc", "clang"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			cc = p
			break
		}
	}
	if cc == "" {
		return "", fmt.Errorf("bench: no C compiler (cc, gcc, clang) for the C reference")
	}
	src := filepath.Join(dir, "cring.c")
	if err := os.WriteFile(src, cringSource, 0o600); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "cring")
	out, err := exec.CommandContext(ctx, cc, "-O2", "-o", bin, src).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("bench: build cring: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}

// runCRing runs the C ring once: size-byte records for d, the producer
// on cpus[0], the consumer on cpus[1]. It returns records/s.
func runCRing(ctx context.Context, bin string, size int, d time.Duration, cpus []int) (float64, error) {
	a, b := 0, 1
	if len(cpus) >= 2 {
		a, b = cpus[0], cpus[1]
	}
	out, err := exec.CommandContext(ctx, bin, strconv.Itoa(size), fmt.Sprint(d.Seconds()), strconv.Itoa(a), strconv.Itoa(b)).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("bench: cring: %v: %s", err, strings.TrimSpace(string(out)))
	}
	for f := range strings.FieldsSeq(string(out)) {
		if v, ok := strings.CutPrefix(f, "rate="); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("bench: cring: no rate in %q", out)
}

// RunCReference alternates rounds of the C ring and of copy-floor (batch
// 1) for each size, d each, and adds one row per path with the rounds'
// figures (group "c-reference SIZE"). No C compiler: a note, no rows.
func (s *Session) RunCReference(ctx context.Context, sizes []int, rounds int, d time.Duration, cpus []int) error {
	bin, err := buildCRing(ctx, s.r.dir)
	if err != nil {
		s.Report.Notes = append(s.Report.Notes, "C reference not run: "+err.Error())
		return nil
	}
	floor := transports["copy-floor"]
	if s.progress != nil {
		s.progress.Add(len(sizes) * rounds)
		defer s.progress.Done()
	}
	for _, size := range sizes {
		o := DefaultOptions(ModeThroughput)
		o.Transports, o.Sizes, o.Batches, o.Duration, o.Warmup, o.CPUs = []string{"copy-floor"}, []int{size}, []int{1}, d, 100_000, cpus
		group := fmt.Sprintf("c-reference %dB", size)
		c := Result{Mode: ModeThroughput, Transport: CRingTransport, Wait: "busy-spin", PayloadBytes: size, CPUs: cpuString(cpus, 1), Batch: 1, Group: group, Rounds: rounds}
		g := c
		g.Transport = "copy-floor"
		var failed []string
		for range rounds {
			if s.progress != nil {
				s.progress.Step(fmt.Sprintf("C reference %dB", size))
			}
			rate, err := runCRing(ctx, bin, size, d, cpus)
			if err != nil {
				failed = append(failed, err.Error())
				continue
			}
			rows, err := s.runCase(ctx, kase{o: o, t: floor, size: size, batch: 1, wait: floor.inherentWait})
			if err != nil {
				if ctx.Err() != nil {
					return err
				}
				failed = append(failed, err.Error())
				continue
			}
			c.RoundRecordsPerS = append(c.RoundRecordsPerS, rate)
			g.RoundRecordsPerS = append(g.RoundRecordsPerS, rows[0].RecordsPerS)
		}
		if len(failed) > 0 {
			s.Report.Notes = append(s.Report.Notes, fmt.Sprintf("%s: %d of %d rounds FAILED: %s", group, len(failed), rounds, strings.Join(failed, "; ")))
		}
		if len(c.RoundRecordsPerS) == 0 {
			continue
		}
		for _, x := range []*Result{&c, &g} {
			x.Rounds = len(x.RoundRecordsPerS)
			x.RecordsPerS = medianF(x.RoundRecordsPerS)
			x.BytesPerS = x.RecordsPerS * float64(size)
		}
		s.Report.Results = append(s.Report.Results, c, g)
	}
	return nil
}

// Command kaelix-bench measures Kaelix beside the alternatives: latency
// distributions and throughput, in one run, on one host.
//
//	kaelix-bench MODE [flags]      MODE: pingpong, oneway, throughput, fanout, fanin
//	kaelix-bench suite [--out DIR] the standard suite, with the claims judged
//	kaelix-bench readme --in DIR   regenerate README.md's table from a report
//	kaelix-bench list              transports, modes and wait strategies
//
// Run "kaelix-bench MODE -h" for the flags. The other side of every
// cross-process transport is this same binary, re-executed with a hidden
// argument.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kaelix-io/kaelix/bench"
	"github.com/kaelix-io/kaelix/internal/version"
)

func main() {
	if bench.IsChild() {
		os.Exit(bench.ChildMain())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "kaelix-bench:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

const usage = `usage:
  kaelix-bench --version
  kaelix-bench MODE [flags]       MODE: pingpong, oneway, throughput, fanout, fanin
  kaelix-bench suite [--out DIR]  the standard suite, claims judged
  kaelix-bench readme --in DIR [--readme README.md]
  kaelix-bench list
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	if args[0] == "--version" || args[0] == "-version" {
		fmt.Fprintln(stdout, version.Get().String("kaelix-bench"))
		return nil
	}
	command := "kaelix-bench " + strings.Join(args, " ")
	switch args[0] {
	case "list":
		fmt.Fprintln(stdout, "modes:     ", strings.Join(bench.Modes, ", "))
		fmt.Fprintln(stdout, "transports:", strings.Join(bench.TransportNames(), ", "))
		fmt.Fprintln(stdout, "waits:     ", strings.Join(bench.WaitStrategies, ", "))
		return nil
	case "suite":
		return runSuite(ctx, args[1:], command, stdout, stderr)
	case "readme":
		return runReadme(args[1:], stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	mode := args[0]
	if !slices.Contains(bench.Modes, mode) {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: %q", bench.ErrUnknownMode, mode)
	}
	o := bench.DefaultOptions(mode)
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	transports := fs.String("transports", strings.Join(o.Transports, ","), "comma-separated transports, or all: "+strings.Join(bench.TransportNames(), ","))
	waits := fs.String("wait", strings.Join(o.Waits, ","), "Kaelix wait strategies, comma-separated, or all: busy-spin,yield,backoff,blocking")
	sizes := fs.String("size", "64", "payload bytes, comma-separated for a sweep (min 16)")
	fs.IntVar(&o.Count, "count", o.Count, "measured records (round trips) per run")
	fs.DurationVar(&o.Duration, "duration", 0, "measure for this long instead of --count")
	fs.IntVar(&o.Warmup, "warmup", o.Warmup, "records sent first and excluded")
	fs.Float64Var(&o.RateHz, "rate", o.RateHz, "records/s (oneway, fanout; fanin: total over publishers)")
	cpus := fs.String("cpus", "", "CPUs: the parent's, then the peers' (cycled), e.g. 0,1; empty: no pinning")
	fs.IntVar(&o.Peers, "peers", o.Peers, "N subscribers (fanout) or publishers (fanin)")
	batches := fs.String("batch", joinInts(o.Batches), "throughput: records per publish call, comma-separated (1: off)")
	huge := fs.String("hugepages", "on", "Kaelix regions on hugepages: on (falls back to tmpfs) or off")
	format := fs.String("format", "table", "table or json")
	out := fs.String("out", "", "write report.md, results.json and latency PNGs into this directory")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "give up on one combination after this long")
	quiet := fs.Bool("quiet", false, "no progress bar")
	fs.BoolVar(&o.Interleave, "interleave", false, "pingpong, throughput: run the cross-process transports in one pair of processes, alternating blocks (claims need this)")
	fs.DurationVar(&o.Block, "block", bench.DefaultBlock, "--interleave: length of one path's block in a round")
	fs.IntVar(&o.Rounds, "rounds", 0, "--interleave: measured rounds (0: --duration / --block, at least 3)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	o.Transports = splitList(*transports, bench.TransportNames())
	o.Waits = splitList(*waits, bench.WaitStrategies)
	if o.Sizes, err = bench.ParseInts(*sizes); err != nil {
		return err
	}
	if o.CPUs, err = bench.ParseInts(*cpus); err != nil {
		return err
	}
	if o.Batches, err = bench.ParseInts(*batches); err != nil {
		return err
	}
	switch *huge {
	case "on":
		o.HugePages = true
	case "off":
		o.HugePages = false
	default:
		return fmt.Errorf("%w: --hugepages %q: on or off", bench.ErrOptions, *huge)
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("%w: --format %q: table or json", bench.ErrOptions, *format)
	}
	if err := o.Validate(); err != nil {
		return err
	}
	var progress io.Writer
	if !*quiet {
		progress = stderr
	}
	s, err := bench.NewSession(ctx, command, progress)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Run(ctx, o); err != nil {
		return err
	}
	return emit(s.Report, *format, *out, stdout)
}

func emit(r *bench.Report, format, out string, stdout io.Writer) error {
	if out != "" {
		if err := r.WriteDir(out); err != nil {
			return err
		}
	}
	if format == "json" {
		return r.WriteJSON(stdout)
	}
	return r.WriteTable(stdout)
}

func runSuite(ctx context.Context, args []string, command string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("suite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "report directory (default bench/results/<date>-<host>)")
	scale := fs.Float64("scale", 1, "multiply every step's duration (smoke runs: 0.05)")
	note := fs.String("note", "", "the machine's state, recorded in the report (e.g. other jobs sharing it)")
	format := fs.String("format", "table", "table or json")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *scale <= 0 || *scale > 100 {
		return fmt.Errorf("%w: --scale %v", bench.ErrOptions, *scale)
	}
	dir := *out
	if dir == "" {
		host, _ := os.Hostname()
		dir = filepath.Join("bench", "results", time.Now().Format("2006-01-02")+"-"+host)
	}
	var progress io.Writer
	if !*quiet {
		progress = stderr
	}
	s, err := bench.NewSession(ctx, command, progress)
	if err != nil {
		return err
	}
	defer s.Close()
	s.Report.Machine.Conditions = *note
	if err := s.RunSuite(ctx, bench.Suite(*scale)); err != nil {
		return err
	}
	if err := s.Report.WriteDir(dir); err != nil {
		return err
	}
	if err := s.Report.WriteClaims(dir); err != nil {
		return err
	}
	if err := emit(s.Report, *format, "", stdout); err != nil {
		return err
	}
	if *format == "table" {
		fmt.Fprintln(stdout)
		for _, c := range s.Report.Claims {
			fmt.Fprintf(stdout, "%-12s %s: %s\n", c.Status, c.Claim, c.Figures)
		}
		fmt.Fprintln(stdout, "report:", dir)
	}
	return nil
}

func runReadme(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("readme", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "report directory holding results.json")
	readme := fs.String("readme", "README.md", "README to update between <!-- bench:begin --> and <!-- bench:end -->")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" {
		return fmt.Errorf("%w: --in is required", bench.ErrOptions)
	}
	r, err := bench.ReadReport(filepath.Join(*in, "results.json"))
	if err != nil {
		return err
	}
	// The suite's own judgement (claims.json: with its re-run counts) if
	// it is there, else judged again from the rows.
	if b, err := os.ReadFile(filepath.Join(*in, "claims.json")); err == nil {
		if err := json.Unmarshal(b, &r.Claims); err != nil {
			return fmt.Errorf("%w: %s/claims.json: %w", bench.ErrBadReport, *in, err)
		}
	} else {
		r.Claims = bench.EvaluateClaims(r, bench.SuitePingBytes)
	}
	rel, err := filepath.Rel(filepath.Dir(*readme), *in)
	if err != nil {
		rel = *in
	}
	return bench.UpdateREADME(*readme, r, filepath.ToSlash(rel))
}

// splitList splits a comma list; "all" means every name in all.
func splitList(s string, all []string) []string {
	if s == "all" {
		return slices.Clone(all)
	}
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}

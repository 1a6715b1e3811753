// Command kaelix-bench measures Kaelix beside the alternatives: latency
// distributions and throughput, in one run, on one host.
//
//	kaelix-bench MODE [flags]      MODE: pingpong, oneway, throughput, fanout, fanin
//	kaelix-bench suite [--out DIR] the standard suite, with the claims judged
//	kaelix-bench readme --in DIR   regenerate README.md's table from a report
//	kaelix-bench list              transports, modes and wait strategies
//
// Flags are kaelixctl's style: --format text|json (-o json), --hugepages
// auto|required|off; -h prints the help (exit 0), a usage error exits 2,
// a failed run 1. Run "kaelix-bench MODE -h" for a mode's flags. The other
// side of every cross-process transport is this same binary, re-executed
// with a hidden argument.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"github.com/kaelix-io/kaelix/bench"
	"github.com/kaelix-io/kaelix/internal/cli"
	"github.com/kaelix-io/kaelix/shm"
)

func main() {
	if bench.IsChild() {
		os.Exit(bench.ChildMain())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// CLI is kaelix-bench's grammar: one command per mode (the same flags),
// then suite, readme and list.
type CLI struct {
	Pingpong   ModeCmd   `cmd:"" help:"Round trips: latency of a record there and back."`
	Oneway     ModeCmd   `cmd:"" help:"One-way latency at --rate records/s."`
	Throughput ModeCmd   `cmd:"" help:"Records/s one publisher gets through (--batch records per publish call)."`
	Fanout     ModeCmd   `cmd:"" help:"One publisher, --peers subscribers, at --rate."`
	Fanin      ModeCmd   `cmd:"" help:"--peers publishers, one subscriber, at --rate in total."`
	Suite      SuiteCmd  `cmd:"" help:"The standard suite, with the claims judged."`
	Readme     ReadmeCmd `cmd:"" help:"Regenerate README.md's benchmark table from a report directory."`
	List       ListCmd   `cmd:"" help:"Transports, modes and wait strategies."`

	Version kong.VersionFlag `help:"Print the version (module, commit, Go, protocol) and exit."`
}

// ModeCmd is one mode's flags. Zero values of --count and --batch take
// the mode's defaults (bench.DefaultOptions).
type ModeCmd struct {
	cli.Format
	Transports string        `help:"Comma-separated transports, or all." default:"${default_transports}" placeholder:"LIST"`
	Wait       string        `help:"Kaelix wait strategies, comma-separated, or all: busy-spin,yield,backoff,blocking." default:"${default_waits}" placeholder:"LIST"`
	Size       string        `help:"Payload bytes, comma-separated for a sweep (min 16)." default:"64" placeholder:"BYTES"`
	Count      int           `help:"Measured records (round trips) per run (default 100000; throughput 2000000)."`
	Duration   time.Duration `help:"Measure for this long instead of --count."`
	Warmup     int           `help:"Records sent first and excluded." default:"${default_warmup}"`
	Rate       float64       `help:"Records/s (oneway, fanout; fanin: total over publishers)." default:"${default_rate}"`
	CPUs       string        `name:"cpus" help:"CPUs: the parent's, then the peers' (cycled), e.g. 0,1; empty: no pinning." placeholder:"LIST"`
	Peers      int           `help:"N subscribers (fanout) or publishers (fanin)." default:"${default_peers}"`
	Batch      string        `help:"Throughput: records per publish call, comma-separated (1: off; default 1, throughput 1,32)." placeholder:"LIST"`
	HugePages  shm.Policy    `name:"hugepages" help:"kaelixd's shm.hugepages for Kaelix regions: auto (falls back to tmpfs), required or off (default auto)." default:"auto" placeholder:"auto|required|off"`
	Out        string        `help:"Write report.md, results.json and latency PNGs into this directory." placeholder:"DIR"`
	Timeout    time.Duration `help:"Give up on one combination after this long." default:"${default_timeout}"`
	Quiet      bool          `help:"No progress bar."`
	Interleave bool          `help:"Pingpong, throughput: run the cross-process transports in one pair of processes, alternating blocks (claims need this)."`
	Block      time.Duration `help:"--interleave: length of one path's block in a round." default:"${default_block}"`
	Rounds     int           `help:"--interleave: measured rounds (0: --duration / --block, at least 3)."`
}

// options turns the flags into the harness's options for mode.
func (m *ModeCmd) options(mode string) (bench.Options, error) {
	o := bench.DefaultOptions(mode)
	var err error
	o.Transports = splitList(m.Transports, bench.TransportNames())
	o.Waits = splitList(m.Wait, bench.WaitStrategies)
	if o.Sizes, err = bench.ParseInts(m.Size); err != nil {
		return o, err
	}
	if o.CPUs, err = bench.ParseInts(m.CPUs); err != nil {
		return o, err
	}
	if m.Batch != "" {
		if o.Batches, err = bench.ParseInts(m.Batch); err != nil {
			return o, err
		}
	}
	if m.Count != 0 {
		o.Count = m.Count
	}
	o.Duration, o.Warmup, o.RateHz, o.Peers = m.Duration, m.Warmup, m.Rate, m.Peers
	o.HugePages, o.Timeout = m.HugePages, m.Timeout
	o.Interleave, o.Block, o.Rounds = m.Interleave, m.Block, m.Rounds
	return o, o.Validate()
}

// SuiteCmd is kaelix-bench suite.
type SuiteCmd struct {
	cli.Format
	Out   string  `help:"Report directory (default bench/results/<date>-<host>)." placeholder:"DIR"`
	Scale float64 `help:"Multiply every step's duration (smoke runs: 0.05)." default:"1"`
	Note  string  `help:"The machine's state, recorded in the report (e.g. other jobs sharing it)."`
	Quiet bool    `help:"No progress bar."`
}

// ReadmeCmd is kaelix-bench readme.
type ReadmeCmd struct {
	In     string `help:"Report directory holding results.json." required:"" placeholder:"DIR"`
	Readme string `help:"README to update between <!-- bench:begin --> and <!-- bench:end -->." default:"README.md" placeholder:"FILE"`
}

// ListCmd is kaelix-bench list.
type ListCmd struct{}

// defaults are the flags' defaults, from bench.DefaultOptions (the same
// for every mode but --count and --batch, which ModeCmd.options takes
// from the mode's).
func defaults() kong.Vars {
	o := bench.DefaultOptions(bench.ModePingPong)
	return kong.Vars{
		"default_transports": strings.Join(o.Transports, ","),
		"default_waits":      strings.Join(o.Waits, ","),
		"default_warmup":     strconv.Itoa(o.Warmup),
		"default_rate":       strconv.FormatFloat(o.RateHz, 'f', -1, 64),
		"default_peers":      strconv.Itoa(o.Peers),
		"default_timeout":    o.Timeout.String(),
		"default_block":      bench.DefaultBlock.String(),
	}
}

// run parses args, runs the command and returns the exit code: 0, 1 for
// a failed run, 2 for a usage error (bad flags or option values).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c CLI
	kctx, code, ok := cli.Parse("kaelix-bench", "Measure Kaelix beside the alternatives: latency distributions and throughput, in one run, on one host.\n\n"+
		"Exit codes: 0 ok, 1 the run failed, 2 usage.",
		&c, args, stdout, stderr, defaults())
	if !ok {
		return code
	}
	command := "kaelix-bench " + strings.Join(args, " ")
	var err error
	switch name := kctx.Selected().Name; name {
	case "list":
		fmt.Fprintln(stdout, "modes:     ", strings.Join(bench.Modes, ", "))
		fmt.Fprintln(stdout, "transports:", strings.Join(bench.TransportNames(), ", "))
		fmt.Fprintln(stdout, "waits:     ", strings.Join(bench.WaitStrategies, ", "))
		return cli.ExitOK
	case "suite":
		err = runSuite(ctx, &c.Suite, command, stdout, stderr)
	case "readme":
		err = runReadme(&c.Readme)
	default:
		m := map[string]*ModeCmd{bench.ModePingPong: &c.Pingpong, bench.ModeOneway: &c.Oneway, bench.ModeThroughput: &c.Throughput,
			bench.ModeFanout: &c.Fanout, bench.ModeFanin: &c.Fanin}[name]
		var o bench.Options
		if o, err = m.options(name); err != nil {
			fmt.Fprintln(stderr, "kaelix-bench:", err)
			return cli.ExitUsage
		}
		err = runMode(ctx, o, m, command, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "kaelix-bench:", err)
		if usageError(err) {
			return cli.ExitUsage
		}
		return cli.ExitFailure
	}
	return cli.ExitOK
}

// usageError reports an error in what was asked (a flag value out of
// range, an unknown transport or wait strategy): exit 2, like a bad flag.
func usageError(err error) bool {
	return errors.Is(err, bench.ErrOptions) || errors.Is(err, bench.ErrUnknownTransport) ||
		errors.Is(err, bench.ErrUnknownWait) || errors.Is(err, bench.ErrUnknownMode)
}

func runMode(ctx context.Context, o bench.Options, m *ModeCmd, command string, stdout, stderr io.Writer) error {
	var progress io.Writer
	if !m.Quiet {
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
	return emit(s.Report, m.JSON(), m.Out, stdout)
}

func emit(r *bench.Report, asJSON bool, out string, stdout io.Writer) error {
	if out != "" {
		if err := r.WriteDir(out); err != nil {
			return err
		}
	}
	if asJSON {
		return r.WriteJSON(stdout)
	}
	return r.WriteTable(stdout)
}

func runSuite(ctx context.Context, c *SuiteCmd, command string, stdout, stderr io.Writer) error {
	if c.Scale <= 0 || c.Scale > 100 {
		return fmt.Errorf("%w: --scale %v", bench.ErrOptions, c.Scale)
	}
	dir := c.Out
	if dir == "" {
		host, _ := os.Hostname()
		dir = filepath.Join("bench", "results", time.Now().Format("2006-01-02")+"-"+host)
	}
	var progress io.Writer
	if !c.Quiet {
		progress = stderr
	}
	s, err := bench.NewSession(ctx, command, progress)
	if err != nil {
		return err
	}
	defer s.Close()
	s.Report.Machine.Conditions = c.Note
	if err := s.RunSuite(ctx, bench.Suite(c.Scale)); err != nil {
		return err
	}
	if err := s.Report.WriteDir(dir); err != nil {
		return err
	}
	if err := s.Report.WriteClaims(dir); err != nil {
		return err
	}
	if err := emit(s.Report, c.JSON(), "", stdout); err != nil {
		return err
	}
	if !c.JSON() {
		fmt.Fprintln(stdout)
		for _, c := range s.Report.Claims {
			fmt.Fprintf(stdout, "%-12s %s: %s\n", c.Status, c.Claim, c.Figures)
		}
		fmt.Fprintln(stdout, "report:", dir)
	}
	return nil
}

func runReadme(c *ReadmeCmd) error {
	in, readme := c.In, c.Readme
	r, err := bench.ReadReport(filepath.Join(in, "results.json"))
	if err != nil {
		return err
	}
	// The suite's own judgement (claims.json: with its re-run counts) if
	// it is there, else judged again from the rows.
	if b, err := os.ReadFile(filepath.Join(in, "claims.json")); err == nil {
		if err := json.Unmarshal(b, &r.Claims); err != nil {
			return fmt.Errorf("%w: %s/claims.json: %w", bench.ErrBadReport, in, err)
		}
	} else {
		r.Claims = bench.EvaluateClaims(r, bench.SuitePingBytes)
	}
	rel, err := filepath.Rel(filepath.Dir(readme), in)
	if err != nil {
		rel = in
	}
	return bench.UpdateREADME(readme, r, filepath.ToSlash(rel))
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

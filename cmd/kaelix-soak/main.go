// Command kaelix-soak runs Kaelix's soak: real kaelixd, publisher and
// subscriber processes over every ring kind and policy, with random
// SIGKILLs, SIGSTOPs and restarts of every role, then prints a table of
// records, corrupt, duplicated and lost ones (by policy), unblocked
// claims, evictions and latency (-o json: the report as JSON). Exit
// status 0 if every invariant held, 1 if one broke (see package
// internal/soak) or the harness failed, 2 for bad flags.
//
//	kaelix-soak [--duration 10m] [--kill-every 500ms] [--evict-after 1s] [--seed N] [--dir DIR] [--hugepages off]
//
// With --churn it runs the client churn soak instead (internal/soak
// RunChurn): --procs client processes attaching to and detaching from
// random topics --rate times a minute over --topics x --partitions,
// killed, stopped and replaced at random, then checks that kaelixd's
// descriptors, goroutines and region files are back where they started,
// that no slot leaked and that every subscriber received.
//
//	kaelix-soak --churn [--duration 10m] [--procs 50] [--rate 1000] [--topics 64] [--partitions 4]
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"github.com/kaelix-io/kaelix/internal/cli"
	"github.com/kaelix-io/kaelix/internal/soak"
	"github.com/kaelix-io/kaelix/shm"
)

// CLI is kaelix-soak's grammar: one command, its flags.
type CLI struct {
	cli.Format
	Duration   time.Duration `help:"Length of the chaos (or churn) phase." default:"10m"`
	KillEvery  time.Duration `name:"kill-every" help:"Mean time between chaos actions." default:"500ms"`
	EvictAfter time.Duration `name:"evict-after" help:"kaelixd's daemon.evict_stalled_after." default:"1s"`
	Seed       uint64        `help:"Random seed (0: from the clock)." default:"0"`
	Dir        string        `help:"Run directory for logs, ledger and socket (default: a new temp dir)." placeholder:"DIR"`
	PaceEvery  int           `name:"pace-every" help:"Publishers sleep 1ms every N records." default:"16"`
	HugePages  shm.Policy    `name:"hugepages" help:"kaelixd's shm.hugepages for the soaked rings: auto, required or off (default off)." default:"off" placeholder:"auto|required|off"`

	Churn      bool `help:"Run the client churn soak instead."`
	Procs      int  `help:"Churn: client processes alive at once." default:"50"`
	Rate       int  `help:"Churn: attach/detach cycles a minute, over all processes." default:"1000"`
	Topics     int  `help:"Churn: topics." default:"64"`
	Partitions int  `help:"Churn: partitions per topic." default:"4"`

	Version kong.VersionFlag `help:"Print the version (module, commit, Go, protocol) and exit."`
}

func main() {
	soak.MaybeChild() // child processes are this binary in another role
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// report is what both soaks return.
type report interface {
	WriteTable(io.Writer)
	Failed() bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c CLI
	if _, code, ok := cli.Parse("kaelix-soak", "Kaelix's soak: real kaelixd, publishers and subscribers under random kills, stops and restarts; --churn: the client churn soak.\n\n"+
		"Exit codes: 0 every invariant held, 1 one broke or the harness failed, 2 usage.",
		&c, args, stdout, stderr, nil); !ok {
		return code
	}
	var rep report
	var err error
	if c.Churn {
		rep, err = soak.RunChurn(ctx, soak.ChurnOptions{Duration: c.Duration, Seed: c.Seed, Dir: c.Dir, Log: stderr,
			Procs: c.Procs, Rate: c.Rate, Topics: c.Topics, Partitions: c.Partitions, HugePages: c.HugePages})
	} else {
		rep, err = soak.Run(ctx, soak.Options{Duration: c.Duration, KillEvery: c.KillEvery, EvictAfter: c.EvictAfter,
			Seed: c.Seed, Dir: c.Dir, PaceEvery: c.PaceEvery, Log: stderr, HugePages: c.HugePages})
	}
	if err != nil {
		fmt.Fprintln(stderr, "kaelix-soak:", err)
		return cli.ExitFailure
	}
	if c.JSON() {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "kaelix-soak:", err)
			return cli.ExitFailure
		}
	} else {
		rep.WriteTable(stdout)
	}
	if rep.Failed() {
		return cli.ExitFailure
	}
	return cli.ExitOK
}

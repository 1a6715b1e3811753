// Command kaelix-soak runs Kaelix's soak: real kaelixd, publisher and
// subscriber processes over every ring kind and policy, with random
// SIGKILLs, SIGSTOPs and restarts of every role, then prints a table of
// records, corrupt, duplicated and lost ones (by policy), unblocked
// claims, evictions and latency. Exit status 1 if any invariant broke
// (see package internal/soak), 2 for bad flags or a harness failure.
//
//	kaelix-soak [-duration 10m] [-kill-every 500ms] [-evict-after 1s] [-seed N] [-dir DIR]
//
// With -churn it runs the client churn soak instead (internal/soak
// RunChurn): -procs client processes attaching to and detaching from
// random topics -rate times a minute over -topics x -partitions, killed,
// stopped and replaced at random, then checks that kaelixd's descriptors,
// goroutines and region files are back where they started, that no slot
// leaked and that every subscriber received.
//
//	kaelix-soak -churn [-duration 10m] [-procs 50] [-rate 1000] [-topics 64] [-partitions 4]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kaelix-io/kaelix/internal/soak"
	"github.com/kaelix-io/kaelix/internal/version"
)

func main() {
	soak.MaybeChild() // child processes are this binary in another role
	var o soak.Options
	flag.DurationVar(&o.Duration, "duration", 10*time.Minute, "length of the chaos phase")
	flag.DurationVar(&o.KillEvery, "kill-every", 500*time.Millisecond, "mean time between chaos actions")
	flag.DurationVar(&o.EvictAfter, "evict-after", time.Second, "kaelixd's daemon.evict_stalled_after")
	flag.Uint64Var(&o.Seed, "seed", 0, "random seed (0: from the clock)")
	flag.StringVar(&o.Dir, "dir", "", "run directory for logs, ledger and socket (default: a new temp dir)")
	flag.IntVar(&o.PaceEvery, "pace-every", 16, "publishers sleep 1ms every N records")
	churn := flag.Bool("churn", false, "run the client churn soak instead")
	var co soak.ChurnOptions
	flag.IntVar(&co.Procs, "procs", 50, "churn: client processes alive at once")
	flag.IntVar(&co.Rate, "rate", 1000, "churn: attach/detach cycles a minute, over all processes")
	flag.IntVar(&co.Topics, "topics", 64, "churn: topics")
	flag.IntVar(&co.Partitions, "partitions", 4, "churn: partitions per topic")
	showVersion := flag.Bool("version", false, "print the version (module, commit, Go, protocol) and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version.Get().String("kaelix-soak"))
		return
	}
	o.Log = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *churn {
		co.Duration, co.Seed, co.Dir, co.Log = o.Duration, o.Seed, o.Dir, os.Stderr
		rep, err := soak.RunChurn(ctx, co)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kaelix-soak:", err)
			os.Exit(2)
		}
		rep.WriteTable(os.Stdout)
		if rep.Failed() {
			os.Exit(1)
		}
		return
	}
	rep, err := soak.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kaelix-soak:", err)
		os.Exit(2)
	}
	rep.WriteTable(os.Stdout)
	if rep.Failed() {
		os.Exit(1)
	}
}

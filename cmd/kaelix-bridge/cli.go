package main

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/alecthomas/kong"

	kcli "github.com/kaelix-io/kaelix/internal/cli"
)

// CLI is kaelix-bridge's grammar: global flags and one field per verb,
// each a struct in its own file with a Run(*Globals) error method.
type CLI struct {
	Globals

	Run         RunCmd         `cmd:"" help:"Run the configured rules until SIGINT or SIGTERM."`
	CheckConfig CheckConfigCmd `cmd:"" name:"check-config" help:"Validate a configuration file (every error at once; exit 2 if any)."`
	Status      StatusCmd      `cmd:"" help:"Show a running bridge's rules and counters (exit 3 if degraded)."`

	Version kong.VersionFlag `help:"Print the version (module, commit, Go, protocol) and exit."`
}

// Globals are the flags every verb takes and what verbs share.
type Globals struct {
	Format  string        `help:"Output format: text or json." enum:"text,json" default:"text" short:"o"`
	Timeout time.Duration `help:"Bound on status requests." default:"5s"`

	ctx    context.Context // cancelled by SIGINT/SIGTERM
	stdout io.Writer
	stderr io.Writer
}

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2 // also an invalid configuration
	exitDegraded = 3
)

// codedError carries an exit code other than exitFailure.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func run(args []string, stdout, stderr io.Writer) int {
	var cli CLI
	g := &cli.Globals
	g.stdout, g.stderr = stdout, stderr
	kctx, code, ok := kcli.Parse("kaelix-bridge", "Carries Kaelix topics over NATS (core or JetStream) to other hosts and back.\n\n"+
		"Exit codes: 0 ok, 1 failure, 2 usage or invalid configuration, 3 (status) degraded.",
		&cli, args, stdout, stderr, nil)
	if !ok {
		return code
	}
	return kcli.Run(context.Background(), "kaelix-bridge", kctx, stderr, func(ctx context.Context) { g.ctx = ctx }, func(err error) (int, string) {
		var ce *codedError
		if errors.As(err, &ce) {
			return ce.code, ""
		}
		return exitFailure, ""
	}, g)
}

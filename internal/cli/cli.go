// Package cli is the start every Kaelix command built on kong shares
// (kaelix-bench, kaelix-soak, kaelix-proc, kaelix-telemetry): one parse
// with the same conventions as kaelixctl.
//
//   - -h and --help print the help to stdout and exit 0; --version prints
//     the build (kong.VersionFlag with the "version" var) and exits 0.
//   - A usage error (unknown flag or command, missing argument, bad value)
//     prints "NAME: error" and a hint to stderr and exits ExitUsage (2).
//   - Output formats are --format text|json with -o as its short form
//     (Format), and huge pages --hugepages auto|required|off (shm.Policy
//     reads those words).
//
// Parse never ends the process itself: it returns the code, so a command's
// run function, and its tests, return it.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/kaelix-io/kaelix/internal/version"
)

// Exit codes every command shares.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Format is the --format flag, text or json, -o for short; embed it in a
// command's globals.
type Format struct {
	Format string `help:"Output format: text or json." enum:"text,json" default:"text" short:"o"`
}

// JSON reports whether --format json was given.
func (f Format) JSON() bool { return f.Format == "json" }

// exitRequest is what the Exit hook panics with during Parse (help,
// version), so that Parse returns the code instead of ending the process.
type exitRequest int

// Parse parses args into grammar (a pointer to a kong struct) for command
// name with description. vars are added to kong's ("version" is set to
// the build's). It returns the parsed context and ok, or ok false and
// the code to exit with: ExitOK after -h/--help/--version (printed to
// stdout), ExitUsage after a usage error (printed to stderr), ExitFailure
// if the grammar itself is bad.
func Parse(name, description string, grammar any, args []string, stdout, stderr io.Writer, vars kong.Vars, opts ...kong.Option) (kctx *kong.Context, code int, ok bool) {
	all := kong.Vars{"version": version.Get().String(name)}
	for k, v := range vars {
		all[k] = v
	}
	opts = append([]kong.Option{
		kong.Name(name),
		kong.Description(description),
		kong.Writers(stdout, stderr),
		kong.Exit(func(c int) { panic(exitRequest(c)) }),
		all,
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	}, opts...)
	parser, err := kong.New(grammar, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "%s: internal error: %v\n", name, err)
		return nil, ExitFailure, false
	}
	defer func() {
		if r := recover(); r != nil {
			e, isExit := r.(exitRequest)
			if !isExit {
				panic(r)
			}
			kctx, code, ok = nil, int(e), false
		}
	}()
	kctx, err = parser.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		fmt.Fprintf(stderr, "  run `%s --help` for usage\n", name)
		return nil, ExitUsage, false
	}
	return kctx, ExitOK, true
}

// Run runs the parsed command: its Run method gets bind, and a context
// derived from parent and cancelled by SIGINT or SIGTERM is handed to
// setCtx first (for the command's globals). A failure prints "NAME: error" to stderr, then the hint if
// describe gives one; describe maps the error to the exit code (nil
// describe: ExitFailure for every error). Returns ExitOK otherwise.
func Run(parent context.Context, name string, kctx *kong.Context, stderr io.Writer, setCtx func(context.Context), describe func(error) (code int, hint string), bind ...any) int {
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	setCtx(ctx)
	err := kctx.Run(bind...)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	if describe == nil {
		return ExitFailure
	}
	code, hint := describe(err)
	if hint != "" {
		fmt.Fprintf(stderr, "  %s\n", hint)
	}
	return code
}

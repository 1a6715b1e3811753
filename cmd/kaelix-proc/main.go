// Command kaelix-proc hosts stream processor pipelines declared in TOML,
// built from the built-in plugins (stamp, filter, route, sample, window):
// a Kaelix client that reads its input topics' rings in place and
// publishes into its outputs' rings (package processor/host documents the
// file).
//
//	kaelix-proc [--socket PATH] run --config FILE [--stats-interval 1s]
//	kaelix-proc check --config FILE
//	kaelix-proc plugins
//
// Exit codes: 0 ok (also when stopped by SIGINT/SIGTERM), 1 failure,
// 2 usage or a bad configuration, 3 broker not running.
package main

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/alecthomas/kong"

	"github.com/kaelix-io/kaelix/client"
	kcli "github.com/kaelix-io/kaelix/internal/cli"
)

// Globals are the flags every verb takes.
type Globals struct {
	Socket   string `help:"kaelixd's control socket (default ${default_socket})." env:"KAELIX_SOCKET" placeholder:"PATH"`
	LogLevel string `help:"Log level: debug, info, warn, error." default:"info" enum:"debug,info,warn,error"`

	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
}

// CLI is the grammar.
type CLI struct {
	Globals
	Run     RunCmd           `cmd:"" help:"Run the pipelines of a configuration file."`
	Check   CheckCmd         `cmd:"" help:"Validate a configuration file (plugins are initialised with their config, nothing connects)."`
	Plugins PluginsCmd       `cmd:"" help:"List the built-in plugins."`
	Version kong.VersionFlag `help:"Print the version (module, commit, Go, protocol) and exit."`
}

// errConfig marks a bad configuration (exit 2).
var errConfig = errors.New("bad configuration")

func main() { os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cli CLI
	cli.stdout, cli.stderr = stdout, stderr
	kctx, code, ok := kcli.Parse("kaelix-proc", "Run Kaelix stream processor pipelines (built-in plugins) declared in TOML.",
		&cli, args, stdout, stderr, kong.Vars{"default_socket": client.DefaultSocketPath()})
	if !ok {
		return code
	}
	return kcli.Run(ctx, "kaelix-proc", kctx, stderr, func(ctx context.Context) { cli.ctx = ctx }, func(err error) (int, string) {
		switch {
		case errors.Is(err, errConfig):
			return 2, ""
		case errors.Is(err, client.ErrBrokerNotRunning):
			return 3, ""
		}
		return 1, ""
	}, &cli.Globals)
}

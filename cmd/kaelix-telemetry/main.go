// Command kaelix-telemetry is the demo behind `make run`: a publisher that
// samples this host's real counters from /proc (CPU, memory, network, disk)
// many times a second and publishes each sample to a Kaelix topic, and a
// subscriber that prints them live.
//
//	kaelix-telemetry [--socket PATH] [--topic NAME] pub [--hz 20] [--count N]
//	kaelix-telemetry [--socket PATH] [--topic NAME] sub [--every 250ms] [--count N]
//	kaelix-telemetry [--socket PATH] --topic host.telemetry.1s agg [--count N]
//
// Each record's payload is one Sample as JSON; its headers are host (the
// hostname), kind ("host.sample"), schema ("kaelix.telemetry/v1") and
// content-type ("application/json"). The publisher opens or creates the
// topic (default host.telemetry) with the daemon's defaults.
//
// Exit codes: 0 ok (also when stopped by SIGINT/SIGTERM), 1 failure,
// 2 usage, 3 broker not running.
package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"

	"github.com/alecthomas/kong"

	"github.com/kaelix-io/kaelix/client"
	kcli "github.com/kaelix-io/kaelix/internal/cli"
)

// Record headers set by the publisher.
const (
	headerHost        = "host"
	headerKind        = "kind"
	headerSchema      = "schema"
	headerContentType = "content-type"
	kindSample        = "host.sample"
	schemaV1          = "kaelix.telemetry/v1"
)

// Globals are the flags both verbs take.
type Globals struct {
	Socket string `help:"kaelixd's control socket (default ${default_socket})." env:"KAELIX_SOCKET" placeholder:"PATH"`
	Topic  string `help:"Topic to publish to or read from." default:"host.telemetry"`

	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
}

func (g *Globals) connect() (*client.Client, error) {
	return client.Connect(g.ctx, client.Options{
		SocketPath: g.Socket,
		Name:       "kaelix-telemetry",
		Logger:     slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
}

// CLI is the grammar.
type CLI struct {
	Globals
	Pub PubCmd `cmd:"" help:"Sample /proc and publish the samples."`
	Sub SubCmd `cmd:"" help:"Print the samples live."`
	Agg AggCmd `cmd:"" help:"Print the window aggregates a processor makes of the samples (--topic host.telemetry.1s)."`

	Version kong.VersionFlag `help:"Print the version (module, commit, Go, protocol) and exit."`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var cli CLI
	cli.stdout, cli.stderr = stdout, stderr
	kctx, code, ok := kcli.Parse("kaelix-telemetry", "Publish this host's /proc counters to a Kaelix topic, or print them live.",
		&cli, args, stdout, stderr, kong.Vars{"default_socket": client.DefaultSocketPath()})
	if !ok {
		return code
	}
	return kcli.Run(context.Background(), "kaelix-telemetry", kctx, stderr, func(ctx context.Context) { cli.ctx = ctx }, func(err error) (int, string) {
		if errors.Is(err, client.ErrBrokerNotRunning) {
			return 3, ""
		}
		return 1, ""
	}, &cli.Globals)
}

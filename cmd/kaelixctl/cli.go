package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/alecthomas/kong"

	"github.com/kaelix-io/kaelix/client"
	kcli "github.com/kaelix-io/kaelix/internal/cli"
)

// CLI is kaelixctl's grammar: the global flags and one field per verb. Each
// verb is a struct in its own file with a Run(*Globals) error method.
type CLI struct {
	Globals

	Topics     TopicsCmd        `cmd:"" help:"List, create, inspect and delete topics."`
	Pub        PubCmd           `cmd:"" help:"Publish messages: the arguments, else stdin lines (one message per line), or --file."`
	Sub        SubCmd           `cmd:"" help:"Subscribe and print records until --count or Ctrl-C."`
	Daemon     DaemonCmd        `cmd:"" help:"Inspect kaelixd."`
	Config     ConfigCmd        `cmd:"" help:"Validate, show and reload kaelixd's configuration."`
	Health     HealthCmd        `cmd:"" help:"kaelixd's health (exit 0 healthy, 1 degraded, 2 unhealthy, 3 unknown)."`
	Bridge     BridgeCmd        `cmd:"" help:"The bridges kaelixd runs ([[bridges]]) and their rules, read from each bridge's status file."`
	Processors ProcessorsCmd    `cmd:"" help:"The stream processors kaelixd runs ([[processors]]): state, limits, counts; restart one."`
	Record     RecordCmd        `cmd:"" help:"Record a topic's records (payload, headers, partition, sequence, timestamps) to a file."`
	Replay     ReplayCmd        `cmd:"" help:"Publish a recording to a topic, keeping its spacing (--speed 1x) or faster."`
	Hz         HzCmd            `cmd:"" help:"The rate records arrive at, and the gaps between them, every second (like iox2 service hz)."`
	Latency    LatencyCmd       `cmd:"" help:"Publish-to-receive latency percentiles of live records, from their timestamps."`
	Doctor     DoctorCmd        `cmd:"" help:"Check this host before going live (huge pages, memlock, /dev/shm, membarrier, THP, CPU governor and isolation, logind RemoveIPC, socket directory): exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."`
	Completion CompletionCmd    `cmd:"" help:"Print a shell completion script: bash, zsh or fish (topic names come from kaelixd)."`
	Complete   CompleteCmd      `cmd:"" name:"__complete" hidden:"" help:"Completion candidates for the words given (used by the completion scripts)."`
	Stat       StatCmd          `cmd:"" help:"Counters, slots and backlog read straight from shared memory, with or without a live kaelixd (--watch to refresh)."`
	Vers       kong.VersionFlag `name:"version" help:"Print the version (module, commit, Go, protocol) and exit."`
}

// TopicsCmd groups the topic verbs.
type TopicsCmd struct {
	List   TopicsListCmd   `cmd:"" default:"1" help:"List topics with their live counters and publish rate."`
	Create TopicsCreateCmd `cmd:"" help:"Create a topic (no flags: 1 partition, mpmc, 1 MiB, 4 KiB messages, block)."`
	Delete TopicsDeleteCmd `cmd:"" help:"Delete a topic and its shared-memory regions."`
	Info   TopicsInfoCmd   `cmd:"" help:"Describe one topic, partition by partition."`
	Stats  TopicsStatsCmd  `cmd:"" help:"Ring counters per partition, read from shared memory (--watch to refresh)."`
}

// DaemonCmd groups the daemon verbs.
type DaemonCmd struct {
	Status DaemonStatusCmd `cmd:"" help:"Show the daemon's pid, uptime, paths, heartbeat and counts."`
}

// Globals are the flags every verb takes, and what the verbs share: the
// process's standard streams and a context cancelled by SIGINT or SIGTERM.
// Verbs run on the main goroutine, one at a time.
type Globals struct {
	Socket  string        `help:"kaelixd's control socket (default ${default_socket})." env:"KAELIX_SOCKET" placeholder:"PATH"`
	Format  string        `help:"Output format: text or json." enum:"text,json" default:"text" short:"o"`
	Timeout time.Duration `help:"Bound on connecting and on each control request." default:"5s"`

	ctx    context.Context // cancelled by SIGINT/SIGTERM
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// json reports whether --format json was given.
func (g *Globals) json() bool { return g.Format == "json" }

// connect dials kaelixd. The caller closes the Client. Control requests
// made with g.reqCtx are bounded by --timeout; reconnect notices (when the
// daemon restarts under a running sub or pub) go to stderr.
func (g *Globals) connect() (*client.Client, error) {
	ctx, cancel := g.reqCtx()
	defer cancel()
	return client.Connect(ctx, client.Options{
		SocketPath: g.Socket,
		Name:       "kaelixctl",
		// Info: "lost the connection; reconnecting" (a warning) is followed
		// by "reconnected" (info) when the daemon is back.
		Logger: slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
}

// publisher connects to kaelixd and attaches a publisher to topic (the
// attach bounded by --timeout), for pub and replay. done closes the
// publisher, then the connection; on error nothing is left open.
func (g *Globals) publisher(topic string) (pub *client.Publisher, done func(), err error) {
	c, err := g.connect()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := g.reqCtx()
	pub, err = c.NewPublisher(ctx, topic, client.PublisherOptions{})
	cancel()
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return pub, func() { pub.Close(); c.Close() }, nil
}

// reqCtx returns a context for one control request, bounded by --timeout.
func (g *Globals) reqCtx() (context.Context, context.CancelFunc) {
	if g.Timeout <= 0 {
		return context.WithCancel(g.ctx)
	}
	return context.WithTimeout(g.ctx, g.Timeout)
}

// exitRequest is what a verb panics with to end with a code of its own
// (health, doctor), so that run (and tests calling it in-process) return
// the code instead of ending the process.
type exitRequest int

// run parses args, runs the verb and returns the exit code. Errors go to
// stderr as "kaelixctl: message", with a remedy where one is known.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	var cli CLI
	g := &cli.Globals
	g.stdin, g.stdout, g.stderr = stdin, stdout, stderr
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(exitRequest)
			if !ok {
				panic(r)
			}
			code = int(e)
		}
	}()
	kctx, code, ok := kcli.Parse("kaelixctl", "Kaelix's command-line tool: topics, publishing and subscribing from the shell, and the daemon's status.\n\n"+
		"Exit codes: 0 ok, 1 other failure, 2 usage, 3 broker not running, 4 topic not found, "+
		"5 invalid input or conflict, 6 permission denied, 7 sub evicted for holding publishers back, "+
		"8 kaelixd not answering (stopped, hung or overloaded).",
		&cli, negativeValues(recordArgs(args)), stdout, stderr, kong.Vars{"default_socket": client.DefaultSocketPath()})
	if !ok {
		return code
	}
	return kcli.Run(context.Background(), "kaelixctl", kctx, stderr, func(ctx context.Context) { g.ctx = ctx },
		func(err error) (int, string) { return exitCode(err), hint(err) }, g)
}

// interrupted reports whether err is only the signal context ending, which
// a streaming verb (pub, sub) treats as a clean stop.
func (g *Globals) interrupted(err error) bool {
	return g.ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, g.ctx.Err()))
}

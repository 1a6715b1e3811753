// Command kaelixd is Kaelix's broker daemon. See package daemon; its
// configuration is package daemon/config (configs/kaelixd.example.toml is a
// commented example).
//
//	kaelixd [--config FILE] [--socket PATH] [--state-dir DIR] [--shm-dir NAME]
//	        [--hugepages auto|required|off] [--http-host H] [--http-port N]
//	        [--log-level L] [--set KEY=VALUE ...] [--ephemeral] [-v]
//	kaelixd --check-config FILE
//
// Sources, highest first: flags (--set network.port=9191 reaches any
// scalar key; the named flags are shorthands), KAELIX_* environment
// variables (KAELIX_NETWORK_PORT), the --config file, defaults.
// --check-config validates FILE (with the environment and flags applied),
// checks the host against it, prints every problem and exits 0 or 2.
//
// Signals (the table is daemon.HandleSignals):
//
//	SIGINT, SIGTERM   stop cleanly: close the socket, disconnect clients, keep
//	                  regions for the next daemon (remove them with --ephemeral)
//	SIGHUP            reload the configuration file (all or nothing)
//	SIGUSR1           write every goroutine's stack to stderr, keep running
//
// The file is also watched (--no-watch turns that off) and `kaelixctl
// config reload` asks for a reload.
//
// Start-up: kaelixd checks the host, makes its directories, takes its
// locks, binds the control socket and the HTTP listener, then adopts the
// registry and creates the declared topics before it accepts anyone. A
// step that fails prints one error naming the resource (the path, address
// or key) and exits at once, leaving nothing it made behind. A busy HTTP
// port (network.host:network.port, 127.0.0.1:9090 by default, also
// Prometheus's) is fatal by design: the listener serves /healthz and
// /metrics, which whoever left it on relies on; choose another port
// (--http-port N, 0 picks a free one) or turn it off (--set
// network.enabled=false). SIGINT or SIGTERM during start-up stops it
// cleanly (exit 0).
//
// Exit codes: 0 clean stop (or a valid --check-config), 1 runtime or
// start-up error (socket, HTTP listener, declared topics), 2 bad flags or
// config, or a directory the host does not let it make or write, 3 another
// daemon already runs on that state dir, region directory or control
// socket (the message names its pid when known).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/daemon/config"
	"github.com/kaelix-io/kaelix/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// CLI is kaelixd's command line. The shorthand flags are strings so that
// "not given" (empty) is told from a value; each maps to one key.
type CLI struct {
	Config      string           `help:"TOML configuration file (watched for changes)." type:"path" placeholder:"FILE"`
	CheckConfig string           `name:"check-config" help:"Validate FILE and check this host against it, then exit (0 ok, 2 errors)." type:"path" placeholder:"FILE"`
	Socket      string           `help:"Control socket path (daemon.socket_path)." placeholder:"PATH"`
	StateDir    string           `name:"state-dir" help:"State directory (daemon.state_dir; default: the socket's directory)." placeholder:"DIR"`
	ShmDir      string           `name:"shm-dir" help:"Region directory name under /dev/shm and hugetlbfs (shm.dir_name)." placeholder:"NAME"`
	HugePages   string           `name:"hugepages" help:"Huge pages: auto, required or off (shm.hugepages)." placeholder:"POLICY"`
	HTTPHost    string           `name:"http-host" help:"HTTP listener host for /healthz and /metrics (network.host)." placeholder:"HOST"`
	HTTPPort    string           `name:"http-port" help:"HTTP listener port (network.port; 0 picks one)." placeholder:"N"`
	LogLevel    string           `name:"log-level" help:"debug, info, warn or error (telemetry.logging.level)." placeholder:"LEVEL"`
	Set         []string         `help:"Set any key: --set network.port=9191 (repeatable)." placeholder:"KEY=VALUE"`
	Ephemeral   bool             `help:"Remove all regions and the registry on a clean exit."`
	NoWatch     bool             `name:"no-watch" help:"Do not watch the config file (reload with SIGHUP or kaelixctl config reload)."`
	Verbose     bool             `short:"v" help:"Debug logging (telemetry.logging.level=debug)."`
	Version     kong.VersionFlag `help:"Print the version (module, commit, Go, protocol) and exit."`
}

// settings turns the flags given into config settings, in precedence
// order (later wins: --set over the shorthands).
func (c *CLI) settings() ([]config.Setting, error) {
	var out []config.Setting
	for _, s := range []struct{ flag, key, val string }{
		{"--socket", "daemon.socket_path", c.Socket},
		{"--state-dir", "daemon.state_dir", c.StateDir},
		{"--shm-dir", "shm.dir_name", c.ShmDir},
		{"--hugepages", "shm.hugepages", c.HugePages},
		{"--http-host", "network.host", c.HTTPHost},
		{"--http-port", "network.port", c.HTTPPort},
		{"--log-level", "telemetry.logging.level", c.LogLevel},
	} {
		if s.val != "" {
			out = append(out, config.Setting{Key: s.key, Value: s.val, Flag: s.flag + "=" + s.val})
		}
	}
	if c.Verbose {
		out = append(out, config.Setting{Key: "telemetry.logging.level", Value: "debug", Flag: "-v"})
	}
	for _, kv := range c.Set {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("--set %q: want KEY=VALUE", kv)
		}
		out = append(out, config.Setting{Key: strings.TrimSpace(k), Value: v, Flag: "--set " + kv})
	}
	return out, nil
}

type exitCode int

func run(args []string, stdout, stderr io.Writer) (code int) {
	var cli CLI
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(exitCode)
			if !ok {
				panic(r)
			}
			code = int(c)
		}
	}()
	parser, err := kong.New(&cli, kong.Name("kaelixd"),
		kong.Description("Kaelix's broker daemon: topics in shared memory, a control socket, health and metrics over HTTP."),
		kong.Writers(stdout, stderr), kong.Exit(func(c int) { panic(exitCode(c)) }),
		kong.Vars{"version": version.Get().String("kaelixd")})
	if err != nil {
		fmt.Fprintln(stderr, "kaelixd:", err)
		return 2
	}
	if _, err := parser.Parse(args); err != nil {
		fmt.Fprintln(stderr, "kaelixd:", err)
		return 2
	}
	flags, err := cli.settings()
	if err != nil {
		fmt.Fprintln(stderr, "kaelixd:", err)
		return 2
	}
	loader := &config.Loader{Path: cli.Config, Flags: flags}
	if cli.CheckConfig != "" {
		loader.Path = cli.CheckConfig
		return checkConfig(loader, stdout, stderr)
	}
	ld, err := loader.Load()
	if err != nil {
		fmt.Fprintln(stderr, "kaelixd:", err)
		return 2
	}
	for _, w := range ld.Warnings {
		fmt.Fprintln(stderr, "kaelixd: warning:", w)
	}
	if n := ld.Config.Runtime.WorkerThreads; n > 0 {
		runtime.GOMAXPROCS(n)
	}
	d, err := daemon.New(daemon.Config{
		Config: ld.Config, Loader: loader, Loaded: ld, RemoveOnExit: cli.Ephemeral,
		WatchFile: cli.Config != "" && !cli.NoWatch,
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := d.HandleSignals(ctx, cancel)
	defer release()
	// [[bridges]] run once kaelixd serves, and stop before it returns.
	bridgesDone := make(chan struct{})
	go func() {
		defer close(bridgesDone)
		select {
		case <-d.Ready():
		case <-ctx.Done():
			return
		}
		stopBridges := superviseBridges(d, d.Logger())
		<-ctx.Done()
		stopBridges()
	}()
	defer func() { cancel(); <-bridgesDone }()
	if err := d.Run(ctx); err != nil {
		fmt.Fprintln(stderr, err)
		switch {
		case errors.Is(err, daemon.ErrAlreadyRunning):
			return 3
		case errors.Is(err, config.ErrInvalid):
			return 2
		}
		return 1
	}
	return 0
}

// checkConfig is --check-config: load, validate and check the host; print
// every problem; 0 when the daemon would start, 2 otherwise.
func checkConfig(loader *config.Loader, stdout, stderr io.Writer) int {
	ld, err := loader.Load()
	if err != nil {
		fmt.Fprintln(stderr, "kaelixd:", err)
		return 2
	}
	findings := config.Check(ld.Config, config.LoadHost(ld.Config, ""))
	for _, f := range findings {
		fmt.Fprintln(stderr, "kaelixd:", f)
	}
	if config.CheckErrors(findings) != nil {
		return 2
	}
	fmt.Fprintf(stdout, "%s: configuration valid (%d warnings)\n", loader.Path, len(findings))
	return 0
}

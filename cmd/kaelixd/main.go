// Command kaelixd is Kaelix's broker daemon. See package daemon.
//
//	kaelixd [--socket PATH] [--state-dir DIR] [--shm-dir NAME] [--hugepages auto|required|off] [--ephemeral]
//
// Signals:
//
//	SIGINT, SIGTERM   stop cleanly: close the socket, disconnect clients, keep
//	                  regions for the next daemon (remove them with --ephemeral)
//
// Exit codes: 0 clean stop, 1 runtime error, 2 bad flags or config,
// 3 another daemon already runs on that state dir.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/shm"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg := daemon.Default()
	fs := flag.NewFlagSet("kaelixd", flag.ContinueOnError)
	socket := fs.String("socket", cfg.SocketPath, "control socket path")
	stateDir := fs.String("state-dir", "", "state directory (default: the socket's directory)")
	shmDir := fs.String("shm-dir", cfg.Shm.DirName, "region base directory name under /dev/shm (and hugetlbfs)")
	huge := fs.String("hugepages", cfg.Shm.HugePages.String(), "huge pages: auto, required or off")
	ephemeral := fs.Bool("ephemeral", false, "remove all regions and the registry on a clean exit")
	verbose := fs.Bool("v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg.SocketPath = *socket
	cfg.StateDir = filepath.Dir(*socket)
	if *stateDir != "" {
		cfg.StateDir = *stateDir
	}
	cfg.Shm.DirName = *shmDir
	cfg.RemoveOnExit = *ephemeral
	p, err := shm.ParsePolicy(*huge)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kaelixd:", err)
		return 2
	}
	cfg.Shm.HugePages = p
	d, err := daemon.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	// The signal table: SIGINT and SIGTERM cancel ctx, which stops Run.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := d.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if errors.Is(err, daemon.ErrAlreadyRunning) {
			return 3
		}
		return 1
	}
	return 0
}

package main

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/kaelix-io/kaelix/bridge/bridgestat"
	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/daemon/config"
	"github.com/kaelix-io/kaelix/internal/supervise"
)

// superviseBridges keeps the [[bridges]] of d's configuration running,
// applying each reload's set, until the returned stop is called (which
// stops them: SIGTERM, then SIGKILL after 5s).
func superviseBridges(d *daemon.Daemon, log *slog.Logger) (stop func()) {
	sup := supervise.NewSet(supervise.SetOptions{Stdout: os.Stderr, Stderr: os.Stderr, Logger: log, MaxBackoff: 30 * time.Second})
	apply := func(c config.Config) {
		started, stopped, restarted, err := sup.Apply(bridgeSpecs(c, d.StateDir()))
		if err != nil {
			log.Error("bridges", "err", err)
			return
		}
		if len(started)+len(stopped)+len(restarted) > 0 {
			log.Info("bridges applied", "started", started, "stopped", stopped, "restarted", restarted)
		}
	}
	apply(d.Config())
	cancel := d.OnConfigChange(func(ch daemon.ConfigChange) { apply(ch.New) })
	return func() { cancel(); sup.Close() }
}

// bridgeSpecs turns [[bridges]] into processes (host network, no limits,
// never given up on), each writing its status file in stateDir
// (bridgestat.StatusPath), where kaelixctl bridge reads it.
func bridgeSpecs(c config.Config, stateDir string) []supervise.Spec {
	var out []supervise.Spec
	for _, b := range c.Bridges {
		bin := b.Binary
		if bin == "" {
			bin = defaultBridgeBinary()
		}
		out = append(out, supervise.Spec{Name: b.Name, Path: bin, Args: []string{"run", "--config", b.Config, "--socket", c.Daemon.SocketPath,
			"--status-file", bridgestat.StatusPath(stateDir, b.Name)},
			Network: true}) // a bridge's job is the network
	}
	return out
}

// defaultBridgeBinary is kaelix-bridge beside this executable, else the
// one on $PATH, else the bare name (the start error then says so).
func defaultBridgeBinary() string {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "kaelix-bridge")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("kaelix-bridge"); err == nil {
		return p
	}
	return "kaelix-bridge"
}

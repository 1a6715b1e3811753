package main

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/internal/supervise"
	"github.com/kaelix-io/kaelix/processor/builtin"
	"github.com/kaelix-io/kaelix/processor/host"
)

// RunCmd runs the pipelines until SIGINT/SIGTERM.
type RunCmd struct {
	Config        string        `short:"c" required:"" help:"TOML file declaring [runtime] and [[pipelines]]." type:"existingfile" placeholder:"FILE"`
	StatsInterval time.Duration `help:"Print each pipeline's counts to stderr this often (0: never)." default:"0s"`
	Counters      string        `help:"Store the totals in this counters region (a file; package processor/host) every 100ms: how kaelixd reads a processor's counts." placeholder:"FILE"`
}

func (cmd *RunCmd) Run(g *Globals) error {
	// Started by kaelixd with a start gate: wait until its limits (cgroup,
	// rlimits, affinity) are applied before loading any plugin.
	if err := supervise.WaitGate(); err != nil {
		return err
	}
	cfg, err := host.Load(cmd.Config)
	if err != nil {
		return fmt.Errorf("%w:\n%v", errConfig, err)
	}
	var level slog.Level
	level.UnmarshalText([]byte(g.LogLevel))
	logger := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
	c, err := client.Connect(g.ctx, client.Options{SocketPath: g.Socket, Name: "kaelix-proc", Logger: logger})
	if err != nil {
		return err
	}
	defer c.Close()
	h, err := host.New(cfg, c, logger)
	if err != nil {
		return err
	}
	if cmd.StatsInterval > 0 {
		go func() {
			t := time.NewTicker(cmd.StatsInterval)
			defer t.Stop()
			for {
				select {
				case <-g.ctx.Done():
					return
				case <-t.C:
					for _, s := range h.Status() {
						fmt.Fprintln(g.stderr, statusLine(s))
					}
				}
			}
		}()
	}
	exported := make(chan error, 1)
	if cmd.Counters != "" {
		go func() {
			err := host.ExportCounters(g.ctx, cmd.Counters, h)
			if err != nil {
				logger.Error("counters region; running without", "err", err)
			}
			exported <- err
		}()
	} else {
		exported <- nil
	}
	fmt.Fprintf(g.stdout, "kaelix-proc: %d pipelines from %s\n", len(cfg.Pipelines), cmd.Config)
	err = h.Run(g.ctx)
	if cerr := <-exported; cerr != nil && err == nil {
		err = fmt.Errorf("counters: %w", cerr)
	}
	for _, s := range h.Status() {
		fmt.Fprintln(g.stdout, statusLine(s))
	}
	return err
}

func statusLine(s host.PipelineStatus) string {
	st := s.Stats
	line := fmt.Sprintf("pipeline %s %s in=%d out=%d dropped=%d failed=%d starts=%d", s.Name, s.Phase, st.In, st.Out, st.Dropped, st.Failed, s.Starts)
	if s.LastError != "" {
		line += " error=" + s.LastError
	}
	return line
}

// CheckCmd validates a configuration file.
type CheckCmd struct {
	Config string `short:"c" required:"" help:"TOML file to check." type:"existingfile" placeholder:"FILE"`
}

func (cmd *CheckCmd) Run(g *Globals) error {
	cfg, err := host.Load(cmd.Config)
	if err != nil {
		return fmt.Errorf("%w:\n%v", errConfig, err)
	}
	names := make([]string, len(cfg.Pipelines))
	for i, p := range cfg.Pipelines {
		names[i] = p.Name
	}
	fmt.Fprintf(g.stdout, "%s: ok (%d pipelines: %s)\n", cmd.Config, len(cfg.Pipelines), strings.Join(names, ", "))
	return nil
}

// PluginsCmd lists the built-ins.
type PluginsCmd struct{}

func (PluginsCmd) Run(g *Globals) error {
	for _, k := range builtin.Kinds() {
		p, _ := builtin.New(k)
		fmt.Fprintf(g.stdout, "%-8s %s\n", p.Name(), p.Version())
	}
	return nil
}

package main

import (
	"log/slog"

	"github.com/kaelix-io/kaelix/bridge"
)

// RunCmd runs a bridge.
type RunCmd struct {
	Config   string `help:"The TOML configuration file." required:"" type:"existingfile" placeholder:"FILE"`
	HTTP     string `help:"Serve /metrics, /healthz and /status here (overrides the file's http; port 0 picks one)." placeholder:"HOST:PORT"`
	Socket   string `help:"kaelixd's control socket (overrides the file's socket; kaelixd passes its own)." placeholder:"PATH"`
	Status   string `name:"status-file" help:"Rewrite this file every second with the bridge's status (overrides the file's status_file; kaelixd passes STATE_DIR/bridges/NAME.status)." placeholder:"PATH"`
	LogLevel string `help:"Log level." enum:"debug,info,warn,error" default:"info"`
}

// Run loads, checks and runs the configuration.
func (c *RunCmd) Run(g *Globals) error {
	cfg, err := bridge.Load(c.Config)
	if err != nil {
		return &codedError{exitUsage, err}
	}
	if c.HTTP != "" {
		cfg.HTTP = c.HTTP
	}
	if c.Socket != "" {
		cfg.Socket = c.Socket
	}
	if c.Status != "" {
		cfg.StatusFile = c.Status
	}
	var level slog.Level
	level.UnmarshalText([]byte(c.LogLevel))
	log := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
	b, err := bridge.New(cfg, log)
	if err != nil {
		return &codedError{exitUsage, err}
	}
	go func() {
		select {
		case <-b.Ready():
			if a := b.HTTPAddr(); a != "" {
				log.Info("serving /metrics, /healthz and /status", "addr", a)
			}
		case <-g.ctx.Done():
		}
	}()
	return b.Run(g.ctx)
}

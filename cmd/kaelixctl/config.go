package main

import (
	"fmt"
	"net"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon/config"
	"github.com/kaelix-io/kaelix/wire"
)

// ConfigCmd groups the configuration verbs.
type ConfigCmd struct {
	Validate ConfigValidateCmd `cmd:"" help:"Validate a kaelixd TOML file and check this host against it (exit 5 on errors)."`
	Show     ConfigShowCmd     `cmd:"" help:"Show kaelixd's effective configuration and where each value came from."`
	Reload   ConfigReloadCmd   `cmd:"" help:"Ask kaelixd to reload its configuration file (all or nothing)."`
}

// ConfigValidateCmd is `kaelixctl config validate FILE`: the file alone
// (no environment or flags), every error with its key and line, then the
// host checks. Exit 0 when kaelixd would start with it, 5 otherwise.
type ConfigValidateCmd struct {
	File string `arg:"" type:"existingfile" help:"The TOML file."`
}

// Run validates.
func (cmd *ConfigValidateCmd) Run(g *Globals) error {
	ld, err := (&config.Loader{Path: cmd.File, Environ: []string{}}).Load()
	if err != nil {
		return invalidf("%v", err)
	}
	findings := config.Check(ld.Config, config.LoadHost(ld.Config, ""))
	if g.json() {
		out := map[string]any{"file": cmd.File, "valid": config.CheckErrors(findings) == nil, "findings": findings}
		if err := writeJSON(g.stdout, out); err != nil {
			return err
		}
	} else {
		for _, f := range findings {
			fmt.Fprintln(g.stdout, f)
		}
	}
	if err := config.CheckErrors(findings); err != nil {
		return invalidf("%v", err)
	}
	if !g.json() {
		fmt.Fprintf(g.stdout, "%s: valid (%d warnings)\n", cmd.File, len(findings))
	}
	return nil
}

// ConfigShowCmd is `kaelixctl config show`: every key, its effective value
// and its source (default, file PATH:LINE, env NAME, flag).
type ConfigShowCmd struct {
	Changed bool `help:"Only keys not at their default."`
}

// Run prints the view.
func (cmd *ConfigShowCmd) Run(g *Globals) error {
	var v wire.ConfigView
	if err := g.control(wire.TypeConfigShow, &v); err != nil {
		return err
	}
	if cmd.Changed {
		kept := v.Entries[:0]
		for _, e := range v.Entries {
			if e.Source != "default" {
				kept = append(kept, e)
			}
		}
		v.Entries = kept
	}
	if g.json() {
		return writeJSON(g.stdout, v)
	}
	file := v.File
	if file == "" {
		file = "(none)"
	}
	fmt.Fprintf(g.stdout, "# file: %s, loaded %s\n", file, time.Unix(0, v.LoadedNS).Format(time.RFC3339))
	if r := v.LastReload; r.AtNS != 0 {
		state := "ok"
		if !r.OK {
			state = "FAILED: " + r.Error
		}
		fmt.Fprintf(g.stdout, "# last reload (%s) %s: %s\n", r.Trigger, time.Unix(0, r.AtNS).Format(time.RFC3339), state)
	}
	tw := newTable(g.stdout)
	fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE\tLIVE")
	for _, e := range v.Entries {
		live := ""
		if e.Live {
			live = "live"
		}
		val := e.Value
		if e.Effective != "" {
			val = e.Effective + " (configured " + e.Value + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Key, val, e.Source, live)
	}
	return tw.Flush()
}

// ConfigReloadCmd is `kaelixctl config reload`.
type ConfigReloadCmd struct{}

// Run asks for the reload and prints what changed; a refused reload
// (invalid file, a key not changeable live) is an error (exit 5).
func (cmd *ConfigReloadCmd) Run(g *Globals) error {
	var r wire.ConfigReload
	if err := g.control(wire.TypeConfigReload, &r); err != nil {
		return err
	}
	if g.json() {
		return writeJSON(g.stdout, r)
	}
	if len(r.Changes) == 0 {
		fmt.Fprintln(g.stdout, "reloaded: nothing changed")
		return nil
	}
	for _, c := range r.Changes {
		fmt.Fprintf(g.stdout, "%s: %s -> %s\n", c.Key, c.Old, c.New)
	}
	return nil
}

// control sends one body-less request of type typ to kaelixd over a raw
// control connection and decodes the reply into out. A refused reload
// (wire.CodeConfig) becomes an invalid-input error; a missing daemon a
// *client.BrokerNotRunningError.
func (g *Globals) control(typ wire.Type, out any) error {
	return g.controlEach(typ, func(call func(body, out any) error) error { return call(nil, out) })
}

// listTopics asks kaelixd for every topic with control's rules, page
// after page (wire.Page) over one connection, appending them to out.
func (g *Globals) listTopics(out *wire.TopicList) error {
	return g.controlEach(wire.TypeList, func(call func(body, out any) error) error {
		pg := wire.Page{}
		for {
			var l wire.TopicList
			if err := call(pg, &l); err != nil {
				return err
			}
			out.Topics = append(out.Topics, l.Topics...)
			if l.Next == "" || l.Next <= pg.After {
				return nil
			}
			pg.After = l.Next
		}
	})
}

// controlEach says hello over a raw control connection, then lets reqs
// send requests of type typ through call (body, reply decoded into out).
func (g *Globals) controlEach(typ wire.Type, reqs func(call func(body, out any) error) error) error {
	sock := g.Socket
	if sock == "" {
		sock = client.DefaultSocketPath()
	}
	ctx, cancel := g.reqCtx()
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return &client.BrokerNotRunningError{SocketPath: sock, Err: err}
	}
	c := wire.NewConn(nc.(*net.UnixConn))
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	id := uint32(0)
	call := func(rt wire.Type, body, out any) error {
		id++
		req := struct {
			typ  wire.Type
			body any
			out  any
		}{rt, body, out}
		f, err := wire.NewFrame(req.typ, id, req.body)
		if err != nil {
			return err
		}
		if err := c.WriteFrame(f); err != nil {
			return err
		}
		rf, files, err := c.ReadFrame()
		for _, f := range files {
			f.Close()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", req.typ, err)
		}
		if we := wire.ReplyError(rf); we != nil {
			if we.Code == wire.CodeConfig {
				return invalidf("%s", we.Message)
			}
			return &client.BrokerError{Op: req.typ.String(), Code: we.Code, Message: we.Message}
		}
		if req.out != nil {
			if err := wire.DecodeBody(rf, req.out); err != nil {
				return err
			}
		}
		return nil
	}
	if err := call(wire.TypeHello, wire.Hello{Version: wire.Version, Name: "kaelixctl"}, nil); err != nil {
		return err
	}
	return reqs(func(body, out any) error { return call(typ, body, out) })
}

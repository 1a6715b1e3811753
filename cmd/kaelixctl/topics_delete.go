package main

import (
	"fmt"

	"github.com/kaelix-io/kaelix/client"
)

// TopicsDeleteCmd is `kaelixctl topics delete NAME`.
type TopicsDeleteCmd struct {
	Name  string `arg:"" help:"Topic to delete." predictor:"topic"`
	Force bool   `help:"Delete even while clients are attached (they keep their mappings until they close)."`
}

// Run deletes the topic.
func (cmd *TopicsDeleteCmd) Run(g *Globals) error {
	c, err := g.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := g.reqCtx()
	defer cancel()
	if err := c.DeleteTopic(ctx, cmd.Name, client.DeleteOptions{Force: cmd.Force}); err != nil {
		return err
	}
	if g.json() {
		return writeJSON(g.stdout, map[string]any{"deleted": cmd.Name})
	}
	fmt.Fprintf(g.stdout, "deleted topic %s\n", cmd.Name)
	return nil
}

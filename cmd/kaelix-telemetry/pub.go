package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/kaelix-io/kaelix/client"
)

// PubCmd samples /proc at --hz and publishes each sample.
type PubCmd struct {
	Hz    float64 `help:"Samples per second." default:"20"`
	Count int     `short:"n" help:"Stop after this many samples (0: until interrupted)."`
	Proc  string  `help:"procfs root." default:"/proc" placeholder:"DIR"`
	Sys   string  `help:"sysfs root." default:"/sys" placeholder:"DIR"`
}

// Run publishes until --count samples or a signal.
func (cmd *PubCmd) Run(g *Globals) error {
	if cmd.Hz <= 0 {
		return fmt.Errorf("--hz %v: want a positive rate", cmd.Hz)
	}
	host, _ := os.Hostname()
	sampler, err := NewSampler(host, cmd.Proc, cmd.Sys)
	if err != nil {
		return err
	}
	c, err := g.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.OpenOrCreateTopic(g.ctx, client.TopicConfig{Name: g.Topic}); err != nil {
		return err
	}
	pub, err := c.NewPublisher(g.ctx, g.Topic, client.PublisherOptions{})
	if err != nil {
		return err
	}
	defer pub.Close()
	headers := map[string]string{
		headerHost: host, headerKind: kindSample, headerSchema: schemaV1, headerContentType: "application/json",
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / cmd.Hz))
	defer tick.Stop()
	fmt.Fprintf(g.stderr, "kaelix-telemetry: publishing %s samples to %s at %g Hz\n", host, g.Topic, cmd.Hz)
	for n := 0; cmd.Count == 0 || n < cmd.Count; n++ {
		s, err := sampler.Sample(time.Now())
		if err != nil {
			return err
		}
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		if err := pub.Publish(g.ctx, client.NewMessage(b, client.WithHeaders(headers))); err != nil {
			if g.ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case <-g.ctx.Done():
			return nil
		case <-tick.C:
		}
	}
	return nil
}

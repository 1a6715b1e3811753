package bench

// kaelix-nats: Kaelix bridged over core NATS, the path of package bridge.
// The publisher writes into a Kaelix topic; an outbound bridge (a local
// subscriber) publishes each record to the embedded nats-server; an
// inbound bridge writes it into a second Kaelix topic, which the
// subscriber reads. Two local hops around the NATS hop, to be compared
// with the "nats" transport (nats.go alone) in the same run. The two
// bridges run as goroutines of the parent process, so the parent's
// syscall count includes them (and the embedded server).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kaelix-io/kaelix/bridge"
	"github.com/kaelix-io/kaelix/client"
)

func init() {
	register(&transport{
		name: "kaelix-nats", inherentWait: "blocking", // the bridges' default (Rule.Wait); --wait does not apply
		newLink: newKaelixNATSLink,
		openTx:  openKaelixTx,
		openRx: func(e *procEnv, l *linkSpec, end int) (Rx, error) {
			in := *l
			in.Topic = l.Topic + ".in"
			return openKaelixRx(e, &in, end)
		},
		method: "/proc/PID/io read+write counts of both processes (the bridges and the embedded server run in the parent)",
	})
}

func newKaelixNATSLink(r *runEnv, l *linkSpec) error {
	if err := newKaelixLink(r, l); err != nil {
		return err
	}
	c, err := r.env.kaelixConn(l.Socket)
	if err != nil {
		return err
	}
	info, err := c.TopicInfo(r.env.ctx, l.Topic)
	if err != nil {
		return err
	}
	spec := info.Spec
	spec.Name = l.Topic + ".in"
	spec.MaxMessageBytes += 512 // the Kaelix-Origin header an inbound record carries
	if _, err := c.CreateTopic(r.env.ctx, spec); err != nil {
		return fmt.Errorf("bench: topic %s: %w", spec.Name, err)
	}
	r.cleanup = append(r.cleanup, func() {
		c.DeleteTopic(context.WithoutCancel(r.env.ctx), spec.Name, client.DeleteOptions{Force: true})
	})
	ns, err := r.natsServer()
	if err != nil {
		return err
	}
	subject := "kaelix.bencha." + l.Topic + ".{partition}"
	mk := func(host string, rule bridge.Rule) bridge.Config {
		cfg := bridge.Default()
		cfg.Host, cfg.Socket = host, l.Socket
		cfg.NATS.URLs = []string{ns.ClientURL()}
		cfg.Rules = []bridge.Rule{rule}
		return cfg
	}
	cfgs := []bridge.Config{
		mk("bencha", bridge.Rule{Name: "out", Direction: bridge.Out, Topic: l.Topic, Subject: subject, Mode: bridge.Core}),
		mk("benchb", bridge.Rule{Name: "in", Direction: bridge.In, Topic: spec.Name, Subject: "kaelix.bencha." + l.Topic + ".*", Mode: bridge.Core}),
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.env.ctx))
	var bs []*bridge.Bridge
	var dones []chan error
	stop := func() {
		cancel()
		for _, d := range dones {
			<-d
		}
	}
	for _, cfg := range cfgs {
		b, err := bridge.New(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			stop()
			return err
		}
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx) }()
		bs, dones = append(bs, b), append(dones, done)
	}
	r.cleanup = append(r.cleanup, stop)
	deadline := time.Now().Add(10 * time.Second)
	for _, b := range bs {
		for {
			st := b.Status()
			if len(st.Rules) == 1 && st.Rules[0].State == bridge.StateRunning {
				break
			}
			if time.Now().After(deadline) {
				return errors.New("bench: kaelix-nats: bridges not running after 10s: " + fmt.Sprint(st.Rules))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	time.Sleep(100 * time.Millisecond) // the inbound subscription reaches the server
	return nil
}

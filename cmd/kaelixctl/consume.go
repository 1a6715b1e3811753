package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kaelix-io/kaelix/client"
)

// consumeOpts are the subscription flags record, hz and latency share.
type consumeOpts struct {
	From  string        `help:"Where to start: latest (only new messages) or oldest (the oldest still held)." enum:"latest,oldest" default:"latest"`
	Count int           `short:"n" help:"Stop after this many records (0: until interrupted or --for)." placeholder:"N"`
	For   time.Duration `name:"for" help:"Stop after this long." placeholder:"DURATION"`
	Group string        `help:"Join this queue group (its members share the records)." placeholder:"NAME"`
	Wait  string        `help:"Wait strategy when idle: backoff, blocking, yield or busy-spin." enum:"backoff,blocking,yield,busy-spin" default:"backoff"`
}

// consume subscribes to topic and calls each for every record (m valid
// during the call only) until --count, --for, SIGINT/SIGTERM or an error;
// idle is called whenever no record is ready (flush there), and every
// tick while idle, so that periodic reports go on in a quiet topic. It
// returns the records handled and the subscriber's lost count.
func (o consumeOpts) consume(g *Globals, topic string, tick time.Duration, each func(m *client.Message) error, idle func() error) (n int, lost uint64, err error) {
	if err := client.ValidateTopicName(topic); err != nil {
		return 0, 0, err
	}
	c, err := g.connect()
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	opts := client.SubscribeOptions{Group: o.Group, Wait: waitOf(o.Wait)}
	if o.From == "oldest" {
		opts.From = client.FromOldest
	}
	actx, cancel := g.reqCtx()
	sub, err := c.Subscribe(actx, topic, opts)
	cancel()
	if err != nil {
		return 0, 0, err
	}
	defer sub.Close()
	ctx := g.ctx
	if o.For > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.For)
		defer cancel()
	}
	var herr error
	h := func(m *client.Message) {
		if herr == nil {
			herr = each(m)
		}
	}
	for o.Count == 0 || n < o.Count {
		limit := 256
		if o.Count > 0 {
			limit = min(limit, o.Count-n)
		}
		got, err := sub.Poll(h, limit)
		n += got
		if herr != nil {
			return n, sub.Lost(), herr
		}
		if errors.Is(err, client.ErrEvicted) {
			return n, sub.Lost(), err
		}
		if got > 0 || errors.Is(err, client.ErrLapped) || errors.Is(err, client.ErrStalled) {
			continue
		}
		if err != nil {
			return n, sub.Lost(), err
		}
		if err := idle(); err != nil {
			return n, sub.Lost(), err
		}
		wctx, wcancel := ctx, context.CancelFunc(func() {})
		if tick > 0 {
			wctx, wcancel = context.WithTimeout(ctx, tick)
		}
		m, err := sub.Receive(wctx)
		wcancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				continue // a tick: report, wait again
			}
			if ctx.Err() != nil && g.ctx.Err() == nil && o.For > 0 {
				if o.Count > 0 {
					return n, sub.Lost(), fmt.Errorf("timed out after %v: received %d of %d records", o.For, n, o.Count)
				}
				break
			}
			if g.interrupted(err) {
				break
			}
			return n, sub.Lost(), err
		}
		h(&m)
		n++
		if herr != nil {
			return n, sub.Lost(), herr
		}
	}
	return n, sub.Lost(), nil
}

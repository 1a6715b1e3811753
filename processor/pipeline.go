package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/workers"
)

// PipelineConfig declares a pipeline: where records come from, the chain
// of stages, and where they go.
type PipelineConfig struct {
	// Name names the pipeline in logs and errors (default: the input
	// topic).
	Name string
	// Input is the topic read. Required.
	Input string
	// Group, if set, reads Input as a member of that queue group (an
	// MPMC topic): pipelines in the same group, in this process or
	// others, share the records, each record going to one of them.
	Group string
	// From is where reading starts (client.FromLatest by default).
	From client.From
	// Outputs are the topics a record that passed every stage (Continue)
	// is published to, each of them. May be empty (a chain that only
	// routes or emits to RouteTopics, or only counts).
	Outputs []string
	// RouteTopics are further topics reachable only by Route.
	RouteTopics []string
	// Stages is the chain. Required; NewPipeline initialises it unless
	// already initialised, and Pipeline.Close closes it.
	Stages *Registry
	// KeyHeader, if set, names a header whose value becomes Message.Key
	// on input when the record has it, in place of the record's own key
	// (client.Message.Key, which Message.Key is otherwise). A record's
	// key picks its output partition (client.PartitionOf).
	KeyHeader string
	// Wait is how the pipeline waits for input when there is none
	// (client.WaitDefault: the daemon's default).
	Wait client.WaitStrategy
	// Batch is the most records taken per poll (default 64).
	Batch int
	// NoTimestamps publishes to the outputs without record timestamps
	// (client.PublisherOptions.NoTimestamps: TimestampNS 0 at the
	// subscribers), saving a clock read per record published (about 30 ns
	// on a VM's clock source).
	NoTimestamps bool
	// Tick is how often Emitter stages are ticked (default 10 ms). Unused
	// without Emitter stages.
	Tick time.Duration
	// Logger receives failures (at most one line a second per stage) and
	// lifecycle events. Nil: discard.
	Logger *slog.Logger
}

// Pipeline moves records from an input topic through a chain of stages to
// output topics. It is a client like any other: it reads the input ring
// in place and publishes straight into the output rings; the daemon is not
// on the path.
//
// Delivery: a record is published to the outputs before the pipeline
// reads the next one, and the input position moves past a record once its
// Poll batch is handled. In a queue group a member claims one record at
// a time (the group's cursor moves past it at the claim), so no record
// comes out twice; a member killed mid-stream (SIGKILL) loses at most the
// record it held (claimed, not yet handled), which the group counts lost
// (the input's Lost counter; it may have been published just before the
// kill, so the count can exceed what is really missing); the others take
// over the rest (at-most-once; processor/host TestHostSIGKILLMidStream
// kills one of two supervised hosts and checks exactly this). Records
// published while no member of the group (or no pipeline, without a
// group) is attached are not kept for it under any policy: the ring keeps
// nothing for absent subscribers, so a lone pipeline that restarts misses
// what was published meanwhile (at-most-once across its restart).
//
// Run must be called from one goroutine; Stats from any.
type Pipeline struct {
	cfg     PipelineConfig
	c       *client.Client
	sub     *client.Subscriber
	outs    []*client.Publisher // Outputs, in order
	routes  []*client.Publisher // Outputs then RouteTopics
	reg     *Registry
	emits   []emitter
	batch   int
	logger  *slog.Logger
	runCtx  context.Context
	onMsg   client.Handler
	msg     Message
	keyBuf  []byte
	lastLog []int64 // per stage: last failure log, unix ns

	in, out, dropped, failed, pubErrors atomic.Uint64
	timing                              timing
}

type emitter struct {
	stage int
	e     Emitter
	emit  EmitFunc
}

// NewPipeline attaches a pipeline to its topics through c: a subscriber to
// Input (in Group if set) and a publisher per output topic; then it
// initialises cfg.Stages (if not yet). Errors name the pipeline and what
// failed: a missing input or output topic (client.ErrTopicNotFound), an
// input that is also an output (a one-stage cycle), a stage's Init
// (*PluginError). On error nothing stays attached or initialised.
func NewPipeline(ctx context.Context, c *client.Client, cfg PipelineConfig) (*Pipeline, error) {
	if cfg.Name == "" {
		cfg.Name = cfg.Input
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("processor: pipeline %q: "+format, append([]any{cfg.Name}, args...)...)
	}
	switch {
	case cfg.Input == "":
		return nil, fail("no input topic")
	case cfg.Stages == nil:
		return nil, fail("no stages")
	case slices.Contains(cfg.Outputs, cfg.Input) || slices.Contains(cfg.RouteTopics, cfg.Input):
		return nil, fail("input %q is also an output: a cycle", cfg.Input)
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 10 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pipeline{cfg: cfg, c: c, reg: cfg.Stages, batch: cfg.Batch, logger: cfg.Logger.With("pipeline", cfg.Name)}
	ok := false
	defer func() {
		if !ok {
			p.detach()
			p.reg.CloseAll()
		}
	}()
	if !p.reg.inited {
		if err := p.reg.InitAll(); err != nil {
			return nil, fail("%w", err)
		}
	}
	routeTopics := slices.Concat(cfg.RouteTopics, p.reg.RouteTargets())
	if slices.Contains(routeTopics, cfg.Input) {
		return nil, fail("input %q is also a route target: a cycle", cfg.Input)
	}
	seen := map[string]*client.Publisher{}
	for _, t := range slices.Concat(cfg.Outputs, routeTopics) {
		pub := seen[t]
		if pub == nil {
			var err error
			if pub, err = c.NewPublisher(ctx, t, client.PublisherOptions{NoTimestamps: cfg.NoTimestamps}); err != nil {
				return nil, fail("output %q: %w", t, err)
			}
			seen[t] = pub
			p.routes = append(p.routes, pub)
		}
		if slices.Contains(cfg.Outputs, t) && !slices.Contains(p.outs, pub) {
			p.outs = append(p.outs, pub)
		}
	}
	sub, err := c.Subscribe(ctx, cfg.Input, client.SubscribeOptions{From: cfg.From, Group: cfg.Group, Wait: cfg.Wait})
	if err != nil {
		return nil, fail("input %q: %w", cfg.Input, err)
	}
	p.sub = sub
	for i, s := range p.reg.stages {
		if s.emitter != nil {
			next := i + 1
			p.emits = append(p.emits, emitter{stage: i, e: s.emitter, emit: func(m *Message) {
				a, at := p.reg.processFrom(next, m)
				p.finish(a, at, m)
			}})
		}
	}
	p.lastLog = make([]int64, len(p.reg.stages)+1)
	p.onMsg = p.handle
	p.tick(time.Now().UnixNano()) // Emitters get their EmitFunc before the first record
	ok = true
	return p, nil
}

// detach closes the subscriber and publishers.
func (p *Pipeline) detach() {
	if p.sub != nil {
		p.sub.Close()
		p.sub = nil
	}
	for _, pub := range p.routes {
		pub.Close()
	}
	p.routes, p.outs = nil, nil
}

// Close detaches from the topics and closes the stages (reverse order).
// Call it after Run returned. Returns the stages' Close errors.
func (p *Pipeline) Close() error {
	p.detach()
	return p.reg.CloseAll()
}

// Run processes records until ctx is done (then it returns nil) or the
// input fails (an eviction, a fault: returned, wrapped with the
// pipeline's name). Records are handled one at a time on the calling
// goroutine, in the input's order within each partition. Publishing to an
// output waits while it is back-pressured (policy block), so a slow
// output holds the input back, and through it the input's publishers.
func (p *Pipeline) Run(ctx context.Context) error {
	p.runCtx = ctx
	defer func() { p.runCtx = nil }()
	nextTick := time.Now().Add(p.cfg.Tick)
	for {
		n, err := p.step(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("processor: pipeline %q: %w", p.cfg.Name, err)
		}
		if len(p.emits) > 0 {
			if now := time.Now(); n == 0 || !now.Before(nextTick) {
				p.tick(now.UnixNano())
				nextTick = now.Add(p.cfg.Tick)
			}
		}
	}
}

// step polls once without waiting; with nothing ready it waits (up to a
// tick if there are emitters) for input.
func (p *Pipeline) step(ctx context.Context) (int, error) {
	n, err := p.sub.Poll(p.onMsg, p.batch)
	if err == client.ErrLapped || err == client.ErrStalled {
		err = nil
	}
	if err != nil || n > 0 {
		return n, err
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	wctx := ctx
	if len(p.emits) > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, p.cfg.Tick)
		defer cancel()
	}
	n, err = p.sub.PollWait(wctx, p.onMsg, p.batch)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		err = nil // the tick's wait ran out
	}
	return n, err
}

// PollOnce handles the records ready now (at most a batch) without
// waiting and returns how many; for callers that run their own loop
// (a pinned worker, a benchmark). ctx bounds publishing to back-pressured
// outputs. Not concurrently with Run.
func (p *Pipeline) PollOnce(ctx context.Context) (int, error) {
	p.runCtx = ctx
	n, err := p.sub.Poll(p.onMsg, p.batch)
	if err == client.ErrLapped || err == client.ErrStalled {
		err = nil
	}
	return n, err
}

// Tick ticks the Emitter stages with the current time (Run does this by
// itself); for callers of PollOnce.
func (p *Pipeline) Tick(ctx context.Context) {
	p.runCtx = ctx
	p.tick(time.Now().UnixNano())
}

func (p *Pipeline) tick(now int64) {
	for _, e := range p.emits {
		e.e.Tick(now, e.emit)
	}
}

// handle is the subscriber's Poll handler: one input record.
func (p *Pipeline) handle(cm *client.Message) {
	m := &p.msg
	m.Reset(cm.Payload, cm.Headers)
	m.Topic = cm.Topic
	m.Partition = cm.Partition
	m.Sequence = cm.ID.Sequence
	m.TimestampNS = cm.TimestampNS
	if cm.Key != nil { // copied: a stage may keep it past this record's ring slot
		p.keyBuf = append(p.keyBuf[:0], cm.Key...)
		m.Key = p.keyBuf
	}
	if p.cfg.KeyHeader != "" {
		if v, ok := cm.Headers[p.cfg.KeyHeader]; ok {
			p.keyBuf = append(p.keyBuf[:0], v...)
			m.Key = p.keyBuf
		}
	}
	if p.in.Add(1)%TimingSampleEvery != 0 {
		a, at := p.reg.processFrom(0, m)
		p.finish(a, at, m)
		return
	}
	t0 := time.Now()
	a, at := p.reg.processFrom(0, m)
	p.finish(a, at, m)
	p.timing.observe(time.Since(t0))
}

// finish carries out the chain's verdict on m (stage at gave it).
func (p *Pipeline) finish(a Action, at int, m *Message) {
	switch a.kind {
	case actContinue:
		for _, pub := range p.outs {
			p.publish(pub, m, at)
		}
	case actRoute:
		for _, pub := range p.routes {
			if pub.Topic() == a.topic {
				p.publish(pub, m, at)
				return
			}
		}
		p.failure(at, ErrUnknownRoute, a.topic)
	case actDrop:
		p.dropped.Add(1)
	case actFail:
		p.failure(at, a.err, "")
	}
}

func (p *Pipeline) publish(pub *client.Publisher, m *Message, at int) {
	cm := client.Message{Payload: m.payload, Headers: m.headers(), Key: m.Key}
	if m.Key == nil {
		cm.Partition = m.Partition % pub.Partitions()
	}
	ctx := p.runCtx
	if ctx == nil {
		ctx = context.Background()
	}
	if err := pub.Publish(ctx, cm); err != nil {
		p.pubErrors.Add(1)
		p.failure(at, err, pub.Topic())
		return
	}
	p.out.Add(1)
}

// failure counts a failed record and logs at most once a second per stage.
func (p *Pipeline) failure(at int, err error, topic string) {
	p.failed.Add(1)
	now := time.Now().UnixNano()
	if now-p.lastLog[at] < int64(time.Second) {
		return
	}
	p.lastLog[at] = now
	stage := "(output)"
	if at < len(p.reg.stages) {
		stage = p.reg.stages[at].name
	}
	p.logger.Warn("record failed", "stage", stage, "topic", topic, "err", err)
}

// Stats are a pipeline's counts since NewPipeline.
type Stats struct {
	Name      string
	In        uint64 // records read from the input
	Out       uint64 // records published (a record sent to two outputs counts 2)
	Dropped   uint64 // records a stage dropped
	Failed    uint64 // records a stage failed, routed nowhere, or not published
	PubErrors uint64 // of Failed: publishing failed (too large, ctx done)
	Stages    []StageStats
	// Timing is the processing time of one record in TimingSampleEvery.
	Timing Timing
}

// Stats returns the pipeline's counts. Safe from any goroutine.
func (p *Pipeline) Stats() Stats {
	st := Stats{
		Name: p.cfg.Name, In: p.in.Load(), Out: p.out.Load(), Dropped: p.dropped.Load(),
		Failed: p.failed.Load(), PubErrors: p.pubErrors.Load(), Stages: p.reg.Stats(),
		Timing: p.timing.snapshot(),
	}
	return st
}

// RunOn is Run with the pipeline's steps as tasks of pool at priority
// prio: each task handles up to a batch of ready records and queues the
// next step; with nothing ready it waits for input on the worker, for at
// most the pool's spin budget or a millisecond (whichever is longer) when
// other tasks are queued, else up to 50 ms (a tick with Emitter stages),
// then yields the worker to other tasks. So pipelines on one pool share
// its pinned workers by priority (see package workers). When the queue is
// full (ErrPoolExhausted) the task runs the next step itself rather than
// dropping it. RunOn blocks until ctx is done (nil), the input fails, or
// the pool closes (workers.ErrClosed, wrapped); cancel ctx and let RunOn
// return before closing the pool.
func (p *Pipeline) RunOn(ctx context.Context, pool *workers.Pool, prio int) error {
	short := max(pool.SpinBudget(), time.Millisecond)
	long := max(short, 50*time.Millisecond)
	if len(p.emits) > 0 {
		long = max(short, p.cfg.Tick)
	}
	result := make(chan error, 1)
	nextTick := time.Now().Add(p.cfg.Tick)
	var step func()
	step = func() {
		for {
			p.runCtx = ctx
			n, err := p.PollOnce(ctx)
			if err == nil && n == 0 && ctx.Err() == nil {
				wait := long
				if pool.Pending() > 0 {
					wait = short
				}
				wctx, cancel := context.WithTimeout(ctx, wait)
				_, err = p.sub.PollWait(wctx, p.onMsg, p.batch)
				cancel()
				if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
					err = nil
				}
				if err == client.ErrLapped || err == client.ErrStalled {
					err = nil
				}
			}
			if len(p.emits) > 0 {
				if now := time.Now(); !now.Before(nextTick) {
					p.tick(now.UnixNano())
					nextTick = now.Add(p.cfg.Tick)
				}
			}
			switch {
			case ctx.Err() != nil:
				result <- nil
				return
			case err != nil:
				result <- fmt.Errorf("processor: pipeline %q: %w", p.cfg.Name, err)
				return
			}
			switch err := pool.SpawnWithPriority(prio, step); {
			case err == nil:
				return
			case errors.Is(err, workers.ErrClosed):
				result <- fmt.Errorf("processor: pipeline %q: %w", p.cfg.Name, err)
				return
			}
			// Queue full (ErrPoolExhausted): keep going on this worker.
		}
	}
	if err := pool.SpawnWithPriority(prio, step); err != nil {
		return fmt.Errorf("processor: pipeline %q: %w", p.cfg.Name, err)
	}
	err := <-result
	p.runCtx = nil
	return err
}

// WaitStrategyFor picks the input wait strategy for a target latency
// (target_latency_us): under 10 µs only busy-spinning answers in time (one
// core at 100%); under 1 ms a backoff (spin, yield, then the futex) does;
// from 1 ms on, blocking on the futex at once is enough. 0: the daemon's
// default (client.WaitDefault).
func WaitStrategyFor(target time.Duration) client.WaitStrategy {
	switch {
	case target <= 0:
		return client.WaitDefault
	case target < 10*time.Microsecond:
		return client.WaitBusySpin
	case target < time.Millisecond:
		return client.WaitBackoff
	}
	return client.WaitBlocking
}

package host

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/numa"
	"github.com/kaelix-io/kaelix/processor"
	"github.com/kaelix-io/kaelix/workers"
)

// Host runs a Config's pipelines through one client. A pipeline that
// cannot start (its input or an output topic does not exist yet, say) is
// reported and retried with backoff (100 ms doubling to 5 s) while the
// others run; one whose input fails later is restarted the same way.
//
// Run once; Status from any goroutine.
type Host struct {
	cfg    Config
	c      *client.Client
	logger *slog.Logger
	pool   *workers.Pool

	mu     sync.Mutex // guards states
	states []*state
}

type state struct {
	spec      PipelineSpec
	phase     string // starting, running, retrying, stopped
	lastErr   string
	starts    int
	p         *processor.Pipeline
	lastStats processor.Stats
}

// PipelineStatus is one pipeline's state and counts (those of its current
// run; Starts counts runs).
type PipelineStatus struct {
	Name      string
	Input     string
	Group     string
	Outputs   []string
	Phase     string // "starting", "running", "retrying" (LastError says why), "stopped"
	LastError string
	Starts    int
	Stats     processor.Stats
}

// New prepares a host for cfg (validated: see Load) on client c, starting
// the worker pool if cfg.Runtime.WorkerThreads > 0.
func New(cfg Config, c *client.Client, logger *slog.Logger) (*Host, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Host{cfg: cfg, c: c, logger: logger}
	if rt := cfg.Runtime; rt.WorkerThreads > 0 {
		wc := workers.Config{
			WorkerThreads: rt.WorkerThreads, TaskQueueDepth: rt.TaskQueueDepth, PriorityLevels: rt.PriorityLevels,
			TargetLatency: rt.TargetLatency(), NUMAAware: rt.NUMAAware, NUMANode: rt.NUMANode,
		}
		if rt.CPUs != "" {
			cpus, err := numa.ParseCPUList(rt.CPUs)
			if err != nil {
				return nil, fmt.Errorf("runtime.cpus: %w", err)
			}
			wc.CPUs = cpus
		}
		pool, err := workers.New(wc)
		if err != nil {
			return nil, err
		}
		h.pool = pool
	}
	for _, p := range cfg.Pipelines {
		h.states = append(h.states, &state{spec: p, phase: "starting"})
	}
	return h, nil
}

// Run runs every pipeline until ctx is done, then stops them, closes
// their stages and the pool, and returns nil.
func (h *Host) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, st := range h.states {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.keep(ctx, st)
		}()
	}
	wg.Wait()
	if h.pool != nil {
		h.pool.Close()
	}
	return nil
}

// keep runs one pipeline, restarting it with backoff, until ctx is done.
func (h *Host) keep(ctx context.Context, st *state) {
	spec := st.spec
	log := h.logger.With("pipeline", spec.Name)
	backoff := 100 * time.Millisecond
	lastLogged := ""
	for ctx.Err() == nil {
		p, err := h.start(ctx, spec, log)
		if err == nil {
			h.set(st, func() { st.phase, st.p, st.lastErr = "running", p, ""; st.starts++ })
			log.Info("pipeline running", "input", spec.Input, "outputs", spec.Outputs)
			lastLogged = ""
			backoff = 100 * time.Millisecond
			if h.pool != nil {
				err = p.RunOn(ctx, h.pool, spec.Priority)
			} else {
				err = p.Run(ctx)
			}
			stats := p.Stats()
			p.Close()
			h.set(st, func() { st.p, st.lastStats = nil, stats })
			if err == nil {
				break
			}
		}
		if ctx.Err() != nil {
			break
		}
		msg := err.Error()
		h.set(st, func() { st.phase, st.lastErr = "retrying", msg })
		if msg != lastLogged {
			log.Error("pipeline not running; retrying", "err", err, "retry_in", backoff)
			lastLogged = msg
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	h.set(st, func() { st.phase = "stopped" })
}

func (h *Host) start(ctx context.Context, spec PipelineSpec, log *slog.Logger) (*processor.Pipeline, error) {
	reg, err := spec.Registry(log)
	if err != nil {
		return nil, &PipelineError{spec.Name, err}
	}
	from := client.FromLatest
	if spec.From == "oldest" {
		from = client.FromOldest
	}
	wait := processor.WaitStrategyFor(h.cfg.Runtime.TargetLatency())
	switch spec.Wait {
	case "backoff":
		wait = client.WaitBackoff
	case "blocking":
		wait = client.WaitBlocking
	case "yield":
		wait = client.WaitYield
	case "busy-spin":
		wait = client.WaitBusySpin
	}
	return processor.NewPipeline(ctx, h.c, processor.PipelineConfig{
		Name: spec.Name, Input: spec.Input, Group: spec.Group, From: from,
		Outputs: spec.Outputs, RouteTopics: spec.RouteTopics, Stages: reg,
		KeyHeader: spec.KeyHeader, Wait: wait, Batch: spec.Batch, Logger: log,
	})
}

func (h *Host) set(st *state, f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f()
}

// Status returns every pipeline's state, in declaration order.
func (h *Host) Status() []PipelineStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]PipelineStatus, len(h.states))
	for i, st := range h.states {
		ps := PipelineStatus{
			Name: st.spec.Name, Input: st.spec.Input, Group: st.spec.Group, Outputs: slices.Clone(st.spec.Outputs),
			Phase: st.phase, LastError: st.lastErr, Starts: st.starts, Stats: st.lastStats,
		}
		if st.p != nil {
			ps.Stats = st.p.Stats()
		}
		out[i] = ps
	}
	return out
}

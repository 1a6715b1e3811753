// Package host runs a set of processor pipelines declared in TOML: what
// the kaelix-proc binary does, as a library (and what the daemon's
// supervised processor hosts run).
//
//	[runtime]
//	worker_threads    = 1       # 0: each pipeline on its own goroutine (no pool)
//	task_queue_depth  = 1024
//	priority_levels   = 3
//	target_latency_us = 0       # picks the input wait strategy and the workers' spin budget
//	numa_aware        = false   # place workers on numa_node's CPUs
//	numa_node         = 0
//	cpus              = "0-1"   # pin workers to these CPUs (cpulist; default: all allowed)
//
//	[[pipelines]]
//	name     = "telemetry-1s"
//	input    = "host.telemetry"
//	group    = ""              # queue group on the input (several hosts share it)
//	outputs  = ["host.telemetry.1s"]
//	priority = 1
//	  [[pipelines.stages]]
//	  plugin      = "window"   # a built-in: stamp, filter, route, sample, window
//	  name        = "agg"      # default: the plugin's name
//	  permissions = { can_read_config = true }
//	  config      = { interval = "1s", values = ["json:cpu.busy_pct"] }
package host

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/numa"
	"github.com/kaelix-io/kaelix/processor"
	"github.com/kaelix-io/kaelix/processor/builtin"
)

// Config is a host's configuration: the runtime and the pipelines.
type Config struct {
	Runtime   RuntimeConfig  `toml:"runtime"`
	Pipelines []PipelineSpec `toml:"pipelines"`
}

// RuntimeConfig configures the pinned worker pool (package workers).
type RuntimeConfig struct {
	WorkerThreads   int    `toml:"worker_threads"`
	TaskQueueDepth  int    `toml:"task_queue_depth"`
	PriorityLevels  int    `toml:"priority_levels"`
	TargetLatencyUS int    `toml:"target_latency_us"`
	NUMAAware       bool   `toml:"numa_aware"`
	NUMANode        int    `toml:"numa_node"`
	CPUs            string `toml:"cpus"`
}

// TargetLatency is TargetLatencyUS as a duration.
func (r RuntimeConfig) TargetLatency() time.Duration {
	return time.Duration(r.TargetLatencyUS) * time.Microsecond
}

// PipelineSpec declares one pipeline (see processor.PipelineConfig).
type PipelineSpec struct {
	Name        string      `toml:"name"`
	Input       string      `toml:"input"`
	Group       string      `toml:"group"`
	Outputs     []string    `toml:"outputs"`
	RouteTopics []string    `toml:"route_topics"`
	Priority    int         `toml:"priority"`
	KeyHeader   string      `toml:"key_header"`
	From        string      `toml:"from"` // latest (default) or oldest
	Wait        string      `toml:"wait"` // backoff, blocking, yield, busy-spin; default from target_latency_us
	Batch       int         `toml:"batch"`
	Stages      []StageSpec `toml:"stages"`
}

// StageSpec declares one stage: a built-in plugin, its configuration and
// its permissions.
type StageSpec struct {
	Name        string                `toml:"name"`
	Plugin      string                `toml:"plugin"`
	Config      map[string]any        `toml:"config"`
	Permissions processor.Permissions `toml:"permissions"`
}

// Load reads and validates the TOML file at path. Unknown keys are errors
// (except inside a stage's config table, which its plugin checks in Init).
// Every problem is reported at once (errors.Join), each naming the
// pipeline and key.
func Load(path string) (Config, error) {
	var cfg Config
	md, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		return Config{}, fmt.Errorf("kaelix-proc: %s: %w", path, err)
	}
	var errs []error
	for _, k := range md.Undecoded() {
		if len(k) >= 3 && k[0] == "pipelines" && k[1] == "stages" && k[2] == "config" {
			continue
		}
		errs = append(errs, fmt.Errorf("%s: unknown key %s", path, k))
	}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return cfg, nil
}

// LoadBytes is Load from TOML text (name is used in messages).
func LoadBytes(name string, text []byte) (Config, error) {
	f, err := os.CreateTemp("", "kaelix-proc-*.toml")
	if err != nil {
		return Config{}, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(text); err != nil {
		f.Close()
		return Config{}, err
	}
	f.Close()
	cfg, err := Load(f.Name())
	if err != nil {
		return Config{}, errors.New(strings.ReplaceAll(err.Error(), f.Name(), name))
	}
	return cfg, nil
}

// PipelineError is a problem with one pipeline's declaration or start.
type PipelineError struct {
	Pipeline string
	Err      error
}

func (e *PipelineError) Error() string { return fmt.Sprintf("pipeline %q: %v", e.Pipeline, e.Err) }
func (e *PipelineError) Unwrap() error { return e.Err }

// Validate checks the declarations without connecting to a broker:
// names, topics, plugins (each is built and initialised with its config,
// then closed, so a config its Init rejects is found here), priorities,
// and cycles between pipelines (A's output is B's input and B's A's). All
// problems at once; each is a *PipelineError (or names the runtime key).
func (c *Config) Validate() error {
	var errs []error
	levels := c.Runtime.PriorityLevels
	if levels == 0 {
		levels = 3
	}
	if levels < 1 || levels > 16 {
		errs = append(errs, fmt.Errorf("runtime.priority_levels %d: want 1 to 16", levels))
	}
	switch {
	case c.Runtime.WorkerThreads < 0:
		errs = append(errs, fmt.Errorf("runtime.worker_threads %d: want >= 0", c.Runtime.WorkerThreads))
	case c.Runtime.TaskQueueDepth < 0:
		errs = append(errs, fmt.Errorf("runtime.task_queue_depth %d: want >= 0", c.Runtime.TaskQueueDepth))
	case c.Runtime.TargetLatencyUS < 0:
		errs = append(errs, fmt.Errorf("runtime.target_latency_us %d: want >= 0", c.Runtime.TargetLatencyUS))
	}
	if c.Runtime.CPUs != "" {
		if _, err := numa.ParseCPUList(c.Runtime.CPUs); err != nil {
			errs = append(errs, fmt.Errorf("runtime.cpus: %w", err))
		}
	}
	if len(c.Pipelines) == 0 {
		errs = append(errs, errors.New("no [[pipelines]]"))
	}
	names := map[string]bool{}
	targets := make([][]string, len(c.Pipelines))
	for i := range c.Pipelines {
		p := &c.Pipelines[i]
		if p.Name == "" {
			p.Name = fmt.Sprintf("pipelines[%d]", i)
			errs = append(errs, &PipelineError{p.Name, errors.New("no name")})
		}
		perr := func(format string, args ...any) {
			errs = append(errs, &PipelineError{p.Name, fmt.Errorf(format, args...)})
		}
		if names[p.Name] {
			perr("declared twice")
		}
		names[p.Name] = true
		if p.Input == "" {
			perr("no input topic")
		} else if err := client.ValidateTopicName(p.Input); err != nil {
			perr("input: %v", err)
		}
		for _, t := range slices.Concat(p.Outputs, p.RouteTopics) {
			if err := client.ValidateTopicName(t); err != nil {
				perr("output: %v", err)
			}
		}
		if p.Priority < 0 || p.Priority >= levels {
			perr("priority %d: want 0 to %d (runtime.priority_levels %d)", p.Priority, levels-1, levels)
		}
		if !slices.Contains([]string{"", "latest", "oldest"}, p.From) {
			perr("from %q: want latest or oldest", p.From)
		}
		if !slices.Contains([]string{"", "backoff", "blocking", "yield", "busy-spin"}, p.Wait) {
			perr("wait %q: want backoff, blocking, yield or busy-spin", p.Wait)
		}
		if len(p.Stages) == 0 {
			perr("no stages")
			continue
		}
		reg, err := p.Registry(nil)
		if err != nil {
			errs = append(errs, &PipelineError{p.Name, err})
			continue
		}
		if err := reg.InitAll(); err != nil {
			errs = append(errs, &PipelineError{p.Name, err})
			continue
		}
		targets[i] = slices.Concat(p.Outputs, p.RouteTopics, reg.RouteTargets())
		reg.CloseAll()
		if slices.Contains(targets[i], p.Input) {
			perr("input %q is also an output: a cycle", p.Input)
		}
	}
	if cyc := findCycle(c.Pipelines, targets); cyc != "" {
		errs = append(errs, fmt.Errorf("cycle between pipelines: %s", cyc))
	}
	return errors.Join(errs...)
}

// Registry builds the pipeline's stages (not initialised). Errors name
// the stage: an unknown plugin, a duplicate name.
func (p *PipelineSpec) Registry(logger *slog.Logger) (*processor.Registry, error) {
	reg := processor.NewRegistry(logger)
	for j := range p.Stages {
		s := &p.Stages[j]
		if s.Name == "" {
			s.Name = s.Plugin
		}
		if s.Plugin == "" {
			return nil, fmt.Errorf("stages[%d]: no plugin", j)
		}
		pl, err := builtin.New(s.Plugin)
		if err != nil {
			return nil, fmt.Errorf("stage %q: %w", s.Name, err)
		}
		if err := reg.Register(s.Name, pl, processor.StageOptions{Config: s.Config, Permissions: s.Permissions}); err != nil {
			return nil, fmt.Errorf("stage %q: %w", s.Name, err)
		}
	}
	return reg, nil
}

// FindCycle looks for a loop in the topic graph of ps (each pipeline's
// input to its Outputs and RouteTopics) and describes it as
// "topic -[pipeline]-> topic ...", or returns "". For kaelixd's check of
// [[processors]], which run one pipeline each.
func FindCycle(ps []PipelineSpec) string {
	targets := make([][]string, len(ps))
	for i, p := range ps {
		targets[i] = slices.Concat(p.Outputs, p.RouteTopics)
	}
	return findCycle(ps, targets)
}

// findCycle looks for a loop in the topic graph (input -> each target)
// and describes it as "topic -[pipeline]-> topic ...", or returns "".
func findCycle(ps []PipelineSpec, targets [][]string) string {
	type edge struct{ to, via string }
	graph := map[string][]edge{}
	for i, p := range ps {
		for _, t := range targets[i] {
			if t != p.Input {
				graph[p.Input] = append(graph[p.Input], edge{t, p.Name})
			}
		}
	}
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	var path []string
	var found string
	var visit func(n string) bool
	visit = func(n string) bool {
		state[n] = onPath
		for _, e := range graph[n] {
			switch state[e.to] {
			case onPath:
				start := slices.Index(path, e.to)
				if start < 0 {
					start = len(path)
				}
				found = strings.Join(append(slices.Clone(path[start:]), n, "-["+e.via+"]->", e.to), " ")
				return true
			case unseen:
				path = append(path, n, "-["+e.via+"]->")
				if visit(e.to) {
					return true
				}
				path = path[:len(path)-2]
			}
		}
		state[n] = done
		return false
	}
	keys := make([]string, 0, len(graph))
	for k := range graph {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if state[k] == unseen && visit(k) {
			return found
		}
	}
	return ""
}

package config

import (
	"errors"
	"fmt"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kaelix-io/kaelix/numa"
	"github.com/kaelix-io/kaelix/processor"
	"github.com/kaelix-io/kaelix/processor/host"
	"github.com/kaelix-io/kaelix/wire"
)

// Processor is one [[processors]] entry: a stream processor kaelixd runs
// as its own supervised process. Either Stages (built-in plugins, run by
// kaelix-proc with a generated one-pipeline configuration) or Command (a
// program of yours, a Kaelix client, given its topics in the environment:
// KAELIX_PROCESSOR, KAELIX_INPUT, KAELIX_GROUP, KAELIX_OUTPUTS comma
// separated, KAELIX_SOCKET). Live: a reload starts added processors,
// stops removed ones and restarts changed ones; the others keep running
// (same pid).
type Processor struct {
	// Name identifies it (status, metrics, logs); unique. Letters,
	// digits, '-', '_' and '.'.
	Name string `toml:"name"`
	// Command runs your own processor program: argv, [0] the executable.
	// Exclusive with Stages.
	Command []string `toml:"command"`
	// Binary is the kaelix-proc executable for Stages; "" means
	// kaelix-proc beside kaelixd's own executable, else on $PATH.
	Binary string `toml:"binary"`
	// Input is the topic read (required; declared in [[topics]]).
	Input string `toml:"input"`
	// Group is a queue group on Input ("": every record).
	Group string `toml:"group"`
	// Outputs receive every record that passes the stages; RouteTopics
	// are the topics a route stage may send to. Declared in [[topics]].
	Outputs     []string `toml:"outputs"`
	RouteTopics []string `toml:"route_topics"`
	// From is where a new subscription starts: latest (default) or oldest.
	From string `toml:"from"`
	// Wait is the input's wait strategy: backoff, blocking, yield or
	// busy-spin ("": from runtime.target_latency_us).
	Wait string `toml:"wait"`
	// Priority is the pipeline's priority on the host's pinned workers
	// (0 to 2; with WorkerThreads > 0).
	Priority int `toml:"priority"`
	// WorkerThreads > 0 runs the stages on that many pinned worker
	// threads (package workers); 0: one goroutine.
	WorkerThreads int `toml:"worker_threads"`
	// CPUs is a cpulist ("0-1,4"): the host process's CPU affinity
	// (sched_setaffinity at start, before its code runs) and its workers'.
	CPUs string `toml:"cpus"`
	// User and Group name the account the process runs as ("": kaelixd's
	// own). Needs kaelixd to run as root. The topic ACL
	// ([[security.access]]) applies to the processor as to any client of
	// that user: kaelixd's own user and root pass every rule.
	User      string `toml:"user"`
	UserGroup string `toml:"user_group"`
	// Limits bound its resources (see the README's processors section for
	// how each is enforced on this host).
	Limits ProcessorLimits `toml:"limits"`
	// Permissions: CanAccessNetwork gives the process this host's
	// network; without it, it runs in a new network namespace.
	Permissions ProcessorPermissions `toml:"permissions"`
	// AllowSharedNetwork accepts running without a private network
	// namespace where the host forbids creating one; without it such a
	// processor is refused (status failed, health degraded).
	AllowSharedNetwork bool `toml:"allow_shared_network"`
	// MaxCrashes exits within CrashWindow make kaelixd give up on it
	// (status failed, health degraded) until `kaelixctl processors
	// restart`. Defaults 5 and 1m. Restarts wait MinBackoff (default
	// 100ms) doubling to MaxBackoff (default 10s).
	MaxCrashes  int           `toml:"max_crashes"`
	CrashWindow time.Duration `toml:"crash_window"`
	MinBackoff  time.Duration `toml:"min_backoff"`
	MaxBackoff  time.Duration `toml:"max_backoff"`
	// Stages are the built-in plugins in chain order.
	Stages []ProcessorStage `toml:"stages"`
}

// ProcessorLimits are [processors.limits]; 0 leaves one unlimited.
type ProcessorLimits struct {
	MaxMemoryMB        int `toml:"max_memory_mb"`
	MaxCPUPercent      int `toml:"max_cpu_percent"`
	MaxFileDescriptors int `toml:"max_file_descriptors"`
}

// ProcessorPermissions are [processors.permissions], the process-wide
// ones (a stage's own are in its permissions table).
type ProcessorPermissions struct {
	CanAccessNetwork bool `toml:"can_access_network"`
}

// ProcessorStage is one [[processors.stages]] entry.
type ProcessorStage struct {
	Plugin      string                `toml:"plugin"`
	Name        string                `toml:"name"`
	Permissions processor.Permissions `toml:"permissions"`
	Config      map[string]any        `toml:"config"`
}

// HostConfig is the kaelix-proc configuration of a Stages processor: one
// pipeline named after it.
func (p Processor) HostConfig() host.Config {
	cfg := host.Config{Runtime: host.RuntimeConfig{WorkerThreads: p.WorkerThreads, CPUs: p.CPUs}}
	ps := host.PipelineSpec{Name: p.Name, Input: p.Input, Group: p.Group, Outputs: p.Outputs, RouteTopics: p.RouteTopics,
		Priority: p.Priority, From: p.From, Wait: p.Wait}
	for _, s := range p.Stages {
		ps.Stages = append(ps.Stages, host.StageSpec{Name: s.Name, Plugin: s.Plugin, Config: s.Config, Permissions: s.Permissions})
	}
	cfg.Pipelines = []host.PipelineSpec{ps}
	return cfg
}

// validateProcessors reports bad [[processors]] entries through bad, each
// under its key path (so with its file line): names, topics (declared in
// [[topics]]), plugins (each is built and its Init run with its config),
// limits, and cycles between processors through their topics.
func (c Config) validateProcessors(bad func(key, format string, args ...any)) {
	declared := map[string]bool{}
	for _, t := range c.Topics {
		declared[t.Name] = true
	}
	seen := map[string]int{}
	var graph []host.PipelineSpec // processors whose stages are valid, for the cycle check
	for i, p := range c.Processors {
		key := fmt.Sprintf("processors[%d]", i)
		who := key
		switch {
		case p.Name == "" || strings.Trim(p.Name, nameChars) != "":
			bad(key+".name", "%q: want letters, digits, '-', '_' or '.'", p.Name)
		default:
			who = fmt.Sprintf("processor %q", p.Name)
			if j, dup := seen[p.Name]; dup {
				bad(key+".name", "%s is also declared by processors[%d]", who, j)
			}
			seen[p.Name] = i
		}
		topic := func(k, t, role string) {
			if err := wire.ValidateTopicName(t); err != nil {
				bad(k, "%s: %v", who, err)
			} else if !declared[t] {
				bad(k, "%s: %s topic %q is not declared in [[topics]]", who, role, t)
			}
		}
		if p.Input == "" {
			bad(key+".input", "%s: no input topic", who)
		} else {
			topic(key+".input", p.Input, "input")
		}
		for j, t := range p.Outputs {
			topic(fmt.Sprintf("%s.outputs[%d]", key, j), t, "output")
		}
		for j, t := range p.RouteTopics {
			topic(fmt.Sprintf("%s.route_topics[%d]", key, j), t, "route")
		}
		if slices.Contains(slices.Concat(p.Outputs, p.RouteTopics), p.Input) {
			bad(key+".outputs", "%s: input %q is also an output: a cycle", who, p.Input)
		}
		if p.From != "" && p.From != "latest" && p.From != "oldest" {
			bad(key+".from", "%s: %q: want latest or oldest", who, p.From)
		}
		if !slices.Contains([]string{"", "backoff", "blocking", "yield", "busy-spin"}, p.Wait) {
			bad(key+".wait", "%s: %q: want backoff, blocking, yield or busy-spin", who, p.Wait)
		}
		if p.Priority < 0 || p.Priority > 2 {
			bad(key+".priority", "%s: %d: want 0 to 2", who, p.Priority)
		}
		if p.WorkerThreads < 0 || p.WorkerThreads > 64 {
			bad(key+".worker_threads", "%s: %d: want 0 to 64", who, p.WorkerThreads)
		}
		if p.CPUs != "" {
			if _, err := numa.ParseCPUList(p.CPUs); err != nil {
				bad(key+".cpus", "%s: %v", who, err)
			}
		}
		if p.User != "" {
			if _, err := user.Lookup(p.User); err != nil {
				bad(key+".user", "%s: %v", who, err)
			}
		}
		if p.UserGroup != "" {
			if _, err := LookupGroup(p.UserGroup); err != nil {
				bad(key+".user_group", "%s: %v", who, err)
			}
		}
		l := p.Limits
		for _, x := range []struct {
			k string
			v int
		}{{"max_memory_mb", l.MaxMemoryMB}, {"max_cpu_percent", l.MaxCPUPercent}, {"max_file_descriptors", l.MaxFileDescriptors}} {
			if x.v < 0 {
				bad(key+".limits."+x.k, "%s: %d is negative", who, x.v)
			}
		}
		if l.MaxMemoryMB > 0 && l.MaxMemoryMB < 32 {
			bad(key+".limits.max_memory_mb", "%s: %d: want 0 (unlimited) or at least 32 (a Go host needs more to start)", who, l.MaxMemoryMB)
		}
		if l.MaxFileDescriptors > 0 && l.MaxFileDescriptors < 16 {
			bad(key+".limits.max_file_descriptors", "%s: %d: want 0 (unlimited) or at least 16", who, l.MaxFileDescriptors)
		}
		if l.MaxCPUPercent > 100*1024 {
			bad(key+".limits.max_cpu_percent", "%s: %d: want at most 100 per CPU", who, l.MaxCPUPercent)
		}
		if p.MaxCrashes < 0 {
			bad(key+".max_crashes", "%s: %d is negative", who, p.MaxCrashes)
		}
		for _, x := range []struct {
			k string
			v time.Duration
		}{{"crash_window", p.CrashWindow}, {"min_backoff", p.MinBackoff}, {"max_backoff", p.MaxBackoff}} {
			if x.v < 0 {
				bad(key+"."+x.k, "%s: %v is negative", who, x.v)
			}
		}
		switch {
		case len(p.Command) > 0 && len(p.Stages) > 0:
			bad(key+".command", "%s: command and stages are exclusive (stages run in kaelix-proc)", who)
			continue
		case len(p.Command) > 0:
			if p.Command[0] == "" {
				bad(key+".command", "%s: empty executable", who)
			}
			graph = append(graph, host.PipelineSpec{Name: p.Name, Input: p.Input, Outputs: p.Outputs, RouteTopics: p.RouteTopics})
			continue
		case len(p.Stages) == 0:
			bad(key+".stages", "%s: no stages and no command", who)
			continue
		}
		spec := p.HostConfig().Pipelines[0]
		reg, err := spec.Registry(nil)
		if err != nil {
			bad(key+".stages"+stageIndex(p, err), "%s: %v", who, err)
			continue
		}
		if err := reg.InitAll(); err != nil {
			bad(key+".stages"+stageIndex(p, err), "%s: %v", who, err)
			continue
		}
		spec.RouteTopics = slices.Concat(spec.RouteTopics, reg.RouteTargets())
		reg.CloseAll()
		graph = append(graph, spec)
	}
	if cyc := host.FindCycle(graph); cyc != "" {
		bad("processors", "cycle between processors: %s", cyc)
	}
}

const nameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."

// stageIndex is "[j]" for the stage an error from the registry names
// (`stage "x": ...`, `stages[j]: ...`), so the error carries its line;
// "" when it names none.
func stageIndex(p Processor, err error) string {
	var pe *processor.PluginError
	name := ""
	if errors.As(err, &pe) {
		name = pe.Stage
	}
	msg := err.Error()
	for j, s := range p.Stages {
		n := s.Name
		if n == "" {
			n = s.Plugin
		}
		if n == name || strings.HasPrefix(msg, fmt.Sprintf("stage %q", n)) || strings.HasPrefix(msg, "stages["+strconv.Itoa(j)+"]") {
			return "[" + strconv.Itoa(j) + "]"
		}
	}
	return ""
}

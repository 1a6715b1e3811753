package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kaelix-io/kaelix/wire"
)

// ProcessorsCmd groups the processor verbs: the [[processors]] kaelixd
// runs, as its supervisor sees them, with the counts each host stores in
// its counters region (read by the daemon).
type ProcessorsCmd struct {
	List    ProcessorsListCmd    `cmd:"" default:"1" help:"List the processors kaelixd runs: state, pid, restarts, records in/out/dropped/failed."`
	Info    ProcessorsInfoCmd    `cmd:"" help:"One processor: its process, how its limits are enforced, limit hits, counts and processing time."`
	Restart ProcessorsRestartCmd `cmd:"" help:"Restart a processor's process now (a given-up one too, its crash count cleared)."`
}

// ProcessorsListCmd is `processors list`.
type ProcessorsListCmd struct{}

// ProcessorsInfoCmd is `processors info NAME`.
type ProcessorsInfoCmd struct {
	Name string `arg:"" help:"The processor's name in kaelixd's [[processors]]."`
}

// ProcessorsRestartCmd is `processors restart NAME`.
type ProcessorsRestartCmd struct {
	Name string `arg:"" help:"The processor's name in kaelixd's [[processors]]."`
}

func (g *Globals) processors() ([]wire.ProcessorInfo, error) {
	var ps wire.Processors
	if err := g.control(wire.TypeProcessors, &ps); err != nil {
		return nil, err
	}
	return ps.Processors, nil
}

// Run prints one line per processor.
func (c *ProcessorsListCmd) Run(g *Globals) error {
	ps, err := g.processors()
	if err != nil {
		return err
	}
	if g.json() {
		return writeJSON(g.stdout, ps)
	}
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PROCESSOR\tSTATE\tPID\tRESTARTS\tPIPELINES\tIN\tOUT\tDROPPED\tFAILED\tP50\tTOPICS")
	for _, p := range ps {
		pid := "-"
		if p.PID > 0 {
			pid = fmt.Sprint(p.PID)
		}
		pipes := "-"
		if p.Pipelines > 0 {
			pipes = fmt.Sprintf("%d/%d running", p.PipelinesRunning, p.Pipelines)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t%s -> %s\n", p.Name, p.State, pid, p.Restarts, pipes, p.In, p.Out, p.Dropped, p.Failed,
			quantile(p, 0.5), p.Input, strings.Join(p.Outputs, ","))
	}
	return w.Flush()
}

// quantile is the upper bound of the histogram bucket holding quantile q
// ("<64ns"), or "-" with no timed record.
func quantile(p wire.ProcessorInfo, q float64) string {
	if p.TimedRecords == 0 {
		return "-"
	}
	want := uint64(q*float64(p.TimedRecords)) + 1
	var cum uint64
	for i, n := range p.Buckets {
		cum += n
		if cum >= want {
			if i < len(p.BucketsNS) && p.BucketsNS[i] > 0 {
				return "<" + time.Duration(p.BucketsNS[i]).String()
			}
			break
		}
	}
	if len(p.BucketsNS) > 1 {
		return ">=" + time.Duration(p.BucketsNS[len(p.BucketsNS)-2]).String()
	}
	return "-"
}

// Run prints one processor in full.
func (c *ProcessorsInfoCmd) Run(g *Globals) error {
	ps, err := g.processors()
	if err != nil {
		return err
	}
	for _, p := range ps {
		if p.Name != c.Name {
			continue
		}
		if g.json() {
			return writeJSON(g.stdout, p)
		}
		out := g.stdout
		what := "stages " + strings.Join(p.Stages, " -> ")
		if p.Kind == "command" {
			what = "command " + strings.Join(p.Command, " ")
		}
		group := ""
		if p.Group != "" {
			group = " (queue group " + p.Group + ")"
		}
		fmt.Fprintf(out, "processor %s: %s\n", p.Name, what)
		fmt.Fprintf(out, "topics:    %s%s -> %s\n", p.Input, group, strings.Join(p.Outputs, ", "))
		state := p.State
		if p.PID > 0 {
			state += fmt.Sprintf(", pid %d", p.PID)
		}
		if p.SinceNS > 0 {
			state += fmt.Sprintf(", since %s", time.Unix(0, p.SinceNS).Format(time.RFC3339))
		}
		fmt.Fprintf(out, "state:     %s; %d restarts, %d crashes in the window\n", state, p.Restarts, p.Crashes)
		if p.Reason != "" {
			fmt.Fprintf(out, "reason:    %s\n", p.Reason)
		}
		if p.LastExit != "" {
			fmt.Fprintf(out, "last exit: %s\n", p.LastExit)
		}
		fmt.Fprintf(out, "memory:    %s\ncpu:       %s\nfiles:     %s\nnetwork:   %s\ncpu set:   %s\n",
			p.Limits.Memory, p.Limits.CPU, p.Limits.Files, p.Limits.Network, p.Limits.CPUSet)
		var hits []string
		for k, v := range p.LimitHits {
			hits = append(hits, fmt.Sprintf("%s=%d", k, v))
		}
		sort.Strings(hits)
		if len(hits) == 0 {
			hits = []string{"none"}
		}
		fmt.Fprintf(out, "limit hits: %s\n", strings.Join(hits, " "))
		if p.Counters != "" {
			fmt.Fprintf(out, "records:   %s\n", p.Counters)
		} else {
			if p.Pipelines > 0 {
				fmt.Fprintf(out, "pipelines: %d of %d running\n", p.PipelinesRunning, p.Pipelines)
			}
			fmt.Fprintf(out, "records:   in %d, out %d, dropped %d, failed %d\n", p.In, p.Out, p.Dropped, p.Failed)
			mean := "-"
			if p.TimedRecords > 0 {
				mean = (time.Duration(p.TimedSumNS / p.TimedRecords)).String()
			}
			fmt.Fprintf(out, "processing time (%d timed records): mean %s, p50 %s, p99 %s\n", p.TimedRecords, mean, quantile(p, 0.5), quantile(p, 0.99))
		}
		if p.Stderr != "" {
			fmt.Fprintf(out, "stderr (last run, tail):\n%s\n", strings.TrimRight(p.Stderr, "\n"))
		}
		return nil
	}
	return errors.New("kaelixd runs no processor named " + c.Name + " (kaelixctl processors list)")
}

// Run asks kaelixd to restart the processor.
func (c *ProcessorsRestartCmd) Run(g *Globals) error {
	err := g.controlEach(wire.TypeProcessorRestart, func(call func(body, out any) error) error {
		return call(wire.ProcessorRestart{Name: c.Name}, nil)
	})
	if err != nil {
		return err
	}
	if g.json() {
		return writeJSON(g.stdout, map[string]string{"restarted": c.Name})
	}
	fmt.Fprintf(g.stdout, "processor %s: restarting\n", c.Name)
	return nil
}

package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// Result is one row of a report. The fields named in issue 6 come first,
// with their JSON names; fields that do not apply to a mode are omitted.
// The ones after them are additions that tell rows of one run apart.
type Result struct {
	Mode              string   `json:"mode"`
	Transport         string   `json:"transport"`
	Wait              string   `json:"wait,omitempty"`
	PayloadBytes      int      `json:"payload_bytes"`
	Samples           int64    `json:"samples"`
	P50NS             int64    `json:"p50_ns,omitempty"`
	P90NS             int64    `json:"p90_ns,omitempty"`
	P99NS             int64    `json:"p99_ns,omitempty"`
	P999NS            int64    `json:"p999_ns,omitempty"`
	P9999NS           int64    `json:"p9999_ns,omitempty"`
	MaxNS             int64    `json:"max_ns,omitempty"`
	MeanNS            float64  `json:"mean_ns,omitempty"`
	RecordsPerS       float64  `json:"records_per_s,omitempty"`
	BytesPerS         float64  `json:"bytes_per_s,omitempty"`
	AllocsPerRecord   *float64 `json:"allocs_per_record,omitempty"`
	SyscallsPerRecord *float64 `json:"syscalls_per_record,omitempty"`

	// FutexPerRecord is the part of SyscallsPerRecord that the transport
	// itself made: futex calls (Kaelix: the ring's Wakeups + Waits
	// counters; futex-floor: its own count). The rest of
	// SyscallsPerRecord is read/write-family calls of the processes.
	FutexPerRecord *float64 `json:"futex_per_record,omitempty"`
	// Runs is how many times the combination ran (Repeat); the row is the
	// median run by records/s (throughput) or p50 (latency).
	Runs int `json:"runs,omitempty"`
	// CPUs is the placement: the parent's CPU, then the peers'.
	CPUs string `json:"cpus,omitempty"`
	// Batch is records per publish call in throughput runs (1: off).
	Batch int `json:"batch,omitempty"`
	// OneWayP50NS and OneWayP99NS are RTT/2 (pingpong).
	OneWayP50NS int64 `json:"one_way_p50_ns,omitempty"`
	OneWayP99NS int64 `json:"one_way_p99_ns,omitempty"`
	// Peers is N in fanout/fanin; Peer numbers a per-subscriber (fanout)
	// or per-publisher (fanin) row from 1; the row without Peer merges
	// them and carries the spread (max - min over peers) of p50 and p99.
	Peers       int   `json:"peers,omitempty"`
	Peer        int   `json:"peer,omitempty"`
	SpreadP50NS int64 `json:"spread_p50_ns,omitempty"`
	SpreadP99NS int64 `json:"spread_p99_ns,omitempty"`
	// Label names a suite step (e.g. "same-core"), if any.
	Label string `json:"label,omitempty"`
	// Group names the interleaved run the row comes from: rows of one
	// group were measured in the same two processes, in alternating
	// blocks (interleave.go), Rounds measured rounds. The Round fields
	// hold the row's figure of every round, in order: block percentiles
	// (pingpong) or block records/s (throughput).
	Group            string    `json:"group,omitempty"`
	Rounds           int       `json:"rounds,omitempty"`
	RoundP50NS       []int64   `json:"round_p50_ns,omitempty"`
	RoundP99NS       []int64   `json:"round_p99_ns,omitempty"`
	RoundP999NS      []int64   `json:"round_p999_ns,omitempty"`
	RoundRecordsPerS []float64 `json:"round_records_per_s,omitempty"`

	hist *Histogram // the merged histogram, for the .hlog files (not in JSON)
}

func (r *Result) setSummary(s Summary) {
	r.Samples = s.Samples
	r.P50NS, r.P90NS, r.P99NS, r.P999NS, r.P9999NS = s.P50, s.P90, s.P99, s.P999, s.P9999
	r.MaxNS, r.MeanNS = s.Max, s.Mean
}

// Name is the row's legend: transport, wait strategy, size and the
// variant fields.
func (r *Result) Name() string {
	var b strings.Builder
	b.WriteString(r.Transport)
	if r.Wait != "" {
		b.WriteString("/" + r.Wait)
	}
	fmt.Fprintf(&b, " %dB", r.PayloadBytes)
	if r.Batch > 1 {
		fmt.Fprintf(&b, " batch%d", r.Batch)
	}
	if r.Label != "" {
		b.WriteString(" [" + r.Label + "]")
	}
	if r.Peer > 0 {
		fmt.Fprintf(&b, " #%d", r.Peer)
	}
	return b.String()
}

// Report is a run's machine facts and results: the content of
// results.json. Notes (skipped combinations, failures) go to report.md and
// the terminal, not to results.json.
type Report struct {
	Machine Machine  `json:"machine"`
	Results []Result `json:"results"`
	Notes   []string `json:"-"`
	Claims  []Claim  `json:"-"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadReport reads a results.json.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadReport, path, err)
	}
	if r.Machine.GoVersion == "" {
		return nil, fmt.Errorf("%w: %s: no machine facts", ErrBadReport, path)
	}
	return &r, nil
}

func fmtNS(ns int64) string {
	switch {
	case ns == 0:
		return "-"
	case ns < 10_000:
		return fmt.Sprintf("%dns", ns)
	case ns < 10_000_000:
		return fmt.Sprintf("%.1fµs", float64(ns)/1e3)
	default:
		return fmt.Sprintf("%.1fms", float64(ns)/1e6)
	}
}

func fmtRate(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtPer(p *float64) string {
	if p == nil {
		return "n/a"
	}
	if *p == 0 {
		return "0"
	}
	if *p < 0.01 {
		return fmt.Sprintf("%.4f", *p)
	}
	return fmt.Sprintf("%.2f", *p)
}

// WriteTable writes the results as an aligned terminal table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\ttransport\twait\tbytes\tcpus\tbatch\tpeer\tsamples\tp50\tp90\tp99\tp99.9\tp99.99\tmax\tmean\trec/s\tMB/s\tallocs/rec\tsyscalls/rec\tfutex/rec\t")
	for _, x := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			x.Mode+labelSuffix(x.Label), x.Transport, dash(x.Wait), x.PayloadBytes, dash(x.CPUs), batchCol(x), peerCol(x), x.Samples,
			fmtNS(x.P50NS), fmtNS(x.P90NS), fmtNS(x.P99NS), fmtNS(x.P999NS), fmtNS(x.P9999NS), fmtNS(x.MaxNS), fmtNS(int64(x.MeanNS)),
			fmtRate(x.RecordsPerS), fmtMB(x.BytesPerS), fmtPer(x.AllocsPerRecord), fmtPer(x.SyscallsPerRecord), fmtPer(x.FutexPerRecord))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	return nil
}

func labelSuffix(l string) string {
	if l == "" {
		return ""
	}
	return "[" + l + "]"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func batchCol(x Result) string {
	if x.Batch == 0 {
		return "-"
	}
	return fmt.Sprint(x.Batch)
}

func peerCol(x Result) string {
	switch {
	case x.Peer > 0:
		return fmt.Sprintf("%d/%d", x.Peer, x.Peers)
	case x.Peers > 0:
		return fmt.Sprintf("all/%d", x.Peers)
	}
	return "-"
}

func fmtMB(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", v/1e6)
}

// WriteDir writes report.md, results.json, the plots (WritePlots) and the
// HdrHistogram logs (WriteHlogs) into dir, creating it.
func (r *Report) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "results.json"))
	if err != nil {
		return err
	}
	if err := r.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	plots, err := r.WritePlots(dir)
	if err != nil {
		return err
	}
	if _, err := r.WriteHlogs(dir); err != nil {
		return err
	}
	md, err := os.Create(filepath.Join(dir, "report.md"))
	if err != nil {
		return err
	}
	if err := r.WriteMarkdown(md, plots); err != nil {
		md.Close()
		return err
	}
	return md.Close()
}

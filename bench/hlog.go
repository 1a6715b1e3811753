package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// WriteHlogs writes each latency row's histogram as an HdrHistogram
// interval log (one interval spanning the run; values in ns) into
// dir/hlog/, named MODE-TRANSPORT[-WAIT]-SIZEB[-LABEL].hlog, which the
// standard HdrHistogram tools (HistogramLogAnalyzer, hdr-plot) read. Rows
// read back from results.json have no histograms and write nothing. It
// returns the file names written, relative to dir.
func (r *Report) WriteHlogs(dir string) ([]string, error) {
	var files []string
	start := time.Now()
	if t, err := time.Parse(time.RFC3339, r.Machine.Date); err == nil {
		start = t
	}
	for _, x := range r.Results {
		if x.hist == nil || x.Peer != 0 || x.hist.Count() == 0 {
			continue
		}
		if len(files) == 0 {
			if err := os.MkdirAll(filepath.Join(dir, "hlog"), 0o755); err != nil {
				return nil, err
			}
		}
		name := x.Mode + "-" + x.Transport
		if x.Wait != "" {
			name += "-" + x.Wait
		}
		name += fmt.Sprintf("-%dB", x.PayloadBytes)
		if x.Label != "" {
			name += "-" + x.Label
		}
		name = "hlog/" + strings.NewReplacer("/", "_", " ", "_").Replace(name) + ".hlog"
		if err := writeHlog(filepath.Join(dir, name), x, start); err != nil {
			return files, err
		}
		files = append(files, name)
	}
	return files, nil
}

func writeHlog(path string, x Result, start time.Time) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := hdrhistogram.NewHistogramLogWriter(f)
	h := x.hist.h
	h.SetTag(strings.ReplaceAll(x.Name(), " ", "_"))
	h.SetStartTimeMs(start.UnixMilli())
	h.SetEndTimeMs(start.UnixMilli() + 1)
	w.SetBaseTime(start.UnixMilli())
	steps := []func() error{
		w.OutputLogFormatVersion,
		func() error {
			return w.OutputComment(fmt.Sprintf("kaelix-bench %s %s cpus %s: values in nanoseconds", x.Mode, x.Name(), x.CPUs))
		},
		func() error { return w.OutputStartTime(start.UnixMilli()) },
		func() error { return w.OutputBaseTime(start.UnixMilli()) },
		w.OutputLegend,
		func() error { return w.OutputIntervalHistogram(h) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

package bench

import (
	"fmt"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// percentileX places a percentile on the plot's x axis: 1/(1-q), so that
// p50, p90, p99, p99.9 and p99.99 are evenly spaced on a log scale.
func percentileX(q float64) float64 { return 1 / (1 - q/100) }

var plotPercentiles = []struct {
	q     float64
	label string
}{{50, "p50"}, {90, "p90"}, {99, "p99"}, {99.9, "p99.9"}, {99.99, "p99.99"}}

// latencyModes are the modes whose rows have latency percentiles.
var latencyModes = []string{ModePingPong, ModeOneway, ModeFanout, ModeFanin}

// WritePlots writes latency-MODE.png into dir for each latency mode with
// rows: latency by percentile, both axes log scale, one line per row
// (transport, wait strategy, size; merged rows only in fan modes). It
// returns the file names written.
func (r *Report) WritePlots(dir string) ([]string, error) {
	var files []string
	for _, mode := range latencyModes {
		var rows []Result
		for _, x := range r.Results {
			if x.Mode == mode && x.Peer == 0 && x.P50NS > 0 {
				rows = append(rows, x)
			}
		}
		if len(rows) == 0 {
			continue
		}
		name := "latency-" + mode + ".png"
		if err := plotLatency(rows, mode, filepath.Join(dir, name)); err != nil {
			return files, err
		}
		files = append(files, name)
	}
	return files, nil
}

func plotLatency(rows []Result, mode, path string) error {
	p := plot.New()
	what := "latency"
	if mode == ModePingPong {
		what = "round-trip time"
	}
	p.Title.Text = fmt.Sprintf("%s: %s by percentile", mode, what)
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = what + " (ns, log scale)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	var ticks []plot.Tick
	for _, pp := range plotPercentiles {
		ticks = append(ticks, plot.Tick{Value: percentileX(pp.q), Label: pp.label})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	p.Add(plotter.NewGrid())
	var args []any
	for _, x := range rows {
		vals := []int64{x.P50NS, x.P90NS, x.P99NS, x.P999NS, x.P9999NS}
		var xys plotter.XYs
		for i, pp := range plotPercentiles {
			if vals[i] > 0 {
				xys = append(xys, plotter.XY{X: percentileX(pp.q), Y: float64(vals[i])})
			}
		}
		if len(xys) == 0 {
			continue
		}
		args = append(args, x.Name(), xys)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return err
	}
	// Leave room above the highest line for the legend.
	p.Y.Max *= 30
	p.X.Min, p.X.Max = percentileX(40), percentileX(99.995)
	h := 6*vg.Inch + vg.Length(len(rows))*0.12*vg.Inch
	return p.Save(11*vg.Inch, min(h, 12*vg.Inch), path)
}

// sortedModes returns the modes present in r, in Modes order.
func (r *Report) sortedModes() []string {
	var out []string
	for _, m := range Modes {
		if slices.ContainsFunc(r.Results, func(x Result) bool { return x.Mode == m }) {
			out = append(out, m)
		}
	}
	return out
}

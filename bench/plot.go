package bench

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// percentileX places a percentile on the plot's x axis: 1/(1-q), so that
// p50, p90, p99, p99.9 and p99.99 are evenly spaced on a log scale. The
// maximum is drawn one step further right (maxX).
func percentileX(q float64) float64 { return 1 / (1 - q/100) }

var maxX = percentileX(99.999)

var plotPercentiles = []struct {
	q     float64
	label string
}{{50, "p50"}, {90, "p90"}, {99, "p99"}, {99.9, "p99.9"}, {99.99, "p99.99"}}

// latencyModes are the modes whose rows have latency percentiles.
var latencyModes = []string{ModePingPong, ModeOneway, ModeFanout, ModeFanin}

// maxSeries is the most lines a plot carries.
const maxSeries = 6

// seriesStyles: distinct colours (Okabe-Ito, readable by colour-blind
// readers) and distinct markers, one pair per series.
var seriesStyles = []struct {
	c color.Color
	g draw.GlyphDrawer
}{
	{color.RGBA{0, 0, 0, 255}, draw.CircleGlyph{}},
	{color.RGBA{230, 159, 0, 255}, draw.BoxGlyph{}},
	{color.RGBA{86, 180, 233, 255}, draw.TriangleGlyph{}},
	{color.RGBA{0, 158, 115, 255}, draw.CrossGlyph{}},
	{color.RGBA{213, 94, 0, 255}, draw.PyramidGlyph{}},
	{color.RGBA{204, 121, 167, 255}, draw.RingGlyph{}},
}

// regime is one plot of pingpong rows: which (transport, wait) pairs, in
// legend order.
type regime struct {
	file, title string
	cpus        string      // SameCore: the same-core rows; else every other placement
	series      [][2]string // transport, wait ("" matches the inherent one)
}

var regimes = []regime{
	{"latency-spinning.png", "spinning (busy-spin): floor vs Kaelix", CrossCore, [][2]string{
		{"floor", ""}, {"kaelix-spsc", "busy-spin"}, {"kaelix-mpmc", "busy-spin"}, {"kaelix-queue", "busy-spin"}, {"kaelix-spsc", "yield"}, {"copy-floor", ""}}},
	{"latency-sleeping.png", "sleeping: futex floor vs Kaelix blocking/backoff vs sockets, NATS, shmipc-go", CrossCore, [][2]string{
		{"futex-floor", ""}, {"kaelix-spsc", "blocking"}, {"kaelix-spsc", "backoff"}, {"uds", ""}, {"nats", ""}, {"shmipc-go", ""}}},
	{"latency-same-core.png", "sleeping, both sides on one core", SameCore, [][2]string{
		{"futex-floor", ""}, {"kaelix-spsc", "blocking"}, {"uds", ""}}},
}

// WritePlots writes into dir one plot per pingpong regime (spinning,
// sleeping, same-core) and one per other latency mode (latency-MODE.png),
// each with at most six series: latency by percentile and the maximum,
// both axes log scale. It returns the file names written.
func (r *Report) WritePlots(dir string) ([]string, error) {
	var files []string
	f := finder{r.Results}
	for _, g := range regimes {
		var rows []Result
		for _, s := range g.series {
			for _, x := range f.rows {
				same := x.CPUs == SameCore
				if x.Mode == ModePingPong && x.Transport == s[0] && (s[1] == "" || x.Wait == s[1]) && x.P50NS > 0 && same == (g.cpus == SameCore) && x.Label != AloneLabel {
					rows = append(rows, x)
					break
				}
			}
		}
		if len(rows) == 0 {
			continue
		}
		if err := r.plotLatency(rows, ModePingPong, g.title, filepath.Join(dir, g.file)); err != nil {
			return files, err
		}
		files = append(files, g.file)
	}
	for _, mode := range latencyModes[1:] {
		var rows []Result
		for _, x := range r.Results {
			if x.Mode == mode && x.Peer == 0 && x.P50NS > 0 {
				rows = append(rows, x)
			}
		}
		if len(rows) == 0 {
			continue
		}
		// Kaelix SPSC first, then the floors, then the rest, as listed.
		slices.SortStableFunc(rows, func(a, b Result) int { return seriesRank(a) - seriesRank(b) })
		rows = rows[:min(len(rows), maxSeries)]
		name := "latency-" + mode + ".png"
		if err := r.plotLatency(rows, mode, mode, filepath.Join(dir, name)); err != nil {
			return files, err
		}
		files = append(files, name)
	}
	return files, nil
}

func seriesRank(x Result) int {
	switch {
	case strings.HasSuffix(x.Transport, "floor"):
		return 0
	case x.Transport == "kaelix-spsc":
		return 1
	case strings.HasPrefix(x.Transport, "kaelix-"):
		return 3
	}
	return 2
}

// durationTicks are log-scale ticks labelled in ns, µs, ms or s.
type durationTicks struct{}

func (durationTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for e := math.Floor(math.Log10(max(lo, 1))); math.Pow(10, e) <= hi*10; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || hi/lo < 1000 {
				t.Label = durationLabel(v)
			}
			out = append(out, t)
		}
	}
	return out
}

func durationLabel(ns float64) string {
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%g ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%g µs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%g ms", ns/1e6)
	}
	return fmt.Sprintf("%g s", ns/1e9)
}

func (r *Report) plotLatency(rows []Result, mode, title, path string) error {
	p := plot.New()
	what := "latency"
	if mode == ModePingPong {
		what = "round-trip time"
	}
	var lo, hi int64 = math.MaxInt64, 0
	for _, x := range rows {
		lo, hi = min(lo, x.Samples), max(hi, x.Samples)
	}
	samples := fmt.Sprint(lo)
	if hi != lo {
		samples = fmt.Sprintf("%d–%d", lo, hi)
	}
	date := r.Machine.Date
	if len(date) > 16 {
		date = date[:16]
	}
	p.Title.Text = fmt.Sprintf("%s: %s by percentile, %d B\n%s, %s, samples per series %s", title, what, rows[0].PayloadBytes, r.Machine.Host, date, samples)
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = what + " (log scale)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	var ticks []plot.Tick
	for _, pp := range plotPercentiles {
		ticks = append(ticks, plot.Tick{Value: percentileX(pp.q), Label: pp.label})
	}
	ticks = append(ticks, plot.Tick{Value: maxX, Label: "max"})
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Tick.Marker = durationTicks{}
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Add(plotter.NewGrid())
	ymin, ymax := math.Inf(1), 0.0
	for i, x := range rows {
		vals := []int64{x.P50NS, x.P90NS, x.P99NS, x.P999NS, x.P9999NS}
		var xys plotter.XYs
		for k, pp := range plotPercentiles {
			if vals[k] > 0 {
				xys = append(xys, plotter.XY{X: percentileX(pp.q), Y: float64(vals[k])})
			}
		}
		if x.MaxNS > 0 {
			xys = append(xys, plotter.XY{X: maxX, Y: float64(x.MaxNS)})
		}
		if len(xys) == 0 {
			continue
		}
		for _, v := range xys {
			ymin, ymax = min(ymin, v.Y), max(ymax, v.Y)
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		st := seriesStyles[i%len(seriesStyles)]
		l.Color, l.Width = st.c, vg.Points(1.5)
		pts.Color, pts.Shape, pts.Radius = st.c, st.g, vg.Points(3.5)
		p.Add(l, pts)
		name := x.Transport
		if x.Wait != "" && !strings.HasSuffix(x.Transport, "floor") {
			name += "/" + x.Wait
		}
		p.Legend.Add(fmt.Sprintf("%s (p50 %s, max %s, n=%d)", name, fmtNS(x.P50NS), fmtNS(x.MaxNS), x.Samples), l, pts)
	}
	// Leave room above the highest line for the legend.
	p.Y.Min, p.Y.Max = max(ymin/2, 1), ymax*40
	p.X.Min, p.X.Max = percentileX(40), percentileX(99.9995)
	return p.Save(11*vg.Inch, 7*vg.Inch, path)
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

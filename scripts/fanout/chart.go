package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// panel is one size's receipt latencies, for the chart.
type panel struct {
	n, rounds int
	lats      map[string][]float64 // µs, every client of every round, by strategy
}

// cdfPoints is how many points draw each curve: quantiles evenly spaced in probability.
const cdfPoints = 400

// writeChart draws one panel per size, side by side: the empirical CDF of receipt latency
// of every strategy, on a logarithmic time axis. The format follows path's extension
// (svg, png or pdf).
func writeChart(path string, panels []panel) error {
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	if format != "svg" && format != "png" && format != "pdf" {
		return fmt.Errorf("--chart %s: want a .svg, .png or .pdf file", path)
	}
	plots := make([][]*plot.Plot, 1)
	for _, pn := range panels {
		p, err := cdfPlot(pn)
		if err != nil {
			return err
		}
		plots[0] = append(plots[0], p)
	}
	const w, h = 4.5 * vg.Inch, 4 * vg.Inch
	canvas, err := draw.NewFormattedCanvas(w*vg.Length(len(panels)), h, format)
	if err != nil {
		return err
	}
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2,
		PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	dc := draw.New(canvas)
	for i, c := range plot.Align(plots, tiles, dc)[0] {
		plots[0][i].Draw(c)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := canvas.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cdfPlot is one panel: a line per strategy, in strategyNames order.
func cdfPlot(pn panel) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%d clients, %d rounds per strategy", pn.n, pn.rounds)
	p.X.Label.Text = "receipt latency, µs (log scale)"
	p.Y.Label.Text = "fraction of receipts"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Millimeter*2, -vg.Millimeter*2
	for i, s := range strategyNames {
		xs := pn.lats[s]
		if len(xs) == 0 {
			continue
		}
		line, err := plotter.NewLine(cdf(xs))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s, err)
		}
		line.Color = plotutil.Color(i)
		line.Dashes = plotutil.Dashes(i)
		line.Width = vg.Points(1.5)
		if s == "bulb" {
			line.Width = vg.Points(3)
		}
		p.Add(line)
		p.Legend.Add(s, line)
	}
	return p, nil
}

// cdf returns cdfPoints points (latency, fraction) of the empirical CDF of the positive
// values of xs: the receipts that came after the start. The axis is logarithmic, so a
// value below 1 µs is drawn at 1 µs.
func cdf(xs []float64) plotter.XYs {
	s := make([]float64, 0, len(xs))
	for _, x := range xs {
		if x > 0 {
			s = append(s, math.Max(x, 1))
		}
	}
	slices.Sort(s)
	if len(s) == 0 {
		return nil
	}
	k := min(cdfPoints, len(s))
	pts := make(plotter.XYs, 0, k+1)
	pts = append(pts, plotter.XY{X: s[0], Y: 0})
	for j := 1; j <= k; j++ {
		i := j*len(s)/k - 1 // the last of the first j/k of the values
		pts = append(pts, plotter.XY{X: s[i], Y: float64(i+1) / float64(len(s))})
	}
	return pts
}

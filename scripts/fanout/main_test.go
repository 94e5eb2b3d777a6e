package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestMain makes the test binary the client process when run re-executes it.
func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		if err := child(v); err != nil {
			os.Stderr.WriteString("fanout client process: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestQuickRun runs the whole program on a few clients and checks its table: every
// strategy has a row, every strategy delivered to every client in every round, and every
// bias p-value is a probability.
//
// It does not compare the strategies' bias p-values. The ranks are receipt ranks seen by
// the client process, whose own scheduling reorders near-simultaneous arrivals: at 200
// clients and 3 rounds, three runs without -race gave single-hub (one fixed order)
// p = 0.003, 0.68 and 3.6e-18, and under -race 0.23 and 0.73 (50 clients: 0.73), against
// bulb's 0.35–0.8. At 1,000 clients the fixed orders do show (p ≈ 1e-190); that is a
// measurement for scripts/bench.sh fanout, not a test that can pass every time.
func TestQuickRun(t *testing.T) {
	const clients = 50
	chart := filepath.Join(t.TempDir(), "cdf.svg")
	profiles := t.TempDir()
	var out strings.Builder
	if err := run([]string{"--quick", "--clients", strconv.Itoa(clients), "--rounds", "3", "--chart", chart, "--cpuprofile", profiles}, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	t.Logf("output:\n%s", out.String())
	if !strings.Contains(out.String(), "command: go run ./scripts/fanout --quick --clients 50 --rounds 3 --chart "+chart+" --cpuprofile "+profiles) {
		t.Errorf("output lacks the command line")
	}
	for _, s := range strategyNames {
		for round := 1; round <= 3; round++ {
			name := fmt.Sprintf("%d-%s-%d.pprof", clients, s, round)
			b, err := os.ReadFile(filepath.Join(profiles, name))
			if err != nil || !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) { // a profile is gzipped
				t.Errorf("profile %s: got %.8q, %v; want a gzipped profile", name, b, err)
			}
		}
	}
	svg, err := os.ReadFile(chart)
	if err != nil {
		t.Fatalf("chart: got %v, want the file", err)
	}
	if !bytes.Contains(svg, []byte("<svg")) {
		t.Errorf("chart: got %.40q…, want an SVG", svg)
	}
	for _, s := range strategyNames {
		if !bytes.Contains(svg, []byte(">"+s+"<")) {
			t.Errorf("chart: no legend entry %q", s)
		}
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		if len(f) == 10 && slices.Contains(strategyNames, f[0]) {
			rows[f[0]] = f
		}
	}
	biasP := map[string]float64{}
	for _, s := range strategyNames {
		f, ok := rows[s]
		if !ok {
			t.Errorf("no row for %s", s)
			continue
		}
		if f[1] != strconv.Itoa(clients) {
			t.Errorf("%s: n/round %s, want %d", s, f[1], clients)
		}
		p, err := strconv.ParseFloat(f[6], 64)
		if err != nil {
			t.Errorf("%s: bias-p %q: %v", s, f[6], err)
		}
		biasP[s] = p
	}
	for s, p := range biasP {
		if !(p >= 0 && p <= 1) {
			t.Errorf("%s: bias p %g, want a probability", s, p)
		}
	}
}

func TestCDF(t *testing.T) {
	tests := []struct {
		name      string
		xs        []float64
		wantN     int     // points
		wantFirst float64 // X of the first point, at fraction 0
		wantLast  float64 // X of the last point, at fraction 1
	}{
		{"few values", []float64{30, 10, 20}, 4, 10, 30},
		{"non-positive values left out, below 1 µs drawn at 1", []float64{-5, 0, 0.25, 7}, 3, 1, 7},
		{"many values thinned", func() []float64 {
			xs := make([]float64, 10*cdfPoints)
			for i := range xs {
				xs[i] = float64(len(xs) - i)
			}
			return xs
		}(), cdfPoints + 1, 1, 10 * cdfPoints},
		{"nothing", []float64{-1}, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pts := cdf(tt.xs)
			if len(pts) != tt.wantN {
				t.Fatalf("points: got %d, want %d", len(pts), tt.wantN)
			}
			if len(pts) == 0 {
				return
			}
			if first := pts[0]; first.X != tt.wantFirst || first.Y != 0 {
				t.Errorf("first point: got %v, want (%v, 0)", first, tt.wantFirst)
			}
			if last := pts[len(pts)-1]; last.X != tt.wantLast || last.Y != 1 {
				t.Errorf("last point: got %v, want (%v, 1)", last, tt.wantLast)
			}
			for i := 1; i < len(pts); i++ {
				if pts[i].X < pts[i-1].X || pts[i].Y <= pts[i-1].Y {
					t.Errorf("point %d: got %v after %v, want both coordinates increasing", i, pts[i], pts[i-1])
				}
			}
		})
	}
}

package stats

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func TestPercentile(t *testing.T) {
	oneTo100 := make([]float64, 100)
	for i := range oneTo100 {
		oneTo100[i] = float64(i + 1)
	}
	tests := []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"1..100 p0", oneTo100, 0, 1},
		{"1..100 p1", oneTo100, 1, 1},
		{"1..100 p50", oneTo100, 50, 50},
		{"1..100 p99", oneTo100, 99, 99},
		{"1..100 p99.5", oneTo100, 99.5, 100},
		{"1..100 p100", oneTo100, 100, 100},
		{"1..100 p above 100 clamps", oneTo100, 150, 100},
		// Wikipedia's nearest-rank example: 15 20 35 40 50.
		{"five p5", []float64{15, 20, 35, 40, 50}, 5, 15},
		{"five p30", []float64{15, 20, 35, 40, 50}, 30, 20},
		{"five p40", []float64{15, 20, 35, 40, 50}, 40, 20},
		{"five p50", []float64{15, 20, 35, 40, 50}, 50, 35},
		{"five p100", []float64{15, 20, 35, 40, 50}, 100, 50},
		{"one value", []float64{7}, 99, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if got := Percentile(nil, 50); !math.IsNaN(got) {
		t.Errorf("empty: got %v, want NaN", got)
	}
}

func TestSummarize(t *testing.T) {
	sample := []float64{9, 1, 5, 3, 7} // unsorted on purpose
	got := Summarize(sample)
	want := Summary{N: 5, P50: 5, P99: 9, Max: 9, Spread: 8}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if !slices.Equal(sample, []float64{9, 1, 5, 3, 7}) {
		t.Errorf("Summarize modified its argument: %v", sample)
	}
	if got := Summarize(nil); got != (Summary{}) {
		t.Errorf("empty: got %+v, want the zero Summary", got)
	}
}

func TestPercentileRanks(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		want   []float64
	}{
		{"empty", nil, []float64{}},
		{"one", []float64{3}, []float64{0.5}},
		{"two", []float64{5, 2}, []float64{1, 0}},
		{"five distinct", []float64{30, 10, 50, 20, 40}, []float64{0.5, 0, 1, 0.25, 0.75}},
		// ranks 0 1 2 3 4: the tied pair shares (1+2)/2 = 1.5, i.e. 1.5/4.
		{"tie in the middle", []float64{1, 2, 2, 3, 4}, []float64{0, 0.375, 0.375, 0.75, 1}},
		{"all tied", []float64{4, 4, 4}, []float64{0.5, 0.5, 0.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PercentileRanks(tt.values)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUniformRanks(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	values := []float64{30, 10, 50, 20, 40, 20}
	// Ranks: 10→0, the two 20s share 1..2, 30→3, 40→4, 50→5; n = 6.
	lo := []float64{3, 0, 5, 1, 4, 1}
	hi := []float64{4, 1, 6, 3, 5, 3}
	for range 100 {
		got := UniformRanks(values, rng)
		for i, u := range got {
			if u < lo[i]/6 || u >= hi[i]/6 {
				t.Fatalf("value %v: got %v, want in [%v, %v)", values[i], u, lo[i]/6, hi[i]/6)
			}
		}
	}
	// Over random orders of 5 values the randomized ranks are Uniform(0,1).
	var pooled []float64
	for range 400 {
		v := rng.Perm(5)
		f := make([]float64, 5)
		for i, x := range v {
			f[i] = float64(x)
		}
		pooled = append(pooled, UniformRanks(f, rng)[0])
	}
	if _, p := KSUniform(pooled); p < 0.01 {
		t.Errorf("randomized ranks of a random order: got KS p=%v, want ≥ 0.01", p)
	}
}

func TestMeanUniformCDF(t *testing.T) {
	tests := []struct {
		m    float64
		k    int
		want float64
	}{
		{0.3, 1, 0.3},    // one uniform
		{0.25, 2, 0.125}, // triangular: 2m²
		{0.75, 2, 0.875}, // 1 − 2(1−m)²
		{0.5, 3, 0.5},    // symmetric
		{0.5, 50, 0.5},   // normal branch
		{0, 4, 0},
		{1, 4, 1},
		// Irwin–Hall, k = 3, sum 1 (mean 1/3): 1/3! = 1/6.
		{1.0 / 3, 3, 1.0 / 6},
	}
	for _, tt := range tests {
		if got := MeanUniformCDF(tt.m, tt.k); !near(got, tt.want, 1e-12) {
			t.Errorf("MeanUniformCDF(%v, %d): got %v, want %v", tt.m, tt.k, got, tt.want)
		}
	}
	// The exact and the normal branch agree closely at the switch.
	exact := MeanUniformCDF(0.45, 20)
	normal := MeanUniformCDF(0.45, 21)
	if !near(exact, normal, 0.02) {
		t.Errorf("k=20 gives %v, k=21 gives %v: want them within 0.02", exact, normal)
	}
}

func TestKolmogorovQ(t *testing.T) {
	// Critical values of the Kolmogorov distribution: Q(1.3581) = 0.05, Q(1.6276) = 0.01,
	// Q(1.2239) = 0.10; and Q(1) = 0.26999967 (both branches meet near 1.18).
	tests := []struct{ lambda, want, tol float64 }{
		{0, 1, 0},
		{0.2, 1, 1e-12},
		{1, 0.26999967, 1e-7},
		{1.2239, 0.10, 1e-4},
		{1.3581, 0.05, 1e-4},
		{1.6276, 0.01, 1e-4},
		{3, 3.04599e-8, 1e-12},
	}
	for _, tt := range tests {
		if got := KolmogorovQ(tt.lambda); !near(got, tt.want, tt.tol) {
			t.Errorf("KolmogorovQ(%v): got %v, want %v", tt.lambda, got, tt.want)
		}
	}
	if a, b := KolmogorovQ(1.18-1e-9), KolmogorovQ(1.18); !near(a, b, 1e-9) {
		t.Errorf("branches disagree at 1.18: %v and %v", a, b)
	}
}

func TestKSUniform(t *testing.T) {
	t.Run("hand computed D", func(t *testing.T) {
		// Sorted 0.1 0.4 0.7, n = 3: D+ = max(1/3−0.1, 2/3−0.4, 1−0.7) = 0.3,
		// D− = max(0.1, 0.4−1/3, 0.7−2/3) = 0.1, so D = 0.3.
		d, p := KSUniform([]float64{0.7, 0.1, 0.4})
		if !near(d, 0.3, 1e-12) {
			t.Errorf("D: got %v, want 0.3", d)
		}
		lambda := (math.Sqrt(3) + 0.12 + 0.11/math.Sqrt(3)) * 0.3
		if want := KolmogorovQ(lambda); !near(p, want, 1e-12) {
			t.Errorf("p: got %v, want %v", p, want)
		}
	})
	t.Run("evenly spread gives p near 1", func(t *testing.T) {
		s := make([]float64, 100)
		for i := range s {
			s[i] = (float64(i) + 0.5) / 100
		}
		d, p := KSUniform(s)
		if !near(d, 0.005, 1e-12) || p < 0.999 {
			t.Errorf("got D=%v p=%v, want D=0.005 and p near 1", d, p)
		}
	})
	t.Run("random uniform is not rejected", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		s := make([]float64, 1000)
		for i := range s {
			s[i] = r.Float64()
		}
		if _, p := KSUniform(s); p < 0.01 {
			t.Errorf("got p=%v, want ≥ 0.01 for a uniform sample (seeded)", p)
		}
	})
	t.Run("skewed gives a tiny p", func(t *testing.T) {
		s := make([]float64, 100)
		for i := range s {
			u := (float64(i) + 0.5) / 100
			s[i] = u * u // early clients: most mass near 0
		}
		d, p := KSUniform(s)
		// sup |x² − x| = 1/4 at x = 1/2.
		if !near(d, 0.25, 0.01) || p > 1e-4 {
			t.Errorf("got D=%v p=%v, want D≈0.25 and p < 1e-4", d, p)
		}
	})
	t.Run("empty", func(t *testing.T) {
		if d, p := KSUniform(nil); d != 0 || p != 1 {
			t.Errorf("got D=%v p=%v, want 0 and 1", d, p)
		}
	})
}

func TestChiSquare(t *testing.T) {
	tests := []struct {
		name     string
		observed []float64
		weights  []float64
		chi2     float64
		df       int
		p        float64
	}{
		// E = 20 each: (100 + 0 + 100)/20 = 10; 2 df: p = exp(−10/2).
		{"10 20 30", []float64{10, 20, 30}, nil, 10, 2, math.Exp(-5)},
		{"equal counts", []float64{7, 7, 7, 7}, nil, 0, 3, 1},
		// E = 50: (4 + 4)/50 = 0.16, 1 df: p = erfc(√(0.16/2)) = 0.6891565.
		{"coin 48 52", []float64{48, 52}, nil, 0.16, 1, 0.689156516779352},
		// Weights 1:3 of 40: E = 10, 30; observed 20, 20: 100/10 + 100/30 = 13.333…
		{"weighted", []float64{20, 20}, []float64{1, 3}, 40.0 / 3, 1, math.Erfc(math.Sqrt(40.0 / 6))},
		{"one cell", []float64{5}, nil, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chi2, df, p := ChiSquare(tt.observed, tt.weights)
			if !near(chi2, tt.chi2, 1e-9) || df != tt.df || !near(p, tt.p, 1e-9) {
				t.Errorf("got χ²=%v df=%d p=%v, want χ²=%v df=%d p=%v", chi2, df, p, tt.chi2, tt.df, tt.p)
			}
		})
	}
	// One client of 10 first in 30 of 100 starts: E = 10, χ² = (400 + 7·4 + 2·9)/10 = 44.6.
	counts := []float64{30, 8, 8, 8, 8, 8, 7, 8, 8, 7}
	if chi2, df, p := ChiSquareEqual(counts); !near(chi2, 44.6, 1e-9) || df != 9 || p > 1e-5 {
		t.Errorf("one client first 30%% of the time: got χ²=%v df=%d p=%v, want 44.6, 9, p < 1e-5", chi2, df, p)
	}
}

func TestPoolCounts(t *testing.T) {
	tests := []struct {
		name          string
		counts        []float64
		minExpected   float64
		pooled, cells []float64
	}{
		{"no merging needed", []float64{5, 6, 7}, 5, []float64{5, 6, 7}, nil},
		// total 10 over 10 cells: 2 bins of 5 cells (expected 5 each).
		{"ten into two", []float64{1, 1, 1, 1, 1, 0, 2, 1, 1, 1}, 5, []float64{5, 5}, []float64{5, 5}},
		// total 12 over 7 cells: 2 bins of 4 and 3 cells (smallest expects 12·3/7 = 5.1 ≥ 5).
		{"uneven", []float64{3, 0, 0, 3, 2, 2, 2}, 5, []float64{6, 6}, []float64{4, 3}},
		{"too few", []float64{1, 0, 2}, 5, []float64{3}, []float64{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pooled, cells := PoolCounts(tt.counts, tt.minExpected)
			if !slices.Equal(pooled, tt.pooled) || !slices.Equal(cells, tt.cells) {
				t.Errorf("got %v cells %v, want %v cells %v", pooled, cells, tt.pooled, tt.cells)
			}
		})
	}
}

func TestFriedman(t *testing.T) {
	tests := []struct {
		name   string
		blocks [][]float64
		q      float64
		df     int
		p      float64
	}{
		// Same order in all 4 blocks: R = 4, 8, 12; Q = 12/(4·3·4)·224 − 3·4·4 = 8; p = e^−4.
		{"same order", [][]float64{{1, 2, 3}, {10, 20, 30}, {5, 6, 7}, {0.1, 0.2, 0.3}}, 8, 2, math.Exp(-4)},
		// Latin square: every column gets each rank once: R = 6, 6, 6, Q = 0.
		{"balanced", [][]float64{{1, 2, 3}, {2, 3, 1}, {3, 1, 2}}, 0, 2, 1},
		// Ties: blocks (1,1,2) and (1,2,3): ranks 1.5 1.5 3 and 1 2 3; R = 2.5, 3.5, 6;
		// raw Q = 12/(2·3·4)·(6.25+12.25+36) − 3·2·4 = 3.25; correction 1 − 6/(2·24) = 0.875.
		{"ties", [][]float64{{1, 1, 2}, {1, 2, 3}}, 3.25 / 0.875, 2, math.Exp(-3.25 / 0.875 / 2)},
		{"one block", [][]float64{{1, 2, 3}}, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, df, p := Friedman(tt.blocks)
			if !near(q, tt.q, 1e-9) || df != tt.df || !near(p, tt.p, 1e-9) {
				t.Errorf("got Q=%v df=%d p=%v, want Q=%v df=%d p=%v", q, df, p, tt.q, tt.df, tt.p)
			}
		})
	}
}

func TestTwoSidedP(t *testing.T) {
	tests := []struct {
		z, want, tol float64
	}{
		{0, 1, 1e-15},
		{1.96, 0.05, 1e-4},
		{-1.96, 0.05, 1e-4},
		{1, 0.3173, 1e-4},
		{2.5758, 0.01, 1e-5},
		{3.2905, 0.001, 1e-6},
		{40, 0, 1e-300},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.z), func(t *testing.T) {
			if got := TwoSidedP(tt.z); math.Abs(got-tt.want) > tt.tol {
				t.Errorf("TwoSidedP(%v): got %v, want %v ± %v", tt.z, got, tt.want, tt.tol)
			}
		})
	}
}

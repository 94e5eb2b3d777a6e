package stats

import (
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/stat/distuv"
)

// Percentile returns the p-th percentile (0 ≤ p ≤ 100) of an ascending sample by the
// nearest-rank definition: the smallest value such that at least p per cent of the sample
// is less than or equal to it, that is sorted[⌈p/100·n⌉−1], and sorted[0] for p = 0.
// It returns NaN for an empty sample; p is clamped to [0, 100].
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	p = min(max(p, 0), 100)
	// Round p/100·n to 1e-9 first, so that 0.99·100 counts as 99, not 99.00000000000001.
	r := int(math.Ceil(math.Round(p/100*float64(n)*1e9) / 1e9))
	return sorted[min(max(r, 1), n)-1]
}

// Summary describes one sample: nearest-rank P50 and P99, the maximum, and the spread
// (maximum − minimum). The zero Summary describes the empty sample.
type Summary struct {
	N      int     `json:"n"`
	P50    float64 `json:"p50"`
	P99    float64 `json:"p99"`
	Max    float64 `json:"max"`
	Spread float64 `json:"spread"`
}

// Summarize returns the Summary of sample, which it does not modify.
func Summarize(sample []float64) Summary {
	if len(sample) == 0 {
		return Summary{}
	}
	s := slices.Clone(sample)
	slices.Sort(s)
	return Summary{
		N:      len(s),
		P50:    Percentile(s, 50),
		P99:    Percentile(s, 99),
		Max:    s[len(s)-1],
		Spread: s[len(s)-1] - s[0],
	}
}

// PercentileRanks returns, for each value, its percentile within the sample: its 0-based
// rank divided by n−1, so 0 is the smallest (the first to receive) and 1 the largest;
// tied values share the mean of their ranks. A sample of one gets 0.5.
func PercentileRanks(values []float64) []float64 {
	n := len(values)
	out := make([]float64, n)
	if n == 1 {
		out[0] = 0.5
	}
	if n < 2 {
		return out
	}
	idx := sortedIndex(values)
	for i := 0; i < n; {
		j := i + 1
		for j < n && values[idx[j]] == values[idx[i]] {
			j++
		}
		mean := float64(i+j-1) / 2 // the mean of the ranks i..j-1
		for _, k := range idx[i:j] {
			out[k] = mean / float64(n-1)
		}
		i = j
	}
	return out
}

// UniformRanks returns, for each value, its randomized rank (r + U)/n, where r is its 0-based
// rank in the sample and U a fresh Uniform(0,1) draw from rng; tied values are spread at
// random over the ranks they share (a tie over ranks i..j−1 gives (i + U·(j−i))/n). If the
// order of the sample is a uniformly random permutation, as with an unbiased fan-out, each
// result is exactly Uniform(0,1) whatever n, so means over independent starts follow
// MeanUniformCDF exactly; the plain percentiles of PercentileRanks, discrete, do not.
func UniformRanks(values []float64, rng *rand.Rand) []float64 {
	n := len(values)
	out := make([]float64, n)
	idx := sortedIndex(values)
	for i := 0; i < n; {
		j := i + 1
		for j < n && values[idx[j]] == values[idx[i]] {
			j++
		}
		for _, k := range idx[i:j] {
			out[k] = (float64(i) + rng.Float64()*float64(j-i)) / float64(n)
		}
		i = j
	}
	return out
}

// sortedIndex returns the indexes of values in ascending order of value, stable.
func sortedIndex(values []float64) []int {
	idx := make([]int, len(values))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case values[a] < values[b]:
			return -1
		case values[a] > values[b]:
			return 1
		}
		return 0
	})
	return idx
}

// MeanUniformCDF returns P(M ≤ m) where M is the mean of k independent Uniform(0,1)
// variables: the Irwin–Hall distribution scaled by 1/k, exact for k ≤ 20 and its normal
// approximation (mean 1/2, variance 1/(12k)) above. Under "no bias" a client's mean
// mean of UniformRanks over k independent starts follows it exactly, so MeanUniformCDF
// of the clients' means is Uniform(0,1) and can go to KSUniform. (The plain percentiles
// of PercentileRanks among n clients are discrete, with (n+1)/(n−1) times the variance.)
func MeanUniformCDF(m float64, k int) float64 {
	if k < 1 {
		return math.NaN()
	}
	if m <= 0 {
		return 0
	}
	if m >= 1 {
		return 1
	}
	if k > 20 {
		return distuv.UnitNormal.CDF((m - 0.5) / math.Sqrt(1/(12*float64(k))))
	}
	x := m * float64(k) // the sum
	var sum float64
	binom := 1.0 // C(k, j)
	for j := 0; j <= int(math.Floor(x)); j++ {
		term := binom * math.Pow(x-float64(j), float64(k))
		if j%2 == 1 {
			term = -term
		}
		sum += term
		binom = binom * float64(k-j) / float64(j+1)
	}
	kf, _ := math.Lgamma(float64(k + 1))
	return min(max(sum/math.Exp(kf), 0), 1)
}

// TwoSidedP is the two-sided p-value of a standard normal z-score: P(|Z| ≥ |z|) =
// erfc(|z|/√2).
func TwoSidedP(z float64) float64 { return math.Erfc(math.Abs(z) / math.Sqrt2) }

// KSUniform is the one-sample Kolmogorov–Smirnov test of sample against Uniform(0,1). It
// returns the statistic D = sup|F_n(x) − x| and the asymptotic p-value
// KolmogorovQ((√n + 0.12 + 0.11/√n)·D) (Stephens' correction, as in Numerical Recipes'
// ksone), good from n ≈ 5 on. Values outside [0,1] are clamped. An empty sample gives
// D = 0 and p = 1. The p-value is conservative when the sample comes from a discrete
// distribution.
func KSUniform(sample []float64) (d, p float64) {
	n := len(sample)
	if n == 0 {
		return 0, 1
	}
	s := slices.Clone(sample)
	slices.Sort(s)
	nf := float64(n)
	for i, x := range s {
		x = min(max(x, 0), 1)
		d = max(d, float64(i+1)/nf-x, x-float64(i)/nf)
	}
	sq := math.Sqrt(nf)
	return d, KolmogorovQ((sq + 0.12 + 0.11/sq) * d)
}

// KolmogorovQ is the survival function of the Kolmogorov distribution,
// Q(λ) = 2·Σ_{k≥1} (−1)^{k−1}·exp(−2k²λ²), computed as in Numerical Recipes (3rd ed.,
// KSdist.qks): for λ < 1.18 through the dual series 1 − (√(2π)/λ)·Σ exp(−(2k−1)²π²/(8λ²)),
// which converges fast there.
func KolmogorovQ(lambda float64) float64 {
	if lambda <= 0 {
		return 1
	}
	if lambda < 1.18 {
		y := math.Exp(-math.Pi * math.Pi / (8 * lambda * lambda))
		q := 1 - math.Sqrt(2*math.Pi)/lambda*(y+math.Pow(y, 9)+math.Pow(y, 25)+math.Pow(y, 49))
		return min(max(q, 0), 1)
	}
	x := math.Exp(-2 * lambda * lambda)
	return min(max(2*(x-math.Pow(x, 4)+math.Pow(x, 9)), 0), 1)
}

// ChiSquareEqual is Pearson's chi-square test of counts against equal expected counts
// (their total divided by the number of cells): ChiSquare(counts, nil).
func ChiSquareEqual(counts []float64) (chi2 float64, df int, p float64) {
	return ChiSquare(counts, nil)
}

// ChiSquare is Pearson's chi-square test of observed counts against expected proportions
// weights (any positive scale; nil means equal): expected count E_i = total·w_i/Σw. It
// returns the statistic Σ (O−E)²/E, the degrees of freedom (cells − 1) and the p-value,
// the upper tail of the chi-square distribution (gonum's regularized upper incomplete
// gamma function). With fewer than two cells or a zero total it returns 0, 0, 1. The
// approximation wants every expected count at 5 or more: see PoolCounts.
func ChiSquare(observed, weights []float64) (chi2 float64, df int, p float64) {
	var total, wsum float64
	for i, c := range observed {
		total += c
		wsum += weight(weights, i)
	}
	if len(observed) < 2 || total <= 0 || wsum <= 0 {
		return 0, 0, 1
	}
	for i, c := range observed {
		e := total * weight(weights, i) / wsum
		chi2 += (c - e) * (c - e) / e
	}
	df = len(observed) - 1
	return chi2, df, distuv.ChiSquared{K: float64(df)}.Survival(chi2)
}

func weight(weights []float64, i int) float64 {
	if weights == nil {
		return 1
	}
	return weights[i]
}

// PoolCounts merges runs of neighbouring cells (each with an equal expected count) into
// as many bins as keep every bin's expected count at least minExpected, the bins holding
// as equal numbers of cells as possible. It returns the pooled counts and the number of
// cells in each bin, the weights to give ChiSquare; with no merging needed, counts itself
// and nil. With a total below 2·minExpected it returns a single bin.
func PoolCounts(counts []float64, minExpected float64) (pooled, cells []float64) {
	var total float64
	for _, c := range counts {
		total += c
	}
	n := len(counts)
	bins := n
	for bins > 1 && total*float64(n/bins)/float64(n) < minExpected {
		bins--
	}
	if bins == n {
		return counts, nil
	}
	pooled = make([]float64, bins)
	cells = make([]float64, bins)
	for i, c := range counts {
		b := i * bins / n
		pooled[b] += c
		cells[b]++
	}
	return pooled, cells
}

// Friedman is Friedman's rank test of whether some columns are systematically ranked
// early or late across blocks: blocks[b][j] is the value of column j (a client) in block b
// (a start), every block holding the same columns. Values are ranked within each block,
// ties sharing their mean rank; with R_j the rank sum of column j over B blocks of n
// columns, Q = (12/(B·n(n+1))·Σ R_j² − 3B(n+1)) / (1 − Σ(t³−t)/(B(n³−n))) over the tie
// groups t, approximately chi-square with n − 1 degrees of freedom. It returns Q, the
// degrees of freedom and the p-value; with fewer than two blocks or two columns, 0, 0, 1.
func Friedman(blocks [][]float64) (q float64, df int, p float64) {
	if len(blocks) < 2 || len(blocks[0]) < 2 {
		return 0, 0, 1
	}
	n, b := len(blocks[0]), float64(len(blocks))
	sums := make([]float64, n)
	var ties float64
	for _, blk := range blocks {
		if len(blk) != n {
			return 0, 0, 1
		}
		for j, pct := range PercentileRanks(blk) {
			sums[j] += pct*float64(n-1) + 1
		}
		idx := sortedIndex(blk)
		for i := 0; i < n; {
			k := i + 1
			for k < n && blk[idx[k]] == blk[idx[i]] {
				k++
			}
			t := float64(k - i)
			ties += t*t*t - t
			i = k
		}
	}
	nf := float64(n)
	var sq float64
	for _, r := range sums {
		sq += r * r
	}
	q = 12/(b*nf*(nf+1))*sq - 3*b*(nf+1)
	if c := 1 - ties/(b*(nf*nf*nf-nf)); c > 0 {
		q /= c
	} else {
		return 0, n - 1, 1 // every block all tied: no information
	}
	df = n - 1
	return q, df, distuv.ChiSquared{K: float64(df)}.Survival(q)
}

// Package stats holds the statistics Bulb measures its start fan-out with: nearest-rank
// percentiles and sample summaries, per-start percentile ranks of clients, and the tests
// that tell a fair start fan-out (no client systematically early or late) from a biased
// one. The hub's fairness report (latency quantiles, per-start percentile ranks and the
// two-sided p-value of a player's bias), the load generator (scripts/loadgen), the
// fan-out comparison (scripts/fanout) and the fairness lab (scripts/fairness) use it.
//
// Three tests of "no bias" are offered:
//
//   - KSUniform, the one-sample Kolmogorov–Smirnov test of a sample against Uniform(0,1),
//     with the asymptotic p-value of the Kolmogorov distribution. Apply it to values that
//     are Uniform(0,1) under "no bias": the normalised index of the first receiver of each
//     start, or each client's mean percentile passed through MeanUniformCDF (the
//     probability integral transform). Do not apply it to per-start percentiles pooled
//     over clients: within one start they are a permutation of 0, 1/(n-1), …, 1, uniform by
//     construction whatever the bias; nor to the mean percentiles themselves, which
//     concentrate around 0.5.
//   - ChiSquareEqual, Pearson's chi-square test of counts (e.g. how often each client was
//     first) against equal expected counts; PoolCounts merges neighbouring cells so that
//     every expected count is large enough for the chi-square approximation.
//   - Friedman, the rank test of whether some clients are systematically ranked early or
//     late across starts (blocks), whatever their index: the most direct test of bias, and
//     the most powerful of the three against a fixed send order.
//
// Every function is pure: safe to call concurrently, it never modifies its arguments
// unless its documentation says so.
package stats

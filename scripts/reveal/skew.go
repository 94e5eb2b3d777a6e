package main

import (
	"math"
	"slices"

	"github.com/bulbquiz/bulb/internal/lagproxy"
	"github.com/bulbquiz/bulb/internal/stats"
)

// The statistics of the report: pure functions of the students' records. Times in the
// records are true Unix ns; every figure out of here is in ms.

const nsPerMs = 1e6

// errSummary describes a sample of signed errors (ms): their mean, and the summary of
// their absolute values (nearest-rank p50, p99, the maximum).
type errSummary struct {
	MeanMs float64       `json:"meanMs"`
	Abs    stats.Summary `json:"abs"`
}

func errSummaryOf(errs []float64) errSummary {
	abs := make([]float64, len(errs))
	for i, e := range errs {
		abs[i] = math.Abs(e)
	}
	return errSummary{MeanMs: mean(errs), Abs: stats.Summarize(abs)}
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// spreadMs is the last minus the first of the instants, in ms; 0 for fewer than two.
func spreadMs(ns []int64) float64 {
	if len(ns) < 2 {
		return 0
	}
	return float64(slices.Max(ns)-slices.Min(ns)) / nsPerMs
}

// predictedErrMs is what the link's asymmetry alone makes of the algorithm's error,
// target − S: the offset estimate is off by half the difference of the two ways, so a
// client lights (down − up)/2 late, early when the way back is the longer.
func predictedErrMs(l lagproxy.Link) float64 { return float64(l.Down.Ms-l.Up.Ms) / 2 }

// symmetric reports whether the link's two ways take as long.
func symmetric(l lagproxy.Link) bool { return l.Down.Ms == l.Up.Ms }

// algorithmErrMs is a synced record's algorithm error: its target − S, true time.
func algorithmErrMs(r record) float64 { return float64(r.Target-r.At) / nsPerMs }

// wakeMs is the simulation's wake-up delay of an on-time record: light − target.
func wakeMs(r record) float64 { return float64(r.Lit-r.Target) / nsPerMs }

// boundSlackMs absorbs the rounding of ms floats to ns in the comparison of an error with
// its bound.
const boundSlackMs = 0.001

// syncedStart is one synced start: the spread of the true lighting instants and of the
// algorithm's targets across every student and across the symmetric groups', each student's
// wake-up (its light − its target, p99 and max over the start's on-time students), and
// of the start frame's receipt.
type syncedStart struct {
	N                 int           `json:"n"`
	Students          int           `json:"students"`
	LightSpreadMs     float64       `json:"lightSpreadMs"`
	LightSpreadSymMs  float64       `json:"lightSpreadSymmetricMs"`
	TargetSpreadMs    float64       `json:"targetSpreadMs"`
	TargetSpreadSymMs float64       `json:"targetSpreadSymmetricMs"`
	WakeP99Ms         float64       `json:"wakeP99Ms"`
	WakeMaxMs         float64       `json:"wakeMaxMs"`
	ReceiptSpreadMs   float64       `json:"receiptSpreadMs"`
	Late              int           `json:"late"`
	Server            *serverReveal `json:"server,omitempty"`
}

// splitStart computes a synced start's figures from its records.
func splitStart(n int, recs []record, links []lagproxy.Link) syncedStart {
	st := syncedStart{N: n, Students: len(recs)}
	var lit, litSym, target, targetSym, recv []int64
	var wake []float64
	for _, r := range recs {
		lit, recv, target = append(lit, r.Lit), append(recv, r.Recv), append(target, r.Target)
		if symmetric(links[r.Group]) {
			litSym, targetSym = append(litSym, r.Lit), append(targetSym, r.Target)
		}
		if r.Late {
			st.Late++
		} else {
			wake = append(wake, wakeMs(r))
		}
	}
	st.LightSpreadMs, st.LightSpreadSymMs, st.TargetSpreadMs, st.TargetSpreadSymMs, st.ReceiptSpreadMs =
		spreadMs(lit), spreadMs(litSym), spreadMs(target), spreadMs(targetSym), spreadMs(recv)
	w := stats.Summarize(wake)
	st.WakeP99Ms, st.WakeMaxMs = w.P99, w.Max
	return st
}

// groupSkew is one group's synced records over every start: the algorithm's error
// (target − S) against the link's prediction, the wake-up, lateness, and whether each
// error stayed within the student's own error bound.
type groupSkew struct {
	Records        int        `json:"records"`
	PredictedErrMs float64    `json:"predictedErrMs"`
	Err            errSummary `json:"err"`
	// P99DevMs is the p99 of |error − predicted|: what the jitter and the machine add to
	// the asymmetry's share.
	P99DevMs  float64 `json:"p99DevMs"`
	WakeP50Ms float64 `json:"wakeP50Ms"`
	WakeP99Ms float64 `json:"wakeP99Ms"`
	Late      int     `json:"late"`      // the page's flag: arrived after its target
	TrulyLate int     `json:"trulyLate"` // arrived after S, by the real clock
	NoEst     int     `json:"noEstimate"`
	// OutsideBound counts errors larger than the student's own error bound (half the
	// width of its samples' common bounds, drift included): none, if the estimator keeps
	// its promise.
	OutsideBound int `json:"outsideBound"`
	// RTT is the least round trip of the samples each estimate came from, against the
	// link's nominal down + up: queueing on the way (the machine's, the server's, the
	// proxy's) inflates it, and the error can reach half of it.
	RTTNominalMs float64 `json:"rttNominalMs"`
	RTTP50Ms     float64 `json:"rttP50Ms"`
	RTTP99Ms     float64 `json:"rttP99Ms"`
	LitMeanMs    float64 `json:"litMeanMs"` // mean of light − S
}

// skewOfGroup computes a group's figures from its synced records.
func skewOfGroup(recs []record, l lagproxy.Link) groupSkew {
	g := groupSkew{Records: len(recs), PredictedErrMs: predictedErrMs(l), RTTNominalMs: float64(l.Down.Ms + l.Up.Ms)}
	var errs, devs, wake, lit, rtt []float64
	for _, r := range recs {
		e := algorithmErrMs(r)
		errs, devs = append(errs, e), append(devs, math.Abs(e-g.PredictedErrMs))
		lit = append(lit, float64(r.Lit-r.At)/nsPerMs)
		if r.Late {
			g.Late++
		} else {
			wake = append(wake, wakeMs(r))
		}
		if r.Recv > r.At {
			g.TrulyLate++
		}
		if r.NoEst {
			g.NoEst++
			continue
		}
		rtt = append(rtt, r.RTTMs)
		if math.Abs(e) > r.BoundMs+boundSlackMs {
			g.OutsideBound++
		}
	}
	g.Err = errSummaryOf(errs)
	g.P99DevMs = stats.Summarize(devs).P99
	w := stats.Summarize(wake)
	g.WakeP50Ms, g.WakeP99Ms = w.P50, w.P99
	g.LitMeanMs = mean(lit)
	rs := stats.Summarize(rtt)
	g.RTTP50Ms, g.RTTP99Ms = rs.P50, rs.P99
	return g
}

// receiptAfterFirstMs is, per group, the mean over the records of receipt − the first
// receipt of the same start: how much later than the earliest student a group gets an
// immediate start, which is when it lights.
func receiptAfterFirstMs(starts [][]record, groups int) []float64 {
	sum, count := make([]float64, groups), make([]int, groups)
	for _, recs := range starts {
		if len(recs) == 0 {
			continue
		}
		first := recs[0].Recv
		for _, r := range recs {
			first = min(first, r.Recv)
		}
		for _, r := range recs {
			sum[r.Group] += float64(r.Recv-first) / nsPerMs
			count[r.Group]++
		}
	}
	for g := range sum {
		if count[g] > 0 {
			sum[g] /= float64(count[g])
		}
	}
	return sum
}

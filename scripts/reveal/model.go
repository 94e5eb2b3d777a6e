package main

import (
	"math/rand/v2"

	"github.com/bulbquiz/bulb/internal/clocksync"
	"github.com/bulbquiz/bulb/internal/lagproxy"
)

// The model: what the page's algorithm can do on a link that has nothing but its delays
// and toxiproxy's jitter (no machine, no server, no proxy of its own in the way). It runs
// the real estimator on samples drawn the way toxiproxy draws its delays, sent on the
// page's schedule up to a record's start, and gives the error a target computed from that
// estimate would have. Set beside the measured errors, it tells what of them the jitter
// alone explains: the algorithm's floor on that link.

// modelReplicas is how many model errors each measured record gets.
const modelReplicas = 4

// syncSchedule is when a student sent its sync samples, ms from its first, before
// sinceMs: the burst, then one every clocksync.Every.
func syncSchedule(sinceMs float64) []float64 {
	var ts []float64
	for i := range clocksync.BurstSamples {
		if t := float64(i) * msOf(clocksync.BurstSpacing); t < sinceMs {
			ts = append(ts, t)
		}
	}
	for t := msOf(clocksync.Every); t < sinceMs; t += msOf(clocksync.Every) {
		ts = append(ts, t)
	}
	return ts
}

// jitterMs draws one way's delay as toxiproxy does: uniformly in whole ms from
// [ms − jitter, ms + jitter).
func jitterMs(d lagproxy.Delay, rng *rand.Rand) float64 {
	if d.JitterMs == 0 {
		return float64(d.Ms)
	}
	return float64(d.Ms - d.JitterMs + rng.IntN(2*d.JitterMs))
}

// modelErrMs is the error (target − S) of a reveal at client time at (ms, the first sample
// sent at 0), with the estimate from samples sent at the given times over link l, whose
// answers came back by then, between clocks that agree. Without any such sample it
// reports the link's prediction.
func modelErrMs(l lagproxy.Link, sent []float64, at float64, rng *rand.Rand) float64 {
	var e clocksync.Estimator
	for _, t0 := range sent {
		t1 := t0 + jitterMs(l.Up, rng)
		t3 := t1 + jitterMs(l.Down, rng)
		if t3 <= at {
			e.Add(clocksync.Sample{T0: t0, T1: t1, T2: t1, T3: t3})
		}
	}
	est, ok := e.Estimate(at)
	if !ok {
		return predictedErrMs(l)
	}
	return -est.Offset // the true offset is 0: target − S = −(the estimate's offset)
}

// modelErrs gives modelReplicas model errors for each record that had an estimate, on
// the schedule of that record's samples.
func modelErrs(recs []record, l lagproxy.Link, rng *rand.Rand) []float64 {
	var out []float64
	for _, r := range recs {
		if r.NoEst {
			continue
		}
		sent := syncSchedule(r.SinceSyncMs)
		for range modelReplicas {
			out = append(out, modelErrMs(l, sent, r.SinceSyncMs, rng))
		}
	}
	return out
}

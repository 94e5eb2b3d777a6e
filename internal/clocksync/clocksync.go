// Package clocksync is the student page's clock synchronisation (web/clock.js) in Go:
// the same estimate from the same samples, for clients that behave like the page (the
// benchmarks', the load generator's). A test runs both on recorded samples and checks
// that they agree, to the last bit.
//
// Times are milliseconds since the Unix epoch, as float64, as the page has them. An
// Estimator is not safe for concurrent use.
package clocksync

import (
	"math"
	"time"
)

// The algorithm's constants, as in web/clock.js.
const (
	Window = 16     // samples kept: the estimate is the intersection of the last Window's bounds
	MaxRTT = 10000  // ms: a sample with a longer round trip is discarded
	Drift  = 100e-6 // how fast two clocks may drift apart (100 ppm)
)

// Sample is one sync exchange: the client's send time T0, the server's receive and send
// times T1 and T2, and the client's receive time T3.
type Sample struct {
	T0, T1, T2, T3 float64
}

// Estimate is the server's clock as a client sees it: server time = client time +
// Offset, within ± Error; RTT is the least round trip among the samples it comes from.
type Estimate struct {
	Offset, Error, RTT float64
}

type kept struct {
	rtt, offset, at float64
}

// bounds is the interval of offsets s allows at client time t: its offset ± half its
// round trip, widened by the drift since it was taken (or until it was taken, for a time
// before it). Its radius is the sample's error bound on its own. (The product is rounded
// on its own, as in JavaScript: float64() forbids fusing it into a multiply-add, which
// could change the last bit.)
func (s kept) bounds(t float64) (lo, hi, radius float64) {
	radius = s.rtt/2 + float64(math.Abs(t-s.at)*Drift)
	return s.offset - radius, s.offset + radius, radius
}

// Estimator estimates the server's clock from sync samples, the NTP way (see
// web/clock.js): each sample bounds the offset of the server's clock between t2 − t3 and
// t1 − t0, widened by the drift since it was taken; the estimate is the middle of the
// intersection of the kept samples' bounds, within half its width. When a new sample's
// bounds leave no common offset with the older ones (a clock stepped, or drifted faster
// than Drift), the older ones are dropped: the newest samples tell the clock as it is now.
type Estimator struct {
	samples []kept
}

// Add records a sample and reports whether it was kept: a negative or over-long round
// trip is discarded. A kept sample drops the samples older than the newest ones whose
// bounds still intersect with it.
func (e *Estimator) Add(s Sample) bool {
	rtt := (s.T3 - s.T0) - (s.T2 - s.T1)
	if !(rtt >= 0) || rtt > MaxRTT {
		return false
	}
	e.samples = append(e.samples, kept{rtt: rtt, offset: ((s.T1 - s.T0) + (s.T2 - s.T3)) / 2, at: s.T3})
	if len(e.samples) > Window {
		e.samples = e.samples[1:]
	}
	_, _, _, _, used := e.intersect(s.T3)
	e.samples = e.samples[len(e.samples)-used:]
	return true
}

// intersect intersects the bounds at client time t of the newest samples, newest first,
// up to the first that leaves nothing in common with the newer ones: [lo, hi] and the
// samples that set its ends (by index), and how many samples it took. Without samples
// it takes none.
func (e *Estimator) intersect(t float64) (lo, hi float64, ilo, ihi, used int) {
	for i := len(e.samples) - 1; i >= 0; i-- {
		l, h, _ := e.samples[i].bounds(t)
		if used > 0 && (l > hi || h < lo) {
			break
		}
		if used == 0 || l > lo {
			lo, ilo = l, i
		}
		if used == 0 || h < hi {
			hi, ihi = h, i
		}
		used++
	}
	return lo, hi, ilo, ihi, used
}

// Estimate returns the estimate at client time t, and false without samples: the
// middle of the intersection of the samples' bounds at t, and half its width. When one
// sample's bounds set both ends, the estimate is that sample's: its offset, within half
// its round trip plus the drift since (as the middle of its bounds, without the
// rounding). RTT is the least round trip among the samples of the intersection.
func (e *Estimator) Estimate(t float64) (Estimate, bool) {
	lo, hi, ilo, ihi, used := e.intersect(t)
	if used == 0 {
		return Estimate{}, false
	}
	rtt := math.Inf(1)
	for _, s := range e.samples[len(e.samples)-used:] {
		rtt = math.Min(rtt, s.rtt)
	}
	if ilo == ihi {
		s := e.samples[ilo]
		_, _, radius := s.bounds(t)
		return Estimate{Offset: s.offset, Error: radius, RTT: rtt}, true
	}
	return Estimate{Offset: (lo + hi) / 2, Error: (hi - lo) / 2, RTT: rtt}, true
}

// Millis is t as milliseconds since the Unix epoch, with fractions.
func Millis(t time.Time) float64 { return float64(t.UnixNano()) / 1e6 }

// Time is the instant ms milliseconds after the Unix epoch.
func Time(ms float64) time.Time { return time.Unix(0, int64(math.Round(ms*1e6))) }

// Package clocksync is the student page's clock synchronisation (web/clock.js) in Go:
// the same estimate from the same samples, for clients that behave like the page (the
// benchmarks', the load generator's). A test runs both on recorded samples and checks
// that they agree.
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
	Window = 16     // samples kept: the estimate is the best of the last Window
	MaxRTT = 10000  // ms: a sample with a longer round trip is discarded
	Drift  = 100e-6 // how fast two clocks may drift apart (100 ppm)
)

// Sample is one sync exchange: the client's send time T0, the server's receive and send
// times T1 and T2, and the client's receive time T3.
type Sample struct {
	T0, T1, T2, T3 float64
}

// Estimate is the server's clock as a client sees it: server time = client time +
// Offset, within ± Error; RTT is the round trip of the sample it comes from.
type Estimate struct {
	Offset, Error, RTT float64
}

type kept struct {
	rtt, offset, at float64
}

// Estimator estimates the server's clock from sync samples, the NTP and Cristian way
// (see web/clock.js): the estimate is the kept sample with the least error bound, half
// its round trip plus the drift since it was taken.
type Estimator struct {
	samples []kept
}

// Add records a sample and reports whether it was kept: a negative or over-long round
// trip is discarded.
func (e *Estimator) Add(s Sample) bool {
	rtt := (s.T3 - s.T0) - (s.T2 - s.T1)
	if !(rtt >= 0) || rtt > MaxRTT {
		return false
	}
	e.samples = append(e.samples, kept{rtt: rtt, offset: ((s.T1 - s.T0) + (s.T2 - s.T3)) / 2, at: s.T3})
	if len(e.samples) > Window {
		e.samples = e.samples[1:]
	}
	return true
}

// Estimate returns the estimate at client time t, and false without samples.
func (e *Estimator) Estimate(t float64) (Estimate, bool) {
	var best Estimate
	found := false
	for _, s := range e.samples {
		err := s.rtt/2 + math.Max(t-s.at, 0)*Drift
		if !found || err <= best.Error {
			best, found = Estimate{Offset: s.offset, Error: err, RTT: s.rtt}, true
		}
	}
	return best, found
}

// Millis is t as milliseconds since the Unix epoch, with fractions.
func Millis(t time.Time) float64 { return float64(t.UnixNano()) / 1e6 }

// Time is the instant ms milliseconds after the Unix epoch.
func Time(ms float64) time.Time { return time.Unix(0, int64(math.Round(ms*1e6))) }

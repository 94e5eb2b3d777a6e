package clocksync

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

// exchange is a sync exchange over a link that takes out ms one way and back ms the
// other, with the server's clock offset ms ahead of the client's and processing ms on
// the server, sent at client time t0.
func exchange(t0, offset, out, back, processing float64) Sample {
	t1 := t0 + out + offset
	t2 := t1 + processing
	return Sample{T0: t0, T1: t1, T2: t2, T3: t2 - offset + back}
}

// today is the estimate of the one sample s, by the rule before the intersection (the
// sample with the least error bound): its offset, within half its round trip plus the
// drift since.
func today(s Sample, t float64) Estimate {
	rtt := (s.T3 - s.T0) - (s.T2 - s.T1)
	return Estimate{Offset: ((s.T1 - s.T0) + (s.T2 - s.T3)) / 2, Error: rtt/2 + float64(math.Max(t-s.T3, 0)*Drift), RTT: rtt}
}

func TestEstimate(t *testing.T) {
	const offset = 5000.25
	for _, tt := range []struct {
		name       string
		samples    []Sample
		at         float64
		wantOffset float64
		wantError  float64
		wantRTT    float64
		wantKept   int // kept by Add, then in the window
	}{
		{"symmetric: exact, error half the round trip",
			[]Sample{exchange(1000, offset, 10, 10, 0.5)}, 1020.5, offset, 10, 20, 1},
		{"asymmetric: off by half the asymmetry, within the bound",
			[]Sample{exchange(1000, offset, 5, 40, 0)}, 1045, offset + (5-40)/2.0, 22.5, 45, 1},
		// [θ − 10 − d, θ + 2 + d] ∩ [θ − 2, θ + 10], d = 100 ms of drift: each alone is
		// 4 ms off, ± 6
		{"the quick way out of one and the quick way back of another: the middle of the intersection",
			[]Sample{exchange(1000, offset, 2, 10, 0), exchange(1100, offset, 10, 2, 0)}, 1112, offset + 100*Drift/2, 2 + 100*Drift/2, 12, 2},
		// [θ − 5 − d, θ + 1 + d] ∩ [θ − 2, θ + 3] = [θ − 2, θ + 1 + d]
		{"an intersection off the true offset, within its half width",
			[]Sample{exchange(1000, offset, 1, 5, 0.3), exchange(1100, offset, 3, 2, 0.1)}, 1105.1, offset - 0.5 + 98.8*Drift/2, 1.5 + 98.8*Drift/2, 5, 2},
		// one sample's bounds inside the others' set both ends: that sample, exactly
		{"the lowest round trip inside the others' bounds is the estimate",
			[]Sample{exchange(1000, offset, 10, 60, 0), exchange(1100, offset, 2, 2, 0), exchange(1200, offset, 40, 10, 0)},
			1250, offset, 2 + (1250-1104)*Drift, 4, 3},
		{"an outlier with a huge round trip changes nothing",
			[]Sample{exchange(1000, offset, 3, 4, 0), exchange(1100, offset, 4000, 4500, 0), exchange(9700, offset, 4, 3, 0)},
			9707, offset + 8700*Drift/2, 3 + 8700*Drift/2, 7, 3}, // [θ − 4 − d, θ + 3 + d] ∩ [θ − 3, θ + 4]
		{"a negative round trip and an over-long one are dropped",
			[]Sample{{T0: 1000, T1: 6000, T2: 6000, T3: 990}, exchange(1000, offset, 6000, 6000, 0), exchange(2000, offset, 3, 3, 0)},
			2006, offset, 3, 6, 1},
		// the first: [θ − 1 − 10.0004, θ + 1 + 10.0004] contains the second's [θ − 3, θ + 3]
		{"an old sample's bounds widen with the drift",
			[]Sample{exchange(0, offset, 1, 1, 0), exchange(100_000, offset, 3, 3, 0)},
			100_006, offset, 3, 2, 2},
		// the first: [θ − 5 − 0.2, θ + 1 + 0.2] and the second [θ − 1, θ + 5]: the drift
		// widens both ends of the old one, and the intersection is [θ − 1, θ + 1.2]
		{"the drift widens the old sample's end of the intersection",
			[]Sample{exchange(0, offset, 1, 5, 0), exchange(2000, offset, 5, 1, 0)},
			2006, offset + 0.1, 1.1, 6, 2},
		// the server's clock stepped 50 ms forward between the two: no offset agrees with
		// both, and the newer tells the clock as it is now
		{"an empty intersection: the older samples are dropped",
			[]Sample{exchange(1000, offset, 1, 1, 0), exchange(1100, offset, 2, 2, 0), exchange(1200, offset+50, 3, 3, 0)},
			1206, offset + 50, 3, 6, 1},
		{"after a step, the samples that agree with the newest stay",
			[]Sample{exchange(1000, offset, 1, 1, 0), exchange(1100, offset+50, 2, 6, 0), exchange(1200, offset+50, 5, 3, 0)},
			1208, offset + 50 - 0.5 + 100*Drift/2, 2.5 + 100*Drift/2, 8, 2}, // [θ − 6 − d, θ + 2 + d] ∩ [θ − 3, θ + 5]
	} {
		t.Run(tt.name, func(t *testing.T) {
			var e Estimator
			kept := 0
			for _, s := range tt.samples {
				if e.Add(s) {
					kept++
				}
			}
			got, ok := e.Estimate(tt.at)
			if !ok || len(e.samples) != tt.wantKept || math.Abs(got.Offset-tt.wantOffset) > 1e-9 ||
				math.Abs(got.Error-tt.wantError) > 1e-9 || math.Abs(got.RTT-tt.wantRTT) > 1e-9 {
				t.Errorf("got %+v (added %d, kept %d, ok %v), want offset %v error %v rtt %v (kept %d)",
					got, kept, len(e.samples), ok, tt.wantOffset, tt.wantError, tt.wantRTT, tt.wantKept)
			}
		})
	}
	var e Estimator
	if _, ok := e.Estimate(0); ok {
		t.Error("an estimate without samples")
	}
}

// TestOneSample: with one sample the estimate is the single-sample rule's, to the bit.
func TestOneSample(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		t0 := 1.765e12 + rng.Float64()*1e6
		s := exchange(t0, rng.NormFloat64()*5000, rng.Float64()*200, rng.Float64()*200, rng.Float64())
		at := s.T3 + rng.Float64()*1e6
		var e Estimator
		e.Add(s)
		if got, _ := e.Estimate(at); got != today(s, at) {
			t.Fatalf("%+v at %v: got %+v, want %+v", s, at, got, today(s, at))
		}
	}
}

// TestStepStaysDropped: once a step dropped the older samples, they do not come back when
// the drift has widened their bounds enough to meet the newer ones'.
func TestStepStaysDropped(t *testing.T) {
	var e Estimator
	e.Add(exchange(0, 100, 1, 1, 0))
	e.Add(exchange(1000, 110, 1, 1, 0)) // the server's clock stepped 10 ms forward
	// a day later the first's bounds are ± 8.6 s wide and would meet the second's
	got, _ := e.Estimate(86_400_000)
	if want := 110.0; math.Abs(got.Offset-want) > 1e-9 || len(e.samples) != 1 {
		t.Errorf("got %+v from %d samples, want offset %v from the newest alone", got, len(e.samples), want)
	}
}

// TestBeforeTheLastSample: at a time before the newest sample arrived, the drift widens
// that sample's bounds backwards, as it widens the older ones' forwards, and the bound
// stays honest.
func TestBeforeTheLastSample(t *testing.T) {
	var e Estimator
	e.Add(exchange(0, 100, 1, 1, 0))
	e.Add(exchange(100_000, 109.5, 1, 1, 0)) // 95 ppm apart: [108.5, 110.5]; the first's, widened by 10: [89, 111]
	if len(e.samples) != 2 {
		t.Fatalf("kept %d samples, want 2: they agree at the second's arrival", len(e.samples))
	}
	// at 50,000 the first's are [94, 106] and the second's [103.5, 115.5]; the true
	// offset then was 104.75
	got, _ := e.Estimate(50_000)
	if math.Abs(got.Offset-104.75) > 1e-3 || math.Abs(got.Error-1.25) > 1e-3 {
		t.Errorf("got %+v, want 104.75 ± 1.25", got)
	}
}

// TestHonest: on samples that tell the truth (any delays, a client clock that drifts
// within Drift), the true offset is within the estimate's error bound, and that bound is
// never looser than the single-sample rule's.
func TestHonest(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 2000 {
		// client clock c(τ) = c0 + (1 + ρ) τ against the server's τ (true time, ms)
		c0, rho := rng.NormFloat64()*5000, (2*rng.Float64()-1)*Drift
		clock := func(tau float64) float64 { return c0 + (1+rho)*tau }
		base, jitter := rng.Float64()*100, rng.Float64()*20
		delay := func() float64 {
			d := base + rng.Float64()*jitter
			if rng.IntN(10) == 0 {
				d += rng.Float64() * 500 // queueing
			}
			return d
		}
		var e Estimator
		tau, slack := 0.0, 0.0
		for range 1 + rng.IntN(40) {
			tau += rng.Float64() * 30_000
			tau1 := tau + delay()
			tau2 := tau1 + rng.Float64()
			s := Sample{T0: clock(tau), T1: tau1, T2: tau2, T3: clock(tau2 + delay())}
			if !e.Add(s) {
				continue
			}
			// the drift over a round trip itself is left out of the bounds, as it was
			// of the single-sample rule's: at most Drift × the round trip
			slack = math.Max(slack, Drift*(s.T3-s.T0)+1e-6)
			now := s.T3 + rng.Float64()*60_000
			got, ok := e.Estimate(now)
			truth := (tau2 + (now-clock(tau2))/(1+rho)) - now // server time − client time at now
			if !ok || math.Abs(got.Offset-truth) > got.Error+slack {
				t.Fatalf("trial %d: got %+v, true offset %v: off by %v", trial, got, truth, got.Offset-truth)
			}
			for _, k := range e.samples {
				if _, _, r := k.bounds(now); got.Error > r+1e-9 {
					t.Fatalf("trial %d: error bound %v, looser than a sample's own %v", trial, got.Error, r)
				}
			}
		}
	}
}

// TestWindow: only the last Window samples count.
func TestWindow(t *testing.T) {
	var e Estimator
	e.Add(exchange(0, 100, 0.5, 0.5, 0)) // the narrowest, and the oldest: [99.5, 100.5]
	for i := range Window {
		e.Add(exchange(float64(1+i), 100, 1, 9, 0)) // [91, 101]
	}
	// the newest, received at 26, is the narrowest now
	if got, _ := e.Estimate(100); math.Abs(got.Offset-96) > 1e-9 || math.Abs(got.Error-(5+74*Drift)) > 1e-9 {
		t.Errorf("got %+v, want offset 96 ± 5.0074: the narrowest sample fell out of the window", got)
	}
}

// recorded is testdata/samples.json: samples of sync exchanges (a link with queueing, a
// clock that stepped back within a round trip, then the server's clock stepped 40 ms
// forward and a burst after it) and, after each, the estimate as web/clock.js gives it
// (run by node, V8: testdata/record.mjs writes them; server's TestPageClockAgrees checks
// that the page's clock.js, in Chromium, still gives it).
type recorded struct {
	Samples []Sample   `json:"samples"`
	At      []float64  `json:"at"`
	Want    []Estimate `json:"want"`
}

// readRecorded reads testdata/samples.json.
func readRecorded(t *testing.T) recorded {
	b, err := os.ReadFile("testdata/samples.json")
	if err != nil {
		t.Fatal(err)
	}
	var r recorded
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRecorded: the Go estimator gives, on the recorded samples, exactly the page's
// estimates.
func TestRecorded(t *testing.T) {
	r := readRecorded(t)
	var e Estimator
	next := 0
	for i, s := range r.Samples {
		e.Add(s)
		for next < len(r.At) && (i == len(r.Samples)-1 || r.At[next] < r.Samples[i+1].T3) {
			got, _ := e.Estimate(r.At[next])
			if got != r.Want[next] {
				t.Errorf("estimate at %v: got %+v, want the page's %+v", r.At[next], got, r.Want[next])
			}
			next++
		}
	}
	if next != len(r.At) {
		t.Fatalf("checked %d estimates of %d", next, len(r.At))
	}
}

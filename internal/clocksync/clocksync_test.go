package clocksync

import (
	"encoding/json"
	"math"
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

func TestEstimate(t *testing.T) {
	const offset = 5000.25
	for _, tt := range []struct {
		name       string
		samples    []Sample
		at         float64
		wantOffset float64
		wantError  float64
		wantRTT    float64
		wantKept   int
	}{
		{"symmetric: exact, error half the round trip",
			[]Sample{exchange(1000, offset, 10, 10, 0.5)}, 1020.5, offset, 10, 20, 1},
		{"the lowest round trip wins over queueing",
			[]Sample{exchange(1000, offset, 10, 60, 0), exchange(1100, offset, 2, 2, 0), exchange(1200, offset, 40, 10, 0)},
			1250, offset, 2 + (1250-1104)*Drift, 4, 3},
		{"asymmetric: off by half the asymmetry, within the bound",
			[]Sample{exchange(1000, offset, 5, 40, 0)}, 1045, offset + (5-40)/2.0, 22.5, 45, 1},
		{"a negative round trip and an over-long one are dropped",
			[]Sample{{T0: 1000, T1: 6000, T2: 6000, T3: 990}, exchange(1000, offset, 6000, 6000, 0), exchange(2000, offset, 3, 3, 0)},
			2006, offset, 3, 6, 1},
		{"an old sample's error grows with the drift",
			[]Sample{exchange(0, offset, 1, 1, 0), exchange(100_000, offset, 3, 3, 0)},
			100_006, offset, 3, 6, 2}, // the first: 1 + 100,004 × 1e-4 = 11 > 3
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
			if !ok || kept != tt.wantKept || math.Abs(got.Offset-tt.wantOffset) > 1e-9 ||
				math.Abs(got.Error-tt.wantError) > 1e-9 || math.Abs(got.RTT-tt.wantRTT) > 1e-9 {
				t.Errorf("got %+v (kept %d, ok %v), want offset %v error %v rtt %v (kept %d)",
					got, kept, ok, tt.wantOffset, tt.wantError, tt.wantRTT, tt.wantKept)
			}
		})
	}
	var e Estimator
	if _, ok := e.Estimate(0); ok {
		t.Error("an estimate without samples")
	}
}

// TestWindow: only the last Window samples count.
func TestWindow(t *testing.T) {
	var e Estimator
	e.Add(exchange(0, 100, 0.5, 0.5, 0)) // the best, and the oldest
	for i := range Window {
		e.Add(exchange(float64(1+i), 200, 5, 5, 0))
	}
	if got, _ := e.Estimate(100); got.Offset != 200 {
		t.Errorf("got offset %v, want 200: the best sample fell out of the window", got.Offset)
	}
}

// recorded is testdata/samples.json: samples of sync exchanges (a link with queueing and
// a clock that stepped back) and, after each, the estimate as web/clock.js gave it (run by
// node, V8, when the file was made; server's TestPageClockAgrees checks that the page's
// clock.js, in Chromium, still gives it).
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

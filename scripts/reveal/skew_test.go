package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/bulbquiz/bulb/internal/lagproxy"
	"github.com/bulbquiz/bulb/internal/stats"
)

// testLinks: three symmetric groups and an asymmetric one (5 ms down, 40 up).
var testLinks = []lagproxy.Link{
	lagproxy.Symmetric(5, 1), lagproxy.Symmetric(25, 3), lagproxy.Symmetric(60, 6),
	{Down: lagproxy.Delay{Ms: 5, JitterMs: 1}, Up: lagproxy.Delay{Ms: 40, JitterMs: 1}},
}

const (
	sNs    = int64(1_700_000_000_000_000_000) // a reveal instant S, Unix ns
	msInNs = int64(1_000_000)
)

// rec is a synced record of group g: received recvMs, targeted targetMs and lit litMs
// after S (ms, negative before), with error bound boundMs.
func rec(g int, recvMs, targetMs, litMs, boundMs float64, late bool) record {
	at := func(ms float64) int64 { return sNs + int64(math.Round(ms*float64(msInNs))) }
	return record{Group: g, At: sNs, Recv: at(recvMs), Target: at(targetMs), Lit: at(litMs), BoundMs: boundMs, Late: late, RTTMs: 2 * boundMs}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestSpreadMs(t *testing.T) {
	for _, tt := range []struct {
		in   []int64
		want float64
	}{
		{nil, 0}, {[]int64{5 * msInNs}, 0},
		{[]int64{3 * msInNs, 1 * msInNs, 7*msInNs + 500_000}, 6.5},
	} {
		if got := spreadMs(tt.in); !near(got, tt.want) {
			t.Errorf("spreadMs(%v): got %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestErrSummary(t *testing.T) {
	// 100 errors: −1, +2, −3, …, ±100: |e| is 1…100, the mean −0.5.
	var errs []float64
	for i := 1; i <= 100; i++ {
		e := float64(i)
		if i%2 == 1 {
			e = -e
		}
		errs = append(errs, e)
	}
	got := errSummaryOf(errs)
	want := errSummary{MeanMs: 0.5, Abs: stats.Summary{N: 100, P50: 50, P99: 99, Max: 100, Spread: 99}}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := errSummaryOf(nil); got != (errSummary{}) {
		t.Errorf("empty: got %+v, want the zero summary", got)
	}
}

func TestPredictedErr(t *testing.T) {
	if got := predictedErrMs(testLinks[3]); got != -17.5 {
		t.Errorf("5 down, 40 up: got %v, want −17.5 (lights early by half the asymmetry)", got)
	}
	if got := predictedErrMs(testLinks[2]); got != 0 {
		t.Errorf("symmetric: got %v, want 0", got)
	}
	if symmetric(testLinks[3]) || !symmetric(testLinks[0]) {
		t.Error("symmetric: got the asymmetric link symmetric, or the other way round")
	}
}

// TestSplitStart: the light spread splits into the targets' spread (the algorithm) and
// the wake-up (light − target), over the on-time students only.
func TestSplitStart(t *testing.T) {
	recs := []record{
		rec(0, -100, 0.5, 1.0, 1, false),      // wake 0.5
		rec(1, -80, -1.5, -0.5, 3, false),     // wake 1
		rec(2, -40, 2.0, 4.0, 6, false),       // wake 2
		rec(3, -120, -17.5, -17.0, 23, false), // asymmetric: early by half the asymmetry; wake 0.5
		rec(2, 10, 1.0, 10.0, 6, true),        // late: lit at its receipt, no wake-up
	}
	got := splitStart(7, recs, testLinks)
	want := syncedStart{N: 7, Students: 5,
		LightSpreadMs:    10.0 - -17.0, // every student, lit from −17 to +10
		LightSpreadSymMs: 10.0 - -0.5,  // the symmetric groups: −0.5 to +10
		TargetSpreadMs:   2.0 - -17.5, TargetSpreadSymMs: 2.0 - -1.5,
		WakeP99Ms: 2, WakeMaxMs: 2, ReceiptSpreadMs: 10 - -120, Late: 1}
	if !near(got.LightSpreadMs, want.LightSpreadMs) || !near(got.LightSpreadSymMs, want.LightSpreadSymMs) ||
		!near(got.TargetSpreadMs, want.TargetSpreadMs) || !near(got.TargetSpreadSymMs, want.TargetSpreadSymMs) ||
		!near(got.WakeP99Ms, want.WakeP99Ms) || !near(got.WakeMaxMs, want.WakeMaxMs) ||
		!near(got.ReceiptSpreadMs, want.ReceiptSpreadMs) || got.Late != want.Late || got.N != 7 || got.Students != 5 {
		t.Errorf("got %+v,\nwant %+v", got, want)
	}
}

// TestSkewOfGroup: the per-group error split, with known errors.
func TestSkewOfGroup(t *testing.T) {
	l := testLinks[3] // predicted −17.5
	recs := []record{
		rec(3, -100, -17.0, -16.0, 22.5, false), // error −17, wake 1
		rec(3, -100, -18.0, -17.5, 22.5, false), // error −18, wake 0.5
		rec(3, -100, -17.5, -14.5, 22.5, false), // error −17.5, wake 3
		rec(3, 2, -20.0, 2.0, 19, true),         // error −20 outside its bound 19; late, and truly late (after S)
	}
	got := skewOfGroup(recs, l)
	if got.Records != 4 || !near(got.PredictedErrMs, -17.5) {
		t.Errorf("got %d records, predicted %v; want 4, −17.5", got.Records, got.PredictedErrMs)
	}
	if want := (errSummary{MeanMs: -18.125, Abs: stats.Summary{N: 4, P50: 17.5, P99: 20, Max: 20}}); !near(got.Err.MeanMs, want.MeanMs) ||
		got.Err.Abs.N != 4 || !near(got.Err.Abs.P50, want.Abs.P50) || !near(got.Err.Abs.P99, want.Abs.P99) || !near(got.Err.Abs.Max, want.Abs.Max) {
		t.Errorf("error: got %+v, want %+v", got.Err, want)
	}
	if !near(got.P99DevMs, 2.5) { // |−20 − −17.5|
		t.Errorf("p99 |error − predicted|: got %v, want 2.5", got.P99DevMs)
	}
	if !near(got.WakeP50Ms, 1) || !near(got.WakeP99Ms, 3) {
		t.Errorf("wake-up: got p50 %v, p99 %v; want 1, 3 (the late one left out)", got.WakeP50Ms, got.WakeP99Ms)
	}
	if got.Late != 1 || got.TrulyLate != 1 || got.OutsideBound != 1 || got.NoEst != 0 {
		t.Errorf("got late %d, truly late %d, outside %d, no estimate %d; want 1, 1, 1, 0", got.Late, got.TrulyLate, got.OutsideBound, got.NoEst)
	}
	if !near(got.LitMeanMs, (-16-17.5-14.5+2)/4.0) {
		t.Errorf("light − S mean: got %v, want %v", got.LitMeanMs, (-16-17.5-14.5+2)/4.0)
	}
	if !near(got.RTTNominalMs, 45) || !near(got.RTTP50Ms, 45) || !near(got.RTTP99Ms, 45) {
		t.Errorf("RTT: got nominal %v, p50 %v, p99 %v; want 45, 45, 45", got.RTTNominalMs, got.RTTP50Ms, got.RTTP99Ms)
	}
}

func TestReceiptAfterFirst(t *testing.T) {
	at := func(ms float64) int64 { return sNs + int64(ms*float64(msInNs)) }
	starts := [][]record{
		{{Group: 0, Recv: at(10)}, {Group: 1, Recv: at(30)}, {Group: 2, Recv: at(70)}},
		{{Group: 0, Recv: at(100)}, {Group: 0, Recv: at(102)}, {Group: 1, Recv: at(120)}, {Group: 2, Recv: at(160)}},
		nil,
	}
	got := receiptAfterFirstMs(starts, 3)
	want := []float64{(0 + 0 + 2) / 3.0, (20 + 20) / 2.0, (60 + 60) / 2.0}
	for g := range want {
		if !near(got[g], want[g]) {
			t.Errorf("group %d: got %v, want %v", g, got[g], want[g])
		}
	}
}

func TestSyncSchedule(t *testing.T) {
	for _, tt := range []struct {
		since float64
		want  []float64
	}{
		{0, nil},
		{100, []float64{0, 30, 60, 90}},
		{45_000, []float64{0, 30, 60, 90, 120, 150, 180, 210, 20_000, 40_000}},
	} {
		if got := syncSchedule(tt.since); !slices.Equal(got, tt.want) {
			t.Errorf("syncSchedule(%v): got %v, want %v", tt.since, got, tt.want)
		}
	}
}

// TestModel: without jitter the model's error is the link's prediction; with jitter it
// stays within half the jitter's range of it, and is centred on it.
func TestModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sent := syncSchedule(30_000)
	for _, l := range []lagproxy.Link{lagproxy.Symmetric(25, 0), {Down: lagproxy.Delay{Ms: 5}, Up: lagproxy.Delay{Ms: 40}}} {
		if got := modelErrMs(l, sent, 30_000, rng); !near(got, predictedErrMs(l)) {
			t.Errorf("%s without jitter: got %v, want %v", l, got, predictedErrMs(l))
		}
	}
	l := lagproxy.Symmetric(60, 6)
	var errs []float64
	for range 2000 {
		e := modelErrMs(l, sent, 30_000, rng)
		if math.Abs(e) > 6 {
			t.Fatalf("%s: got error %v, want within ±6 ms (half of ±6 each way)", l, e)
		}
		errs = append(errs, e)
	}
	if m := mean(errs); math.Abs(m) > 0.3 {
		t.Errorf("%s: got mean error %v, want about 0", l, m)
	}
	// No sample back before the reveal: the prediction.
	if got := modelErrMs(testLinks[3], []float64{0}, 10, rng); got != -17.5 {
		t.Errorf("no sample: got %v, want the prediction −17.5", got)
	}
	// A record without an estimate has no model errors; one with gets modelReplicas.
	recs := []record{{NoEst: true, SinceSyncMs: 5000}, {SinceSyncMs: 5000}}
	if got := len(modelErrs(recs, l, rng)); got != modelReplicas {
		t.Errorf("modelErrs: got %d errors, want %d", got, modelReplicas)
	}
}

package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestModes(t *testing.T) {
	for _, tc := range []struct {
		mode, timing string
		synced       bool
	}{
		{"arrival", "arrival", false},
		{"compensated", "compensated", false},
		{"synced+arrival", "arrival", true},
		{"synced+compensated", "compensated", true},
	} {
		if got, synced := modeTiming(tc.mode), modeSynced(tc.mode); got != tc.timing || synced != tc.synced {
			t.Errorf("%s: got timing %s, synced %v; want %s, %v", tc.mode, got, synced, tc.timing, tc.synced)
		}
	}
}

// TestDrawReaction: never below the floor, the normal's mean above it, and exact without
// spread.
func TestDrawReaction(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const mean, sd, floor = 300 * time.Millisecond, 50 * time.Millisecond, 150 * time.Millisecond
	var sum time.Duration
	const n = 20000
	for range n {
		d := drawReaction(rng, mean, sd, floor)
		if d < floor {
			t.Fatalf("drew %v, below the floor %v", d, floor)
		}
		sum += d
	}
	// Truncating a normal 3 sd below its mean moves the mean up by sd·φ(3)/(1−Φ(3)) =
	// 0.22 ms; the sampling error of 20,000 draws is 0.35 ms.
	if got := sum / n; got < 298*time.Millisecond || got > 302*time.Millisecond {
		t.Errorf("mean of %d draws: got %v, want about 300ms", n, got)
	}
	if got := drawReaction(rng, mean, 0, floor); got != mean {
		t.Errorf("without spread: got %v, want %v", got, mean)
	}
}

func TestSeenPause(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	lo, hi := seenMax, seenMin
	for range 10000 {
		d := seenPause(rng)
		if d < seenMin || d >= seenMax {
			t.Fatalf("got %v, want within [%v, %v)", d, seenMin, seenMax)
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo > seenMin+5*time.Millisecond || hi < seenMax-5*time.Millisecond {
		t.Errorf("10,000 pauses span [%v, %v], want nearly [%v, %v)", lo, hi, seenMin, seenMax)
	}
}

func TestOneWayDelays(t *testing.T) {
	for _, tc := range []struct {
		g    group
		want []float64
	}{
		{group{5, 1}, []float64{4, 5}},
		{group{25, 3}, []float64{22, 23, 24, 25, 26, 27}},
		{group{10, 0}, []float64{10}},
	} {
		if got := oneWayDelays(tc.g); !slices.Equal(got, tc.want) {
			t.Errorf("oneWayDelays(%v): got %v, want %v", tc.g, got, tc.want)
		}
	}
}

// TestReturnModelShares: one player per group, reactions 0 or 100 ms as likely, one-way
// delays 5 and 25 ms: the far player wins only when it draws 0 and the near one 100, a
// quarter of the questions.
func TestReturnModelShares(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	got := returnModelShares([]float64{0, 100}, []group{{5, 0}, {25, 0}}, []int{1, 1}, 40000, rng)
	// 40,000 rounds: the standard error of a quarter is 0.22 points
	if len(got) != 2 || math.Abs(got[0]-0.75) > 0.01 || math.Abs(got[1]-0.25) > 0.01 {
		t.Errorf("got %v, want [0.75 0.25]", got)
	}
	// The lab's groups, 100 players each, reactions normal(300, 50): the far group's
	// 55 ms more on the way back leaves it almost nothing.
	reactions := make([]float64, 5000)
	for i := range reactions {
		reactions[i] = 300 + 50*rng.NormFloat64()
	}
	got = returnModelShares(reactions, []group{{5, 1}, {25, 3}, {60, 6}}, []int{100, 100, 100}, 5000, rng)
	if !(got[0] > got[1] && got[1] > got[2] && got[2] < 0.1) {
		t.Errorf("the lab's groups: got %v, want shares falling with the delay, the far group's under 10%%", got)
	}
}

func TestCredited(t *testing.T) {
	const capMs, returnCap = 150, 75
	for _, tc := range []struct {
		mode        string
		ping, ack   float64
		want        float64
		description string
	}{
		{"arrival", 120, 110, 0, "no credit under arrival"},
		{"synced+arrival", 120, math.NaN(), 0, "nor under synced arrival"},
		{"compensated", 120, 110, 110, "the lesser round trip"},
		{"compensated", 412, 11, 11, "a held-back pong loses to the ack"},
		{"compensated", 400, 300, 150, "capped"},
		{"synced+compensated", 120, math.NaN(), 60, "half the ping round trip"},
		{"synced+compensated", 412, math.NaN(), 75, "a held-back pong, capped"},
	} {
		if got := credited(tc.mode, tc.ping, tc.ack, capMs, returnCap); got != tc.want {
			t.Errorf("%s (%s): got %v, want %v", tc.mode, tc.description, got, tc.want)
		}
	}
}

// TestTallyReveal: the synced reveal's counts, by group and for the cheaters.
func TestTallyReveal(t *testing.T) {
	players := []player{{Group: 0}, {Group: 1}, {Group: 1}, {Group: 0, Cheater: true}}
	questions := [][]answer{
		{
			{Player: 3, Rank: 0, FalseStart: true, Revealed: true, LightMs: 0.1, Clocked: true},
			{Player: 0, Rank: 1, Revealed: true, LightMs: 0.5, OffsetMs: -1, BoundMs: 3, Clocked: true},
			{Player: 1, Rank: 2, Revealed: true, LightMs: 2, OffsetMs: 2, BoundMs: 25, Clocked: true, Late: true},
			{Player: 2, Rank: 0, FalseStart: true, Revealed: true, LightMs: 1, OffsetMs: 0.5, BoundMs: 26},
		},
		{{Player: 0, Rank: 1}}, // an immediate start: nothing revealed
	}
	got := tally(players, 2, questions)
	if g := got.Groups[0]; g.FalseStarts != 0 || !slices.Equal(g.Light, []float64{0.5}) || !slices.Equal(g.Offset, []float64{-1}) ||
		!slices.Equal(g.Bound, []float64{3}) || g.Late != 0 || g.Unclocked != 0 {
		t.Errorf("group 0: got %+v, want no false start, light [0.5], offset [-1], bound [3]", g)
	}
	if g := got.Groups[1]; g.FalseStarts != 1 || !slices.Equal(g.Light, []float64{2, 1}) || g.Late != 1 || g.Unclocked != 1 {
		t.Errorf("group 1: got %+v, want 1 false start, light [2 1], 1 late, 1 unclocked", g)
	}
	if c := got.Cheaters[0]; c.FalseStarts != 1 {
		t.Errorf("cheater: got %d false starts, want 1", c.FalseStarts)
	}
	if got.Groups[0].Wins != 2 || got.Groups[1].Wins != 0 {
		t.Errorf("wins: got %d, %d; want 2, 0 (a false start is unranked)", got.Groups[0].Wins, got.Groups[1].Wins)
	}
}

func TestSyncedOf(t *testing.T) {
	tt := modeTally{
		Groups:   []groupTally{{FalseStarts: 1, Late: 2}, {Unclocked: 3}},
		Cheaters: []cheaterTally{{FalseStarts: 4}, {FalseStarts: 1}},
	}
	reveals := []revealInfo{
		{LeadUs: 200_000, OnTime: 10, Late: 1, SpreadUs: 1000, SkewUs: 5000, FalseStarts: 2},
		{LeadUs: 250_000, OnTime: 11, SpreadUs: 3000, SkewUs: 7000, FalseStarts: 3},
		{LeadUs: 300_000, OnTime: 9, Late: 2, SpreadUs: 2000, SkewUs: 6000},
	}
	got := syncedOf(tt, reveals)
	want := syncedReport{FalseStarts: 1, CheaterFalseStarts: 5, ServerFalseStarts: 5, Late: 2, Unclocked: 3,
		ServerOnTime: 30, ServerLate: 3, LeadP50Ms: 250, LeadMaxMs: 300, SpreadP50Ms: 2, SpreadP99Ms: 3, SkewP50Ms: 6}
	if *got != want {
		t.Errorf("got %+v, want %+v", *got, want)
	}
}

// TestTargetOf: the worst group by the size of its distance, met or missed by the
// tolerance, and the sampling noise of a fair third.
func TestTargetOf(t *testing.T) {
	mr := modeReport{Mode: "synced+compensated", WorstPts: 4, ModelWorstPts: 0.5, Groups: []groupReport{
		{group: group{5, 1}, DistancePts: 2, ModelShare: 0.335},
		{group: group{25, 3}, DistancePts: -4, ModelShare: 0.33},
		{group: group{60, 6}, DistancePts: 2, ModelShare: 0.335},
	}}
	got := targetOf(mr, 3, 1000, 3)
	if got.Met || !got.ModelMet || got.WorstGroup != "25±3 ms" || got.WorstPts != -4 || got.Mode != "synced+compensated" {
		t.Errorf("tolerance 3: got %+v, want missed, model met, worst 25±3 ms at -4", got)
	}
	// 100 · 1.96 · √(1/3 · 2/3 / 1000) = 2.92 points
	if math.Abs(float64(got.NoisePts)-2.92) > 0.01 {
		t.Errorf("noise: got %v, want 2.92", got.NoisePts)
	}
	if got := targetOf(mr, 5, 1000, 3); !got.Met {
		t.Errorf("tolerance 5: got %+v, want met", got)
	}
	if got := targetOf(mr, 5, 0, 3); got.Met {
		t.Errorf("no questions: got met, want missed")
	}
}

func TestRecordOrigin(t *testing.T) {
	receipt := time.Unix(100, 0)
	lit := receipt.Add(250 * time.Millisecond)
	if got := (&record{receipt: receipt}).origin(); !got.Equal(receipt) {
		t.Errorf("immediate: got %v, want the receipt", got)
	}
	if got := (&record{receipt: receipt, at: 1, lit: lit}).origin(); !got.Equal(lit) {
		t.Errorf("synced: got %v, want the lighting", got)
	}
	if got := (&record{receipt: receipt, at: 1}).origin(); !got.IsZero() {
		t.Errorf("synced, not lit yet: got %v, want zero", got)
	}
}

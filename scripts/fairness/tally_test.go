package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestTally(t *testing.T) {
	// Two groups of two honest players (0, 1 in group 0; 2, 3 in group 1) and a cheater
	// (4) in group 0.
	players := []player{{Group: 0}, {Group: 0}, {Group: 1}, {Group: 1}, {Group: 0, Cheater: true}}
	questions := [][]answer{
		// the cheater wins; the best honest answer is player 2's (group 1)
		{{Player: 4, Rank: 1, Timed: true, ReactionMs: 100, LagMs: -140}, {Player: 2, Rank: 2, Timed: true, ReactionMs: 300, LagMs: 5},
			{Player: 0, Rank: 3, Timed: true, ReactionMs: 310, LagMs: 1}},
		// player 1 wins outright; player 3 answered wrong (rank 0) but is timed
		{{Player: 1, Rank: 1, Timed: true, ReactionMs: 250, LagMs: 2}, {Player: 3, Rank: 0, Timed: true, ReactionMs: 200, LagMs: 6}},
		// only the cheater is ranked: no honest winner, the question is not decided
		{{Player: 4, Rank: 1}},
		// nobody answered
		{},
	}
	got := tally(players, 2, questions)
	if got.Questions != 2 {
		t.Errorf("Questions: got %d, want 2", got.Questions)
	}
	for g, want := range []struct{ players, wins, rank1, pctN int }{{2, 1, 1, 2}, {2, 1, 0, 1}} {
		gt := got.Groups[g]
		if gt.Players != want.players || gt.Wins != want.wins || gt.Rank1 != want.rank1 || gt.PctN != want.pctN {
			t.Errorf("group %d: got players %d, wins %d, rank1 %d, pctN %d; want %d, %d, %d, %d",
				g, gt.Players, gt.Wins, gt.Rank1, gt.PctN, want.players, want.wins, want.rank1, want.pctN)
		}
	}
	// Group 0's percentiles: player 0 third of 3 (1.0), player 1 first of 1 (0.5).
	if got.Groups[0].PctSum != 1.5 {
		t.Errorf("group 0 PctSum: got %v, want 1.5", got.Groups[0].PctSum)
	}
	// Group 1: player 2 second of 3 (0.5).
	if got.Groups[1].PctSum != 0.5 {
		t.Errorf("group 1 PctSum: got %v, want 0.5", got.Groups[1].PctSum)
	}
	if len(got.Cheaters) != 1 {
		t.Fatalf("cheaters: got %d, want 1", len(got.Cheaters))
	}
	c := got.Cheaters[0]
	if c.Player != 4 || c.Group != 0 || c.Rank1 != 2 || c.PctN != 2 || c.PctSum != 0.5 {
		t.Errorf("cheater: got %+v, want player 4, group 0, rank1 2, pctN 2, pctSum 0.5 (0 + 0.5)", c)
	}
	if want := []float64{-140}; !slices.Equal(c.Lags, want) {
		t.Errorf("cheater lags: got %v, want %v", c.Lags, want)
	}
	if want := []float64{1, 2}; !slices.Equal(got.Groups[0].Lags, want) {
		t.Errorf("group 0 lags: got %v, want %v", got.Groups[0].Lags, want)
	}
	if want := []float64{5, 6}; !slices.Equal(got.Groups[1].Lags, want) {
		t.Errorf("group 1 lags: got %v, want %v", got.Groups[1].Lags, want)
	}
	if want := []float64{310, 250}; !slices.Equal(got.Groups[0].LagReactions, want) {
		t.Errorf("group 0 lag reactions: got %v, want %v (in the order of its lags)", got.Groups[0].LagReactions, want)
	}
	if want := []float64{300, 310, 250, 200}; !slices.Equal(got.Reactions, want) {
		t.Errorf("reactions (honest only): got %v, want %v", got.Reactions, want)
	}
}

// TestContenderLags: only the answers whose reaction is at or below the percentile of all
// honest reactions count, each with its own lag, in each group.
func TestContenderLags(t *testing.T) {
	tt := modeTally{
		Groups: []groupTally{
			{Lags: []float64{1, 2, 3}, LagReactions: []float64{100, 200, 300}},
			{Lags: []float64{10, 20, 30}, LagReactions: []float64{150, 250, 350}},
		},
		Reactions: []float64{100, 200, 300, 150, 250, 350},
	}
	// The 50th percentile of the six reactions (nearest rank: the third smallest) is 200.
	got := contenderLags(tt, 50)
	if want := [][]float64{{1, 2}, {10}}; len(got) != 2 || !slices.Equal(got[0], want[0]) || !slices.Equal(got[1], want[1]) {
		t.Errorf("contenderLags(50): got %v, want %v", got, want)
	}
	got = contenderLags(tt, 0) // the fastest only
	if len(got) != 2 || !slices.Equal(got[0], []float64{1}) || len(got[1]) != 0 {
		t.Errorf("contenderLags(0): got %v, want [[1] []]", got)
	}
	if got := contenderLags(modeTally{Groups: make([]groupTally, 3)}, 5); len(got) != 3 || got[0] != nil {
		t.Errorf("contenderLags of no answers: got %v, want 3 empty groups", got)
	}
}

// TestAnswerTimes: each group's answers, reaction and lag added, in the order of its lags.
func TestAnswerTimes(t *testing.T) {
	tt := modeTally{Groups: []groupTally{
		{Lags: []float64{1, -2}, LagReactions: []float64{100, 200}},
		{},
	}}
	got := answerTimes(tt)
	if len(got) != 2 || !slices.Equal(got[0], []float64{101, 198}) || len(got[1]) != 0 {
		t.Errorf("answerTimes: got %v, want [[101 198] []]", got)
	}
}

func TestWilson(t *testing.T) {
	// Reference values: the Wilson score interval at z = 1.96 (e.g. R's
	// binom::binom.wilson, or prop.test without continuity correction).
	for _, tc := range []struct {
		k, n   int
		lo, hi float64
	}{
		{0, 10, 0, 0.2775},
		{5, 10, 0.2366, 0.7634},
		{10, 10, 0.7225, 1},
		{67, 200, 0.2732, 0.4030},
		{0, 0, 0, 1},
	} {
		lo, hi := wilson(tc.k, tc.n, z95)
		if math.Abs(lo-tc.lo) > 5e-4 || math.Abs(hi-tc.hi) > 5e-4 {
			t.Errorf("wilson(%d, %d): got [%.4f, %.4f], want [%.4f, %.4f]", tc.k, tc.n, lo, hi, tc.lo, tc.hi)
		}
	}
}

func TestEqualShares(t *testing.T) {
	for _, tc := range []struct {
		wins []int
		chi2 float64
		p    float64
	}{
		{[]int{10, 10, 10}, 0, 1},
		// χ² = (20−10)²/10 + 2·(5−10)²/10 = 15, df 2: p = e^(−7.5)
		{[]int{20, 5, 5}, 15, math.Exp(-7.5)},
	} {
		mt := modeTally{}
		for _, w := range tc.wins {
			mt.Groups = append(mt.Groups, groupTally{Wins: w})
		}
		chi2, df, p := equalShares(mt)
		if math.Abs(chi2-tc.chi2) > 1e-9 || df != len(tc.wins)-1 || math.Abs(p-tc.p) > 1e-9 {
			t.Errorf("equalShares(%v): got χ² %v, df %d, p %v; want %v, %d, %v", tc.wins, chi2, df, p, tc.chi2, len(tc.wins)-1, tc.p)
		}
	}
}

func TestModelShares(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	reactions := make([]float64, 2000)
	for i := range reactions {
		reactions[i] = 300 + 50*rng.NormFloat64()
	}
	sizes := []int{20, 20, 20}
	t.Run("equal lags", func(t *testing.T) {
		lags := [][]float64{{10, 12}, {10, 12}, {10, 12}}
		got := modelShares(reactions, lags, sizes, 30000, rng)
		for g, s := range got {
			// 30,000 rounds: the standard error of a third is 0.27 points
			if math.Abs(s-1.0/3) > 0.015 {
				t.Errorf("group %d: got share %.3f, want 1/3", g, s)
			}
		}
	})
	t.Run("one group far behind", func(t *testing.T) {
		lags := [][]float64{{0}, {0}, {1000}}
		got := modelShares(reactions, lags, sizes, 5000, rng)
		if got[2] != 0 || math.Abs(got[0]+got[1]-1) > 1e-12 {
			t.Errorf("got %v, want group 2 never winning", got)
		}
	})
	t.Run("no data", func(t *testing.T) {
		if got := modelShares(nil, [][]float64{{1}}, []int{1}, 10, rng); got != nil {
			t.Errorf("no reactions: got %v, want nil", got)
		}
		if got := modelShares(reactions, [][]float64{{1}, nil}, []int{1, 1}, 10, rng); got != nil {
			t.Errorf("a group without lags: got %v, want nil", got)
		}
	})
}

func TestMedian(t *testing.T) {
	sample := []float64{5, 1, 3, 2}
	if got := median(sample); got != 2 {
		t.Errorf("median(%v): got %v, want 2 (nearest rank)", sample, got)
	}
	if sample[0] != 5 {
		t.Errorf("median changed its argument: %v", sample)
	}
	if got := median(nil); !math.IsNaN(got) {
		t.Errorf("median(nil): got %v, want NaN", got)
	}
}

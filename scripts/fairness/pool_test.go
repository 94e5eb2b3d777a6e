package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// twoRuns are two runs' reports: synced+compensated in both, arrival in the first only.
func twoRuns() []*report {
	groups := []group{{5, 1}, {25, 3}, {60, 6}}
	nan := num(math.NaN())
	gr := func(i, wins int, model float64, lag num) groupReport {
		return groupReport{group: groups[i], Wins: wins, ModelShare: num(model), LagP50Ms: lag, LightP50Ms: 0.5, ReturnModelShare: nan, Late: i}
	}
	run1 := &report{Setup: setup{Groups: groups, Questions: 200, Seed: 1}, Modes: []modeReport{
		{Mode: "arrival", Questions: 200, Groups: []groupReport{gr(0, 180, 0.9, 15), gr(1, 20, 0.1, 55), gr(2, 0, 0, 125)}},
		{Mode: "synced+compensated", Questions: 200, Groups: []groupReport{gr(0, 70, 0.34, 1), gr(1, 66, 0.33, 2), gr(2, 64, 0.33, nan)},
			Synced:   &syncedReport{FalseStarts: 0, CheaterFalseStarts: 1, ServerFalseStarts: 1, Late: 2},
			Cheaters: []cheaterReport{{Name: "g5ms-cheater-0", Group: groups[0], Wins: 10, HonestClientShare: 0.003, CompensationMs: 75, BoundMs: 70, GainMs: 69}}},
	}}
	run2 := &report{Setup: setup{Groups: groups, Questions: 100, Seed: 2}, Modes: []modeReport{
		{Mode: "synced+compensated", Questions: 100, Groups: []groupReport{gr(0, 30, 0.31, 4), gr(1, 34, 0.34, 2), gr(2, 36, 0.35, 3)},
			Synced:   &syncedReport{CheaterFalseStarts: 2, ServerFalseStarts: 2},
			Cheaters: []cheaterReport{{Name: "g5ms-cheater-0", Group: groups[0], Wins: 2, HonestClientShare: 0.006, CompensationMs: 75, BoundMs: 67, GainMs: 66}}},
	}}
	return []*report{run1, run2}
}

func TestPoolModes(t *testing.T) {
	got, err := poolModes(twoRuns())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Mode != "arrival" || got[1].Mode != "synced+compensated" {
		t.Fatalf("got modes %+v, want arrival then synced+compensated", got)
	}
	if a := got[0]; a.Runs != 1 || a.Questions != 200 || a.Groups[0].Wins != 180 || a.Target != nil {
		t.Errorf("arrival: got %+v, want run 1's alone, no target", a)
	}
	sc := got[1]
	if sc.Runs != 2 || sc.Questions != 300 || !sc.Synced {
		t.Errorf("synced+compensated: got %d runs, %d questions, synced %v; want 2, 300, true", sc.Runs, sc.Questions, sc.Synced)
	}
	for g, want := range []struct {
		wins  int
		model float64 // (0.34·200 + 0.31·100) / 300 …
		lag   float64
	}{{100, 0.33, 2}, {100, 0.3333, 2}, {100, 0.3367, 3}} {
		pg := sc.Groups[g]
		if pg.Wins != want.wins || math.Abs(float64(pg.Share)-1.0/3) > 1e-12 || math.Abs(float64(pg.ModelShare)-want.model) > 1e-4 ||
			math.Abs(float64(pg.LagP50Ms)-want.lag) > 1e-9 {
			t.Errorf("group %d: got wins %d, share %v, model %v, lag %v; want %d, 1/3, %v, %v", g, pg.Wins, pg.Share, pg.ModelShare, pg.LagP50Ms, want.wins, want.model, want.lag)
		}
	}
	if late := sc.Groups[2].Late; late != 4 {
		t.Errorf("group 2's late starts: got %d, want 2 + 2", late)
	}
	// 100, 100, 100 wins: χ² 0, p 1, every group at a third.
	if sc.ChiSquare != 0 || sc.DF != 2 || sc.P != 1 || sc.WorstPts != 0 {
		t.Errorf("χ²: got %v (df %d), p %v, worst %v; want 0 (2), 1, 0", sc.ChiSquare, sc.DF, sc.P, sc.WorstPts)
	}
	if sc.CheaterFalseStart != 3 || sc.ServerFalseStarts != 3 || sc.Late != 2 || sc.FalseStarts != 0 {
		t.Errorf("false starts: got honest %d, cheaters %d, server %d, late %d; want 0, 3, 3, 2", sc.FalseStarts, sc.CheaterFalseStart, sc.ServerFalseStarts, sc.Late)
	}
	if len(sc.Cheaters) != 1 {
		t.Fatalf("cheaters: got %d, want 1", len(sc.Cheaters))
	}
	c := sc.Cheaters[0]
	if c.Wins != 12 || c.Questions != 300 || math.Abs(float64(c.Share)-0.04) > 1e-12 ||
		math.Abs(float64(c.BoundMs)-69) > 1e-9 || math.Abs(float64(c.GainMs)-68) > 1e-9 || math.Abs(float64(c.HonestClientShare)-0.004) > 1e-12 {
		t.Errorf("cheater: got %+v, want 12 wins of 300 (4%%), bound 69, gain 68, honest 0.4%%", c)
	}
	if sc.Target == nil || !sc.Target.Met || sc.Target.TolerancePts != 3 {
		t.Errorf("target: got %+v, want met within 3 points", sc.Target)
	}
}

func TestPoolModesUnequalShares(t *testing.T) {
	runs := twoRuns()[:1]
	got, err := poolModes(runs)
	if err != nil {
		t.Fatal(err)
	}
	// 70, 66, 64 of 200: χ² = (3.33² + 0.67² + 2.67²)/66.67 = 0.28
	sc := got[1]
	if math.Abs(float64(sc.ChiSquare)-0.28) > 1e-9 || math.Abs(float64(sc.WorstPts)-1.6667) > 1e-3 {
		t.Errorf("got χ² %v, worst %v; want 0.28, 1.67", sc.ChiSquare, sc.WorstPts)
	}
	if !math.IsNaN(float64(sc.Groups[2].LagP50Ms)) {
		t.Errorf("a lag of no run: got %v, want NaN", sc.Groups[2].LagP50Ms)
	}
}

func TestPoolModesRefusesOtherGroups(t *testing.T) {
	runs := twoRuns()
	runs[1].Setup.Groups = []group{{5, 1}, {25, 3}, {80, 6}}
	if _, err := poolModes(runs); err == nil || !strings.Contains(err.Error(), "same groups") {
		t.Errorf("got %v, want an error saying the groups differ", err)
	}
	if _, err := poolModes(nil); err == nil {
		t.Error("no runs: got no error")
	}
}

// TestRunPool: reports written as JSON (NaN as null) read back and pooled as text.
func TestRunPool(t *testing.T) {
	dir := t.TempDir()
	var names []string
	for i, rep := range twoRuns() {
		var b bytes.Buffer
		if err := writeJSON(&b, rep); err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dir, "run"+string(rune('1'+i))+".json")
		if err := os.WriteFile(name, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	var out bytes.Buffer
	if err := run(t.Context(), append([]string{"pool"}, names...), func(string) string { return "" }, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pooled: 2 runs", "== synced+compensated: 2 runs, 300 questions decided", "MET", "g5ms-cheater-0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := run(t.Context(), []string{"pool"}, nil, &out, &out); err == nil {
		t.Error("pool without files: got no error")
	}
}

func TestNumRoundTrip(t *testing.T) {
	var got struct{ A, B num }
	if err := json.Unmarshal([]byte(`{"A":null,"B":1.5}`), &got); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(float64(got.A)) || got.B != 1.5 {
		t.Errorf("got %v, %v; want NaN, 1.5", got.A, got.B)
	}
}

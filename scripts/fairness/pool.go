package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// Pooling runs. One quiz holds at most 200 questions, so a share measured to within a
// few points needs several runs: `fairness pool run1.json run2.json …` reads reports
// written with --json-out (or --json) and adds up, mode by mode, what adds up: each
// group's wins and the questions decided, each cheater's outright wins over the questions
// played, and the false starts. Shares, intervals, the chi-square test and the targets
// are then those of the sums; model shares, lags and gains, which do not add up, are the
// means of the runs', weighted by their questions. The runs must have the same latency
// groups.

// pooledMode is one mode over several runs.
type pooledMode struct {
	Mode          string          `json:"mode"`
	Runs          int             `json:"runs"`
	Questions     int             `json:"questions"` // decided, in all runs
	Groups        []pooledGroup   `json:"groups"`
	ChiSquare     num             `json:"chiSquare"`
	DF            int             `json:"df"`
	P             num             `json:"p"`
	WorstPts      num             `json:"worstDistancePts"`
	ModelWorstPts num             `json:"modelWorstDistancePts"`
	Cheaters      []pooledCheater `json:"cheaters"`
	// Synced reveal: false starts of honest clients and of cheaters, the server's count
	// of them, and honest starts lit late.
	Synced            bool    `json:"synced"`
	FalseStarts       int     `json:"falseStarts"`
	CheaterFalseStart int     `json:"cheaterFalseStarts"`
	ServerFalseStarts int     `json:"serverFalseStarts"`
	Late              int     `json:"late"`
	Target            *target `json:"target,omitempty"`
}

// pooledGroup is one latency group of a pooled mode.
type pooledGroup struct {
	group
	Wins             int `json:"wins"`
	Share            num `json:"share"`
	Low              num `json:"low"`
	High             num `json:"high"`
	DistancePts      num `json:"distancePts"`
	ModelShare       num `json:"modelShare"`       // weighted mean of the runs'
	ReturnModelShare num `json:"returnModelShare"` // weighted mean of the runs'
	LagP50Ms         num `json:"lagP50Ms"`         // weighted mean of the runs' medians
	LightP50Ms       num `json:"lightP50Ms"`       // weighted mean of the runs' medians
	FalseStarts      int `json:"falseStarts"`
	Late             int `json:"late"`
}

// pooledCheater is one cheater (by name) of a pooled mode.
type pooledCheater struct {
	Name              string `json:"name"`
	Group             group  `json:"group"`
	Wins              int    `json:"wins"`
	Questions         int    `json:"questions"` // played
	Share             num    `json:"share"`
	Low               num    `json:"low"`
	High              num    `json:"high"`
	HonestClientShare num    `json:"honestClientShare"` // weighted mean of the runs'
	CompensationMs    num    `json:"compensationMs"`    // weighted mean of the runs'
	BoundMs           num    `json:"boundMs"`           // weighted mean of the runs'
	GainMs            num    `json:"gainMs"`            // weighted mean of the runs'
	FalseStarts       int    `json:"falseStarts"`
}

// weighted accumulates a mean weighted by questions, passing over NaN values.
type weighted struct{ sum, w float64 }

func (a *weighted) add(v num, w int) {
	if !math.IsNaN(float64(v)) {
		a.sum += float64(v) * float64(w)
		a.w += float64(w)
	}
}

func (a weighted) mean() num {
	if a.w == 0 {
		return num(math.NaN())
	}
	return num(a.sum / a.w)
}

// poolModes adds up the runs' modes, in the order the modes first appear.
func poolModes(runs []*report) ([]pooledMode, error) {
	if len(runs) == 0 {
		return nil, errors.New("no runs to pool")
	}
	groups := runs[0].Setup.Groups
	var order []string
	byMode := map[string][]modeReport{}
	played := map[string][]int{} // questions played, by mode, per run
	for i, rep := range runs {
		if !slices.Equal(rep.Setup.Groups, groups) {
			return nil, fmt.Errorf("run %d has groups %v, run 1 %v: only runs with the same groups pool", i+1, rep.Setup.Groups, groups)
		}
		for _, mr := range rep.Modes {
			if _, ok := byMode[mr.Mode]; !ok {
				order = append(order, mr.Mode)
			}
			byMode[mr.Mode] = append(byMode[mr.Mode], mr)
			played[mr.Mode] = append(played[mr.Mode], rep.Setup.Questions)
		}
	}
	out := make([]pooledMode, 0, len(order))
	for _, mode := range order {
		out = append(out, poolMode(mode, groups, byMode[mode], played[mode]))
	}
	return out, nil
}

// poolMode adds up one mode's reports of several runs; played are the questions each run
// played.
func poolMode(mode string, groups []group, mrs []modeReport, played []int) pooledMode {
	pm := pooledMode{Mode: mode, Runs: len(mrs), Synced: modeSynced(mode)}
	wins := make([]int, len(groups))
	model, retModel, lag, light := make([]weighted, len(groups)), make([]weighted, len(groups)), make([]weighted, len(groups)), make([]weighted, len(groups))
	falseStarts, late := make([]int, len(groups)), make([]int, len(groups))
	type cheaterSums struct {
		pc                            pooledCheater
		honest, comp, bound, gainMean weighted
	}
	var cheaters []*cheaterSums
	byName := map[string]*cheaterSums{}
	for i, mr := range mrs {
		pm.Questions += mr.Questions
		for g := range groups {
			if g >= len(mr.Groups) {
				continue
			}
			gr := mr.Groups[g]
			wins[g] += gr.Wins
			model[g].add(gr.ModelShare, mr.Questions)
			retModel[g].add(gr.ReturnModelShare, mr.Questions)
			lag[g].add(gr.LagP50Ms, mr.Questions)
			light[g].add(gr.LightP50Ms, mr.Questions)
			falseStarts[g] += gr.FalseStarts
			late[g] += gr.Late
		}
		if sr := mr.Synced; sr != nil {
			pm.FalseStarts += sr.FalseStarts
			pm.CheaterFalseStart += sr.CheaterFalseStarts
			pm.ServerFalseStarts += sr.ServerFalseStarts
			pm.Late += sr.Late
		}
		for _, cr := range mr.Cheaters {
			cs := byName[cr.Name]
			if cs == nil {
				cs = &cheaterSums{pc: pooledCheater{Name: cr.Name, Group: cr.Group}}
				byName[cr.Name] = cs
				cheaters = append(cheaters, cs)
			}
			cs.pc.Wins += cr.Wins
			cs.pc.Questions += played[i]
			cs.pc.FalseStarts += cr.FalseStarts
			cs.honest.add(cr.HonestClientShare, played[i])
			cs.comp.add(cr.CompensationMs, played[i])
			cs.bound.add(cr.BoundMs, played[i])
			cs.gainMean.add(cr.GainMs, played[i])
		}
	}
	equal := 1 / float64(len(groups))
	t := modeTally{Groups: make([]groupTally, len(groups))}
	for g, grp := range groups {
		t.Groups[g].Wins = wins[g]
		pg := pooledGroup{group: grp, Wins: wins[g], Share: num(math.NaN()), DistancePts: num(math.NaN()),
			ModelShare: model[g].mean(), ReturnModelShare: retModel[g].mean(), LagP50Ms: lag[g].mean(), LightP50Ms: light[g].mean(),
			FalseStarts: falseStarts[g], Late: late[g]}
		lo, hi := wilson(wins[g], pm.Questions, z95)
		pg.Low, pg.High = num(lo), num(hi)
		if pm.Questions > 0 {
			share := float64(wins[g]) / float64(pm.Questions)
			pg.Share, pg.DistancePts = num(share), num(100*(share-equal))
			pm.WorstPts = max(pm.WorstPts, num(math.Abs(100*(share-equal))))
		}
		if !math.IsNaN(float64(pg.ModelShare)) {
			pm.ModelWorstPts = max(pm.ModelWorstPts, num(math.Abs(100*(float64(pg.ModelShare)-equal))))
		}
		pm.Groups = append(pm.Groups, pg)
	}
	pm.ChiSquare, pm.DF, pm.P = equalSharesNum(t)
	for _, cs := range cheaters {
		pc := cs.pc
		lo, hi := wilson(pc.Wins, pc.Questions, z95)
		pc.Low, pc.High, pc.Share = num(lo), num(hi), num(math.NaN())
		if pc.Questions > 0 {
			pc.Share = num(float64(pc.Wins) / float64(pc.Questions))
		}
		pc.HonestClientShare, pc.CompensationMs, pc.BoundMs, pc.GainMs = cs.honest.mean(), cs.comp.mean(), cs.bound.mean(), cs.gainMean.mean()
		pm.Cheaters = append(pm.Cheaters, pc)
	}
	if tol, ok := tolerancePts[mode]; ok {
		mr := modeReport{Mode: mode, WorstPts: pm.WorstPts, ModelWorstPts: pm.ModelWorstPts}
		for _, pg := range pm.Groups {
			mr.Groups = append(mr.Groups, groupReport{group: pg.group, DistancePts: pg.DistancePts, ModelShare: pg.ModelShare})
		}
		tg := targetOf(mr, tol, pm.Questions, len(groups))
		pm.Target = &tg
	}
	return pm
}

// runPool reads the reports named in args and writes their pooled tables to stdout.
func runPool(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: fairness pool REPORT.json… (reports of --json-out or --json)")
	}
	var runs []*report
	for _, name := range args {
		b, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		rep := &report{}
		if err := json.Unmarshal(b, rep); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		runs = append(runs, rep)
	}
	pooled, err := poolModes(runs)
	if err != nil {
		return err
	}
	writePooled(stdout, args, runs, pooled)
	return nil
}

// writePooled writes the runs and their pooled modes as tables.
func writePooled(w io.Writer, names []string, runs []*report, pooled []pooledMode) {
	fmt.Fprintf(w, "pooled: %d runs\n", len(runs))
	for i, rep := range runs {
		modes := make([]string, len(rep.Modes))
		for j, m := range rep.Modes {
			modes[j] = m.Mode
		}
		fmt.Fprintf(w, "  %s: %s; seed %d; %d questions per mode (%s); load average %s at the start, %s at the end; %.0f s\n",
			names[i], rep.Command, rep.Setup.Seed, rep.Setup.Questions, strings.Join(modes, ", "), rep.Machine.LoadStart, rep.Machine.LoadEnd, float64(rep.ElapsedS))
	}
	for _, pm := range pooled {
		fmt.Fprintf(w, "\n== %s: %d runs, %d questions decided\n", pm.Mode, pm.Runs, pm.Questions)
		fmt.Fprintf(w, "%-12s %6s %7s %15s %8s %7s %9s", "group", "wins", "share", "95% CI", "vs 1/3", "model", "lag p50")
		if pm.Synced {
			fmt.Fprintf(w, " %9s %7s %6s %12s", "lit p50", "false", "late", "return model")
		}
		fmt.Fprintln(w)
		for _, g := range pm.Groups {
			fmt.Fprintf(w, "%-12s %6d %6s%% %15s %8s %6s%% %6s ms", g.group.String(), g.Wins, pct(g.Share), "["+pct(g.Low)+", "+pct(g.High)+"]",
				signed(g.DistancePts), pct(g.ModelShare), fmtF(float64(g.LagP50Ms), 1))
			if pm.Synced {
				ret := "—"
				if !math.IsNaN(float64(g.ReturnModelShare)) {
					ret = pct(g.ReturnModelShare) + "%"
				}
				fmt.Fprintf(w, " %6s ms %7d %6d %12s", fmtF(float64(g.LightP50Ms), 2), g.FalseStarts, g.Late, ret)
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "chi-square of the pooled wins against equal shares: χ²(%d) = %s, p = %s; worst distance %s points (model %s)\n",
			pm.DF, fmtF(float64(pm.ChiSquare), 1), fmtP(float64(pm.P)), fmtF(float64(pm.WorstPts), 1), fmtF(float64(pm.ModelWorstPts), 1))
		if pm.Synced {
			fmt.Fprintf(w, "false starts: honest %d, cheaters %d (the server's count: %d); honest starts lit late: %d\n",
				pm.FalseStarts, pm.CheaterFalseStart, pm.ServerFalseStarts, pm.Late)
		}
		if len(pm.Cheaters) > 0 {
			fmt.Fprintf(w, "  %-18s %6s %24s %8s %10s %8s %8s %6s\n", "cheater", "wins", "share [95% CI]", "honest", "credited", "bound", "gain", "false")
			for _, c := range pm.Cheaters {
				fmt.Fprintf(w, "  %-18s %6d %24s %7s%% %7s ms %5s ms %5s ms %6d\n", c.Name, c.Wins,
					pct(c.Share)+"% ["+pct(c.Low)+", "+pct(c.High)+"]", pct(c.HonestClientShare),
					fmtF(float64(c.CompensationMs), 1), fmtF(float64(c.BoundMs), 1), fmtF(float64(c.GainMs), 1), c.FalseStarts)
			}
		}
		if t := pm.Target; t != nil {
			verdict := "MET"
			if !t.Met {
				verdict = "MISSED"
			}
			fmt.Fprintf(w, "target (every group within ±%s points of a third): %s; worst group %s at %s points; model worst %s points; a fair group's 95%% interval over %d questions: ±%s points\n",
				fmtF(float64(t.TolerancePts), 0), verdict, t.WorstGroup, signed(t.WorstPts), fmtF(float64(t.ModelWorstPts), 1), pm.Questions, fmtF(float64(t.NoisePts), 1))
		}
	}
	fmt.Fprintln(w, "\nwins, shares, intervals, χ², false starts and the cheaters' wins: sums over the runs; model, lag, lit, credited, bound and gain: the runs' values, weighted by questions.")
}

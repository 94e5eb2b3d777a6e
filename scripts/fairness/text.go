package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// writeText writes the report as tables.
func writeText(w io.Writer, rep *report) {
	m := rep.Machine
	fmt.Fprintf(w, "machine: %d cores, %s, %s; load average %s at the start, %s at the end\n", m.Cores, m.Kernel, m.Go, m.LoadStart, m.LoadEnd)
	fmt.Fprintf(w, "command: %s\n", rep.Command)
	s := rep.Setup
	how := "given with --url"
	if rep.ServerStarted {
		how = "started by the lab from ./server: memory engine, ping interval " + time.Duration(float64(s.PingIntervalMs)*float64(time.Millisecond)).String()
	}
	fmt.Fprintf(w, "server: %s (%s)\n", rep.Server, how)
	groups := make([]string, len(s.Groups))
	for i, g := range s.Groups {
		groups[i] = g.String()
	}
	fmt.Fprintf(w, "setup: per room %d honest clients in %d groups behind toxiproxy (one-way delay each direction: %s), and per group %d cheater(s) holding back pongs %s ms;\n",
		s.Clients, len(s.Groups), strings.Join(groups, ", "), s.CheatersPerGroup, fmtF(float64(s.CheatDelayMs), 0))
	fmt.Fprintf(w, "       reaction normal(%s ms, sd %s ms), none below %s ms, for every client; %d questions per mode, the modes alternating; %s s warm-up for pings;\n",
		fmtF(float64(s.ReactionMeanMs), 0), fmtF(float64(s.ReactionSDMs), 0), fmtF(float64(s.ReactionFloorMs), 0), s.Questions, fmtF(float64(s.WarmupMs)/1000, 0))
	fmt.Fprintf(w, "       compensation cap %s ms (immediate reveal), return delay cap %s ms (synced); %.0f s in all\n",
		fmtF(float64(s.CompensationCapMs), 0), fmtF(float64(s.ReturnDelayCapMs), 0), float64(rep.ElapsedS))
	for _, mr := range rep.Modes {
		writeMode(w, rep, mr)
	}
	writeLegend(w)
	for _, t := range rep.Targets {
		writeTarget(w, rep, t)
	}
	if rep.ServerLog != nil {
		rep.ServerLog.WriteText(w)
	}
}

// writeMode writes one mode's tables.
func writeMode(w io.Writer, rep *report, mr modeReport) {
	fmt.Fprintf(w, "\n== %s (%s timing, %s reveal; room %s): %d questions decided, %d answers; missing %d, timeouts %d, dropped %d",
		mr.Mode, mr.Timing, mr.Reveal, mr.Room, mr.Questions, mr.Answers, mr.Missing, mr.Timeouts, mr.Dropped)
	if mr.Timing == "compensated" {
		fmt.Fprintf(w, ", without reactionUs %d", mr.NoTiming)
	}
	if len(mr.AnswerErrors) > 0 {
		fmt.Fprintf(w, "; error frames %v", mr.AnswerErrors)
	}
	fmt.Fprintf(w, "\nround trips measured at the first start: %d of %d players\n", mr.RTTAtFirstStart, mr.RecipientsFirst)
	fmt.Fprintf(w, "%-12s %7s %5s %7s %15s %8s %7s %9s %9s %9s %9s %10s %8s\n",
		"group", "players", "wins", "share", "95% CI", "vs 1/3", "model", "lag p50", "RTT p50", "mean pct", "fast lag", "react p5", "model g")
	for _, g := range mr.Groups {
		fmt.Fprintf(w, "%-12s %7d %5d %6s%% %15s %8s %6s%% %6s ms %6s ms %9s %6s ms %7s ms %7s%%\n",
			g.group.String(), g.Players, g.Wins, pct(g.Share), "["+pct(g.Low)+", "+pct(g.High)+"]",
			signed(g.DistancePts), pct(g.ModelShare), fmtF(float64(g.LagP50Ms), 1), fmtF(float64(g.RTTP50Ms), 1), fmtF(float64(g.MeanPct), 3),
			fmtF(float64(g.ContenderLagP50Ms), 1), fmtF(float64(g.ReactionP5Ms), 1), pct(g.GroupModel))
	}
	fmt.Fprintf(w, "chi-square of the wins against equal shares: χ²(%d) = %s, p = %s; worst distance %s points (model %s)\n",
		mr.DF, fmtF(float64(mr.ChiSquare), 1), fmtP(float64(mr.P)), fmtF(float64(mr.WorstPts), 1), fmtF(float64(mr.ModelWorstPts), 1))
	if sr := mr.Synced; sr != nil {
		fmt.Fprintf(w, "synced reveal: %-12s %12s %6s %12s %13s %10s %13s\n", "group", "false starts", "late", "lit p50", "|lit| p99", "|offset| p99", "bound p50")
		for _, g := range mr.Groups {
			fmt.Fprintf(w, "               %-12s %12d %6d %9s ms %9s ms %10s ms %7s ms", g.group.String(), g.FalseStarts, g.Late,
				fmtF(float64(g.LightP50Ms), 2), fmtF(float64(g.LightAbsP99Ms), 2), fmtF(float64(g.OffsetAbsP99Ms), 2), fmtF(float64(g.BoundP50Ms), 2))
			if !math.IsNaN(float64(g.ReturnModelShare)) {
				fmt.Fprintf(w, "   return-path model %s%%", pct(g.ReturnModelShare))
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "false starts: honest %d, cheaters %d (the server's count: %d); the lab's clients lit %d starts late, %d without a clock estimate\n",
			sr.FalseStarts, sr.CheaterFalseStarts, sr.ServerFalseStarts, sr.Late, sr.Unclocked)
		fmt.Fprintf(w, "server's reveal reports: %d seen on time, %d late; lead p50 %s ms (max %s); reported reveal spread p50 %s ms, p99 %s ms; skew bound p50 %s ms\n",
			sr.ServerOnTime, sr.ServerLate, fmtF(float64(sr.LeadP50Ms), 1), fmtF(float64(sr.LeadMaxMs), 1),
			fmtF(float64(sr.SpreadP50Ms), 2), fmtF(float64(sr.SpreadP99Ms), 2), fmtF(float64(sr.SkewP50Ms), 2))
	}
	if len(mr.Cheaters) == 0 {
		return
	}
	fmt.Fprintf(w, "cheaters (pongs held back %s ms) against the honest clients of their group:\n", fmtF(float64(rep.Setup.CheatDelayMs), 0))
	fmt.Fprintf(w, "  %-18s %20s %16s %8s %5s %22s %8s %16s %20s %9s %6s\n",
		"cheater", "ping, ack RTT p50", "comp. (honest)", "bound", "wins", "share [95% CI]", "honest", "mean pct (hon.)", "lag p50 (honest)", "gain", "false")
	for _, c := range mr.Cheaters {
		fmt.Fprintf(w, "  %-18s %20s %16s %5s ms %5d %22s %7s%% %16s %20s %6s ms %6d\n",
			c.Name, fmtF(float64(c.RTTP50Ms), 0)+", "+fmtF(float64(c.AckRTTP50Ms), 0)+" ("+fmtF(float64(c.HonestAckRTTP50Ms), 0)+") ms",
			fmtF(float64(c.CompensationMs), 0)+" ("+fmtF(float64(c.HonestCompensationMs), 0)+") ms", fmtF(float64(c.BoundMs), 0),
			c.Wins, pct(c.Share)+"% ["+pct(c.Low)+", "+pct(c.High)+"]", pct(c.HonestClientShare),
			fmtF(float64(c.MeanPct), 3)+" ("+fmtF(float64(c.HonestMeanPct), 3)+")",
			fmtF(float64(c.LagP50Ms), 1)+" ("+fmtF(float64(c.HonestLagP50Ms), 1)+") ms", fmtF(float64(c.GainMs), 1), c.FalseStarts)
	}
}

// writeLegend says what the columns mean.
func writeLegend(w io.Writer) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "wins: questions whose best-ranked honest answer came from the group; share with a 95% Wilson interval;")
	fmt.Fprintln(w, "vs 1/3: share − 1/3 in points; model: the expected share from the measured reactions and per-group lags;")
	fmt.Fprintln(w, "lag: the server's time for an answer (compensated: reactionUs; arrival: elapsedUs) − the client's own reaction time,")
	fmt.Fprintln(w, "  which counts from the start's receipt (immediate reveal) or from the client's lighting of its bulb (synced);")
	fmt.Fprintln(w, "RTT: the server's measured round trip at the starts (fairness report); mean pct: mean rank percentile, 0 = first.")
	fmt.Fprintf(w, "fast lag: the lag p50 of the group's contenders, answers whose reaction was among the fastest %d%% of all; react p5: the group's own reaction times;\n", contenderPct)
	fmt.Fprintln(w, "model g: the model drawing each group's own answers, reaction and lag together, instead of reactions pooled over the groups.")
	fmt.Fprintln(w, "synced reveal: late = the group's answers to starts that came after their instant (lit at once);")
	fmt.Fprintln(w, "  lit = when a client lit its bulb − the reveal instant (the lab's clients read the server's clock);")
	fmt.Fprintln(w, "  |offset| = size of its clock estimate's error (the true offset is 0), bound = the estimate's error bound;")
	fmt.Fprintln(w, "  return-path model (synced+arrival): the expected share when only each group's one-way delay back sets it apart.")
	fmt.Fprintln(w, "cheaters: ping RTT as the server measured it; ack RTT = start written → ack back (the honest clients' in brackets);")
	fmt.Fprintln(w, "comp. = what the server credits from the medians (immediate: min(ping, ack, cap); synced: min(ping/2, return cap)), the group's honest clients' in brackets;")
	fmt.Fprintln(w, "bound = the cap − the honest credit: the most the cheat can gain; wins are rank 1 outright; false = its false starts;")
	fmt.Fprintln(w, "honest = an honest client of the group: its outright wins per question; gain = honest lag p50 − the cheater's.")
}

// writeTarget says whether a mode met its target.
func writeTarget(w io.Writer, rep *report, t target) {
	verdict := "MET"
	if !t.Met {
		verdict = "MISSED"
	}
	fmt.Fprintf(w, "\ntarget (%s: every group's win share within ±%s points of an equal share): %s; worst group %s at %s points",
		t.Mode, fmtF(float64(t.TolerancePts), 0), verdict, t.WorstGroup, signed(t.WorstPts))
	modelVerdict := "within"
	if !t.ModelMet {
		modelVerdict = "outside"
	}
	fmt.Fprintf(w, "; model shares %s it (worst %s points)\n", modelVerdict, fmtF(float64(t.ModelWorstPts), 1))
	fmt.Fprintf(w, "(sampling noise: a fair group's share over %d questions has a 95%% interval of ±%s points)\n",
		modeQuestions(rep, t.Mode), fmtF(float64(t.NoisePts), 1))
}

func modeQuestions(rep *report, mode string) int {
	for _, m := range rep.Modes {
		if m.Mode == mode {
			return m.Questions
		}
	}
	return 0
}

func pct(f num) string { return fmtF(100*float64(f), 1) }

func signed(f num) string {
	if math.IsNaN(float64(f)) {
		return "n/a"
	}
	return fmt.Sprintf("%+.1f", float64(f))
}

func fmtF(f float64, prec int) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(f, 'f', prec, 64)
}

func fmtP(p float64) string {
	if p < 1e-4 {
		return fmt.Sprintf("%.1e", p)
	}
	return fmt.Sprintf("%.4f", p)
}

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/bulbquiz/bulb/internal/runinfo"
	"github.com/bulbquiz/bulb/internal/serverproc"
	"github.com/bulbquiz/bulb/quiz"
)

// tolerancePts is the target: under compensated timing every group's win share within
// this many percentage points of an equal share.
const tolerancePts = 5

// report is the lab's result; it is also the --json output. Times are in milliseconds,
// shares are fractions, distances are percentage points.
type report struct {
	Machine       runinfo.Machine        `json:"machine"`
	Command       string                 `json:"command"`
	Server        string                 `json:"server"`
	ServerStarted bool                   `json:"serverStarted"` // by the lab, from the in-tree binary, memory engine
	ServerLog     *serverproc.LogSummary `json:"serverLog,omitempty"`
	Setup         setup                  `json:"setup"`
	Modes         []modeReport           `json:"modes"`
	Target        *target                `json:"target,omitempty"` // when compensated timing ran
	ElapsedS      num                    `json:"elapsedS"`
}

// setup is the lab's configuration.
type setup struct {
	Clients           int     `json:"clients"` // honest, per room
	Groups            []group `json:"groups"`
	CheatersPerGroup  int     `json:"cheatersPerGroup"`
	CheatDelayMs      num     `json:"cheatDelayMs"`
	Questions         int     `json:"questions"` // per mode
	ReactionMeanMs    num     `json:"reactionMeanMs"`
	ReactionSDMs      num     `json:"reactionSdMs"`
	PingIntervalMs    num     `json:"pingIntervalMs"`
	WarmupMs          num     `json:"warmupMs"`
	CompensationCapMs num     `json:"compensationCapMs"` // quiz.CompensationCap of this tree
	Seed              uint64  `json:"seed"`
}

// modeReport is one timing mode's result.
type modeReport struct {
	Mode      string `json:"mode"`
	Room      string `json:"room"`
	Questions int    `json:"questions"` // decided: with a ranked honest answer
	Answers   int    `json:"answers"`
	Missing   int    `json:"missing"`  // a connected client's answer the server did not store
	Timeouts  int    `json:"timeouts"` // questions closed before every reply came
	NoTiming  int    `json:"noTiming"` // compensated answers without reactionUs
	Dropped   int    `json:"dropped"`  // connections the server or network ended
	// AnswerErrors counts error frames by code.
	AnswerErrors map[string]int `json:"answerErrors,omitempty"`
	// RTTAtFirstStart: players with a measured round trip when the first start was written.
	RTTAtFirstStart int             `json:"rttAtFirstStart"`
	RecipientsFirst int             `json:"recipientsFirstStart"`
	Groups          []groupReport   `json:"groups"`
	ChiSquare       num             `json:"chiSquare"` // of the groups' wins against equal thirds
	DF              int             `json:"df"`
	P               num             `json:"p"`
	WorstPts        num             `json:"worstDistancePts"` // largest |share − 1/groups|
	ModelWorstPts   num             `json:"modelWorstDistancePts"`
	Cheaters        []cheaterReport `json:"cheaters"`
}

// groupReport is one latency group's result in one mode.
type groupReport struct {
	group
	Players     int `json:"players"` // honest
	Wins        int `json:"wins"`
	Share       num `json:"share"`
	Low         num `json:"low"` // 95% Wilson interval
	High        num `json:"high"`
	DistancePts num `json:"distancePts"` // share − 1/groups, in points
	ModelShare  num `json:"modelShare"`
	MeanPct     num `json:"meanRankPct"` // 0 = always first, 1 = always last
	LagP50Ms    num `json:"lagP50Ms"`
	// ContenderLagP50Ms is the lag p50 of the contenders only: the answers among the
	// fastest contenderPct % of reactions.
	ContenderLagP50Ms num `json:"contenderLagP50Ms"`
	ReactionP5Ms      num `json:"reactionP5Ms"` // the group's own reaction times
	// GroupModel is the model's share with each group's own answers, reaction and lag
	// together, in place of reactions pooled over the groups.
	GroupModel num `json:"groupModelShare"`
	RTTP50Ms   num `json:"rttP50Ms"` // the server's measured round trips at the starts
}

// cheaterReport is one cheater's result in one mode, next to its group's honest clients.
type cheaterReport struct {
	Name                 string `json:"name"`
	Group                group  `json:"group"`
	PongsHeld            int64  `json:"pongsHeld"`
	RTTP50Ms             num    `json:"rttP50Ms"` // ping round trips the server measured
	HonestRTTP50Ms       num    `json:"honestRttP50Ms"`
	AckRTTP50Ms          num    `json:"ackRttP50Ms"` // start written → its ack back, which the cheat does not delay
	HonestAckRTTP50Ms    num    `json:"honestAckRttP50Ms"`
	CompensationMs       num    `json:"compensationMs"` // min(ping RTT p50, ack RTT p50, cap)
	HonestCompensationMs num    `json:"honestCompensationMs"`
	Wins                 int    `json:"wins"` // rank 1 outright
	Share                num    `json:"share"`
	Low                  num    `json:"low"`
	High                 num    `json:"high"`
	HonestClientShare    num    `json:"honestClientShare"` // an honest client of its group: outright wins per client and question
	MeanPct              num    `json:"meanRankPct"`
	HonestMeanPct        num    `json:"honestMeanRankPct"`
	LagP50Ms             num    `json:"lagP50Ms"`
	HonestLagP50Ms       num    `json:"honestLagP50Ms"`
	GainMs               num    `json:"gainMs"` // honest lag p50 − its lag p50
}

// target says whether compensated timing met the ±5 points target.
type target struct {
	TolerancePts  num    `json:"tolerancePts"`
	Met           bool   `json:"met"` // by the observed shares
	WorstGroup    string `json:"worstGroup"`
	WorstPts      num    `json:"worstDistancePts"`
	ModelMet      bool   `json:"modelMet"`
	ModelWorstPts num    `json:"modelWorstDistancePts"`
	// NoisePts is the half-width of the 95% interval of a fair group's share over the
	// questions: the sampling noise of the observed shares.
	NoisePts num `json:"noisePts"`
}

// num is a float64 whose NaN is written as JSON null, rounded to 4 decimals.
type num float64

// MarshalJSON writes null for NaN and infinities.
func (n num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, math.Round(f*1e4)/1e4, 'f', -1, 64), nil
}

func ms(d time.Duration) num { return num(float64(d) / float64(time.Millisecond)) }

// fill builds the report's setup and modes from the rooms the lab played.
func (rep *report) fill(cfg config, rooms []*room) {
	rep.Setup = setup{
		Clients: cfg.clients, Groups: cfg.groups, CheatersPerGroup: cfg.cheaters, CheatDelayMs: ms(cfg.cheatDelay),
		Questions: cfg.questions, ReactionMeanMs: ms(cfg.reactionMean), ReactionSDMs: ms(cfg.reactionSD),
		PingIntervalMs: ms(cfg.pingInterval), WarmupMs: ms(cfg.warmup), CompensationCapMs: ms(quiz.CompensationCap),
		Seed: cfg.seed,
	}
	rng := rand.New(rand.NewPCG(cfg.seed, 0x6d6f64656c))
	equal := 1 / float64(len(cfg.groups))
	capMs := float64(ms(quiz.CompensationCap))
	for _, r := range rooms {
		players := make([]player, len(r.clients))
		mr := modeReport{Mode: r.mode, Room: r.code, Missing: r.missing, Timeouts: r.timeouts, NoTiming: r.noTiming,
			AnswerErrors: map[string]int{}, RTTAtFirstStart: r.rtt.firstMeasured, RecipientsFirst: r.rtt.firstRecipients}
		rttGroup := make([][]float64, len(cfg.groups)) // honest players' measured RTTs
		ackGroup := make([][]float64, len(cfg.groups)) // and ack round trips
		for i, c := range r.clients {
			players[i] = player{Group: c.group, Cheater: c.cheater}
			if c.dropped != "" {
				mr.Dropped++
			}
			for code, k := range c.errs {
				mr.AnswerErrors[code] += k
			}
			if !c.cheater && r.rtt.byPlayer != nil {
				rttGroup[c.group] = append(rttGroup[c.group], r.rtt.byPlayer[i]...)
				ackGroup[c.group] = append(ackGroup[c.group], r.rtt.ackByPlayer[i]...)
			}
		}
		for _, q := range r.questions {
			mr.Answers += len(q)
		}
		t := tally(players, len(cfg.groups), r.questions)
		mr.Questions = t.Questions
		mr.ChiSquare, mr.DF, mr.P = equalSharesNum(t)
		lags := make([][]float64, len(t.Groups))
		sizes := make([]int, len(t.Groups))
		for g, gt := range t.Groups {
			lags[g], sizes[g] = gt.Lags, gt.Players
		}
		model := modelShares(t.Reactions, lags, sizes, cfg.modelRounds, rng)
		fast := contenderLags(t, contenderPct)
		groupModel := modelShares([]float64{0}, answerTimes(t), sizes, cfg.modelRounds, rng)
		for g, gt := range t.Groups {
			gr := groupReport{group: cfg.groups[g], Players: gt.Players, Wins: gt.Wins,
				Share: num(math.NaN()), ModelShare: num(math.NaN()), MeanPct: num(math.NaN()),
				LagP50Ms: num(median(gt.Lags)), RTTP50Ms: num(median(rttGroup[g])),
				ContenderLagP50Ms: num(median(fast[g])), ReactionP5Ms: num(percentile(gt.LagReactions, 5)), GroupModel: num(math.NaN())}
			if groupModel != nil {
				gr.GroupModel = num(groupModel[g])
			}
			lo, hi := wilson(gt.Wins, t.Questions, z95)
			gr.Low, gr.High = num(lo), num(hi)
			if t.Questions > 0 {
				share := float64(gt.Wins) / float64(t.Questions)
				gr.Share, gr.DistancePts = num(share), num(100*(share-equal))
				mr.WorstPts = max(mr.WorstPts, num(math.Abs(100*(share-equal))))
			}
			if model != nil {
				gr.ModelShare = num(model[g])
				mr.ModelWorstPts = max(mr.ModelWorstPts, num(math.Abs(100*(model[g]-equal))))
			}
			if gt.PctN > 0 {
				gr.MeanPct = num(gt.PctSum / float64(gt.PctN))
			}
			mr.Groups = append(mr.Groups, gr)
		}
		for _, ct := range t.Cheaters {
			c := r.clients[ct.Player]
			gt := t.Groups[ct.Group]
			cr := cheaterReport{Name: c.name, Group: cfg.groups[ct.Group], PongsHeld: c.held.Load(),
				RTTP50Ms: num(math.NaN()), HonestRTTP50Ms: mr.Groups[ct.Group].RTTP50Ms,
				AckRTTP50Ms: num(math.NaN()), HonestAckRTTP50Ms: num(median(ackGroup[ct.Group])),
				Wins: ct.Rank1, Share: num(math.NaN()), HonestClientShare: num(math.NaN()),
				MeanPct: num(math.NaN()), HonestMeanPct: mr.Groups[ct.Group].MeanPct,
				LagP50Ms: num(median(ct.Lags)), HonestLagP50Ms: mr.Groups[ct.Group].LagP50Ms}
			if r.rtt.byPlayer != nil {
				cr.RTTP50Ms = num(median(r.rtt.byPlayer[ct.Player]))
				cr.AckRTTP50Ms = num(median(r.rtt.ackByPlayer[ct.Player]))
			}
			// The server credits the lesser of the start's own round trip (to its ack) and
			// the median ping, capped (hub.Hub.Delivery); here, medians over the starts.
			cr.CompensationMs = num(math.Min(math.Min(float64(cr.RTTP50Ms), float64(cr.AckRTTP50Ms)), capMs))
			cr.HonestCompensationMs = num(math.Min(math.Min(float64(cr.HonestRTTP50Ms), float64(cr.HonestAckRTTP50Ms)), capMs))
			cr.GainMs = cr.HonestLagP50Ms - cr.LagP50Ms
			n := len(r.questions)
			lo, hi := wilson(ct.Rank1, n, z95)
			cr.Low, cr.High = num(lo), num(hi)
			if n > 0 {
				cr.Share = num(float64(ct.Rank1) / float64(n))
				if gt.Players > 0 {
					cr.HonestClientShare = num(float64(gt.Rank1) / float64(gt.Players) / float64(n))
				}
			}
			if ct.PctN > 0 {
				cr.MeanPct = num(ct.PctSum / float64(ct.PctN))
			}
			mr.Cheaters = append(mr.Cheaters, cr)
		}
		rep.Modes = append(rep.Modes, mr)
		if r.mode == "compensated" {
			tg := &target{TolerancePts: tolerancePts, ModelWorstPts: mr.ModelWorstPts}
			tg.Met = t.Questions > 0 && float64(mr.WorstPts) <= tolerancePts
			tg.ModelMet = model != nil && float64(mr.ModelWorstPts) <= tolerancePts
			for _, g := range mr.Groups {
				if math.Abs(float64(g.DistancePts)) >= float64(tg.WorstPts) {
					tg.WorstPts, tg.WorstGroup = g.DistancePts, g.group.String()
				}
			}
			if t.Questions > 0 {
				tg.NoisePts = num(100 * z95 * math.Sqrt(equal*(1-equal)/float64(t.Questions)))
			}
			rep.Target = tg
		}
	}
}

func equalSharesNum(t modeTally) (num, int, num) {
	chi2, df, p := equalShares(t)
	return num(chi2), df, num(p)
}

// writeJSON writes the report as indented JSON.
func writeJSON(w io.Writer, rep *report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

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
	fmt.Fprintf(w, "       reaction normal(%s ms, sd %s ms) for every client; %d questions per mode, the modes alternating; %s s warm-up for pings; compensation cap %s ms; %.0f s in all\n",
		fmtF(float64(s.ReactionMeanMs), 0), fmtF(float64(s.ReactionSDMs), 0), s.Questions, fmtF(float64(s.WarmupMs)/1000, 0), fmtF(float64(s.CompensationCapMs), 0), float64(rep.ElapsedS))
	for _, mr := range rep.Modes {
		fmt.Fprintf(w, "\n== %s timing (room %s): %d questions decided, %d answers; missing %d, timeouts %d, dropped %d",
			mr.Mode, mr.Room, mr.Questions, mr.Answers, mr.Missing, mr.Timeouts, mr.Dropped)
		if mr.Mode == "compensated" {
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
		if len(mr.Cheaters) > 0 {
			fmt.Fprintf(w, "cheaters (pongs held back %s ms) against the honest clients of their group:\n", fmtF(float64(s.CheatDelayMs), 0))
			fmt.Fprintf(w, "  %-18s %20s %16s %5s %22s %8s %16s %20s %9s\n",
				"cheater", "ping, ack RTT p50", "comp. (honest)", "wins", "share [95% CI]", "honest", "mean pct (hon.)", "lag p50 (honest)", "gain")
			for _, c := range mr.Cheaters {
				fmt.Fprintf(w, "  %-18s %20s %16s %5d %22s %7s%% %16s %20s %6s ms\n",
					c.Name, fmtF(float64(c.RTTP50Ms), 0)+", "+fmtF(float64(c.AckRTTP50Ms), 0)+" ("+fmtF(float64(c.HonestAckRTTP50Ms), 0)+") ms",
					fmtF(float64(c.CompensationMs), 0)+" ("+fmtF(float64(c.HonestCompensationMs), 0)+") ms",
					c.Wins, pct(c.Share)+"% ["+pct(c.Low)+", "+pct(c.High)+"]", pct(c.HonestClientShare),
					fmtF(float64(c.MeanPct), 3)+" ("+fmtF(float64(c.HonestMeanPct), 3)+")",
					fmtF(float64(c.LagP50Ms), 1)+" ("+fmtF(float64(c.HonestLagP50Ms), 1)+") ms", fmtF(float64(c.GainMs), 1))
			}
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "wins: questions whose best-ranked honest answer came from the group; share with a 95% Wilson interval;")
	fmt.Fprintln(w, "vs 1/3: share − 1/3 in points; model: the expected share from the measured reactions and per-group lags;")
	fmt.Fprintln(w, "lag: the server's time for an answer (compensated: reactionUs; arrival: elapsedUs) − the client's own reaction time;")
	fmt.Fprintln(w, "RTT: the server's measured round trip at the starts (fairness report); mean pct: mean rank percentile, 0 = first.")
	fmt.Fprintf(w, "fast lag: the lag p50 of the group's contenders, answers whose reaction was among the fastest %d%% of all; react p5: the group's own reaction times;\n", contenderPct)
	fmt.Fprintln(w, "model g: the model drawing each group's own answers, reaction and lag together, instead of reactions pooled over the groups.")
	fmt.Fprintln(w, "cheaters: ping RTT as the server measured it; ack RTT = start written → ack back (the honest clients' in brackets);")
	fmt.Fprintln(w, "comp. = min(ping RTT p50, ack RTT p50, cap), what the server credits, the group's honest clients' in brackets; wins are rank 1 outright;")
	fmt.Fprintln(w, "honest = an honest client of the group: its outright wins per question; gain = honest lag p50 − the cheater's.")
	if t := rep.Target; t != nil {
		verdict := "MET"
		if !t.Met {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "\ntarget (compensated timing: every group's win share within ±%s points of an equal share): %s; worst group %s at %s points",
			fmtF(float64(t.TolerancePts), 0), verdict, t.WorstGroup, signed(t.WorstPts))
		modelVerdict := "within"
		if !t.ModelMet {
			modelVerdict = "outside"
		}
		fmt.Fprintf(w, "; model shares %s it (worst %s points)\n", modelVerdict, fmtF(float64(t.ModelWorstPts), 1))
		fmt.Fprintf(w, "(sampling noise: a fair group's share over %d questions has a 95%% interval of ±%s points)\n",
			modeQuestions(rep, "compensated"), fmtF(float64(t.NoisePts), 1))
	}
	if rep.ServerLog != nil {
		rep.ServerLog.WriteText(w)
	}
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

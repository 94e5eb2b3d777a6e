package main

import (
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/bulbquiz/bulb/internal/runinfo"
	"github.com/bulbquiz/bulb/internal/serverproc"
	"github.com/bulbquiz/bulb/quiz"
)

// tolerancePts are the targets: in these modes every group's win share within this many
// percentage points of an equal share (compensated timing with the immediate reveal:
// issue #5; with the synced reveal: issue #12).
var tolerancePts = map[string]float64{"compensated": 5, "synced+compensated": 3}

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
	Targets       []target               `json:"targets,omitempty"` // of the modes run that have one
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
	ReturnDelayCapMs  num     `json:"returnDelayCapMs"`  // quiz.ReturnDelayCap of this tree
	ReactionFloorMs   num     `json:"reactionFloorMs"`
	Seed              uint64  `json:"seed"`
}

// modeReport is one mode's result.
type modeReport struct {
	Mode      string `json:"mode"`
	Timing    string `json:"timing"`
	Reveal    string `json:"reveal"` // immediate or synced
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
	Synced          *syncedReport   `json:"synced,omitempty"` // the synced reveal's modes
}

// syncedReport is what the lab and the server saw of a synced mode's reveals.
type syncedReport struct {
	// FalseStarts are the honest clients' answers refused as false starts (the lab's
	// count, from the answers), CheaterFalseStarts the cheaters', ServerFalseStarts the
	// server's count in its fairness report (everyone's).
	FalseStarts        int `json:"falseStarts"`
	CheaterFalseStarts int `json:"cheaterFalseStarts"`
	ServerFalseStarts  int `json:"serverFalseStarts"`
	Late               int `json:"late"`      // honest answers whose start came after its instant
	Unclocked          int `json:"unclocked"` // honest answers of clients without a clock estimate
	// Of the server's fairness report, over the starts: seen reports on time and late,
	// the lead p50 and max, the p50 and p99 of the spread of the reported reveal
	// instants, and the p50 of the bound on their true spread (skewUs).
	ServerOnTime int `json:"serverOnTime"`
	ServerLate   int `json:"serverLate"`
	LeadP50Ms    num `json:"leadP50Ms"`
	LeadMaxMs    num `json:"leadMaxMs"`
	SpreadP50Ms  num `json:"spreadP50Ms"`
	SpreadP99Ms  num `json:"spreadP99Ms"`
	SkewP50Ms    num `json:"skewP50Ms"`
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
	// The synced reveal: false starts; the p50 of when the group's clients lit, less the
	// reveal instant, and the p99 of its size; the p99 of the size of their clock
	// estimates' error (true offset 0) and the p50 of their error bounds; and the share
	// expected from the one-way delays alone (synced+arrival).
	FalseStarts      int `json:"falseStarts"`
	Late             int `json:"late"` // its answers to starts that came after their instant
	LightP50Ms       num `json:"lightP50Ms"`
	LightAbsP99Ms    num `json:"lightAbsP99Ms"`
	OffsetAbsP99Ms   num `json:"offsetAbsP99Ms"`
	BoundP50Ms       num `json:"boundP50Ms"`
	ReturnModelShare num `json:"returnModelShare"`
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
	CompensationMs       num    `json:"compensationMs"` // what the server credits (credited), from medians
	HonestCompensationMs num    `json:"honestCompensationMs"`
	// BoundMs is the most the cheat can gain: the cap less what an honest client of its
	// group is credited (0 without compensation).
	BoundMs           num `json:"boundMs"`
	FalseStarts       int `json:"falseStarts"`
	Wins              int `json:"wins"` // rank 1 outright
	Share             num `json:"share"`
	Low               num `json:"low"`
	High              num `json:"high"`
	HonestClientShare num `json:"honestClientShare"` // an honest client of its group: outright wins per client and question
	MeanPct           num `json:"meanRankPct"`
	HonestMeanPct     num `json:"honestMeanRankPct"`
	LagP50Ms          num `json:"lagP50Ms"`
	HonestLagP50Ms    num `json:"honestLagP50Ms"`
	GainMs            num `json:"gainMs"` // honest lag p50 − its lag p50
}

// target says whether a mode met its target (tolerancePts).
type target struct {
	Mode          string `json:"mode"`
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
		ReturnDelayCapMs: ms(quiz.ReturnDelayCap), ReactionFloorMs: ms(cfg.reactionFloor), Seed: cfg.seed,
	}
	rng := rand.New(rand.NewPCG(cfg.seed, 0x6d6f64656c))
	for _, r := range rooms {
		mr, t := rep.modeOf(cfg, r, rng)
		rep.Modes = append(rep.Modes, mr)
		if tol, ok := tolerancePts[r.mode]; ok {
			rep.Targets = append(rep.Targets, targetOf(mr, tol, t.Questions, len(cfg.groups)))
		}
	}
}

// modeOf is one room's report, and the tally it comes from.
func (rep *report) modeOf(cfg config, r *room, rng *rand.Rand) (modeReport, modeTally) {
	equal := 1 / float64(len(cfg.groups))
	capMs, returnCapMs := float64(ms(quiz.CompensationCap)), float64(ms(quiz.ReturnDelayCap))
	players := make([]player, len(r.clients))
	mr := modeReport{Mode: r.mode, Timing: r.timing, Reveal: "immediate", Room: r.code, Missing: r.missing, Timeouts: r.timeouts, NoTiming: r.noTiming,
		AnswerErrors: map[string]int{}, RTTAtFirstStart: r.rtt.firstMeasured, RecipientsFirst: r.rtt.firstRecipients}
	if r.synced {
		mr.Reveal = "synced"
	}
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
	var returnModel []float64
	if r.synced && r.timing == "arrival" {
		returnModel = returnModelShares(t.Reactions, cfg.groups, sizes, cfg.modelRounds, rng)
	}
	for g, gt := range t.Groups {
		gr := groupReport{group: cfg.groups[g], Players: gt.Players, Wins: gt.Wins,
			Share: num(math.NaN()), ModelShare: num(math.NaN()), MeanPct: num(math.NaN()),
			LagP50Ms: num(median(gt.Lags)), RTTP50Ms: num(median(rttGroup[g])),
			ContenderLagP50Ms: num(median(fast[g])), ReactionP5Ms: num(percentile(gt.LagReactions, 5)), GroupModel: num(math.NaN()),
			FalseStarts: gt.FalseStarts, Late: gt.Late, LightP50Ms: num(median(gt.Light)), LightAbsP99Ms: num(percentile(absAll(gt.Light), 99)),
			OffsetAbsP99Ms: num(percentile(absAll(gt.Offset), 99)), BoundP50Ms: num(median(gt.Bound)), ReturnModelShare: num(math.NaN())}
		if groupModel != nil {
			gr.GroupModel = num(groupModel[g])
		}
		if returnModel != nil {
			gr.ReturnModelShare = num(returnModel[g])
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
			LagP50Ms: num(median(ct.Lags)), HonestLagP50Ms: mr.Groups[ct.Group].LagP50Ms, FalseStarts: ct.FalseStarts}
		if r.rtt.byPlayer != nil {
			cr.RTTP50Ms = num(median(r.rtt.byPlayer[ct.Player]))
			cr.AckRTTP50Ms = num(median(r.rtt.ackByPlayer[ct.Player]))
		}
		// What the server credits (hub.Hub.Delivery, quiz.reactionTime); here, from medians
		// over the starts.
		cr.CompensationMs = num(credited(r.mode, float64(cr.RTTP50Ms), float64(cr.AckRTTP50Ms), capMs, returnCapMs))
		cr.HonestCompensationMs = num(credited(r.mode, float64(cr.HonestRTTP50Ms), float64(cr.HonestAckRTTP50Ms), capMs, returnCapMs))
		cr.BoundMs = num(credited(r.mode, math.Inf(1), math.Inf(1), capMs, returnCapMs)) - cr.HonestCompensationMs
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
	if r.synced {
		mr.Synced = syncedOf(t, r.reveals)
	}
	return mr, t
}

// syncedOf sums up a synced mode's reveals: the lab's counts from the tally, the server's
// from its fairness report's reveal of each start.
func syncedOf(t modeTally, reveals []revealInfo) *syncedReport {
	sr := &syncedReport{}
	for _, g := range t.Groups {
		sr.FalseStarts += g.FalseStarts
		sr.Late += g.Late
		sr.Unclocked += g.Unclocked
	}
	for _, c := range t.Cheaters {
		sr.CheaterFalseStarts += c.FalseStarts
	}
	var lead, spread, skew []float64
	for _, rv := range reveals {
		sr.ServerFalseStarts += rv.FalseStarts
		sr.ServerOnTime += rv.OnTime
		sr.ServerLate += rv.Late
		lead = append(lead, float64(rv.LeadUs)/1000)
		spread = append(spread, float64(rv.SpreadUs)/1000)
		skew = append(skew, float64(rv.SkewUs)/1000)
	}
	sr.LeadP50Ms, sr.LeadMaxMs = num(median(lead)), num(percentile(lead, 100))
	sr.SpreadP50Ms, sr.SpreadP99Ms, sr.SkewP50Ms = num(median(spread)), num(percentile(spread, 99)), num(median(skew))
	return sr
}

// targetOf says whether mode mr met its target: every group's share within tol points
// of an equal share, by the observed shares and by the model's.
func targetOf(mr modeReport, tol float64, questions, groups int) target {
	equal := 1 / float64(groups)
	tg := target{Mode: mr.Mode, TolerancePts: num(tol), ModelWorstPts: mr.ModelWorstPts}
	tg.Met = questions > 0 && float64(mr.WorstPts) <= tol
	tg.ModelMet = len(mr.Groups) > 0 && !math.IsNaN(float64(mr.Groups[0].ModelShare)) && float64(mr.ModelWorstPts) <= tol
	for _, g := range mr.Groups {
		if math.Abs(float64(g.DistancePts)) >= math.Abs(float64(tg.WorstPts)) {
			tg.WorstPts, tg.WorstGroup = g.DistancePts, g.group.String()
		}
	}
	if questions > 0 {
		tg.NoisePts = num(100 * z95 * math.Sqrt(equal*(1-equal)/float64(questions)))
	}
	return tg
}

// absAll returns the sizes of sample's values.
func absAll(sample []float64) []float64 {
	out := make([]float64, len(sample))
	for i, v := range sample {
		out[i] = math.Abs(v)
	}
	return out
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

// UnmarshalJSON reads null as NaN, as MarshalJSON writes it.
func (n *num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = num(math.NaN())
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	*n = num(f)
	return err
}

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/bulbquiz/bulb/internal/clocksync"
	"github.com/bulbquiz/bulb/internal/lagproxy"
	"github.com/bulbquiz/bulb/internal/runinfo"
	"github.com/bulbquiz/bulb/internal/serverproc"
	"github.com/bulbquiz/bulb/internal/stats"
)

// The targets: the algorithm's reveal skew across the symmetric groups, p99 of |target −
// S|; and an asymmetric group's error within half the asymmetry, plus the same allowance
// for what the jitter adds.
const targetSymP99Ms = 2.0

// report is the benchmark's result; it is also the --json output. Times are in ms.
type report struct {
	Command     string                 `json:"command"`
	Commit      string                 `json:"commit"`
	Machine     runinfo.Machine        `json:"machine"`
	Server      string                 `json:"server"`
	ServerLog   *serverproc.LogSummary `json:"serverLog,omitempty"`
	Setup       setup                  `json:"setup"`
	Synced      syncedReport           `json:"synced"`
	Immediate   immediateReport        `json:"immediate"`
	Groups      []groupReport          `json:"groups"`
	Targets     []target               `json:"targets"`
	ErrorFrames map[string]int         `json:"errorFrames,omitempty"`
	CPU         cpuUse                 `json:"cpu"`
	Dropped     int                    `json:"dropped"` // connections that ended before the run did
	DropErrors  map[string]int         `json:"dropErrors,omitempty"`
	ElapsedS    float64                `json:"elapsedS"`
}

// setup is the run's configuration.
type setup struct {
	Clients        int             `json:"clients"`
	Starts         int             `json:"starts"` // per mode
	Links          []lagproxy.Link `json:"links"`  // by group
	OffsetMs       float64         `json:"offsetMs"`
	PingIntervalMs float64         `json:"pingIntervalMs"`
	WarmupMs       float64         `json:"warmupMs"`
	PauseMs        float64         `json:"pauseMs"`
	Seed           uint64          `json:"seed"`
}

// syncedReport is the synced starts' result.
type syncedReport struct {
	Starts   int `json:"starts"` // with records
	Records  int `json:"records"`
	Timeouts int `json:"timeouts"` // starts given up on before every record came
	Late     int `json:"late"`
	// Over the starts, each start's figure (see syncedStart).
	LeadMs            stats.Summary `json:"leadMs"` // the server's, from its fairness report
	LightSpreadMs     stats.Summary `json:"lightSpreadMs"`
	LightSpreadSymMs  stats.Summary `json:"lightSpreadSymmetricMs"`
	TargetSpreadMs    stats.Summary `json:"targetSpreadMs"`
	TargetSpreadSymMs stats.Summary `json:"targetSpreadSymmetricMs"`
	WakeP99Ms         stats.Summary `json:"wakeP99Ms"`
	WakeMaxMs         stats.Summary `json:"wakeMaxMs"`
	ReceiptSpreadMs   stats.Summary `json:"receiptSpreadMs"`
	ServerSpreadMs    stats.Summary `json:"serverSpreadMs"` // of the reveal instants the students reported
	ServerSkewMs      stats.Summary `json:"serverSkewMs"`   // the server's bound on the true spread
	// SymmetricErr is the algorithm's error over every record of the symmetric groups;
	// SymmetricModel the model's on the same links and schedules (model.go).
	SymmetricErr   errSummary    `json:"symmetricErr"`
	SymmetricModel errSummary    `json:"symmetricModel"`
	PerStart       []syncedStart `json:"perStart"`
}

// immediateReport is the immediate starts' result: a student lights at the start's
// receipt, so the receipt spread is the lighting spread.
type immediateReport struct {
	Starts          int           `json:"starts"`
	Records         int           `json:"records"`
	Timeouts        int           `json:"timeouts"`
	ReceiptSpreadMs stats.Summary `json:"receiptSpreadMs"`
	PerStartMs      []float64     `json:"perStartReceiptSpreadMs"`
}

// groupReport is one latency group's result.
type groupReport struct {
	Link     lagproxy.Link `json:"link"`
	Students int           `json:"students"` // connected
	groupSkew
	Model                  errSummary `json:"model"` // the model's errors on the group's link and schedules
	ImmediateReceiptMeanMs float64    `json:"immediateReceiptAfterFirstMeanMs"`
}

// target is one target's verdict.
type target struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"` // ms
	Limit float64 `json:"limit"` // ms
	Met   bool    `json:"met"`
	Note  string  `json:"note"`
}

// fill builds the report's setup, modes, groups and targets.
func (rep *report) fill(cfg config, col collected, server map[int]serverReveal, errorFrames map[string]int) {
	rep.Setup = setup{Clients: cfg.clients, Starts: cfg.starts, Links: cfg.links, OffsetMs: cfg.offsetMs,
		PingIntervalMs: msOf(cfg.pingInterval), WarmupMs: msOf(cfg.warmup), PauseMs: msOf(cfg.pause), Seed: cfg.seed}
	rep.ErrorFrames, rep.DropErrors = errorFrames, col.dropErrs
	for _, k := range col.dropped {
		rep.Dropped += k
	}
	synced, immediate := col.starts[modeSynced], col.starts[modeImmediate]
	byGroup := recordsByGroup(synced, len(cfg.links))
	rng := rand.New(rand.NewPCG(cfg.seed, 0x6d6f64656c))
	model := make([][]float64, len(cfg.links))
	var symModel []float64
	for g, l := range cfg.links {
		model[g] = modelErrs(byGroup[g], l, rng)
		if symmetric(l) {
			symModel = append(symModel, model[g]...)
		}
	}
	rep.Synced = summarizeSynced(synced, col.questions[modeSynced], cfg.links, server)
	rep.Synced.SymmetricModel = errSummaryOf(symModel)
	rep.Immediate = summarizeImmediate(immediate)
	rep.Synced.Timeouts, rep.Immediate.Timeouts = col.timeouts[modeSynced], col.timeouts[modeImmediate]
	rep.Groups = groupReports(byGroup, immediate, cfg.links, col.connected, model)
	rep.Targets = targets(rep.Synced, rep.Immediate, rep.Groups)
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summarizeSynced computes the synced starts' figures: per start, then over the starts;
// starts[k] holds the records of question questions[k].
func summarizeSynced(starts [][]record, questions []int, links []lagproxy.Link, server map[int]serverReveal) syncedReport {
	var rep syncedReport
	var lead, light, lightSym, target, targetSym, wakeP99, wakeMax, receipt, srvSpread, srvSkew, symErrs []float64
	for i, recs := range starts {
		if len(recs) == 0 {
			continue
		}
		st := splitStart(questions[i], recs, links)
		if sv, ok := server[st.N]; ok {
			st.Server = &sv
			lead = append(lead, float64(sv.LeadUs)/1000)
			srvSpread, srvSkew = append(srvSpread, float64(sv.SpreadUs)/1000), append(srvSkew, float64(sv.SkewUs)/1000)
		}
		rep.PerStart = append(rep.PerStart, st)
		rep.Starts++
		rep.Records += len(recs)
		rep.Late += st.Late
		light, lightSym = append(light, st.LightSpreadMs), append(lightSym, st.LightSpreadSymMs)
		target, targetSym = append(target, st.TargetSpreadMs), append(targetSym, st.TargetSpreadSymMs)
		wakeP99, wakeMax, receipt = append(wakeP99, st.WakeP99Ms), append(wakeMax, st.WakeMaxMs), append(receipt, st.ReceiptSpreadMs)
		for _, r := range recs {
			if symmetric(links[r.Group]) {
				symErrs = append(symErrs, algorithmErrMs(r))
			}
		}
	}
	rep.LeadMs, rep.LightSpreadMs, rep.LightSpreadSymMs = stats.Summarize(lead), stats.Summarize(light), stats.Summarize(lightSym)
	rep.TargetSpreadMs, rep.TargetSpreadSymMs = stats.Summarize(target), stats.Summarize(targetSym)
	rep.WakeP99Ms, rep.WakeMaxMs, rep.ReceiptSpreadMs = stats.Summarize(wakeP99), stats.Summarize(wakeMax), stats.Summarize(receipt)
	rep.ServerSpreadMs, rep.ServerSkewMs = stats.Summarize(srvSpread), stats.Summarize(srvSkew)
	rep.SymmetricErr = errSummaryOf(symErrs)
	return rep
}

// summarizeImmediate computes the immediate room's receipt spreads.
func summarizeImmediate(starts [][]record) immediateReport {
	var rep immediateReport
	for _, recs := range starts {
		if len(recs) == 0 {
			continue
		}
		recv := make([]int64, len(recs))
		for i, r := range recs {
			recv[i] = r.Recv
		}
		rep.Starts++
		rep.Records += len(recs)
		rep.PerStartMs = append(rep.PerStartMs, spreadMs(recv))
	}
	rep.ReceiptSpreadMs = stats.Summarize(rep.PerStartMs)
	return rep
}

// recordsByGroup pools every start's records, by group.
func recordsByGroup(starts [][]record, groups int) [][]record {
	out := make([][]record, groups)
	for _, recs := range starts {
		for _, r := range recs {
			out[r.Group] = append(out[r.Group], r)
		}
	}
	return out
}

// groupReports computes each group's figures over every start, with its model errors.
func groupReports(byGroup [][]record, immediate [][]record, links []lagproxy.Link, connected []int, model [][]float64) []groupReport {
	after := receiptAfterFirstMs(immediate, len(links))
	out := make([]groupReport, len(links))
	for g, l := range links {
		out[g] = groupReport{Link: l, groupSkew: skewOfGroup(byGroup[g], l), Model: errSummaryOf(model[g]), ImmediateReceiptMeanMs: after[g]}
		if g < len(connected) {
			out[g].Students = connected[g]
		}
	}
	return out
}

// targets gives the verdicts: the symmetric groups' p99 error against 2 ms; each
// asymmetric group's p99 error against half its asymmetry plus the same 2 ms.
func targets(s syncedReport, im immediateReport, groups []groupReport) []target {
	var out []target
	if s.SymmetricErr.Abs.N > 0 {
		out = append(out, target{
			Name:  "algorithm's reveal skew across the symmetric groups: p99 |target − S|",
			Value: s.SymmetricErr.Abs.P99, Limit: targetSymP99Ms, Met: s.SymmetricErr.Abs.P99 <= targetSymP99Ms,
			Note: fmt.Sprintf("max %s ms, mean %s ms over %d records; the per-start spread of their targets: p50 %s, p99 %s ms; "+
				"the model, the links' jitter alone: p99 %s ms",
				f2(s.SymmetricErr.Abs.Max), signed(s.SymmetricErr.MeanMs), s.SymmetricErr.Abs.N, f2(s.TargetSpreadSymMs.P50), f2(s.TargetSpreadSymMs.P99),
				f2(s.SymmetricModel.Abs.P99)),
		})
	}
	for _, g := range groups {
		if symmetric(g.Link) || g.Err.Abs.N == 0 {
			continue
		}
		half := math.Abs(g.PredictedErrMs)
		limit := half + targetSymP99Ms
		out = append(out, target{
			Name:  fmt.Sprintf("asymmetric group %s: p99 |target − S| within half the asymmetry (%s ms) + %s ms", g.Link, f1(half), f1(targetSymP99Ms)),
			Value: g.Err.Abs.P99, Limit: limit, Met: g.Err.Abs.P99 <= limit,
			Note: fmt.Sprintf("mean error %s ms against the predicted %s ms (|mean| %s half the asymmetry); p99 |error − predicted| %s ms; the model: p99 |error| %s ms",
				signed(g.Err.MeanMs), signed(g.PredictedErrMs), relation(math.Abs(g.Err.MeanMs), half), f2(g.P99DevMs), f2(g.Model.Abs.P99)),
		})
	}
	return out
}

func relation(a, b float64) string {
	if a <= b {
		return "≤"
	}
	return ">"
}

// write writes the report as JSON, or as tables.
func (rep *report) write(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	writeText(w, rep)
	return nil
}

// writeText writes the report as tables.
func writeText(w io.Writer, rep *report) {
	m := rep.Machine
	fmt.Fprintf(w, "machine: %d cores, %s, %s; load average %s at the start, %s at the end\n", m.Cores, m.Kernel, m.Go, m.LoadStart, m.LoadEnd)
	fmt.Fprintf(w, "command: %s\n", rep.Command)
	fmt.Fprintf(w, "commit: %s\n", rep.Commit)
	s := rep.Setup
	fmt.Fprintf(w, "server: %s (built from ./server unless --server: one process, memory engine, --conns-per-addr 0 --join-rate 0, ping interval %s)\n",
		rep.Server, time.Duration(s.PingIntervalMs*float64(time.Millisecond)))
	groups := make([]string, len(rep.Groups))
	for i, g := range rep.Groups {
		groups[i] = fmt.Sprintf("%s (%d)", g.Link, g.Students)
	}
	fmt.Fprintf(w, "setup: %d students in one room, in %d groups, each group a client process with a toxiproxy proxy of its own (one way: %s);\n",
		s.Clients, len(rep.Groups), strings.Join(groups, "; "))
	fmt.Fprintf(w, "       %d starts per reveal mode, the quiz's reveal switched between starts (S I I S S I …); clocks off by up to ±%s ms;\n",
		s.Starts, f1(s.OffsetMs))
	fmt.Fprintf(w, "       sync: %d samples %s apart at connect, then one every %s; first start %s after the last student connected, each %s after its question opened;\n",
		clocksync.BurstSamples, clocksync.BurstSpacing, clocksync.Every, time.Duration(s.WarmupMs*float64(time.Millisecond)), time.Duration(s.PauseMs*float64(time.Millisecond)))
	fmt.Fprintf(w, "       reveal: sleep to %s before the target, then watch the clock; seen 50–300 ms later; %.0f s in all\n", clocksync.Spin, rep.ElapsedS)

	sy := rep.Synced
	fmt.Fprintf(w, "\n== synced reveal: %d starts, %d records; late %d, timeouts %d; connections dropped in the run %d\n", sy.Starts, sy.Records, sy.Late, sy.Timeouts, rep.Dropped)
	fmt.Fprintf(w, "%-58s %9s %9s %9s\n", "per start, over the starts (ms)", "p50", "p99", "max")
	for _, row := range []struct {
		name string
		d    stats.Summary
	}{
		{"lead: S − the start (server)", sy.LeadMs},
		{"light spread, every student (true time)", sy.LightSpreadMs},
		{"  algorithm: spread of the targets, every student", sy.TargetSpreadMs},
		{"light spread, symmetric groups (true time)", sy.LightSpreadSymMs},
		{"  algorithm: spread of the targets, symmetric groups", sy.TargetSpreadSymMs},
		{"  wake-up (light − target): the start's p99", sy.WakeP99Ms},
		{"  wake-up (light − target): the start's max", sy.WakeMaxMs},
		{"start frame's receipt spread", sy.ReceiptSpreadMs},
		{"server's report: spread of the reported reveals", sy.ServerSpreadMs},
		{"server's report: bound on the true spread (skewUs)", sy.ServerSkewMs},
	} {
		fmt.Fprintf(w, "%-58s %9s %9s %9s\n", row.name, f2(row.d.P50), f2(row.d.P99), f2(row.d.Max))
	}
	fmt.Fprintf(w, "\nper group, every start (ms): error = target − S in true time, predicted = (down − up) / 2\n")
	fmt.Fprintf(w, "%-22s %8s %9s %8s %8s %8s %8s %9s %9s %18s %8s %8s %5s %5s %7s %8s %10s\n",
		"group", "students", "predicted", "mean err", "p50|err|", "p99|err|", "max|err|", "p99|e−pr|", "model p99", "RTT p50/p99", "wake p50", "wake p99", "late", "after", "outside", "light−S", "immediate")
	for _, g := range rep.Groups {
		fmt.Fprintf(w, "%-22s %8d %9s %8s %8s %8s %8s %9s %9s %18s %8s %8s %5d %5d %7d %8s %10s\n",
			g.Link, g.Students, signed(g.PredictedErrMs), signed(g.Err.MeanMs), f2(g.Err.Abs.P50), f2(g.Err.Abs.P99), f2(g.Err.Abs.Max),
			f2(g.P99DevMs), f2(g.Model.Abs.P99), f1(g.RTTP50Ms)+"/"+f1(g.RTTP99Ms)+" ("+f1(g.RTTNominalMs)+")", f2(g.WakeP50Ms), f2(g.WakeP99Ms),
			g.Late, g.TrulyLate, g.OutsideBound, signed(g.LitMeanMs), f1(g.ImmediateReceiptMeanMs))
	}
	fmt.Fprintf(w, "symmetric groups together: p99 |err| %s ms, max %s, mean %s (%d records); the model: p99 |err| %s ms\n",
		f2(sy.SymmetricErr.Abs.P99), f2(sy.SymmetricErr.Abs.Max), signed(sy.SymmetricErr.MeanMs), sy.SymmetricErr.Abs.N, f2(sy.SymmetricModel.Abs.P99))
	fmt.Fprintln(w, "late: the start arrived after the student's target (lit at once); after: it arrived after S by the real clock;")
	fmt.Fprintln(w, "model p99: the same algorithm on the same schedule of samples over a link with nothing but the group's delays and jitter;")
	fmt.Fprintln(w, "RTT: the least round trip of the samples behind each estimate (the link's nominal down + up in brackets);")
	fmt.Fprintln(w, "outside: errors beyond the student's own error bound (half the width of its samples' common bounds, drift included);")
	fmt.Fprintln(w, "light−S: mean true light instant − S; immediate: the immediate starts' mean receipt − the start's first receipt (when it lit).")

	im := rep.Immediate
	fmt.Fprintf(w, "\n== immediate reveal (for comparison): %d starts, %d records; timeouts %d\n", im.Starts, im.Records, im.Timeouts)
	fmt.Fprintf(w, "%-58s %9s %9s %9s\n", "per start, over the starts (ms)", "p50", "p99", "max")
	fmt.Fprintf(w, "%-58s %9s %9s %9s\n", "receipt spread = light spread, every student", f2(im.ReceiptSpreadMs.P50), f2(im.ReceiptSpreadMs.P99), f2(im.ReceiptSpreadMs.Max))
	if sy.LightSpreadMs.P50 > 0 {
		fmt.Fprintf(w, "light spread p50: synced %s ms, immediate %s ms (%s× the synced)\n",
			f2(sy.LightSpreadMs.P50), f2(im.ReceiptSpreadMs.P50), f1(im.ReceiptSpreadMs.P50/sy.LightSpreadMs.P50))
	}

	fmt.Fprintln(w, "\ntargets:")
	for _, t := range rep.Targets {
		verdict := "MET"
		if !t.Met {
			verdict = fmt.Sprintf("MISSED by %s ms", f2(t.Value-t.Limit))
		}
		fmt.Fprintf(w, "  %s: %s ms against %s ms: %s\n    (%s)\n", t.Name, f2(t.Value), f2(t.Limit), verdict, t.Note)
	}
	writeCPU(w, rep.CPU, rep.Machine.Cores, rep.Synced.Starts+rep.Immediate.Starts)
	if len(rep.ErrorFrames) > 0 {
		fmt.Fprintf(w, "error frames: %v\n", rep.ErrorFrames)
	}
	if len(rep.DropErrors) > 0 {
		keys := slices.Sorted(maps.Keys(rep.DropErrors))
		fmt.Fprintln(w, "connections that ended early, by error:")
		for _, k := range keys {
			fmt.Fprintf(w, "  %5d %s\n", rep.DropErrors[k], k)
		}
	}
	if rep.ServerLog != nil {
		rep.ServerLog.WriteText(w)
	}
}

// writeCPU says where the machine's CPU went over the starts.
func writeCPU(w io.Writer, u cpuUse, cores, starts int) {
	if u.WallS <= 0 || starts == 0 {
		return
	}
	clients := 0.0
	parts := make([]string, len(u.ClientsS))
	for i, c := range u.ClientsS {
		clients += c
		parts[i] = f1(c)
	}
	ours := u.ServerS + clients + u.SelfS
	fmt.Fprintf(w, "CPU over the %d starts (%s s of wall time; %d cores: %s core-s): server %s s (%s ms a start), client processes %s s (%s ms a start together),\n",
		starts, f1(u.WallS), cores, f1(float64(cores)*u.WallS), f1(u.ServerS), f1(1000*u.ServerS/float64(starts)),
		strings.Join(parts, " + "), f1(1000*clients/float64(starts)))
	fmt.Fprintf(w, "  this process %s s: %s%% of the cores; the rest was idle or other work on the machine\n",
		f1(u.SelfS), f1(100*ours/(float64(cores)*u.WallS)))
}

func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }

func signed(v float64) string { return fmt.Sprintf("%+.2f", v) }

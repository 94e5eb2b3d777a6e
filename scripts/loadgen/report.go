package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/bulbquiz/bulb/internal/stats"
)

// alpha is the significance level of the bias verdict.
const alpha = 0.01

// report is the summary of one run; it is also the --json output. Latencies are in
// microseconds, measured with the monotonic clock from the earliest receipt of that
// start in this process (loadgen cannot see when the server sent it).
type report struct {
	Nodes       []string       `json:"nodes"`
	Room        string         `json:"room"`
	Protocol    string         `json:"protocol"`  // bulb or centrifuge
	Behaviour   string         `json:"behaviour"` // page (clock sync, seen) or ack (the old page: ack at once)
	Target      int            `json:"clients"`
	Connected   int            `json:"connected"`
	Failed      int            `json:"failed"`
	Failures    map[string]int `json:"failures,omitempty"` // reason → clients (first 100 characters)
	Dropped     int            `json:"dropped"`            // connections the server ended before the run did
	StartsSeen  int            `json:"startsSeen"`
	Acks        int            `json:"acks"`
	Seen        int            `json:"seen"`        // seen reports sent
	Syncs       int            `json:"syncs"`       // clock sync samples sent
	SyncReplies int            `json:"syncReplies"` // and answered (kept by the estimator)
	// ClockErrorMs is the error bound of the clients' synced clocks when they lit a
	// start, over every such light (median and maximum); absent without any.
	ClockErrorMs *clockError    `json:"clockErrorMs,omitempty"`
	Answers      int            `json:"answers"`
	Results      int            `json:"results"`
	AnswerErrors map[string]int `json:"answerErrors,omitempty"` // error frames by code
	ElapsedMs    int64          `json:"elapsedMs"`
	Starts       []startReport  `json:"starts"`
	Clients      []clientReport `json:"clientBias"`
	Uniformity   uniformity     `json:"uniformity"`
}

// startReport describes one start: how many clients got it and the spread of receipts.
type startReport struct {
	Seq       uint64 `json:"seq"`
	N         int    `json:"n"`
	Receivers int    `json:"receivers"`
	P50Us     int64  `json:"p50Us"`
	P99Us     int64  `json:"p99Us"`
	MaxUs     int64  `json:"maxUs"`
	SpreadUs  int64  `json:"spreadUs"` // last − first receipt; equals maxUs here
	First     string `json:"first"`    // the client that received it first
	// Reveal describes a synced start's reveal (it has an instant, At); nil for an
	// immediate one, which every client lights on receipt.
	Reveal *revealReport `json:"reveal,omitempty"`
}

// revealReport is how the clients lit a synced start: their light instants in server
// time, by each one's synced clock, relative to the start's instant At.
type revealReport struct {
	At        float64 `json:"at"`        // the instant, server time, ms since the Unix epoch
	Lit       int     `json:"lit"`       // clients that lit it
	Late      int     `json:"late"`      // of which the start reached after its instant
	WithClock int     `json:"withClock"` // of which had a synced clock: the figures below
	P50Us     int64   `json:"p50Us"`     // light − At
	P99Us     int64   `json:"p99Us"`
	MaxUs     int64   `json:"maxUs"`
	SpreadUs  int64   `json:"spreadUs"` // last light − first light
}

// clockError sums up clock error bounds, in ms.
type clockError struct {
	P50 float64 `json:"p50"`
	Max float64 `json:"max"`
}

// clientReport is one client's position across starts.
type clientReport struct {
	Name    string  `json:"name"`
	Node    string  `json:"node"`
	Starts  int     `json:"starts"`  // starts with at least two receivers that it got
	MeanPct float64 `json:"meanPct"` // mean percentile: 0 = always first, 1 = always last
	First   int     `json:"first"`   // starts it received first
	P       float64 `json:"p"`       // two-sided: is it systematically early or late?
	Flagged bool    `json:"flagged"` // P < alpha/clients after at least 5 starts
}

// test is one uniformity test; Applied is false when there was too little data.
type test struct {
	Name    string  `json:"name"`
	Applied bool    `json:"applied"`
	N       int     `json:"n"`
	Stat    float64 `json:"stat"` // D for KS, χ² for chi-square
	DF      int     `json:"df,omitempty"`
	P       float64 `json:"p"`
	Note    string  `json:"note,omitempty"`
}

// uniformity holds the bias tests and their verdict.
type uniformity struct {
	Tests   []test `json:"tests"`
	Verdict string `json:"verdict"`
}

// report builds the summary once every client goroutine has stopped.
func (lg *loadgen) report(elapsed time.Duration) *report {
	behaviour := "page"
	if lg.cfg.ack {
		behaviour = "ack"
	}
	r := &report{
		Nodes: lg.cfg.nodes, Room: lg.cfg.room, Protocol: lg.cfg.proto, Behaviour: behaviour, Target: lg.cfg.clients,
		Failures: map[string]int{}, AnswerErrors: map[string]int{},
		ElapsedMs: elapsed.Milliseconds(),
	}
	var open []*client // connected clients, in join order
	var clockErrs []float64
	seqs := map[uint64]time.Time{}
	for _, c := range lg.clients {
		if c == nil {
			continue // never launched: the run ended during ramp-up
		}
		if !c.ok {
			if c.err != "" && c.err != "run ended before connecting" {
				r.Failed++
				r.Failures[trim(c.err, 100)]++
			}
			continue
		}
		open = append(open, c)
		r.Connected++
		if c.dropped != "" {
			r.Dropped++
		}
		r.Acks += int(c.acks.Load())
		r.Seen += int(c.seen.Load())
		r.Syncs += int(c.syncs.Load())
		r.SyncReplies += c.syncReplies
		for _, rv := range c.reveals {
			if rv.hasClock {
				clockErrs = append(clockErrs, rv.clockErr)
			}
		}
		r.Answers += int(c.answers.Load())
		r.Results += c.results
		for code, k := range c.errors {
			r.AnswerErrors[code] += k
		}
		for seq, rc := range c.receipts {
			if t, ok := seqs[seq]; !ok || rc.at.Before(t) {
				seqs[seq] = rc.at
			}
		}
	}
	order := slices.SortedFunc(maps.Keys(seqs), func(a, b uint64) int { return seqs[a].Compare(seqs[b]) })
	r.StartsSeen = len(order)
	if len(clockErrs) > 0 {
		s := stats.Summarize(clockErrs)
		r.ClockErrorMs = &clockError{P50: s.P50, Max: s.Max}
	}

	rng := mrand.New(mrand.NewPCG(lg.cfg.seed, 0x72616e6b))
	sums := make([]struct {
		k         int
		pct, upct float64
		first     int
	}, len(open))
	var firstU []float64
	type startLat struct {
		who []int // indexes in open
		lat []float64
	}
	var perStart []startLat
	for _, seq := range order {
		var who []int
		var lat []float64
		earliest := seqs[seq]
		sr := startReport{Seq: seq}
		for i, c := range open {
			if rc, ok := c.receipts[seq]; ok {
				who = append(who, i)
				lat = append(lat, float64(rc.at.Sub(earliest).Nanoseconds())/1e3)
				sr.N = rc.n
				if rc.reveal != 0 && sr.Reveal == nil {
					sr.Reveal = &revealReport{At: rc.reveal}
				}
			}
		}
		if sr.Reveal != nil {
			summarizeReveal(sr.Reveal, seq, open)
		}
		s := stats.Summarize(lat)
		sr.Receivers = s.N
		sr.P50Us, sr.P99Us, sr.MaxUs, sr.SpreadUs = int64(s.P50), int64(s.P99), int64(s.Max), int64(s.Spread)
		firstIdx := who[slices.Index(lat, 0)]
		sr.First = open[firstIdx].name
		r.Starts = append(r.Starts, sr)
		if len(who) < 2 {
			continue
		}
		perStart = append(perStart, startLat{who, lat})
		sums[firstIdx].first++
		// The first receiver's place among the open clients, randomized within its cell:
		// Uniform(0,1) when every client is equally likely to be first.
		firstU = append(firstU, (float64(firstIdx)+rng.Float64())/float64(len(open)))
		pct := stats.PercentileRanks(lat)
		upct := stats.UniformRanks(lat, rng)
		for j, i := range who {
			sums[i].k++
			sums[i].pct += pct[j]
			sums[i].upct += upct[j]
		}
	}

	var pit []float64
	var firstCounts []float64
	for i, c := range open {
		s := sums[i]
		cr := clientReport{Name: c.name, Node: c.node, Starts: s.k, First: s.first, MeanPct: math.NaN(), P: 1}
		if s.k > 0 {
			cr.MeanPct = s.pct / float64(s.k)
			u := stats.MeanUniformCDF(s.upct/float64(s.k), s.k)
			pit = append(pit, u)
			cr.P = min(1, 2*min(u, 1-u))
			cr.Flagged = s.k >= 5 && cr.P < alpha/float64(len(open))
		}
		r.Clients = append(r.Clients, cr)
		firstCounts = append(firstCounts, float64(s.first))
	}
	// Friedman's test over the clients that received every start (complete blocks).
	var blocks [][]float64
	for _, st := range perStart {
		var blk []float64
		for j, i := range st.who {
			if sums[i].k == len(perStart) {
				blk = append(blk, st.lat[j])
			}
		}
		blocks = append(blocks, blk)
	}
	r.Uniformity = uniformityTests(firstU, firstCounts, pit, blocks)
	return r
}

// summarizeReveal fills rr, the reveal of start seq at rr.At, from the clients' lights.
func summarizeReveal(rr *revealReport, seq uint64, clients []*client) {
	var lag []float64
	for _, c := range clients {
		rv, ok := c.reveals[seq]
		if !ok {
			continue
		}
		rr.Lit++
		if rv.late {
			rr.Late++
		}
		if rv.hasClock {
			lag = append(lag, (rv.server-rr.At)*1e3)
		}
	}
	s := stats.Summarize(lag)
	rr.WithClock = s.N
	rr.P50Us, rr.P99Us, rr.MaxUs, rr.SpreadUs = int64(s.P50), int64(s.P99), int64(s.Max), int64(s.Spread)
}

// uniformityTests runs the three bias tests and gives a verdict at level alpha,
// Bonferroni-corrected over the tests applied.
func uniformityTests(firstU, firstCounts, pit []float64, blocks [][]float64) uniformity {
	var u uniformity
	fr := test{Name: "Friedman: clients' ranks across starts (the same clients early or late)", N: len(blocks)}
	if len(blocks) >= 2 && len(blocks[0]) >= 2 {
		fr.Applied = true
		fr.Stat, fr.DF, fr.P = stats.Friedman(blocks)
		fr.Note = fmt.Sprintf("%d clients that got all %d starts", len(blocks[0]), len(blocks))
	} else {
		fr.Note = "needs two starts and two clients that got them all"
	}
	u.Tests = append(u.Tests, fr)

	ks := test{Name: "KS: first receiver's client index over starts ~ Uniform(0,1)", N: len(firstU)}
	if len(firstU) >= 5 {
		ks.Applied = true
		ks.Stat, ks.P = stats.KSUniform(firstU)
	} else {
		ks.Note = "needs at least 5 starts with two receivers"
	}
	u.Tests = append(u.Tests, ks)

	chi := test{Name: "chi-square: how often each client was first, equal expected counts", N: len(firstCounts)}
	pooled, cells := stats.PoolCounts(firstCounts, 5)
	if len(pooled) >= 2 {
		chi.Applied = true
		chi.Stat, chi.DF, chi.P = stats.ChiSquare(pooled, cells)
		if cells != nil {
			chi.Note = fmt.Sprintf("clients pooled in join order into %d bins, each expecting ≥ 5", len(pooled))
		}
	} else {
		chi.Note = "needs 5 starts per two bins of clients (≥ 10 starts)"
	}
	u.Tests = append(u.Tests, chi)

	means := test{Name: "KS: clients' mean randomized percentile through the Irwin–Hall CDF ~ Uniform(0,1)", N: len(pit)}
	if len(pit) >= 5 {
		means.Applied = true
		means.Stat, means.P = stats.KSUniform(pit)
	} else {
		means.Note = "needs at least 5 clients with a start"
	}
	u.Tests = append(u.Tests, means)

	applied, minP := 0, 1.0
	for _, t := range u.Tests {
		if t.Applied {
			applied++
			minP = min(minP, t.P)
		}
	}
	switch {
	case applied == 0:
		u.Verdict = "not enough data for a bias test"
	case minP*float64(applied) < alpha:
		u.Verdict = fmt.Sprintf("bias: p < %g (smallest p %.3g × %d tests)", alpha, minP, applied)
	default:
		u.Verdict = fmt.Sprintf("no sign of bias (smallest p %.3g × %d tests ≥ %g)", minP, applied, alpha)
	}
	return u
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func writeJSON(w io.Writer, r *report) error {
	// NaN is not JSON: a client without a start gets meanPct -1.
	for i := range r.Clients {
		if math.IsNaN(r.Clients[i].MeanPct) {
			r.Clients[i].MeanPct = -1
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeReveals writes the synced starts' reveals, if any.
func writeReveals(w io.Writer, starts []startReport) {
	header := false
	for _, s := range starts {
		rr := s.Reveal
		if rr == nil {
			continue
		}
		if !header {
			fmt.Fprintln(w, "reveal of the synced starts, µs after each start's instant, server time by each client's synced clock:")
			fmt.Fprintf(w, "  %6s %6s %6s %9s %8s %8s %8s %8s\n", "seq", "lit", "late", "withClock", "p50", "p99", "max", "spread")
			header = true
		}
		fmt.Fprintf(w, "  %6d %6d %6d %9d %8d %8d %8d %8d\n", s.Seq, rr.Lit, rr.Late, rr.WithClock, rr.P50Us, rr.P99Us, rr.MaxUs, rr.SpreadUs)
	}
}

func writeText(w io.Writer, r *report) {
	fmt.Fprintf(w, "room %s on %s (%s protocol, %s clients), %.1fs\n", r.Room, strings.Join(r.Nodes, ","), r.Protocol, r.Behaviour, float64(r.ElapsedMs)/1e3)
	fmt.Fprintf(w, "clients: %d connected of %d, %d failed, %d dropped by the server before the end\n",
		r.Connected, r.Target, r.Failed, r.Dropped)
	for _, reason := range slices.Sorted(maps.Keys(r.Failures)) {
		fmt.Fprintf(w, "  %d× %s\n", r.Failures[reason], reason)
	}
	fmt.Fprintf(w, "clock sync samples sent: %d, answered: %d", r.Syncs, r.SyncReplies)
	if r.ClockErrorMs != nil {
		fmt.Fprintf(w, "; clock error bound when lit: p50 %.3f ms, max %.3f ms", r.ClockErrorMs.P50, r.ClockErrorMs.Max)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "starts seen: %d, acks sent: %d, seen reports sent: %d, answers sent: %d, results: %d", r.StartsSeen, r.Acks, r.Seen, r.Answers, r.Results)
	if len(r.AnswerErrors) > 0 {
		fmt.Fprintf(w, ", error frames:")
		for _, code := range slices.Sorted(maps.Keys(r.AnswerErrors)) {
			fmt.Fprintf(w, " %s %d", code, r.AnswerErrors[code])
		}
	}
	fmt.Fprintln(w)
	if len(r.Starts) > 0 {
		fmt.Fprintln(w, "receipt latency per start, µs after the earliest receipt of that start in this process:")
		fmt.Fprintf(w, "  %6s %4s %9s %8s %8s %8s %8s  %s\n", "seq", "n", "receivers", "p50", "p99", "max", "spread", "first")
		for _, s := range r.Starts {
			fmt.Fprintf(w, "  %6d %4d %9d %8d %8d %8d %8d  %s\n", s.Seq, s.N, s.Receivers, s.P50Us, s.P99Us, s.MaxUs, s.SpreadUs, s.First)
		}
		writeReveals(w, r.Starts)
	}
	var with []clientReport
	flagged := 0
	for _, c := range r.Clients {
		if c.Starts > 0 {
			with = append(with, c)
		}
		if c.Flagged {
			flagged++
		}
	}
	if len(with) > 0 {
		slices.SortStableFunc(with, func(a, b clientReport) int { return cmp.Compare(a.MeanPct, b.MeanPct) })
		var sum float64
		for _, c := range with {
			sum += c.MeanPct
		}
		fmt.Fprintf(w, "per-client mean receipt percentile (0 = always first, 1 = always last), %d clients:\n", len(with))
		fmt.Fprintf(w, "  average %.3f; %d flagged (p < %g/%d after ≥ 5 starts)\n", sum/float64(len(with)), flagged, alpha, len(r.Clients))
		show := func(label string, cs []clientReport) {
			fmt.Fprintf(w, "  %s:", label)
			for _, c := range cs {
				fmt.Fprintf(w, " %s %.2f (%d starts, p=%.2g)", c.Name, c.MeanPct, c.Starts, c.P)
			}
			fmt.Fprintln(w)
		}
		k := min(3, len(with))
		show("earliest", with[:k])
		latest := slices.Clone(with[len(with)-k:])
		slices.Reverse(latest)
		show("latest", latest)
	}
	fmt.Fprintln(w, "uniformity (no bias: uniform):")
	for _, t := range r.Uniformity.Tests {
		if !t.Applied {
			fmt.Fprintf(w, "  %s: not applied, %s\n", t.Name, t.Note)
			continue
		}
		name := "D"
		if t.DF > 0 {
			name = fmt.Sprintf("χ²(%d)", t.DF)
		}
		fmt.Fprintf(w, "  %s: n=%d %s=%.4g p=%.3g", t.Name, t.N, name, t.Stat, t.P)
		if t.Note != "" {
			fmt.Fprintf(w, " (%s)", t.Note)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "verdict: %s\n", r.Uniformity.Verdict)
}

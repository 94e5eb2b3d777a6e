package hub

import (
	"cmp"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/bulbquiz/bulb/internal/stats"
)

// startRecord is what one start did: every recipient's delivery, measured from t0, the
// instant the fan-out began.
type startRecord struct {
	Seq        uint64
	N          int
	At         time.Time
	Reveal     time.Time // the reveal instant of a synced start; zero for an immediate one
	Node       string
	BusDelay   time.Duration // from publish to this node's fan-out; 0 without a bus
	t0         time.Time     // At with its monotonic reading
	frame      []byte
	deliveries []delivery // in send order
}

// delivery is one recipient's share of a start. The instants are nanoseconds after t0,
// 0 while unknown; they are written by the fan-out, the writer and the reader goroutines.
type delivery struct {
	rec      *startRecord
	order    int
	player   string
	name     string
	rtt      atomic.Int64
	enqueued atomic.Int64
	written  atomic.Int64
	acked    atomic.Int64
	dropped  atomic.Bool
	seen     atomic.Pointer[seenReport]
}

// seenReport is what a client reported of a start (a seen frame), its instants moved to
// nanoseconds after the record's t0: when the start arrived and when its bulb lit, by its
// synced clock, within errorNs.
type seenReport struct {
	received, revealed, errorNs, offsetNs int64
	late                                  bool
}

func (r *startRecord) droppedCount() int {
	n := 0
	for i := range r.deliveries {
		if r.deliveries[i].dropped.Load() {
			n++
		}
	}
	return n
}

// NodeDelivery is one node's part of a start.
type NodeDelivery struct {
	Node       string `json:"node"`
	BusUs      int64  `json:"busUs"` // from the publish to this node's fan-out; 0 on one node
	Recipients int    `json:"recipients"`
}

// Quantiles are latency quantiles in microseconds.
type Quantiles struct {
	P50 int64 `json:"p50"`
	P99 int64 `json:"p99"`
	Max int64 `json:"max"`
}

// PlayerDelivery is one player's delivery of one start, in microseconds after the start was
// sent (the fan-out began, or, with a bus, the start was published). Order is the place in
// its node's send order. AckUs is nil until an ack came. ReceivedUs, RevealedUs and ErrorUs
// are what the client reported in its seen frame (its synced clock's reading of when the
// start arrived and when its bulb lit, and that clock's error bound), nil until it did;
// Late says the start arrived after its reveal instant.
type PlayerDelivery struct {
	PlayerID   string `json:"playerId"`
	Name       string `json:"name"`
	Node       string `json:"node"`
	Order      int    `json:"order"`
	EnqueueUs  int64  `json:"enqueueUs"`
	WrittenUs  *int64 `json:"writtenUs"`
	AckUs      *int64 `json:"ackUs"`
	RTTUs      int64  `json:"rttUs"`
	Dropped    bool   `json:"dropped,omitempty"`
	ReceivedUs *int64 `json:"receivedUs,omitempty"`
	RevealedUs *int64 `json:"revealedUs,omitempty"`
	ErrorUs    *int64 `json:"errorUs,omitempty"`
	OffsetUs   *int64 `json:"offsetUs,omitempty"` // the client's clock offset, as it reported it
	Late       bool   `json:"late,omitempty"`
}

// StartStats are the statistics of one start.
type StartStats struct {
	Seq         uint64         `json:"seq"`
	N           int            `json:"n"`
	At          time.Time      `json:"at"` // when the start was sent: published, with a bus
	Nodes       []NodeDelivery `json:"nodes"`
	Recipients  int            `json:"recipients"`
	Acked       int            `json:"acked"`
	Dropped     int            `json:"dropped"`
	EnqueueUs   Quantiles      `json:"enqueueUs"`
	WrittenUs   Quantiles      `json:"writtenUs"`
	AckUs       Quantiles      `json:"ackUs"`
	SpreadUs    int64          `json:"spreadUs"`
	AckSpreadUs int64          `json:"ackSpreadUs"`
	// Seen is how many clients reported the start (seen frames), and ReceivedUs when it
	// arrived, by their synced clocks.
	Seen       int              `json:"seen"`
	ReceivedUs Quantiles        `json:"receivedUs"`
	Reveal     *Reveal          `json:"reveal,omitempty"` // a synced start's
	Players    []PlayerDelivery `json:"players"`
}

// Reveal is how a synced start's bulbs lit, from the clients' seen reports: the reveal
// instant At and its lead over the start (LeadUs, from the start's At), how many lit on
// time and how many late, when the bulbs lit (RevealedUs), by the clients' clocks, in µs
// after the start, and the clocks' error bounds. SpreadUs is the spread of the reported
// reveal instants; SkewUs bounds the true one: the widest the reveals can lie apart, each
// within its error bound. FalseStarts is filled in by the quiz's owner: answers to the
// question refused as faster than anyone reacts.
type Reveal struct {
	At          time.Time `json:"at"`
	LeadUs      int64     `json:"leadUs"`
	OnTime      int       `json:"onTime"`
	Late        int       `json:"late"`
	RevealedUs  Quantiles `json:"revealedUs"`
	ErrorUs     Quantiles `json:"errorUs"`
	SpreadUs    int64     `json:"spreadUs"`
	SkewUs      int64     `json:"skewUs"`
	FalseStarts int       `json:"falseStarts"`
}

// Bias is one player's position across a room's starts: the mean percentile of its delivery
// (0 first, 1 last), and whether that mean is further from 0.5 than chance allows.
type Bias struct {
	PlayerID       string  `json:"playerId"`
	Name           string  `json:"name"`
	Starts         int     `json:"starts"`
	MeanWrittenPct float64 `json:"meanWrittenPct"`
	MeanAckPct     float64 `json:"meanAckPct"`
	ZWritten       float64 `json:"zWritten"`
	ZAck           float64 `json:"zAck"`
	P              float64 `json:"p"`
	Flagged        bool    `json:"flagged"`
	// Late counts the synced starts that reached the player after their reveal instant, as
	// its page reported; ErrorUs is the error bound of its clock at its latest report;
	// FalseStarts, filled in by the quiz's owner, its answers refused as too quick.
	Late        int    `json:"late"`
	ErrorUs     *int64 `json:"errorUs,omitempty"`
	FalseStarts int    `json:"falseStarts"`
}

// Report is a room's fairness: its recent starts and every player's bias across them.
type Report struct {
	Room     string       `json:"room"`
	Starts   []StartStats `json:"starts"`
	Bias     []Bias       `json:"bias"`
	BiasRule string       `json:"biasRule"`
}

// Bias test parameters.
const (
	biasAlpha     = 0.01
	biasMinStarts = 5
)

var biasRule = "per start, a player's percentile is its rank among the recipients by written " +
	"(and ack) time, 0 = first, 1 = last; without bias it is uniform, so the mean over k starts " +
	"is 0.5 with a known variance; z is the distance in standard deviations, p the two-sided " +
	"p-value of the worse of written and ack; flagged when p < 0.01/players (Bonferroni) after " +
	"at least 5 starts"

// Fairness returns this node's fairness report of the room: the newest limit starts (all
// kept, if limit is not positive), newest first, and every player's bias over all kept
// starts. ClusterFairness merges the reports of every node.
func (h *Hub) Fairness(roomName string, limit int) Report {
	return report(roomName, h.localStarts(roomName), limit)
}

// localStarts returns this node's records of the room's starts, newest first: those in
// memory, and those its Archive kept from before a restart.
func (h *Hub) localStarts(roomName string) []StartStats {
	r := h.room(roomName, false)
	if r == nil {
		return h.withArchived(roomName, nil)
	}
	r.mu.RLock()
	starts := slices.Clone(r.starts)
	r.mu.RUnlock()
	out := make([]StartStats, 0, len(starts))
	for i := len(starts) - 1; i >= 0; i-- {
		out = append(out, starts[i].stats())
	}
	return h.withArchived(roomName, out)
}

// report builds a report from starts, newest first.
func report(roomName string, starts []StartStats, limit int) Report {
	rep := Report{Room: roomName, Starts: []StartStats{}, Bias: []Bias{}, BiasRule: biasRule}
	acc := newBiasAcc()
	for _, st := range starts {
		acc.add(st)
		if limit <= 0 || len(rep.Starts) < limit {
			rep.Starts = append(rep.Starts, st)
		}
	}
	rep.Bias = acc.result()
	return rep
}

// mergeStarts joins the records that several nodes keep of the same starts and returns
// them newest first, with their statistics over all the nodes' players.
func mergeStarts(parts ...[]StartStats) []StartStats {
	bySeq := map[uint64]*StartStats{}
	for _, part := range parts {
		for _, st := range part {
			m := bySeq[st.Seq]
			if m == nil {
				c := st
				c.Nodes, c.Players = slices.Clone(st.Nodes), slices.Clone(st.Players)
				bySeq[st.Seq] = &c
				continue
			}
			if st.At.Before(m.At) {
				m.At = st.At
			}
			m.Nodes = append(m.Nodes, st.Nodes...)
			m.Players = append(m.Players, st.Players...)
		}
	}
	out := make([]StartStats, 0, len(bySeq))
	for _, st := range bySeq {
		slices.SortFunc(st.Nodes, func(a, b NodeDelivery) int { return cmp.Compare(a.Node, b.Node) })
		out = append(out, summarize(*st))
	}
	slices.SortFunc(out, func(a, b StartStats) int { return cmp.Compare(b.Seq, a.Seq) })
	return out
}

// stats is the record as a StartStats, its times moved back to the publish if it came over
// the bus, so that records of different nodes share one origin.
func (r *startRecord) stats() StartStats {
	bus := r.BusDelay.Microseconds()
	players := make([]PlayerDelivery, len(r.deliveries))
	recipients := 0
	for i := range r.deliveries {
		d := &r.deliveries[i]
		p := PlayerDelivery{PlayerID: d.player, Name: d.name, Node: r.Node, Order: d.order, RTTUs: d.rtt.Load() / 1e3,
			EnqueueUs: d.enqueued.Load()/1e3 + bus, Dropped: d.dropped.Load()}
		if !p.Dropped {
			recipients++
		}
		if v := d.written.Load(); v > 0 {
			us := v/1e3 + bus
			p.WrittenUs = &us
		}
		if v := d.acked.Load(); v > 0 {
			us := v/1e3 + bus
			p.AckUs = &us
		}
		if sr := d.seen.Load(); sr != nil {
			received, revealed, errUs, offsetUs := sr.received/1e3+bus, sr.revealed/1e3+bus, sr.errorNs/1e3, sr.offsetNs/1e3
			p.ReceivedUs, p.RevealedUs, p.ErrorUs, p.OffsetUs, p.Late = &received, &revealed, &errUs, &offsetUs, sr.late
		}
		players[i] = p
	}
	st := StartStats{Seq: r.Seq, N: r.N, At: r.At.Add(-r.BusDelay),
		Nodes: []NodeDelivery{{Node: r.Node, BusUs: bus, Recipients: recipients}}, Players: players}
	if !r.Reveal.IsZero() {
		st.Reveal = &Reveal{At: r.Reveal}
	}
	return summarize(st)
}

// summarize fills in a start's counts and quantiles from its players.
func summarize(st StartStats) StartStats {
	var enq, wr, ack []int64
	st.Recipients, st.Dropped = 0, 0
	for _, p := range st.Players {
		enq = append(enq, p.EnqueueUs)
		if p.Dropped {
			st.Dropped++
		} else {
			st.Recipients++
		}
		if p.WrittenUs != nil {
			wr = append(wr, *p.WrittenUs)
		}
		if p.AckUs != nil {
			ack = append(ack, *p.AckUs)
		}
	}
	st.Acked = len(ack)
	st.EnqueueUs, st.WrittenUs, st.AckUs = quantiles(enq), quantiles(wr), quantiles(ack)
	st.SpreadUs, st.AckSpreadUs = spread(wr), spread(ack)
	var received []int64
	for _, p := range st.Players {
		if p.ReceivedUs != nil {
			received = append(received, *p.ReceivedUs)
		}
	}
	st.Seen, st.ReceivedUs = len(received), quantiles(received)
	if st.Reveal != nil {
		summarizeReveal(st.Reveal, st.At, st.Players)
	}
	return st
}

// summarizeReveal fills in a synced start's reveal statistics from its players' reports.
func summarizeReveal(rv *Reveal, at time.Time, players []PlayerDelivery) {
	*rv = Reveal{At: rv.At, LeadUs: rv.At.Sub(at).Microseconds(), FalseStarts: rv.FalseStarts}
	var revealed, errs []int64
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	for _, p := range players {
		if p.RevealedUs == nil {
			continue
		}
		if p.Late {
			rv.Late++
		} else {
			rv.OnTime++
		}
		revealed, errs = append(revealed, *p.RevealedUs), append(errs, *p.ErrorUs)
		first, last = min(first, *p.RevealedUs-*p.ErrorUs), max(last, *p.RevealedUs+*p.ErrorUs)
	}
	rv.ErrorUs, rv.RevealedUs = quantiles(errs), quantiles(revealed)
	rv.SpreadUs = spread(revealed)
	if len(revealed) > 0 {
		rv.SkewUs = last - first
	}
}

// quantiles sorts xs and returns its nearest-rank p50, p99 and max (stats.Percentile;
// microseconds are exact as float64).
func quantiles(xs []int64) Quantiles {
	if len(xs) == 0 {
		return Quantiles{}
	}
	slices.Sort(xs)
	sorted := make([]float64, len(xs))
	for i, x := range xs {
		sorted[i] = float64(x)
	}
	return Quantiles{P50: int64(stats.Percentile(sorted, 50)), P99: int64(stats.Percentile(sorted, 99)), Max: xs[len(xs)-1]}
}

// spread is max − min of sorted xs.
func spread(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	return xs[len(xs)-1] - xs[0]
}

// biasAcc accumulates each player's percentiles over starts. For a start with n
// recipients a percentile is uniform on {0, 1/(n−1), …, 1} under no bias, with variance
// (n+1)/(12(n−1)); the mean of k independent ones has the sum of those variances over k².
type biasAcc struct {
	players map[string]*biasSum
	order   []string
}

type biasSum struct {
	name                   string
	starts                 int
	wSum, wVar, aSum, aVar float64
	wN, aN                 int
	late                   int
	errorUs                *int64 // from the newest start the player reported
}

func newBiasAcc() *biasAcc { return &biasAcc{players: map[string]*biasSum{}} }

func (b *biasAcc) get(id, name string) *biasSum {
	s := b.players[id]
	if s == nil {
		s = &biasSum{name: name}
		b.players[id] = s
		b.order = append(b.order, id)
	}
	return s
}

// add counts one start; the starts come newest first.
func (b *biasAcc) add(st StartStats) {
	for _, p := range st.Players {
		s := b.get(p.PlayerID, p.Name)
		s.starts++
		if p.Late {
			s.late++
		}
		if s.errorUs == nil {
			s.errorUs = p.ErrorUs
		}
	}
	addPct(st.Players, func(p PlayerDelivery) *int64 { return p.WrittenUs }, func(id string, pct, v float64) {
		s := b.players[id]
		s.wSum, s.wVar, s.wN = s.wSum+pct, s.wVar+v, s.wN+1
	})
	addPct(st.Players, func(p PlayerDelivery) *int64 { return p.AckUs }, func(id string, pct, v float64) {
		s := b.players[id]
		s.aSum, s.aVar, s.aN = s.aSum+pct, s.aVar+v, s.aN+1
	})
}

// addPct computes every player's percentile of one start by the instant at gives (players
// without one are left out; stats.PercentileRanks: 0 first, 1 last, ties share their mean
// rank) and calls add with it and its variance under no bias.
func addPct(ps []PlayerDelivery, at func(PlayerDelivery) *int64, add func(id string, pct, variance float64)) {
	var ids []string
	var ts []float64 // microseconds, exact as float64
	for _, p := range ps {
		if t := at(p); t != nil {
			ids, ts = append(ids, p.PlayerID), append(ts, float64(*t))
		}
	}
	n := len(ts)
	if n < 2 {
		return
	}
	variance := float64(n+1) / float64(12*(n-1))
	for i, pct := range stats.PercentileRanks(ts) {
		add(ids[i], pct, variance)
	}
}

func (b *biasAcc) result() []Bias {
	out := make([]Bias, 0, len(b.order))
	alpha := biasAlpha / float64(max(1, len(b.order)))
	for _, id := range b.order {
		s := b.players[id]
		bs := Bias{PlayerID: id, Name: s.name, Starts: s.starts, MeanWrittenPct: 0.5, MeanAckPct: 0.5, P: 1, Late: s.late, ErrorUs: s.errorUs}
		bs.MeanWrittenPct, bs.ZWritten = meanZ(s.wSum, s.wVar, s.wN)
		bs.MeanAckPct, bs.ZAck = meanZ(s.aSum, s.aVar, s.aN)
		bs.P = stats.TwoSidedP(max(math.Abs(bs.ZWritten), math.Abs(bs.ZAck)))
		bs.Flagged = max(s.wN, s.aN) >= biasMinStarts && bs.P < alpha
		out = append(out, bs)
	}
	return out
}

// meanZ returns the mean of n percentiles with the given sum, and its z-score against 0.5
// given the sum of their variances.
func meanZ(sum, variance float64, n int) (float64, float64) {
	if n == 0 {
		return 0.5, 0
	}
	mean := sum / float64(n)
	sd := math.Sqrt(variance) / float64(n)
	return mean, (mean - 0.5) / sd
}

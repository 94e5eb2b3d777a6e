package hub

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/internal/stats"
)

func seq(lo, hi int64) []int64 {
	var xs []int64
	for x := lo; x <= hi; x++ {
		xs = append(xs, x)
	}
	return xs
}

func shuffled(xs []int64) []int64 {
	xs = slices.Clone(xs)
	rand.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
	return xs
}

func TestQuantiles(t *testing.T) {
	tests := []struct {
		name string
		xs   []int64
		want Quantiles
	}{
		{"none", nil, Quantiles{}},
		{"one", []int64{7}, Quantiles{7, 7, 7}},
		{"two", []int64{9, 3}, Quantiles{3, 9, 9}},
		{"three unsorted", []int64{3, 1, 2}, Quantiles{2, 3, 3}},
		{"ties", []int64{5, 5, 5, 1}, Quantiles{5, 5, 5}},
		// Nearest rank: the ⌈p·n⌉-th smallest.
		{"1..10", shuffled(seq(1, 10)), Quantiles{5, 10, 10}},
		{"1..100", shuffled(seq(1, 100)), Quantiles{50, 99, 100}},
		{"1..101", shuffled(seq(1, 101)), Quantiles{51, 100, 101}},
		{"1..200", shuffled(seq(1, 200)), Quantiles{100, 198, 200}},
		{"1..1000", shuffled(seq(1, 1000)), Quantiles{500, 990, 1000}},
		{"1..10000", shuffled(seq(1, 10000)), Quantiles{5000, 9900, 10000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := quantiles(tt.xs); got != tt.want {
				t.Errorf("quantiles: got %+v, want %+v", got, tt.want)
			}
		})
	}
	// Every n up to 2000: p99 is the ⌈0.99·n⌉-th smallest, computed in integers.
	for n := int64(1); n <= 2000; n++ {
		q := quantiles(seq(1, n))
		if want := (99*n + 99) / 100; q.P99 != want { // ⌈99n/100⌉
			t.Fatalf("p99 of 1..%d: got %d, want %d", n, q.P99, want)
		}
		if want := (n + 1) / 2; q.P50 != want {
			t.Fatalf("p50 of 1..%d: got %d, want %d", n, q.P50, want)
		}
	}
}

func TestSpread(t *testing.T) {
	tests := []struct {
		xs   []int64
		want int64
	}{
		{nil, 0},
		{[]int64{4}, 0},
		{[]int64{1, 5, 9}, 8},
		{[]int64{3, 3}, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.xs), func(t *testing.T) {
			if got := spread(tt.xs); got != tt.want {
				t.Errorf("spread: got %d, want %d", got, tt.want)
			}
		})
	}
}

func ptr(v int64) *int64 { return &v }

func TestAddPct(t *testing.T) {
	type pct struct {
		id      string
		pct, vr float64
	}
	tests := []struct {
		name  string
		times []*int64 // player i's time; nil: left out
		want  []pct
	}{
		{"none", nil, nil},
		{"one: no percentile", []*int64{ptr(5)}, nil},
		{"one with a time", []*int64{nil, ptr(5), nil}, nil},
		{"two", []*int64{ptr(20), ptr(10)}, []pct{{"p1", 0, 3.0 / 12}, {"p0", 1, 3.0 / 12}}},
		{"four with a tie", []*int64{ptr(20), ptr(10), ptr(30), ptr(20)}, []pct{
			{"p1", 0, 5.0 / 36}, {"p0", 0.5, 5.0 / 36}, {"p3", 0.5, 5.0 / 36}, {"p2", 1, 5.0 / 36}}},
		{"all tied", []*int64{ptr(7), ptr(7), ptr(7)}, []pct{{"p0", 0.5, 4.0 / 24}, {"p1", 0.5, 4.0 / 24}, {"p2", 0.5, 4.0 / 24}}},
		{"missing left out", []*int64{ptr(3), nil, ptr(1), ptr(2)}, []pct{{"p2", 0, 4.0 / 24}, {"p3", 0.5, 4.0 / 24}, {"p0", 1, 4.0 / 24}}},
		{"tie at the front", []*int64{ptr(1), ptr(1), ptr(2), ptr(3), ptr(4)}, []pct{
			{"p0", 0.125, 6.0 / 48}, {"p1", 0.125, 6.0 / 48}, {"p2", 0.5, 6.0 / 48}, {"p3", 0.75, 6.0 / 48}, {"p4", 1, 6.0 / 48}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps []PlayerDelivery
			for i, tm := range tt.times {
				ps = append(ps, PlayerDelivery{PlayerID: fmt.Sprintf("p%d", i), WrittenUs: tm})
			}
			got := map[string]pct{} // the order among ties is not fixed
			addPct(ps, func(p PlayerDelivery) *int64 { return p.WrittenUs }, func(id string, p, v float64) {
				if _, dup := got[id]; dup {
					t.Errorf("player %s: got two calls, want one", id)
				}
				got[id] = pct{id, p, v}
			})
			if len(got) != len(tt.want) {
				t.Fatalf("calls: got %v, want %v", got, tt.want)
			}
			for _, w := range tt.want {
				if g := got[w.id]; g.id != w.id || math.Abs(g.pct-w.pct) > 1e-12 || math.Abs(g.vr-w.vr) > 1e-12 {
					t.Errorf("player %s: got %+v, want %+v", w.id, g, w)
				}
			}
		})
	}

	// Random times: percentiles lie in [0, 1], average 0.5, and the variance given is
	// (n+1)/(12(n−1)) — the variance of a uniform pick from {0, 1/(n−1), …, 1}.
	for n := 2; n <= 50; n++ {
		var ps []PlayerDelivery
		for i := range n {
			ps = append(ps, PlayerDelivery{PlayerID: fmt.Sprint(i), WrittenUs: ptr(rand.Int64N(10))})
		}
		var sum float64
		addPct(ps, func(p PlayerDelivery) *int64 { return p.WrittenUs }, func(id string, p, v float64) {
			if p < 0 || p > 1 {
				t.Errorf("n=%d: got percentile %v, want in [0, 1]", n, p)
			}
			var m, m2 float64
			for k := range n {
				x := float64(k) / float64(n-1)
				m, m2 = m+x/float64(n), m2+x*x/float64(n)
			}
			if want := m2 - m*m; math.Abs(v-want) > 1e-12 {
				t.Errorf("n=%d: got variance %v, want %v", n, v, want)
			}
			sum += p
		})
		if mean := sum / float64(n); math.Abs(mean-0.5) > 1e-12 {
			t.Errorf("n=%d: got mean percentile %v, want 0.5", n, mean)
		}
	}
}

// record builds a start in which order[k] was k-th: written k+1 µs, acked 10·(k+1) µs
// after t0. Players listed in noAck have no ack.
func record(seq uint64, order []string, noAck ...string) *startRecord {
	t0 := time.Unix(1e9, 0)
	rec := &startRecord{Seq: seq, N: int(seq), At: t0, t0: t0, deliveries: make([]delivery, len(order))}
	for k, id := range order {
		d := &rec.deliveries[k]
		d.rec, d.order, d.player, d.name = rec, k, id, "name-"+id
		d.enqueued.Store(int64(k+1) * 100)
		d.written.Store(int64(k+1) * 1000)
		if !slices.Contains(noAck, id) {
			d.acked.Store(int64(k+1) * 10000)
		}
	}
	return rec
}

func players(n int) []string {
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("p%d", i))
	}
	return ids
}

// rotate returns ids rotated left by k.
func rotate(ids []string, k int) []string {
	k %= len(ids)
	return append(slices.Clone(ids[k:]), ids[:k]...)
}

func TestBias(t *testing.T) {
	const n, starts = 10, 20
	ids := players(n)
	tests := []struct {
		name        string
		order       func(s int) []string // the send order of start s
		wantFlagged []string
	}{
		{"rotated: nobody", func(s int) []string { return rotate(ids, s) }, nil},
		{"p0 always first", func(s int) []string {
			return append([]string{"p0"}, rotate(ids[1:], s)...)
		}, []string{"p0"}},
		{"p9 always last", func(s int) []string {
			return append(rotate(ids[:n-1], s), "p9")
		}, []string{"p9"}},
		// Position k every time: z = (k/9 − 0.5)/0.0714, so |z| ≥ 3.89 (p ≤ 1.0e-4 < 0.001)
		// for the three at either end; |z| = 2.33 (p = 0.02) for positions 3 and 6.
		{"fixed order: three at either end", func(int) []string { return ids }, []string{"p0", "p1", "p2", "p7", "p8", "p9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(Options{})
			for s := range starts {
				h.record("r", record(uint64(s+1), tt.order(s)))
			}
			rep := h.Fairness("r", 0)
			if len(rep.Starts) != starts || rep.Starts[0].Seq != starts {
				t.Fatalf("starts: got %d, newest seq %d, want %d, newest %d", len(rep.Starts), rep.Starts[0].Seq, starts, starts)
			}
			if len(rep.Bias) != n {
				t.Fatalf("bias entries: got %d, want %d", len(rep.Bias), n)
			}
			var flagged []string
			for _, b := range rep.Bias {
				if b.Starts != starts {
					t.Errorf("%s starts: got %d, want %d", b.PlayerID, b.Starts, starts)
				}
				if b.Flagged {
					flagged = append(flagged, b.PlayerID)
					if b.P >= 0.01/n {
						t.Errorf("%s flagged: got p %g, want < %g", b.PlayerID, b.P, 0.01/n)
					}
				}
				if math.Abs(b.MeanWrittenPct-b.MeanAckPct) > 1e-12 || math.Abs(b.ZWritten-b.ZAck) > 1e-9 {
					t.Errorf("%s: got written %v/%v and ack %v/%v, want the same (same order)", b.PlayerID,
						b.MeanWrittenPct, b.ZWritten, b.MeanAckPct, b.ZAck)
				}
			}
			slices.Sort(flagged)
			if !slices.Equal(flagged, tt.wantFlagged) {
				t.Errorf("flagged: got %v, want %v", flagged, tt.wantFlagged)
			}
		})
	}

	// The numbers for "p0 always first": percentile 0 every time; the variance of one
	// start's percentile is 11/108, so z = −0.5/(√(20·11/108)/20) ≈ −7.006.
	h := New(Options{})
	for s := range starts {
		h.record("r", record(uint64(s+1), append([]string{"p0"}, rotate(ids[1:], s)...)))
	}
	b := h.Fairness("r", 0).Bias
	i := slices.IndexFunc(b, func(b Bias) bool { return b.PlayerID == "p0" })
	wantZ := -0.5 / (math.Sqrt(starts*11.0/108) / starts)
	if got := b[i]; got.MeanWrittenPct != 0 || math.Abs(got.ZWritten-wantZ) > 1e-9 || math.Abs(got.P-stats.TwoSidedP(wantZ)) > 1e-15 {
		t.Errorf("p0: got mean %v z %v p %g, want 0, %v, %g", got.MeanWrittenPct, got.ZWritten, got.P, wantZ, stats.TwoSidedP(wantZ))
	}
}

func TestBiasGrowsWithStarts(t *testing.T) {
	// Two players, p0 always first: with 4 starts p = 0.0455, not flagged; the z-score
	// grows with √k, so over 20 starts it is (p ≈ 8e-6 < 0.01/2).
	for _, tt := range []struct {
		starts  int
		flagged bool
	}{{4, false}, {20, true}} {
		t.Run(fmt.Sprint(tt.starts), func(t *testing.T) {
			h := New(Options{})
			for s := range tt.starts {
				h.record("r", record(uint64(s+1), []string{"p0", "p1"}))
			}
			for _, b := range h.Fairness("r", 0).Bias {
				if b.Flagged != tt.flagged {
					t.Errorf("%s after %d starts: got flagged %v (p %g), want %v", b.PlayerID, tt.starts, b.Flagged, b.P, tt.flagged)
				}
			}
		})
	}
}

func TestStats(t *testing.T) {
	rec := record(7, []string{"a", "b", "c", "d"}, "c")
	rec.deliveries[3].written.Store(0) // d: dropped before its write
	rec.deliveries[3].acked.Store(0)
	rec.deliveries[3].dropped.Store(true)
	rec.deliveries[1].rtt.Store(2500)
	st := rec.stats()
	if st.Seq != 7 || st.N != 7 || st.Recipients != 3 || st.Dropped != 1 || st.Acked != 2 {
		t.Errorf("seq n recipients dropped acked: got %d %d %d %d %d, want 7 7 3 1 2", st.Seq, st.N, st.Recipients, st.Dropped, st.Acked)
	}
	if want := (Quantiles{2, 3, 3}); st.WrittenUs != want {
		t.Errorf("writtenUs: got %+v, want %+v", st.WrittenUs, want)
	}
	if want := (Quantiles{10, 20, 20}); st.AckUs != want {
		t.Errorf("ackUs: got %+v, want %+v", st.AckUs, want)
	}
	if st.SpreadUs != 2 || st.AckSpreadUs != 10 {
		t.Errorf("spreads: got %d, %d, want 2, 10", st.SpreadUs, st.AckSpreadUs)
	}
	b := st.Players[1]
	if b.PlayerID != "b" || b.Name != "name-b" || b.Order != 1 || b.RTTUs != 2 || *b.WrittenUs != 2 || *b.AckUs != 20 || b.Dropped {
		t.Errorf("player b: got %+v, want order 1, writtenUs 2, ackUs 20, rttUs 2", b)
	}
	if d := st.Players[3]; d.WrittenUs != nil || d.AckUs != nil || !d.Dropped {
		t.Errorf("player d: got %+v, want no times, dropped", d)
	}
}

func TestHistory(t *testing.T) {
	h := New(Options{History: 3})
	for s := range 5 {
		h.record("r", record(uint64(s+1), []string{"a", "b"}))
	}
	var got []uint64
	for _, st := range h.Fairness("r", 0).Starts {
		got = append(got, st.Seq)
	}
	if want := []uint64{5, 4, 3}; !slices.Equal(got, want) {
		t.Errorf("kept starts, newest first: got %v, want %v", got, want)
	}
	rep := h.Fairness("r", 2)
	if len(rep.Starts) != 2 || rep.Starts[0].Seq != 5 || rep.Bias[0].Starts != 3 {
		t.Errorf("limit 2: got %d starts, newest %d, bias over %d; want 2, 5 and all 3 kept", len(rep.Starts), rep.Starts[0].Seq, rep.Bias[0].Starts)
	}
	if rep := h.Fairness("nowhere", 0); len(rep.Starts) != 0 || len(rep.Bias) != 0 || rep.BiasRule == "" {
		t.Errorf("unknown room: got %+v, want empty starts and bias and a rule", rep)
	}
}

func TestMergeStarts(t *testing.T) {
	us := func(v int64) *int64 { return &v }
	at := time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)
	a := []StartStats{summarize(StartStats{Seq: 9, N: 1, At: at.Add(time.Millisecond), Nodes: []NodeDelivery{{Node: "b", BusUs: 300, Recipients: 2}},
		Players: []PlayerDelivery{{PlayerID: "b1", WrittenUs: us(400), AckUs: us(900)}, {PlayerID: "b2", WrittenUs: us(500)}}})}
	b := []StartStats{
		summarize(StartStats{Seq: 9, N: 1, At: at, Nodes: []NodeDelivery{{Node: "a", BusUs: 100, Recipients: 1}},
			Players: []PlayerDelivery{{PlayerID: "a1", WrittenUs: us(150), AckUs: us(700)}}}),
		summarize(StartStats{Seq: 8, N: 1, At: at.Add(-time.Minute), Nodes: []NodeDelivery{{Node: "a"}},
			Players: []PlayerDelivery{{PlayerID: "a1", WrittenUs: us(10)}}}),
	}
	got := mergeStarts(a, b)
	if len(got) != 2 || got[0].Seq != 9 || got[1].Seq != 8 {
		t.Fatalf("got %d starts, want seq 9 then 8", len(got))
	}
	m := got[0]
	if m.Recipients != 3 || m.Acked != 2 || !m.At.Equal(at) || len(m.Nodes) != 2 || m.Nodes[0].Node != "a" {
		t.Errorf("got recipients %d acked %d at %v nodes %+v, want 3, 2, the earliest, a then b", m.Recipients, m.Acked, m.At, m.Nodes)
	}
	if m.SpreadUs != 350 || m.WrittenUs.Max != 500 || m.AckSpreadUs != 200 {
		t.Errorf("got spread %d, written max %d, ack spread %d; want 350, 500, 200 over both nodes", m.SpreadUs, m.WrittenUs.Max, m.AckSpreadUs)
	}
}

// TestQueuedStartOfDroppedClient: a client dropped while its start still waits in its
// queue (its writer is stuck on an earlier frame, and the watchdog cuts it off) never got
// the start: the record counts it dropped.
func TestQueuedStartOfDroppedClient(t *testing.T) {
	h := New(Options{})
	c := &Conn{hub: h, client: Client{Room: "r", ID: "slow", Name: "slow"}, limit: 64}
	if err := h.register(c); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.writing = true // a writer holds c, stuck writing an earlier frame
	c.mu.Unlock()
	if _, _, err := h.Start(context.Background(), "r", 1, time.Time{}); err != nil {
		t.Fatal(err)
	}
	c.drop(1008, "too slow: write timed out", "write_failed")
	st := h.Fairness("r", 0).Starts[0]
	if st.Dropped != 1 || !st.Players[0].Dropped || st.Players[0].WrittenUs != nil {
		t.Errorf("got dropped %d, player %+v; want the start dropped, never written", st.Dropped, st.Players[0])
	}
}

// TestForget: a room's records stay after its last connection left (the report is read
// after the quiz), until the room is forgotten; a room with no start is dropped when its
// last connection leaves; and a room forgotten takes connections again.
func TestForget(t *testing.T) {
	h := New(Options{})
	join := func(room, id string) *Conn {
		c := &Conn{hub: h, client: Client{Room: room, ID: id, Name: id}, limit: 64}
		if err := h.register(c); err != nil {
			t.Fatal(err)
		}
		c.writing = true // no socket to write to: frames stay queued
		return c
	}
	leave := func(c *Conn) {
		h.unregister(c)
		h.serving.Done()
	}
	rooms := func() int {
		h.mu.RLock()
		defer h.mu.RUnlock()
		return len(h.rooms)
	}
	quiz, lobby := join("quiz", "ada"), join("lobby", "bob")
	if _, _, err := h.Start(context.Background(), "quiz", 1, time.Time{}); err != nil {
		t.Fatal(err)
	}
	leave(quiz)
	leave(lobby)
	if got := len(h.Fairness("quiz", 0).Starts); rooms() != 1 || got != 1 {
		t.Fatalf("after everyone left: %d rooms, the quiz's report has %d starts; want 1 room (the quiz's) with its start", rooms(), got)
	}
	h.Forget(context.Background(), "quiz", nil)
	if got := len(h.Fairness("quiz", 0).Starts); rooms() != 0 || got != 0 {
		t.Fatalf("forgotten: %d rooms, a report of %d starts; want none", rooms(), got)
	}
	again := join("quiz", "ada")
	if _, recipients, err := h.Start(context.Background(), "quiz", 1, time.Time{}); err != nil || recipients != 1 {
		t.Fatalf("a start after the room was forgotten: %d recipients, %v; want 1", recipients, err)
	}
	leave(again)
}

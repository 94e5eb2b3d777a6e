package main

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/internal/lagproxy"
	"github.com/bulbquiz/bulb/internal/stats"
)

// TestSummarizeSynced: per-start figures, then p50/p99/max over the starts, the server's
// view by question, and the symmetric groups' errors pooled.
func TestSummarizeSynced(t *testing.T) {
	starts := [][]record{
		{rec(0, -50, 1, 2, 5, false), rec(1, -30, -1, 0, 5, false)}, // targets spread 2, light 2
		nil, // question 2: no records
		{rec(0, -50, 2, 3, 5, false), rec(1, -30, -2, -1, 5, false)}, // targets spread 4, light 4
		{rec(0, -50, 0, 1, 5, false), rec(3, -30, -17, -16, 5, false)},
	}
	server := map[int]serverReveal{1: {LeadUs: 150_000, SpreadUs: 2000, SkewUs: 12_000}, 5: {LeadUs: 170_000, SpreadUs: 4000, SkewUs: 14_000}}
	got := summarizeSynced(starts, []int{1, 4, 5, 8}, testLinks, server)
	if got.Starts != 3 || got.Records != 6 || len(got.PerStart) != 3 {
		t.Fatalf("got %d starts, %d records, %d per start; want 3, 6, 3", got.Starts, got.Records, len(got.PerStart))
	}
	if ns := []int{got.PerStart[0].N, got.PerStart[1].N, got.PerStart[2].N}; ns[0] != 1 || ns[1] != 5 || ns[2] != 8 {
		t.Errorf("questions: got %v, want [1 5 8]", ns)
	}
	if want := (stats.Summary{N: 3, P50: 2, P99: 4, Max: 4, Spread: 4}); got.TargetSpreadSymMs != want {
		t.Errorf("symmetric targets' spread: got %+v, want %+v", got.TargetSpreadSymMs, want)
	}
	if want := (stats.Summary{N: 3, P50: 4, P99: 17, Max: 17, Spread: 15}); got.TargetSpreadMs != want {
		t.Errorf("every target's spread: got %+v, want %+v", got.TargetSpreadMs, want)
	}
	if want := (stats.Summary{N: 2, P50: 150, P99: 170, Max: 170, Spread: 20}); got.LeadMs != want {
		t.Errorf("lead: got %+v, want %+v (the starts the server reported)", got.LeadMs, want)
	}
	if got.PerStart[2].Server != nil || got.PerStart[1].Server == nil || got.PerStart[1].Server.SkewUs != 14_000 {
		t.Errorf("server view by question: got %+v, %+v", got.PerStart[1].Server, got.PerStart[2].Server)
	}
	// The symmetric groups' errors: 1, −1, 2, −2, 0 (the asymmetric −17 left out).
	if want := (errSummary{MeanMs: 0, Abs: stats.Summary{N: 5, P50: 1, P99: 2, Max: 2, Spread: 2}}); got.SymmetricErr != want {
		t.Errorf("symmetric errors: got %+v, want %+v", got.SymmetricErr, want)
	}
}

func TestSummarizeImmediate(t *testing.T) {
	at := func(ms int64) int64 { return sNs + ms*msInNs }
	starts := [][]record{
		{{Recv: at(0)}, {Recv: at(60)}, {Recv: at(20)}},
		{{Recv: at(5)}, {Recv: at(75)}},
		{},
	}
	got := summarizeImmediate(starts)
	if got.Starts != 2 || got.Records != 5 {
		t.Errorf("got %d starts, %d records; want 2, 5", got.Starts, got.Records)
	}
	if want := (stats.Summary{N: 2, P50: 60, P99: 70, Max: 70, Spread: 10}); got.ReceiptSpreadMs != want {
		t.Errorf("receipt spread: got %+v, want %+v", got.ReceiptSpreadMs, want)
	}
}

// TestTargets: the verdicts' arithmetic: the symmetric groups' p99 against 2 ms, an
// asymmetric group's against half its asymmetry + 2 ms.
func TestTargets(t *testing.T) {
	asym := testLinks[3]
	for _, tt := range []struct {
		name             string
		symP99, asymP99  float64
		wantSym, wantAsy bool
	}{
		{"both met", 1.9, 19.4, true, true},
		{"on the limits", 2, 19.5, true, true},
		{"both missed", 2.1, 19.6, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := syncedReport{SymmetricErr: errSummary{Abs: stats.Summary{N: 10, P99: tt.symP99}}}
			groups := []groupReport{
				{Link: testLinks[0], groupSkew: groupSkew{Err: errSummary{Abs: stats.Summary{N: 10, P99: 50}}}}, // symmetric: not judged alone
				{Link: asym, groupSkew: groupSkew{PredictedErrMs: -17.5, Err: errSummary{MeanMs: -17.6, Abs: stats.Summary{N: 10, P99: tt.asymP99}}}},
			}
			got := targets(s, immediateReport{}, groups)
			if len(got) != 2 {
				t.Fatalf("got %d targets, want 2", len(got))
			}
			if got[0].Met != tt.wantSym || got[0].Limit != 2 || got[0].Value != tt.symP99 {
				t.Errorf("symmetric: got %+v, want met %v, limit 2, value %v", got[0], tt.wantSym, tt.symP99)
			}
			if got[1].Met != tt.wantAsy || got[1].Limit != 19.5 || got[1].Value != tt.asymP99 {
				t.Errorf("asymmetric: got %+v, want met %v, limit 19.5, value %v", got[1], tt.wantAsy, tt.asymP99)
			}
			if !strings.Contains(got[1].Note, "|mean| > half") {
				t.Errorf("asymmetric note: got %q, want it to say the mean is beyond half the asymmetry", got[1].Note)
			}
		})
	}
}

// TestCollector: a start is complete once every connected, not dropped student of every
// group has its record; the result sorts the records by mode and question.
func TestCollector(t *testing.T) {
	c := newCollector(2)
	c.connected(0, 2)
	c.connected(1, 1)
	c.add(record{Group: 0, N: 1})
	if c.complete(1) {
		t.Error("complete with 1 of 3 records")
	}
	c.add(record{Group: 1, N: 1})
	c.drop(0, "gone")
	if !c.complete(1) {
		t.Error("not complete with every student still connected reported")
	}
	c.add(record{Group: 0, N: 3})
	c.add(record{Group: 1, N: 4})
	got := c.result(modeOf) // 1 synced, 2 and 3 immediate, 4 synced
	if s := got.starts[modeSynced]; len(s) != 2 || len(s[0]) != 2 || len(s[1]) != 1 || !slices.Equal(got.questions[modeSynced], []int{1, 4}) {
		t.Errorf("synced: got %v, questions %v; want 2 records of 1, 1 of 4", s, got.questions[modeSynced])
	}
	if s := got.starts[modeImmediate]; len(s) != 2 || len(s[0]) != 0 || len(s[1]) != 1 || !slices.Equal(got.questions[modeImmediate], []int{2, 3}) {
		t.Errorf("immediate: got %v, questions %v; want none of 2, 1 of 3", s, got.questions[modeImmediate])
	}
	if got.dropped[0] != 1 || got.dropErrs["gone"] != 1 {
		t.Errorf("dropped: got %v, %v", got.dropped, got.dropErrs)
	}
}

// TestModeOf: pairs of one start of each mode, which goes first alternating.
func TestModeOf(t *testing.T) {
	var got []string
	for n := 1; n <= 8; n++ {
		got = append(got, modes[modeOf(n)][:1])
	}
	if want := []string{"s", "i", "i", "s", "s", "i", "i", "s"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.clients != 1000 || cfg.starts != 30 || cfg.warmup != 25*time.Second || cfg.pause != 200*time.Millisecond || len(cfg.links) != 4 {
		t.Errorf("defaults: got clients %d, starts %d, warmup %v, pause %v, %d links; want 1000, 30, 25s, 200ms, 4", cfg.clients, cfg.starts, cfg.warmup, cfg.pause, len(cfg.links))
	}
	if cfg, _ := parseFlags([]string{"--clients", "10000"}, io.Discard); cfg.pause != time.Second {
		t.Errorf("10,000 students: got pause %v, want 1s", cfg.pause)
	}
	if want := (lagproxy.Link{Down: lagproxy.Delay{Ms: 5, JitterMs: 1}, Up: lagproxy.Delay{Ms: 40, JitterMs: 1}}); cfg.links[3] != want {
		t.Errorf("the asymmetric link: got %v, want %v", cfg.links[3], want)
	}
	if cfg, err = parseFlags([]string{"--quick", "--links", "10,20:2/30"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if cfg.clients != 200 || cfg.starts != 5 || len(cfg.links) != 2 || cfg.links[0] != lagproxy.Symmetric(10, 0) ||
		cfg.links[1] != (lagproxy.Link{Down: lagproxy.Delay{Ms: 20, JitterMs: 2}, Up: lagproxy.Delay{Ms: 30}}) {
		t.Errorf("quick: got clients %d, starts %d, links %v", cfg.clients, cfg.starts, cfg.links)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--starts", "101"}, "1 to 100"},
		{[]string{"--clients", "3"}, "at least one per group"},
		{[]string{"--links", "5:6"}, "more than the delay"},
		{[]string{"--links", "5/x"}, "MS[:JITTER]"},
		{[]string{"--offset-ms", "-1"}, "must not be negative"},
	} {
		if _, err := parseFlags(tc.args, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got error %v, want one saying %q", tc.args, err, tc.want)
		}
	}
}

// TestCPU: the processes' CPU over the starts, and its share of the cores.
func TestCPU(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := cpuSample{at: t0, server: time.Second, self: 0, clients: []time.Duration{2 * time.Second, 3 * time.Second}}
	b := cpuSample{at: t0.Add(10 * time.Second), server: 5 * time.Second, self: time.Second, clients: []time.Duration{4 * time.Second, 6 * time.Second}}
	u := cpuOver(a, b)
	if u.WallS != 10 || u.ServerS != 4 || u.SelfS != 1 || !slices.Equal(u.ClientsS, []float64{2, 3}) {
		t.Fatalf("got %+v, want 10 s of wall, server 4, self 1, clients [2 3]", u)
	}
	var out strings.Builder
	writeCPU(&out, u, 2, 8)
	// 4 + 5 + 1 = 10 core-s of 20: 50 %; the server 500 ms a start, the clients 625.
	for _, want := range []string{"server 4.0 s (500.0 ms a start)", "client processes 2.0 + 3.0 s (625.0 ms a start together)", "50.0% of the cores"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("got %q, want it to say %q", out.String(), want)
		}
	}
}

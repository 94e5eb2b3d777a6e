package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeNode is a tiny stand-in for a Bulb node: it lets players join, accepts their
// WebSockets, sends start frames to every open one on demand and counts what comes back.
type fakeNode struct {
	*httptest.Server
	mu      sync.Mutex
	conns   map[*websocket.Conn]bool
	order   []*websocket.Conn // in the order they connected
	tokens  map[string]bool
	acks    map[uint64]int // seq → acks
	seen    map[uint64]int // seq → seen reports
	sentAt  map[uint64]time.Time
	soonest time.Duration  // the shortest time from a start's send to a seen report of it
	syncs   int            // sync frames
	at      float64        // the reveal instant of the next start, ms after it is sent (0: immediate)
	clocked bool           // answer sync frames, as Bulb does
	answers map[string]int // `n/choice` → answers
	remotes map[string]int // source IP → connections
	changed chan struct{}  // poked on every connection
}

func newFakeNode(tb testing.TB) *fakeNode {
	tb.Helper()
	f := &fakeNode{
		conns: map[*websocket.Conn]bool{}, tokens: map[string]bool{},
		acks: map[uint64]int{}, seen: map[uint64]int{}, sentAt: map[uint64]time.Time{}, answers: map[string]int{}, remotes: map[string]int{},
		changed: make(chan struct{}, 1),
	}
	var handlers sync.WaitGroup
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/rooms/{code}/players", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Name string }
		if r.PathValue("code") != "123456" || json.NewDecoder(r.Body).Decode(&body) != nil || body.Name == "" {
			http.Error(w, `{"error":{"code":"not_found","message":"no"}}`, http.StatusNotFound)
			return
		}
		f.mu.Lock()
		token := fmt.Sprintf("tok-%d", len(f.tokens))
		f.tokens[token] = true
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"playerId":"p-%s","token":%q}`, token, token)
	})
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		f.mu.Lock()
		ok := f.tokens[r.URL.Query().Get("token")]
		f.mu.Unlock()
		if !ok {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		f.mu.Lock()
		f.conns[c] = true
		f.order = append(f.order, c)
		f.remotes[host]++
		f.mu.Unlock()
		f.poke()
		defer func() {
			f.mu.Lock()
			delete(f.conns, c)
			f.mu.Unlock()
			c.CloseNow()
		}()
		for {
			_, data, err := c.Read(r.Context())
			if err != nil {
				return
			}
			t1 := nowMs()
			var m struct {
				Type       string
				Seq        uint64
				N          int
				Choice     int
				T0         float64
				ReceivedAt float64
				RevealedAt float64
			}
			json.Unmarshal(data, &m)
			f.mu.Lock()
			clocked := f.clocked
			switch m.Type {
			case "ack":
				f.acks[m.Seq]++
			case "seen":
				if m.ReceivedAt > 0 && m.RevealedAt >= m.ReceivedAt {
					f.seen[m.Seq]++
				}
				if d := time.Since(f.sentAt[m.Seq]); f.soonest == 0 || d < f.soonest {
					f.soonest = d
				}
			case "sync":
				f.syncs++
			case "answer":
				f.answers[fmt.Sprintf("%d/%d", m.N, m.Choice)]++
			}
			f.mu.Unlock()
			if m.Type == "sync" && clocked {
				c.Write(r.Context(), websocket.MessageText, fmt.Appendf(nil, `{"type":"sync","t0":%f,"t1":%f,"t2":%f}`, m.T0, t1, nowMs()))
			}
			if m.Type == "answer" {
				c.Write(r.Context(), websocket.MessageText, fmt.Appendf(nil, `{"type":"result","n":%d,"accepted":true}`, m.N))
			}
		}
	})
	f.Server = httptest.NewServer(mux)
	tb.Cleanup(func() {
		f.mu.Lock()
		for c := range f.conns {
			c.CloseNow()
		}
		f.mu.Unlock()
		handlers.Wait()
		f.Close()
	})
	return f
}

// nowMs is the fake server's clock, ms since the Unix epoch.
func nowMs() float64 { return float64(time.Now().UnixNano()) / 1e6 }

func (f *fakeNode) poke() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// waitConns waits until n WebSockets are open.
func (f *fakeNode) waitConns(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		got := len(f.conns)
		f.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-f.changed:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			tb.Fatalf("got %d connections within 10 s, want %d", got, n)
		}
	}
}

// start sends a start frame for question n with seq to every open connection, all at
// once.
func (f *fakeNode) start(n int, seq uint64) {
	f.mu.Lock()
	f.sentAt[seq] = time.Now()
	conns := make([]*websocket.Conn, 0, len(f.conns))
	for c := range f.conns {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	msg := fmt.Appendf(nil, `{"type":"start","n":%d,"seq":%d}`, n, seq)
	if f.at > 0 {
		msg = fmt.Appendf(nil, `{"type":"start","n":%d,"seq":%d,"at":%f}`, n, seq, nowMs()+f.at)
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c.Write(ctx, websocket.MessageText, msg)
		})
	}
	wg.Wait()
}

// startInOrder sends the start frame one connection after another, in the order they
// connected, with a pause between: the unfair fan-out Bulb replaces.
func (f *fakeNode) startInOrder(n int, seq uint64, order []*websocket.Conn) {
	msg := fmt.Appendf(nil, `{"type":"start","n":%d,"seq":%d}`, n, seq)
	for _, c := range order {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.Write(ctx, websocket.MessageText, msg)
		cancel()
		time.Sleep(300 * time.Microsecond)
	}
}

// runLoadgen runs the load generator with args in the background; the returned function
// waits for it and decodes its JSON summary.
func runLoadgen(tb testing.TB, args ...string) func() *report {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), append(args, "--json", "--progress", "50ms"), &stdout, &stderr)
	}()
	return func() *report {
		tb.Helper()
		select {
		case err := <-done:
			if err != nil {
				tb.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			tb.Fatal("loadgen did not stop within 30 s")
		}
		if !strings.Contains(stderr.String(), "connected") {
			tb.Errorf("no progress on stderr, got %q", stderr.String())
		}
		var r report
		if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
			tb.Fatalf("decoding the summary %q: %v", stdout.String(), err)
		}
		return &r
	}
}

func TestLoadgenCountsStartsAcksAndAnswers(t *testing.T) {
	const clients, starts = 20, 3
	tests := []struct {
		name    string
		sources []string
		answer  bool
	}{
		{"answers from one source", nil, true},
		{"acks only from two sources", []string{"127.0.0.1", "127.0.0.2"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := newFakeNode(t)
			args := []string{"--url", node.URL, "--room", "123456", "--clients", fmt.Sprint(clients),
				"--rate", "400", "--starts", fmt.Sprint(starts), "--choice", "1", "--grace", "5s"}
			if tt.answer {
				args = append(args, "--reaction-ms", "5,2")
			}
			if tt.sources != nil {
				args = append(args, "--sources", strings.Join(tt.sources, ","))
			}
			wait := runLoadgen(t, args...)
			node.waitConns(t, clients)
			for i := 1; i <= starts; i++ {
				node.start(i, uint64(10+i))
				time.Sleep(30 * time.Millisecond)
			}
			r := wait()

			if r.Connected != clients || r.Failed != 0 || r.Dropped != 0 {
				t.Errorf("got %d connected, %d failed, %d dropped, want %d, 0, 0 (failures %v)", r.Connected, r.Failed, r.Dropped, clients, r.Failures)
			}
			if r.StartsSeen != starts || len(r.Starts) != starts {
				t.Fatalf("got %d starts seen (%d reported), want %d", r.StartsSeen, len(r.Starts), starts)
			}
			for i, s := range r.Starts {
				if s.Seq != uint64(11+i) || s.N != i+1 || s.Receivers != clients {
					t.Errorf("start %d: got seq %d n %d receivers %d, want %d, %d, %d", i, s.Seq, s.N, s.Receivers, 11+i, i+1, clients)
				}
				if s.P50Us < 0 || s.P50Us > s.P99Us || s.P99Us > s.MaxUs || s.SpreadUs != s.MaxUs {
					t.Errorf("start %d: got p50 %d p99 %d max %d spread %d, want 0 ≤ p50 ≤ p99 ≤ max = spread", i, s.P50Us, s.P99Us, s.MaxUs, s.SpreadUs)
				}
			}
			if r.Acks != clients*starts {
				t.Errorf("got %d acks sent, want %d", r.Acks, clients*starts)
			}
			node.mu.Lock()
			defer node.mu.Unlock()
			for i := 1; i <= starts; i++ {
				if got := node.acks[uint64(10+i)]; got != clients {
					t.Errorf("seq %d: server got %d acks, want %d", 10+i, got, clients)
				}
				want := 0
				if tt.answer {
					want = clients
				}
				if got := node.answers[fmt.Sprintf("%d/1", i)]; got != want {
					t.Errorf("question %d: server got %d answers with choice 1, want %d (all: %v)", i, got, want, node.answers)
				}
			}
			if tt.answer && (r.Answers != clients*starts || r.Results != clients*starts) {
				t.Errorf("got %d answers sent and %d results, want %d each", r.Answers, r.Results, clients*starts)
			}
			if len(r.Clients) != clients {
				t.Errorf("got %d clients in the bias table, want %d", len(r.Clients), clients)
			}
			for _, c := range r.Clients {
				if c.Starts != starts || c.MeanPct < 0 || c.MeanPct > 1 {
					t.Errorf("client %s: got %d starts, mean percentile %v, want %d and within [0,1]", c.Name, c.Starts, c.MeanPct, starts)
				}
			}
			if r.Uniformity.Verdict == "" || len(r.Uniformity.Tests) != 4 {
				t.Errorf("got uniformity %+v, want four tests and a verdict", r.Uniformity)
			}
			for _, src := range tt.sources {
				if node.remotes[src] != clients/len(tt.sources) {
					t.Errorf("got %d connections from %s, want %d (all: %v)", node.remotes[src], src, clients/len(tt.sources), node.remotes)
				}
			}
		})
	}
}

// TestLoadgenBehavesLikeThePage: clients sync their clocks, light a start at once or at
// its instant, and report seen after a pause; without a clock they ack when they light;
// with --ack they ack at once and sync nothing.
func TestLoadgenBehavesLikeThePage(t *testing.T) {
	const clients, starts = 12, 3
	tests := []struct {
		name    string
		clocked bool    // the server answers sync frames
		at      float64 // ms from a start's send to its instant; 0: immediate
		ack     bool
		want    string // what the server gets per client and start: ack or seen
	}{
		{"immediate reveal", true, 0, false, "seen"},
		{"synced reveal", true, 80, false, "seen"},
		{"no clock yet: acks when lit", false, 80, false, "ack"},
		{"--ack, the old page", true, 0, true, "ack"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := newFakeNode(t)
			node.clocked, node.at = tt.clocked, tt.at
			args := []string{"--url", node.URL, "--room", "123456", "--clients", fmt.Sprint(clients),
				"--rate", "0", "--starts", fmt.Sprint(starts), "--reaction-ms", "150", "--grace", "5s"}
			if tt.ack {
				args = append(args, "--ack")
			}
			wait := runLoadgen(t, args...)
			node.waitConns(t, clients)
			time.Sleep(300 * time.Millisecond) // the sync burst: 8 samples 30 ms apart
			for i := 1; i <= starts; i++ {
				node.start(i, uint64(i))
				time.Sleep(50 * time.Millisecond)
			}
			r := wait()

			wantAcks, wantSeen := 0, 0
			if tt.want == "ack" {
				wantAcks = clients * starts
			} else {
				wantSeen = clients * starts
			}
			if r.Acks != wantAcks || r.Seen != wantSeen || r.Answers != clients*starts {
				t.Errorf("got %d acks, %d seen, %d answers sent, want %d, %d, %d", r.Acks, r.Seen, r.Answers, wantAcks, wantSeen, clients*starts)
			}
			wantBehaviour := "page"
			if tt.ack {
				wantBehaviour = "ack"
			}
			if r.Behaviour != wantBehaviour || r.Protocol != "bulb" {
				t.Errorf("got behaviour %q, protocol %q, want %q, bulb", r.Behaviour, r.Protocol, wantBehaviour)
			}
			node.mu.Lock()
			defer node.mu.Unlock()
			switch {
			case tt.ack && node.syncs != 0:
				t.Errorf("got %d sync frames, want none", node.syncs)
			case !tt.ack && node.syncs < clients*syncBurst:
				t.Errorf("got %d sync frames, want at least %d", node.syncs, clients*syncBurst)
			}
			for seq := uint64(1); seq <= starts; seq++ {
				if node.acks[seq] != wantAcks/starts || node.seen[seq] != wantSeen/starts {
					t.Errorf("start %d: server got %d acks, %d seen, want %d, %d", seq, node.acks[seq], node.seen[seq], wantAcks/starts, wantSeen/starts)
				}
			}
			if wantSeen > 0 && node.soonest < seenMin {
				t.Errorf("got a seen report %v after its start, want at least %v", node.soonest, seenMin)
			}
			if (r.ClockErrorMs != nil) != (tt.want == "seen") {
				t.Errorf("got clock error %+v, want one only from clients with a synced clock", r.ClockErrorMs)
			}
			for _, s := range r.Starts {
				if (s.Reveal != nil) != (tt.at > 0) {
					t.Fatalf("start %d: got reveal %+v, want one for a synced start only", s.Seq, s.Reveal)
				}
				if s.Reveal == nil {
					continue
				}
				rr := s.Reveal
				if rr.Lit != clients || rr.Late != 0 {
					t.Errorf("start %d: got %d lit, %d late, want %d, 0", s.Seq, rr.Lit, rr.Late, clients)
				}
				if tt.clocked {
					// Lit at the instant on a clock within a fraction of a ms of the
					// server's: not before it, and not long after (a loaded machine's
					// timers can be late).
					if rr.WithClock != clients || rr.P50Us < -1000 || rr.MaxUs > 200_000 {
						t.Errorf("start %d: got reveal %+v, want every client lit at the instant", s.Seq, rr)
					}
				} else if rr.WithClock != 0 {
					t.Errorf("start %d: got %d clients with a clock, want 0", s.Seq, rr.WithClock)
				}
			}
		})
	}
}

// TestLoadgenSeesBias checks that a fan-out in a fixed order gets the verdict "bias",
// and a concurrent one in random order does not.
func TestLoadgenSeesBias(t *testing.T) {
	const clients, starts = 20, 8
	for _, fixed := range []bool{true, false} {
		t.Run(fmt.Sprintf("fixed order %v", fixed), func(t *testing.T) {
			node := newFakeNode(t)
			rng := rand.New(rand.NewPCG(7, 8)) // the random order is seeded: no flaky verdicts
			wait := runLoadgen(t, "--url", node.URL, "--room", "123456", "--clients", fmt.Sprint(clients),
				"--rate", "0", "--starts", fmt.Sprint(starts))
			node.waitConns(t, clients)
			node.mu.Lock()
			order := slices.Clone(node.order)
			node.mu.Unlock()
			for i := 1; i <= starts; i++ {
				if fixed {
					node.startInOrder(i, uint64(i), order)
				} else {
					rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
					node.startInOrder(i, uint64(i), order)
				}
				time.Sleep(20 * time.Millisecond)
			}
			r := wait()
			biased := strings.HasPrefix(r.Uniformity.Verdict, "bias")
			if biased != fixed {
				t.Errorf("got verdict %q, want bias %v (tests %+v)", r.Uniformity.Verdict, fixed, r.Uniformity.Tests)
			}
		})
	}
}

// TestLoadgenDuration checks that --duration ends a run without starts, and that a
// refused join is reported as a failure.
func TestLoadgenDuration(t *testing.T) {
	node := newFakeNode(t)
	start := time.Now()
	r := runLoadgen(t, "--url", node.URL, "--room", "999999", "--clients", "3", "--rate", "0", "--duration", "300ms")()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("run took %v, want about 300 ms", d)
	}
	if r.Connected != 0 || r.Failed != 3 || r.StartsSeen != 0 {
		t.Errorf("got %d connected, %d failed, %d starts, want 0, 3, 0", r.Connected, r.Failed, r.StartsSeen)
	}
	if r.Uniformity.Verdict != "not enough data for a bias test" {
		t.Errorf("got verdict %q, want not enough data", r.Uniformity.Verdict)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--clients", "5"}, "--room is required"},
		{[]string{"--room", "1", "--reaction-ms", "x"}, "--reaction-ms"},
		{[]string{"--room", "1", "--sources", "localhost"}, "not an IP"},
		{[]string{"--room", "1", "--nodes", "http://a:1,ftp://b"}, "want http://host:port"},
		{[]string{"--room", "1", "--protocol", "mqtt"}, "want bulb or centrifuge"},
		{[]string{"--room", "1", "--protocol", "centrifuge", "--reaction-ms", "300"}, "takes no answers"},
		{[]string{"--room", "1", "--reaction-ms", "50,20", "--nodes", "http://a:1/,http://b:2"}, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			cfg, err := parseFlags(tt.args, &bytes.Buffer{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				if cfg.reactionMean != 50*time.Millisecond || cfg.reactionJitter != 20*time.Millisecond || !cfg.answer {
					t.Errorf("got reaction %v,%v answer %v, want 50ms,20ms true", cfg.reactionMean, cfg.reactionJitter, cfg.answer)
				}
				if len(cfg.nodes) != 2 || cfg.nodes[0] != "http://a:1" {
					t.Errorf("got nodes %q, want [http://a:1 http://b:2]", cfg.nodes)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/bulbquiz/bulb/hub"
	"github.com/bulbquiz/bulb/protocol"
)

// testTimeout bounds every wait in these tests; nothing should come near it.
const testTimeout = 10 * time.Second

// welcome is what the test handler sends from Open: once a client has read it, the hub
// has registered the connection.
const welcome = `{"type":"welcome"}`

// frameLog is the Handler of the test server: it answers Open with a welcome and records
// every connection it opens and every frame it is given.
type frameLog struct {
	mu     sync.Mutex
	frames []gotFrame
	conns  map[string]*hub.Conn // by player ID, the latest
}

type gotFrame struct {
	player string
	frame  protocol.ClientFrame
}

func (l *frameLog) Open(_ context.Context, c *hub.Conn) {
	l.mu.Lock()
	if l.conns == nil {
		l.conns = map[string]*hub.Conn{}
	}
	l.conns[c.Client().ID] = c
	l.mu.Unlock()
	c.Send([]byte(welcome))
}

func (l *frameLog) Frame(_ context.Context, c *hub.Conn, f protocol.ClientFrame, _ time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.frames = append(l.frames, gotFrame{c.Client().ID, f})
}

// conn returns the player's latest connection.
func (l *frameLog) conn(player string) *hub.Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[player]
}

func (l *frameLog) snapshot() []gotFrame {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.frames)
}

// testServer is a hub behind a real HTTP server. Clients say who they are in the query:
// ?room=R&id=P&role=host.
type testServer struct {
	h      *hub.Hub
	url    string
	reg    *prometheus.Registry
	frames *frameLog
	srv    *httptest.Server

	handlers sync.WaitGroup // HTTP handler calls under way
	upgraded atomic.Int64   // WebSocket handshakes done
	mu       sync.Mutex
	served   []error // what each finished Serve call returned
}

// MustServer starts a hub and its HTTP server, stopped when the test ends.
func MustServer(tb testing.TB, opts hub.Options) *testServer {
	tb.Helper()
	ts, stop := newServer(tb, opts)
	tb.Cleanup(stop)
	return ts
}

// newServer starts a hub and its HTTP server; stop shuts the hub down, closes the server
// and waits for every handler to return.
func newServer(tb testing.TB, opts hub.Options) (*testServer, func()) {
	tb.Helper()
	return newServerBuf(tb, opts, 0)
}

// newServerBuf is newServer with the send buffer of every accepted socket fixed at sndbuf
// bytes (0: the system's, autotuned).
func newServerBuf(tb testing.TB, opts hub.Options, sndbuf int) (*testServer, func()) {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ts := &testServer{reg: prometheus.NewRegistry(), frames: &frameLog{}}
	opts.Metrics = hub.NewMetrics()
	if err := opts.Metrics.Register(ts.reg); err != nil {
		tb.Fatalf("register metrics: got %v, want nil", err)
	}
	ts.h = hub.New(opts)
	ts.srv = httptest.NewUnstartedServer(http.HandlerFunc(ts.serveWS))
	if sndbuf > 0 {
		ts.srv.Listener = sndbufListener{ts.srv.Listener, sndbuf}
	}
	ts.srv.Start()
	ts.url = "ws" + strings.TrimPrefix(ts.srv.URL, "http")
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := ts.h.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: got %v, want nil", err)
		}
		ts.srv.Close() // returns once every connection is hijacked or closed
		ts.handlers.Wait()
	}
	return ts, stop
}

type sndbufListener struct {
	net.Listener
	size int
}

func (l sndbufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(l.size)
	}
	return c, err
}

func (ts *testServer) serveWS(w http.ResponseWriter, r *http.Request) {
	ts.handlers.Add(1)
	defer ts.handlers.Done()
	ws, err := hub.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	ts.upgraded.Add(1)
	q := r.URL.Query()
	client := hub.Client{Room: q.Get("room"), ID: q.Get("id"), Name: "name-" + q.Get("id"), Role: hub.Player}
	if q.Get("role") == "host" {
		client.Role, client.ID = hub.Host, ""
	}
	err = ts.h.Serve(r.Context(), ws, client, ts.frames)
	ts.mu.Lock()
	ts.served = append(ts.served, err)
	ts.mu.Unlock()
}

// servedErrs returns what the Serve calls that have finished returned.
func (ts *testServer) servedErrs() []error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return slices.Clone(ts.served)
}

// dropped sums the hub's bulb_hub_dropped_total for reason ("" for every reason).
func (ts *testServer) dropped(tb testing.TB, reason string) float64 {
	tb.Helper()
	mfs, err := ts.reg.Gather()
	if err != nil {
		tb.Fatalf("gather metrics: got %v, want nil", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "bulb_hub_dropped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && (reason == "" || l.GetValue() == reason) {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

func (ts *testServer) dial(ctx context.Context, room, id string, role hub.Role) (*websocket.Conn, error) {
	return ts.dialBuf(ctx, room, id, role, 0)
}

// dialBuf is dial with the client socket's receive buffer fixed at rcvbuf bytes (0: the
// system's, autotuned).
func (ts *testServer) dialBuf(ctx context.Context, room, id string, role hub.Role, rcvbuf int) (*websocket.Conn, error) {
	q := url.Values{"room": {room}, "id": {id}}
	if role == hub.Host {
		q.Set("role", "host")
	}
	opts := &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled}
	if rcvbuf > 0 {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := new(net.Dialer).DialContext(ctx, network, addr)
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetReadBuffer(rcvbuf)
				}
				return c, err
			},
		}}
	}
	ws, _, err := websocket.Dial(ctx, ts.url+"/?"+q.Encode(), opts)
	if err != nil {
		return nil, fmt.Errorf("dial %s/%s: %w", room, id, err)
	}
	return ws, nil
}

// MustDialRaw connects a client without reading anything; it is closed when the test ends.
func MustDialRaw(tb testing.TB, ts *testServer, room, id string, role hub.Role) *websocket.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ws, err := ts.dial(ctx, room, id, role)
	if err != nil {
		tb.Fatalf("got %v, want nil", err)
	}
	tb.Cleanup(func() { ws.CloseNow() })
	return ws
}

// MustDial connects a client, reads its welcome (so the hub has registered it) and keeps
// reading in the background.
func MustDial(tb testing.TB, ts *testServer, room, id string, role hub.Role) *reader {
	tb.Helper()
	r := newReader(MustDialRaw(tb, ts, room, id, role))
	MustFrame(tb, r, welcome)
	return r
}

// MustDialMany connects n clients with IDs prefix000, prefix001, … like MustDial.
func MustDialMany(tb testing.TB, ts *testServer, room, prefix string, n int, role hub.Role) []*reader {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	out := make([]*reader, n)
	var g errgroup.Group
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error {
			ws, err := ts.dial(ctx, room, fmt.Sprintf("%s%03d", prefix, i), role)
			if err != nil {
				return err
			}
			out[i] = newReader(ws)
			f, err := out[i].next(testTimeout)
			if err != nil || f.data != welcome {
				return fmt.Errorf("client %d: first frame: got %q, %v, want %s", i, f.data, err, welcome)
			}
			return nil
		})
	}
	err := g.Wait()
	for _, r := range out {
		if r != nil {
			tb.Cleanup(func() { r.ws.CloseNow() })
		}
	}
	if err != nil {
		tb.Fatalf("got %v, want nil", err)
	}
	return out
}

// reader reads a client's frames in the background, noting when each arrived.
type reader struct {
	ws     *websocket.Conn
	frames chan frame
	done   chan struct{}
	err    error // why reading stopped; read after done is closed
}

type frame struct {
	data string
	at   time.Time
}

func newReader(ws *websocket.Conn) *reader {
	r := &reader{ws: ws, frames: make(chan frame, 4096), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			typ, data, err := ws.Read(context.Background())
			at := time.Now()
			if err != nil {
				r.err = err
				return
			}
			if typ != websocket.MessageText {
				r.err = fmt.Errorf("got a %v frame, want text", typ)
				return
			}
			r.frames <- frame{string(data), at}
		}
	}()
	return r
}

// next returns the next frame, or an error if none comes within timeout.
func (r *reader) next(timeout time.Duration) (frame, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case f := <-r.frames:
		return f, nil
	case <-t.C:
		return frame{}, fmt.Errorf("no frame within %v", timeout)
	case <-r.done:
		select {
		case f := <-r.frames:
			return f, nil
		default:
			return frame{}, fmt.Errorf("connection ended: %w", r.err)
		}
	}
}

// closed waits until the connection ends, after any frames still to read, and returns
// why it ended.
func (r *reader) closed(timeout time.Duration) (frames []string, err error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case f := <-r.frames:
			frames = append(frames, f.data)
		case <-r.done:
			for {
				select {
				case f := <-r.frames:
					frames = append(frames, f.data)
				default:
					return frames, r.err
				}
			}
		case <-t.C:
			return frames, fmt.Errorf("connection still open after %v", timeout)
		}
	}
}

func (r *reader) write(tb testing.TB, s string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := r.ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		tb.Fatalf("write %s: got %v, want nil", s, err)
	}
}

// MustFrame reads the next frame and fails unless it is want.
func MustFrame(tb testing.TB, r *reader, want string) frame {
	tb.Helper()
	f, err := r.next(testTimeout)
	if err != nil {
		tb.Fatalf("next frame: got %v, want %s", err, want)
	}
	if f.data != want {
		tb.Fatalf("next frame: got %s, want %s", f.data, want)
	}
	return f
}

// MustClose waits for the connection to end and fails unless it ended with close status
// want.
func MustClose(tb testing.TB, r *reader, want websocket.StatusCode) []string {
	tb.Helper()
	frames, err := r.closed(testTimeout)
	if got := websocket.CloseStatus(err); got != want {
		tb.Fatalf("close status: got %v (%v), want %v", got, err, want)
	}
	return frames
}

// nextAll reads the next frame of every client concurrently.
func nextAll(rs []*reader, timeout time.Duration) ([]frame, error) {
	out := make([]frame, len(rs))
	var g errgroup.Group
	for i, r := range rs {
		g.Go(func() error {
			f, err := r.next(timeout)
			if err != nil {
				return fmt.Errorf("client %d: %w", i, err)
			}
			out[i] = f
			return nil
		})
	}
	return out, g.Wait()
}

// MustPoll calls cond until it returns "" or the deadline passes; then it fails with
// cond's last complaint.
func MustPoll(tb testing.TB, timeout time.Duration, cond func() string) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: %s", timeout, msg)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// MustLatest returns the room's newest start in Fairness, once cond accepts it.
func MustLatest(tb testing.TB, ts *testServer, room string, cond func(hub.StartStats) string) hub.StartStats {
	tb.Helper()
	var st hub.StartStats
	MustPoll(tb, testTimeout, func() string {
		rep := ts.h.Fairness(room, 0)
		if len(rep.Starts) == 0 {
			return "got no starts in Fairness, want at least one"
		}
		st = rep.Starts[0]
		return cond(st)
	})
	return st
}

func startFrame(n int, seq uint64) string {
	return fmt.Sprintf(`{"type":"start","n":%d,"seq":%d}`, n, seq)
}

func TestStartReachesEveryPlayerOnce(t *testing.T) {
	tests := []struct {
		name                   string
		players, others, hosts int
	}{
		{"200 players, 2 hosts, another room", 200, 5, 2},
		{"one player", 1, 0, 0},
		{"hosts only", 0, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := MustServer(t, hub.Options{})
			players := MustDialMany(t, ts, "a", "p", tt.players, hub.Player)
			hosts := MustDialMany(t, ts, "a", "h", tt.hosts, hub.Host)
			others := MustDialMany(t, ts, "b", "q", tt.others, hub.Player)

			seq, recipients, err := ts.h.Start(context.Background(), "a", 3, time.Time{})
			if err != nil {
				t.Fatalf("Start: got %v, want nil", err)
			}
			if recipients != tt.players {
				t.Errorf("recipients: got %d, want %d", recipients, tt.players)
			}
			// A marker after the start: the frame after the start must be the marker, so
			// no one got the start twice, and the other room's first frame must be it too.
			const marker = `{"type":"marker"}`
			ts.h.Send("a", []byte(marker))
			ts.h.Send("b", []byte(marker))

			want := startFrame(3, seq)
			for _, who := range []struct {
				name  string
				rs    []*reader
				wants []string
			}{
				{"player", players, []string{want, marker}},
				{"host", hosts, []string{want, marker}},
				{"other room's player", others, []string{marker}},
			} {
				for _, w := range who.wants {
					fs, err := nextAll(who.rs, testTimeout)
					if err != nil {
						t.Fatalf("%s: got %v, want %s", who.name, err, w)
					}
					for i, f := range fs {
						if f.data != w {
							t.Errorf("%s %d: got %s, want %s", who.name, i, f.data, w)
						}
					}
				}
			}

			st := MustLatest(t, ts, "a", func(st hub.StartStats) string { return "" })
			if st.Seq != seq || st.N != 3 || st.Recipients != tt.players || len(st.Players) != tt.players {
				t.Errorf("fairness: got seq %d n %d recipients %d players %d, want %d 3 %d %d",
					st.Seq, st.N, st.Recipients, len(st.Players), seq, tt.players, tt.players)
			}
			seen := map[string]bool{}
			for _, p := range st.Players {
				if !strings.HasPrefix(p.PlayerID, "p") || seen[p.PlayerID] {
					t.Errorf("fairness player: got %q (seen before: %v), want each of p000… once", p.PlayerID, seen[p.PlayerID])
				}
				seen[p.PlayerID] = true
			}
		})
	}
}

func TestStartSeqIncreases(t *testing.T) {
	ts := MustServer(t, hub.Options{})
	r := MustDial(t, ts, "a", "p1", hub.Player)
	var last uint64
	for n := 1; n <= 3; n++ {
		seq, _, err := ts.h.Start(context.Background(), "a", n, time.Time{})
		if err != nil || seq <= last {
			t.Fatalf("Start %d: got seq %d, %v, want > %d, nil", n, seq, err, last)
		}
		last = seq
		MustFrame(t, r, startFrame(n, seq))
	}
}

func TestStartCanceled(t *testing.T) {
	ts := MustServer(t, hub.Options{Shards: 2})
	MustDialMany(t, ts, "a", "p", 10, hub.Player)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, recipients, err := ts.h.Start(ctx, "a", 1, time.Time{})
	if !errors.Is(err, context.Canceled) || recipients != 0 {
		t.Fatalf("Start with a canceled context: got %d, %v, want 0, %v", recipients, err, context.Canceled)
	}
	st := MustLatest(t, ts, "a", func(hub.StartStats) string { return "" })
	if st.Recipients != 0 || st.Dropped != 10 {
		t.Errorf("recipients, dropped: got %d, %d, want 0, 10", st.Recipients, st.Dropped)
	}
	for _, p := range st.Players {
		if p.PlayerID == "" || !p.Dropped {
			t.Errorf("player: got id %q dropped %v, want an id and dropped", p.PlayerID, p.Dropped)
		}
	}
}

func TestAcksRecorded(t *testing.T) {
	const n = 20
	ts := MustServer(t, hub.Options{})
	rs := MustDialMany(t, ts, "a", "p", n, hub.Player)
	seq, _, err := ts.h.Start(context.Background(), "a", 1, time.Time{})
	if err != nil {
		t.Fatalf("Start: got %v, want nil", err)
	}
	acking := map[string]bool{}
	for i, r := range rs {
		MustFrame(t, r, startFrame(1, seq))
		if i%2 == 0 { // every other player acks
			acking[fmt.Sprintf("p%03d", i)] = true
			r.write(t, fmt.Sprintf(`{"type":"ack","seq":%d}`, seq))
		}
	}
	// An ack for a start that is not the latest is ignored; the frame after it tells when
	// the hub has read it.
	rs[1].write(t, fmt.Sprintf(`{"type":"ack","seq":%d}`, seq+100))
	rs[1].write(t, `{"type":"answer","n":7}`)
	MustPoll(t, testTimeout, func() string {
		if got := ts.frames.snapshot(); len(got) != 1 || got[0].frame.N != 7 {
			return fmt.Sprintf("handler frames: got %d, want only the answer: acks are the hub's", len(got))
		}
		return ""
	})

	st := MustLatest(t, ts, "a", func(st hub.StartStats) string {
		written := 0
		for _, p := range st.Players {
			if p.WrittenUs != nil {
				written++
			}
		}
		if st.Acked != len(acking) || written != n {
			return fmt.Sprintf("acked, written: got %d, %d, want %d, %d", st.Acked, written, len(acking), n)
		}
		return ""
	})
	if st.Seq != seq || st.Recipients != n || st.Dropped != 0 {
		t.Errorf("seq, recipients, dropped: got %d, %d, %d, want %d, %d, 0", st.Seq, st.Recipients, st.Dropped, seq, n)
	}
	var orders []int
	for _, p := range st.Players {
		orders = append(orders, p.Order)
		if got, want := p.AckUs != nil, acking[p.PlayerID]; got != want {
			t.Errorf("player %s: got ackUs set %v, want %v", p.PlayerID, got, want)
		}
		if p.AckUs != nil && *p.AckUs <= 0 {
			t.Errorf("player %s: got ackUs %d, want > 0", p.PlayerID, *p.AckUs)
		}
		if p.WrittenUs == nil || *p.WrittenUs < p.EnqueueUs {
			t.Errorf("player %s: got writtenUs %v, enqueueUs %d, want writtenUs ≥ enqueueUs", p.PlayerID, p.WrittenUs, p.EnqueueUs)
		}
	}
	slices.Sort(orders)
	for i, o := range orders {
		if o != i {
			t.Fatalf("sorted orders: got %v, want 0..%d", orders, n-1)
		}
	}
	if q := st.AckUs; q.P50 <= 0 || q.P50 > q.P99 || q.P99 > q.Max {
		t.Errorf("ackUs quantiles: got %+v, want 0 < p50 ≤ p99 ≤ max", q)
	}
	if q := st.WrittenUs; q.P50 > q.P99 || q.P99 > q.Max || st.SpreadUs > q.Max {
		t.Errorf("writtenUs quantiles: got %+v spread %d, want p50 ≤ p99 ≤ max, spread ≤ max", q, st.SpreadUs)
	}
	if got := ts.frames.snapshot(); len(got) != 1 {
		t.Errorf("handler frames: got %d, want only the answer: acks are the hub's", len(got))
	}
}

// binomTail returns P(X ≥ k) for X ~ Binomial(n, p).
func binomTail(n int, p float64, k int) float64 {
	var sum float64
	for i := k; i <= n; i++ {
		lg := func(x int) float64 { v, _ := math.Lgamma(float64(x + 1)); return v }
		sum += math.Exp(lg(n) - lg(i) - lg(n-i) + float64(i)*math.Log(p) + float64(n-i)*math.Log1p(-p))
	}
	return sum
}

// binomBound returns the smallest k with m·P(X ≥ k) ≤ alpha for X ~ Binomial(n, p): if m
// such counts are each Binomial(n, p), the chance that any reaches k is at most alpha.
func binomBound(m, n int, p, alpha float64) int {
	k := 0
	for float64(m)*binomTail(n, p, k) > alpha {
		k++
	}
	return k
}

func TestStartOrderIsRandom(t *testing.T) {
	const players, starts = 10, 40
	ts := MustServer(t, hub.Options{})
	rs := MustDialMany(t, ts, "a", "p", players, hub.Player)
	for n := 1; n <= starts; n++ {
		seq, _, err := ts.h.Start(context.Background(), "a", n, time.Time{})
		if err != nil {
			t.Fatalf("Start: got %v, want nil", err)
		}
		fs, err := nextAll(rs, testTimeout)
		if err != nil {
			t.Fatalf("start %d: got %v, want every player to receive it", n, err)
		}
		for i, f := range fs {
			if f.data != startFrame(n, seq) {
				t.Fatalf("player %d: got %s, want %s", i, f.data, startFrame(n, seq))
			}
		}
	}
	rep := ts.h.Fairness("a", 0)
	if len(rep.Starts) != starts {
		t.Fatalf("starts in Fairness: got %d, want %d", len(rep.Starts), starts)
	}

	// Under a uniformly random order, (a) any player is first with chance 1/10 per start;
	// (b) the count of any (player, position) cell over the starts is Binomial(40, 1/10);
	// (c) the count of any ordered pair (a directly before b) is Binomial(40, 1/10) too;
	// (d) a player's mean position is the mean of 40 uniform draws from 0..9.
	// Each bound below is set so that a fair shuffle fails it with chance below 1e-7
	// (union bound over cells/pairs/players); all together the false-failure chance is
	// below 1e-6. A sorted or fixed order fails (a) and (b) (a cell count of 40); Go's
	// map order, a rotation of a near-fixed sequence, fails (c) (a pair ~36 times).
	cell := map[[2]int]int{} // player, position → starts
	pair := map[[2]int]int{} // player, next player → starts
	first := map[int]bool{}
	sum := make([]int, players)
	for _, st := range rep.Starts {
		at := make([]int, players) // position → player
		for _, p := range st.Players {
			var id int
			if _, err := fmt.Sscanf(p.PlayerID, "p%03d", &id); err != nil {
				t.Fatalf("player id %q: %v", p.PlayerID, err)
			}
			at[p.Order] = id
			cell[[2]int{id, p.Order}]++
			sum[id] += p.Order
		}
		first[at[0]] = true
		for k := 1; k < players; k++ {
			pair[[2]int{at[k-1], at[k]}]++
		}
	}
	// (a) P(one player first every time) = 10·10⁻⁴⁰.
	if len(first) < 2 {
		t.Errorf("players ever first: got %d, want more than 1", len(first))
	}
	// (b)
	maxCell := binomBound(players*players, starts, 1.0/players, 1e-7) - 1
	for k, c := range cell {
		if c > maxCell {
			t.Errorf("player %d at position %d: got %d of %d starts, want ≤ %d", k[0], k[1], c, starts, maxCell)
		}
	}
	// (c)
	maxPair := binomBound(players*(players-1), starts, 1.0/players, 1e-7) - 1
	for k, c := range pair {
		if c > maxPair {
			t.Errorf("player %d right before %d: got %d of %d starts, want ≤ %d", k[0], k[1], c, starts, maxPair)
		}
	}
	// (d) Chernoff: P(sum of 40 uniform{0..9} ≤ 40) ≤ (e·Σₖe⁻ᵏ/10)⁴⁰ < 3e-15, and the same
	// for ≥ 320 by symmetry; over 10 players and both sides below 1e-13.
	for id, s := range sum {
		if mean := float64(s) / starts; mean <= 1 || mean >= 8 {
			t.Errorf("player %d mean position: got %.2f, want in (1, 8)", id, mean)
		}
	}
	t.Logf("bounds: cell ≤ %d, pair ≤ %d; players ever first: %d", maxCell, maxPair, len(first))
	for _, b := range rep.Bias {
		if b.Starts != starts {
			t.Errorf("bias of %s: got %d starts, want %d", b.PlayerID, b.Starts, starts)
		}
	}
}

func TestSlowClientDoesNotDelayOthers(t *testing.T) {
	const others, writeTimeout = 50, 2 * time.Second
	ts := MustServer(t, hub.Options{QueueSize: 16, WriteTimeout: writeTimeout})
	rs := MustDialMany(t, ts, "a", "p", others, hub.Player)
	MustDialRaw(t, ts, "a", "slow", hub.Player) // never reads, not even the welcome
	MustPoll(t, testTimeout, func() string {
		if !connected(t, ts, "a", "slow") {
			return "slow client: got not connected, want connected"
		}
		return ""
	})

	// Flood the slow client with 32 KiB frames, in small batches so its writer keeps up
	// until the TCP buffers are full; then its queue fills and it is dropped.
	big := []byte(`{"type":"fill","pad":"` + strings.Repeat("x", 32<<10-24) + `"}`)
	sent := 0
	MustPoll(t, testTimeout, func() string {
		if ts.dropped(t, "") > 0 {
			return ""
		}
		for range 8 {
			ts.h.SendPlayer("a", "slow", big)
			sent++
		}
		time.Sleep(time.Millisecond)
		return fmt.Sprintf("slow client: got not dropped after %d frames of %d bytes, want dropped", sent, len(big))
	})
	t.Logf("slow client dropped after %d frames (%d MiB)", sent, sent*len(big)>>20)
	if got := ts.dropped(t, "queue_full"); got != 1 {
		t.Errorf("dropped{reason=queue_full}: got %v, want 1", got)
	}

	// Its writer is still stuck in a write for up to writeTimeout: the others must not wait.
	before := time.Now()
	seq, recipients, err := ts.h.Start(context.Background(), "a", 1, time.Time{})
	if err != nil || recipients != others {
		t.Fatalf("Start: got %d recipients, %v, want %d, nil", recipients, err, others)
	}
	fs, err := nextAll(rs, writeTimeout/2)
	if err != nil {
		t.Fatalf("others: got %v, want each to receive the start within %v", err, writeTimeout/2)
	}
	var latest time.Duration
	for i, f := range fs {
		if f.data != startFrame(1, seq) {
			t.Errorf("player %d: got %s, want %s", i, f.data, startFrame(1, seq))
		}
		latest = max(latest, f.at.Sub(before))
	}
	t.Logf("last of %d others got the start %v after Start was called", others, latest)

	st := MustLatest(t, ts, "a", func(hub.StartStats) string { return "" })
	if st.Recipients != others || st.Dropped != 1 {
		t.Errorf("fairness recipients, dropped: got %d, %d, want %d, 1", st.Recipients, st.Dropped, others)
	}
	for _, p := range st.Players {
		if got, want := p.Dropped, p.PlayerID == "slow"; got != want {
			t.Errorf("player %s: got dropped %v, want %v", p.PlayerID, got, want)
		}
	}
	// Its write times out and the hub lets go of it.
	MustPoll(t, writeTimeout+testTimeout, func() string {
		if connected(t, ts, "a", "slow") {
			return "slow client: got still connected, want closed"
		}
		return ""
	})
}

func TestUnresponsiveClientClosedWithPolicyViolation(t *testing.T) {
	ts := MustServer(t, hub.Options{PingInterval: 20 * time.Millisecond, PingTimeout: 100 * time.Millisecond})
	ws := MustDialRaw(t, ts, "a", "p1", hub.Player) // does not read, so answers no pings
	MustPoll(t, testTimeout, func() string {
		if got := ts.dropped(t, "ping_timeout"); got != 1 {
			return fmt.Sprintf("dropped{reason=ping_timeout}: got %v, want 1", got)
		}
		return ""
	})
	frames := MustClose(t, newReader(ws), websocket.StatusPolicyViolation)
	if len(frames) != 1 || frames[0] != welcome {
		t.Errorf("frames before the close: got %q, want [%s]", frames, welcome)
	}
}

// mustSmallBuffers starts a server whose sockets have sockbuf-byte send buffers and
// connects player p1 of room a through a socket with the same receive buffer, so that
// the kernel holds little of what the client does not read.
func mustSmallBuffers(t *testing.T, opts hub.Options, sockbuf int) (*testServer, *websocket.Conn) {
	t.Helper()
	ts, stop := newServerBuf(t, opts, sockbuf)
	t.Cleanup(stop)
	// The dial's context lives as long as the test: net/http closes an upgraded
	// connection when its request's context ends.
	ws, err := ts.dialBuf(t.Context(), "a", "p1", hub.Player, sockbuf)
	if err != nil {
		t.Fatalf("dial: got %v, want nil", err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	MustPoll(t, testTimeout, func() string {
		if !connected(t, ts, "a", "p1") {
			return "got not connected, want connected"
		}
		return ""
	})
	return ts, ws
}

func TestStartNotStuckBehindBacklog(t *testing.T) {
	const backlog, sockbuf = 1000, 32 << 10
	// Both sockets' buffers are fixed small, so the kernel holds only a few dozen 8 KiB
	// frames whatever the system's TCP memory settings (autotuned, it takes ~4 MiB here).
	ts, ws := mustSmallBuffers(t, hub.Options{QueueSize: 2 * backlog, WriteTimeout: testTimeout}, sockbuf)
	// The client reads nothing while the backlog is queued, so all but what the TCP
	// buffers hold is still waiting in the hub's queue at the start.
	pad := strings.Repeat("x", 8<<10)
	for i := range backlog {
		ts.h.SendPlayer("a", "p1", fmt.Appendf(nil, `{"type":"fill","i":%d,"pad":"%s"}`, i, pad))
	}
	seq, _, err := ts.h.Start(context.Background(), "a", 1, time.Time{})
	if err != nil {
		t.Fatalf("Start: got %v, want nil", err)
	}
	r := newReader(ws)
	MustFrame(t, r, welcome)
	pos, next := -1, 0
	for k := 0; k < backlog+1; k++ {
		f, err := r.next(testTimeout)
		if err != nil {
			t.Fatalf("frame %d: got %v, want a frame", k, err)
		}
		if f.data == startFrame(1, seq) {
			pos = k
			continue
		}
		num, _, _ := strings.Cut(strings.TrimPrefix(f.data, `{"type":"fill","i":`), ",")
		if i, err := strconv.Atoi(num); err != nil || i != next {
			t.Fatalf("frame %d: got %.40s…, want fill %d", k, f.data, next)
		}
		next++
	}
	if pos < 0 || pos >= backlog/2 {
		t.Fatalf("start's position among %d backlog frames: got %d, want < %d", backlog, pos, backlog/2)
	}
	t.Logf("start arrived as frame %d of %d", pos, backlog+1)
}

// TestHungWriteCutOff: a write that cannot finish (the client reads nothing and the
// socket buffers are full) is cut off by the watchdog once it has taken the write timeout,
// never sooner, and the client is dropped with reason write_failed, though its queue
// still has room.
func TestHungWriteCutOff(t *testing.T) {
	const writeTimeout, sockbuf, frames = 400 * time.Millisecond, 32 << 10, 200
	ts, _ := mustSmallBuffers(t, hub.Options{QueueSize: 2 * frames, WriteTimeout: writeTimeout}, sockbuf)
	pad := strings.Repeat("x", 8<<10) // 200 frames of 8 KiB: far more than the buffers hold
	sent := time.Now()
	for i := range frames {
		ts.h.SendPlayer("a", "p1", fmt.Appendf(nil, `{"type":"fill","i":%d,"pad":"%s"}`, i, pad))
	}
	MustPoll(t, testTimeout, func() string {
		if got := ts.dropped(t, "write_failed"); got != 1 {
			return fmt.Sprintf("dropped{reason=write_failed}: got %v, want 1", got)
		}
		return ""
	})
	took := time.Since(sent)
	if took < writeTimeout {
		t.Errorf("write cut off %v after the frames were queued, want no sooner than the write timeout %v", took, writeTimeout)
	}
	if got := ts.dropped(t, "queue_full"); got != 0 {
		t.Errorf("dropped{reason=queue_full}: got %v, want 0", got)
	}
	t.Logf("write cut off %v after the frames were queued (timeout %v, sweeps every %v)", took, writeTimeout, writeTimeout/4)
}

func TestReplaced(t *testing.T) {
	ts := MustServer(t, hub.Options{})
	old := MustDial(t, ts, "a", "p1", hub.Player)
	cur := MustDial(t, ts, "a", "p1", hub.Player)
	MustClose(t, old, protocol.CloseReplaced)

	ts.h.SendPlayer("a", "p1", []byte(`{"type":"hello"}`))
	MustFrame(t, cur, `{"type":"hello"}`)
	seq, recipients, err := ts.h.Start(context.Background(), "a", 1, time.Time{})
	if err != nil || recipients != 1 {
		t.Fatalf("Start: got %d, %v, want 1, nil", recipients, err)
	}
	MustFrame(t, cur, startFrame(1, seq))
	// The old connection's end must not unregister the new one.
	MustPoll(t, testTimeout, func() string {
		if n := len(ts.servedErrs()); n != 1 {
			return fmt.Sprintf("Serve calls returned: got %d, want 1", n)
		}
		return ""
	})
	if !connected(t, ts, "a", "p1") {
		t.Errorf("p1 connected: got false, want true")
	}
}

func TestBadFrames(t *testing.T) {
	tests := []struct {
		name      string
		send      func(tb testing.TB, r *reader)
		wantFrame string // the error frame's code, "" if none
		wantClose websocket.StatusCode
		wantDrop  string // the reason of the drop in the metrics, with wantClose
	}{
		{"binary", func(tb testing.TB, r *reader) {
			if err := r.ws.Write(context.Background(), websocket.MessageBinary, []byte(`{"type":"answer"}`)); err != nil {
				tb.Fatalf("write: got %v, want nil", err)
			}
		}, "invalid", 0, ""},
		{"over the read limit", func(tb testing.TB, r *reader) {
			if err := r.ws.Write(context.Background(), websocket.MessageText, bytes.Repeat([]byte("x"), protocol.MaxFrame+1)); err != nil {
				tb.Fatalf("write: got %v, want nil", err)
			}
		}, "", websocket.StatusMessageTooBig, "too_big"},
		// RFC 6455: invalid UTF-8 in a text frame fails the connection with 1007.
		{"text not UTF-8", func(tb testing.TB, r *reader) {
			r.write(tb, "{\"type\":\"answer\",\"n\":1,\"text\":\"\xff\xfe\"}")
		}, "", websocket.StatusInvalidFramePayloadData, "invalid_utf8"},
		{"text with an overlong encoding", func(tb testing.TB, r *reader) {
			r.write(tb, "{\"type\":\"answer\",\"n\":1,\"text\":\"\xc0\xaf\"}")
		}, "", websocket.StatusInvalidFramePayloadData, "invalid_utf8"},
		{"text with a surrogate", func(tb testing.TB, r *reader) {
			r.write(tb, "{\"type\":\"answer\",\"n\":1,\"text\":\"\xed\xa0\x80\"}")
		}, "", websocket.StatusInvalidFramePayloadData, "invalid_utf8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := MustServer(t, hub.Options{})
			r := MustDial(t, ts, "a", "p1", hub.Player)
			tt.send(t, r)
			if tt.wantClose != 0 {
				MustClose(t, r, tt.wantClose)
				// The library sends a 1009 close before the hub's Read returns: poll.
				MustPoll(t, testTimeout, func() string {
					if got := ts.dropped(t, tt.wantDrop); got != 1 {
						return fmt.Sprintf("dropped{reason=%s}: got %v, want 1", tt.wantDrop, got)
					}
					return ""
				})
				if got := ts.frames.snapshot(); len(got) != 0 {
					t.Errorf("handler frames: got %v, want none", got)
				}
				return
			}
			f, err := r.next(testTimeout)
			if err != nil {
				t.Fatalf("reply: got %v, want an error frame", err)
			}
			var e struct{ Type, Code, Message string }
			if err := json.Unmarshal([]byte(f.data), &e); err != nil || e.Type != "error" || e.Code != tt.wantFrame || e.Message == "" {
				t.Fatalf("reply: got %s, want an error frame with code %q", f.data, tt.wantFrame)
			}
			// Still open both ways.
			r.write(t, `{"type":"answer","n":3}`)
			MustPoll(t, testTimeout, func() string {
				if got := ts.frames.snapshot(); len(got) != 1 || got[0].frame.N != 3 {
					return fmt.Sprintf("handler frames: got %d, want the one answer", len(got))
				}
				return ""
			})
			ts.h.SendPlayer("a", "p1", []byte(`{"type":"still"}`))
			MustFrame(t, r, `{"type":"still"}`)
		})
	}
}

// handled counts the handler's frames from one player.
func (l *frameLog) handled(player string) int {
	n := 0
	for _, f := range l.snapshot() {
		if f.player == player {
			n++
		}
	}
	return n
}

// TestFrameRate: a client may send FrameBurst frames at once and then FrameRate a second,
// all handled; past that its frames are refused unread, the first three in a row with a
// rate_limited error frame; a client that keeps sending is dropped with 1008 (reason
// flood), and another client of the same room is served throughout.
func TestFrameRate(t *testing.T) {
	answer := func(n int) string { return fmt.Sprintf(`{"type":"answer","n":%d}`, n) }
	mustHandled := func(t *testing.T, ts *testServer, player string, want int) {
		t.Helper()
		MustPoll(t, testTimeout, func() string {
			if got := ts.frames.handled(player); got != want {
				return fmt.Sprintf("%s's frames handled: got %d, want %d", player, got, want)
			}
			return ""
		})
	}

	t.Run("within the rate", func(t *testing.T) {
		const rate, burst = 20, 40
		ts := MustServer(t, hub.Options{FrameRate: rate, FrameBurst: burst})
		r := MustDial(t, ts, "a", "p", hub.Player)
		for i := range burst { // what a page sends at connect
			r.write(t, answer(i+1))
		}
		for i := range rate { // then half the rate, for two seconds
			time.Sleep(2 * time.Second / rate)
			r.write(t, answer(burst+i+1))
		}
		mustHandled(t, ts, "p", burst+rate)
		if f, err := r.next(50 * time.Millisecond); err == nil {
			t.Fatalf("got %s, want no reply", f.data)
		}
	})

	t.Run("over the rate", func(t *testing.T) {
		const burst, over = 10, 5
		ts := MustServer(t, hub.Options{FrameRate: 0.01, FrameBurst: burst}) // no refill in this test
		r := MustDial(t, ts, "a", "p", hub.Player)
		for i := range burst + over {
			r.write(t, answer(i+1))
		}
		for i := range 3 {
			f, err := r.next(testTimeout)
			if err != nil || !strings.Contains(f.data, `"type":"error","code":"rate_limited"`) {
				t.Fatalf("refused frame %d: got %q, %v, want a rate_limited error frame", i+1, f.data, err)
			}
		}
		mustHandled(t, ts, "p", burst)
		if f, err := r.next(50 * time.Millisecond); err == nil {
			t.Fatalf("after three error frames: got %s, want no more", f.data)
		}
		if got := ts.dropped(t, ""); got != 0 { // five refused frames are within its tolerance
			t.Fatalf("dropped: got %v, want 0", got)
		}
	})

	t.Run("flood", func(t *testing.T) {
		const rate, burst = 20, 40
		ts := MustServer(t, hub.Options{FrameRate: rate, FrameBurst: burst})
		honest := MustDial(t, ts, "a", "honest", hub.Player)
		flooder := MustDial(t, ts, "a", "flooder", hub.Player)
		began := time.Now()
		flooding := make(chan int, 1)
		go func() { // as fast as it can, until its socket is closed
			n := 0
			for ; n < 100000; n++ {
				if flooder.ws.Write(context.Background(), websocket.MessageText, []byte(answer(1))) != nil {
					break
				}
			}
			flooding <- n
		}()
		frames := MustClose(t, flooder, websocket.StatusPolicyViolation)
		elapsed, sent := time.Since(began), <-flooding
		for _, f := range frames { // the drop may discard them before they are written
			if !strings.Contains(f, `"type":"error","code":"rate_limited"`) {
				t.Errorf("flooder: got %s, want only rate_limited error frames", f)
			}
		}
		if handled, most := ts.frames.handled("flooder"), burst+int(rate*elapsed.Seconds())+1; handled < burst || handled > most {
			t.Errorf("flooder's frames handled: got %d, want %d to %d", handled, burst, most)
		}
		t.Logf("the flooder wrote %d frames in %v before it was dropped", sent, elapsed.Round(time.Millisecond))
		MustPoll(t, testTimeout, func() string {
			if got := ts.dropped(t, "flood"); got != 1 {
				return fmt.Sprintf("dropped{reason=flood}: got %v, want 1", got)
			}
			return ""
		})

		// The honest client is still served, both ways.
		seq, _, err := ts.h.Start(context.Background(), "a", 1, time.Time{})
		if err != nil {
			t.Fatalf("Start: got %v, want nil", err)
		}
		MustFrame(t, honest, startFrame(1, seq))
		honest.write(t, fmt.Sprintf(`{"type":"ack","seq":%d}`, seq))
		MustLatest(t, ts, "a", func(st hub.StartStats) string {
			if st.Recipients != 1 || st.Acked != 1 {
				return fmt.Sprintf("recipients, acked: got %d, %d, want 1, 1", st.Recipients, st.Acked)
			}
			return ""
		})
	})
}

func TestHandlerGetsFramesButNotAcks(t *testing.T) {
	ts := MustServer(t, hub.Options{})
	r := MustDial(t, ts, "a", "p1", hub.Player)
	seq, _, err := ts.h.Start(context.Background(), "a", 1, time.Time{})
	if err != nil {
		t.Fatalf("Start: got %v, want nil", err)
	}
	MustFrame(t, r, startFrame(1, seq))
	// Each frame goes to the handler, is the hub's own (an ack), or is refused by the hub
	// with an error frame, decoded once.
	const (
		handled = iota
		ack
		refused
	)
	frames := []struct {
		data string
		goes int
	}{
		{`{"type":"answer","n":1,"choice":2}`, handled},
		{fmt.Sprintf(`{"type":"ack","seq":%d}`, seq), ack},
		{`not json at all`, refused},
		{`{"type":"ack","seq":999999}`, ack}, // an ack of another start is still an ack
		{`{"type":"answer","n":1,"text":"  Grüße, 世界 \u00e9  "}`, handled},
		{`{"seq":1,"type":"ack"}`, ack},
		{`{}`, refused},                         // no type
		{`{"type":"ack","seq":"one"}`, refused}, // an ack needs a whole-number seq
		{`{"type":"ack"}`, refused},
		{`{"type":"answer","n":1,"text":"` + strings.Repeat("y", 60<<10) + `"}`, handled},
	}
	var want []protocol.ClientFrame
	for _, f := range frames {
		r.write(t, f.data)
		switch f.goes {
		case handled:
			cf, err := protocol.DecodeClient([]byte(f.data))
			if err != nil {
				t.Fatalf("decoding %.60q: %v", f.data, err)
			}
			want = append(want, cf)
		case refused:
			reply, err := r.next(testTimeout)
			if err != nil || !strings.Contains(reply.data, `"type":"error","code":"invalid"`) {
				t.Fatalf("sent %.60q: got %v %v, want an invalid error frame", f.data, reply.data, err)
			}
		}
	}
	MustPoll(t, testTimeout, func() string {
		if got := ts.frames.snapshot(); len(got) < len(want) {
			return fmt.Sprintf("handler frames: got %d, want %d", len(got), len(want))
		}
		return ""
	})
	got := ts.frames.snapshot()
	if len(got) != len(want) {
		t.Fatalf("handler frames: got %d, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i].frame, want[i]) || got[i].player != "p1" {
			t.Errorf("handler frame %d: got %.60v from %q, want %.60v from p1", i, got[i].frame, got[i].player, want[i])
		}
	}
	st := MustLatest(t, ts, "a", func(st hub.StartStats) string {
		if st.Acked != 1 {
			return fmt.Sprintf("acked: got %d, want 1", st.Acked)
		}
		return ""
	})
	if st.Seq != seq {
		t.Errorf("seq: got %d, want %d", st.Seq, seq)
	}
}

func TestShutdown(t *testing.T) {
	ts := MustServer(t, hub.Options{})
	rs := append(MustDialMany(t, ts, "a", "p", 10, hub.Player), MustDialMany(t, ts, "b", "h", 2, hub.Host)...)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := ts.h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: got %v, want nil", err)
	}
	// Shutdown has waited for the Serve calls; their handlers finish right after.
	MustPoll(t, testTimeout, func() string {
		if n := len(ts.servedErrs()); n != len(rs) {
			return fmt.Sprintf("Serve calls returned: got %d, want %d", n, len(rs))
		}
		return ""
	})
	for _, err := range ts.servedErrs() {
		if errors.Is(err, hub.ErrClosed) {
			t.Errorf("Serve of a registered client: got %v, want not ErrClosed", err)
		}
	}
	for _, r := range rs {
		MustClose(t, r, websocket.StatusGoingAway)
	}
	if connected(t, ts, "a", "p000") {
		t.Errorf("connected after Shutdown: got true, want false")
	}

	// Afterwards Serve refuses new connections.
	late := newReader(MustDialRaw(t, ts, "a", "late", hub.Player))
	MustClose(t, late, websocket.StatusGoingAway)
	MustPoll(t, testTimeout, func() string {
		errs := ts.servedErrs()
		if len(errs) != len(rs)+1 || !errors.Is(errs[len(errs)-1], hub.ErrClosed) {
			return fmt.Sprintf("Serve after Shutdown: got %v, want %v", errs[len(rs):], hub.ErrClosed)
		}
		return ""
	})
	if err := ts.h.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: got %v, want nil", err)
	}
}

func TestShutdownWhileConnecting(t *testing.T) {
	const n = 50
	ts := MustServer(t, hub.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var g errgroup.Group
	for i := range n {
		g.Go(func() error {
			ws, err := ts.dial(ctx, "a", fmt.Sprintf("p%03d", i), hub.Player)
			if err != nil {
				return nil // the server may be gone already
			}
			defer ws.CloseNow()
			_, err = newReader(ws).closed(testTimeout)
			if s := websocket.CloseStatus(err); s != websocket.StatusGoingAway {
				return fmt.Errorf("client %d: close status: got %v (%v), want %v", i, s, err, websocket.StatusGoingAway)
			}
			return nil
		})
	}
	// Shut down while handshakes are still under way.
	MustPoll(t, testTimeout, func() string {
		if got := ts.upgraded.Load(); got < n/4 {
			return fmt.Sprintf("handshakes: got %d, want %d", got, n/4)
		}
		return ""
	})
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	if err := ts.h.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown while clients connect: got %v, want nil", err)
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	var refused int
	for _, err := range ts.servedErrs() {
		if errors.Is(err, hub.ErrClosed) {
			refused++
		}
	}
	t.Logf("%d of %d Serve calls refused", refused, n)
}

func TestPingRTTAndDelivery(t *testing.T) {
	ts := MustServer(t, hub.Options{PingInterval: 20 * time.Millisecond})
	r := MustDial(t, ts, "a", "p1", hub.Player)
	var (
		n      int
		before time.Time
		st     hub.StartStats
	)
	// Start until a start's record carries a round trip: the first ping goes out on
	// connect, so this takes a few milliseconds.
	MustPoll(t, testTimeout, func() string {
		n++
		before = time.Now()
		seq, _, err := ts.h.Start(context.Background(), "a", n, time.Time{})
		if err != nil {
			t.Fatalf("Start: got %v, want nil", err)
		}
		MustFrame(t, r, startFrame(n, seq))
		st = MustLatest(t, ts, "a", func(st hub.StartStats) string {
			if len(st.Players) != 1 || st.Players[0].WrittenUs == nil {
				return "got no writtenUs, want one"
			}
			return ""
		})
		if st.Players[0].RTTUs <= 0 {
			time.Sleep(10 * time.Millisecond)
			return fmt.Sprintf("rttUs after %d starts: got %d, want > 0", n, st.Players[0].RTTUs)
		}
		return ""
	})
	c := ts.frames.conn("p1")
	sd, ok := c.Delivery(n)
	at, rtt := sd.Written, sd.RTT
	if !ok {
		t.Fatalf("Delivery: got not ok, want ok")
	}
	if !at.After(before) || at.After(time.Now()) {
		t.Errorf("Delivery: got %v after the Start call, want after it and before now", at.Sub(before))
	}
	if want := st.At.Add(time.Duration(*st.Players[0].WrittenUs) * time.Microsecond); at.Sub(want).Abs() > time.Microsecond {
		t.Errorf("Delivery: got %v, want the write time %v", at, want)
	}
	if rtt <= 0 {
		t.Errorf("Delivery rtt: got %v, want > 0", rtt)
	}
	if _, ok := c.Delivery(n + 1); ok {
		t.Errorf("Delivery of another question: got ok, want not ok")
	}
}

// TestDeliveryRTTTakesTheLesser: the round trip credited to a start is the lesser of the
// start's own (write to ack) and the median ping: an ack held back for 300 ms does not
// inflate it (pings on loopback take far less), and a prompt ack is itself the round trip.
func TestDeliveryRTTTakesTheLesser(t *testing.T) {
	ts := MustServer(t, hub.Options{PingInterval: 10 * time.Millisecond})
	r := MustDial(t, ts, "a", "p1", hub.Player)
	MustPoll(t, testTimeout, func() string { // a few pings first
		st, _, err := ts.h.Start(context.Background(), "a", 100, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		MustFrame(t, r, startFrame(100, st))
		if s := MustLatest(t, ts, "a", func(hub.StartStats) string { return "" }); s.Players[0].RTTUs == 0 {
			time.Sleep(20 * time.Millisecond)
			return "no ping round trip yet"
		}
		return ""
	})
	for _, tt := range []struct {
		n     int
		delay time.Duration
	}{{1, 300 * time.Millisecond}, {2, 0}} {
		seq, _, err := ts.h.Start(context.Background(), "a", tt.n, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		MustFrame(t, r, startFrame(tt.n, seq))
		time.Sleep(tt.delay)
		r.write(t, fmt.Sprintf(`{"type":"ack","seq":%d}`, seq))
		var rtt time.Duration
		MustPoll(t, testTimeout, func() string {
			st := MustLatest(t, ts, "a", func(hub.StartStats) string { return "" })
			if st.Players[0].AckUs == nil {
				return "ack not recorded yet"
			}
			sd, _ := ts.frames.conn("p1").Delivery(tt.n)
			rtt = sd.RTT
			return ""
		})
		if rtt <= 0 || rtt >= 200*time.Millisecond {
			t.Errorf("start %d acked after %v: credited round trip %v, want more than 0 and far less than the delay", tt.n, tt.delay, rtt)
		}
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		ts, stop := newServer(t, hub.Options{PingInterval: 5 * time.Millisecond})
		defer stop()
		rs := append(MustDialMany(t, ts, "a", "p", 20, hub.Player), MustDial(t, ts, "a", "", hub.Host))
		for n := 1; n <= 3; n++ {
			seq, _, err := ts.h.Start(context.Background(), "a", n, time.Time{})
			if err != nil {
				t.Fatalf("Start: got %v, want nil", err)
			}
			if _, err := nextAll(rs, testTimeout); err != nil {
				t.Fatalf("start %d: got %v, want every client to receive it", n, err)
			}
			for _, r := range rs {
				r.write(t, fmt.Sprintf(`{"type":"ack","seq":%d}`, seq))
			}
		}
		time.Sleep(20 * time.Millisecond) // a few pings
		// Half the clients leave on their own, the rest are closed by the hub.
		for _, r := range rs[:10] {
			r.ws.Close(websocket.StatusNormalClosure, "bye")
		}
		stop()
		for _, r := range rs {
			<-r.done
		}
	}()
	var now int
	MustPoll(t, testTimeout, func() string {
		if now = runtime.NumGoroutine(); now > base {
			return fmt.Sprintf("goroutines: got %d, want ≤ %d as before the test", now, base)
		}
		return ""
	})
}

// connected reports whether the player has a connection, by the hub's Online.
func connected(tb testing.TB, ts *testServer, room, player string) bool {
	tb.Helper()
	online, err := ts.h.Online(context.Background(), room)
	if err != nil {
		tb.Fatalf("Online: got %v, want nil", err)
	}
	return online[player]
}

// ctxLog is a Handler that welcomes every connection and records, per frame, the
// context's error when the frame was handled.
type ctxLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *ctxLog) Open(_ context.Context, c *hub.Conn) { c.Send([]byte(welcome)) }

func (l *ctxLog) Frame(ctx context.Context, _ *hub.Conn, _ protocol.ClientFrame, _ time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, ctx.Err())
}

func (l *ctxLog) snapshot() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errs)
}

// TestAttach serves connections whose HTTP handler attaches them and returns: the
// connection outlives the request, its frames get a live context, and Shutdown closes it.
func TestAttach(t *testing.T) {
	h := hub.New(hub.Options{Logger: slog.New(slog.DiscardHandler)})
	frames := &ctxLog{}
	var returned atomic.Int64
	attachErrs := make(chan error, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer returned.Add(1)
		ws, err := hub.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		attachErrs <- h.Attach(r.Context(), ws, hub.Client{Room: "a", ID: r.URL.Query().Get("id")}, frames)
	}))
	t.Cleanup(srv.Close)
	dial := func(id string) *reader {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/?id="+id, nil)
		if err != nil {
			t.Fatalf("dial %s: got %v, want nil", id, err)
		}
		t.Cleanup(func() { ws.CloseNow() })
		return newReader(ws)
	}

	r := dial("p1")
	MustFrame(t, r, welcome)
	if err := <-attachErrs; err != nil {
		t.Fatalf("Attach: got %v, want nil", err)
	}
	MustPoll(t, testTimeout, func() string {
		if got := returned.Load(); got != 1 {
			return fmt.Sprintf("HTTP handlers returned: got %d, want 1", got)
		}
		return ""
	})
	seq, recipients, err := h.Start(context.Background(), "a", 1, time.Time{})
	if err != nil || recipients != 1 {
		t.Fatalf("Start: got %d, %v, want 1, nil", recipients, err)
	}
	MustFrame(t, r, startFrame(1, seq))
	r.write(t, fmt.Sprintf(`{"type":"ack","seq":%d}`, seq))
	r.write(t, `{"type":"answer","n":1}`)
	MustPoll(t, testTimeout, func() string {
		if got := frames.snapshot(); len(got) != 1 {
			return fmt.Sprintf("handler frames: got %d, want 1", len(got))
		}
		return ""
	})
	if err := frames.snapshot()[0]; err != nil {
		t.Errorf("frame's context: got %v, want not done after the request's handler returned", err)
	}
	if st := h.Fairness("a", 1).Starts[0]; st.Acked != 1 {
		t.Errorf("acked: got %d, want 1", st.Acked)
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: got %v, want nil", err)
	}
	MustClose(t, r, websocket.StatusGoingAway)
	late := dial("p2")
	if err := <-attachErrs; !errors.Is(err, hub.ErrClosed) {
		t.Errorf("Attach after Shutdown: got %v, want %v", err, hub.ErrClosed)
	}
	MustClose(t, late, websocket.StatusGoingAway)
}

// TestAcceptKeepsPipelinedFrame sends the handshake and a first frame in one write, so
// that the frame arrives in net/http's buffer with the request; Accept's smaller buffer
// must still deliver it.
func TestAcceptKeepsPipelinedFrame(t *testing.T) {
	ts := MustServer(t, hub.Options{})
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(ts.url, "ws://"), testTimeout)
	if err != nil {
		t.Fatalf("dial: got %v, want nil", err)
	}
	t.Cleanup(func() { conn.Close() })
	payload := []byte(`{"type":"answer","n":1}`)
	mask := [4]byte{1, 2, 3, 4}
	msg := []byte("GET /?room=a&id=p1 HTTP/1.1\r\nHost: bulb\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	msg = append(msg, 0x81, 0x80|byte(len(payload))) // FIN, text; masked, length
	msg = append(msg, mask[:]...)
	for i, b := range payload {
		msg = append(msg, b^mask[i%4])
	}
	if _, err := conn.Write(msg); err != nil {
		t.Fatalf("write: got %v, want nil", err)
	}
	MustPoll(t, testTimeout, func() string {
		if got := ts.frames.snapshot(); len(got) != 1 || got[0].frame.Type != protocol.TypeAnswer || got[0].frame.N != 1 {
			return fmt.Sprintf("handler frames: got %d, want the pipelined %s", len(got), payload)
		}
		return ""
	})
}

// TestIdleConnectionHasOneGoroutine: an idle connection is served by its reader alone;
// writers wait for work only WriterIdle, and pings run only until their pong.
func TestIdleConnectionHasOneGoroutine(t *testing.T) {
	const n = 20
	ts := MustServer(t, hub.Options{PingInterval: time.Hour, WriterIdle: 20 * time.Millisecond})
	base := runtime.NumGoroutine()
	rs := MustDialMany(t, ts, "a", "p", n, hub.Player)
	// Each client here has a reader goroutine too: 2n in all. At most: goroutines of
	// earlier tests may still be ending, and a writer each would make it 3n.
	idle := func() string {
		if got := runtime.NumGoroutine() - base; got > 2*n {
			return fmt.Sprintf("goroutines: got %d more than before the clients, want at most %d (a reader each side)", got, 2*n)
		}
		return ""
	}
	MustPoll(t, testTimeout, idle)
	for k := range 3 {
		seq, _, err := ts.h.Start(context.Background(), "a", k+1, time.Time{})
		if err != nil {
			t.Fatalf("Start: got %v, want nil", err)
		}
		ts.h.Send("a", []byte(`{"type":"more"}`))
		for i, r := range rs {
			MustFrame(t, r, startFrame(k+1, seq))
			if f, err := r.next(testTimeout); err != nil || f.data != `{"type":"more"}` {
				t.Fatalf("client %d: got %q, %v, want the second frame", i, f.data, err)
			}
		}
		MustPoll(t, testTimeout, idle)
	}
}

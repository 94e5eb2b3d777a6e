// Command fanout compares ways of delivering one start frame to N connected clients, in
// one process, over the same loopback connections, strategy after strategy in turn
// (A B C D E A B …), several rounds each:
//
//	sequential  one loop of blocking writes to every server-side *websocket.Conn, in Go
//	            map order (the original service)
//	pool-20     20 goroutines fed with those connections in map order; waits for all
//	single-hub  one hub goroutine pushing the frame into per-client buffered channels in a
//	            fixed order, with a writer goroutine per client (the gorilla chat hub's
//	            shape, but over a slice: gorilla ranges over a map)
//	bulb        the real hub.Hub: hub.Start on a room holding the same connections
//	floor       the bytes of a start frame, WebSocket header included, written straight to
//	            each connection's socket (its net.Conn) by GOMAXPROCS goroutines: no
//	            WebSocket library, no JSON, no bookkeeping: what this machine allows
//
// Every strategy uses the same N connections (coder/websocket serialises writes per
// connection, and one broadcast finishes before the next begins, so floor's raw writes never
// meet a library's), and the clients read every strategy's frame the same way, with the
// WebSocket library: the strategies differ only on the server's side.
//
// The clients run in a child process (this binary, re-executed with BULB_FANOUT_CHILD
// set; internal/wsclients), each with a reader goroutine that stamps every receipt with
// the wall clock (time.Now().UnixNano(), the one clock two processes of one machine
// share); the parent stamps the start of each broadcast the same way. After a frame has
// reached every client, the child reports "done" and the N receipt times on fd 3.
//
// Per strategy it prints: receipt latency (receipt − start) p50, p99 and max over every
// client of every round; spread (last − first receipt), median over rounds; bias, the
// p-value of Friedman's test of whether some clients are systematically served early or
// late across the rounds; the CPU time of the server process (getrusage, user + system)
// from the start until the child reports every receipt, median over rounds; and the
// ratios of p99 and CPU to bulb's.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/bulbquiz/bulb/hub"
	"github.com/bulbquiz/bulb/internal/cpuprofile"
	"github.com/bulbquiz/bulb/internal/rlimit"
	"github.com/bulbquiz/bulb/internal/stats"
	"github.com/bulbquiz/bulb/internal/wsclients"
	"github.com/bulbquiz/bulb/protocol"
)

// childEnv, when set, makes this binary the client process: its value is "WSURL N".
const childEnv = "BULB_FANOUT_CHILD"

// floorFrame is what floor writes: an unmasked, final text frame (RFC 6455 §5.2, as a
// server sends it) holding a start message.
var floorFrame = wsTextFrame(`{"type":"start","n":1,"seq":1}`)

// wsTextFrame is msg, under 126 bytes, as a server's WebSocket text frame.
func wsTextFrame(msg string) []byte {
	if len(msg) >= 126 {
		panic("wsTextFrame: message needs an extended length")
	}
	return append([]byte{0x81, byte(len(msg))}, msg...)
}

const welcome = `{"type":"welcome"}`

func main() {
	if v := os.Getenv(childEnv); v != "" {
		if err := child(v); err != nil {
			fmt.Fprintln(os.Stderr, "fanout client process:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(1)
	}
}

// strategies, in the order they take turns.
var strategyNames = []string{"sequential", "pool-20", "single-hub", "bulb", "floor"}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	clientsFlag := fs.String("clients", "", "clients, or a comma-separated list of sizes run one after the other (default 1000,5000,10000; with --quick 1000)")
	rounds := fs.Int("rounds", 0, "starts per strategy, interleaved A B C D E A B … (default 10; with --quick 3)")
	quick := fs.Bool("quick", false, "a short run: 1000 clients, 3 rounds, unless given")
	chart := fs.String("chart", "", "draw the receipt-latency CDF of every strategy, a panel per size, to this .svg, .png or .pdf file")
	profiles := fs.String("cpuprofile", "", "write a CPU profile of the server process for every measured round to this directory, as SIZE-STRATEGY-ROUND.pprof (merge a strategy's rounds with go tool pprof DIR/10000-bulb-*.pprof)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sizes := "1000,5000,10000"
	if *quick {
		sizes = "1000"
	}
	if *clientsFlag != "" {
		sizes = *clientsFlag
	}
	if *rounds <= 0 {
		*rounds = 10
		if *quick {
			*rounds = 3
		}
	}
	var ns []int
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 {
			return fmt.Errorf("--clients: %q is not a number of clients ≥ 2", s)
		}
		ns = append(ns, n)
	}

	fmt.Fprintf(out, "machine: %d cores (GOMAXPROCS %d), Linux %s, %s %s/%s; load average %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), kernel(), runtime.Version(), runtime.GOOS, runtime.GOARCH, loadAvg())
	fmt.Fprintf(out, "command: go run ./scripts/fanout%s\n", quoteArgs(args))
	var panels []panel
	for _, n := range ns {
		pn, err := runSize(n, *rounds, *profiles, out)
		if err != nil {
			return fmt.Errorf("%d clients: %w", n, err)
		}
		panels = append(panels, pn)
	}
	if *chart != "" {
		if err := writeChart(*chart, panels); err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		fmt.Fprintf(out, "\nchart: %s (receipt-latency CDF per strategy, a panel per size)\n", *chart)
	}
	return nil
}

// loadAvg is the system's load average over 1, 5 and 15 minutes, from /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func quoteArgs(args []string) string {
	var b strings.Builder
	for _, a := range args {
		b.WriteByte(' ')
		if a == "" || strings.ContainsAny(a, " \t\n'\"$\\*?;&|<>()") {
			b.WriteString(strconv.Quote(a))
		} else {
			b.WriteString(a)
		}
	}
	return b.String()
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bench is the server side of one size: N WebSocket connections, served by a hub, to one
// client process.
type bench struct {
	n      int
	h      *hub.Hub
	wsMap  map[string]*websocket.Conn // by client ID: ranged over by sequential and pool-20
	wsList []*websocket.Conn          // by client index: single-hub's fixed order
	raw    []net.Conn                 // by client index: the sockets under wsList, for floor
	seq    atomic.Uint64              // frame numbers of the non-hub WebSocket strategies

	hubIn   chan []byte   // single-hub's hub goroutine
	hubOut  []chan []byte // single-hub's per-client channels
	stopHub func()

	clients  *wsclients.Process // the child
	receipts []int64            // the latest frame's, by client index
	closers  []func()
	profiles string // directory of per-round CPU profiles, if any
}

type openHandler struct{}

func (openHandler) Open(_ context.Context, c *hub.Conn)                               { c.Send([]byte(welcome)) }
func (openHandler) Frame(context.Context, *hub.Conn, protocol.ClientFrame, time.Time) {}

// rawConnKey keys the accepted net.Conn in a request's context.
type rawConnKey struct{}

func setup(n int) (*bench, error) {
	if err := rlimit.RaiseNoFile(uint64(n + 1000)); err != nil {
		return nil, err
	}
	e := &bench{n: n, wsMap: map[string]*websocket.Conn{}, wsList: make([]*websocket.Conn, n), raw: make([]net.Conn, n), receipts: make([]int64, n)}
	ok := false
	defer func() {
		if !ok {
			e.close()
		}
	}()
	e.h = hub.New(hub.Options{
		Logger:       slog.New(slog.DiscardHandler),
		PingInterval: time.Hour, // no pings during the measurements
		WriteTimeout: time.Minute,
		History:      8,
		Node:         "fanout",
	})
	var mu sync.Mutex
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		i, err := strconv.Atoi(id)
		if err != nil || i < 0 || i >= n {
			http.Error(w, "bad id", http.StatusBadRequest)
			return
		}
		// As the server does: hub.Accept's small buffers, and the hub's own goroutine.
		ws, err := hub.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		mu.Lock()
		e.wsMap[id], e.wsList[i] = ws, ws
		e.raw[i] = r.Context().Value(rawConnKey{}).(net.Conn) // the socket the hijack returned
		mu.Unlock()
		e.h.Attach(r.Context(), ws, hub.Client{Room: "fanout", ID: id, Name: id}, openHandler{})
	}))
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, rawConnKey{}, c)
	}
	srv.Start()
	e.closers = append(e.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		e.h.Shutdown(ctx)
		srv.Close()
	})

	// single-hub: one hub goroutine, a buffered channel and a writer goroutine per client.
	e.hubIn = make(chan []byte)
	e.hubOut = make([]chan []byte, n)
	var writers sync.WaitGroup
	for i := range e.hubOut {
		e.hubOut[i] = make(chan []byte, 16)
	}
	writers.Go(func() {
		for f := range e.hubIn {
			for _, ch := range e.hubOut {
				ch <- f
			}
		}
		for _, ch := range e.hubOut {
			close(ch)
		}
	})
	e.stopHub = func() { close(e.hubIn); writers.Wait() }

	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", childEnv, "ws"+strings.TrimPrefix(srv.URL, "http")+"/?id=", n))
	var childOut strings.Builder
	var childMu sync.Mutex
	cmd.Stdout = lockedWriter{&childMu, &childOut}
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	if e.clients, err = wsclients.Start(cmd); err != nil {
		return nil, err
	}
	// Closed first (closers run in reverse): the child hangs up before the servers stop.
	e.closers = append(e.closers, func() {
		if err := e.clients.Stop(time.Minute); err != nil {
			childMu.Lock()
			fmt.Fprintf(os.Stderr, "fanout: client process: %v\n%s", err, childOut.String())
			childMu.Unlock()
		}
	})
	if err := e.clients.AwaitReady(3 * time.Minute); err != nil {
		childMu.Lock()
		defer childMu.Unlock()
		return nil, fmt.Errorf("client process: %w; its output:\n%s", err, childOut.String())
	}
	// The child is ready once every client has read its welcome, so every handler has run.
	mu.Lock()
	got := len(e.wsMap)
	mu.Unlock()
	if got != n {
		return nil, fmt.Errorf("connections: got %d, want %d", got, n)
	}
	for i, ws := range e.wsList { // single-hub's writers, idle until it broadcasts
		ch := e.hubOut[i]
		writers.Go(func() {
			for f := range ch {
				ws.Write(context.Background(), websocket.MessageText, f)
			}
		})
	}
	fmt.Fprintf(os.Stderr, "fanout: %d clients connected in %v\n", n, time.Since(start).Round(time.Millisecond))
	ok = true
	return e, nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (e *bench) close() {
	if e.stopHub != nil {
		e.stopHub()
		e.stopHub = nil
	}
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

func (e *bench) frame() []byte {
	return fmt.Appendf(nil, `{"type":"start","n":1,"seq":%d}`, e.seq.Add(1))
}

// broadcast begins (and for some strategies finishes) one delivery of a start frame.
func (e *bench) broadcast(ctx context.Context, strategy string) error {
	switch strategy {
	case "sequential":
		f := e.frame()
		for _, ws := range e.wsMap {
			if err := ws.Write(ctx, websocket.MessageText, f); err != nil {
				return err
			}
		}
		return nil
	case "pool-20":
		f := e.frame()
		feed := make(chan *websocket.Conn)
		var g errgroup.Group
		for range 20 {
			g.Go(func() error {
				var first error
				for ws := range feed {
					if err := ws.Write(ctx, websocket.MessageText, f); err != nil && first == nil {
						first = err
					}
				}
				return first
			})
		}
		for _, ws := range e.wsMap {
			feed <- ws
		}
		close(feed)
		return g.Wait()
	case "single-hub":
		e.hubIn <- e.frame()
		return nil
	case "bulb":
		_, got, err := e.h.Start(ctx, "fanout", 1, time.Time{})
		if err == nil && got != e.n {
			err = fmt.Errorf("hub.Start recipients: got %d, want %d", got, e.n)
		}
		return err
	case "floor":
		shards := min(runtime.GOMAXPROCS(0), e.n)
		var g errgroup.Group
		for s := range shards {
			lo, hi := s*e.n/shards, (s+1)*e.n/shards
			g.Go(func() error {
				for _, c := range e.raw[lo:hi] {
					if _, err := c.Write(floorFrame); err != nil {
						return err
					}
				}
				return nil
			})
		}
		return g.Wait()
	}
	return fmt.Errorf("unknown strategy %q", strategy)
}

// result is what one strategy's rounds measured.
type result struct {
	lats    []float64   // receipt − start, µs, every client of every round
	blocks  [][]float64 // per round, each client's receipt time (ns since the start)
	spreads []float64   // µs, per round
	cpus    []float64   // µs, per round
	minN    int         // fewest receipts after the start in a round
}

// oneRound runs one broadcast of strategy and waits for every receipt.
func (e *bench) oneRound(ctx context.Context, strategy string, r *result) error {
	runtime.GC() // outside the measurement
	if e.profiles != "" && r != nil {
		stop, err := cpuprofile.Start(filepath.Join(e.profiles, fmt.Sprintf("%d-%s-%d.pprof", e.n, strategy, len(r.blocks)+1)))
		if err != nil {
			return err
		}
		defer stop()
	}
	cpu0 := cpuNow()
	t0 := time.Now().UnixNano()
	if err := e.broadcast(ctx, strategy); err != nil {
		return fmt.Errorf("%s: %w", strategy, err)
	}
	if err := e.clients.AwaitDone(2 * time.Minute); err != nil {
		return fmt.Errorf("%s: %w", strategy, err)
	}
	cpu := cpuNow() - cpu0
	if err := e.clients.Receipts(e.receipts, time.Minute); err != nil {
		return fmt.Errorf("%s: %w", strategy, err)
	}
	if r == nil { // warm-up
		return nil
	}
	block := make([]float64, e.n)
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	got := 0
	for i := range e.n {
		at := e.receipts[i] - t0
		if at >= 0 {
			got++
		}
		block[i] = float64(at)
		first, last = min(first, at), max(last, at)
		r.lats = append(r.lats, float64(at)/1e3)
	}
	if len(r.blocks) == 0 || got < r.minN {
		r.minN = got
	}
	r.blocks = append(r.blocks, block)
	r.spreads = append(r.spreads, float64(last-first)/1e3)
	r.cpus = append(r.cpus, float64(cpu)/1e3)
	return nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return stats.Percentile(s, 50)
}

// runSize runs every strategy on n clients, prints their table and returns their
// latencies for the chart.
func runSize(n, rounds int, profiles string, out io.Writer) (panel, error) {
	pn := panel{n: n, rounds: rounds, lats: map[string][]float64{}}
	e, err := setup(n)
	if err != nil {
		return pn, err
	}
	defer e.close()
	e.profiles = profiles
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	names := strategyNames
	for _, s := range names { // one warm-up start each, not counted
		if err := e.oneRound(ctx, s, nil); err != nil {
			return pn, err
		}
	}
	res := map[string]*result{}
	for _, s := range strategyNames {
		res[s] = &result{}
	}
	for range rounds {
		for _, s := range names {
			if err := e.oneRound(ctx, s, res[s]); err != nil {
				return pn, err
			}
		}
	}

	fmt.Fprintf(out, "\n== fanout: %d clients, %d rounds per strategy (interleaved, after 1 warm-up round); load average %s\n", n, rounds, loadAvg())
	fmt.Fprintf(out, "%-11s %8s %9s %9s %9s %10s %9s %12s %9s %9s\n",
		"strategy", "n/round", "p50-µs", "p99-µs", "max-µs", "spread-µs", "bias-p", "cpu-µs/start", "p99÷bulb", "cpu÷bulb")
	b := res["bulb"]
	bSum, bCPU := stats.Summarize(b.lats), median(b.cpus)
	for _, s := range names {
		r := res[s]
		sum := stats.Summarize(r.lats)
		_, _, p := stats.Friedman(r.blocks)
		cpu := median(r.cpus)
		fmt.Fprintf(out, "%-11s %8d %9.0f %9.0f %9.0f %10.0f %9.3g %12.0f %9.2f %9.2f\n",
			s, r.minN, sum.P50, sum.P99, sum.Max, median(r.spreads), p, cpu, sum.P99/bSum.P99, cpu/bCPU)
	}
	for _, s := range names {
		pn.lats[s] = res[s].lats
	}
	f := stats.Summarize(res["floor"].lats)
	fmt.Fprintf(out, "bulb ÷ floor: p50 %.2f, p99 %.2f, spread %.2f, cpu %.2f\n",
		bSum.P50/f.P50, bSum.P99/f.P99, median(b.spreads)/median(res["floor"].spreads), bCPU/median(res["floor"].cpus))
	fmt.Fprintln(out, "(receipt = child's wall-clock receipt − parent's wall-clock start; p50/p99/max over every client of every round;")
	fmt.Fprintln(out, " spread and cpu: medians over rounds; cpu = server process user+system from the start until every client has read;")
	fmt.Fprintln(out, " bias-p: Friedman test of receipt ranks across rounds, small = some clients systematically first or last;")
	fmt.Fprintln(out, " n/round: fewest clients that received after the start in a round)")
	return pn, nil
}

// child is the client process (wsclients.Serve): it dials n WebSocket clients, says
// "ready" on fd 3, and after every frame that all n clients have read writes "done" and
// their wall-clock receipt times there. It hangs up when its stdin closes.
func child(spec string) error {
	parts := strings.Fields(spec)
	if len(parts) != 2 {
		return fmt.Errorf("%s=%q: want WSURL N", childEnv, spec)
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		return err
	}
	if err := rlimit.RaiseNoFile(uint64(n + 1000)); err != nil {
		return err
	}
	return wsclients.Serve(wsclients.Config{URL: parts[0], N: n, Welcome: welcome,
		Now: func() int64 { return time.Now().UnixNano() }})
}

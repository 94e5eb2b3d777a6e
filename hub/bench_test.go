//go:build linux

package hub_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/coder/websocket"

	"github.com/bulbquiz/bulb/hub"
	"github.com/bulbquiz/bulb/internal/rlimit"
	"github.com/bulbquiz/bulb/internal/wsclients"
)

// BenchmarkBroadcast delivers one start frame to every client of a room over real
// loopback WebSocket connections, per iteration, and waits until every client has read it.
//
//	bulb:       hub.Start — encode once, shuffle, enqueue on each connection's writer
//	            goroutine through an errgroup over shards.
//	sequential: the baseline Bulb replaces — write the frame to each server-side
//	            *websocket.Conn one after the other, in map order, from the caller.
//
// Both sub-benchmarks of a size use the same clients and the same frame
// ({"type":"start","n":1,"seq":S}). Metrics, all measured from the broadcast call:
//
//	ns/op      time until the last client has read the frame (mean over iterations)
//	spread-µs  last receipt − first receipt (median over iterations)
//	mean-µs    receipt latency, mean over every client and iteration
//	p99-µs     receipt latency, 99th percentile over every client and iteration
//
// The clients run in a child process (this test binary, TestBroadcastClients, with
// internal/wsclients), each with a reader goroutine that stamps every receipt with
// CLOCK_MONOTONIC, the clock both processes share. A child process keeps the client
// side's scheduler and GC out of the hub's process, and halves the open files per
// process: 10,000 connections are 20,000 sockets, more than a common hard RLIMIT_NOFILE
// of 20,000 leaves room for in one process.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			e := newBroadcastBench(b, n)
			b.Run("bulb", func(b *testing.B) {
				e.run(b, func(ctx context.Context) error {
					_, got, err := e.h.Start(ctx, "bench", 1, time.Time{})
					if err == nil && got != n {
						err = fmt.Errorf("recipients: got %d, want %d", got, n)
					}
					return err
				})
			})
			b.Run("sequential", func(b *testing.B) { e.run(b, e.sequential) })
		})
	}
}

// raiseNoFile raises the open-file limit to need, or skips the benchmark saying why.
func raiseNoFile(tb testing.TB, need uint64) {
	if err := rlimit.RaiseNoFile(need); err != nil {
		tb.Skip(err)
	}
}

// clock reads CLOCK_MONOTONIC, comparable across processes, without a system call per
// reading: Go's monotonic time is CLOCK_MONOTONIC less a per-process offset, measured once.
type clock struct {
	base time.Time
	raw  int64 // CLOCK_MONOTONIC at base, in ns
}

func newClock() clock {
	var best clock
	bestGap := time.Duration(math.MaxInt64)
	for range 20 { // keep the tightest of a few pairs
		t := time.Now()
		var ts syscall.Timespec
		if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 1 /* CLOCK_MONOTONIC */, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
			panic(errno)
		}
		if gap := time.Since(t); gap < bestGap {
			best, bestGap = clock{t, ts.Nano() - int64(gap/2)}, gap
		}
	}
	return best
}

func (c clock) now() int64 { return c.raw + int64(time.Since(c.base)) }

type broadcastBench struct {
	h      *hub.Hub
	server map[string]*websocket.Conn // the server side of every connection, for sequential
	clk    clock
	seq    atomic.Uint64 // the sequential baseline's frame numbers

	clients  *wsclients.Process // the child
	receipts []int64            // the latest frame's, by client index
}

func newBroadcastBench(b *testing.B, n int) *broadcastBench {
	raiseNoFile(b, uint64(n+1000)) // a socket per client, and some to spare
	e := &broadcastBench{server: map[string]*websocket.Conn{}, clk: newClock(), receipts: make([]int64, n)}
	e.h = hub.New(hub.Options{
		Logger:       slog.New(slog.DiscardHandler),
		PingInterval: time.Hour, // no pings in the measurements
		WriteTimeout: time.Minute,
		History:      8,
	})
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := hub.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		id := r.URL.Query().Get("id")
		mu.Lock()
		e.server[id] = ws
		mu.Unlock()
		e.h.Serve(r.Context(), ws, hub.Client{Room: "bench", ID: id, Name: id}, &frameLog{})
	}))

	exe, err := os.Executable()
	if err != nil {
		b.Fatalf("test binary: %v", err)
	}
	cmd := exec.Command(exe, "-test.run=^TestBroadcastClients$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		"BULB_BENCH_URL=ws"+strings.TrimPrefix(srv.URL, "http")+"/?id=",
		"BULB_BENCH_CLIENTS="+strconv.Itoa(n))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if e.clients, err = wsclients.Start(cmd); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := e.clients.Stop(time.Minute); err != nil {
			b.Errorf("client process: got %v, want a clean exit; its output:\n%s", err, out.String())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.h.Shutdown(ctx); err != nil {
			b.Errorf("Shutdown: got %v, want nil", err)
		}
		srv.Close()
	})

	if err := e.clients.AwaitReady(2 * time.Minute); err != nil {
		b.Fatalf("client process: %v", err)
	}
	mu.Lock()
	got := len(e.server)
	mu.Unlock()
	if got != n {
		b.Fatalf("server connections: got %d, want %d", got, n)
	}
	b.Logf("%d clients connected in %v", n, time.Since(start).Round(time.Millisecond))
	return e
}

// sequential is the baseline: one write after the other, in map order.
func (e *broadcastBench) sequential(ctx context.Context) error {
	frame := fmt.Appendf(nil, `{"type":"start","n":1,"seq":%d}`, e.seq.Add(1))
	for _, ws := range e.server {
		if err := ws.Write(ctx, websocket.MessageText, frame); err != nil {
			return err
		}
	}
	return nil
}

func (e *broadcastBench) run(b *testing.B, broadcast func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var spreads, lats []int64
	var latSum, fullSum float64
	b.ResetTimer()
	for range b.N {
		t0 := e.clk.now()
		if err := broadcast(ctx); err != nil {
			b.Fatal(err)
		}
		if err := e.clients.AwaitDone(2 * time.Minute); err != nil { // every client has read the frame
			b.Fatal(err)
		}

		b.StopTimer()
		if err := e.clients.Receipts(e.receipts, time.Minute); err != nil {
			b.Fatal(err)
		}
		first, last := int64(math.MaxInt64), int64(0)
		for _, at := range e.receipts {
			first, last = min(first, at), max(last, at)
			lats = append(lats, at-t0)
			latSum += float64(at - t0)
		}
		spreads = append(spreads, last-first)
		fullSum += float64(last - t0)
		b.StartTimer()
	}
	b.StopTimer()
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	slices.Sort(spreads)
	slices.Sort(lats)
	b.ReportMetric(fullSum/float64(b.N), "ns/op")
	b.ReportMetric(us(spreads[(len(spreads)-1)/2]), "spread-µs")
	b.ReportMetric(latSum/float64(len(lats))/1e3, "mean-µs")
	b.ReportMetric(us(lats[(99*len(lats)+99)/100-1]), "p99-µs")
}

// TestBroadcastClients is BenchmarkBroadcast's client process, not a test: it dials
// BULB_BENCH_CLIENTS clients to BULB_BENCH_URL+i, says "ready" on fd 3, and after every
// frame that all of them have read writes "done" and their CLOCK_MONOTONIC receipt times
// there (wsclients.Serve). It hangs up when its stdin closes.
func TestBroadcastClients(t *testing.T) {
	url, n := os.Getenv("BULB_BENCH_URL"), os.Getenv("BULB_BENCH_CLIENTS")
	if url == "" {
		t.Skip("the client process of BenchmarkBroadcast; runs only from it")
	}
	clients, err := strconv.Atoi(n)
	if err != nil {
		t.Fatalf("BULB_BENCH_CLIENTS=%q: %v", n, err)
	}
	raiseNoFile(t, uint64(clients+1000))
	// The welcome says the hub has registered the connection.
	if err := wsclients.Serve(wsclients.Config{URL: url, N: clients, Welcome: welcome, Now: newClock().now}); err != nil {
		t.Fatal(err)
	}
}

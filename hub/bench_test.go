//go:build linux

package hub_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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
	"golang.org/x/sync/errgroup"

	"github.com/bulbquiz/bulb/hub"
	"github.com/bulbquiz/bulb/internal/rlimit"
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
// The clients run in a child process (this test binary, TestBroadcastClients), each with
// a reader goroutine that stamps every receipt with CLOCK_MONOTONIC, the clock both
// processes share. A child process keeps the client side's scheduler and GC out of the
// hub's process, and halves the open files per process: 10,000 connections are 20,000
// sockets, more than a common hard RLIMIT_NOFILE of 20,000 leaves room for in one process.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			e := newBroadcastBench(b, n)
			b.Run("bulb", func(b *testing.B) {
				e.run(b, func(ctx context.Context) error {
					_, got, err := e.h.Start(ctx, "bench", 1)
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
	n      int
	server map[string]*websocket.Conn // the server side of every connection, for sequential
	clk    clock
	seq    atomic.Uint64 // the sequential baseline's frame numbers

	report   *os.File      // the child's reports
	reportR  *bufio.Reader // over report
	receipts []byte        // the latest report: n little-endian int64 receipt times
}

func newBroadcastBench(b *testing.B, n int) *broadcastBench {
	raiseNoFile(b, uint64(n+1000)) // a socket per client, and some to spare
	e := &broadcastBench{n: n, server: map[string]*websocket.Conn{}, clk: newClock(), receipts: make([]byte, 8*n)}
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
	report, w, err := os.Pipe()
	if err != nil {
		b.Fatalf("pipe: %v", err)
	}
	e.report, e.reportR = report, bufio.NewReader(report)
	cmd := exec.Command(exe, "-test.run=^TestBroadcastClients$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		"BULB_BENCH_URL=ws"+strings.TrimPrefix(srv.URL, "http")+"/?id=",
		"BULB_BENCH_CLIENTS="+strconv.Itoa(n))
	cmd.ExtraFiles = []*os.File{w} // fd 3 in the child
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	stdin, err := cmd.StdinPipe() // closing it tells the child to hang up
	if err != nil {
		b.Fatalf("stdin pipe: %v", err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatalf("start client process: %v", err)
	}
	w.Close()
	b.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			b.Errorf("client process: got %v, want a clean exit; its output:\n%s", err, out.String())
		}
		report.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.h.Shutdown(ctx); err != nil {
			b.Errorf("Shutdown: got %v, want nil", err)
		}
		srv.Close()
	})

	if err := e.expect("ready"); err != nil {
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

// expect reads the child's next line and fails unless it is want.
func (e *broadcastBench) expect(want string) error {
	e.report.SetReadDeadline(time.Now().Add(2 * time.Minute))
	line, err := e.reportR.ReadString('\n')
	if err != nil {
		return fmt.Errorf("report: got %v, want %q", err, want)
	}
	if line = strings.TrimSuffix(line, "\n"); line != want {
		return fmt.Errorf("report: got %q, want %q", line, want)
	}
	return nil
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
		if err := e.expect("done"); err != nil { // every client has read the frame
			b.Fatal(err)
		}

		b.StopTimer()
		e.report.SetReadDeadline(time.Now().Add(time.Minute))
		if _, err := io.ReadFull(e.reportR, e.receipts); err != nil {
			b.Fatalf("receipts: got %v, want %d bytes", err, len(e.receipts))
		}
		first, last := int64(math.MaxInt64), int64(0)
		for i := range e.n {
			at := int64(binary.LittleEndian.Uint64(e.receipts[8*i:]))
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
// frame that all of them have read writes "done" and their receipt times there. It hangs
// up when its stdin closes.
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
	report := os.NewFile(3, "report")
	clk := newClock()

	recv := make([]atomic.Int64, clients)
	var pending atomic.Int64
	pending.Store(int64(clients))
	all := make(chan struct{}, 1)
	conns := make([]*websocket.Conn, clients)
	var readers sync.WaitGroup
	defer func() {
		for _, ws := range conns {
			if ws != nil {
				ws.CloseNow()
			}
		}
		readers.Wait()
	}()
	// Each client reads from its welcome on, while the others connect: a WebSocket client
	// answers the hub's pings (the first goes out on connect) only while it reads.
	var g errgroup.Group
	g.SetLimit(64)
	for i := range clients {
		g.Go(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ws, _, err := websocket.Dial(ctx, url+strconv.Itoa(i), &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
			if err != nil {
				return fmt.Errorf("dial client %d: %w", i, err)
			}
			conns[i] = ws
			// The welcome says the hub has registered the connection.
			if _, got, err := ws.Read(ctx); err != nil || string(got) != welcome {
				return fmt.Errorf("client %d welcome: got %q, %v, want %s", i, got, err, welcome)
			}
			readers.Go(func() {
				for {
					// No context deadline: nothing to arm per read. CloseNow ends the loop.
					_, r, err := ws.Reader(context.Background())
					if err != nil {
						return
					}
					if _, err := io.Copy(io.Discard, r); err != nil {
						return
					}
					recv[i].Store(clk.now())
					if pending.Add(-1) == 0 {
						all <- struct{}{}
					}
				}
			})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	reported := make(chan error, 1)
	go func() {
		buf := make([]byte, 8*clients)
		for range all {
			pending.Store(int64(clients)) // before the parent can send the next frame
			if _, err := io.WriteString(report, "done\n"); err != nil {
				reported <- err
				return
			}
			for i := range recv {
				binary.LittleEndian.PutUint64(buf[8*i:], uint64(recv[i].Load()))
			}
			if _, err := report.Write(buf); err != nil {
				reported <- err
				return
			}
		}
	}()
	if _, err := io.WriteString(report, "ready\n"); err != nil {
		t.Fatalf("report: %v", err)
	}
	io.Copy(io.Discard, os.Stdin) // until the parent hangs up
	for _, ws := range conns {
		ws.CloseNow()
	}
	readers.Wait()
	close(all)
	select {
	case err := <-reported:
		if !errors.Is(err, syscall.EPIPE) {
			t.Errorf("report: %v", err)
		}
	default:
	}
}

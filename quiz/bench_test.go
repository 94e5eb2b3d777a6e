package quiz

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/bulbquiz/bulb/internal/redistest"
	"github.com/bulbquiz/bulb/internal/testenv"
	"github.com/bulbquiz/bulb/protocol"
)

// acceptBenchCallers is how many goroutines call Accept at once in BenchmarkAccept: the
// request handlers of one or many nodes when a question goes live.
const acceptBenchCallers = 64

// BenchmarkAccept accepts one correct answer per iteration, each from a distinct player,
// through Store.Accept, from about 64 goroutines at once (b.SetParallelism), on:
//
//	engine=memory          MemoryStore
//	engine=embedded        BoltStore, its database in a temporary directory (b.TempDir: on
//	                       this machine's disk unless TMPDIR says otherwise), fsync per commit
//	engine=redis           RedisStore on a throwaway redis-server (redistest), over its unix
//	                       socket, persisting nothing (as Redis's default)
//	engine=redis-tcp       the same over TCP loopback (CONFIG SET port; skipped if Redis refuses)
//	engine=redis-everysec  RedisStore over the unix socket, Redis with appendonly yes and
//	                       appendfsync everysec: an acknowledged answer may be lost in a crash
//	                       (up to a second of them)
//	engine=redis-always    the same with appendfsync always: the embedded engine's promise
//
// The Redis client has the server's settings (server/main.go: 1 s timeouts, one retry, the
// default pool of 10 connections per GOMAXPROCS). The quiz is the speed rule, arrival
// timing: every answer takes the whole path of accept.lua (INCR, award, HINCRBY, RPUSH).
//
// Before the timer, each run (each b.N) makes a fresh store (for Redis: a new RedisStore
// after FLUSHALL) with rooms of P = min(b.N, MaxPlayers−1) players and one warm-up player,
// enough rooms for b.N answers, question 1 live in each, and accepts the warm-up player's
// answer in each room (which also loads the script and caches the quiz). Iteration i
// answers for player i mod P of room i/P: the 64 callers all hit one room at a time, as
// when a question of a full room goes live.
//
// Metrics, besides ns/op (wall time per accept over all callers):
//
//	accepts/s  b.N / the timed wall time
//	p50-µs     median latency of one Accept call, as its caller sees it
//	p99-µs     99th percentile of the same
//	callers    goroutines calling Accept (SetParallelism × GOMAXPROCS, at least 64)
//	changes/commit  the embedded engine only: answers per transaction (group commit)
//
// scripts/bench.sh engines runs it next to redis-benchmark of the same script, the ceiling.
func BenchmarkAccept(b *testing.B) {
	// One redis-server for both Redis variants, started here rather than in a sub-benchmark:
	// its client logs failed dials while the server starts, which would split a result line.
	var srv *redistest.Server
	if _, err := exec.LookPath("redis-server"); err == nil {
		srv = redistest.Start(b)
	}
	emptyRedis := func(b *testing.B) *redistest.Server {
		b.Helper()
		if srv == nil {
			testenv.Program(b, "redis-server") // skips, or fails under BULB_REQUIRE_DEPS=1
		}
		if err := srv.Client(b).FlushAll(context.Background()).Err(); err != nil {
			b.Fatal(err)
		}
		return srv
	}

	b.Run("engine=memory", func(b *testing.B) {
		benchmarkAccept(b, NewMemoryStore())
	})
	b.Run("engine=redis", func(b *testing.B) {
		srv := emptyRedis(b)
		benchmarkAccept(b, NewRedisStore(acceptBenchClient(b, srv.URL()), ""))
	})
	b.Run("engine=embedded", func(b *testing.B) {
		s, err := OpenBoltStore(filepath.Join(b.TempDir(), "bulb.db"), slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchmarkAccept(b, s)
	})
	for _, fsync := range []string{"everysec", "always"} {
		b.Run("engine=redis-"+fsync, func(b *testing.B) {
			srv := emptyRedis(b)
			rdb := srv.Client(b)
			mustAOF(b, rdb, "yes", fsync)
			defer mustAOF(b, rdb, "no", "everysec")
			benchmarkAccept(b, NewRedisStore(acceptBenchClient(b, srv.URL()), ""))
		})
	}
	var tcpAddr string
	b.Run("engine=redis-tcp", func(b *testing.B) {
		srv := emptyRedis(b)
		if tcpAddr == "" {
			tcpAddr = acceptBenchTCP(b, srv)
		}
		benchmarkAccept(b, NewRedisStore(acceptBenchClient(b, "redis://"+tcpAddr), ""))
	})
}

// mustAOF sets Redis's appendonly and appendfsync, and waits for the rewrite that turning
// the append-only file on starts.
func mustAOF(b *testing.B, rdb *redis.Client, on, fsync string) {
	b.Helper()
	ctx := context.Background()
	if err := rdb.ConfigSet(ctx, "appendfsync", fsync).Err(); err != nil {
		b.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "appendonly", on).Err(); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		info, err := rdb.Info(ctx, "persistence").Result()
		if err != nil {
			b.Fatal(err)
		}
		if !strings.Contains(info, "aof_rewrite_in_progress:1") && !strings.Contains(info, "aof_rewrite_scheduled:1") {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("Redis's append-only file rewrite did not end within 30 s")
		}
	}
}

// acceptBenchClient returns a client of the Redis at url with the settings of
// server/main.go's engine, closed when b ends.
func acceptBenchClient(b *testing.B, url string) *redis.Client {
	b.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = time.Second, time.Second, time.Second, time.Second
	opt.MaxRetries, opt.DialerRetries = -1, 1
	rdb := redis.NewClient(opt)
	b.Cleanup(func() { rdb.Close() })
	return rdb
}

// acceptBenchTCP makes srv listen on a free TCP port of 127.0.0.1 as well as its unix
// socket, and returns the address. Redis 7 changes its port at run time; an older Redis
// refuses, and b is skipped.
func acceptBenchTCP(b *testing.B, srv *redistest.Server) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Skipf("no TCP loopback: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // a small race with other processes for the port: fine for a benchmark
	rdb := srv.Client(b)
	if err := rdb.ConfigSet(context.Background(), "bind", "127.0.0.1").Err(); err != nil {
		b.Skipf("redis-server cannot bind at run time: %v", err)
	}
	if err := rdb.ConfigSet(context.Background(), "port", fmt.Sprint(port)).Err(); err != nil {
		b.Skipf("redis-server cannot listen on TCP port %d at run time: %v", port, err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// benchmarkAccept is BenchmarkAccept on the empty store s.
func benchmarkAccept(b *testing.B, s Store) {
	ctx := context.Background()
	qz := validQuiz()
	qz.Ranking = Speed
	if err := qz.Normalize(); err != nil {
		b.Fatal(err)
	}
	sc := ScoringFor(qz, 1)
	choice := *qz.Questions[0].Answer

	// Set-up: rooms of players, question 1 live, one warm-up answer per room.
	perRoom := min(b.N, MaxPlayers-1) // and the warm-up player
	rooms := make([]string, (b.N+perRoom-1)/perRoom)
	ids := make([]string, perRoom)
	for i := range ids {
		ids[i] = fmt.Sprintf("%012d", i) // as redis-benchmark's __rand_int__ in bench.sh
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(acceptBenchCallers) // also fills the Redis client's pool before the timer
	for ri := range rooms {
		code := fmt.Sprintf("%06d", 100000+ri)
		rooms[ri] = code
		r := &Room{Code: code, HostToken: Token(), Quiz: qz, Phase: PhaseLobby, CreatedAt: time.Now()}
		if err := s.CreateRoom(ctx, r); err != nil {
			b.Fatal(err)
		}
		for _, id := range append(slices.Clip(ids), "warmup") {
			g.Go(func() error {
				return s.AddPlayer(gctx, code, Player{ID: id, Name: "n" + id, Token: Token(), JoinedAt: time.Now()})
			})
		}
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	for _, code := range rooms {
		if _, err := s.Update(ctx, code, func(r *Room) error {
			r.Current, r.Phase, r.StartedAt = 1, PhaseLive, time.Now()
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		a := protocol.Answer{N: 1, PlayerID: "warmup", Response: protocol.Response{Choice: &choice}, Correct: true}
		if _, _, err := s.Accept(ctx, code, a, sc); err != nil {
			b.Fatal(err)
		}
	}

	latencies := make([]time.Duration, b.N) // by iteration: each is written once
	var next, callers atomic.Int64
	var failed sync.Once
	var failure error
	bolt, _ := s.(*BoltStore)
	var before BoltStats
	if bolt != nil {
		before = bolt.Stats()
	}
	runtime.GC() // the set-up's garbage is not the benchmark's
	b.SetParallelism((acceptBenchCallers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		callers.Add(1)
		for pb.Next() {
			i := int(next.Add(1) - 1)
			a := protocol.Answer{N: 1, PlayerID: ids[i%perRoom], Response: protocol.Response{Choice: &choice}, Correct: true}
			start := time.Now()
			got, _, err := s.Accept(ctx, rooms[i/perRoom], a, sc)
			latencies[i] = time.Since(start)
			if err == nil && (got.Rank < 1 || got.Points < 1) {
				err = fmt.Errorf("answer %d: rank %d, %d points, want both > 0", i, got.Rank, got.Points)
			}
			if err != nil {
				failed.Do(func() { failure = err })
			}
		}
	})
	b.StopTimer()
	if failure != nil {
		b.Fatal(failure)
	}
	if n := next.Load(); n != int64(b.N) {
		b.Fatalf("%d accepts, want b.N = %d", n, b.N)
	}

	slices.Sort(latencies)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepts/s")
	b.ReportMetric(us(latencies[(50*b.N+99)/100-1]), "p50-µs")
	b.ReportMetric(us(latencies[(99*b.N+99)/100-1]), "p99-µs")
	b.ReportMetric(float64(callers.Load()), "callers")
	if bolt != nil {
		after := bolt.Stats()
		b.ReportMetric(float64(after.Changes-before.Changes)/float64(max(after.Commits-before.Commits, 1)), "changes/commit")
	}
}

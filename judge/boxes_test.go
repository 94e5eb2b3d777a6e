package judge

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulbquiz/bulb/internal/redistest"
)

// boxEngines are the Boxes implementations: each returns a constructor of the Boxes of
// several workers of one host with n boxes.
var boxEngines = map[string]func(t *testing.T) func(worker string, n int) Boxes{
	"memory": func(t *testing.T) func(string, int) Boxes {
		var shared *MemoryBoxes
		return func(_ string, n int) Boxes {
			if shared == nil {
				shared = NewMemoryBoxes(0, n)
			}
			return shared
		}
	},
	"redis": func(t *testing.T) func(string, int) Boxes {
		srv := redistest.Start(t)
		return func(worker string, n int) Boxes { return mustRedisBoxes(t, srv, worker, n, time.Second, nil) }
	},
}

// mustRedisBoxes returns a running RedisBoxes for worker, stopped when the test ends.
func mustRedisBoxes(t *testing.T, srv *redistest.Server, worker string, n int, ttl time.Duration, clean func(context.Context, int) error) *RedisBoxes {
	t.Helper()
	b := NewRedisBoxes(srv.Client(t), RedisBoxesOptions{Prefix: "test:", Host: "h1", Worker: worker, Boxes: n, TTL: ttl, Clean: clean})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return b
}

// TestBoxesNeverShared runs 50 jobs on 4 boxes from 3 workers: no box is ever held by two
// jobs at once (each job marks its box while it holds it), and every box is free after.
func TestBoxesNeverShared(t *testing.T) {
	t.Parallel()
	for name, engine := range boxEngines {
		t.Run(name, func(t *testing.T) {
			newBoxes := engine(t)
			const boxes, jobs = 4, 50
			workers := []Boxes{newBoxes("w1", boxes), newBoxes("w2", boxes), newBoxes("w3", boxes)}
			var inUse [boxes]atomic.Int32
			var most atomic.Int32
			var running atomic.Int32
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			for j := range jobs {
				wg.Go(func() {
					l, err := workers[j%len(workers)].Lease(ctx)
					if err != nil {
						t.Errorf("job %d: lease: %v", j, err)
						return
					}
					if !inUse[l.ID()].CompareAndSwap(0, 1) {
						t.Errorf("job %d: box %d is held by another job", j, l.ID())
					}
					if r := running.Add(1); r > most.Load() {
						most.Store(r)
					}
					time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
					running.Add(-1)
					inUse[l.ID()].Store(0)
					if err := l.Release(ctx); err != nil {
						t.Errorf("job %d: release: %v", j, err)
					}
				})
			}
			wg.Wait()
			if most.Load() > boxes {
				t.Fatalf("got %d jobs at once, want at most %d", most.Load(), boxes)
			}
			// every box can be leased again at once
			var held []BoxLease
			for range boxes {
				lctx, lcancel := context.WithTimeout(ctx, 2*time.Second)
				l, err := workers[0].Lease(lctx)
				lcancel()
				if err != nil {
					t.Fatalf("after the jobs, %d of %d boxes free: %v", len(held), boxes, err)
				}
				held = append(held, l)
			}
			lctx, lcancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer lcancel()
			if _, err := workers[1].Lease(lctx); err == nil {
				t.Fatal("leased a fifth box of four")
			}
		})
	}
}

// TestDeadWorkerBoxReaped: a worker that dies holding a box stops refreshing its liveness
// key; within the TTL the reaper cleans the box and another worker gets it.
func TestDeadWorkerBoxReaped(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	const ttl = 600 * time.Millisecond
	dead := NewRedisBoxes(srv.Client(t), RedisBoxesOptions{Prefix: "test:", Host: "h1", Worker: "dead", Boxes: 1, TTL: ttl})
	dctx, kill := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- dead.Run(dctx) }()
	held, err := dead.Lease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kill() // the worker crashes: no release, no more heartbeats
	<-done

	var cleaned atomic.Int32
	live := mustRedisBoxes(t, srv, "live", 1, ttl, func(_ context.Context, id int) error {
		if id != held.ID() {
			t.Errorf("cleaned box %d, want %d", id, held.ID())
		}
		cleaned.Add(1)
		return nil
	})
	start := time.Now()
	lctx, cancel := context.WithTimeout(ctx, 3*ttl)
	defer cancel()
	l, err := live.Lease(lctx)
	if err != nil {
		t.Fatalf("the dead worker's box did not come back within %v: %v", 3*ttl, err)
	}
	t.Logf("box back after %v (TTL %v)", time.Since(start), ttl)
	if l.ID() != held.ID() || cleaned.Load() != 1 {
		t.Fatalf("got box %d, cleaned %d times; want box %d cleaned once", l.ID(), cleaned.Load(), held.ID())
	}
	// the dead worker's late release must not free the box the live one now holds
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	lctx2, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	if _, err := live.Lease(lctx2); err == nil {
		t.Fatal("a stale release freed a box that another worker holds")
	}
}

// BenchmarkBoxWakeup measures how soon a worker waiting for a box gets it once another
// releases it: BLMOVE (no polling) against a loop that tries every 100 ms.
func BenchmarkBoxWakeup(b *testing.B) {
	srv := redistest.Start(b)
	rdb := srv.Client(b)
	ctx := context.Background()
	b.Run("blmove", func(b *testing.B) {
		benchWakeup(b, func() {
			rdb.BLMove(ctx, "wake:free", "wake:held", "LEFT", "RIGHT", 0)
		}, rdb)
	})
	b.Run("poll-100ms", func(b *testing.B) {
		benchWakeup(b, func() {
			for rdb.LMove(ctx, "wake:free", "wake:held", "LEFT", "RIGHT").Err() == redis.Nil {
				time.Sleep(100 * time.Millisecond)
			}
		}, rdb)
	})
}

func benchWakeup(b *testing.B, wait func(), rdb *redis.Client) {
	ctx := context.Background()
	var total time.Duration
	for range b.N {
		rdb.Del(ctx, "wake:free", "wake:held")
		got := make(chan time.Time)
		go func() { wait(); got <- time.Now() }()
		time.Sleep(time.Duration(20+rand.IntN(80)) * time.Millisecond) // the waiter is waiting
		released := time.Now()
		rdb.RPush(ctx, "wake:free", 0)
		total += (<-got).Sub(released)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "wakeup-µs")
}

func ExampleMemoryBoxes() {
	boxes := NewMemoryBoxes(0, 2)
	a, _ := boxes.Lease(context.Background())
	b, _ := boxes.Lease(context.Background())
	fmt.Println(a.ID(), b.ID())
	_ = a.Release(context.Background())
	c, _ := boxes.Lease(context.Background())
	fmt.Println(c.ID())
	// Output:
	// 0 1
	// 0
}

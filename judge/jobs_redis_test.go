package judge

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulbquiz/bulb/internal/redistest"
)

// mustRedisJobs returns the jobs of one group on srv as seen by consumer.
func mustRedisJobs(tb testing.TB, srv *redistest.Server, consumer string, claimIdle time.Duration) *RedisJobs {
	tb.Helper()
	return NewRedisJobs(srv.Client(tb), RedisJobsOptions{
		Prefix: "test:", Consumer: consumer, ClaimIdle: claimIdle,
		Logger: slog.New(slog.NewTextHandler(tb.Output(), nil)),
	})
}

// TestRedisJobsTwoConsumers: two workers take 30 jobs at once; each job is delivered to
// exactly one of them, once, and completed once; the stream is empty afterwards.
func TestRedisJobsTwoConsumers(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 30
	producer := mustRedisJobs(t, srv, "", 0)
	for i := range n {
		if err := producer.Enqueue(ctx, testJob(i, fmt.Sprint("p", i))); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}

	var mu sync.Mutex
	took := map[int][]string{} // submission → the consumers it was delivered to
	perConsumer := map[string]int{}
	var completed atomic.Int32
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b"} {
		jobs := mustRedisJobs(t, srv, name, 30*time.Second)
		wg.Go(func() {
			for {
				d, err := jobs.Next(wctx)
				if err != nil {
					if wctx.Err() == nil {
						t.Errorf("%s: Next: %v", name, err)
					}
					return
				}
				mu.Lock()
				took[d.Job.ID.Submission] = append(took[d.Job.ID.Submission], name)
				perConsumer[name]++
				mu.Unlock()
				if d.Attempt != 1 {
					t.Errorf("%s: job %s attempt %d, want 1", name, d.ID, d.Attempt)
				}
				time.Sleep(5 * time.Millisecond) // judging: lets the other worker take jobs too
				if ok, err := jobs.Complete(ctx, d); err != nil || !ok {
					t.Errorf("%s: Complete(%s) = %v, %v, want true, nil", name, d.ID, ok, err)
				}
				if completed.Add(1) == n {
					stop()
				}
			}
		})
	}
	wg.Wait()

	if got := completed.Load(); got != n {
		t.Fatalf("completed %d jobs, want %d", got, n)
	}
	for i := range n {
		if len(took[i]) != 1 {
			t.Errorf("job %d delivered to %v, want exactly one consumer", i, took[i])
		}
	}
	if perConsumer["a"] == 0 || perConsumer["b"] == 0 {
		t.Errorf("jobs per consumer %v, want both to take some", perConsumer)
	}
	if l := producer.rdb.XLen(ctx, producer.stream).Val(); l != 0 {
		t.Errorf("stream length after all completed: got %d, want 0", l)
	}
	for _, k := range []string{producer.inStreamKey(), producer.waitKey("p1")} {
		if producer.rdb.Exists(ctx, k).Val() != 0 {
			t.Errorf("%s left behind after every job completed", k)
		}
	}
	t.Logf("jobs per consumer: %v", perConsumer)
}

// TestRedisJobsDeadConsumer: worker a takes a job and stalls; once the job has sat idle for
// ClaimIdle, worker b claims it as attempt 2. The stale a can then complete nothing, neither
// before b completes nor after; b completes it once.
func TestRedisJobsDeadConsumer(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const idle = 300 * time.Millisecond
	a, b := mustRedisJobs(t, srv, "a", idle), mustRedisJobs(t, srv, "b", idle)
	if err := a.Enqueue(ctx, testJob(1, "p")); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	da, err := a.Next(ctx)
	if err != nil {
		t.Fatalf("a: Next: %v", err)
	}
	if da.Job.ID.Submission != 1 || da.Attempt != 1 {
		t.Fatalf("a: got delivery of %s attempt %d, want submission 1 attempt 1", da.Job.ID, da.Attempt)
	}
	taken := time.Now()

	db, err := b.Next(ctx)
	if err != nil {
		t.Fatalf("b: Next: %v", err)
	}
	waited := time.Since(taken)
	if db.ID != da.ID || db.Attempt != 2 || db.Job.ID != da.Job.ID {
		t.Fatalf("b: got delivery %s attempt %d job %s, want %s attempt 2 job %s", db.ID, db.Attempt, db.Job.ID, da.ID, da.Job.ID)
	}
	if waited < idle {
		t.Errorf("b claimed the job %v after a took it, want at least ClaimIdle %v", waited, idle)
	}
	t.Logf("b claimed a's job %v after a took it (ClaimIdle %v)", waited, idle)

	for _, s := range []struct {
		name string
		jobs *RedisJobs
		d    Delivery
		want bool
	}{
		{"a before b", a, da, false},
		{"b", b, db, true},
		{"a after b", a, da, false},
		{"b again", b, db, false},
	} {
		if ok, err := s.jobs.Complete(ctx, s.d); err != nil || ok != s.want {
			t.Errorf("%s: Complete = %v, %v, want %v, nil", s.name, ok, err, s.want)
		}
	}
}

// TestRedisJobsUndecodable: a stream entry that is not a Job is dropped, not delivered;
// the next job is.
func TestRedisJobsUndecodable(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	jobs := mustRedisJobs(t, srv, "a", 0)
	if err := jobs.ensureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := jobs.rdb.XAdd(ctx, &redis.XAddArgs{Stream: jobs.stream, Values: []string{"id", "bad", "player", "p", "job", "{not json"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := jobs.Enqueue(ctx, testJob(1, "q")); err != nil {
		t.Fatal(err)
	}
	d, err := jobs.Next(ctx)
	if err != nil || d.Job.ID.Submission != 1 {
		t.Fatalf("Next = %s, %v, want submission 1", d.Job.ID, err)
	}
	if pending := jobs.rdb.XPending(ctx, jobs.stream, jobs.group).Val(); pending.Count != 1 {
		t.Errorf("pending jobs: got %d, want only the good one", pending.Count)
	}
}

package judge

import (
	"context"
	"errors"
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

func jobsJob(id string) Job {
	return Job{ID: id, Player: "p-" + id, Submission: Submission{Language: "python", Source: []byte("print(1)")},
		Tests: []Test{{Input: []byte("1\n"), Output: []byte("1\n")}}, Options: Options{Checker: "tokens"}}
}

// TestRedisJobsTwoConsumers: two workers take 30 jobs at once; each job is delivered to
// exactly one of them, once, and completed once with the verdict that worker gave.
func TestRedisJobsTwoConsumers(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 30
	producer := mustRedisJobs(t, srv, "", 0)
	for i := range n {
		if err := producer.Enqueue(ctx, jobsJob(fmt.Sprint("job", i))); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}

	var mu sync.Mutex
	took := map[string][]string{} // job ID → the consumers it was delivered to
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
				took[d.Job.ID] = append(took[d.Job.ID], name)
				perConsumer[name]++
				mu.Unlock()
				if d.Attempt != 1 {
					t.Errorf("%s: job %s attempt %d, want 1", name, d.ID, d.Attempt)
				}
				if d.Job.Player != "p-"+d.Job.ID || string(d.Job.Tests[0].Output) != "1\n" {
					t.Errorf("%s: delivery %s carries job %+v", name, d.ID, d.Job)
				}
				time.Sleep(5 * time.Millisecond) // judging: lets the other worker take jobs too
				written, err := jobs.Complete(ctx, d, Verdict{Verdict: AC, Message: name + " " + d.Job.ID})
				if err != nil || !written {
					t.Errorf("%s: Complete(%s) = %v, %v, want true, nil", name, d.ID, written, err)
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
		jobID := fmt.Sprint("job", i)
		if len(took[jobID]) != 1 {
			t.Errorf("job %s delivered to %v, want exactly one consumer", jobID, took[jobID])
			continue
		}
		v, ok, err := producer.Verdict(ctx, jobID)
		if want := took[jobID][0] + " " + jobID; err != nil || !ok || v.Message != want || v.Verdict != AC {
			t.Errorf("Verdict(%s) = %+v, %v, %v, want %q", jobID, v, ok, err, want)
		}
	}
	if perConsumer["a"] == 0 || perConsumer["b"] == 0 {
		t.Errorf("jobs per consumer %v, want both to take some", perConsumer)
	}
	if l := producer.rdb.XLen(ctx, producer.stream).Val(); l != 0 {
		t.Errorf("stream length after all completed: got %d, want 0", l)
	}
	t.Logf("jobs per consumer: %v", perConsumer)
}

// TestRedisJobsDeadConsumer: worker a takes a job and stalls; once the job has sat idle for
// ClaimIdle, worker b claims it as attempt 2. The stale a can then write no verdict,
// neither before b completes nor after; b's verdict stands.
func TestRedisJobsDeadConsumer(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const idle = 300 * time.Millisecond
	a, b := mustRedisJobs(t, srv, "a", idle), mustRedisJobs(t, srv, "b", idle)
	if err := a.Enqueue(ctx, jobsJob("j1")); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	da, err := a.Next(ctx)
	if err != nil {
		t.Fatalf("a: Next: %v", err)
	}
	if da.Job.ID != "j1" || da.Attempt != 1 {
		t.Fatalf("a: got delivery of %s attempt %d, want j1 attempt 1", da.Job.ID, da.Attempt)
	}
	id := da.ID
	taken := time.Now()

	db, err := b.Next(ctx)
	if err != nil {
		t.Fatalf("b: Next: %v", err)
	}
	waited := time.Since(taken)
	if db.ID != id || db.Attempt != 2 || db.Job.ID != "j1" {
		t.Fatalf("b: got delivery %s attempt %d job %q, want %s attempt 2 job j1", db.ID, db.Attempt, db.Job.ID, id)
	}
	if waited < idle {
		t.Errorf("b claimed the job %v after a took it, want at least ClaimIdle %v", waited, idle)
	}
	t.Logf("b claimed a's job %v after a took it (ClaimIdle %v)", waited, idle)

	va, vb := Verdict{Verdict: WA, Message: "a"}, Verdict{Verdict: AC, Message: "b"}
	steps := []struct {
		name  string
		jobs  *RedisJobs
		d     Delivery
		v     Verdict
		wantW bool
	}{
		{"a before b", a, da, va, false},
		{"b", b, db, vb, true},
		{"a after b", a, da, va, false},
		{"b again", b, db, va, false},
	}
	for _, s := range steps {
		written, err := s.jobs.Complete(ctx, s.d, s.v)
		if err != nil || written != s.wantW {
			t.Errorf("%s: Complete = %v, %v, want %v, nil", s.name, written, err, s.wantW)
		}
	}
	v, ok, err := a.Verdict(ctx, "j1")
	if err != nil || !ok || v != vb {
		t.Errorf("Verdict = %+v, %v, %v, want %+v", v, ok, err, vb)
	}
}

// TestRedisJobsCompleteTwice: a delivery completed twice writes once; the first verdict
// stands.
func TestRedisJobsCompleteTwice(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	jobs := mustRedisJobs(t, srv, "a", 0)
	if _, ok, err := jobs.Verdict(ctx, "j1"); ok || err != nil {
		t.Fatalf("Verdict of an unknown job = %v, %v, want false, nil", ok, err)
	}
	if err := jobs.Enqueue(ctx, jobsJob("j1")); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	d, err := jobs.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	first := Verdict{Verdict: TLE, Passed: 2, Total: 3, TimeMs: 1000, MemoryKB: 5000, Message: "test 3"}
	for i, want := range []bool{true, false} {
		written, err := jobs.Complete(ctx, d, Verdict{Verdict: []string{TLE, AC}[i], Passed: 2, Total: 3, TimeMs: 1000, MemoryKB: 5000, Message: "test 3"})
		if err != nil || written != want {
			t.Errorf("Complete #%d = %v, %v, want %v, nil", i+1, written, err, want)
		}
	}
	if v, ok, err := jobs.Verdict(ctx, "j1"); err != nil || !ok || v != first {
		t.Errorf("Verdict = %+v, %v, %v, want %+v", v, ok, err, first)
	}
}

// TestRedisJobsNextCanceled: Next, waiting with no job, returns soon after ctx ends.
func TestRedisJobsNextCanceled(t *testing.T) {
	srv := redistest.Start(t)
	jobs := mustRedisJobs(t, srv, "a", 0)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	d, err := jobs.Next(ctx)
	took := time.Since(start)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Next = %+v, %v, want context.Canceled", d, err)
	}
	if took > 1500*time.Millisecond {
		t.Errorf("Next returned %v after it began, %v after its context ended, want within 1.5 s", took, took-200*time.Millisecond)
	}
	t.Logf("Next returned %v after its context ended", took-200*time.Millisecond)
}

// TestRedisJobsBusy: Enqueue refuses with a *BusyError once MaxJobs jobs are unfinished,
// and accepts again once one is completed.
func TestRedisJobsBusy(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	jobs := NewRedisJobs(srv.Client(t), RedisJobsOptions{Prefix: "test:", Consumer: "a", MaxJobs: 2,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	for i := range 2 {
		if err := jobs.Enqueue(ctx, jobsJob(fmt.Sprint("j", i))); err != nil {
			t.Fatalf("Enqueue %d: %v", i, err)
		}
	}
	err := jobs.Enqueue(ctx, jobsJob("j2"))
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Len != 2 {
		t.Fatalf("Enqueue past MaxJobs: got %v, want a *BusyError with Len 2", err)
	}
	d, err := jobs.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if _, err := jobs.Complete(ctx, d, Verdict{Verdict: AC}); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if err := jobs.Enqueue(ctx, jobsJob("j2")); err != nil {
		t.Errorf("Enqueue after a job completed: %v", err)
	}
}

// TestRedisJobsUndecodable: a stream entry that is not a Job gets an IE verdict and is
// not delivered; the next job is.
func TestRedisJobsUndecodable(t *testing.T) {
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
	if err := jobs.Enqueue(ctx, jobsJob("j1")); err != nil {
		t.Fatal(err)
	}
	d, err := jobs.Next(ctx)
	if err != nil || d.Job.ID != "j1" {
		t.Fatalf("Next = %s, %v, want j1", d.Job.ID, err)
	}
	if v, ok, err := jobs.Verdict(ctx, "bad"); err != nil || !ok || v.Verdict != IE {
		t.Errorf("Verdict of the undecodable job = %+v, %v, %v, want IE", v, ok, err)
	}
}

// TestRedisJobsFairAcrossPlayers: a player's burst of five jobs, then one job each from
// three other players: the workers get the burst's first job, then the three newcomers',
// then the rest of the burst, one at a time; the busy bound counts the waiting jobs.
func TestRedisJobsFairAcrossPlayers(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	jobs := NewRedisJobs(srv.Client(t), RedisJobsOptions{Prefix: "test:", Consumer: "a", MaxJobs: 8,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	enqueue := func(id, player string) error {
		job := jobsJob(id)
		job.Player = player
		return jobs.Enqueue(ctx, job)
	}
	for i := range 5 {
		if err := enqueue(fmt.Sprint("burst", i), "greedy"); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"x", "y", "z"} {
		if err := enqueue(p, p); err != nil {
			t.Fatal(err)
		}
	}
	var busy *BusyError
	if err := enqueue("one-too-many", "w"); !errors.As(err, &busy) || busy.Len != 8 {
		t.Fatalf("Enqueue of a ninth job with MaxJobs 8: %v, want a *BusyError with Len 8", err)
	}
	var order []string
	for range 8 {
		d, err := jobs.Next(ctx)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		order = append(order, d.Job.ID)
		if _, err := jobs.Complete(ctx, d, Verdict{Verdict: AC}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"burst0", "x", "y", "z", "burst1", "burst2", "burst3", "burst4"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Errorf("judged in the order %v, want %v", order, want)
	}
	for _, k := range []string{jobs.inStreamKey(), jobs.waitKey("greedy")} {
		if n := jobs.rdb.Exists(ctx, k).Val(); n != 0 {
			t.Errorf("%s left behind after every job completed", k)
		}
	}
	if w := jobs.rdb.Get(ctx, jobs.waitingKey()).Val(); w != "0" {
		t.Errorf("waiting counter %q after every job completed, want 0", w)
	}
}

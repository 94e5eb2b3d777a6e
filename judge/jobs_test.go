package judge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/internal/redistest"
)

// jobsBackends runs a test against each Jobs backend: newJobs returns new, empty jobs that
// hold at most max unfinished jobs.
func jobsBackends(t *testing.T, test func(t *testing.T, newJobs func(max int) Jobs)) {
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		test(t, func(max int) Jobs { return NewMemoryJobs(max) })
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t)
		made := 0
		test(t, func(max int) Jobs {
			made++ // each its own keys
			return NewRedisJobs(srv.Client(t), RedisJobsOptions{Prefix: fmt.Sprintf("test%d:", made), Consumer: "a", MaxJobs: max,
				Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
		})
	})
}

// testJob is a small job of the given submission number and player.
func testJob(sub int, player string) Job {
	return Job{ID: JobID{Room: "123456", Question: 2, Submission: sub}, Player: player,
		Program: Program{Language: "python", Source: []byte("print(1)")},
		Tests:   []Test{{Input: []byte("1\n"), Output: []byte("1\n")}},
		Options: Options{Checker: "tokens", Limits: Limits{CPU: time.Second}}}
}

// TestJobsContract: what the workers rely on, from either backend.
func TestJobsContract(t *testing.T) {
	t.Parallel()
	jobsBackends(t, func(t *testing.T, newJobs func(int) Jobs) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		next := func(jobs Jobs) Delivery {
			t.Helper()
			d, err := jobs.Next(ctx)
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			return d
		}

		t.Run("a job comes out as it went in, once", func(t *testing.T) {
			jobs := newJobs(0)
			want := testJob(1, "123456/p1")
			if err := jobs.Enqueue(ctx, want); err != nil {
				t.Fatal(err)
			}
			d := next(jobs)
			if !reflect.DeepEqual(d.Job, want) || d.Attempt != 1 {
				t.Errorf("got %+v attempt %d, want %+v attempt 1", d.Job, d.Attempt, want)
			}
			if ok, err := jobs.Complete(ctx, d); !ok || err != nil {
				t.Errorf("Complete: got %v, %v, want true, nil", ok, err)
			}
			short, stop := context.WithTimeout(ctx, 100*time.Millisecond)
			defer stop()
			if d, err := jobs.Next(short); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Next with nothing left: got %+v, %v, want the context's deadline", d.Job.ID, err)
			}
		})

		t.Run("fair across players", func(t *testing.T) {
			// A player's burst of five, then one job each from three others: the burst's
			// first, the three newcomers', then the rest of the burst.
			jobs := newJobs(0)
			for i := range 5 {
				if err := jobs.Enqueue(ctx, testJob(10+i, "greedy")); err != nil {
					t.Fatal(err)
				}
			}
			for i, p := range []string{"x", "y", "z"} {
				if err := jobs.Enqueue(ctx, testJob(20+i, p)); err != nil {
					t.Fatal(err)
				}
			}
			var order []int
			for range 8 {
				d := next(jobs)
				order = append(order, d.Job.ID.Submission)
				if _, err := jobs.Complete(ctx, d); err != nil {
					t.Fatal(err)
				}
			}
			if want := []int{10, 20, 21, 22, 11, 12, 13, 14}; !reflect.DeepEqual(order, want) {
				t.Errorf("judged in the order %v, want %v", order, want)
			}
		})

		t.Run("busy when full", func(t *testing.T) {
			jobs := newJobs(2)
			for i := range 2 {
				if err := jobs.Enqueue(ctx, testJob(i, fmt.Sprint("p", i))); err != nil {
					t.Fatal(err)
				}
			}
			var busy *BusyError
			if err := jobs.Enqueue(ctx, testJob(2, "p2")); !errors.As(err, &busy) || busy.Len != 2 {
				t.Fatalf("Enqueue past the limit: got %v, want a *BusyError with Len 2", err)
			}
			if _, err := jobs.Complete(ctx, next(jobs)); err != nil {
				t.Fatal(err)
			}
			if err := jobs.Enqueue(ctx, testJob(2, "p2")); err != nil {
				t.Errorf("Enqueue after a job was completed: %v", err)
			}
		})

		t.Run("Next ends with its context", func(t *testing.T) {
			jobs := newJobs(0)
			cctx, cancel := context.WithCancel(ctx)
			time.AfterFunc(100*time.Millisecond, cancel)
			start := time.Now()
			if _, err := jobs.Next(cctx); !errors.Is(err, context.Canceled) {
				t.Errorf("Next: got %v, want context.Canceled", err)
			}
			if took := time.Since(start); took > 1500*time.Millisecond {
				t.Errorf("Next returned %v after its context ended, want within 1.5 s", took-100*time.Millisecond)
			}
			if err := jobs.Enqueue(ctx, testJob(1, "p")); err != nil {
				t.Fatal(err)
			}
			done, cancel2 := context.WithCancel(ctx)
			cancel2()
			if _, err := jobs.Next(done); !errors.Is(err, context.Canceled) {
				t.Errorf("Next with its context done and a job waiting: got %v, want context.Canceled", err)
			}
		})
	})
}

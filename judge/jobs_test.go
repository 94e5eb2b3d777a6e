package judge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/internal/redistest"
)

// jobsBackends runs a test against each Jobs backend: newJobs returns new, empty jobs that
// hold at most max unfinished jobs, roomMax of one room (the defaults where not positive).
func jobsBackends(t *testing.T, test func(t *testing.T, newJobs func(max, roomMax int) Jobs)) {
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		test(t, func(max, roomMax int) Jobs {
			return NewMemoryJobsWith(MemoryJobsOptions{MaxJobs: max, RoomJobs: roomMax})
		})
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t)
		made := 0
		test(t, func(max, roomMax int) Jobs {
			made++ // each its own keys
			return NewRedisJobs(srv.Client(t), RedisJobsOptions{Prefix: fmt.Sprintf("test%d:", made), Consumer: "a",
				MaxJobs: max, RoomJobs: roomMax, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
		})
	})
}

// testJob is a small job of the given submission number and player, in room 123456.
func testJob(sub int, player string) Job { return roomJob("123456", sub, player) }

// roomJob is a small job of the given room, submission number and player.
func roomJob(room string, sub int, player string) Job {
	return Job{ID: JobID{Room: room, Question: 2, Submission: sub}, Player: player,
		Program: Program{Language: "python", Source: []byte("print(1)")},
		Tests:   []Test{{Input: []byte("1\n"), Output: []byte("1\n")}},
		Options: Options{Checker: "tokens", Limits: Limits{CPU: time.Second}}}
}

// TestJobsContract: what the workers and the servers rely on, from either backend.
func TestJobsContract(t *testing.T) {
	t.Parallel()
	jobsBackends(t, func(t *testing.T, newJobs func(int, int) Jobs) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		enqueue := func(jobs Jobs, js ...Job) {
			t.Helper()
			for _, j := range js {
				if err := jobs.Enqueue(ctx, j); err != nil {
					t.Fatalf("Enqueue %s: %v", j.ID, err)
				}
			}
		}
		next := func(jobs Jobs) Delivery {
			t.Helper()
			d, err := jobs.Next(ctx)
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			return d
		}
		complete := func(jobs Jobs, d Delivery) {
			t.Helper()
			if ok, err := jobs.Complete(ctx, d); !ok || err != nil {
				t.Fatalf("Complete %s: got %v, %v, want true, nil", d.Job.ID, ok, err)
			}
		}
		// judgeAll takes and completes n jobs and returns their rooms, players and
		// submissions in the order they came.
		judgeAll := func(jobs Jobs, n int) []string {
			t.Helper()
			var order []string
			for range n {
				d := next(jobs)
				order = append(order, fmt.Sprintf("%s/%s/%d", d.Job.ID.Room, d.Job.Player, d.Job.ID.Submission))
				complete(jobs, d)
			}
			return order
		}
		nothingLeft := func(jobs Jobs) {
			t.Helper()
			short, stop := context.WithTimeout(ctx, 100*time.Millisecond)
			defer stop()
			if d, err := jobs.Next(short); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Next with nothing left: got %s, %v, want the context's deadline", d.Job.ID, err)
			}
		}

		t.Run("a job comes out as it went in, once", func(t *testing.T) {
			jobs := newJobs(0, 0)
			want := testJob(1, "p1")
			enqueue(jobs, want)
			d := next(jobs)
			if !reflect.DeepEqual(d.Job, want) || d.Attempt != 1 {
				t.Errorf("got %+v attempt %d, want %+v attempt 1", d.Job, d.Attempt, want)
			}
			complete(jobs, d)
			if ok, err := jobs.Complete(ctx, d); ok || err != nil {
				t.Errorf("Complete again: got %v, %v, want false (stale), nil", ok, err)
			}
			nothingLeft(jobs)
		})

		t.Run("equal tests with other samples keep their own", func(t *testing.T) {
			jobs := newJobs(0, 0)
			practice, contest := testJob(1, "p1"), testJob(2, "p2")
			practice.Tests = []Test{{Input: []byte("1 2\n"), Output: []byte("3\n"), Sample: true}}
			contest.Tests = []Test{{Input: []byte("1 2\n"), Output: []byte("3\n")}}
			enqueue(jobs, practice)
			enqueue(jobs, contest) // both waiting: equal tests share one copy
			for range 2 {
				d := next(jobs)
				if want := d.Job.ID.Submission == 1; d.Job.Tests[0].Sample != want {
					t.Errorf("job %s: got its test sample %v, want %v", d.Job.ID, d.Job.Tests[0].Sample, want)
				}
				complete(jobs, d)
			}
		})

		t.Run("fair across players", func(t *testing.T) {
			// A player's burst of five, then one job each from three others of its room:
			// the burst's first, the three newcomers', then the rest of the burst.
			jobs := newJobs(0, 0)
			for i := range 5 {
				enqueue(jobs, testJob(10+i, "greedy"))
			}
			for i, p := range []string{"x", "y", "z"} {
				enqueue(jobs, testJob(20+i, p))
			}
			got := judgeAll(jobs, 8)
			want := []string{"123456/greedy/10", "123456/x/20", "123456/y/21", "123456/z/22",
				"123456/greedy/11", "123456/greedy/12", "123456/greedy/13", "123456/greedy/14"}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("judged in the order %v, want %v", got, want)
			}
		})

		t.Run("fair across rooms, then players", func(t *testing.T) {
			// Room A: a1 three jobs, a2 two; room B one; room C two. Each round gives each
			// room one turn, and in its turn the room's next player goes.
			jobs := newJobs(0, 0)
			enqueue(jobs, roomJob("A", 1, "a1"), roomJob("A", 2, "a1"), roomJob("A", 3, "a1"),
				roomJob("A", 4, "a2"), roomJob("A", 5, "a2"), roomJob("B", 6, "b1"),
				roomJob("C", 7, "c1"), roomJob("C", 8, "c1"))
			got := judgeAll(jobs, 8)
			want := []string{"A/a1/1", "B/b1/6", "C/c1/7", "A/a2/4", "C/c1/8", "A/a1/2", "A/a2/5", "A/a1/3"}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("judged in the order %v, want %v", got, want)
			}
		})

		t.Run("a hostile room delays another's job by one job at most", func(t *testing.T) {
			// The measured attack: 30 players of one room send 5 jobs each. The room's
			// quota takes the first 100; an honest job of another room, sent last, comes
			// next, or (RedisJobs: decided one job ahead) the one after.
			jobs := newJobs(0, 0)
			accepted, refused := 0, 0
			for i := range 5 {
				for p := range 30 {
					err := jobs.Enqueue(ctx, roomJob("hostile", 100*p+i, fmt.Sprint("fake", p)))
					var busy *BusyError
					switch {
					case err == nil:
						accepted++
					case errors.As(err, &busy) && busy.Room == "hostile" && busy.Len == DefaultRoomJobs:
						refused++
					default:
						t.Fatalf("Enqueue: got %v, want nil or a *BusyError for room hostile with Len %d", err, DefaultRoomJobs)
					}
				}
			}
			if accepted != DefaultRoomJobs || refused != 150-DefaultRoomJobs {
				t.Errorf("got %d accepted, %d refused, want %d, %d", accepted, refused, DefaultRoomJobs, 150-DefaultRoomJobs)
			}
			enqueue(jobs, roomJob("honest", 1, "ann"))
			got := judgeAll(jobs, 2)
			if !slices.Contains(got, "honest/ann/1") {
				t.Errorf("the first two judged: got %v, want the honest job among them", got)
			}
		})

		t.Run("busy when full", func(t *testing.T) {
			jobs := newJobs(2, 0)
			enqueue(jobs, testJob(0, "p0"), roomJob("other", 1, "p1"))
			var busy *BusyError
			if err := jobs.Enqueue(ctx, roomJob("third", 2, "p2")); !errors.As(err, &busy) || busy.Len != 2 || busy.Room != "" {
				t.Fatalf("Enqueue past the limit: got %v, want a *BusyError with Len 2 and no room", err)
			}
			complete(jobs, next(jobs))
			enqueue(jobs, roomJob("third", 2, "p2"))
		})

		t.Run("busy when the room has its quota", func(t *testing.T) {
			// A job handed to a worker counts until it is completed; other rooms are not
			// affected.
			jobs := newJobs(0, 2)
			enqueue(jobs, roomJob("A", 1, "p"), roomJob("A", 2, "q"), roomJob("B", 3, "p"))
			var busy *BusyError
			if err := jobs.Enqueue(ctx, roomJob("A", 4, "r")); !errors.As(err, &busy) || busy.Room != "A" || busy.Len != 2 {
				t.Fatalf("Enqueue past room A's quota: got %v, want a *BusyError for room A with Len 2", err)
			}
			enqueue(jobs, roomJob("B", 5, "q"))
			d := next(jobs)
			if d.Job.ID.Submission != 1 {
				t.Fatalf("Next: got %s, want A's first", d.Job.ID)
			}
			if err := jobs.Enqueue(ctx, roomJob("A", 4, "r")); !errors.As(err, &busy) || busy.Room != "A" {
				t.Fatalf("Enqueue while room A's job is judged: got %v, want a *BusyError for room A", err)
			}
			complete(jobs, d)
			enqueue(jobs, roomJob("A", 4, "r"))
		})

		t.Run("Drop", func(t *testing.T) {
			// Room R: p three jobs, q one; room S: a player also named p. The worker has
			// R/p's first; Drop takes p's other two of room R only, and frees their
			// places in R's quota; the job being judged may finish.
			jobs := newJobs(0, 4)
			enqueue(jobs, roomJob("R", 1, "p"), roomJob("R", 2, "p"), roomJob("R", 3, "p"), roomJob("R", 4, "q"),
				roomJob("S", 5, "p"))
			judged := next(jobs)
			if judged.Job.ID.Submission != 1 {
				t.Fatalf("Next: got %s, want R's first", judged.Job.ID)
			}
			if n, err := jobs.Drop(ctx, "R", "p"); n != 2 || err != nil {
				t.Fatalf("Drop R/p: got %d, %v, want 2, nil", n, err)
			}
			enqueue(jobs, roomJob("R", 6, "q"), roomJob("R", 7, "q"))
			var busy *BusyError
			if err := jobs.Enqueue(ctx, roomJob("R", 8, "q")); !errors.As(err, &busy) || busy.Room != "R" {
				t.Fatalf("Enqueue of a fifth job of room R: got %v, want a *BusyError for room R", err)
			}
			for _, dropped := range []struct{ room, player string }{{"R", "p"}, {"R", "nobody"}, {"nowhere", "p"}} {
				if n, err := jobs.Drop(ctx, dropped.room, dropped.player); n != 0 || err != nil {
					t.Errorf("Drop %s/%s: got %d, %v, want 0, nil", dropped.room, dropped.player, n, err)
				}
			}
			complete(jobs, judged)
			got := judgeAll(jobs, 4)
			want := []string{"S/p/5", "R/q/4", "R/q/6", "R/q/7"}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("judged in the order %v, want %v", got, want)
			}
			nothingLeft(jobs)
		})

		t.Run("a room and a player are needed, without colons", func(t *testing.T) {
			jobs := newJobs(0, 0)
			for _, j := range []Job{roomJob("", 1, "p"), roomJob("R", 1, ""), roomJob("R:x", 1, "p"), roomJob("R", 1, "p:x")} {
				if err := jobs.Enqueue(ctx, j); err == nil {
					t.Errorf("Enqueue of room %q player %q: got nil, want an error", j.ID.Room, j.Player)
				}
			}
			if n, err := jobs.Drop(ctx, "R:x", "p"); n != 0 || err == nil {
				t.Errorf("Drop of room %q: got %d, %v, want 0 and an error", "R:x", n, err)
			}
			enqueue(jobs, roomJob("R", 2, "p"))
			if d := next(jobs); d.Job.ID.Submission != 2 {
				t.Errorf("Next: got %s, want the one valid job", d.Job.ID)
			}
		})

		t.Run("Next ends with its context", func(t *testing.T) {
			jobs := newJobs(0, 0)
			cctx, cancel := context.WithCancel(ctx)
			time.AfterFunc(100*time.Millisecond, cancel)
			start := time.Now()
			if _, err := jobs.Next(cctx); !errors.Is(err, context.Canceled) {
				t.Errorf("Next: got %v, want context.Canceled", err)
			}
			if took := time.Since(start); took > 1500*time.Millisecond {
				t.Errorf("Next returned %v after its context ended, want within 1.5 s", took-100*time.Millisecond)
			}
			enqueue(jobs, testJob(1, "p"))
			done, cancel2 := context.WithCancel(ctx)
			cancel2()
			if _, err := jobs.Next(done); !errors.Is(err, context.Canceled) {
				t.Errorf("Next with its context done and a job waiting: got %v, want context.Canceled", err)
			}
		})
	})
}

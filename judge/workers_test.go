package judge

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/internal/redistest"
)

// workersBox0 is the first box id of the workers test (see poolBox0).
const workersBox0 = 80

// TestWorkersShareHost: two judge processes' workers (two Workers with their own consumer
// and worker names) serve one stream and share one host's two boxes through Redis: 24
// submissions from 6 players, enqueued at once, each get exactly one verdict, the right
// one, recorded before the job is completed; no box ever runs two programs at once, and
// both processes judge some.
func TestWorkersShareHost(t *testing.T) {
	const jobs, players, boxes = 24, 6, 2
	srv := redistest.Start(t)
	sb, root := MustBwrap(t)
	ex := &exclusiveSandbox{Sandbox: sb, tb: t}
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	producer := NewRedisJobs(srv.Client(t), RedisJobsOptions{Prefix: "test:", Logger: log})
	want := map[string]string{}
	var wg sync.WaitGroup
	for i := range jobs {
		lang := []string{"python", "c"}[i%2]
		ac := i%3 != 0
		job := sumJob(fmt.Sprintf("job-%d", i), fmt.Sprintf("player-%d", i%players), lang, i, 7, 0, ac)
		want[job.ID] = map[bool]string{true: AC, false: WA}[ac]
		wg.Go(func() {
			if err := producer.Enqueue(ctx, job); err != nil {
				t.Errorf("Enqueue %s: %v", job.ID, err)
			}
		})
	}
	wg.Wait()

	var mu sync.Mutex
	got := map[string][]Verdict{}
	by := map[string]int{} // verdicts recorded per process
	done := make(chan struct{})
	wctx, stop := context.WithCancel(ctx)
	var running sync.WaitGroup
	for _, name := range []string{"judge-a", "judge-b"} {
		rdb := srv.Client(t)
		hostBoxes := NewRedisBoxes(rdb, RedisBoxesOptions{Prefix: "test:", Host: "h", Worker: name, First: workersBox0, Boxes: boxes,
			Clean: func(ctx context.Context, id int) error {
				box, err := NewBox(root, id)
				if err != nil {
					return err
				}
				return sb.Clean(ctx, box)
			}, Logger: log})
		w, err := NewWorkers(WorkersOptions{
			Jobs:    NewRedisJobs(rdb, RedisJobsOptions{Prefix: "test:", Consumer: name, Logger: log}),
			Sandbox: ex, Boxes: hostBoxes, Root: root, Workers: 2, Logger: log,
			OnVerdict: func(_ context.Context, job Job, v Verdict) error {
				mu.Lock()
				defer mu.Unlock()
				got[job.ID] = append(got[job.ID], v)
				by[name]++
				if len(got) == jobs {
					close(done)
				}
				return nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		running.Go(func() { _ = hostBoxes.Run(wctx) })
		running.Go(func() { _ = w.Run(wctx) })
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Error("not every job got a verdict in time")
	}
	stop()
	running.Wait()

	mu.Lock()
	defer mu.Unlock()
	for id, w := range want {
		switch v := got[id]; {
		case len(v) != 1:
			t.Errorf("%s: %d verdicts, want 1", id, len(v))
		case v[0].Verdict != w:
			t.Errorf("%s: %s (%s), want %s", id, v[0].Verdict, v[0].Message, w)
		}
	}
	if by["judge-a"] == 0 || by["judge-b"] == 0 {
		t.Errorf("verdicts per process %v, want both to judge", by)
	}
	if peak := ex.peak.Load(); peak > boxes {
		t.Errorf("%d runs at once on %d boxes", peak, boxes)
	}
	if n := srv.Client(t).XLen(ctx, producer.stream).Val(); n != 0 {
		t.Errorf("%d jobs left in the stream", n)
	}
	t.Logf("verdicts per process %v; %d runs, at most %d at once", by, ex.runs.Load(), ex.peak.Load())
}

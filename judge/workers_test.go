package judge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/internal/redistest"
	"github.com/bulbquiz/bulb/protocol"
)

// exclusiveSandbox wraps a real sandbox and fails the test if two runs ever use one box at
// once: a flag per box is set on entry to Run and cleared on exit.
type exclusiveSandbox struct {
	Sandbox
	tb     testing.TB
	inUse  [128]atomic.Bool
	active atomic.Int32 // runs in progress
	peak   atomic.Int32 // most runs in progress at once
	runs   atomic.Int32 // runs started
}

func (s *exclusiveSandbox) Run(ctx context.Context, box Box, spec RunSpec) (RunResult, error) {
	if s.inUse[box.ID].Swap(true) {
		s.tb.Errorf("box %d used by two runs at once", box.ID)
	}
	defer s.inUse[box.ID].Store(false)
	n := s.active.Add(1)
	defer s.active.Add(-1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	s.runs.Add(1)
	return s.Sandbox.Run(ctx, box, spec)
}

// workersBox0 is the first box id of the workers tests, apart from the other tests' boxes:
// box uids and cgroup names are host-wide, so tests elsewhere on the host may hold 0 to
// 69. Each test takes its own ten.
const workersBox0 = 70

// verdicts records the verdicts the workers hand over, by job.
type verdicts struct {
	mu    sync.Mutex
	order []JobID // in the order of their verdicts
	got   map[JobID][]protocol.Verdict
	by    map[string]int // verdicts recorded per worker process
	ch    chan JobID     // each job as its verdict arrives
}

func newVerdicts() *verdicts {
	return &verdicts{got: map[JobID][]protocol.Verdict{}, by: map[string]int{}, ch: make(chan JobID, 1000)}
}

// record returns the RecordFunc of the workers of one process.
func (v *verdicts) record(process string) RecordFunc {
	return func(_ context.Context, job Job, verdict protocol.Verdict) error {
		v.mu.Lock()
		v.order = append(v.order, job.ID)
		v.got[job.ID] = append(v.got[job.ID], verdict)
		v.by[process]++
		v.mu.Unlock()
		v.ch <- job.ID
		return nil
	}
}

// check says whether every job of want got exactly one verdict, the one wanted.
func (v *verdicts) check(t *testing.T, want map[JobID]string) {
	t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.order) != len(want) {
		t.Errorf("got %d verdicts, want %d", len(v.order), len(want))
	}
	for id, w := range want {
		switch got := v.got[id]; {
		case len(got) != 1:
			t.Errorf("%s: got %d verdicts, want 1", id, len(got))
		case got[0].Verdict != w:
			t.Errorf("%s: got %s (%s), want %s", id, got[0].Verdict, got[0].Message, w)
		}
	}
}

// wait waits for n more verdicts.
func (v *verdicts) wait(tb testing.TB, n int, timeout time.Duration) {
	tb.Helper()
	deadline := time.After(timeout)
	for i := range n {
		select {
		case <-v.ch:
		case <-deadline:
			tb.Fatalf("got %d verdicts in %v, want %d", i, timeout, n)
		}
	}
}

// sumJob is submission sub, whose one test asks for a+b: the program sleeps for sleep, then prints
// a+b (ac) or a−b.
func sumJob(sub int, player, lang string, a, b int, sleep time.Duration, ac bool) Job {
	op := "+"
	if !ac {
		op = "-"
	}
	var src string
	switch lang {
	case "python":
		src = fmt.Sprintf("import time\ntime.sleep(%g)\na, b = map(int, input().split())\nprint(a %s b)\n", sleep.Seconds(), op)
	case "c":
		src = fmt.Sprintf("#define _POSIX_C_SOURCE 200809L\n#include <stdio.h>\n#include <time.h>\n"+
			"int main(void){struct timespec ts={0,%dL};nanosleep(&ts,0);long a,b;scanf(\"%%ld %%ld\",&a,&b);printf(\"%%ld\\n\",a%sb);return 0;}\n",
			sleep.Nanoseconds(), op)
	}
	return Job{
		ID: JobID{Room: "123456", Question: 1, Submission: sub}, Player: player,
		Program: Program{Language: lang, Source: []byte(src)},
		Tests:   []Test{{Input: fmt.Appendf(nil, "%d %d\n", a, b), Output: fmt.Appendf(nil, "%d\n", a+b)}},
		Options: Options{Checker: "tokens", Limits: testLimits},
	}
}

// mustSandboxBoxes returns the host's boxes first to first+n−1 for sb's runs under root,
// on the host-wide lock directory, as a judge process has them.
func mustSandboxBoxes(tb testing.TB, sb Sandbox, root string, first, n int) *HostBoxes {
	tb.Helper()
	return mustHostBoxes(tb, DefaultBoxLocks, first, n, func(ctx context.Context, id int) error {
		box, err := NewBox(root, id)
		if err != nil {
			return err
		}
		return sb.Clean(ctx, box)
	})
}

// MustWorkers returns workers on MemoryJobs and the real bwrap sandbox wrapped in an
// exclusiveSandbox, with the host's boxes first to first+boxes−1.
func MustWorkers(tb testing.TB, first, boxes, workers int) (*Workers, *MemoryJobs, *exclusiveSandbox) {
	tb.Helper()
	sb, root := MustBwrap(tb)
	ex := &exclusiveSandbox{Sandbox: sb, tb: tb}
	jobs := NewMemoryJobs(0)
	w, err := NewWorkers(WorkersOptions{Jobs: jobs, Sandbox: ex, Boxes: mustSandboxBoxes(tb, sb, root, first, boxes), Root: root,
		Workers: workers, Logger: slog.New(slog.NewTextHandler(tb.Output(), nil))})
	if err != nil {
		tb.Fatalf("NewWorkers: %v", err)
	}
	return w, jobs, ex
}

// startWorkers runs w, recording with record, until the returned stop is called (or the
// test ends); stop cancels Run's context and returns Run's error once it has returned.
func startWorkers(tb testing.TB, w *Workers, record RecordFunc) (stop func() error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, record) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				err = errors.New("Run did not return within 10 s of its context ending")
			}
		})
		return err
	}
	tb.Cleanup(func() { _ = stop() })
	return stop
}

// TestWorkersManySubmissions: 50 submissions of 10 players, enqueued at once while four
// workers run on four boxes, each get one verdict, the right one; runs overlap, never in
// one box.
func TestWorkersManySubmissions(t *testing.T) {
	t.Parallel()
	const jobs, players, boxes = 50, 10, 4
	w, q, ex := MustWorkers(t, workersBox0, boxes, boxes)
	vs := newVerdicts()
	want := map[JobID]string{}
	var all []Job
	for i := range jobs {
		lang := "python"
		if i%3 == 0 {
			lang = "c"
		}
		ac := i%2 == 0
		job := sumJob(i, fmt.Sprintf("player-%d", i%players), lang, i, 1000, time.Duration(50+10*(i%6))*time.Millisecond, ac)
		want[job.ID] = map[bool]string{true: protocol.AC, false: protocol.WA}[ac]
		all = append(all, job)
	}
	// All at once: every submission races with the others and with the workers.
	var wg sync.WaitGroup
	for _, job := range all {
		wg.Go(func() {
			if err := q.Enqueue(context.Background(), job); err != nil {
				t.Errorf("Enqueue %s: %v", job.ID, err)
			}
		})
	}
	start := time.Now()
	stop := startWorkers(t, w, vs.record("p"))
	wg.Wait()
	vs.wait(t, jobs, 60*time.Second)
	took := time.Since(start)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("%d jobs on %d boxes in %v; %d runs, at most %d at once", jobs, boxes, took, ex.runs.Load(), ex.peak.Load())
	vs.check(t, want)
	if peak := ex.peak.Load(); peak > boxes || peak < 2 {
		t.Errorf("got at most %d runs at once, want 2 to %d", peak, boxes)
	}
}

// TestWorkersFairness: one worker, a player's 20 submissions, then another's one: the
// other's is judged within the first few.
func TestWorkersFairness(t *testing.T) {
	t.Parallel()
	w, q, _ := MustWorkers(t, workersBox0+10, 1, 1)
	vs := newVerdicts()
	stop := startWorkers(t, w, vs.record("p"))
	ctx := context.Background()
	for i := range 20 {
		if err := q.Enqueue(ctx, sumJob(i, "greedy", "python", i, 1, 0, true)); err != nil {
			t.Fatal(err)
		}
	}
	patient := sumJob(99, "patient", "python", 1, 1, 0, true)
	if err := q.Enqueue(ctx, patient); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for id := (JobID{}); id != patient.ID; {
		select {
		case id = <-vs.ch:
		case <-deadline:
			t.Fatal("the patient player's job got no verdict in 30 s")
		}
	}
	vs.mu.Lock()
	before := len(vs.order) - 1
	got := vs.got[patient.ID]
	vs.mu.Unlock()
	t.Logf("the patient player's job was judged after %d of the greedy player's", before)
	if before > 5 {
		t.Errorf("got the patient player's job judged after %d of the greedy player's, want at most 5", before)
	}
	if len(got) != 1 || got[0].Verdict != protocol.AC {
		t.Errorf("got patient verdicts %+v, want one AC", got)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestWorkersShutdown: when Run's context ends while both boxes run a program, Run
// returns promptly, the programs are gone, the jobs cut short get no verdict, and no
// goroutine is left.
func TestWorkersShutdown(t *testing.T) {
	const boxes, box0 = 2, workersBox0 + 20
	baseline := runtime.NumGoroutine()
	w, q, ex := MustWorkers(t, box0, boxes, boxes)
	vs := newVerdicts()
	stop := startWorkers(t, w, vs.record("p"))
	for i := range 4 {
		job := sumJob(i, fmt.Sprintf("p%d", i), "python", i, 1, 30*time.Second, true)
		job.Options.Limits.Wall = time.Minute
		if err := q.Enqueue(context.Background(), job); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until both boxes run a program.
	for deadline := time.Now().Add(10 * time.Second); len(uidProcesses(BaseUID+box0)) == 0 || len(uidProcesses(BaseUID+box0+1)) == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("the programs did not start in 10 s (%d runs in progress)", ex.active.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Run returned %v after its context ended, want promptly", d)
	}
	if n := ex.active.Load(); n != 0 {
		t.Errorf("got %d runs in progress after Run returned, want 0", n)
	}
	for id := range boxes {
		if pids := uidProcesses(BaseUID + box0 + id); len(pids) != 0 {
			t.Errorf("processes of box %d left: %v", id, pids)
		}
	}
	vs.mu.Lock()
	if len(vs.order) != 0 {
		t.Errorf("got verdicts for %v, want none for jobs cut short", vs.order)
	}
	vs.mu.Unlock()
	var n int
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if n = runtime.NumGoroutine(); n <= baseline || time.Now().After(deadline) {
			break
		}
	}
	if n > baseline {
		buf := make([]byte, 1<<16)
		t.Errorf("got %d goroutines after Run returned, want at most %d as before:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
	}
}

// TestWorkersShareHost: two judge processes' workers (two Workers with their own consumer
// names and their own HostBoxes) serve one stream and share one host's two boxes: 24
// submissions from 6 players, enqueued at once, each get exactly one verdict, the right
// one, recorded before the job is completed; no box ever runs two programs at once, and
// both processes judge some.
func TestWorkersShareHost(t *testing.T) {
	t.Parallel()
	const jobs, players, boxes = 24, 6, 2
	srv := redistest.Start(t)
	sb, root := MustBwrap(t)
	ex := &exclusiveSandbox{Sandbox: sb, tb: t}
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	producer := NewRedisJobs(srv.Client(t), RedisJobsOptions{Prefix: "test:", Logger: log})
	want := map[JobID]string{}
	var wg sync.WaitGroup
	for i := range jobs {
		lang := []string{"python", "c"}[i%2]
		ac := i%3 != 0
		job := sumJob(i, fmt.Sprintf("player-%d", i%players), lang, i, 7, 0, ac)
		want[job.ID] = map[bool]string{true: protocol.AC, false: protocol.WA}[ac]
		wg.Go(func() {
			if err := producer.Enqueue(ctx, job); err != nil {
				t.Errorf("Enqueue %s: %v", job.ID, err)
			}
		})
	}
	wg.Wait()

	vs := newVerdicts()
	wctx, stop := context.WithCancel(ctx)
	var running sync.WaitGroup
	for _, name := range []string{"judge-a", "judge-b"} {
		rdb := srv.Client(t)
		hostBoxes := mustSandboxBoxes(t, sb, root, workersBox0+30, boxes) // one host: one lock directory
		w, err := NewWorkers(WorkersOptions{
			Jobs:    NewRedisJobs(rdb, RedisJobsOptions{Prefix: "test:", Consumer: name, Logger: log}),
			Sandbox: ex, Boxes: hostBoxes, Root: root, Workers: 2, Logger: log,
		})
		if err != nil {
			t.Fatal(err)
		}
		running.Go(func() { _ = w.Run(wctx, vs.record(name)) })
	}
	vs.wait(t, jobs, 80*time.Second)
	stop()
	running.Wait()

	vs.check(t, want)
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if vs.by["judge-a"] == 0 || vs.by["judge-b"] == 0 {
		t.Errorf("verdicts per process %v, want both to judge", vs.by)
	}
	if peak := ex.peak.Load(); peak > boxes {
		t.Errorf("%d runs at once on %d boxes", peak, boxes)
	}
	if n := srv.Client(t).XLen(ctx, producer.stream).Val(); n != 0 {
		t.Errorf("%d jobs left in the stream", n)
	}
	t.Logf("verdicts per process %v; %d runs, at most %d at once", vs.by, ex.runs.Load(), ex.peak.Load())
}

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

// poolBox0 is the first box id of the pool tests, apart from the other tests' boxes: box
// uids and cgroup names are host-wide, so tests elsewhere on the host may hold 0 to 69.
const poolBox0 = 70

// verdicts collects what OnVerdict hands over.
type verdicts struct {
	mu    sync.Mutex
	order []string // job ids in the order of their verdicts
	got   map[string][]Verdict
	ch    chan string // each job id as its verdict arrives
}

func newVerdicts() *verdicts {
	return &verdicts{got: map[string][]Verdict{}, ch: make(chan string, 1000)}
}

func (v *verdicts) on(job Job, verdict Verdict) {
	v.mu.Lock()
	v.order = append(v.order, job.ID)
	v.got[job.ID] = append(v.got[job.ID], verdict)
	v.mu.Unlock()
	v.ch <- job.ID
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

// MustPool returns a pool on the real bwrap sandbox wrapped in an exclusiveSandbox, with
// opts' Sandbox, Root, OnVerdict and Logger filled in.
func MustPool(tb testing.TB, opts PoolOptions) (*Pool, *exclusiveSandbox, *verdicts) {
	tb.Helper()
	sb, root := MustBwrap(tb)
	ex := &exclusiveSandbox{Sandbox: sb, tb: tb}
	vs := newVerdicts()
	opts.Sandbox, opts.Root, opts.OnVerdict = ex, root, vs.on
	opts.Logger = slog.New(slog.NewTextHandler(tb.Output(), nil))
	p, err := NewPool(opts)
	if err != nil {
		tb.Fatalf("NewPool: %v", err)
	}
	return p, ex, vs
}

// startPool runs p until the returned stop is called (or the test ends); stop cancels
// Run's context and returns Run's error once it has returned.
func startPool(tb testing.TB, p *Pool) (stop func() error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
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

// sumJob is a job whose one test asks for a+b: the program sleeps for sleep, then prints
// a+b (ac) or a−b.
func sumJob(id, player, lang string, a, b int, sleep time.Duration, ac bool) Job {
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
		ID: id, Player: player,
		Submission: Submission{Language: lang, Source: []byte(src)},
		Tests:      []Test{{Input: fmt.Appendf(nil, "%d %d\n", a, b), Output: fmt.Appendf(nil, "%d\n", a+b)}},
		Options:    Options{Checker: "tokens", Limits: testLimits},
	}
}

func TestPoolManySubmissions(t *testing.T) {
	const jobs, players, boxes = 50, 10, 4
	p, ex, vs := MustPool(t, PoolOptions{Boxes: NewMemoryBoxes(poolBox0, boxes), Workers: boxes, QueueSize: jobs})
	want := map[string]string{}
	var all []Job
	for i := range jobs {
		lang := "python"
		if i%3 == 0 {
			lang = "c"
		}
		ac := i%2 == 0
		job := sumJob(fmt.Sprintf("job-%d", i), fmt.Sprintf("player-%d", i%players), lang, i, 1000, time.Duration(50+10*(i%6))*time.Millisecond, ac)
		want[job.ID] = map[bool]string{true: AC, false: WA}[ac]
		all = append(all, job)
	}
	// All at once: every submission races with the others and with the workers.
	var wg sync.WaitGroup
	for _, job := range all {
		wg.Go(func() {
			if err := p.Submit(job); err != nil {
				t.Errorf("Submit %s: %v", job.ID, err)
			}
		})
	}
	start := time.Now()
	stop := startPool(t, p)
	wg.Wait()
	vs.wait(t, jobs, 60*time.Second)
	took := time.Since(start)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("%d jobs on %d boxes in %v; %d runs, at most %d at once", jobs, boxes, took, ex.runs.Load(), ex.peak.Load())

	vs.mu.Lock()
	defer vs.mu.Unlock()
	if len(vs.order) != jobs {
		t.Errorf("got %d verdicts, want %d", len(vs.order), jobs)
	}
	for id, w := range want {
		got := vs.got[id]
		if len(got) != 1 {
			t.Errorf("%s: got %d verdicts, want 1", id, len(got))
			continue
		}
		if got[0].Verdict != w {
			t.Errorf("%s: got %s (%s), want %s", id, got[0].Verdict, got[0].Message, w)
		}
	}
	if peak := ex.peak.Load(); peak > boxes || peak < 2 {
		t.Errorf("got at most %d runs at once, want 2 to %d", peak, boxes)
	}
}

func TestPoolFairness(t *testing.T) {
	p, _, vs := MustPool(t, PoolOptions{Boxes: NewMemoryBoxes(poolBox0, 1), Workers: 1})
	stop := startPool(t, p)
	for i := range 20 {
		if err := p.Submit(sumJob(fmt.Sprintf("greedy-%d", i), "greedy", "python", i, 1, 0, true)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Submit(sumJob("patient", "patient", "python", 1, 1, 0, true)); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for id := ""; id != "patient"; {
		select {
		case id = <-vs.ch:
		case <-deadline:
			t.Fatal("the patient player's job got no verdict in 30 s")
		}
	}
	vs.mu.Lock()
	before := len(vs.order) - 1
	vs.mu.Unlock()
	t.Logf("the patient player's job was judged after %d of the greedy player's", before)
	if before > 5 {
		t.Errorf("got the patient player's job judged after %d of the greedy player's, want at most 5", before)
	}
	if v := vs.got["patient"]; len(v) != 1 || v[0].Verdict != AC {
		t.Errorf("got patient verdicts %+v, want one AC", v)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestPoolBusy(t *testing.T) {
	boxes := NewMemoryBoxes(poolBox0, 1)
	p, _, vs := MustPool(t, PoolOptions{Boxes: boxes, Workers: 1, QueueSize: 5})
	// Block the pool: the test holds its only box.
	held, err := boxes.Lease(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stop := startPool(t, p)
	if err := p.Submit(sumJob("first", "p0", "python", 1, 2, 0, true)); err != nil {
		t.Fatal(err)
	}
	for p.Len() != 0 { // the worker took it and waits for a box
		time.Sleep(time.Millisecond)
	}
	for i := range 5 {
		if err := p.Submit(sumJob(fmt.Sprintf("queued-%d", i), fmt.Sprintf("p%d", i), "python", i, 2, 0, i != 3)); err != nil {
			t.Fatalf("Submit %d: %v", i, err)
		}
	}
	err = p.Submit(sumJob("sixth", "p9", "python", 1, 2, 0, true))
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Len != 5 {
		t.Fatalf("got %v, want a *BusyError with Len 5", err)
	}
	if err := held.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	vs.wait(t, 6, 30*time.Second)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	vs.mu.Lock()
	defer vs.mu.Unlock()
	want := map[string]string{"first": AC, "queued-0": AC, "queued-1": AC, "queued-2": AC, "queued-3": WA, "queued-4": AC}
	if len(vs.order) != len(want) {
		t.Errorf("got verdicts for %v, want %d", vs.order, len(want))
	}
	for id, w := range want {
		if got := vs.got[id]; len(got) != 1 || got[0].Verdict != w {
			t.Errorf("%s: got %+v, want one %s", id, got, w)
		}
	}
}

func TestPoolShutdown(t *testing.T) {
	const boxes = 2
	baseline := runtime.NumGoroutine()
	p, ex, vs := MustPool(t, PoolOptions{Boxes: NewMemoryBoxes(poolBox0, boxes), Workers: boxes})
	stop := startPool(t, p)
	for i := range 4 {
		job := sumJob(fmt.Sprintf("slow-%d", i), fmt.Sprintf("p%d", i), "python", i, 1, 30*time.Second, true)
		job.Options.Limits.Wall = time.Minute
		if err := p.Submit(job); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until both boxes run a program.
	for deadline := time.Now().Add(10 * time.Second); len(uidProcesses(BaseUID+poolBox0)) == 0 || len(uidProcesses(BaseUID+poolBox0+1)) == 0; {
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
		if pids := uidProcesses(BaseUID + poolBox0 + id); len(pids) != 0 {
			t.Errorf("processes of box %d left: %v", id, pids)
		}
	}
	vs.mu.Lock()
	if len(vs.order) != 0 {
		t.Errorf("got verdicts for %v, want none for jobs cut short", vs.order)
	}
	vs.mu.Unlock()
	if p.Len() != 2 {
		t.Errorf("got %d jobs waiting, want 2", p.Len())
	}
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

package judge

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"time"

	"golang.org/x/sync/errgroup"
)

// WorkersOptions configure Workers. Jobs, Sandbox, Boxes, Root and OnVerdict are required.
type WorkersOptions struct {
	Jobs    *RedisJobs // with a Consumer: this process's name in the group
	Sandbox Sandbox
	Boxes   Boxes  // the host's boxes, shared with the other judge processes on the host
	Root    string // the directory of the box directories (see NewBox)
	// Workers is the number of jobs judged at once; zero means runtime.NumCPU().
	Workers int
	// OnVerdict records a job's verdict where its submitter will find it. It runs before
	// the job is completed: if it fails, the job stays pending and is judged again once
	// ClaimIdle has passed, so OnVerdict must be idempotent (the first verdict wins).
	OnVerdict func(ctx context.Context, job Job, v Verdict) error
	// Logger receives the workers' diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// Workers judge the jobs of a RedisJobs: each of Workers goroutines takes the next job
// (a dead worker's first, see RedisJobs.Next), leases a box, judges the job in it, hands
// the verdict to OnVerdict and completes the job. Several judge processes, on one host or
// many, serve one stream together.
type Workers struct {
	opts     WorkersOptions
	boxJudge boxJudge
	log      *slog.Logger
}

// NewWorkers returns workers that judge nothing until Run.
func NewWorkers(opts WorkersOptions) (*Workers, error) {
	if opts.Jobs == nil || opts.Sandbox == nil || opts.Boxes == nil || opts.Root == "" || opts.OnVerdict == nil {
		return nil, errors.New("judge: workers need Jobs, a Sandbox, Boxes, a Root and OnVerdict")
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger.With("component", "judge.workers")
	return &Workers{opts: opts, log: log, boxJudge: boxJudge{sandbox: opts.Sandbox, boxes: opts.Boxes, root: opts.Root, log: log}}, nil
}

// retryPause is how long a worker waits after Redis failed it before asking again.
const retryPause = time.Second

// Run judges jobs on Workers goroutines until ctx is done, then cancels the runs in
// progress (their jobs stay pending, for another worker to claim), waits for every worker
// to return and returns nil.
func (w *Workers) Run(ctx context.Context) error {
	w.log.Info("judging jobs from Redis", "workers", w.opts.Workers)
	var g errgroup.Group
	for range w.opts.Workers {
		g.Go(func() error {
			for ctx.Err() == nil {
				d, err := w.opts.Jobs.Next(ctx)
				if err != nil {
					if ctx.Err() == nil {
						w.log.Warn("taking a job", "err", err)
						sleep(ctx, retryPause)
					}
					continue
				}
				w.judge(ctx, d)
			}
			return nil
		})
	}
	return g.Wait()
}

// judge judges one delivery, records its verdict and completes it.
func (w *Workers) judge(ctx context.Context, d Delivery) {
	start := time.Now()
	v, boxID, ok := w.boxJudge.judge(ctx, d.Job)
	if !ok {
		w.log.Warn("job cut short by shutdown: left for another worker", "job", d.Job.ID)
		return
	}
	w.log.Debug("judged", "job", d.Job.ID, "attempt", d.Attempt, "box", boxID, "verdict", v.Verdict, "took", time.Since(start))
	// The job is judged: record and complete it even if ctx ends now.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := w.opts.OnVerdict(rctx, d.Job, v); err != nil {
		w.log.Error("recording a verdict: the job will be judged again", "job", d.Job.ID, "err", err)
		return
	}
	if _, err := w.opts.Jobs.Complete(rctx, d, v); err != nil {
		w.log.Error("completing a job: it will be judged again", "job", d.Job.ID, "err", err)
	}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

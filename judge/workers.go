package judge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bulbquiz/bulb/protocol"
)

// WorkersOptions configure Workers. Jobs, Sandbox, Boxes and Root are required.
type WorkersOptions struct {
	Jobs    Jobs // MemoryJobs in one process; RedisJobs, with this process as Consumer, across processes
	Sandbox Sandbox
	Boxes   Boxes  // the host's boxes; their ids are the box ids under Root
	Root    string // the directory of the box directories (see NewBox)
	// Workers is the number of jobs judged at once; zero means runtime.NumCPU(). Workers
	// beyond the number of boxes wait for a box.
	Workers int
	// Logger receives the workers' diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// RecordFunc records a judged job's verdict where its submitter will find it. A job may
// be judged more than once (see Jobs), so it must keep the first verdict of a job and
// take a later one as a no-op.
type RecordFunc func(ctx context.Context, job Job, v protocol.Verdict) error

// Workers judge the jobs of a Jobs: each of Workers goroutines takes the next job, leases
// a box, judges the job in it, releases the box, records the verdict and completes the
// job. Several processes' Workers, on one host or many, may serve one RedisJobs together.
//
// When Run's context ends, the runs in progress are killed and their jobs get no verdict
// from these workers: RedisJobs hands them to another worker later; MemoryJobs lose them
// with the process. A job judged before the shutdown keeps its verdict.
type Workers struct {
	opts    WorkersOptions
	log     *slog.Logger
	running atomic.Bool
}

// releaseTimeout bounds giving a box back and recording a verdict, which may happen after
// Run's context is done.
const releaseTimeout = 5 * time.Second

// retryPause is how long a worker waits after the jobs failed it before asking again.
const retryPause = time.Second

// NewWorkers returns workers that judge nothing until Run.
func NewWorkers(opts WorkersOptions) (*Workers, error) {
	if opts.Jobs == nil || opts.Sandbox == nil || opts.Boxes == nil || opts.Root == "" {
		return nil, errors.New("judge: workers need Jobs, a Sandbox, Boxes and a Root")
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Workers{opts: opts, log: opts.Logger.With("component", "judge.workers")}, nil
}

// Run judges jobs on Workers goroutines, recording each verdict with record, until ctx is
// done; then it cancels the runs in progress, waits for every worker to return and returns
// nil. Run may be called once.
func (w *Workers) Run(ctx context.Context, record RecordFunc) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("judge: workers already run")
	}
	w.log.Info("judging", "workers", w.opts.Workers)
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
				w.judge(ctx, d, record)
			}
			return nil
		})
	}
	err := g.Wait()
	w.log.Info("stopped")
	return err
}

// judge judges one delivery, records its verdict and completes it, unless ctx ended the
// judging first.
func (w *Workers) judge(ctx context.Context, d Delivery, record RecordFunc) {
	start := time.Now()
	v, boxID, ok := w.evaluate(ctx, d.Job)
	if !ok {
		w.log.Warn("job cut short by shutdown: no verdict", "job", d.Job.ID, "player", d.Job.Player)
		return
	}
	w.log.Debug("judged", "job", d.Job.ID, "attempt", d.Attempt, "box", boxID, "verdict", v.Verdict, "took", time.Since(start))
	// The job is judged: record and complete it even if ctx ends now.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := record(rctx, d.Job, v); err != nil {
		w.log.Error("recording a verdict", "job", d.Job.ID, "err", err)
		return // not completed: RedisJobs hand the job to a worker again
	}
	if _, err := w.opts.Jobs.Complete(rctx, d); err != nil {
		w.log.Error("completing a job", "job", d.Job.ID, "err", err)
	}
}

// evaluate leases a box, judges job in it and releases it. ok is false when ctx ended
// before the job was judged (the verdict would only say so).
func (w *Workers) evaluate(ctx context.Context, job Job) (v protocol.Verdict, boxID int, ok bool) {
	ie := func(format string, args ...any) (protocol.Verdict, int, bool) {
		return protocol.Verdict{Verdict: protocol.IE, Total: len(job.Tests), Message: fmt.Sprintf(format, args...)}, -1, true
	}
	if ctx.Err() != nil {
		return protocol.Verdict{}, -1, false
	}
	lease, err := w.opts.Boxes.Lease(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return protocol.Verdict{}, -1, false
		}
		return ie("lease a box: %v", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if err := lease.Release(rctx); err != nil {
			w.log.Error("release box", "box", lease.ID(), "err", err)
		}
	}()
	box, err := NewBox(w.opts.Root, lease.ID())
	if err != nil {
		v, _, _ = ie("box %d: %v", lease.ID(), err)
		return v, lease.ID(), true
	}
	v, err = Evaluate(ctx, w.opts.Sandbox, box, job.Program, job.Tests, job.Options)
	// A run canceled by ctx is a sandbox error, so Evaluate says IE; any other verdict was
	// reached before the shutdown and stands.
	if v.Verdict == protocol.IE && ctx.Err() != nil {
		return protocol.Verdict{}, box.ID, false
	}
	if v.Verdict == protocol.IE {
		w.log.Error("internal error judging", "job", job.ID, "box", box.ID, "message", v.Message, "err", err)
	}
	return v, box.ID, true
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

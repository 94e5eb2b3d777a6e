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
)

// Job is one submission to judge for a player.
type Job struct {
	ID         string // the caller's id of the job, passed back with its verdict
	Player     string // who submitted it: the queue is fair across players
	Submission Submission
	Tests      []Test
	Options    Options
}

// PoolOptions configure a Pool. Sandbox, Boxes and Root are required.
type PoolOptions struct {
	Sandbox Sandbox
	Boxes   Boxes  // the host's boxes; their ids are the box ids under Root
	Root    string // the directory of the box directories (see NewBox)
	// Workers is the number of jobs judged at once; zero means runtime.NumCPU(). Workers
	// beyond the number of boxes wait for a box.
	Workers int
	// QueueSize is the number of jobs that may wait for a worker; zero means 1000.
	QueueSize int
	// OnVerdict receives each job's verdict, on the worker that judged it: it should not
	// block for long. Nil means verdicts are only logged.
	OnVerdict func(Job, Verdict)
	// Logger receives the pool's diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// Pool judges submitted jobs in the process: a fair Queue in front of Workers goroutines,
// each of which takes the next job, leases a box, judges the job in it, releases the box
// and hands the verdict to OnVerdict.
//
// Submit may be called at any time from any goroutine, before or during Run. A job gets
// exactly one verdict, unless Run's context ends first: a job waiting in the queue, or
// cut short while it runs, then gets none from this pool. With Redis the job stays
// pending in its stream and another worker reclaims it later; in memory it is lost with
// the process. A job that finished judging before the shutdown keeps its verdict.
type Pool struct {
	opts     PoolOptions
	queue    *Queue[Job]
	boxJudge boxJudge
	log      *slog.Logger
	running  atomic.Bool
}

// releaseTimeout bounds giving a box back, which may happen after Run's context is done.
const releaseTimeout = 5 * time.Second

// NewPool returns a pool that judges nothing until Run.
func NewPool(opts PoolOptions) (*Pool, error) {
	if opts.Sandbox == nil || opts.Boxes == nil || opts.Root == "" {
		return nil, errors.New("judge: a pool needs a Sandbox, Boxes and a Root")
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1000
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger.With("component", "judge.pool")
	return &Pool{
		opts: opts, queue: NewQueue[Job](opts.QueueSize), log: log,
		boxJudge: boxJudge{sandbox: opts.Sandbox, boxes: opts.Boxes, root: opts.Root, log: log},
	}, nil
}

// Submit queues job for judging, or returns a *BusyError when the queue is full (the job
// was not queued). It does not wait for the job to be judged.
func (p *Pool) Submit(job Job) error {
	return p.queue.Push(job.Player, job)
}

// Len returns the number of jobs waiting for a worker.
func (p *Pool) Len() int { return p.queue.Len() }

// Run judges jobs on Workers goroutines until ctx is done, then cancels the runs in
// progress, waits for every worker to return and returns nil. Run may be called once.
func (p *Pool) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("judge: pool already run")
	}
	p.log.Info("judging", "workers", p.opts.Workers, "queue", p.opts.QueueSize)
	var g errgroup.Group
	for range p.opts.Workers {
		g.Go(func() error {
			// Pop returns a waiting job even when ctx is done: check first, so that a
			// shutdown leaves the queue as it is instead of draining it into nothing.
			for ctx.Err() == nil {
				job, err := p.queue.Pop(ctx)
				if err != nil {
					break
				}
				p.judge(ctx, job)
			}
			return nil
		})
	}
	err := g.Wait()
	p.log.Info("stopped", "waiting", p.queue.Len())
	return err
}

// judge judges one job and delivers its verdict, unless ctx ended it first.
func (p *Pool) judge(ctx context.Context, job Job) {
	start := time.Now()
	v, boxID, ok := p.boxJudge.judge(ctx, job)
	if !ok {
		p.log.Warn("job cut short by shutdown, no verdict", "job", job.ID, "player", job.Player)
		return
	}
	p.log.Debug("judged", "job", job.ID, "player", job.Player, "box", boxID, "verdict", v.Verdict, "took", time.Since(start))
	if p.opts.OnVerdict != nil {
		p.opts.OnVerdict(job, v)
	}
}

// boxJudge judges a job in a leased box: what the workers of a Pool and of a Workers do
// with each job.
type boxJudge struct {
	sandbox Sandbox
	boxes   Boxes
	root    string
	log     *slog.Logger
}

// judge leases a box, judges job in it and releases it. ok is false when ctx ended before
// the job was judged (the verdict would only say so).
func (b boxJudge) judge(ctx context.Context, job Job) (v Verdict, boxID int, ok bool) {
	ie := func(format string, args ...any) (Verdict, int, bool) {
		return Verdict{Verdict: IE, Total: len(job.Tests), Message: fmt.Sprintf(format, args...)}, -1, true
	}
	if ctx.Err() != nil {
		return Verdict{}, -1, false
	}
	lease, err := b.boxes.Lease(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return Verdict{}, -1, false
		}
		return ie("lease a box: %v", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if err := lease.Release(rctx); err != nil {
			b.log.Error("release box", "box", lease.ID(), "err", err)
		}
	}()
	box, err := NewBox(b.root, lease.ID())
	if err != nil {
		v, _, _ = ie("box %d: %v", lease.ID(), err)
		return v, lease.ID(), true
	}
	v = Judge(ctx, b.sandbox, box, job.Submission, job.Tests, job.Options)
	// A run canceled by ctx is a sandbox error, so Judge says IE; any other verdict was
	// reached before the shutdown and stands.
	if v.Verdict == IE && ctx.Err() != nil {
		return Verdict{}, box.ID, false
	}
	if v.Verdict == IE {
		b.log.Error("internal error judging", "job", job.ID, "box", box.ID, "message", v.Message)
	}
	return v, box.ID, true
}

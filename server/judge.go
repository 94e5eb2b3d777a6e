package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bulbquiz/bulb/judge"
	"github.com/bulbquiz/bulb/quiz"
)

// Roles of a process.
const (
	roleAll    = "all"    // serve the quiz and judge code on this host
	roleServer = "server" // serve the quiz; judge processes judge (Redis only)
	roleJudge  = "judge"  // judge code for the servers on the same Redis; no HTTP
)

// judging is how a process judges code: the quiz.Judge its service submits to, and what
// runs the judging.
type judging struct {
	judge quiz.Judge                      // nil: code questions are refused
	run   func(ctx context.Context) error // judges until ctx is done; nil if nothing to run
}

// recordFunc records a judged job's verdict: Service.Verdict, once the service exists.
type recordFunc func(ctx context.Context, job judge.Job, v judge.Verdict) error

// newJudging sets up the judge of a process: on the in-memory engine a Pool in the
// process; with Redis, jobs through a Redis stream, judged by the Workers of every process
// whose role judges, on boxes leased per host through Redis. Without a usable sandbox (no
// root, no bubblewrap) a process of role all judges nothing: on the in-memory engine code
// questions are then refused; with Redis, judge processes may still do the judging.
func newJudging(cfg config, eng *engine, record recordFunc, log *slog.Logger) (*judging, error) {
	if eng.rdb == nil && cfg.Role != roleAll {
		return nil, fmt.Errorf("--role %s needs --redis: on the in-memory engine one process does everything", cfg.Role)
	}
	var sb judge.Sandbox
	if cfg.Role != roleServer {
		var err error
		sb, err = newSandbox(cfg, log)
		switch {
		case err != nil && cfg.Role == roleJudge:
			return nil, fmt.Errorf("the judge's sandbox: %w", err)
		case err != nil:
			log.Warn("this process cannot judge code", "err", err)
			sb = nil
		}
	}

	if eng.rdb == nil {
		if sb == nil {
			return &judging{}, nil
		}
		pool, err := judge.NewPool(judge.PoolOptions{
			Sandbox: sb, Boxes: judge.NewMemoryBoxes(cfg.BoxBase, cfg.Boxes), Root: cfg.BoxRoot,
			Workers: cfg.JudgeWorkers, Logger: log,
			OnVerdict: func(job judge.Job, v judge.Verdict) {
				ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
				defer cancel()
				if err := record(ctx, job, v); err != nil {
					log.Error("recording a verdict", "job", job.ID, "err", err)
				}
			},
		})
		if err != nil {
			return nil, err
		}
		return &judging{judge: codeJudge{submit: func(_ context.Context, job judge.Job) error { return pool.Submit(job) }}, run: pool.Run}, nil
	}

	jobs := judge.NewRedisJobs(eng.rdb, judge.RedisJobsOptions{
		Prefix: quiz.DefaultRedisPrefix, Consumer: cfg.Node, ClaimIdle: cfg.ClaimIdle, Logger: log,
	})
	j := &judging{judge: codeJudge{submit: jobs.Enqueue}}
	if cfg.Role == roleJudge {
		j.judge = nil // a judge process takes no submissions of its own
	}
	if sb == nil {
		return j, nil
	}
	boxes := judge.NewRedisBoxes(eng.rdb, judge.RedisBoxesOptions{
		Prefix: quiz.DefaultRedisPrefix, Host: cfg.Host, Worker: cfg.Node, First: cfg.BoxBase, Boxes: cfg.Boxes,
		TTL: cfg.LeaseTTL, Logger: log,
		Clean: func(ctx context.Context, id int) error {
			box, err := judge.NewBox(cfg.BoxRoot, id)
			if err != nil {
				return err
			}
			return sb.Clean(ctx, box)
		},
	})
	workers, err := judge.NewWorkers(judge.WorkersOptions{
		Jobs: jobs, Sandbox: sb, Boxes: boxes, Root: cfg.BoxRoot, Workers: cfg.JudgeWorkers, Logger: log,
		OnVerdict: record,
	})
	if err != nil {
		return nil, err
	}
	j.run = func(ctx context.Context) error {
		g, ctx := errgroup.WithContext(ctx)
		g.Go(func() error { return boxes.Run(ctx) })
		g.Go(func() error { return workers.Run(ctx) })
		return g.Wait()
	}
	return j, nil
}

// newSandbox returns the configured sandbox backend, with the box root made.
func newSandbox(cfg config, log *slog.Logger) (judge.Sandbox, error) {
	if err := os.MkdirAll(cfg.BoxRoot, 0o711); err != nil {
		return nil, err
	}
	if cfg.Sandbox == "isolate" {
		return judge.NewIsolate(judge.IsolateConfig{Logger: log})
	}
	return judge.NewBwrap(judge.BwrapConfig{Logger: log})
}

// recordTimeout bounds recording one verdict.
const recordTimeout = 5 * time.Second

// codeJudge is the quiz.Judge of the judge package: it checks questions against the
// judge's languages and checkers and submits jobs through submit (a Pool's queue or the
// Redis stream).
type codeJudge struct {
	submit func(ctx context.Context, job judge.Job) error
}

// Check implements quiz.Judge.
func (codeJudge) Check(q quiz.Question) error {
	for _, l := range q.Languages {
		if _, ok := judge.Languages[l]; !ok {
			known := make([]string, 0, len(judge.Languages))
			for k := range judge.Languages {
				known = append(known, k)
			}
			slices.Sort(known)
			return quiz.Errorf(quiz.Invalid, "unknown language %q: the judge has %s", l, strings.Join(known, ", "))
		}
	}
	if _, err := judge.Check(q.Checker, nil, nil); err != nil {
		return quiz.Errorf(quiz.Invalid, "checker %q: want exact, lines, tokens or float:EPS", q.Checker)
	}
	return nil
}

// Submit implements quiz.Judge.
func (j codeJudge) Submit(ctx context.Context, c quiz.CodeJob) error {
	err := j.submit(ctx, jobOf(c))
	var busy *judge.BusyError
	if errors.As(err, &busy) {
		return quiz.Errorf(quiz.Busy, "%s", busy.Error())
	}
	return err
}

// jobOf is the judge's job for a code submission. Its ID says which submission it is
// (ROOM/N/SUBMISSION); its player is the room's player, for the queue's fairness.
func jobOf(c quiz.CodeJob) judge.Job {
	q := c.Question
	cpu := time.Duration(q.TimeLimitMs) * time.Millisecond
	job := judge.Job{
		ID:         fmt.Sprintf("%s/%d/%d", c.Room, c.N, c.Submission),
		Player:     c.Room + "/" + c.PlayerID,
		Submission: judge.Submission{Language: c.Language, Source: []byte(c.Code)},
		Options: judge.Options{Checker: q.Checker, Limits: judge.Limits{
			CPU:    cpu,
			Wall:   2*cpu + time.Second, // a program may wait for I/O; one that sleeps ends here
			Memory: int64(q.MemoryLimitMB) << 20,
		}},
	}
	for _, t := range q.Tests {
		job.Tests = append(job.Tests, judge.Test{Input: []byte(t.In), Output: []byte(t.Out)})
	}
	return job
}

// recordVerdict hands a judged job's verdict to the service that owns its submission.
func recordVerdict(ctx context.Context, svc *quiz.Service, job judge.Job, v judge.Verdict) error {
	parts := strings.Split(job.ID, "/")
	if len(parts) != 3 {
		return fmt.Errorf("job id %q is not ROOM/N/SUBMISSION", job.ID)
	}
	n, err1 := strconv.Atoi(parts[1])
	sub, err2 := strconv.Atoi(parts[2])
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("job id %q: %w", job.ID, err)
	}
	return svc.Verdict(ctx, parts[0], n, sub, quiz.CodeVerdict{
		Verdict: v.Verdict, Passed: v.Passed, Total: v.Total, TimeMs: v.TimeMs, MemoryKB: v.MemoryKB, Message: v.Message,
	})
}

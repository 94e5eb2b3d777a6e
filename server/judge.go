package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/bulbquiz/bulb/judge"
	"github.com/bulbquiz/bulb/protocol"
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
	judge quiz.Judge // nil: code questions are refused
	// run judges until ctx is done, recording each verdict with record (the service's
	// Verdict); nil if this process judges nothing.
	run func(ctx context.Context, record judge.RecordFunc) error
	// boxes are the host's boxes this process leases; nil if it judges nothing.
	boxes *judge.HostBoxes
}

// newJudging sets up the judge of a process: the jobs (in memory, or a Redis stream that
// every process on the Redis shares), and, where this process judges, Workers on the
// host's boxes, exclusive among every process on the host. Without a usable
// sandbox (no root, no bubblewrap) a process of role all judges nothing: on the in-memory
// engine code questions are then refused; with Redis, judge processes may still judge.
func newJudging(cfg config, eng *engine, log *slog.Logger) (*judging, error) {
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

	var jobs judge.Jobs
	if eng.rdb == nil {
		if sb == nil {
			return &judging{}, nil
		}
		jobs = judge.NewMemoryJobs(0)
	} else {
		jobs = judge.NewRedisJobs(eng.rdb, judge.RedisJobsOptions{
			Prefix: quiz.DefaultRedisPrefix, Consumer: cfg.Node, ClaimIdle: cfg.ClaimIdle, Logger: log,
		})
	}
	j := &judging{judge: codeJudge{jobs: jobs}}
	if cfg.Role == roleJudge {
		j.judge = nil // a judge process takes no submissions of its own
	}
	if sb == nil {
		return j, nil
	}
	// Boxes are the host's, whatever the engine: lock files make them exclusive among every
	// process on the host.
	boxes, err := judge.NewHostBoxes(judge.HostBoxesOptions{
		Locks: cfg.BoxLocks, First: cfg.BoxBase, Boxes: cfg.Boxes, Logger: log,
		Clean: func(ctx context.Context, id int) error {
			box, err := judge.NewBox(cfg.BoxRoot, id)
			if err != nil {
				return err
			}
			return sb.Clean(ctx, box)
		},
	})
	if err != nil {
		return nil, err
	}
	workers, err := judge.NewWorkers(judge.WorkersOptions{
		Jobs: jobs, Sandbox: sb, Boxes: boxes, Root: cfg.BoxRoot, Workers: cfg.JudgeWorkers, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	j.boxes = boxes
	j.run = func(ctx context.Context, record judge.RecordFunc) error { return workers.Run(ctx, record) }
	return j, nil
}

// newSandbox returns the configured sandbox backend, with the box root made.
func newSandbox(cfg config, log *slog.Logger) (judge.Sandbox, error) {
	if err := os.MkdirAll(cfg.BoxRoot, 0o711); err != nil {
		return nil, err
	}
	if cfg.Sandbox == "isolate" {
		return judge.NewIsolate(judge.IsolateOptions{Logger: log})
	}
	return judge.NewBwrap(judge.BwrapOptions{Logger: log})
}

// codeJudge is the quiz.Judge of the judge package: it checks questions against the
// judge's languages and checkers and submits jobs to the jobs.
type codeJudge struct {
	jobs judge.Jobs
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
			return quiz.Errorf(protocol.Invalid, "unknown language %q: the judge has %s", l, strings.Join(known, ", "))
		}
	}
	if _, err := judge.Check(q.Checker, nil, nil); err != nil {
		return quiz.Errorf(protocol.Invalid, "checker %q: want exact, lines, tokens or float:EPS", q.Checker)
	}
	return nil
}

// Submit implements quiz.Judge.
func (j codeJudge) Submit(ctx context.Context, c quiz.CodeJob) error {
	err := j.jobs.Enqueue(ctx, jobOf(c))
	var busy *judge.BusyError
	if errors.As(err, &busy) {
		return quiz.Errorf(protocol.Busy, "%s", busy.Error())
	}
	return err
}

// Drop implements quiz.Judge: a player who left the room takes their submissions still
// waiting with them.
func (j codeJudge) Drop(ctx context.Context, room, playerID string) error {
	_, err := j.jobs.Drop(ctx, room, playerID)
	return err
}

// jobOf is the judge's job for a code submission. Its room and player (the player's ID
// within the room) are the two levels of the jobs' fairness, and what Drop names.
func jobOf(c quiz.CodeJob) judge.Job {
	q := c.Question
	cpu := time.Duration(q.TimeLimitMs) * time.Millisecond
	job := judge.Job{
		ID:      judge.JobID{Room: c.Room, Question: c.N, Submission: c.Submission},
		Player:  c.PlayerID,
		Program: judge.Program{Language: c.Language, Source: []byte(c.Source)},
		Options: judge.Options{Checker: q.Checker, Limits: judge.Limits{
			CPU:    cpu,
			Wall:   2*cpu + time.Second, // a program may wait for I/O; one that sleeps ends here
			Memory: int64(q.MemoryLimitMB) << 20,
		}},
	}
	for _, t := range q.Tests {
		job.Tests = append(job.Tests, judge.Test{Input: []byte(t.In), Output: []byte(t.Out), Sample: t.Sample})
	}
	return job
}

// recordVerdict returns what records a judged job's verdict: the service's Verdict, which
// keeps the first verdict of a submission. While the engine cannot save it (a full disk,
// Redis away) it tries again, up to every 5 s, until ctx is done: a judged job whose
// verdict is dropped would hold up the ranking of its question, and the in-memory jobs
// of the embedded engine are not handed out again.
func recordVerdict(svc *quiz.Service) judge.RecordFunc {
	return func(ctx context.Context, job judge.Job, v protocol.Verdict) error {
		wait := 100 * time.Millisecond
		for {
			err := svc.Verdict(ctx, job.ID.Room, job.ID.Question, job.ID.Submission, v)
			if quiz.ErrorCode(err) != protocol.Unavailable {
				return err
			}
			select {
			case <-ctx.Done():
				return err
			case <-time.After(wait):
			}
			wait = min(2*wait, 5*time.Second)
		}
	}
}

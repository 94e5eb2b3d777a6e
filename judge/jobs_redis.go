package judge

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisJobs are the Jobs of judge processes, on one host or many, carried by a Redis
// Stream read by a consumer group: Enqueue adds a job, each worker process takes jobs with
// Next (XREADGROUP), judges them, records each verdict and completes the job. A job whose
// worker died stays pending in the group; once it has sat idle for ClaimIdle, the next
// worker to call Next claims it (XAUTOCLAIM) as a new attempt. Only the job's current
// attempt completes it: a stale worker, whose job was claimed by another, gets false from
// Complete.
//
// Fair across players: a player has at most one job in the stream at a time; its other
// jobs wait in a list of its own and enter the stream, at the end, as the one before is
// completed. So one player's burst waits behind every other player's next job, and many
// worker processes can serve one stream in order. (A player's jobs are judged one after
// another, never two at once.)
//
// Delivery is at least once: a job may be judged more than once (a worker that was slow
// rather than dead, or one that lost its connection mid-read); the verdicts' recorder
// keeps the first.
//
// docs/redis.md lists the keys. The attempt of a delivery is the job's delivery count in
// the group: 1 when first read, raised by one by every claim. Complete's script acts only
// while the job is pending with this consumer at this count; it acknowledges the job and
// deletes its entry in one step, so the stream holds only unfinished jobs.
//
// All methods are safe for concurrent use; Next and Complete need a Consumer.
type RedisJobs struct {
	rdb       redis.UniversalClient
	stream    string // PREFIX judge:{jobs}
	group     string
	consumer  string
	claimIdle time.Duration
	maxJobs   int
	log       *slog.Logger
	grouped   atomic.Bool // the group is known to exist
}

var _ Jobs = (*RedisJobs)(nil)

var (
	//go:embed jobs_enqueue.lua
	jobsEnqueueLua string
	//go:embed jobs_claim.lua
	jobsClaimLua string
	//go:embed jobs_complete.lua
	jobsCompleteLua string

	jobsEnqueue  = redis.NewScript(jobsEnqueueLua)
	jobsClaim    = redis.NewScript(jobsClaimLua)
	jobsComplete = redis.NewScript(jobsCompleteLua)
)

// RedisJobsOptions configure NewRedisJobs.
type RedisJobsOptions struct {
	Prefix   string // key prefix, e.g. "bulb:"
	Group    string // the consumer group of the judge workers; default "judges"
	Consumer string // this worker's name, unique in the group; empty to only Enqueue
	// ClaimIdle is how long a job may sit with a worker before another worker may claim
	// it as dead; default 30 s. It must exceed the longest judging of one job, or a slow
	// worker's job is judged again (the first verdict still wins).
	ClaimIdle time.Duration
	// MaxJobs bounds the unfinished jobs, in the stream or waiting; Enqueue returns a
	// *BusyError beyond it. Default 10000: ten times MemoryJobs' default, minutes of work
	// for the workers of a few hosts, and at most a few hundred MB of jobs (their tests
	// travel with them).
	MaxJobs int
	Logger  *slog.Logger
}

// NewRedisJobs returns the jobs of opts.Group as seen by opts.Consumer.
func NewRedisJobs(rdb redis.UniversalClient, opts RedisJobsOptions) *RedisJobs {
	if opts.Group == "" {
		opts.Group = "judges"
	}
	if opts.ClaimIdle <= 0 {
		opts.ClaimIdle = 30 * time.Second
	}
	if opts.MaxJobs <= 0 {
		opts.MaxJobs = 10000
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &RedisJobs{
		rdb: rdb, stream: opts.Prefix + "judge:{jobs}", group: opts.Group, consumer: opts.Consumer,
		claimIdle: opts.ClaimIdle, maxJobs: opts.MaxJobs,
		log: opts.Logger.With("component", "judge.jobs", "consumer", opts.Consumer),
	}
}

func (j *RedisJobs) inStreamKey() string          { return j.stream + ":instream" }
func (j *RedisJobs) waitingKey() string           { return j.stream + ":waiting" }
func (j *RedisJobs) waitKey(player string) string { return j.stream + ":wait:" + player }

// ensureGroup creates the group, from the stream's start, unless it is known to exist.
func (j *RedisJobs) ensureGroup(ctx context.Context) error {
	if j.grouped.Load() {
		return nil
	}
	err := j.rdb.XGroupCreateMkStream(ctx, j.stream, j.group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("creating the judges' group: %w", err)
	}
	j.grouped.Store(true)
	return nil
}

// noGroup reports whether err says the group (or the stream) is gone, e.g. after a
// FLUSHALL: the next ensureGroup creates it again.
func (j *RedisJobs) noGroup(err error) bool {
	if err != nil && strings.HasPrefix(err.Error(), "NOGROUP") {
		j.grouped.Store(false)
		return true
	}
	return false
}

// Enqueue implements Jobs: it returns a *BusyError when MaxJobs jobs are unfinished.
func (j *RedisJobs) Enqueue(ctx context.Context, job Job) error {
	if err := j.ensureGroup(ctx); err != nil {
		return err
	}
	b, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("encoding job %s: %w", job.ID, err)
	}
	r, err := jobsEnqueue.Run(ctx, j.rdb, []string{j.stream, j.inStreamKey(), j.waitingKey(), j.waitKey(job.Player)},
		j.maxJobs, job.ID.String(), job.Player, b).Slice()
	if err != nil {
		return fmt.Errorf("enqueueing job %s: %w", job.ID, err)
	}
	if len(r) != 2 {
		return fmt.Errorf("enqueueing job %s: reply %v", job.ID, r)
	}
	if added, _ := r[0].(int64); added == 0 {
		n, _ := r[1].(int64)
		return &BusyError{Len: int(n)}
	}
	return nil
}

// Next implements Jobs. It first claims a job that a dead worker left idle for longer than
// ClaimIdle, else reads a new one, blocking a second at a time (or ClaimIdle, if shorter)
// so that it returns within about a second of ctx ending.
func (j *RedisJobs) Next(ctx context.Context) (Delivery, error) {
	if j.consumer == "" {
		return Delivery{}, errors.New("judge: Next needs a Consumer")
	}
	for {
		if err := ctx.Err(); err != nil {
			return Delivery{}, err
		}
		if err := j.ensureGroup(ctx); err != nil {
			return Delivery{}, err
		}
		d, ok, err := j.claim(ctx)
		if j.noGroup(err) {
			continue
		}
		if err != nil {
			return Delivery{}, j.ctxErr(ctx, err)
		}
		if !ok {
			d, ok, err = j.read(ctx)
			if j.noGroup(err) {
				continue
			}
			if err != nil {
				return Delivery{}, j.ctxErr(ctx, err)
			}
		}
		if ok {
			return d, nil
		}
	}
}

// ctxErr returns ctx's error if it is done (err is then its consequence), else err.
func (j *RedisJobs) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// claim claims one job left idle by a dead worker, if any.
func (j *RedisJobs) claim(ctx context.Context) (Delivery, bool, error) {
	r, err := jobsClaim.Run(ctx, j.rdb, []string{j.stream}, j.group, j.consumer, j.claimIdle.Milliseconds()).Slice()
	if err != nil {
		return Delivery{}, false, fmt.Errorf("claiming jobs of dead workers: %w", err)
	}
	if len(r) != 4 {
		return Delivery{}, false, fmt.Errorf("claiming jobs of dead workers: reply %v", r)
	}
	if deleted, _ := r[3].([]any); len(deleted) > 0 {
		j.log.Error("jobs of dead workers were gone from the stream: no verdict", "ids", deleted)
	}
	id, _ := r[0].(string)
	if id == "" {
		return Delivery{}, false, nil
	}
	fields, _ := r[1].([]any)
	values := map[string]any{}
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		values[k] = fields[i+1]
	}
	attempt, _ := r[2].(int64)
	d, ok := j.delivery(ctx, id, values, attempt)
	j.log.Info("claimed a dead worker's job", "id", id, "attempt", attempt)
	return d, ok, nil
}

// read reads one new job, blocking for up to a second.
func (j *RedisJobs) read(ctx context.Context) (Delivery, bool, error) {
	// Block for a second at a time so that ctx is honoured, or for ClaimIdle if shorter so
	// that a dead worker's job waits little longer than ClaimIdle; a new job wakes us at once.
	streams, err := j.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: j.group, Consumer: j.consumer, Streams: []string{j.stream, ">"}, Count: 1,
		Block: min(time.Second, j.claimIdle),
	}).Result()
	if errors.Is(err, redis.Nil) {
		return Delivery{}, false, nil
	}
	if err != nil {
		return Delivery{}, false, fmt.Errorf("reading jobs: %w", err)
	}
	for _, s := range streams {
		for _, m := range s.Messages {
			d, ok := j.delivery(ctx, m.ID, m.Values, 1) // a new entry's delivery count is 1
			return d, ok, nil
		}
	}
	return Delivery{}, false, nil
}

// delivery decodes a job. One that does not decode is completed at once, with an error
// in the log, and not delivered: no worker could judge it, and no submission is known to
// wait for it.
func (j *RedisJobs) delivery(ctx context.Context, id string, values map[string]any, attempt int64) (Delivery, bool) {
	d := Delivery{ID: id, Attempt: attempt}
	d.Job.Player, _ = values["player"].(string)
	s, _ := values["job"].(string)
	err := json.Unmarshal([]byte(s), &d.Job)
	if err == nil {
		return d, true
	}
	j.log.Error("undecodable job: dropped", "entry", id, "job", values["id"], "err", err)
	if _, cerr := j.Complete(ctx, d); cerr != nil {
		j.log.Error("completing an undecodable job", "entry", id, "err", cerr)
	}
	return Delivery{}, false
}

// Complete implements Jobs: only while d's job is pending with this consumer at d's
// attempt, it acknowledges the job, deletes its entry and lets the player's next waiting
// job into the stream, in one script.
func (j *RedisJobs) Complete(ctx context.Context, d Delivery) (bool, error) {
	keys := []string{j.stream, j.inStreamKey(), j.waitingKey(), j.waitKey(d.Job.Player)}
	n, err := jobsComplete.Run(ctx, j.rdb, keys, j.group, d.ID, j.consumer, d.Attempt, d.Job.Player).Int()
	if err != nil {
		return false, fmt.Errorf("completing job %s: %w", d.ID, err)
	}
	if n == 0 {
		j.log.Info("stale delivery: another worker has the job", "entry", d.ID, "job", d.Job.ID, "attempt", d.Attempt)
	}
	return n == 1, nil
}

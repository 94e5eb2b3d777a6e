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

// RedisJobs carries judge jobs between processes, on one host or many, through a Redis
// Stream read by a consumer group: Enqueue adds a job, each worker process takes jobs with
// Next (XREADGROUP), judges them and hands each verdict to Complete. A job whose worker
// died stays pending in the group; once it has sat idle for ClaimIdle, the next worker to
// call Next claims it (XAUTOCLAIM) as a new attempt. A verdict is written once, by the
// job's current attempt only: a stale worker, whose job was claimed by another, gets
// written=false from Complete and its verdict is dropped.
//
// Fair across players: a player has at most one job in the stream at a time; its other
// jobs wait in a list of its own and enter the stream, at the end, as the one before is
// completed. So one player's burst waits behind every other player's next job, and many
// worker processes can serve one stream in order. (A player's jobs are judged one after
// another, never two at once.)
//
// Delivery is at least once: a job may be judged more than once (a worker that was slow
// rather than dead, or one that lost its connection mid-read), but gets one verdict.
//
// Keys, PREFIX judge:{jobs}: … the stream (fields id, player and job, the Job as JSON);
// …:instream (hash: player → the entry id of its job in the stream); …:waiting (the number
// of jobs waiting in players' lists); …:wait:PLAYER (list of job id, job pairs); and
// …:verdict:ID (the Verdict as JSON, kept VerdictTTL), where ID is the Job's ID. One hash
// tag keeps them in one cluster slot, as the scripts need.
//
// The attempt of a delivery is the job's delivery count in the group: 1 when first read,
// raised by one by every claim. Complete's script writes only while the job is pending
// with this consumer at this count; it writes the verdict (SET NX), acknowledges the job
// and deletes its entry in one step, so the stream holds only unfinished jobs.
//
// All methods are safe for concurrent use; Next and Complete need a Consumer.
type RedisJobs struct {
	rdb        redis.UniversalClient
	stream     string // PREFIX judge:{jobs}
	group      string
	consumer   string
	claimIdle  time.Duration
	maxJobs    int
	verdictTTL time.Duration
	log        *slog.Logger
	grouped    atomic.Bool // the group is known to exist
}

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
	// MaxJobs bounds the unfinished jobs, in the stream or waiting; Enqueue returns a *BusyError
	// beyond it. Default 10000: ten times a Pool's default queue, minutes of work for the
	// workers of a few hosts, and at most a few hundred MB of jobs (their tests travel
	// with them).
	MaxJobs int
	// VerdictTTL is how long a verdict is kept for Verdict; default 24 h.
	VerdictTTL time.Duration
	Logger     *slog.Logger
}

// Delivery is one job handed to one worker by Next.
type Delivery struct {
	ID      string // the job's stream entry id
	Job     Job
	Attempt int64 // 1 for the first delivery, one more for each claim from a dead worker
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
	if opts.VerdictTTL <= 0 {
		opts.VerdictTTL = 24 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &RedisJobs{
		rdb: rdb, stream: opts.Prefix + "judge:{jobs}", group: opts.Group, consumer: opts.Consumer,
		claimIdle: opts.ClaimIdle, maxJobs: opts.MaxJobs, verdictTTL: opts.VerdictTTL,
		log: opts.Logger.With("component", "judge.jobs", "consumer", opts.Consumer),
	}
}

func (j *RedisJobs) verdictKey(jobID string) string { return j.stream + ":verdict:" + jobID }
func (j *RedisJobs) inStreamKey() string            { return j.stream + ":instream" }
func (j *RedisJobs) waitingKey() string             { return j.stream + ":waiting" }
func (j *RedisJobs) waitKey(player string) string   { return j.stream + ":wait:" + player }

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

// Enqueue adds job for the workers, or returns a *BusyError when MaxJobs jobs are
// unfinished (the job was not added). Job IDs must be unique: a verdict is kept by it.
func (j *RedisJobs) Enqueue(ctx context.Context, job Job) error {
	if err := j.ensureGroup(ctx); err != nil {
		return err
	}
	b, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("encoding job %s: %w", job.ID, err)
	}
	r, err := jobsEnqueue.Run(ctx, j.rdb, []string{j.stream, j.inStreamKey(), j.waitingKey(), j.waitKey(job.Player)},
		j.maxJobs, job.ID, job.Player, b).Slice()
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

// Next waits for a job for this worker, or for ctx to be done. It first claims a job that a
// dead worker left idle for longer than ClaimIdle, else reads a new one, blocking a second
// at a time (or ClaimIdle, if shorter) so that it returns within about a second of ctx
// ending.
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

// delivery decodes a job. One that does not decode gets an IE verdict at once and is not
// delivered: no worker could judge it.
func (j *RedisJobs) delivery(ctx context.Context, id string, values map[string]any, attempt int64) (Delivery, bool) {
	d := Delivery{ID: id, Attempt: attempt}
	d.Job.ID, _ = values["id"].(string)
	d.Job.Player, _ = values["player"].(string)
	s, _ := values["job"].(string)
	err := json.Unmarshal([]byte(s), &d.Job)
	if err == nil {
		return d, true
	}
	j.log.Error("undecodable job: internal error verdict", "id", id, "err", err)
	if _, cerr := j.Complete(ctx, d, Verdict{Verdict: IE, Message: "the job could not be decoded"}); cerr != nil {
		j.log.Error("completing an undecodable job", "id", id, "err", cerr)
	}
	return Delivery{}, false
}

// Complete writes v as the verdict of d's job, if no verdict was written yet and d is the
// job's current attempt, and acknowledges the job; written says whether v was stored. A
// stale delivery (the job was claimed by another worker, or already completed) writes
// nothing, so a verdict once written is never overwritten.
func (j *RedisJobs) Complete(ctx context.Context, d Delivery, v Verdict) (written bool, err error) {
	b, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("encoding the verdict of %s: %w", d.ID, err)
	}
	keys := []string{j.stream, j.verdictKey(d.Job.ID), j.inStreamKey(), j.waitingKey(), j.waitKey(d.Job.Player)}
	n, err := jobsComplete.Run(ctx, j.rdb, keys,
		j.group, d.ID, j.consumer, d.Attempt, b, j.verdictTTL.Milliseconds(), d.Job.Player).Int()
	if err != nil {
		return false, fmt.Errorf("completing job %s: %w", d.ID, err)
	}
	if n == 0 {
		j.log.Info("stale delivery: verdict dropped", "id", d.ID, "attempt", d.Attempt)
	}
	return n == 1, nil
}

// Verdict returns the verdict of the job with the given ID; ok is false while there is
// none (or after VerdictTTL).
func (j *RedisJobs) Verdict(ctx context.Context, jobID string) (v Verdict, ok bool, err error) {
	b, err := j.rdb.Get(ctx, j.verdictKey(jobID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Verdict{}, false, nil
	}
	if err != nil {
		return Verdict{}, false, fmt.Errorf("reading the verdict of %s: %w", jobID, err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return Verdict{}, false, fmt.Errorf("decoding the verdict of %s: %w", jobID, err)
	}
	return v, true, nil
}

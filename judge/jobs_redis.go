package judge

import (
	"context"
	_ "embed"
	"encoding/hex"
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
// Fairness, across rooms then across the players of a room, is Queue's (queue.go), kept
// in Redis: a job waits in a list of its player's, its player in its room's two lists of
// rounds (this round's turns, the next round's), its room in the two lists of rounds of
// rooms. The stream holds the jobs handed to workers and at most one job not yet read:
// whenever no job in the stream waits to be read (after an Enqueue, after each read, after
// a Drop, and at each turn of a worker's Next loop), a script moves the next job in round
// order into it. So the order is decided one job ahead of the workers, a burst waits in
// its lists rather than in the stream, and every free worker still gets a job at once:
// the workers are never held back while anything waits, and a player's jobs may be
// judged side by side when no one else waits.
//
// Tests are stored once per distinct test set, under a name made of their contents (a
// SHA-256), with an expiry of TestsTTL renewed by every Enqueue and every delivery of a
// job that has them; a job, waiting or in the stream, carries only the name. Next loads
// the test set; if it expired meanwhile (the workers were down for longer than TestsTTL),
// the job is delivered with no tests and TestsLost as its checker, so that Evaluate gives
// it an IE verdict that tells the submitter to submit again, and an error is logged.
//
// Each room may have RoomJobs unfinished jobs (waiting or in the stream), all rooms
// MaxJobs; Enqueue returns a *BusyError past either.
//
// Delivery is at least once: a job may be judged more than once (a worker that was slow
// rather than dead, or one that lost its connection mid-read); the verdicts' recorder
// keeps the first.
//
// docs/redis.md lists the keys. The attempt of a delivery is the job's delivery count in
// the group: 1 when first read, raised by one by every claim. Complete's script acts only
// while the job is pending with this consumer at this count; it acknowledges the job and
// deletes its entry in one step, so the stream holds only unfinished jobs. Every change
// of the lists, the counts and the stream is one script, so they agree at every instant.
//
// All methods are safe for concurrent use; Next and Complete need a Consumer.
type RedisJobs struct {
	rdb       redis.UniversalClient
	stream    string // PREFIX judge:{jobs}
	group     string
	consumer  string
	claimIdle time.Duration
	maxJobs   int
	roomJobs  int
	testsTTL  time.Duration
	log       *slog.Logger
	grouped   atomic.Bool // the group is known to exist
}

var _ Jobs = (*RedisJobs)(nil)

var (
	//go:embed jobs_lib.lua
	jobsLibLua string
	//go:embed jobs_enqueue.lua
	jobsEnqueueLua string
	//go:embed jobs_taken.lua
	jobsTakenLua string
	//go:embed jobs_claim.lua
	jobsClaimLua string
	//go:embed jobs_complete.lua
	jobsCompleteLua string
	//go:embed jobs_drop.lua
	jobsDropLua string

	jobsEnqueue  = jobsScript(jobsEnqueueLua)
	jobsTaken    = jobsScript(jobsTakenLua)
	jobsClaim    = jobsScript(jobsClaimLua)
	jobsComplete = jobsScript(jobsCompleteLua)
	jobsDrop     = jobsScript(jobsDropLua)
)

// jobsScript is one of the jobs' scripts after their shared part.
func jobsScript(body string) *redis.Script { return redis.NewScript(jobsLibLua + "\n" + body) }

// Defaults of RedisJobsOptions.
const (
	DefaultRedisMaxJobs = 10000
	DefaultTestsTTL     = time.Hour
)

// RedisJobsOptions configure NewRedisJobs.
type RedisJobsOptions struct {
	Prefix   string // key prefix, e.g. "bulb:"
	Group    string // the consumer group of the judge workers; default "judges"
	Consumer string // this worker's name, unique in the group; empty to only Enqueue and Drop
	// ClaimIdle is how long a job may sit with a worker before another worker may claim
	// it as dead; default 30 s. It must exceed the longest judging of one job, or a slow
	// worker's job is judged again (the first verdict still wins).
	ClaimIdle time.Duration
	// MaxJobs bounds the unfinished jobs, waiting or in the stream; Enqueue returns a
	// *BusyError beyond it. Default DefaultRedisMaxJobs: ten times MemoryJobs' default,
	// minutes of work for the workers of a few hosts; a job without its tests is about the
	// size of its program, so a few hundred MB at the very most.
	MaxJobs int
	// RoomJobs bounds the unfinished jobs of one room; default DefaultRoomJobs.
	RoomJobs int
	// TestsTTL is how long a test set stays after the last job that has it was enqueued or
	// delivered; default DefaultTestsTTL, an hour: far longer than a job waits while
	// workers run (RoomJobs and MaxJobs see to that), short enough that the test sets of
	// the past hour's questions are all that Redis holds. A job that waits longer, with
	// the workers down, gets an IE verdict (see TestsLost).
	TestsTTL time.Duration
	Logger   *slog.Logger
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
		opts.MaxJobs = DefaultRedisMaxJobs
	}
	if opts.RoomJobs <= 0 {
		opts.RoomJobs = DefaultRoomJobs
	}
	if opts.TestsTTL <= 0 {
		opts.TestsTTL = DefaultTestsTTL
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &RedisJobs{
		rdb: rdb, stream: opts.Prefix + "judge:{jobs}", group: opts.Group, consumer: opts.Consumer,
		claimIdle: opts.ClaimIdle, maxJobs: opts.MaxJobs, roomJobs: opts.RoomJobs, testsTTL: opts.TestsTTL,
		log: opts.Logger.With("component", "judge.jobs", "consumer", opts.Consumer),
	}
}

// key is one of the jobs' keys besides the stream (see jobs_lib.lua), for tests.
func (j *RedisJobs) key(suffix string) string { return j.stream + ":" + suffix }

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

// Enqueue implements Jobs: it returns a *BusyError when MaxJobs jobs are unfinished, or
// RoomJobs of the job's room. The job's tests are sent only when Redis lacks them.
func (j *RedisJobs) Enqueue(ctx context.Context, job Job) error {
	if err := job.check(); err != nil {
		return err
	}
	if err := j.ensureGroup(ctx); err != nil {
		return err
	}
	sum := testsSum(job.Tests)
	ref := hex.EncodeToString(sum[:])
	bare := job
	bare.Tests = nil
	b, err := json.Marshal(bare)
	if err != nil {
		return fmt.Errorf("encoding job %s: %w", job.ID, err)
	}
	args := []any{j.group, j.maxJobs, j.roomJobs, job.ID.Room, job.Player, job.ID.String(), ref, b, j.testsTTL.Milliseconds()}
	status, n, err := j.enqueue(ctx, args)
	if err == nil && status == "tests" {
		var blob []byte
		if blob, err = json.Marshal(job.Tests); err != nil {
			return fmt.Errorf("encoding the tests of job %s: %w", job.ID, err)
		}
		status, n, err = j.enqueue(ctx, append(args, blob))
	}
	if err != nil {
		return fmt.Errorf("enqueueing job %s: %w", job.ID, err)
	}
	switch status {
	case "ok":
		return nil
	case "full":
		return &BusyError{Len: n}
	case "room":
		return &BusyError{Room: job.ID.Room, Len: n}
	}
	return fmt.Errorf("enqueueing job %s: reply %q %d", job.ID, status, n)
}

// enqueue runs the enqueue script and returns its reply.
func (j *RedisJobs) enqueue(ctx context.Context, args []any) (string, int, error) {
	r, err := jobsEnqueue.Run(ctx, j.rdb, []string{j.stream}, args...).Slice()
	if err != nil {
		return "", 0, err
	}
	if len(r) != 2 {
		return "", 0, fmt.Errorf("reply %v", r)
	}
	status, _ := r[0].(string)
	n, _ := r[1].(int64)
	return status, int(n), nil
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
	r, err := jobsClaim.Run(ctx, j.rdb, []string{j.stream}, j.group, j.consumer, j.claimIdle.Milliseconds(),
		j.testsTTL.Milliseconds()).Slice()
	if err != nil {
		return Delivery{}, false, fmt.Errorf("claiming jobs of dead workers: %w", err)
	}
	if len(r) != 6 {
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
	found, _ := r[4].(int64)
	tests, _ := r[5].(string)
	d, ok := j.delivery(ctx, id, values, attempt, found == 1, tests)
	j.log.Info("claimed a dead worker's job", "id", id, "attempt", attempt)
	return d, ok, nil
}

// read reads one new job, blocking for up to a second, then lets the next job into the
// stream and loads this one's tests.
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
	if len(streams) == 0 || len(streams[0].Messages) == 0 {
		return Delivery{}, false, nil
	}
	m := streams[0].Messages[0]
	// The job is ours now: even if ctx ends, let the next one in for the other workers.
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	ref, _ := m.Values["tests"].(string)
	r, err := jobsTaken.Run(tctx, j.rdb, []string{j.stream}, j.group, ref, j.testsTTL.Milliseconds()).Slice()
	if err == nil && len(r) != 2 {
		err = fmt.Errorf("reply %v", r)
	}
	if err != nil {
		// The job stays pending with us: a worker claims it after ClaimIdle.
		return Delivery{}, false, fmt.Errorf("loading the tests of job %s: %w", m.ID, err)
	}
	found, _ := r[0].(int64)
	tests, _ := r[1].(string)
	d, ok := j.delivery(ctx, m.ID, m.Values, 1, found == 1, tests) // a new entry's delivery count is 1
	return d, ok, nil
}

// delivery decodes a job and its tests (an entry without a test set's name, written
// before test sets were stored apart, has them in its job). A job that does not decode
// is completed at once, with an error in the log, and not delivered: no worker could
// judge it, and no submission is known to wait for it. A job whose test set is gone
// (found is false) is delivered with TestsLost as its checker, for an IE verdict.
func (j *RedisJobs) delivery(ctx context.Context, id string, values map[string]any, attempt int64, found bool, tests string) (Delivery, bool) {
	d := Delivery{ID: id, Attempt: attempt}
	s, _ := values["job"].(string)
	err := json.Unmarshal([]byte(s), &d.Job)
	_, named := values["tests"] // else an entry of the old layout: the job has its tests
	switch {
	case err != nil || !named:
	case found:
		if err = json.Unmarshal([]byte(tests), &d.Job.Tests); err != nil {
			err = fmt.Errorf("its tests: %w", err)
		}
	default:
		j.log.Error("the tests of a job expired before it was judged: an IE verdict", "entry", id, "job", d.Job.ID,
			"tests", values["tests"], "ttl", j.testsTTL)
		d.Job.Tests, d.Job.Options.Checker = nil, TestsLost
	}
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
// attempt, it acknowledges the job, deletes its entry and counts it out of its room's
// unfinished jobs, in one script.
func (j *RedisJobs) Complete(ctx context.Context, d Delivery) (bool, error) {
	n, err := jobsComplete.Run(ctx, j.rdb, []string{j.stream}, j.group, d.ID, j.consumer, d.Attempt).Int()
	if err != nil {
		return false, fmt.Errorf("completing job %s: %w", d.ID, err)
	}
	if n == 0 {
		j.log.Info("stale delivery: another worker has the job", "entry", d.ID, "job", d.Job.ID, "attempt", d.Attempt)
	}
	return n == 1, nil
}

// Drop implements Jobs: the player's jobs waiting in its list, and its job in the stream
// if no worker has read it yet, leave the jobs in one script.
func (j *RedisJobs) Drop(ctx context.Context, room, player string) (int, error) {
	if err := (Job{ID: JobID{Room: room}, Player: player}).check(); err != nil {
		return 0, err
	}
	n, err := jobsDrop.Run(ctx, j.rdb, []string{j.stream}, j.group, room, player).Int()
	if err != nil {
		return 0, fmt.Errorf("dropping the jobs of player %s of room %s: %w", player, room, err)
	}
	return n, nil
}

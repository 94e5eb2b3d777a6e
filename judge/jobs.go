package judge

import (
	"context"
	"fmt"
	"strings"
)

// Jobs carries judge jobs from the servers that accept code submissions to the Workers
// that judge them, fairly on two levels: across rooms first, then across the players of a
// room. A room's burst waits behind every other room's next job, and a player's burst
// behind the next job of every other player of its room, including jobs that arrive
// later: spamming submissions starves nobody. Each room has a quota of unfinished jobs,
// so one room cannot fill the jobs for the others. MemoryJobs serves the workers of one
// process; RedisJobs those of judge processes on many hosts, through a Redis Stream. One
// contract test holds both.
//
// Delivery is at least once: a job may be delivered again (to another worker, when the
// one that had it seems dead), so whoever records verdicts keeps the first.
type Jobs interface {
	// Enqueue adds job for the workers, or returns a *BusyError when the jobs are full,
	// or when job's room has its quota of unfinished jobs (nothing was added). A job's
	// room is job.ID.Room, its player job.Player; neither may be empty or hold a colon.
	Enqueue(ctx context.Context, job Job) error
	// Next waits for a job for this worker, or until ctx is done (then it returns ctx's
	// error).
	Next(ctx context.Context) (Delivery, error)
	// Complete says that d's job is judged and its verdict recorded: the job leaves the
	// jobs, and its room's quota. It reports false when d is stale: the job was handed to
	// another worker meanwhile, or completed before.
	Complete(ctx context.Context, d Delivery) (bool, error)
	// Drop removes the jobs of player in room that no worker has been handed yet (a kicked
	// player's submissions), and returns how many it removed. A job already handed to a
	// worker is left to finish.
	Drop(ctx context.Context, room, player string) (int, error)
}

// DefaultMaxJobs is how many unfinished jobs MemoryJobs hold unless told otherwise.
const DefaultMaxJobs = 1000

// DefaultRoomJobs is how many unfinished jobs one room may have unless told otherwise: a
// class of forty with two submissions each in flight fits, and ten rooms past their quota
// still cannot fill MemoryJobs' DefaultMaxJobs. Past about a hundred jobs the room's own
// players wait minutes for a verdict anyway (a spinning program holds a worker for its
// whole CPU limit), so refusing at once serves them better than a longer queue.
const DefaultRoomJobs = 100

// JobID says which code submission a job judges: submission Submission (its number among
// the question's) to question Question of room Room.
type JobID struct {
	Room       string `json:"room"`
	Question   int    `json:"question"`
	Submission int    `json:"submission"`
}

// String is the id as ROOM/QUESTION/SUBMISSION, for logs and Redis.
func (id JobID) String() string { return fmt.Sprintf("%s/%d/%d", id.Room, id.Question, id.Submission) }

// Job is one code submission to judge. Its room, the first level of the jobs' fairness,
// is ID.Room; Player, the second, is the submitter's player ID within that room.
type Job struct {
	ID      JobID
	Player  string
	Program Program
	Tests   []Test
	Options Options
}

// check says what is wrong with job for the jobs, if anything: a room and a player are
// needed, and a colon in either would make two keys of RedisJobs one.
func (job Job) check() error {
	if job.ID.Room == "" || job.Player == "" {
		return fmt.Errorf("judge: job %s needs a room and a player", job.ID)
	}
	if strings.Contains(job.ID.Room, ":") || strings.Contains(job.Player, ":") {
		return fmt.Errorf("judge: job %s: room %q or player %q holds a colon", job.ID, job.ID.Room, job.Player)
	}
	return nil
}

// Delivery is one job handed to one worker by Next.
type Delivery struct {
	ID      string // the job's entry in the jobs (RedisJobs: the stream entry; MemoryJobs: a number)
	Job     Job
	Attempt int64 // 1 for the first delivery, one more for each hand-over from a dead worker
}

// TestsLost is the checker of a delivered job whose tests were lost before it was judged
// (RedisJobs: the test set expired in Redis, see RedisJobsOptions.TestsTTL). Check refuses
// it, so Evaluate gives the job an IE verdict, carrying this text, without running the
// program: the submitter learns to submit again instead of waiting for ever.
const TestsLost = "lost: the question's tests expired before this submission was judged; submit again"

// BusyError is returned by Enqueue when the jobs are full, or the job's room has its
// quota: nothing was added.
type BusyError struct {
	Room string // the room at its quota; empty when all the jobs are full
	Len  int    // unfinished jobs: of Room, or of all rooms
}

func (e *BusyError) Error() string {
	if e.Room != "" {
		return fmt.Sprintf("the judge is busy: %d submissions of this room waiting, try again shortly", e.Len)
	}
	return fmt.Sprintf("the judge is busy: %d submissions waiting, try again shortly", e.Len)
}

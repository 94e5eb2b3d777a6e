package judge

import (
	"context"
	"fmt"
)

// Jobs carries judge jobs from the servers that accept code submissions to the Workers
// that judge them, fairly across players: a player's burst waits behind every other
// player's next job. MemoryJobs serves the workers of one process; RedisJobs those of
// judge processes on many hosts, through a Redis Stream. One contract test holds both.
//
// Delivery is at least once: a job may be delivered again (to another worker, when the
// one that had it seems dead), so whoever records verdicts keeps the first.
type Jobs interface {
	// Enqueue adds job for the workers, or returns a *BusyError when the jobs are full
	// (nothing was added).
	Enqueue(ctx context.Context, job Job) error
	// Next waits for a job for this worker, or until ctx is done (then it returns ctx's
	// error).
	Next(ctx context.Context) (Delivery, error)
	// Complete says that d's job is judged and its verdict recorded: the job leaves the
	// jobs, and the player's next job may go. It reports false when d is stale: the job
	// was handed to another worker meanwhile, or completed before.
	Complete(ctx context.Context, d Delivery) (bool, error)
}

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

// Delivery is one job handed to one worker by Next.
type Delivery struct {
	ID      string // the job's entry in the jobs, if they have entries (RedisJobs: the stream entry)
	Job     Job
	Attempt int64 // 1 for the first delivery, one more for each hand-over from a dead worker
}

// BusyError is returned by Enqueue when the jobs are full: nothing was added.
type BusyError struct {
	Len int // jobs waiting
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("the judge is busy: %d submissions waiting, try again shortly", e.Len)
}

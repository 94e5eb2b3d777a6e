package judge

import "context"

// MemoryJobs are Jobs in one process, on a fair Queue: its round order is the jobs' order,
// decided when a worker asks for its next job. They live in memory only: a job
// waiting, or being judged, when the process ends is lost.
type MemoryJobs struct {
	queue *Queue[Job]
}

var _ Jobs = (*MemoryJobs)(nil)

// DefaultMaxJobs is how many jobs MemoryJobs hold unless told otherwise.
const DefaultMaxJobs = 1000

// NewMemoryJobs returns empty jobs that hold at most max waiting jobs (DefaultMaxJobs if
// max is not positive).
func NewMemoryJobs(max int) *MemoryJobs {
	if max <= 0 {
		max = DefaultMaxJobs
	}
	return &MemoryJobs{queue: NewQueue[Job](max)}
}

// Enqueue implements Jobs.
func (m *MemoryJobs) Enqueue(_ context.Context, job Job) error {
	return m.queue.Push(job.ID.Room, job.Player, job)
}

// Next implements Jobs.
func (m *MemoryJobs) Next(ctx context.Context) (Delivery, error) {
	if err := ctx.Err(); err != nil { // Pop would still hand out a waiting job
		return Delivery{}, err
	}
	job, err := m.queue.Pop(ctx)
	if err != nil {
		return Delivery{}, err
	}
	return Delivery{Job: job, Attempt: 1}, nil
}

// Complete implements Jobs: a job left the queue when Next took it, and is never handed
// to another worker, so no delivery is stale.
func (m *MemoryJobs) Complete(context.Context, Delivery) (bool, error) { return true, nil }

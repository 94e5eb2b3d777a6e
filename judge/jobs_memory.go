package judge

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"sync"
)

// MemoryJobs are Jobs in one process, on a fair Queue: its round order is the jobs' order,
// decided when a worker asks for its next job. They live in memory only: a job waiting,
// or being judged, when the process ends is lost.
//
// A job is unfinished, and counts against MaxJobs and its room's RoomJobs, from Enqueue
// until it is completed or dropped; a delivery that is never completed (its verdict could
// not be recorded) holds its place until the process ends, as no other worker could take
// the job over. Jobs with equal tests share one copy of them, held while any of those jobs
// is unfinished.
type MemoryJobs struct {
	maxJobs, roomJobs int
	queue             *Queue[memoryJob]

	mu         sync.Mutex
	unfinished int
	rooms      map[string]int          // each room's unfinished jobs
	handed     map[string]memoryJob    // the jobs handed to workers, by delivery id
	tests      map[[32]byte]*testsCopy // the unfinished jobs' tests
	delivered  uint64                  // the last delivery id
}

// memoryJob is a job in MemoryJobs, with the name of its tests.
type memoryJob struct {
	job   Job
	tests [32]byte
}

// testsCopy is the one copy of a test set, and how many unfinished jobs have it.
type testsCopy struct {
	tests []Test
	jobs  int
}

var _ Jobs = (*MemoryJobs)(nil)

// MemoryJobsOptions configure NewMemoryJobsWith.
type MemoryJobsOptions struct {
	MaxJobs  int // the most unfinished jobs; DefaultMaxJobs if not positive
	RoomJobs int // the most unfinished jobs of one room; DefaultRoomJobs if not positive
}

// NewMemoryJobs returns empty jobs that hold at most max unfinished jobs (DefaultMaxJobs
// if max is not positive), DefaultRoomJobs of them for one room.
func NewMemoryJobs(max int) *MemoryJobs {
	return NewMemoryJobsWith(MemoryJobsOptions{MaxJobs: max})
}

// NewMemoryJobsWith returns empty jobs with the bounds of opts.
func NewMemoryJobsWith(opts MemoryJobsOptions) *MemoryJobs {
	if opts.MaxJobs <= 0 {
		opts.MaxJobs = DefaultMaxJobs
	}
	if opts.RoomJobs <= 0 {
		opts.RoomJobs = DefaultRoomJobs
	}
	return &MemoryJobs{
		maxJobs: opts.MaxJobs, roomJobs: opts.RoomJobs, queue: NewQueue[memoryJob](opts.MaxJobs),
		rooms: map[string]int{}, handed: map[string]memoryJob{}, tests: map[[32]byte]*testsCopy{},
	}
}

// Enqueue implements Jobs. The job's tests are kept, not copied, unless equal tests are
// kept already: the caller must not change them afterwards.
func (m *MemoryJobs) Enqueue(_ context.Context, job Job) error {
	if err := job.check(); err != nil {
		return err
	}
	sum := testsSum(job.Tests)
	m.mu.Lock()
	defer m.mu.Unlock()
	room := job.ID.Room
	if m.unfinished >= m.maxJobs {
		return &BusyError{Len: m.unfinished}
	}
	if n := m.rooms[room]; n >= m.roomJobs {
		return &BusyError{Room: room, Len: n}
	}
	c := m.tests[sum]
	if c == nil {
		c = &testsCopy{tests: job.Tests}
		m.tests[sum] = c
	}
	job.Tests = c.tests
	if err := m.queue.Push(room, job.Player, memoryJob{job: job, tests: sum}); err != nil {
		return err // not with fewer than maxJobs unfinished
	}
	c.jobs++
	m.rooms[room]++
	m.unfinished++
	return nil
}

// Next implements Jobs.
func (m *MemoryJobs) Next(ctx context.Context) (Delivery, error) {
	if err := ctx.Err(); err != nil { // Pop would still hand out a waiting job
		return Delivery{}, err
	}
	mj, err := m.queue.Pop(ctx)
	if err != nil {
		return Delivery{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.delivered++
	id := strconv.FormatUint(m.delivered, 10)
	m.handed[id] = mj
	return Delivery{ID: id, Job: mj.job, Attempt: 1}, nil
}

// Complete implements Jobs: a job left the queue when Next took it, and is never handed
// to another worker, so only a second Complete of a delivery is stale.
func (m *MemoryJobs) Complete(_ context.Context, d Delivery) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mj, ok := m.handed[d.ID]
	if !ok {
		return false, nil
	}
	delete(m.handed, d.ID)
	m.finish(mj)
	return true, nil
}

// Drop implements Jobs.
func (m *MemoryJobs) Drop(_ context.Context, room, player string) (int, error) {
	if err := (Job{ID: JobID{Room: room}, Player: player}).check(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	dropped := m.queue.Drop(room, player)
	for _, mj := range dropped {
		m.finish(mj)
	}
	return len(dropped), nil
}

// finish counts mj out of the unfinished jobs, its room's and its tests'. m.mu is held.
func (m *MemoryJobs) finish(mj memoryJob) {
	m.unfinished--
	room := mj.job.ID.Room
	if m.rooms[room]--; m.rooms[room] <= 0 {
		delete(m.rooms, room)
		m.queue.Forget(room)
	}
	if c := m.tests[mj.tests]; c != nil {
		if c.jobs--; c.jobs <= 0 {
			delete(m.tests, mj.tests)
		}
	}
}

// testsSum names tests by their contents, for both backends to keep one copy of equal
// tests: the SHA-256 of the number of tests, then each input and output after its length,
// and whether it is a sample (equal tests shown in one room may be hidden in another).
func testsSum(tests []Test) [32]byte {
	h := sha256.New()
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	binary.BigEndian.PutUint64(n[:], uint64(len(tests)))
	h.Write(n[:])
	for _, t := range tests {
		field(t.Input)
		field(t.Output)
		if t.Sample { // which tests are shown is the test set's too
			h.Write([]byte{1})
		} else {
			h.Write([]byte{0})
		}
	}
	return [32]byte(h.Sum(nil))
}

package judge

import (
	"cmp"
	"container/heap"
	"context"
	"sync"
)

// Queue holds submissions waiting for a worker, bounded and fair across players, by rounds:
// a player's k-th waiting job belongs to round k from now, and jobs leave round by round,
// in arrival order within a round. So a player's burst waits behind every other player's
// next job, including one that arrives later: spamming submissions starves nobody.
// All methods are safe for concurrent use.
type Queue[T any] struct {
	mu      sync.Mutex
	max     int
	jobs    jobHeap[T]
	seq     uint64            // arrival order
	round   uint64            // the round of the last job to leave
	last    map[string]uint64 // each player's latest round
	waiting map[string]int    // each player's waiting jobs
	ready   chan struct{}     // closed and replaced when a job arrives
}

type queued[T any] struct {
	round, seq uint64
	player     string
	job        T
}

type jobHeap[T any] []queued[T]

func (h jobHeap[T]) Len() int { return len(h) }
func (h jobHeap[T]) Less(i, j int) bool {
	return cmp.Or(cmp.Compare(h[i].round, h[j].round), cmp.Compare(h[i].seq, h[j].seq)) < 0
}
func (h jobHeap[T]) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *jobHeap[T]) Push(x any)   { *h = append(*h, x.(queued[T])) }
func (h *jobHeap[T]) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// NewQueue returns an empty queue that holds at most max jobs.
func NewQueue[T any](max int) *Queue[T] {
	return &Queue[T]{max: max, last: map[string]uint64{}, waiting: map[string]int{}, ready: make(chan struct{})}
}

// Push adds a job of the player, or returns a *BusyError if the queue is full.
func (q *Queue[T]) Push(player string, job T) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.jobs) >= q.max {
		return &BusyError{Len: len(q.jobs)}
	}
	round := q.round
	if last, ok := q.last[player]; ok && last+1 > round {
		round = last + 1
	}
	q.last[player] = round
	q.waiting[player]++
	q.seq++
	heap.Push(&q.jobs, queued[T]{round: round, seq: q.seq, player: player, job: job})
	close(q.ready)
	q.ready = make(chan struct{})
	return nil
}

// Pop waits for a job, or for ctx to be done, and returns the next job in round order.
func (q *Queue[T]) Pop(ctx context.Context) (T, error) {
	for {
		q.mu.Lock()
		if len(q.jobs) > 0 {
			next := heap.Pop(&q.jobs).(queued[T])
			q.round = next.round
			if q.waiting[next.player]--; q.waiting[next.player] == 0 {
				delete(q.waiting, next.player)
			}
			q.forget()
			q.mu.Unlock()
			return next.job, nil
		}
		ready := q.ready
		q.mu.Unlock()
		select {
		case <-ready:
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
	}
}

// forget drops the rounds of players that no longer matter: with nothing waiting and a
// last round before the current one, a player's next job goes to the current round anyway.
func (q *Queue[T]) forget() {
	if len(q.last) <= 2*len(q.waiting)+64 {
		return
	}
	for p, last := range q.last {
		if q.waiting[p] == 0 && last < q.round {
			delete(q.last, p)
		}
	}
}

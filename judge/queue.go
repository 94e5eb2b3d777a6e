package judge

import (
	"context"
	"slices"
	"sync"
)

// Queue holds jobs waiting for a worker, bounded and fair on two levels, by rounds: first
// across rooms, then across the players of a room. In each round every room with a job
// waiting has one turn, in the order the rooms came into the round; in each of a room's
// turns the next of its players has its turn, by the same rule one level down, and the
// oldest job of that player leaves. A room (or player) that comes with nothing waiting
// joins the current round, unless it had its turn in it already: then the next. So a
// room's burst waits behind every other room's next job, and a player's burst behind
// every other player of its room, including one whose job arrives later: spamming
// submissions starves nobody.
//
// A room's rounds of players outlive its last waiting job, so that a player whose job just
// left cannot take the turn of the others again by submitting at once; Forget drops them
// once the room's jobs are all done.
//
// All methods are safe for concurrent use.
type Queue[T any] struct {
	mu    sync.Mutex
	max   int
	len   int
	rooms rounds                   // rooms with jobs waiting
	room  map[string]*roomQueue[T] // rooms with jobs waiting, or not yet forgotten
	ready chan struct{}            // closed and replaced when a job arrives
}

// roomQueue is one room's waiting jobs, by player.
type roomQueue[T any] struct {
	players rounds         // players with jobs waiting
	jobs    map[string][]T // each player's waiting jobs, oldest first
	len     int
}

// rounds orders flows (rooms, or the players of a room) that have something waiting: one
// turn each per round, in the order each got its place in the round.
type rounds struct {
	cur, next []string
	served    map[string]bool // flows that had their turn in the current round
}

// join places a flow that had nothing waiting and now has: in the current round, unless
// it had its turn in it already.
func (r *rounds) join(flow string) {
	if r.served[flow] {
		r.next = append(r.next, flow)
	} else {
		r.cur = append(r.cur, flow)
	}
}

// take returns the flow whose turn it is, starting the next round if the current one is
// over. The caller puts it back with again while it still has something waiting.
func (r *rounds) take() (string, bool) {
	if len(r.cur) == 0 {
		r.cur, r.next = r.next, nil
		clear(r.served)
	}
	if len(r.cur) == 0 {
		return "", false
	}
	flow := r.cur[0]
	r.cur = r.cur[1:]
	if r.served == nil {
		r.served = map[string]bool{}
	}
	r.served[flow] = true
	return flow, true
}

// again places a flow that just had its turn in the next round.
func (r *rounds) again(flow string) { r.next = append(r.next, flow) }

// leave removes a flow that no longer has anything waiting; it stays served.
func (r *rounds) leave(flow string) {
	r.cur = slices.DeleteFunc(r.cur, func(f string) bool { return f == flow })
	r.next = slices.DeleteFunc(r.next, func(f string) bool { return f == flow })
}

// NewQueue returns an empty queue that holds at most max jobs.
func NewQueue[T any](max int) *Queue[T] {
	return &Queue[T]{max: max, room: map[string]*roomQueue[T]{}, ready: make(chan struct{})}
}

// Push adds a job of player in room, or returns a *BusyError if the queue is full.
func (q *Queue[T]) Push(room, player string, job T) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.len >= q.max {
		return &BusyError{Len: q.len}
	}
	rq := q.room[room]
	if rq == nil {
		rq = &roomQueue[T]{jobs: map[string][]T{}}
		q.room[room] = rq
	}
	if len(rq.jobs[player]) == 0 {
		if rq.len == 0 {
			q.rooms.join(room)
		}
		rq.players.join(player)
	}
	rq.jobs[player] = append(rq.jobs[player], job)
	rq.len++
	q.len++
	close(q.ready)
	q.ready = make(chan struct{})
	return nil
}

// Pop waits for a job, or for ctx to be done, and returns the next job in round order.
func (q *Queue[T]) Pop(ctx context.Context) (T, error) {
	for {
		q.mu.Lock()
		if job, ok := q.take(); ok {
			q.mu.Unlock()
			return job, nil
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

// take removes and returns the next job, if any. q.mu is held.
func (q *Queue[T]) take() (T, bool) {
	var zero T
	room, ok := q.rooms.take()
	if !ok {
		return zero, false
	}
	rq := q.room[room]
	player, _ := rq.players.take() // a room in the rounds has a player with a job waiting
	jobs := rq.jobs[player]
	job := jobs[0]
	jobs[0] = zero // let the job go with its tests
	if jobs = jobs[1:]; len(jobs) > 0 {
		rq.jobs[player] = jobs
		rq.players.again(player)
	} else {
		delete(rq.jobs, player)
	}
	if rq.len--; rq.len > 0 {
		q.rooms.again(room)
	}
	q.len--
	return job, true
}

// Drop removes and returns the jobs of player in room, oldest first.
func (q *Queue[T]) Drop(room, player string) []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	rq := q.room[room]
	if rq == nil {
		return nil
	}
	jobs := rq.jobs[player]
	if len(jobs) == 0 {
		return nil
	}
	delete(rq.jobs, player)
	rq.players.leave(player)
	if rq.len -= len(jobs); rq.len == 0 {
		q.rooms.leave(room)
	}
	q.len -= len(jobs)
	return jobs
}

// Forget drops room's rounds of players if it has no job waiting: its players' next jobs
// start afresh. Call it when the room's jobs are all done, or the rounds of rooms that
// come and go pile up.
func (q *Queue[T]) Forget(room string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if rq := q.room[room]; rq != nil && rq.len == 0 {
		delete(q.room, room)
	}
}

// Len returns how many jobs wait.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.len
}

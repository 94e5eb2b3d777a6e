package judge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// pushAll pushes jobs of player in room to q.
func pushAll(tb testing.TB, q *Queue[string], room, player string, jobs ...string) {
	tb.Helper()
	for _, j := range jobs {
		if err := q.Push(room, player, j); err != nil {
			tb.Fatal(err)
		}
	}
}

// popAll pops n jobs from q, which must have them.
func popAll(tb testing.TB, q *Queue[string], n int) []string {
	tb.Helper()
	var got []string
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		j, err := q.Pop(ctx)
		cancel()
		if err != nil {
			tb.Fatalf("Pop %d of %d: %v", len(got)+1, n, err)
		}
		got = append(got, j)
	}
	return got
}

// TestQueueTurns: the players of one room take turns.
func TestQueueTurns(t *testing.T) {
	q := NewQueue[string](100)
	push := func(player string, jobs ...string) { t.Helper(); pushAll(t, q, "r", player, jobs...) }
	push("spam", "s1", "s2", "s3", "s4", "s5")
	push("ann", "a1", "a2")
	push("bob", "b1")
	var got []string
	for range 8 {
		j, err := q.Pop(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, j)
	}
	// players take turns; each player's own jobs keep their order
	want := []string{"s1", "a1", "b1", "s2", "a2", "s3", "s4", "s5"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestQueueBurstWaitsBehindNewcomers(t *testing.T) {
	q := NewQueue[string](100)
	for i := range 20 {
		pushAll(t, q, "r", "spam", fmt.Sprint("s", i))
	}
	first, _ := q.Pop(context.Background()) // a worker took the burst's first
	pushAll(t, q, "r", "late", "l1")        // another player's first comes after the burst
	next, _ := q.Pop(context.Background())
	if first != "s0" || next != "l1" {
		t.Fatalf("got %s then %s, want s0 then the newcomer's l1", first, next)
	}
}

// TestQueueRooms: rooms take turns first, then the players of the room whose turn it is;
// a room's burst of many players waits behind another room's one job, even a later one.
func TestQueueRooms(t *testing.T) {
	q := NewQueue[string](100)
	for i := range 3 {
		for _, p := range []string{"f1", "f2", "f3"} {
			pushAll(t, q, "spam", p, fmt.Sprint(p, "-", i))
		}
	}
	pushAll(t, q, "calm", "ann", "ann-0", "ann-1")
	got := popAll(t, q, 2)
	pushAll(t, q, "late", "bob", "bob-0") // rooms that have not had a turn: this round
	pushAll(t, q, "new", "cid", "cid-0")
	got = append(got, popAll(t, q, 11)...)
	want := []string{"f1-0", "ann-0", "bob-0", "cid-0", "f2-0", "ann-1", "f3-0", "f1-1", "f2-1", "f3-1", "f1-2", "f2-2", "f3-2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestQueueServedWaits: a player (or room) whose job just left, submitting again within
// the round, goes after those that have not had their turn yet, even if they come later.
func TestQueueServedWaits(t *testing.T) {
	q := NewQueue[string](100)
	pushAll(t, q, "r", "p", "p1")
	pushAll(t, q, "s", "x", "x1")
	got := popAll(t, q, 1)        // p1: room r and player p had their turn
	pushAll(t, q, "r", "p", "p2") // r's next turn is next round's
	pushAll(t, q, "r", "q", "q1") // a player of r who has not had a turn goes first in r
	pushAll(t, q, "t", "y", "y1") // room t has not had a turn: this round
	got = append(got, popAll(t, q, 4)...)
	if want := []string{"p1", "x1", "y1", "q1", "p2"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestQueueDrop: Drop takes one player's jobs of one room, in order, and the others keep
// their turns; a room with nothing left leaves the rounds.
func TestQueueDrop(t *testing.T) {
	q := NewQueue[string](100)
	pushAll(t, q, "r", "p", "p1", "p2", "p3")
	pushAll(t, q, "r", "q", "q1")
	pushAll(t, q, "s", "p", "sp1")
	pushAll(t, q, "u", "z", "z1")
	if got := popAll(t, q, 1); got[0] != "p1" {
		t.Fatalf("got %v, want p1", got)
	}
	if got := q.Drop("r", "p"); fmt.Sprint(got) != "[p2 p3]" {
		t.Errorf("Drop r/p: got %v, want [p2 p3]", got)
	}
	if got := q.Drop("u", "z"); fmt.Sprint(got) != "[z1]" {
		t.Errorf("Drop u/z: got %v, want [z1]", got)
	}
	if got := q.Drop("r", "p"); got != nil {
		t.Errorf("Drop r/p again: got %v, want nothing", got)
	}
	if n := q.Len(); n != 2 {
		t.Errorf("Len: got %d, want 2", n)
	}
	if got := popAll(t, q, 2); fmt.Sprint(got) != "[sp1 q1]" {
		t.Errorf("got %v, want [sp1 q1]", got)
	}
}

// TestQueueForget: once forgotten, a room's rounds of players start afresh; a room with
// jobs waiting is not forgotten.
func TestQueueForget(t *testing.T) {
	q := NewQueue[string](100)
	pushAll(t, q, "r", "p", "p1")
	popAll(t, q, 1)
	q.Forget("r")
	pushAll(t, q, "r", "p", "p2") // p's turn is this round again
	pushAll(t, q, "r", "q", "q1")
	q.Forget("r") // r has jobs waiting: nothing changes
	if got := popAll(t, q, 2); fmt.Sprint(got) != "[p2 q1]" {
		t.Errorf("got %v, want [p2 q1]", got)
	}
	if len(q.room) != 1 {
		t.Errorf("rooms remembered: got %d, want 1 (r, not yet forgotten)", len(q.room))
	}
	q.Forget("r")
	if len(q.room) != 0 {
		t.Errorf("rooms remembered after Forget: got %d, want 0", len(q.room))
	}
}

func TestQueueFull(t *testing.T) {
	q := NewQueue[int](3)
	for i := range 3 {
		if err := q.Push("r", "p", i); err != nil {
			t.Fatal(err)
		}
	}
	var busy *BusyError
	if err := q.Push("r", "q", 9); !errors.As(err, &busy) || busy.Len != 3 {
		t.Fatalf("push to a full queue: got %v, want busy with 3 waiting", err)
	}
	// A refused push changes nothing: the three come out, and the queue has room for one.
	for want := range 3 {
		if got, err := q.Pop(context.Background()); err != nil || got != want {
			t.Fatalf("pop: got %v, %v, want %d", got, err, want)
		}
	}
	if err := q.Push("r", "q", 9); err != nil {
		t.Fatalf("push after the queue emptied: %v", err)
	}
}

func TestQueuePopWaits(t *testing.T) {
	q := NewQueue[int](10)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := q.Pop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("pop from an empty queue: got %v, want the deadline", err)
	}
	got := make(chan int)
	go func() {
		j, _ := q.Pop(context.Background())
		got <- j
	}()
	time.Sleep(10 * time.Millisecond)
	if err := q.Push("r", "p", 7); err != nil {
		t.Error(err)
	}
	select {
	case j := <-got:
		if j != 7 {
			t.Fatalf("got %d, want 7", j)
		}
	case <-time.After(time.Second):
		t.Fatal("a waiting pop did not wake")
	}
}

// TestQueueConcurrent: many producers and consumers; every job comes out exactly once.
func TestQueueConcurrent(t *testing.T) {
	q := NewQueue[int](10_000)
	const producers, each = 20, 200
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				if err := q.Push(fmt.Sprint("r", p%3), fmt.Sprint("p", p), p*each+i); err != nil {
					t.Error(err)
				}
			}
		})
	}
	seen := make([]bool, producers*each)
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var consumers sync.WaitGroup
	for range 4 {
		consumers.Go(func() {
			for {
				j, err := q.Pop(ctx)
				if err != nil {
					return
				}
				mu.Lock()
				if seen[j] {
					t.Errorf("job %d popped twice", j)
				}
				seen[j] = true
				done := true
				for _, s := range seen {
					done = done && s
				}
				mu.Unlock()
				if done {
					cancel()
				}
			}
		})
	}
	wg.Wait()
	consumers.Wait()
	for j, s := range seen {
		if !s {
			t.Fatalf("job %d never popped", j)
		}
	}
}

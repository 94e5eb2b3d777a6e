package judge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestQueueTurns(t *testing.T) {
	q := NewQueue[string](100)
	push := func(player string, jobs ...string) {
		t.Helper()
		for _, j := range jobs {
			if err := q.Push(player, j); err != nil {
				t.Fatal(err)
			}
		}
	}
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
		q.Push("spam", fmt.Sprint("s", i))
	}
	first, _ := q.Pop(context.Background()) // a worker took the burst's first
	q.Push("late", "l1")                    // another player's first comes after the burst
	next, _ := q.Pop(context.Background())
	if first != "s0" || next != "l1" {
		t.Fatalf("got %s then %s, want s0 then the newcomer's l1", first, next)
	}
}

func TestQueueFull(t *testing.T) {
	q := NewQueue[int](3)
	for i := range 3 {
		if err := q.Push("p", i); err != nil {
			t.Fatal(err)
		}
	}
	var busy *BusyError
	if err := q.Push("q", 9); !errors.As(err, &busy) || busy.Len != 3 {
		t.Fatalf("push to a full queue: got %v, want busy with 3 waiting", err)
	}
	// A refused push changes nothing: the three come out, and the queue has room for one.
	for want := range 3 {
		if got, err := q.Pop(context.Background()); err != nil || got != want {
			t.Fatalf("pop: got %v, %v, want %d", got, err, want)
		}
	}
	if err := q.Push("q", 9); err != nil {
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
	q.Push("p", 7)
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
				if err := q.Push(fmt.Sprint("p", p), p*each+i); err != nil {
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

package quiz

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/internal/redistest"
)

// testLocker is the contract of every Locker.
func testLocker(t *testing.T, l Locker) {
	ctx := context.Background()
	t.Run("one holder at a time", func(t *testing.T) {
		var got atomic.Int32
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				_, ok, err := l.Acquire(ctx, "one", time.Second) // held until the test ends
				if err != nil {
					t.Error(err)
				}
				if ok {
					got.Add(1)
				}
			})
		}
		wg.Wait()
		if got.Load() != 1 {
			t.Fatalf("got %d holders of one lease, want exactly 1", got.Load())
		}
	})
	t.Run("release and extend compare the holder", func(t *testing.T) {
		a, ok, err := l.Acquire(ctx, "two", 50*time.Millisecond)
		if !ok || err != nil {
			t.Fatalf("first acquire: got %v, %v", ok, err)
		}
		if ok, err := a.Extend(ctx, 300*time.Millisecond); !ok || err != nil {
			t.Fatalf("extend a held lease: got %v, %v; want true", ok, err)
		}
		time.Sleep(100 * time.Millisecond) // past the first TTL, inside the extended one
		if _, ok, _ := l.Acquire(ctx, "two", time.Second); ok {
			t.Fatal("acquired a lease that was extended")
		}
		time.Sleep(250 * time.Millisecond) // now it expired
		b, ok, err := l.Acquire(ctx, "two", time.Second)
		if !ok || err != nil {
			t.Fatalf("acquire an expired lease: got %v, %v; want true", ok, err)
		}
		if ok, _ := a.Extend(ctx, time.Second); ok {
			t.Fatal("the old holder extended a lease that went to another")
		}
		if err := a.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := l.Acquire(ctx, "two", time.Second); ok {
			t.Fatal("the old holder's release freed the new holder's lease")
		}
		if err := b.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := l.Acquire(ctx, "two", time.Second); !ok {
			t.Fatal("a released lease could not be taken")
		}
	})
}

func TestMemoryLocker(t *testing.T) { testLocker(t, NewMemoryLocker()) }

func TestRedisLocker(t *testing.T) {
	srv := redistest.Start(t)
	testLocker(t, NewRedisLocker(srv.Client(t), "test:"))
}

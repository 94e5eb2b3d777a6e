package judge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// mustHostBoxes returns the boxes first to first+n−1 with their own lock directory, as one
// process sees them; several such values on one directory behave as several processes.
func mustHostBoxes(tb testing.TB, dir string, first, n int, clean func(context.Context, int) error) *HostBoxes {
	tb.Helper()
	h, err := NewHostBoxes(HostBoxesOptions{Locks: dir, First: first, Boxes: n, Clean: clean,
		Logger: slog.New(slog.NewTextHandler(tb.Output(), nil))})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// TestHostBoxesNeverShared: three holders of one host's four boxes (one lock directory,
// as three processes) run 50 jobs: no box is ever held by two jobs at once, every holder
// gets boxes, and every box is free afterwards.
func TestHostBoxesNeverShared(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const boxes, jobs = 4, 50
	var cleaned atomic.Int32
	clean := func(context.Context, int) error { cleaned.Add(1); return nil }
	holders := []*HostBoxes{mustHostBoxes(t, dir, 10, boxes, clean), mustHostBoxes(t, dir, 10, boxes, clean), mustHostBoxes(t, dir, 10, boxes, clean)}
	var inUse [boxes]atomic.Int32
	var per [3]atomic.Int32
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for j := range jobs {
		wg.Go(func() {
			h := holders[j%3]
			l, err := h.Lease(ctx)
			if err != nil {
				t.Errorf("Lease: %v", err)
				return
			}
			if l.ID() < 10 || l.ID() >= 10+boxes {
				t.Errorf("leased box %d, want 10 to %d", l.ID(), 10+boxes-1)
				return
			}
			if n := inUse[l.ID()-10].Add(1); n != 1 {
				t.Errorf("box %d held by %d jobs at once", l.ID(), n)
			}
			per[j%3].Add(1)
			time.Sleep(time.Duration(1+j%5) * time.Millisecond)
			inUse[l.ID()-10].Add(-1)
			if err := l.Release(ctx); err != nil {
				t.Errorf("Release: %v", err)
			}
		})
	}
	wg.Wait()
	if got := cleaned.Load(); got != 2*jobs {
		t.Errorf("cleaned %d times, want twice a job (%d): on lease and release", got, 2*jobs)
	}
	// Every box is free: one holder takes all four without waiting.
	short, stop := context.WithTimeout(ctx, time.Second)
	defer stop()
	var ids []int
	for range boxes {
		l, err := holders[0].Lease(short)
		if err != nil {
			t.Fatalf("a box was not given back: %v (leased %v)", err, ids)
		}
		ids = append(ids, l.ID())
	}
	slices.Sort(ids)
	if want := []int{10, 11, 12, 13}; !slices.Equal(ids, want) {
		t.Errorf("leased %v, want %v", ids, want)
	}
}

// TestHostBoxesWaitForAnotherProcess: with the host's only box held by another holder, a
// Lease waits on its lock (no polling) and gets the box the moment it is released; a Lease
// whose context ends while it waits gives up, and its abandoned wait does not keep the box.
func TestHostBoxesWaitForAnotherProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := mustHostBoxes(t, dir, 5, 1, nil), mustHostBoxes(t, dir, 5, 1, nil)
	ctx := context.Background()
	held, err := a.Lease(ctx)
	if err != nil {
		t.Fatal(err)
	}

	gone, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := b.Lease(gone); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lease of a held box with a short context: got %v, want its deadline", err)
	}

	got := make(chan time.Time, 1)
	go func() {
		l, err := b.Lease(ctx)
		if err != nil || l.ID() != 5 {
			t.Errorf("Lease: got %v, %v, want box 5", l, err)
		}
		got <- time.Now()
	}()
	time.Sleep(50 * time.Millisecond) // b waits
	released := time.Now()
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-got:
		t.Logf("the waiting holder got the box %v after its release", at.Sub(released))
		if at.Sub(released) > time.Second {
			t.Errorf("the waiting holder got the box %v after its release, want at once", at.Sub(released))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting holder did not get the released box")
	}
}

// TestHostBoxesHolderDies: a process on the host that holds box 0's lock and is killed
// (here util-linux's flock, kill -9) lets go of it with its life: the next Lease gets the
// box, and cleans it first.
func TestHostBoxesHolderDies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var cleaned []int
	var mu sync.Mutex
	h := mustHostBoxes(t, dir, 0, 1, func(_ context.Context, id int) error {
		mu.Lock()
		defer mu.Unlock()
		cleaned = append(cleaned, id)
		return nil
	})
	holder := exec.Command("flock", "--close", filepath.Join(dir, "box-0.lock"), "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Skipf("flock(1): %v", err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		f, err := lockBox(filepath.Join(dir, "box-0.lock"), false)
		if err != nil {
			break // the other process holds it
		}
		f.Close()
		if time.Now().After(deadline) {
			t.Fatal("the other process did not take the lock")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() {
		l, err := h.Lease(ctx)
		if err == nil && l.ID() != 0 {
			err = fmt.Errorf("box %d", l.ID())
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := holder.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("Lease after the holder died: %v, want box 0", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(cleaned, []int{0}) {
		t.Errorf("cleaned %v, want box 0 before it was leased", cleaned)
	}
}

// TestHostBoxesBroken: a box that cannot be cleaned is never leased again; the others are,
// and Broken names it.
func TestHostBoxesBroken(t *testing.T) {
	t.Parallel()
	h := mustHostBoxes(t, t.TempDir(), 0, 3, func(_ context.Context, id int) error {
		if id == 1 {
			return errors.New("a process of box 1 would not die")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var ids []int
	for range 2 {
		l, err := h.Lease(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, l.ID())
	}
	if !slices.Equal(ids, []int{0, 2}) {
		t.Errorf("leased %v, want 0 and 2: box 1 cannot be cleaned", ids)
	}
	if _, err := h.Lease(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a third lease: got %v, want to wait (box 1 is out of the pool)", err)
	}
	if got := h.Broken(); !slices.Equal(got, []int{1}) {
		t.Errorf("Broken: got %v, want [1]", got)
	}
}

// TestHostBoxesLockDir: a lock directory others may write in (they could hold its locks)
// is refused.
func TestHostBoxesLockDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "locks")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := NewHostBoxes(HostBoxesOptions{Locks: dir, Boxes: 1}); err == nil {
		t.Error("a world-writable lock directory: got no error")
	}
	if _, err := NewHostBoxes(HostBoxesOptions{Locks: filepath.Join(t.TempDir(), "new"), Boxes: 1}); err != nil {
		t.Errorf("a new lock directory: %v", err)
	}
}

func ExampleHostBoxes() {
	dir, _ := os.MkdirTemp("", "locks")
	defer os.RemoveAll(dir)
	boxes, _ := NewHostBoxes(HostBoxesOptions{Locks: dir, First: 0, Boxes: 2, Logger: slog.New(slog.DiscardHandler)})
	a, _ := boxes.Lease(context.Background())
	b, _ := boxes.Lease(context.Background())
	fmt.Println(a.ID(), b.ID())
	_ = a.Release(context.Background())
	c, _ := boxes.Lease(context.Background())
	fmt.Println(c.ID())
	// Output:
	// 0 1
	// 0
}

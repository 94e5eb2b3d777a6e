package judge

import (
	"context"
	"testing"
)

// TestMemoryJobsShareTests: jobs with equal tests, each its own copy, are delivered with
// one copy between them, and the copy is let go once every job that had it is completed
// or dropped.
func TestMemoryJobsShareTests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	jobs := NewMemoryJobs(0)
	fresh := func(sub int, player string) Job {
		j := testJob(sub, player)
		j.Tests = []Test{{Input: []byte("1\n"), Output: []byte("1\n")}} // a copy of its own
		return j
	}
	for i, p := range []string{"p", "q", "r"} {
		if err := jobs.Enqueue(ctx, fresh(i, p)); err != nil {
			t.Fatal(err)
		}
	}
	other := fresh(3, "s")
	other.Tests[0].Output = []byte("2\n")
	if err := jobs.Enqueue(ctx, other); err != nil {
		t.Fatal(err)
	}
	if n := len(jobs.tests); n != 2 {
		t.Errorf("test sets kept: got %d, want 2", n)
	}
	d1, _ := jobs.Next(ctx)
	d2, _ := jobs.Next(ctx)
	if &d1.Job.Tests[0] != &d2.Job.Tests[0] {
		t.Errorf("jobs %s and %s with equal tests: got two copies, want one", d1.Job.ID, d2.Job.ID)
	}
	for _, d := range []Delivery{d1, d2} {
		if _, err := jobs.Complete(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"r", "s"} {
		if n, err := jobs.Drop(ctx, "123456", p); n != 1 || err != nil {
			t.Fatalf("Drop %s: got %d, %v, want 1, nil", p, n, err)
		}
	}
	if len(jobs.tests) != 0 || len(jobs.rooms) != 0 || jobs.unfinished != 0 || len(jobs.queue.room) != 0 {
		t.Errorf("after every job was completed or dropped: got %d test sets, %d rooms, %d unfinished, %d rooms' rounds, want none",
			len(jobs.tests), len(jobs.rooms), jobs.unfinished, len(jobs.queue.room))
	}
}

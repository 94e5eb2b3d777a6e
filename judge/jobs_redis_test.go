package judge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulbquiz/bulb/internal/redistest"
	"github.com/bulbquiz/bulb/protocol"
)

// mustRedisJobs returns the jobs of one group on srv as seen by consumer.
func mustRedisJobs(tb testing.TB, srv *redistest.Server, consumer string, claimIdle time.Duration) *RedisJobs {
	tb.Helper()
	return NewRedisJobs(srv.Client(tb), RedisJobsOptions{
		Prefix: "test:", Consumer: consumer, ClaimIdle: claimIdle,
		Logger: slog.New(slog.NewTextHandler(tb.Output(), nil)),
	})
}

// TestRedisJobsTwoConsumers: two workers take 30 jobs at once; each job is delivered to
// exactly one of them, once, and completed once; the stream is empty afterwards.
func TestRedisJobsTwoConsumers(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 30
	producer := mustRedisJobs(t, srv, "", 0)
	for i := range n {
		if err := producer.Enqueue(ctx, testJob(i, fmt.Sprint("p", i))); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}

	var mu sync.Mutex
	took := map[int][]string{} // submission → the consumers it was delivered to
	perConsumer := map[string]int{}
	var completed atomic.Int32
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b"} {
		jobs := mustRedisJobs(t, srv, name, 30*time.Second)
		wg.Go(func() {
			for {
				d, err := jobs.Next(wctx)
				if err != nil {
					if wctx.Err() == nil {
						t.Errorf("%s: Next: %v", name, err)
					}
					return
				}
				mu.Lock()
				took[d.Job.ID.Submission] = append(took[d.Job.ID.Submission], name)
				perConsumer[name]++
				mu.Unlock()
				if d.Attempt != 1 {
					t.Errorf("%s: job %s attempt %d, want 1", name, d.ID, d.Attempt)
				}
				time.Sleep(5 * time.Millisecond) // judging: lets the other worker take jobs too
				if ok, err := jobs.Complete(ctx, d); err != nil || !ok {
					t.Errorf("%s: Complete(%s) = %v, %v, want true, nil", name, d.ID, ok, err)
				}
				if completed.Add(1) == n {
					stop()
				}
			}
		})
	}
	wg.Wait()

	if got := completed.Load(); got != n {
		t.Fatalf("completed %d jobs, want %d", got, n)
	}
	for i := range n {
		if len(took[i]) != 1 {
			t.Errorf("job %d delivered to %v, want exactly one consumer", i, took[i])
		}
	}
	if perConsumer["a"] == 0 || perConsumer["b"] == 0 {
		t.Errorf("jobs per consumer %v, want both to take some", perConsumer)
	}
	if l := producer.rdb.XLen(ctx, producer.stream).Val(); l != 0 {
		t.Errorf("stream length after all completed: got %d, want 0", l)
	}
	// What stays: the stream, its counter of waiting jobs (0), the rooms that had their
	// turn in the last round, and the one test set until it expires.
	ref := testsSum(testJob(0, "p").Tests)
	want := []string{producer.stream, producer.key("rooms:served"), producer.key("tests:" + hex.EncodeToString(ref[:])),
		producer.key("waiting")}
	if got := redisKeys(t, producer.rdb); !slices.Equal(got, want) {
		t.Errorf("keys after every job completed: got %v, want %v", got, want)
	}
	if n := producer.rdb.Get(ctx, producer.key("waiting")).Val(); n != "0" {
		t.Errorf("waiting jobs after every job completed: got %s, want 0", n)
	}
	t.Logf("jobs per consumer: %v", perConsumer)
}

// TestRedisJobsDeadConsumer: worker a takes a job and stalls; once the job has sat idle for
// ClaimIdle, worker b claims it as attempt 2. The stale a can then complete nothing, neither
// before b completes nor after; b completes it once.
func TestRedisJobsDeadConsumer(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const idle = 300 * time.Millisecond
	a, b := mustRedisJobs(t, srv, "a", idle), mustRedisJobs(t, srv, "b", idle)
	if err := a.Enqueue(ctx, testJob(1, "p")); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	da, err := a.Next(ctx)
	if err != nil {
		t.Fatalf("a: Next: %v", err)
	}
	if da.Job.ID.Submission != 1 || da.Attempt != 1 {
		t.Fatalf("a: got delivery of %s attempt %d, want submission 1 attempt 1", da.Job.ID, da.Attempt)
	}
	taken := time.Now()

	db, err := b.Next(ctx)
	if err != nil {
		t.Fatalf("b: Next: %v", err)
	}
	waited := time.Since(taken)
	if db.ID != da.ID || db.Attempt != 2 || db.Job.ID != da.Job.ID {
		t.Fatalf("b: got delivery %s attempt %d job %s, want %s attempt 2 job %s", db.ID, db.Attempt, db.Job.ID, da.ID, da.Job.ID)
	}
	if waited < idle {
		t.Errorf("b claimed the job %v after a took it, want at least ClaimIdle %v", waited, idle)
	}
	t.Logf("b claimed a's job %v after a took it (ClaimIdle %v)", waited, idle)

	for _, s := range []struct {
		name string
		jobs *RedisJobs
		d    Delivery
		want bool
	}{
		{"a before b", a, da, false},
		{"b", b, db, true},
		{"a after b", a, da, false},
		{"b again", b, db, false},
	} {
		if ok, err := s.jobs.Complete(ctx, s.d); err != nil || ok != s.want {
			t.Errorf("%s: Complete = %v, %v, want %v, nil", s.name, ok, err, s.want)
		}
	}
}

// TestRedisJobsUndecodable: a stream entry that is not a Job is dropped, not delivered;
// the next job is.
func TestRedisJobsUndecodable(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	jobs := mustRedisJobs(t, srv, "a", 0)
	if err := jobs.ensureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := jobs.rdb.XAdd(ctx, &redis.XAddArgs{Stream: jobs.stream, Values: []string{"id", "bad", "room", "r", "player", "p", "job", "{not json"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := jobs.Enqueue(ctx, testJob(1, "q")); err != nil {
		t.Fatal(err)
	}
	d, err := jobs.Next(ctx)
	if err != nil || d.Job.ID.Submission != 1 {
		t.Fatalf("Next = %s, %v, want submission 1", d.Job.ID, err)
	}
	if pending := jobs.rdb.XPending(ctx, jobs.stream, jobs.group).Val(); pending.Count != 1 {
		t.Errorf("pending jobs: got %d, want only the good one", pending.Count)
	}
	if n := jobs.rdb.HGetAll(ctx, jobs.key("unfinished")).Val(); !maps.Equal(n, map[string]string{"123456": "1"}) {
		t.Errorf("unfinished jobs by room: got %v, want only the good one's room with 1", n)
	}
}

// redisKeys returns every key of rdb, sorted.
func redisKeys(tb testing.TB, rdb redis.UniversalClient) []string {
	tb.Helper()
	keys, err := rdb.Keys(context.Background(), "*").Result()
	if err != nil {
		tb.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

// TestRedisJobsOneUnread: however many jobs wait, the stream holds those handed to
// workers and at most one more, the next in round order; a later room's job passes every
// other waiting job but that one.
func TestRedisJobsOneUnread(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	jobs := mustRedisJobs(t, srv, "a", 0)
	for i := range 10 {
		if err := jobs.Enqueue(ctx, roomJob("busy", i, fmt.Sprint("p", i%3))); err != nil {
			t.Fatal(err)
		}
	}
	if n := jobs.rdb.XLen(ctx, jobs.stream).Val(); n != 1 {
		t.Errorf("stream length with 10 jobs and no worker: got %d, want 1", n)
	}
	d, err := jobs.Next(ctx)
	if err != nil || d.Job.ID.Submission != 0 {
		t.Fatalf("Next: got %s, %v, want submission 0", d.Job.ID, err)
	}
	if n := jobs.rdb.XLen(ctx, jobs.stream).Val(); n != 2 {
		t.Errorf("stream length with one job handed: got %d, want 2 (it and the next)", n)
	}
	if err := jobs.Enqueue(ctx, roomJob("calm", 1, "ann")); err != nil {
		t.Fatal(err)
	}
	var order []string
	for range 3 {
		d, err := jobs.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, d.Job.ID.Room)
	}
	if want := []string{"busy", "calm", "busy"}; !slices.Equal(order, want) {
		t.Errorf("rooms of the next three jobs: got %v, want %v", order, want)
	}
	if n := jobs.rdb.Get(ctx, jobs.key("waiting")).Val(); n != "6" {
		t.Errorf("jobs waiting in lists: got %s, want 6", n)
	}
}

// TestRedisJobsDropUnread: Drop takes a player's job from the stream if no worker has read
// it, and the next job takes its place; one a worker has read stays.
func TestRedisJobsDropUnread(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	jobs := mustRedisJobs(t, srv, "a", 0)
	for i, j := range []Job{roomJob("R", 1, "kicked"), roomJob("R", 2, "kicked"), roomJob("S", 3, "p")} {
		if err := jobs.Enqueue(ctx, j); err != nil {
			t.Fatalf("Enqueue %d: %v", i, err)
		}
	}
	d, err := jobs.Next(ctx) // R/kicked's first, read; S/p's job is the unread one
	if err != nil || d.Job.ID.Submission != 1 {
		t.Fatalf("Next: got %s, %v, want submission 1", d.Job.ID, err)
	}
	if err := jobs.Enqueue(ctx, roomJob("R", 4, "kicked")); err != nil {
		t.Fatal(err)
	}
	d2, err := jobs.Next(ctx) // S/p's; now R/kicked's second is unread in the stream
	if err != nil || d2.Job.ID.Submission != 3 {
		t.Fatalf("Next: got %s, %v, want submission 3", d2.Job.ID, err)
	}
	unread := func() []string {
		var subs []string
		for _, m := range jobs.rdb.XRange(ctx, jobs.stream, "-", "+").Val() {
			if m.ID != d.ID && m.ID != d2.ID {
				subs = append(subs, m.Values["id"].(string))
			}
		}
		return subs
	}
	if got := unread(); !slices.Equal(got, []string{"R/2/2"}) {
		t.Fatalf("unread in the stream before Drop: got %v, want [R/2/2]", got)
	}
	if n, err := jobs.Drop(ctx, "R", "kicked"); n != 2 || err != nil {
		t.Fatalf("Drop: got %d, %v, want 2 (one in the stream, one waiting), nil", n, err)
	}
	if got := unread(); len(got) != 0 {
		t.Errorf("unread in the stream after Drop: got %v, want none", got)
	}
	for _, d := range []Delivery{d, d2} {
		if ok, err := jobs.Complete(ctx, d); !ok || err != nil {
			t.Errorf("Complete %s: got %v, %v, want true, nil", d.Job.ID, ok, err)
		}
	}
	if got := redisKeys(t, jobs.rdb); slices.ContainsFunc(got, func(k string) bool {
		return k == jobs.key("unfinished") || strings.HasPrefix(k, jobs.key("room:"))
	}) {
		t.Errorf("keys after every job was completed or dropped: got %v, want no room's nor unfinished", got)
	}
}

// TestRedisJobsReadWithoutTaken: a worker that reads a job and dies before the script
// that lets the next job into the stream stalls nothing: another worker's Next lets it in
// within its next turn (about a second), and later claims the dead worker's job.
func TestRedisJobsReadWithoutTaken(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const idle = 2 * time.Second
	b := mustRedisJobs(t, srv, "b", idle)
	for i := range 3 {
		if err := b.Enqueue(ctx, roomJob("R", i, fmt.Sprint("p", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: b.group, Consumer: "dead", Streams: []string{b.stream, ">"}, Count: 1}).Err(); err != nil {
		t.Fatalf("the dead worker's read: %v", err)
	}
	start := time.Now()
	d, err := b.Next(ctx)
	if err != nil || d.Job.ID.Submission != 1 || d.Attempt != 1 {
		t.Fatalf("b: Next: got %s attempt %d, %v, want submission 1 attempt 1", d.Job.ID, d.Attempt, err)
	}
	t.Logf("b got the next job %v after the dead worker's read", time.Since(start))
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("b got the next job %v after the dead worker's read, want within about a second", took)
	}
	var subs []int
	for range 2 {
		d, err := b.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, d.Job.ID.Submission)
	}
	if !slices.Equal(subs, []int{2, 0}) {
		t.Errorf("b's next two: got submissions %v, want [2 0] (the dead worker's last, claimed)", subs)
	}
}

// TestRedisJobsTestsOnce: 400 jobs of one question with a large test set (the issue: Redis
// went from 3.5 MB to 299 MB) store its tests once: Redis's memory grows by little more
// than one copy, and each job is delivered with the tests whole.
func TestRedisJobsTestsOnce(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	jobs := NewRedisJobs(srv.Client(t), RedisJobsOptions{Prefix: "test:", Consumer: "a", MaxJobs: 1000, RoomJobs: 1000,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	tests := make([]Test, 20)
	for i := range tests {
		tests[i] = Test{Input: make([]byte, 8<<10), Output: make([]byte, 4<<10)}
		rand.Read(tests[i].Input)
		rand.Read(tests[i].Output)
	}
	blob, _ := json.Marshal(tests)
	before := usedMemory(t, jobs.rdb)
	for i := range 400 {
		job := testJob(i, fmt.Sprint("p", i%40))
		job.Tests = slices.Clone(tests)
		if err := jobs.Enqueue(ctx, job); err != nil {
			t.Fatalf("Enqueue %d: %v", i, err)
		}
	}
	// used_memory also counts the query buffer that the test set's one trip left
	// (Redis trims it once the client idles); the keys' own usage is exact.
	grew := usedMemory(t, jobs.rdb) - before
	var keys int64
	for _, k := range redisKeys(t, jobs.rdb) {
		keys += jobs.rdb.MemoryUsage(ctx, k).Val()
	}
	t.Logf("400 jobs with a %d-byte test set: used_memory grew by %d bytes (%.1f copies), the keys use %d (%.1f copies); 400 copies: %d bytes",
		len(blob), grew, float64(grew)/float64(len(blob)), keys, float64(keys)/float64(len(blob)), 400*len(blob))
	if grew > 8*int64(len(blob)) {
		t.Errorf("used_memory grew by %d bytes, want under 8 copies of the %d-byte test set (400 copies: %d)", grew, len(blob), 400*len(blob))
	}
	if want := int64(len(blob)) + 400<<10; keys > want {
		t.Errorf("the keys use %d bytes, want at most one copy of the test set and 1 KiB a job: %d", keys, want)
	}
	if n := len(jobs.rdb.Keys(ctx, jobs.key("tests:*")).Val()); n != 1 {
		t.Errorf("test sets stored: got %d, want 1", n)
	}
	for range 3 {
		d, err := jobs.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(d.Job.Tests, tests) || d.Job.Options.Checker != "tokens" {
			t.Fatalf("job %s delivered with %d tests and checker %q, want the %d tests and tokens", d.Job.ID, len(d.Job.Tests), d.Job.Options.Checker, len(tests))
		}
	}
}

// usedMemory is Redis's used_memory, in bytes.
func usedMemory(tb testing.TB, rdb redis.UniversalClient) int64 {
	tb.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				tb.Fatalf("used_memory %q: %v", v, err)
			}
			return n
		}
	}
	tb.Fatalf("no used_memory in %q", info)
	return 0
}

// TestRedisJobsTestsLost: a job whose test set expired before it was delivered comes with
// TestsLost as its checker, which Evaluate turns into an IE verdict without running
// anything; the next Enqueue of the same tests stores them again, and its job has them.
func TestRedisJobsTestsLost(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	jobs := NewRedisJobs(srv.Client(t), RedisJobsOptions{Prefix: "test:", Consumer: "a", TestsTTL: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	job := testJob(1, "p")
	if err := jobs.Enqueue(ctx, job); err != nil {
		t.Fatal(err)
	}
	if ttl := jobs.rdb.PTTL(ctx, jobs.rdb.Keys(ctx, jobs.key("tests:*")).Val()[0]).Val(); ttl <= 0 || ttl > 200*time.Millisecond {
		t.Errorf("the test set's time to live: got %v, want up to 200ms", ttl)
	}
	time.Sleep(300 * time.Millisecond)
	d, err := jobs.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Job.Tests != nil || d.Job.Options.Checker != TestsLost || d.Job.ID != job.ID {
		t.Errorf("delivered %s with %d tests and checker %q, want %s with none and TestsLost", d.Job.ID, len(d.Job.Tests), d.Job.Options.Checker, job.ID)
	}
	v, _ := Evaluate(ctx, nil, Box{}, d.Job.Program, d.Job.Tests, d.Job.Options) // no sandbox: it must not run
	if v.Verdict != protocol.IE || !strings.Contains(v.Message, TestsLost) {
		t.Errorf("Evaluate: got %s %q, want IE saying %q", v.Verdict, v.Message, TestsLost)
	}
	if ok, err := jobs.Complete(ctx, d); !ok || err != nil {
		t.Errorf("Complete: got %v, %v, want true, nil", ok, err)
	}

	job.ID.Submission = 2
	if err := jobs.Enqueue(ctx, job); err != nil {
		t.Fatal(err)
	}
	if d, err := jobs.Next(ctx); err != nil || !reflect.DeepEqual(d.Job, job) {
		t.Errorf("Next after the tests were stored again: got %+v, %v, want %+v", d.Job, err, job)
	}
}

// TestRedisJobsOldEntry: a job the previous layout left in the stream, its tests inside
// and no room nor test set's name, is still delivered whole and completed.
func TestRedisJobsOldEntry(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	jobs := mustRedisJobs(t, srv, "a", 0)
	if err := jobs.ensureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	old := testJob(1, "123456/p1") // the old Player: ROOM/PLAYER
	b, _ := json.Marshal(old)
	if err := jobs.rdb.XAdd(ctx, &redis.XAddArgs{Stream: jobs.stream, Values: []string{"id", old.ID.String(), "player", old.Player, "job", string(b)}}).Err(); err != nil {
		t.Fatal(err)
	}
	d, err := jobs.Next(ctx)
	if err != nil || !reflect.DeepEqual(d.Job, old) {
		t.Fatalf("Next: got %+v, %v, want %+v", d.Job, err, old)
	}
	if ok, err := jobs.Complete(ctx, d); !ok || err != nil {
		t.Errorf("Complete: got %v, %v, want true, nil", ok, err)
	}
}

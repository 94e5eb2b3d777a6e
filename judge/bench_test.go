package judge

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

// benchBox0 is the first box id of the benchmarks, apart from every test's boxes: the
// judge tests use 0 to 89, the isolate tests 200 to 229 and the server tests 100 to 199.
const benchBox0 = 300

// benchPrecompiled is the key of the benchmark-only language of BenchmarkVerdicts'
// c-precompiled case: its "source" is a binary built beforehand, so Judge runs it with
// no compile step.
const benchPrecompiled = "bench-c-precompiled"

// BenchmarkVerdicts measures how many verdicts per second Workers give on the real
// bubblewrap sandbox, each box its own, for a trivial correct program (read a and b,
// print a+b: sumJob with no sleep) judged on one test with the tokens checker and
// testLimits. Each op is one verdict: b.N jobs are enqueued at once for running workers
// and the clock stops at the last verdict; every verdict must be AC.
//
// The cases, each with workers = boxes = runtime.NumCPU() and with 1:
//
//   - python: Python 3, one sandbox run per verdict.
//   - c: C17 (gcc), compiled in the sandbox for each submission then run, as the judge
//     does: two sandbox runs per verdict, gcc's the longer.
//   - c-precompiled: the same C source compiled once, outside the sandbox and outside the
//     timing, by the host's gcc with the c language's flags, and submitted as a language
//     with no compile step whose source file is that binary: one sandbox run per verdict,
//     the c case without its compile. It is not a real language (a benchmark-only row
//     of Languages, removed when the case ends).
func BenchmarkVerdicts(b *testing.B) {
	sb, root := MustBwrap(b)
	bin := mustBuildC(b, sumJob(0, "", "c", 0, 0, 0, true).Program.Source)
	Languages[benchPrecompiled] = Language{Name: "C17, precompiled (benchmark only)", Source: "main", Run: []string{"./main"}}
	defer delete(Languages, benchPrecompiled)

	jobs := map[string]func(i int) Job{
		"python": func(i int) Job { return sumJob(i, benchPlayer(i), "python", i, 1000, 0, true) },
		"c":      func(i int) Job { return sumJob(i, benchPlayer(i), "c", i, 1000, 0, true) },
		"c-precompiled": func(i int) Job {
			j := sumJob(i, benchPlayer(i), "c", i, 1000, 0, true)
			j.Program = Program{Language: benchPrecompiled, Source: bin}
			return j
		},
	}
	workers := slices.Compact([]int{runtime.NumCPU(), 1})
	for _, lang := range []string{"python", "c", "c-precompiled"} {
		for _, w := range workers {
			b.Run(fmt.Sprintf("%s/workers=%d", lang, w), func(b *testing.B) {
				benchWorkers(b, sb, root, w, jobs[lang])
			})
		}
	}
}

// benchPlayer spreads the jobs over 16 players, as a room's submissions would be; the
// queue is fair across players, which changes the order, not the throughput.
func benchPlayer(i int) string { return fmt.Sprintf("player-%d", i%16) }

// benchWorkers judges b.N jobs made by job with w fresh workers on w boxes, and reports
// verdicts/s from the first Enqueue to the last verdict.
func benchWorkers(b *testing.B, sb Sandbox, root string, w int, job func(i int) Job) {
	got := make(chan protocol.Verdict, b.N)
	jobs := NewMemoryJobsWith(MemoryJobsOptions{MaxJobs: b.N, RoomJobs: b.N}) // one room
	workers, err := NewWorkers(WorkersOptions{
		Jobs: jobs, Sandbox: sb, Boxes: mustSandboxBoxes(b, sb, root, benchBox0, w), Root: root, Workers: w,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	all := make([]Job, b.N)
	for i := range all {
		all[i] = job(i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- workers.Run(ctx, func(_ context.Context, _ Job, v protocol.Verdict) error { got <- v; return nil })
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Run: %v", err)
		}
	}()

	b.ResetTimer()
	start := time.Now()
	for _, j := range all {
		if err := jobs.Enqueue(ctx, j); err != nil {
			b.Fatalf("Enqueue: %v", err)
		}
	}
	var bad []string
	timeout := time.After(time.Duration(b.N)*10*time.Second/time.Duration(w) + time.Minute)
	for i := range b.N {
		select {
		case v := <-got:
			if v.Verdict != protocol.AC {
				bad = append(bad, v.Verdict+": "+v.Message)
			}
		case <-timeout:
			b.Fatalf("got %d verdicts of %d before the timeout", i, b.N)
		}
	}
	took := time.Since(start)
	b.StopTimer()
	if len(bad) > 0 {
		b.Fatalf("got %d verdicts other than protocol.AC of %d, the first: %s", len(bad), b.N, bad[0])
	}
	b.ReportMetric(float64(b.N)/took.Seconds(), "verdicts/s")
}

// BenchmarkSandboxOverhead measures what the sandbox adds to one run of a program: the
// same binary (sumJob's C program, compiled once in setup by the host's gcc with the c
// language's flags) given the same input, run directly with os/exec and through Bwrap.Run
// in one box. Each op is one run (paired: one of each) and its output is checked. The
// sandboxed run includes all of Bwrap.Run: emptying the box, writing the binary into it
// (as the judge does for every test), the cgroup, sh → prlimit → bwrap → the program,
// reaping the box's uid and emptying the box again; the direct run starts the binary from
// a file.
//
// The cases:
//
//   - direct and bwrap: b.N runs of one kind, then of the other; each reports the median
//     and p99 of its runs (p50-ms, p99-ms), and bwrap also overhead-ms, its ns/op less
//     direct's from the same go test run, and ×direct, the ratio of the two.
//   - paired: b.N pairs of a direct run then a sandboxed one, back to back, so that both
//     see the same load on a shared machine; it reports the medians of the direct runs,
//     the sandboxed runs, each pair's difference and each pair's ratio (direct-ms,
//     bwrap-ms, overhead-ms, ×direct).
func BenchmarkSandboxOverhead(b *testing.B) {
	sb, root := MustBwrap(b)
	bin := mustBuildC(b, sumJob(0, "", "c", 0, 0, 0, true).Program.Source)
	path := filepath.Join(b.TempDir(), "main")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		b.Fatal(err)
	}
	in, want := []byte("2 40\n"), []byte("42\n")
	runDirect := func(b *testing.B) time.Duration {
		var out bytes.Buffer
		cmd := exec.Command(path)
		cmd.Stdin, cmd.Stdout = bytes.NewReader(in), &out
		start := time.Now()
		err := cmd.Run()
		took := time.Since(start)
		if err != nil || !bytes.Equal(out.Bytes(), want) {
			b.Fatalf("direct: got %q, %v; want %q", out.Bytes(), err, want)
		}
		return took
	}
	spec := RunSpec{Args: []string{"./main"}, Stdin: in, Files: map[string][]byte{"main": bin}, Limits: testLimits}
	runBwrap := func(b *testing.B, box Box) time.Duration {
		start := time.Now()
		res, err := sb.Run(context.Background(), box, spec)
		took := time.Since(start)
		if err != nil || res.ExitCode != 0 || res.Killed != KilledNone || !bytes.Equal(res.Stdout, want) {
			b.Fatalf("bwrap: got %q, exit %d, killed %s, %v; want %q", res.Stdout, res.ExitCode, res.Killed, err, want)
		}
		return took
	}
	var direct time.Duration // direct's time per run, once it has run

	b.Run("direct", func(b *testing.B) {
		runs := make([]time.Duration, 0, b.N)
		start := time.Now()
		for range b.N {
			runs = append(runs, runDirect(b))
		}
		direct = time.Since(start) / time.Duration(b.N)
		benchQuantiles(b, runs)
	})
	b.Run("bwrap", func(b *testing.B) {
		box, err := NewBox(root, benchBox0)
		if err != nil {
			b.Fatal(err)
		}
		runs := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			runs = append(runs, runBwrap(b, box))
		}
		per := time.Since(start) / time.Duration(b.N)
		benchQuantiles(b, runs)
		if direct > 0 {
			b.ReportMetric(benchMs(per-direct), "overhead-ms")
			b.ReportMetric(float64(per)/float64(direct), "×direct")
		}
	})
	b.Run("paired", func(b *testing.B) {
		box, err := NewBox(root, benchBox0)
		if err != nil {
			b.Fatal(err)
		}
		var ds, bs, diffs []time.Duration
		var ratios []float64
		b.ResetTimer()
		for range b.N {
			d, s := runDirect(b), runBwrap(b, box)
			ds, bs, diffs = append(ds, d), append(bs, s), append(diffs, s-d)
			ratios = append(ratios, float64(s)/float64(d))
		}
		b.StopTimer()
		b.ReportMetric(benchMs(benchQuantile(ds, 0.5)), "direct-ms")
		b.ReportMetric(benchMs(benchQuantile(bs, 0.5)), "bwrap-ms")
		b.ReportMetric(benchMs(benchQuantile(diffs, 0.5)), "overhead-ms")
		b.ReportMetric(benchQuantile(ratios, 0.5), "×direct")
	})
}

// benchQuantiles reports the median and p99 of runs, in milliseconds (p50-ms, p99-ms).
func benchQuantiles(b *testing.B, runs []time.Duration) {
	b.ReportMetric(benchMs(benchQuantile(runs, 0.5)), "p50-ms")
	b.ReportMetric(benchMs(benchQuantile(runs, 0.99)), "p99-ms")
}

// benchMs is d in milliseconds.
func benchMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchQuantile returns the q-quantile of xs (nearest rank; the lower middle for the median
// of an even count), sorting xs in place; zero for no xs.
func benchQuantile[T time.Duration | float64](xs []T, q float64) T {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// mustBuildC compiles src with the host's gcc and the c language's flags, outside the
// sandbox, and returns the binary.
func mustBuildC(tb testing.TB, src []byte) []byte {
	tb.Helper()
	dir := tb.TempDir()
	lang := Languages["c"]
	if err := os.WriteFile(filepath.Join(dir, lang.Source), src, 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(lang.Compile[0], lang.Compile[1:]...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%v: %v\n%s", lang.Compile, err, out)
	}
	bin, err := os.ReadFile(filepath.Join(dir, lang.Binary))
	if err != nil {
		tb.Fatal(err)
	}
	return bin
}

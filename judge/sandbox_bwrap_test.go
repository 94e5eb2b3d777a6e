package judge

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/internal/proc"
	"github.com/bulbquiz/bulb/internal/testenv"
)

// testLimits are small limits that keep the hostile tests quick. The wall clock allows a
// CPU-bound program its second of CPU even on a loaded machine (a quarter of a core).
var testLimits = Limits{
	CPU:       time.Second,
	Wall:      4 * time.Second,
	Memory:    128 << 20,
	Processes: 16,
	Output:    64 << 10,
	FileSize:  1 << 20,
}

// MustBwrap returns the real bubblewrap sandbox and a root directory for boxes, or skips
// without bwrap (fails under BULB_REQUIRE_DEPS=1) or without root.
func MustBwrap(tb testing.TB) (*Bwrap, string) {
	tb.Helper()
	testenv.Program(tb, "bwrap")
	testenv.Program(tb, "prlimit")
	if os.Geteuid() != 0 {
		tb.Skip("the bwrap sandbox gives each box its own uid, which needs root")
	}
	sb, err := NewBwrap(BwrapOptions{})
	if err != nil {
		tb.Fatalf("NewBwrap: %v", err)
	}
	// Box uids must traverse to their box: open the temp dir and its parent to others.
	root := tb.TempDir()
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o711); err != nil {
			tb.Fatal(err)
		}
	}
	return sb, root
}

// testBoxes are the host's boxes 1 to workersBox0−1, which MustBox leases to the tests,
// through the host-wide lock files: tests run in parallel, with other packages' tests and
// with Bulb processes on the host, and box ids are host-wide uids and cgroups.
var testBoxes = sync.OnceValues(func() (*HostBoxes, error) {
	return NewHostBoxes(HostBoxesOptions{First: 1, Boxes: workersBox0 - 1, Logger: slog.New(slog.DiscardHandler)})
})

// MustBox leases a box of the host's for the test, with its directory under root, and
// releases it when the test ends.
func MustBox(tb testing.TB, root string) Box {
	tb.Helper()
	boxes, err := testBoxes()
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lease, err := boxes.Lease(ctx)
	if err != nil {
		tb.Fatalf("MustBox: %v", err)
	}
	tb.Cleanup(func() { _ = lease.Release(context.Background()) })
	b, err := NewBox(root, lease.ID())
	if err != nil {
		tb.Fatalf("NewBox: %v", err)
	}
	return b
}

// uidProcesses lists the pids whose real uid is uid, zombies included.
func uidProcesses(uid int) []int {
	var pids []int
	for _, p := range proc.OfUID(uid) {
		pids = append(pids, p.PID)
	}
	return pids
}

func python(src string) RunSpec {
	return RunSpec{Args: []string{"/usr/bin/python3", "-S", "main.py"}, Files: map[string][]byte{"main.py": []byte(src)}, Limits: testLimits}
}

func sh(script string) RunSpec {
	return RunSpec{Args: []string{"/bin/sh", "-c", script}, Limits: testLimits}
}

func TestBwrapRun(t *testing.T) {
	t.Parallel()
	sb, root := MustBwrap(t)
	box := MustBox(t, root)

	tests := []runCase{
		{"echo and exit code", sh("echo hello; echo oops >&2; exit 3"), func(t *testing.T, res RunResult) {
			if string(res.Stdout) != "hello\n" || string(res.Stderr) != "oops\n" || res.ExitCode != 3 {
				t.Errorf("got stdout %q stderr %q exit %d, want hello, oops, 3", res.Stdout, res.Stderr, res.ExitCode)
			}
		}, KilledNone},
		{"stdin", RunSpec{Args: []string{"/bin/cat"}, Stdin: []byte("in put"), Limits: testLimits}, func(t *testing.T, res RunResult) {
			if string(res.Stdout) != "in put" {
				t.Errorf("got %q, want %q", res.Stdout, "in put")
			}
		}, KilledNone},
		{"own uid", sh("id -u; id -g"), func(t *testing.T, res RunResult) {
			want := fmt.Sprintf("%d\n%d\n", box.UID, box.UID)
			if string(res.Stdout) != want {
				t.Errorf("got %q, want %q", res.Stdout, want)
			}
		}, KilledNone},
		{"killed by signal", sh("kill -SEGV $$"), func(t *testing.T, res RunResult) {
			if res.Signal != 11 {
				t.Errorf("got signal %d (exit %d), want 11", res.Signal, res.ExitCode)
			}
		}, KilledNone},
		{"collect and clean box", RunSpec{Args: []string{"/bin/sh", "-c", "cat in > out; echo x > junk; ln -s /etc/shadow link"},
			Files: map[string][]byte{"in": []byte("data")}, Collect: []string{"out", "link", "missing"}, Limits: testLimits},
			func(t *testing.T, res RunResult) {
				if string(res.Files["out"]) != "data" {
					t.Errorf("got out %q, want %q", res.Files["out"], "data")
				}
				if _, ok := res.Files["link"]; ok {
					t.Errorf("a symlink was collected: %q", res.Files["link"])
				}
				if entries, _ := os.ReadDir(box.Dir); len(entries) != 0 {
					t.Errorf("box not empty after the run: %v", entries)
				}
			}, KilledNone},
		{"memory hog", python("b = []\nwhile True:\n    b.append(bytearray(1 << 20))\n"), func(t *testing.T, res RunResult) {
			if res.PeakMemoryKB < 64<<10 {
				t.Errorf("got peak %d KB, want near the 128 MB limit", res.PeakMemoryKB)
			}
		}, KilledMemory},
	}
	mustRunCases(t, sb, box, box.UID, sb.MemoryLimiter(), append(tests, limitCases()...))
}

func TestBwrapHostile(t *testing.T) {
	t.Parallel()
	sb, root := MustBwrap(t)
	box1, box2 := MustBox(t, root), MustBox(t, root)
	ctx := context.Background()

	t.Run("writing outside the box", func(t *testing.T) {
		name := fmt.Sprintf("bulb-escape-%d", os.Getpid())
		targets := []string{"/tmp/" + name, "/usr/" + name, "/" + name, "../" + filepath.Base(box2.Dir) + "/" + name, "../" + name, root + "/" + name, box2.Dir + "/" + name, "/etc/" + name}
		src := "import sys\nfor p in sys.argv[1:]:\n    try:\n        open(p, 'w').write('x')\n    except OSError as e:\n        print(p, e)\n"
		spec := python(src)
		spec.Args = append(spec.Args, targets...)
		if _, err := sb.Run(ctx, box1, spec); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/tmp/" + name, "/usr/" + name, "/" + name, filepath.Join(root, name), filepath.Join(box2.Dir, name), "/etc/" + name} {
			if _, err := os.Stat(p); err == nil {
				os.Remove(p)
				t.Errorf("the program wrote %s on the host", p)
			}
		}
	})

	t.Run("reading another box", func(t *testing.T) {
		secret := "secret-" + strconv.Itoa(os.Getpid())
		if err := os.WriteFile(filepath.Join(box2.Dir, "secret"), []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(filepath.Join(box2.Dir, "secret"))
		res, err := sb.Run(ctx, box1, sh("cat ../box-2/secret "+box2.Dir+"/secret /proc/1/root"+box2.Dir+"/secret; find / -name secret 2>/dev/null"))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(res.Stdout, []byte(secret)) {
			t.Errorf("box 1 read box 2's secret: %q", res.Stdout)
		}
	})

	t.Run("opening a socket", func(t *testing.T) { mustNotConnect(t, sb, box1) })

	t.Run("fork bomb", func(t *testing.T) { mustStopForkBomb(t, sb, box1, box1.UID) })

	t.Run("many threads", func(t *testing.T) {
		res, err := sb.Run(ctx, box1, python("import threading, time\nn = 0\ntry:\n    for i in range(1000):\n        threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n        n += 1\nexcept RuntimeError:\n    pass\nprint(n)\n"))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(res.Stdout)))
		if n >= testLimits.Processes {
			t.Errorf("started %d threads, want fewer than %d (stderr %q)", n, testLimits.Processes, res.Stderr)
		}
	})
}

func TestBwrapParallelBoxes(t *testing.T) {
	t.Parallel()
	sb, root := MustBwrap(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	results := make([]RunResult, 4)
	errs := make([]error, 4)
	start := time.Now()
	for i := range results {
		box := MustBox(t, root)
		wg.Go(func() {
			script := fmt.Sprintf("echo %d > mine; sleep 1; ls; cat mine", i)
			results[i], errs[i] = sb.Run(ctx, box, sh(script))
		})
	}
	wg.Wait()
	// One after another they would take over 4 s; side by side about 1 s plus the
	// sandbox's start and cleanup, which a busy machine (parallel tests) stretches.
	if d := time.Since(start); d > 3500*time.Millisecond {
		t.Errorf("four 1 s runs took %v, want them side by side", d)
	}
	for i, res := range results {
		if errs[i] != nil {
			t.Fatalf("box %d: %v", i, errs[i])
		}
		want := fmt.Sprintf("mine\n%d\n", i)
		if string(res.Stdout) != want {
			t.Errorf("box %d: got %q, want %q", i, res.Stdout, want)
		}
	}
}

func TestBwrapRlimitAS(t *testing.T) {
	t.Parallel()
	_, root := MustBwrap(t)
	sb, err := NewBwrap(BwrapOptions{NoCgroup: true})
	if err != nil {
		t.Fatal(err)
	}
	box := MustBox(t, root)
	res, err := sb.Run(context.Background(), box, python("b = []\nwhile True:\n    b.append(bytearray(1 << 20))\n"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Message != "RLIMIT_AS" {
		t.Errorf("got message %q, want RLIMIT_AS", res.Message)
	}
	if res.ExitCode == 0 || !bytes.Contains(res.Stderr, []byte("MemoryError")) {
		t.Errorf("got exit %d, stderr %q, want a MemoryError", res.ExitCode, res.Stderr)
	}
}

// TestDetectCgroupsAtOnce: sandboxes set up at the same moment in one process (two test
// servers, say) find the same cgroups; none falls back to RLIMIT_AS because another's probe
// took its name.
func TestDetectCgroupsAtOnce(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating cgroups needs root")
	}
	want, err := detectCgroups("")
	if err != nil {
		t.Skipf("no usable cgroups here: %v", err)
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if got, err := detectCgroups(""); err != nil || got != want {
				t.Errorf("detectCgroups at once: %+v, %v; want %+v", got, err, want)
			}
		})
	}
	wg.Wait()
}

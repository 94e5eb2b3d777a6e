package judge

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hostileFixture is a program from testdata/hostile, how to run it, and what the sandbox
// must make of it.
type hostileFixture struct {
	file   string
	limits Limits
	check  func(t *testing.T, res RunResult)
}

// TestHostileFixtures runs, in the real sandbox, the programs students wrote to break the
// judge or the host (testdata/hostile), each in a box of its own: each ends as it must,
// within its limits, and its box is then clean at once — not mounted, empty, no process of
// its uid left — and judges an honest program right away.
func TestHostileFixtures(t *testing.T) {
	t.Parallel()
	sb, root := MustBwrap(t)
	fixtures := []hostileFixture{
		{"deep_tree.c", testLimits, func(t *testing.T, res RunResult) {
			// A chain as deep as the box's inodes allow, far short of the 200,000 asked for.
			levels, _ := strconv.Atoi(strings.TrimSpace(string(res.Stdout)))
			if levels < 1000 || levels >= DefaultLimits.Files || res.Killed != KilledDisk {
				t.Errorf("got %d levels, killed %q, want fewer than the box's %d files and killed for disk", levels, res.Killed, DefaultLimits.Files)
			}
		}},
		{"many_files.c", testLimits, func(t *testing.T, res RunResult) {
			made, _ := strconv.Atoi(strings.TrimSpace(string(res.Stdout)))
			if made >= DefaultLimits.Files || res.Killed != KilledDisk {
				t.Errorf("made %d files, killed %q, want fewer than %d and killed for disk", made, res.Killed, DefaultLimits.Files)
			}
		}},
		{"disk_fill.c", withLimits(testLimits, Limits{FileSize: 16 << 20, Disk: 32 << 20, Memory: 256 << 20}), func(t *testing.T, res RunResult) {
			if got := string(res.Stdout); got != "dev refused, shm refused, null writable\n" || res.Killed != KilledDisk || res.WallTime >= testLimits.Wall {
				t.Errorf("got %q, killed %q after %v; want /dev read-only but for its devices, and /tmp filled to the box's disk limit", got, res.Killed, res.WallTime)
			}
		}},
		{"fork_cpu.c", cpuBound(RunSpec{Limits: testLimits}).Limits, func(t *testing.T, res RunResult) {
			// Eight busy processes: ended at the box's CPU limit, not eight times it.
			if res.Killed != KilledCPU || res.CPUTime > testLimits.CPU*3/2 {
				t.Errorf("killed %q after %v of CPU, want killed for CPU within 1.5 × %v", res.Killed, res.CPUTime, testLimits.CPU)
			}
		}},
		{"lock_box.sh", testLimits, func(t *testing.T, res RunResult) {
			if string(res.Stdout) != "done\n" || res.ExitCode != 0 {
				t.Errorf("got %q, exit %d (stderr %q), want done", res.Stdout, res.ExitCode, res.Stderr)
			}
		}},
		{"fd_probe.py", testLimits, func(t *testing.T, res RunResult) {
			if got := strings.TrimSpace(string(res.Stdout)); got != "none" {
				t.Errorf("the program saw descriptors %q (stderr %q), want none above 2", got, res.Stderr)
			}
		}},
	}
	// A descriptor this process holds without close-on-exec must not reach a box.
	leak, err := syscall.Open(filepath.Join(root, "host-secret"), syscall.O_RDWR|syscall.O_CREAT, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(leak) })

	for _, fx := range fixtures {
		box := MustBox(t, root)
		spec := fixtureSpec(t, fx.file)
		spec.Limits = fx.limits
		t.Run(fx.file, func(t *testing.T) {
			t.Parallel()
			res, err := sb.Run(context.Background(), box, spec)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			fx.check(t, res)
			mustCleanBox(t, box)
			start := time.Now()
			honest, err := sb.Run(context.Background(), box, sh("echo ok > f; cat f"))
			if err != nil || string(honest.Stdout) != "ok\n" || honest.Killed != KilledNone {
				t.Fatalf("an honest run in the same box: got %q, killed %q, %v; want ok", honest.Stdout, honest.Killed, err)
			}
			t.Logf("%s: killed %q, CPU %v, wall %v; the next run took %v", fx.file, res.Killed, res.CPUTime, res.WallTime, time.Since(start))
		})
	}
}

// withLimits returns l with the non-zero fields of o.
func withLimits(l, o Limits) Limits { return mergeLimits(o, l) }

// fixtureSpec is how to run a fixture: a C program built on the host with the c
// language's flags, a Python program or a shell script.
func fixtureSpec(t *testing.T, file string) RunSpec {
	src, err := os.ReadFile(filepath.Join("testdata", "hostile", file))
	if err != nil {
		t.Fatal(err)
	}
	switch filepath.Ext(file) {
	case ".c":
		return RunSpec{Args: []string{"./main"}, Files: map[string][]byte{"main": mustBuildC(t, src)}}
	case ".py":
		return RunSpec{Args: []string{"/usr/bin/python3", "-S", "main.py"}, Files: map[string][]byte{"main.py": src}}
	}
	return RunSpec{Args: []string{"/bin/sh", "main.sh"}, Files: map[string][]byte{"main.sh": src}}
}

// mustCleanBox checks that a run left nothing: the box's directory is not a mount point,
// is empty, and no process of its uid is left.
func mustCleanBox(t *testing.T, box Box) {
	t.Helper()
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(mounts, []byte(" "+box.Dir+" ")) {
		t.Errorf("box %d's directory is still a mount point after the run", box.ID)
	}
	if entries, err := os.ReadDir(box.Dir); err != nil || len(entries) != 0 {
		t.Errorf("box %d's directory after the run: %d entries, %v; want empty", box.ID, len(entries), err)
	}
	if pids := uidProcesses(box.UID); len(pids) != 0 {
		t.Errorf("processes of box %d's uid left: %v", box.ID, pids)
	}
}

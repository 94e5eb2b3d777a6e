package judge

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

// isolateBox0 is the first box id of the isolate tests, apart from the bwrap tests' boxes:
// with isolate's default configuration box N runs as BaseUID+N, as bwrap's box N does.
const isolateBox0 = 200

// MustIsolate returns the real isolate sandbox, or skips without it. isolate is not
// packaged in Debian, so scripts/test.sh cannot install it and BULB_REQUIRE_DEPS=1 does
// not turn this skip into a failure.
func MustIsolate(tb testing.TB) *Isolate {
	tb.Helper()
	if _, err := exec.LookPath("isolate"); err != nil {
		tb.Skip("isolate is not installed: it is not packaged in Debian; build and install it from github.com/ioi/isolate to run this test")
	}
	sb, err := NewIsolate(IsolateOptions{})
	if err != nil {
		tb.Fatalf("NewIsolate: %v", err)
	}
	return sb
}

func TestIsolateRunArgs(t *testing.T) {
	lim := Limits{CPU: 1500 * time.Millisecond, Wall: 3 * time.Second, Memory: 128 << 20, Processes: 4, Output: 1 << 10, FileSize: 1000}
	tail := []string{"--processes=4", "--fsize=1", "--dir=etc/alternatives:maybe",
		"--env=PATH=/usr/bin:/bin", "--env=HOME=/box", "--env=TMPDIR=/tmp", "--env=LANG=C.UTF-8",
		"--run", "--", "./main", "arg"}
	for _, tt := range []struct {
		name string
		cg   bool
		want []string
	}{
		{"cgroup", true, append([]string{"--cg", "--box-id=7", "--silent", "--meta=/tmp/meta", "--time=1.500",
			"--extra-time=0.500", "--wall-time=3.000", "--cg-mem=131072"}, tail...)},
		{"RLIMIT_AS", false, append([]string{"--box-id=7", "--silent", "--meta=/tmp/meta", "--time=1.500",
			"--extra-time=0.500", "--wall-time=3.000", "--mem=131072"}, tail...)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := isolateRunArgs(tt.cg, 7, "/tmp/meta", lim, []string{"./main", "arg"})
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
			box := isolateBoxArgs(tt.cg, 7)
			if !reflect.DeepEqual(box, tt.want[:len(box)]) || box[len(box)-1] != "--box-id=7" {
				t.Errorf("got box arguments %q, want the run's first ones, ending in --box-id=7", box)
			}
		})
	}
}

// Meta files as isolate writes them: its statistics (time, time-wall, max-rss, csw-*,
// then cg-mem and cg-oom-killed with --cg), then exitcode or exitsig, status and message;
// when isolate kills the program, status, message and killed come first. The wall-clock
// one is the meta file quoted in github.com/ioi/isolate issue 104.
func TestIsolateParseMeta(t *testing.T) {
	lim := Limits{CPU: time.Second, Wall: 2 * time.Second}
	tests := []struct {
		name string
		meta string
		want RunResult
	}{
		{"ok with cgroup", "time:0.012\ntime-wall:0.034\nmax-rss:3456\ncsw-voluntary:5\ncsw-forced:1\ncg-mem:2648\nexitcode:0\n",
			RunResult{CPUTime: 12 * time.Millisecond, WallTime: 34 * time.Millisecond, PeakMemoryKB: 2648, Killed: KilledNone}},
		{"ok without cgroup", "time:0.012\ntime-wall:0.034\nmax-rss:3456\ncsw-voluntary:5\ncsw-forced:1\nexitcode:0\n",
			RunResult{CPUTime: 12 * time.Millisecond, WallTime: 34 * time.Millisecond, PeakMemoryKB: 3456, Killed: KilledNone}},
		{"exit status", "time:0.004\ntime-wall:0.011\nmax-rss:1412\ncsw-voluntary:2\ncsw-forced:0\ncg-mem:1024\nexitcode:3\nstatus:RE\nmessage:Exited with error status 3\n",
			RunResult{ExitCode: 3, CPUTime: 4 * time.Millisecond, WallTime: 11 * time.Millisecond, PeakMemoryKB: 1024, Killed: KilledNone}},
		{"signal", "time:0.001\ntime-wall:0.005\nmax-rss:1280\ncsw-voluntary:1\ncsw-forced:0\nexitsig:11\nstatus:SG\nmessage:Caught fatal signal 11\n",
			RunResult{ExitCode: 139, Signal: 11, CPUTime: time.Millisecond, WallTime: 5 * time.Millisecond, PeakMemoryKB: 1280, Killed: KilledNone}},
		{"CPU limit, killed", "status:TO\nmessage:Time limit exceeded\nkilled:1\ntime:1.100\ntime-wall:1.154\nmax-rss:1364\ncsw-voluntary:3\ncsw-forced:18\ncg-mem:1756\n",
			RunResult{ExitCode: 137, Signal: 9, CPUTime: 1100 * time.Millisecond, WallTime: 1154 * time.Millisecond, PeakMemoryKB: 1756, Killed: KilledCPU}},
		{"CPU limit, exited", "time:1.032\ntime-wall:1.040\nmax-rss:1500\ncsw-voluntary:1\ncsw-forced:4\nstatus:TO\nmessage:Time limit exceeded\n",
			RunResult{CPUTime: 1032 * time.Millisecond, WallTime: 1040 * time.Millisecond, PeakMemoryKB: 1500, Killed: KilledCPU}},
		{"wall-clock limit", "status:TO\nmessage:Time limit exceeded (wall clock)\nkilled:1\ntime:0.008\ntime-wall:6.071\nmax-rss:884\ncsw-voluntary:4\ncsw-forced:0\ncg-mem:1608\n",
			RunResult{ExitCode: 137, Signal: 9, CPUTime: 8 * time.Millisecond, WallTime: 6071 * time.Millisecond, PeakMemoryKB: 1608, Killed: KilledWall}},
		{"wall clock, but over the CPU limit", "status:TO\nmessage:Time limit exceeded (wall clock)\nkilled:1\ntime:2.400\ntime-wall:2.050\nmax-rss:900\ncg-mem:4000\n",
			RunResult{ExitCode: 137, Signal: 9, CPUTime: 2400 * time.Millisecond, WallTime: 2050 * time.Millisecond, PeakMemoryKB: 4000, Killed: KilledCPU}},
		{"out of memory", "time:0.352\ntime-wall:0.410\nmax-rss:131200\ncsw-voluntary:30\ncsw-forced:12\ncg-mem:131072\ncg-oom-killed:1\nexitsig:9\nstatus:SG\nmessage:Caught fatal signal 9\n",
			RunResult{ExitCode: 137, Signal: 9, CPUTime: 352 * time.Millisecond, WallTime: 410 * time.Millisecond, PeakMemoryKB: 131072, Killed: KilledMemory}},
		{"interrupted", "exitsig:15\nstatus:SG\nmessage:Interrupted\nkilled:1\ntime:0.210\ntime-wall:0.502\nmax-rss:2000\ncsw-voluntary:7\ncsw-forced:2\n",
			RunResult{ExitCode: 143, Signal: 15, CPUTime: 210 * time.Millisecond, WallTime: 502 * time.Millisecond, PeakMemoryKB: 2000, Killed: KilledNone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMeta([]byte(tt.meta), lim)
			if err != nil {
				t.Fatalf("parseMeta: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestIsolateParseMetaErrors(t *testing.T) {
	for _, tt := range []struct{ name, meta, want string }{
		{"isolate failed", "status:XX\nmessage:Cannot run proxy, clone failed: Operation not permitted\n", "clone failed"},
		{"unknown status", "time:0.1\ntime-wall:0.1\nstatus:ZZ\nmessage:what\n", `"ZZ"`},
		{"bad time", "time:abc\ntime-wall:0.100\n", "time"},
		{"bad memory", "time:0.1\ntime-wall:0.100\ncg-mem:lots\n", "cg-mem"},
		{"empty", "", "no result"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseMeta([]byte(tt.meta), DefaultLimits)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one saying %s", err, tt.want)
			}
		})
	}
}

func TestIsolateBoxDir(t *testing.T) {
	for _, tt := range []struct{ out, want string }{
		{"/var/local/lib/isolate/3\n", "/var/local/lib/isolate/3/box"},
		{"/var/lib/isolate/12", "/var/lib/isolate/12/box"},
		{"", ""},
		{"isolate/3\n", ""},
		{"/a\n/b\n", ""},
	} {
		got, err := isolateBoxDir([]byte(tt.out))
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("isolateBoxDir(%q): got %q, %v, want %q", tt.out, got, err, tt.want)
		}
	}
}

func TestIsolateSandboxCommand(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for _, tt := range []struct {
		in   []string
		want string // the first argument wanted; "" for one of /usr/bin/sh, /bin/sh
	}{
		{[]string{"sh", "-c", "true"}, ""},
		{[]string{"./main"}, "./main"},
		{[]string{"/usr/bin/python3", "-S"}, "/usr/bin/python3"},
		{[]string{"no-such-program-here"}, "no-such-program-here"},
	} {
		got := sandboxCommand(tt.in)
		if tt.want == "" && got[0] != "/usr/bin/sh" && got[0] != "/bin/sh" {
			t.Errorf("sandboxCommand(%q): got %q, want /usr/bin/sh or /bin/sh (sh is %s)", tt.in, got, sh)
		}
		if tt.want != "" && got[0] != tt.want {
			t.Errorf("sandboxCommand(%q): got %q, want %q first", tt.in, got, tt.want)
		}
		if !reflect.DeepEqual(got[1:], tt.in[1:]) {
			t.Errorf("sandboxCommand(%q): got arguments %q, want them kept", tt.in, got[1:])
		}
	}
}

func TestNewIsolate(t *testing.T) {
	t.Run("not installed", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		if _, err := NewIsolate(IsolateOptions{}); err == nil || !strings.Contains(err.Error(), "isolate") {
			t.Errorf("got error %v, want one saying isolate is not installed", err)
		}
		if _, err := NewIsolate(IsolateOptions{Isolate: "/no/such/isolate"}); err == nil {
			t.Error("got no error for a missing configured path")
		}
	})
	t.Run("configured path", func(t *testing.T) {
		// Any executable will do: NewIsolate does not run it.
		path := filepath.Join(t.TempDir(), "isolate")
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		sb, err := NewIsolate(IsolateOptions{Isolate: path, NoCgroup: true})
		if err != nil {
			t.Fatalf("NewIsolate: %v", err)
		}
		if sb.path != path || sb.cg || sb.firstUID != BaseUID || sb.MemoryLimiter() != "RLIMIT_AS" {
			t.Errorf("got path %q, cgroup %v, first uid %d, memory %q; want %q, false, %d, RLIMIT_AS",
				sb.path, sb.cg, sb.firstUID, sb.MemoryLimiter(), path, BaseUID)
		}
	})
}

// TestIsolateStopProcs stops a stand-in for a dead worker's isolate: a shell started with
// isolate's path as its name and --box-id and --run among its arguments.
func TestIsolateStopProcs(t *testing.T) {
	path := "/opt/bulb-test/isolate"
	start := func(args ...string) *exec.Cmd {
		cmd := &exec.Cmd{Path: "/bin/sh", Args: append([]string{path, "-c", "while :; do sleep 0.05; done"}, args...)}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		return cmd
	}
	mine := start("--cg", "--box-id=7", "--run", "--", "x")
	start("--box-id=17", "--run")      // another box
	start("--box-id=7", "--init")      // not a run
	start("--run", "--", "--box-id=7") // the program's argument, not isolate's
	// A child the shell forked for sleep, caught before it exec'd, still bears its
	// parent's command line: it is the isolate's too, and goes with it.
	got := slices.DeleteFunc(isolateProcs(path, 7), func(pid int) bool {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		_, after, _ := strings.Cut(string(stat), ") ")
		f := strings.Fields(after)
		return err == nil && len(f) > 1 && f[1] == strconv.Itoa(mine.Process.Pid)
	})
	if !reflect.DeepEqual(got, []int{mine.Process.Pid}) {
		t.Fatalf("got %v, want [%d]", got, mine.Process.Pid)
	}
	stopIsolates(path, 7)
	if running(mine.Process.Pid) {
		t.Error("the isolate of box 7 still runs")
	}
	if err := mine.Wait(); err == nil || mine.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("got %v, want it ended by SIGTERM", err)
	}
	if got := isolateProcs(path, 7); len(got) != 0 {
		t.Errorf("got %v left, want none", got)
	}
}

func TestIsolateRun(t *testing.T) {
	sb := MustIsolate(t)
	box := Box{ID: isolateBox0}
	uid := sb.firstUID + box.ID
	ctx := context.Background()
	memory, memCheck := KilledNone, func(t *testing.T, res RunResult) {
		if res.ExitCode == 0 || !bytes.Contains(res.Stderr, []byte("MemoryError")) {
			t.Errorf("got exit %d, stderr %q, want a MemoryError", res.ExitCode, res.Stderr)
		}
	}
	if sb.cg {
		memory, memCheck = KilledMemory, func(t *testing.T, res RunResult) {
			if res.PeakMemoryKB < 64<<10 {
				t.Errorf("got peak %d KB, want near the 128 MB limit", res.PeakMemoryKB)
			}
		}
	}

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
		{"program on PATH", RunSpec{Args: []string{"echo", "hi"}, Limits: testLimits}, func(t *testing.T, res RunResult) {
			if string(res.Stdout) != "hi\n" {
				t.Errorf("got %q (stderr %q), want %q", res.Stdout, res.Stderr, "hi\n")
			}
		}, KilledNone},
		{"own uid", sh("id -u"), func(t *testing.T, res RunResult) {
			if want := fmt.Sprintf("%d\n", uid); string(res.Stdout) != want {
				t.Errorf("got %q, want %q", res.Stdout, want)
			}
		}, KilledNone},
		{"killed by signal", sh("kill -SEGV $$"), func(t *testing.T, res RunResult) {
			if res.Signal != 11 {
				t.Errorf("got signal %d (exit %d), want 11", res.Signal, res.ExitCode)
			}
		}, KilledNone},
		{"collect and clean box", RunSpec{Args: []string{"/bin/sh", "-c", "cat in > out; echo x > junk; ln -s /etc/passwd link"},
			Files: map[string][]byte{"in": []byte("data")}, Collect: []string{"out", "link", "missing"}, Limits: testLimits},
			func(t *testing.T, res RunResult) {
				if string(res.Files["out"]) != "data" {
					t.Errorf("got out %q, want %q", res.Files["out"], "data")
				}
				if _, ok := res.Files["link"]; ok {
					t.Errorf("a symlink was collected: %q", res.Files["link"])
				}
				next, err := sb.Run(ctx, box, sh("ls -A"))
				if err != nil || len(next.Stdout) != 0 {
					t.Errorf("the next run saw %q (%v), want an empty box", next.Stdout, err)
				}
			}, KilledNone},
		{"memory hog", python("b = []\nwhile True:\n    b.append(bytearray(1 << 20))\n"), memCheck, memory},
	}
	mustRunCases(t, sb, box, uid, sb.MemoryLimiter(), append(tests, limitCases()...))
}

func TestIsolateHostile(t *testing.T) {
	sb := MustIsolate(t)
	box1, box2 := Box{ID: isolateBox0 + 1}, Box{ID: isolateBox0 + 2}
	ctx := context.Background()
	// Box 2 holds a secret, as if a run were in it.
	dir2, err := sb.reset(ctx, box2.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Clean(context.Background(), box2) })
	secret := "secret-" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(filepath.Join(dir2, "secret"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	// So does a world-readable host directory.
	hostDir := t.TempDir()
	for _, d := range []string{filepath.Dir(hostDir), hostDir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(hostDir, "secret"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("reading outside the box", func(t *testing.T) {
		res, err := sb.Run(ctx, box1, sh("cat "+dir2+"/secret "+hostDir+"/secret /proc/1/root"+hostDir+"/secret; find / -name secret 2>/dev/null | xargs cat"))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(res.Stdout, []byte(secret)) {
			t.Errorf("box 1 read a secret outside it: %q", res.Stdout)
		}
	})

	t.Run("writing outside the box", func(t *testing.T) {
		name := fmt.Sprintf("bulb-escape-%d", os.Getpid())
		targets := []string{"/tmp/" + name, "/usr/" + name, "/" + name, "/etc/" + name, dir2 + "/" + name, hostDir + "/" + name}
		src := "import sys\nfor p in sys.argv[1:]:\n    try:\n        open(p, 'w').write('x')\n    except OSError as e:\n        print(p, e)\n"
		spec := python(src)
		spec.Args = append(spec.Args, targets...)
		if _, err := sb.Run(ctx, box1, spec); err != nil {
			t.Fatal(err)
		}
		for _, p := range targets {
			if _, err := os.Stat(p); err == nil {
				os.Remove(p)
				t.Errorf("the program wrote %s on the host", p)
			}
		}
	})

	t.Run("opening a socket", func(t *testing.T) { mustNotConnect(t, sb, box1) })

	t.Run("fork bomb", func(t *testing.T) { mustStopForkBomb(t, sb, box1, sb.firstUID+box1.ID) })
}

// TestIsolateJudge judges real programs through isolate, each language's as in
// TestJudgeLanguages and the hostile ones of TestJudgeHostile that isolate must stop.
func TestIsolateJudge(t *testing.T) {
	sb := MustIsolate(t)
	opts := Options{Checker: "tokens", Limits: testLimits}
	memory := protocol.RE // RLIMIT_AS: the allocation fails and the program dies of it
	if sb.cg {
		memory = protocol.MLE
	}
	type judged struct{ name, lang, src, want string }
	var tests []judged
	for lang, src := range sources {
		for _, k := range []judged{{"AC", lang, src.ac, protocol.AC}, {"WA", lang, src.wa, protocol.WA}, {"CE", lang, src.ce, protocol.CE}, {"RE", lang, src.re, protocol.RE}} {
			if k.src != "" {
				tests = append(tests, judged{lang + "/" + k.name, k.lang, k.src, k.want})
			}
		}
	}
	tests = append(tests,
		judged{"infinite loop", "c", "int main(void){for(;;);}", protocol.TLE},
		judged{"memory hog", "cpp", "#include <vector>\nint main(){std::vector<char*> v; for(;;){char*p=new char[1<<20]; for(int i=0;i<(1<<20);i+=4096)p[i]=1; v.push_back(p);} }", memory},
		judged{"printing gigabytes", "c", "#include <stdio.h>\nint main(void){for(;;)puts(\"spam spam spam spam\");}", protocol.OLE},
	)
	for i, tt := range tests {
		box := Box{ID: isolateBox0 + 10 + i}
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, _ := Evaluate(context.Background(), sb, box, Program{Language: tt.lang, Source: []byte(tt.src)}, sums, opts)
			if v.Verdict != tt.want {
				t.Errorf("got %s (%s), want %s", v.Verdict, v.Message, tt.want)
			}
			if pids := uidProcesses(sb.firstUID + box.ID); len(pids) != 0 {
				t.Errorf("processes of uid %d left: %v", sb.firstUID+box.ID, pids)
			}
		})
	}
}

// TestIsolateClean cleans the box of a dead worker: its isolate still runs a program.
func TestIsolateClean(t *testing.T) {
	sb := MustIsolate(t)
	box := Box{ID: isolateBox0 + 3}
	ctx := context.Background()
	dir, err := sb.reset(ctx, box.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "junk"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	meta := filepath.Join(t.TempDir(), "meta")
	orphan := exec.Command(sb.path, isolateRunArgs(sb.cg, box.ID, meta, Limits{CPU: time.Minute, Wall: time.Minute,
		Memory: 64 << 20, Processes: 4, Output: 1 << 10, FileSize: 1 << 20}, []string{"/bin/sleep", "600"})...)
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- orphan.Wait() }()
	uid := sb.firstUID + box.ID
	for deadline := time.Now().Add(5 * time.Second); len(uidProcesses(uid)) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the program did not start in the box")
		}
	}

	if err := sb.Clean(ctx, box); err != nil {
		t.Fatalf("Clean: %v", err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the worker's isolate still runs after Clean")
	}
	if pids := uidProcesses(uid); len(pids) != 0 {
		t.Errorf("processes of uid %d left: %v", uid, pids)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("the box %s is still there after Clean", dir)
	}
	res, err := sb.Run(ctx, box, sh("ls -A"))
	if err != nil || len(res.Stdout) != 0 {
		t.Errorf("a run after Clean got %q (%v), want an empty box", res.Stdout, err)
	}
}

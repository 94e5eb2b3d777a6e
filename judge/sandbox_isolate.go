package judge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// IsolateOptions configures the isolate backend. The zero value is usable.
type IsolateOptions struct {
	// Isolate is the isolate program's path; empty means look it up on PATH.
	Isolate string
	// FirstUID is the uid isolate runs box 0's program as (first_uid in its configuration);
	// box N's runs as FirstUID+N. Zero means BaseUID, which is isolate's default first_uid.
	FirstUID int
	// NoCgroup runs isolate without --cg even where the host has a memory cgroup: memory is
	// then limited per process with --mem (RLIMIT_AS).
	NoCgroup bool
	// Logger receives the backend's diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// Isolate is the sandbox backend on isolate (github.com/ioi/isolate), the sandbox of the
// IOI. isolate must be installed setuid root or run by root, and configured for as many
// boxes as are used; with --cg (used where the host has a memory cgroup, see
// IsolateConfig.NoCgroup) its cgroup root must be set up as its manual says. It is safe
// for concurrent use on different boxes.
//
// Only Box.ID is used: isolate keeps box N's files in its own directory (printed by
// isolate --init, with the box in its "box" subdirectory) and runs its programs as its own
// uid, FirstUID+N. Each run is isolate --cleanup and --init (an empty box), the files
// written into it, isolate --run, the Collect files read back, and isolate --cleanup.
//
// isolate gives the program no network, a read-only /usr, /bin and /lib, only /box (and,
// in recent versions, a /tmp of its own) writable, and enforces the CPU (--time, cgroup time with --cg), wall-clock
// (--wall-time), memory (--cg-mem with --cg, else --mem: RLIMIT_AS), process (--processes)
// and file-size (--fsize) limits. The output limit is enforced from Go, which reads the
// program's stdout and stderr: past it, isolate is interrupted (SIGTERM), which makes it
// kill the program and report.
type Isolate struct {
	path     string
	cg       bool   // run with --cg
	limiter  string // RunResult.Message
	firstUID int
	log      *slog.Logger
}

var _ Sandbox = (*Isolate)(nil)

// isolateExtraTime is how much CPU time past its limit a program may take before isolate
// kills it (--extra-time), so that isolate reports the time it took.
const isolateExtraTime = 500 * time.Millisecond

// isolateGrace is how long isolate has to stop once asked (past the wall-clock limit, or
// after SIGTERM) before it is killed, and how long its output may stay open after it ends.
const isolateGrace = 2 * time.Second

// NewIsolate returns the isolate backend, having found the isolate program and, unless
// cfg.NoCgroup, a memory cgroup on the host (without one it runs isolate without --cg,
// limits memory with RLIMIT_AS and says so in every RunResult.Message).
func NewIsolate(cfg IsolateOptions) (*Isolate, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "judge.isolate")
	name := cfg.Isolate
	if name == "" {
		name = "isolate"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("judge: the isolate sandbox is not installed: %w", err)
	}
	if path, err = filepath.Abs(path); err != nil {
		return nil, fmt.Errorf("judge: isolate: %w", err)
	}
	s := &Isolate{path: path, firstUID: cfg.FirstUID, log: log}
	if s.firstUID == 0 {
		s.firstUID = BaseUID
	}
	version := 0
	if !cfg.NoCgroup {
		if version = hostCgroupVersion(); version == 0 {
			log.Warn("no memory cgroup, running isolate without --cg and limiting memory with RLIMIT_AS")
		}
	}
	s.cg = version != 0
	s.limiter = cgroups{version: version}.message()
	log.Info("sandbox ready", "isolate", path, "memory", s.limiter)
	return s, nil
}

// MemoryLimiter says how memory is limited: "cgroup v1", "cgroup v2" or "RLIMIT_AS".
func (s *Isolate) MemoryLimiter() string { return s.limiter }

// Run runs spec in box. See Sandbox.
func (s *Isolate) Run(ctx context.Context, box Box, spec RunSpec) (RunResult, error) {
	lim := spec.Limits.withDefaults()
	res := RunResult{Killed: KilledNone, Message: s.limiter}
	if len(spec.Args) == 0 {
		return res, fmt.Errorf("%w: no command", ErrBadSpec)
	}
	if box.ID < 0 {
		return res, fmt.Errorf("%w: box %+v", ErrBadSpec, box)
	}
	dir, err := s.reset(ctx, box.ID)
	if err != nil {
		return res, err
	}
	defer func() {
		if _, err := s.boxCommand(context.WithoutCancel(ctx), box.ID, "--cleanup"); err != nil {
			s.log.Error("empty box after run", "box", box.ID, "err", err)
		}
	}()
	// UID -1 leaves the files ours: isolate --run gives the box to the box's uid for the
	// run, and back to us after it.
	inBox := Box{ID: box.ID, Dir: dir, UID: -1}
	for name, data := range spec.Files {
		if err := writeBoxFile(inBox, name, data); err != nil {
			return res, err
		}
	}
	// The meta file is outside the box, where the program cannot touch it.
	meta, err := os.CreateTemp("", "bulb-isolate-meta-")
	if err != nil {
		return res, fmt.Errorf("judge: meta file: %w", err)
	}
	meta.Close()
	defer os.Remove(meta.Name())

	cmd := exec.Command(s.path, isolateRunArgs(s.cg, box.ID, meta.Name(), lim, sandboxCommand(spec.Args))...)
	cmd.Stdin = bytes.NewReader(spec.Stdin)
	out := &outputs{limit: lim.Output, over: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = out.writer(&out.stdout), out.writer(&out.stderr)
	cmd.WaitDelay = isolateGrace
	// Should this process die, isolate takes SIGTERM as an interrupt and kills the program.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("judge: start isolate: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// isolate enforces the wall-clock limit; this is in case it does not.
	backstop := time.NewTimer(lim.Wall + isolateGrace)
	defer backstop.Stop()
	var waitErr error
	stopped := KilledNone // the limit for which Run stopped isolate itself
	canceled := false
	select {
	case waitErr = <-done:
	case <-out.over:
		stopped = KilledOutput
	case <-backstop.C:
		stopped = KilledWall
	case <-ctx.Done():
		stopped, canceled = KilledWall, true
	}
	if stopped != KilledNone {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case waitErr = <-done:
		case <-time.After(isolateGrace):
			_ = cmd.Process.Kill()
			reapUID(s.firstUID + box.ID)
			<-done
			return res, fmt.Errorf("judge: isolate did not stop within %v of SIGTERM, box %d", isolateGrace, box.ID)
		}
	}
	if canceled {
		return res, fmt.Errorf("judge: run canceled: %w", ctx.Err())
	}
	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) {
		return res, fmt.Errorf("judge: wait for isolate: %w", waitErr)
	}
	out.mu.Lock()
	stdout, stderr, overflowed := out.stdout.Bytes(), out.stderr.Bytes(), out.closed
	out.mu.Unlock()
	data, err := os.ReadFile(meta.Name())
	if err != nil {
		return res, fmt.Errorf("judge: read isolate meta file: %w", err)
	}
	got, err := parseMeta(data, lim)
	if err != nil {
		return res, fmt.Errorf("judge: box %d: %w (stderr %q)", box.ID, err, bytes.TrimSpace(stderr))
	}
	// isolate exits 0 when the program succeeded, 1 when it failed, anything else when
	// isolate did.
	if code := cmd.ProcessState.ExitCode(); code != 0 && code != 1 {
		return res, fmt.Errorf("judge: isolate failed (%v), box %d: %s", cmd.ProcessState, box.ID, bytes.TrimSpace(stderr))
	}
	res = got
	res.Message, res.Stdout, res.Stderr = s.limiter, stdout, stderr
	if stopped != KilledNone {
		// isolate reports the SIGTERM it got as the exit signal; it killed the program
		// with SIGKILL.
		res.Killed, res.Signal, res.ExitCode = stopped, int(syscall.SIGKILL), 128+int(syscall.SIGKILL)
	} else if overflowed && res.Killed == KilledNone {
		res.Killed = KilledOutput // it wrote too much, and ended before it could be stopped
	}
	res.Files = collectFiles(inBox, spec.Collect, lim.FileSize)
	return res, nil
}

// Clean makes box clean again, for a reaper returning a dead worker's box: it interrupts
// the isolate still running in the box (which then kills the program), kills whatever is
// left of the box's uid, and empties the box with isolate --cleanup. The box is left as a
// run leaves it: the next Run initializes it again (isolate --init).
func (s *Isolate) Clean(ctx context.Context, box Box) error {
	if box.ID < 0 {
		return fmt.Errorf("%w: box %+v", ErrBadSpec, box)
	}
	stopIsolates(s.path, box.ID)
	uid := s.firstUID + box.ID
	if err := emptyUID(box.ID, uid); err != nil {
		return err
	}
	_, err := s.boxCommand(ctx, box.ID, "--cleanup")
	return err
}

// reset empties box id (isolate --cleanup, then --init) and returns the directory of its
// box, where the program's files go.
func (s *Isolate) reset(ctx context.Context, id int) (string, error) {
	if _, err := s.boxCommand(ctx, id, "--cleanup"); err != nil {
		return "", err
	}
	out, err := s.boxCommand(ctx, id, "--init")
	if err != nil {
		return "", err
	}
	return isolateBoxDir(out)
}

// boxCommand runs isolate command (--init or --cleanup) on box id and returns its output.
func (s *Isolate) boxCommand(ctx context.Context, id int, command string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, s.path, append(isolateBoxArgs(s.cg, id), command)...)
	cmd.WaitDelay = isolateGrace
	out, err := cmd.Output()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("judge: isolate %s, box %d: %w", command, id, ctx.Err())
	}
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) && len(exitErr.Stderr) > 0 {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(exitErr.Stderr))
		}
		return nil, fmt.Errorf("judge: isolate %s, box %d: %w", command, id, err)
	}
	return out, nil
}

// isolateBoxArgs are the arguments that name box id to isolate, in the same cgroup mode for
// each of its commands (isolate refuses a box initialized in the other mode).
func isolateBoxArgs(cg bool, id int) []string {
	var a []string
	if cg {
		a = append(a, "--cg")
	}
	return append(a, fmt.Sprintf("--box-id=%d", id))
}

// isolateRunArgs builds isolate's arguments to run command in box id under lim, writing
// its meta file to meta. With cg, memory is the box cgroup's (--cg-mem), else each
// process's address space (--mem). The environment is Bwrap's.
func isolateRunArgs(cg bool, id int, meta string, lim Limits, command []string) []string {
	a := append(isolateBoxArgs(cg, id),
		"--silent", // isolate's own messages would mix with the program's stderr
		"--meta="+meta,
		"--time="+isolateSeconds(lim.CPU),
		"--extra-time="+isolateSeconds(isolateExtraTime),
		"--wall-time="+isolateSeconds(lim.Wall),
	)
	if cg {
		a = append(a, "--cg-mem="+isolateKB(lim.Memory))
	} else {
		a = append(a, "--mem="+isolateKB(lim.Memory))
	}
	a = append(a,
		"--processes="+strconv.Itoa(lim.Processes),
		"--fsize="+isolateKB(lim.FileSize),
		"--dir=etc/alternatives:maybe",
		"--env=PATH=/usr/bin:/bin",
		"--env=HOME=/box",
		"--env=TMPDIR=/tmp",
		"--env=LANG=C.UTF-8",
		"--run", "--")
	return append(a, command...)
}

// isolateSeconds formats d as isolate's fractional seconds, to the millisecond it counts.
func isolateSeconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

// isolateKB formats n bytes as isolate's kilobytes, rounded up.
func isolateKB(n int64) string { return strconv.FormatInt((n+1023)/1024, 10) }

// sandboxCommand makes a bare program name in command[0] (a program on /usr/bin:/bin, as
// RunSpec allows) its absolute path: isolate executes command[0] as a path, with no PATH
// search. The box binds the host's /usr and /bin, so the host's are the box's.
func sandboxCommand(command []string) []string {
	if strings.ContainsRune(command[0], '/') {
		return command
	}
	for _, dir := range []string{"/usr/bin", "/bin"} {
		p := filepath.Join(dir, command[0])
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return append([]string{p}, command[1:]...)
		}
	}
	return command // isolate will report it missing, as the program's error
}

// isolateBoxDir reads what isolate --init printed, the sandbox's directory, and returns
// the directory of its box: the "box" subdirectory.
func isolateBoxDir(out []byte) (string, error) {
	dir := strings.TrimSpace(string(out))
	if !filepath.IsAbs(dir) || strings.ContainsAny(dir, "\n\x00") {
		return "", fmt.Errorf("judge: isolate --init printed %q, not a directory", out)
	}
	return filepath.Join(dir, "box"), nil
}

// parseMeta reads an isolate meta file (key:value lines, see isolate(1)) of a run under
// lim into a RunResult: time → CPUTime, time-wall → WallTime, cg-mem (else max-rss) →
// PeakMemoryKB, exitcode → ExitCode, exitsig → Signal (and ExitCode 128+N), killed → a
// SIGKILL when no signal is given. Killed is, as Bwrap decides it: the wall clock for
// status TO within the CPU limit, else memory for cg-oom-killed, else the CPU for TO.
// Status XX (isolate's own failure), an unknown status or a meta file with no result is
// an error; keys it does not need (csw-*, message apart from XX, newer ones) are skipped.
func parseMeta(data []byte, lim Limits) (RunResult, error) {
	res := RunResult{Killed: KilledNone}
	var status, message string
	var maxRSS, cgMem int64
	var killed, oom, ran bool
	for _, line := range strings.Split(string(data), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var err error
		switch key {
		case "time":
			res.CPUTime, err = parseSeconds(val)
		case "time-wall":
			res.WallTime, err = parseSeconds(val)
			ran = true
		case "max-rss":
			maxRSS, err = strconv.ParseInt(val, 10, 64)
		case "cg-mem":
			cgMem, err = strconv.ParseInt(val, 10, 64)
		case "cg-oom-killed":
			oom = val != "0"
		case "exitcode":
			res.ExitCode, err = strconv.Atoi(val)
		case "exitsig":
			res.Signal, err = strconv.Atoi(val)
		case "killed":
			killed = val != "0"
		case "status":
			status = val
		case "message":
			message = val
		}
		if err != nil {
			return res, fmt.Errorf("isolate meta file: %s: %w", key, err)
		}
	}
	switch status {
	case "", "RE", "SG", "TO":
	case "XX":
		return res, fmt.Errorf("isolate failed: %s", message)
	default:
		return res, fmt.Errorf("isolate meta file: unknown status %q (%s)", status, message)
	}
	if !ran {
		return res, fmt.Errorf("isolate meta file has no result: %q", data)
	}
	res.PeakMemoryKB = maxRSS
	if cgMem > 0 {
		res.PeakMemoryKB = cgMem
	}
	switch {
	case res.Signal != 0:
		res.ExitCode = 128 + res.Signal
	case killed:
		res.Signal, res.ExitCode = int(syscall.SIGKILL), 128+int(syscall.SIGKILL)
	}
	switch {
	case status == "TO" && res.CPUTime <= lim.CPU:
		res.Killed = KilledWall
	case oom:
		res.Killed = KilledMemory
	case status == "TO":
		res.Killed = KilledCPU
	}
	return res, nil
}

// parseSeconds parses isolate's fractional seconds.
func parseSeconds(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("bad seconds %q", s)
	}
	return time.Duration(f*1e6+0.5) * time.Microsecond, nil
}

// hostCgroupVersion says which cgroup version gives the host a memory controller: 1 or 2,
// 0 for none.
func hostCgroupVersion() int {
	if data, err := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		if slices.Contains(strings.Fields(string(data)), "memory") {
			return 2
		}
		return 0
	}
	if _, err := os.Stat(filepath.Join(cgroupRoot, "memory", "memory.limit_in_bytes")); err == nil {
		return 1
	}
	return 0
}

// isolateProcs lists the isolate processes running box id: those started as path with
// --box-id=id and --run among their options (before "--"), as Run starts them. isolate's
// proxy, a clone of it, is one of them.
func isolateProcs(path string, id int) []int {
	want := fmt.Sprintf("--box-id=%d", id)
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
		if args[0] != path {
			continue
		}
		opts := args[1:]
		if i := slices.Index(opts, "--"); i >= 0 {
			opts = opts[:i]
		}
		if slices.Contains(opts, want) && slices.Contains(opts, "--run") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// stopIsolates interrupts the isolate processes running box id (isolate takes SIGTERM as
// an interrupt: it kills the program, reports and exits) and waits for them to end,
// killing those still running after isolateGrace.
func stopIsolates(path string, id int) {
	pids := isolateProcs(path, id)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(isolateGrace)
	for {
		pids = slices.DeleteFunc(pids, func(pid int) bool { return !running(pid) })
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// running reports whether process pid exists and is not a zombie.
func running(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may hold any byte.
	i := bytes.LastIndexByte(data, ')')
	return i >= 0 && i+2 < len(data) && data[i+2] != 'Z'
}

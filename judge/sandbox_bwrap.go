package judge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bulbquiz/bulb/internal/proc"
)

// BwrapOptions configures the bubblewrap backend. The zero value is usable.
type BwrapOptions struct {
	// Bwrap and Prlimit are the programs' paths; empty means look them up on PATH.
	Bwrap, Prlimit string
	// CgroupParent is where box cgroups are made: for cgroup v2 a delegated directory with
	// no processes of its own; for v1 a path relative to each controller's mount. Empty
	// means under this process's own cgroup.
	CgroupParent string
	// NoCgroup limits memory with RLIMIT_AS even where a memory cgroup is available.
	NoCgroup bool
	// Logger receives the backend's diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// Bwrap is the bubblewrap sandbox backend. It must run as root (it gives each box its own
// uid). It is safe for concurrent use on different boxes.
//
// Each run is: /bin/sh (started as the box uid, in a new process group, which waits on a
// pipe until the parent has put it in the box's cgroups, so that nothing escapes the
// cgroup by forking first) → prlimit (RLIMIT_CPU, RLIMIT_NPROC, RLIMIT_FSIZE, RLIMIT_CORE=0,
// and RLIMIT_AS when there is no memory cgroup) → bwrap (new user, pid, net, ipc, uts,
// cgroup and mount namespaces; read-only /usr, no network, only /box writable, a size-bound
// /tmp) → the command. The wall-clock and output limits are enforced from Go; every process
// of the box uid is killed after the run, and the box directory is emptied before and after.
//
// NewBwrap makes the calling process a child subreaper (prctl PR_SET_CHILD_SUBREAPER):
// bwrap exits without waiting for its init, which is then reparented to this process and
// reaped by Run. A program embedding Bwrap that starts other daemonizing children would have
// to reap their orphans itself.
type Bwrap struct {
	bwrap, prlimit string
	cg             cgroups
	log            *slog.Logger
}

var _ Sandbox = (*Bwrap)(nil)

// NewBwrap returns the bubblewrap backend, having found bwrap and prlimit and detected
// the host's cgroups (v1 or v2; without a usable memory cgroup it falls back to RLIMIT_AS
// and says so in every RunResult.Message).
func NewBwrap(cfg BwrapOptions) (*Bwrap, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "judge.bwrap")
	if os.Geteuid() != 0 {
		return nil, errors.New("judge: the bwrap sandbox must run as root, to give each box its own uid")
	}
	b := &Bwrap{bwrap: cfg.Bwrap, prlimit: cfg.Prlimit, log: log}
	for _, p := range []*string{&b.bwrap, &b.prlimit} {
		name := map[*string]string{&b.bwrap: "bwrap", &b.prlimit: "prlimit"}[p]
		if *p == "" {
			path, err := exec.LookPath(name)
			if err != nil {
				return nil, fmt.Errorf("judge: %s not found: %w", name, err)
			}
			*p = path
		}
	}
	// Become the child subreaper, so that bwrap's init, which bwrap does not wait for, is
	// reparented to this process and reaped by Run rather than left to the host's init.
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return nil, fmt.Errorf("judge: become child subreaper: %w", errno)
	}
	if !cfg.NoCgroup {
		cg, err := detectCgroups(cfg.CgroupParent)
		if err != nil {
			log.Warn("no memory cgroup, limiting memory with RLIMIT_AS", "err", err)
		}
		b.cg = cg
	}
	log.Info("sandbox ready", "memory", b.cg.message())
	return b, nil
}

// MemoryLimiter says how memory is limited: "cgroup v1", "cgroup v2" or "RLIMIT_AS".
func (b *Bwrap) MemoryLimiter() string { return b.cg.message() }

// prSetChildSubreaper is prctl's PR_SET_CHILD_SUBREAPER.
const prSetChildSubreaper = 36

// overheadProcs is the number of processes of the box uid that are not the program:
// the outer bwrap and its init (pid 1 of the box's pid namespace).
const overheadProcs = 2

// gateScript waits for the parent's go-ahead on fd 3, then runs the rest of its arguments.
const gateScript = `read -r go <&3 || exit 125; exec 3<&-; exec "$@"`

// Run runs spec in box. See Sandbox.
func (b *Bwrap) Run(ctx context.Context, box Box, spec RunSpec) (RunResult, error) {
	lim := spec.Limits.withDefaults()
	res := RunResult{Killed: KilledNone, Message: b.cg.message()}
	if len(spec.Args) == 0 {
		return res, fmt.Errorf("%w: no command", ErrBadSpec)
	}
	if box.UID < BaseUID || box.Dir == "" || !filepath.IsAbs(box.Dir) {
		return res, fmt.Errorf("%w: box %+v", ErrBadSpec, box)
	}
	if err := wipe(box.Dir); err != nil {
		return res, fmt.Errorf("judge: empty box %d: %w", box.ID, err)
	}
	defer func() {
		if err := wipe(box.Dir); err != nil {
			b.log.Error("empty box after run", "box", box.ID, "err", err)
		}
	}()
	for name, data := range spec.Files {
		if err := writeBoxFile(box, name, data); err != nil {
			return res, err
		}
	}

	var cg *boxCgroup
	if b.cg.version != 0 {
		var err error
		cg, err = b.cg.create(cgroupName(box), lim.Memory, lim.Processes+overheadProcs)
		if err != nil {
			return res, fmt.Errorf("judge: box %d: %w", box.ID, err)
		}
		defer func() {
			if err := cg.remove(); err != nil {
				b.log.Error("remove cgroup", "box", box.ID, "err", err)
			}
		}()
	}

	cmd := exec.Command("/bin/sh", append([]string{"-c", gateScript, "bulb-box"}, b.args(box, lim, spec.Args)...)...)
	cmd.Dir = box.Dir
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Stdin = bytes.NewReader(spec.Stdin)
	out := &outputs{limit: lim.Output, over: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = out.writer(&out.stdout), out.writer(&out.stderr)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
		Credential: &syscall.Credential{Uid: uint32(box.UID), Gid: uint32(box.UID), Groups: []uint32{}},
	}
	gateR, gateW, err := os.Pipe()
	if err != nil {
		return res, fmt.Errorf("judge: pipe: %w", err)
	}
	defer gateW.Close()
	cmd.ExtraFiles = []*os.File{gateR}

	start := time.Now()
	err = cmd.Start()
	gateR.Close()
	if err != nil {
		return res, fmt.Errorf("judge: start sandbox: %w", err)
	}
	pid := cmd.Process.Pid
	if cg != nil {
		if err := cg.join(pid); err != nil {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = cmd.Wait()
			reapUID(box.UID)
			return res, fmt.Errorf("judge: box %d: %w", box.ID, err)
		}
	}
	if _, err := gateW.Write([]byte("go\n")); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Wait()
		reapUID(box.UID)
		return res, fmt.Errorf("judge: start sandbox: %w", err)
	}
	gateW.Close()

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	wall := time.NewTimer(lim.Wall)
	defer wall.Stop()
	var waitErr error
	canceled := false
	select {
	case waitErr = <-done:
	case <-wall.C:
		res.Killed = KilledWall
	case <-out.over:
		res.Killed = KilledOutput
	case <-ctx.Done():
		res.Killed = KilledWall
		canceled = true
	}
	if res.Killed != KilledNone {
		// Kill the box's processes but not the outer bwrap, so that it reaps its init and
		// the run's CPU time is accounted; kill bwrap too if it does not end soon.
		if cg != nil {
			cg.kill(pid)
		}
		killUID(box.UID, pid)
		select {
		case waitErr = <-done:
		case <-time.After(500 * time.Millisecond):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			waitErr = <-done
		}
	}
	res.WallTime = time.Since(start)
	// bwrap's init and whatever else is left of the box uid go now.
	orphanCPU := reapUID(box.UID)

	if canceled {
		return res, fmt.Errorf("judge: run canceled: %w", ctx.Err())
	}
	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) {
		return res, fmt.Errorf("judge: wait for sandbox: %w", waitErr)
	}
	st := cmd.ProcessState
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		res.CPUTime = time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) + orphanCPU
		res.PeakMemoryKB = ru.Maxrss
	}
	ws, _ := st.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled():
		res.Signal = int(ws.Signal())
		res.ExitCode = 128 + res.Signal
	default:
		res.ExitCode = ws.ExitStatus()
		// bwrap's init reports a program killed by signal N as exit status 128+N.
		if res.ExitCode > 128 && res.ExitCode <= 128+64 {
			res.Signal = res.ExitCode - 128
		}
	}
	if cg != nil {
		// bwrap does not wait for its init, so rusage misses the program: the cgroup's
		// CPU time counts every process of the run.
		if cpu, ok := cg.cpuTime(); ok {
			res.CPUTime = max(res.CPUTime, cpu)
		}
		if kb := cg.peakKB(); kb > 0 {
			res.PeakMemoryKB = kb
		}
		if res.Killed == KilledNone && cg.oomKilled() {
			res.Killed = KilledMemory
		}
	}
	if res.Killed == KilledNone && (res.CPUTime > lim.CPU || res.Signal == int(syscall.SIGXCPU)) {
		res.Killed = KilledCPU
	}
	out.mu.Lock()
	res.Stdout, res.Stderr = out.stdout.Bytes(), out.stderr.Bytes()
	out.mu.Unlock()
	if res.ExitCode == 125 && res.Signal == 0 && res.Killed == KilledNone && bytes.HasPrefix(res.Stderr, []byte("bwrap:")) {
		return res, fmt.Errorf("judge: bwrap failed: %s", bytes.TrimSpace(res.Stderr))
	}

	res.Files = collectFiles(box, spec.Collect, lim.FileSize)
	return res, nil
}

// collectFiles reads back the named files of box, those the program made, up to limit
// bytes each; nil if none.
func collectFiles(box Box, names []string, limit int64) map[string][]byte {
	var files map[string][]byte
	for _, name := range names {
		data, err := readBoxFile(box, name, limit)
		if err != nil {
			continue // the program did not make it: the caller decides what that means
		}
		if files == nil {
			files = map[string][]byte{}
		}
		files[name] = data
	}
	return files
}

// cgroupName is the name of box's cgroup.
func cgroupName(box Box) string { return fmt.Sprintf("bulb-box-%d", box.ID) }

// Clean implements Sandbox: it kills whatever still runs as the box's uid, removes the
// box's cgroup and empties its directory.
func (b *Bwrap) Clean(_ context.Context, box Box) error {
	if box.UID < BaseUID || box.Dir == "" || !filepath.IsAbs(box.Dir) {
		return fmt.Errorf("%w: box %+v", ErrBadSpec, box)
	}
	if err := emptyUID(box.ID, box.UID); err != nil {
		return err
	}
	var errs []error
	if b.cg.version != 0 {
		errs = append(errs, b.cg.box(cgroupName(box)).remove())
	}
	if err := wipe(box.Dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("judge: empty box %d: %w", box.ID, err))
	}
	return errors.Join(errs...)
}

// args builds the prlimit and bwrap command line that runs command in box.
func (b *Bwrap) args(box Box, lim Limits, command []string) []string {
	cpu := int64((lim.CPU + time.Second - 1) / time.Second) // RLIMIT_CPU has whole seconds
	a := []string{b.prlimit,
		fmt.Sprintf("--cpu=%d:%d", cpu, cpu+1),
		fmt.Sprintf("--nproc=%d", lim.Processes+overheadProcs),
		fmt.Sprintf("--fsize=%d", lim.FileSize),
		"--core=0",
	}
	if b.cg.version == 0 {
		a = append(a, fmt.Sprintf("--as=%d", lim.Memory))
	}
	uid := strconv.Itoa(box.UID)
	a = append(a, "--", b.bwrap,
		"--unshare-all", "--unshare-user", "--disable-userns",
		"--die-with-parent", "--new-session",
		"--ro-bind", "/usr", "/usr")
	// /bin, /lib... are symlinks into /usr on merged-/usr systems, directories elsewhere.
	for _, d := range []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"} {
		if target, err := os.Readlink(d); err == nil {
			a = append(a, "--symlink", target, d)
		} else if _, err := os.Stat(d); err == nil {
			a = append(a, "--ro-bind", d, d)
		}
	}
	a = append(a,
		"--ro-bind-try", "/etc/alternatives", "/etc/alternatives",
		"--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
		"--proc", "/proc",
		"--dev", "/dev",
		"--size", strconv.FormatInt(lim.FileSize, 10), "--tmpfs", "/tmp",
		"--bind", box.Dir, "/box",
		"--chdir", "/box",
		"--uid", uid, "--gid", uid,
		"--hostname", "box",
		"--clearenv",
		"--setenv", "PATH", "/usr/bin:/bin",
		"--setenv", "HOME", "/box",
		"--setenv", "TMPDIR", "/tmp",
		"--setenv", "LANG", "C.UTF-8",
		"--")
	return append(a, command...)
}

// outputs collects stdout and stderr up to a shared byte limit; past it, it closes over
// once and discards the rest.
type outputs struct {
	mu             sync.Mutex
	limit, n       int64
	stdout, stderr bytes.Buffer
	over           chan struct{}
	closed         bool
}

func (o *outputs) writer(buf *bytes.Buffer) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		room := o.limit - o.n
		if int64(len(p)) > room {
			buf.Write(p[:max(room, 0)])
			o.n = o.limit
			if !o.closed {
				o.closed = true
				close(o.over)
			}
			return len(p), nil
		}
		buf.Write(p)
		o.n += int64(len(p))
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// killUID sends SIGKILL to every process whose real uid is uid, except pid except.
func killUID(uid, except int) {
	for _, p := range proc.OfUID(uid) {
		if p.PID != except {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
}

// held reports whether p still holds anything of its box: it runs, or it is a zombie
// this process must reap. A zombie of another parent (the orphan of a judge process that
// died, under a parent that does not reap) holds nothing but its pid.
func held(p proc.Process, self int) bool { return !p.Zombie || p.PPID == self }

// emptyUID kills every process of a box's uid and reaps those of this process; an error
// says some would not go.
func emptyUID(boxID, uid int) error {
	reapUID(uid)
	self, left := os.Getpid(), 0
	for _, p := range proc.OfUID(uid) {
		if held(p, self) {
			left++
		}
	}
	if left > 0 {
		return fmt.Errorf("judge: box %d: %d processes of uid %d would not die", boxID, left, uid)
	}
	return nil
}

// reapUID kills every process of uid and reaps those that were reparented to this
// process (the child subreaper): bwrap exits without waiting for its init, which would
// otherwise linger as a zombie of the host's init, counting against the box uid's
// RLIMIT_NPROC. It returns the CPU time of what it reaped (bwrap's init has reaped the
// program, so that is the program's CPU time), waiting at most two seconds for the uid
// to have no process left that it holds (see proc.held).
func reapUID(uid int) time.Duration {
	var cpu time.Duration
	self := os.Getpid()
	deadline := time.Now().Add(2 * time.Second)
	for {
		procs := proc.OfUID(uid)
		if !slices.ContainsFunc(procs, func(p proc.Process) bool { return held(p, self) }) || time.Now().After(deadline) {
			return cpu
		}
		for _, p := range procs {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
		for _, p := range procs {
			if p.PPID != self {
				continue
			}
			var ws syscall.WaitStatus
			var ru syscall.Rusage
			if n, err := syscall.Wait4(p.PID, &ws, 0, &ru); err == nil && n == p.PID {
				cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// wipe removes everything inside dir, keeping dir.
func wipe(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// validName reports whether name is a plain file name (no path).
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsRune(name, '/')
}

// writeBoxFile creates file name in the (empty) box, owned by the box uid.
func writeBoxFile(box Box, name string, data []byte) error {
	if !validName(name) {
		return fmt.Errorf("%w: file name %q", ErrBadSpec, name)
	}
	f, err := os.OpenFile(filepath.Join(box.Dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o755)
	if err != nil {
		return fmt.Errorf("judge: write box file: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chown(box.UID, box.UID)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("judge: write box file: %w", err)
	}
	return nil
}

// readBoxFile reads regular file name from the box, refusing symlinks (the program could
// point one at a host file) and files over limit bytes.
func readBoxFile(box Box, name string, limit int64) ([]byte, error) {
	if !validName(name) {
		return nil, fmt.Errorf("%w: file name %q", ErrBadSpec, name)
	}
	f, err := os.OpenFile(filepath.Join(box.Dir, name), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	return data, nil
}

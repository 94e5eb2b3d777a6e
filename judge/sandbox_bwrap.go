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
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/bulbquiz/bulb/internal/fds"
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
	// Descriptors this process inherited must never reach a box; start marks them again
	// before every run.
	if err := fds.CloseOnExec(); err != nil {
		return nil, fmt.Errorf("judge: mark descriptors close-on-exec: %w", err)
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

// Run runs spec in box. See Sandbox.
//
// The run's phases: a fresh tmpfs on the box (boxFS) with spec's files, a cgroup, the
// command started behind a gate (start), watched until it ends or a limit ends it
// (watch), and its result read from its wait status, rusage and cgroup (account).
func (b *Bwrap) Run(ctx context.Context, box Box, spec RunSpec) (RunResult, error) {
	lim := spec.Limits.withDefaults()
	res := RunResult{Killed: KilledNone, Message: b.cg.message()}
	if len(spec.Args) == 0 {
		return res, fmt.Errorf("%w: no command", ErrBadSpec)
	}
	if box.UID < BaseUID || box.Dir == "" || !filepath.IsAbs(box.Dir) {
		return res, fmt.Errorf("%w: box %+v", ErrBadSpec, box)
	}
	fs, err := mountBox(box, lim)
	if err != nil {
		return res, fmt.Errorf("judge: box %d: %w", box.ID, err)
	}
	defer func() {
		if err := fs.detach(); err != nil {
			b.log.Error("detach the box's file system after a run", "box", box.ID, "err", err)
		}
	}()
	for name, data := range spec.Files {
		if err := writeBoxFile(box, name, data); err != nil {
			return res, err
		}
	}

	var cg *boxCgroup
	if b.cg.version != 0 {
		if cg, err = b.cg.create(cgroupName(box), lim.Memory, lim.Processes+overheadProcs); err != nil {
			return res, fmt.Errorf("judge: box %d: %w", box.ID, err)
		}
		defer func() {
			if err := cg.remove(); err != nil {
				b.log.Error("remove cgroup", "box", box.ID, "err", err)
			}
		}()
	}

	r, err := b.start(box, lim, spec, cg)
	if err != nil {
		return res, err
	}
	canceled := r.watch(ctx, cg, fs, lim, &res)
	res.WallTime = time.Since(r.started)
	// bwrap's init and whatever else is left of the box uid go now.
	orphanCPU := reapUID(box.UID)
	if canceled {
		return res, fmt.Errorf("judge: run canceled: %w", ctx.Err())
	}
	if err := r.account(&res, cg, fs, lim, orphanCPU); err != nil {
		return res, err
	}
	res.Files = collectFiles(box, spec.Collect, lim.FileSize)
	return res, nil
}

// cgroupName is the name of box's cgroup.
func cgroupName(box Box) string { return fmt.Sprintf("bulb-box-%d", box.ID) }

// Clean implements Sandbox: it kills whatever still runs as the box's uid, removes the
// box's cgroup, detaches a file system a crashed run left on the box and makes sure the
// directory under it is empty.
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
	errs = append(errs, (&boxFS{dir: box.Dir}).detach())
	if err := emptyDir(box); errors.Is(err, errMovedAside) {
		b.log.Warn("a box held old files: moved aside, delete them at leisure", "box", box.ID, "err", err)
	} else {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// args builds the prlimit and bwrap command line that runs command in box.
func (b *Bwrap) args(box Box, lim Limits, command []string) []string {
	cpu := int64((lim.CPU + time.Second - 1) / time.Second) // RLIMIT_CPU has whole seconds
	if b.cg.countsCPU() {
		// The cgroup's CPU time, exact and of every process, ends the run (watch); the
		// per-process RLIMIT_CPU, counted in scheduler ticks that a busy machine smears,
		// is only a backstop a second later.
		cpu++
	}
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
		// /dev read-only: bwrap's /dev is a tmpfs of its own that no limit of the box
		// bounds; /tmp is the box itself, within its disk and file limits.
		"--dev", "/dev", "--remount-ro", "/dev",
		"--bind", box.Dir, "/box",
		"--bind", box.Dir, "/tmp",
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

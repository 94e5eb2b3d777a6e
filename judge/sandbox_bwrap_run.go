package judge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/bulbquiz/bulb/internal/fds"
)

// bwrapRun is one started run of Bwrap.Run.
type bwrapRun struct {
	box     Box
	cmd     *exec.Cmd
	out     *outputs
	done    chan error // the command's Wait
	waitErr error
	started time.Time
}

// gateScript waits for the parent's go-ahead on fd 3, then runs the rest of its arguments.
const gateScript = `read -r go <&3 || exit 125; exec 3<&-; exec "$@"`

// start starts the run's command as the box's uid, puts it in the cgroup, and only then
// lets it go (through the gate), so that nothing escapes the cgroup by forking first.
func (b *Bwrap) start(box Box, lim Limits, spec RunSpec, cg *boxCgroup) (*bwrapRun, error) {
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
		return nil, fmt.Errorf("judge: pipe: %w", err)
	}
	defer gateW.Close()
	cmd.ExtraFiles = []*os.File{gateR}

	// Only 0, 1, 2 and the gate may reach the box: every other descriptor of this process
	// is marked close-on-exec now, also one it inherited or a library opened without it.
	if err := fds.CloseOnExec(); err != nil {
		gateR.Close()
		return nil, fmt.Errorf("judge: mark descriptors close-on-exec: %w", err)
	}
	started := time.Now()
	err = cmd.Start()
	gateR.Close()
	if err != nil {
		return nil, fmt.Errorf("judge: start sandbox: %w", err)
	}
	pid := cmd.Process.Pid
	abort := func(err error) (*bwrapRun, error) {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Wait()
		reapUID(box.UID)
		return nil, fmt.Errorf("judge: box %d: %w", box.ID, err)
	}
	if cg != nil {
		if err := cg.join(pid); err != nil {
			return abort(err)
		}
	}
	if _, err := gateW.Write([]byte("go\n")); err != nil {
		return abort(fmt.Errorf("start sandbox: %w", err))
	}
	r := &bwrapRun{box: box, cmd: cmd, out: out, done: make(chan error, 1), started: started}
	go func() { r.done <- cmd.Wait() }()
	return r, nil
}

// watchEvery is how often watch reads the cgroup's CPU time and the box's free space: a
// twentieth of the CPU limit, between 5 and 25 ms, so that a run is ended within 5 % of
// its limit.
func watchEvery(lim Limits) time.Duration {
	return min(max(lim.CPU/20, 5*time.Millisecond), 25*time.Millisecond)
}

// watch waits for the run to end, or ends it at the first limit it reaches: the wall
// clock, its output, the box's disk, or the CPU time of every process of its cgroup
// together (RLIMIT_CPU counts per process: a fork bomb of busy children would multiply
// it); or when ctx is done, which it reports.
func (r *bwrapRun) watch(ctx context.Context, cg *boxCgroup, fs *boxFS, lim Limits, res *RunResult) (canceled bool) {
	wall := time.NewTimer(lim.Wall)
	defer wall.Stop()
	tick := time.NewTicker(watchEvery(lim))
	defer tick.Stop()
	for res.Killed == KilledNone {
		select {
		case r.waitErr = <-r.done:
			return false
		case <-wall.C:
			res.Killed = KilledWall
		case <-r.out.over:
			res.Killed = KilledOutput
		case <-ctx.Done():
			res.Killed, canceled = KilledWall, true
		case <-tick.C:
			if cpu, ok := cg.cpuTime(); ok && cpu >= lim.CPU {
				res.Killed = KilledCPU
			} else if fs.full() {
				res.Killed = KilledDisk
			}
		}
	}
	// Kill the box's processes but not the outer bwrap, so that it reaps its init and
	// the run's CPU time is accounted; kill bwrap too if it does not end soon.
	pid := r.cmd.Process.Pid
	if cg != nil {
		cg.kill(pid)
	}
	killUID(r.box.UID, pid)
	select {
	case r.waitErr = <-r.done:
	case <-time.After(500 * time.Millisecond):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		r.waitErr = <-r.done
	}
	return canceled
}

// account fills in res from the run's wait status, its rusage and the CPU time of what
// reapUID reaped (orphanCPU), and its cgroup's accounting, which counts every process of
// the run: bwrap does not wait for its init, so rusage misses the program.
func (r *bwrapRun) account(res *RunResult, cg *boxCgroup, fs *boxFS, lim Limits, orphanCPU time.Duration) error {
	var exitErr *exec.ExitError
	if r.waitErr != nil && !errors.As(r.waitErr, &exitErr) {
		return fmt.Errorf("judge: wait for sandbox: %w", r.waitErr)
	}
	st := r.cmd.ProcessState
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
	if res.Killed == KilledNone && fs.full() { // it filled the box, then ended
		res.Killed = KilledDisk
	}
	r.out.mu.Lock()
	res.Stdout, res.Stderr = r.out.stdout.Bytes(), r.out.stderr.Bytes()
	r.out.mu.Unlock()
	if res.ExitCode == 125 && res.Signal == 0 && res.Killed == KilledNone && bytes.HasPrefix(res.Stderr, []byte("bwrap:")) {
		// Its stderr may be the program's own (the program can exit 125 and write "bwrap:"):
		// the error, for the log only, keeps its first line, bounded.
		line, _, _ := bytes.Cut(res.Stderr, []byte("\n"))
		return fmt.Errorf("judge: bwrap failed: %q", line[:min(len(line), 200)])
	}
	return nil
}

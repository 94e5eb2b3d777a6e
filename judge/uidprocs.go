package judge

import (
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/bulbquiz/bulb/internal/proc"
)

// The processes of a box's uid: what the sandboxes kill and reap when a run ends and when
// a box is cleaned.

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

package proc

import (
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestOfUID: this process is among its uid's, with its parent; a child that has exited
// and is not yet reaped is a zombie.
func TestOfUID(t *testing.T) {
	find := func(pid int) (Process, bool) {
		procs := OfUID(os.Getuid())
		i := slices.IndexFunc(procs, func(p Process) bool { return p.PID == pid })
		if i < 0 {
			return Process{}, false
		}
		return procs[i], true
	}
	self, ok := find(os.Getpid())
	if !ok || self.PPID != os.Getppid() || self.Zombie {
		t.Fatalf("this process: got %+v, %v; want pid %d, parent %d, not a zombie", self, ok, os.Getpid(), os.Getppid())
	}
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Skip("no true command:", err)
	}
	defer cmd.Wait()
	for {
		child, ok := find(cmd.Process.Pid)
		if !ok {
			t.Fatal("the child is gone before it was reaped")
		}
		if child.Zombie {
			break // exited, not reaped: a zombie
		}
	}
	if _, ok := find(os.Getpid() + 1_000_000_000); ok {
		t.Fatal("found a process that cannot exist")
	}
}

// TestCPUTime: this process's CPU time grows as it works, as getrusage(2) says.
func TestCPUTime(t *testing.T) {
	rusage := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	before, err := CPUTime(os.Getpid())
	if err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	// Work until getrusage counts 200 ms more (on a loaded machine that takes longer).
	for start, deadline := rusage(), time.Now().Add(30*time.Second); rusage()-start < 200*time.Millisecond && time.Now().Before(deadline); {
	}
	self := rusage()
	after, err := CPUTime(os.Getpid())
	if err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	if after-before < 150*time.Millisecond || after > self+20*time.Millisecond || after < self-50*time.Millisecond {
		t.Errorf("got %v before and %v after 200 ms of work; getrusage says %v: want about 200 ms more, and about getrusage's", before, after, self)
	}
	if _, err := CPUTime(-1); err == nil {
		t.Error("no such process: got nil, want an error")
	}
}

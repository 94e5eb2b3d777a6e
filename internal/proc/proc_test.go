package proc

import (
	"os"
	"os/exec"
	"slices"
	"testing"
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

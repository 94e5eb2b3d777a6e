package fds

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestCloseOnExec: a descriptor opened without close-on-exec reaches a child until
// CloseOnExec, and no longer after it.
func TestCloseOnExec(t *testing.T) {
	fd, err := syscall.Open(os.DevNull, syscall.O_RDONLY, 0) // no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	seen := func() bool {
		out, err := exec.Command("/bin/sh", "-c", "ls /proc/self/fd").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range strings.Fields(string(out)) {
			if f == strconv.Itoa(fd) {
				return true
			}
		}
		return false
	}
	if !seen() {
		t.Fatalf("descriptor %d did not reach the child before CloseOnExec: the test proves nothing", fd)
	}
	if err := CloseOnExec(); err != nil {
		t.Fatal(err)
	}
	if seen() {
		t.Errorf("descriptor %d reached the child after CloseOnExec", fd)
	}
}

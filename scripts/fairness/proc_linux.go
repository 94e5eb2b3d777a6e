package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes cmd's process receive SIGTERM if the lab dies first, so that a
// killed lab leaves no server behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

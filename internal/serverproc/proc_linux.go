package serverproc

import (
	"os/exec"
	"syscall"
)

// DieWithParent makes cmd's process receive SIGTERM if the process that starts it dies
// first, so that a killed measurement leaves no server or client process behind.
func DieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

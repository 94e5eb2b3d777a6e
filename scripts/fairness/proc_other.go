//go:build !linux

package main

import "os/exec"

// dieWithParent does nothing here: only Linux has a parent-death signal.
func dieWithParent(cmd *exec.Cmd) {}

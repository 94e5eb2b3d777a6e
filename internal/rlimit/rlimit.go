//go:build unix

// Package rlimit raises the open-file limit for the programs and benchmarks that hold
// thousands of sockets (the load generator, the fan-out comparison, the hub benchmark).
package rlimit

import (
	"fmt"
	"syscall"
)

// NoFile returns the soft and hard open-file limits.
func NoFile() (cur, max uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, err
	}
	return uint64(lim.Cur), uint64(lim.Max), nil
}

// RaiseNoFile raises the soft open-file limit to at least need, and the hard one too when
// allowed (as root). It says what the limits are when it cannot.
func RaiseNoFile(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("reading RLIMIT_NOFILE: %w", err)
	}
	if uint64(lim.Cur) >= need {
		return nil
	}
	was := lim
	lim.Cur, lim.Max = need, max(lim.Max, need)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("needs %d open files; RLIMIT_NOFILE is %d (hard %d) and raising it failed: %w", need, was.Cur, was.Max, err)
	}
	return nil
}

//go:build unix

package main

import "syscall"

// raiseNoFile raises the soft open-file limit to the hard limit and returns both.
func raiseNoFile() (cur, max uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, err
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return uint64(lim.Cur), uint64(lim.Max), err
		}
		lim = raised
	}
	return uint64(lim.Cur), uint64(lim.Max), nil
}

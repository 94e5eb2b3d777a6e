//go:build unix

package main

import "github.com/bulbquiz/bulb/internal/rlimit"

// raiseNoFile raises the soft open-file limit to the hard limit and returns both.
func raiseNoFile() (cur, max uint64, err error) {
	if _, max, err = rlimit.NoFile(); err != nil {
		return 0, 0, err
	}
	if err := rlimit.RaiseNoFile(max); err != nil {
		return 0, 0, err
	}
	return rlimit.NoFile()
}

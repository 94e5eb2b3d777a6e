// Package cpuprofile writes a process's CPU profile to a file, for the measurement
// programs that say from a profile where their time went (scripts/fanout, scripts/reveal).
//
// A process has one CPU profile at a time: Start fails while another is running.
package cpuprofile

import (
	"os"
	"runtime/pprof"
)

// Start starts the process's CPU profile into a new file at path; stop ends it and closes
// the file.
func Start(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

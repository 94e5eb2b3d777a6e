// Package proc lists the processes of a uid from /proc: what the judge's sandbox kills and
// waits for when it empties a box, and what tests check is gone afterwards.
package proc

import (
	"os"
	"strconv"
	"strings"
)

// Process is a process seen in /proc.
type Process struct {
	PID, PPID int
	Zombie    bool // it has exited and waits for its parent to reap it
}

// OfUID lists the processes, zombies included, whose real uid is uid.
func OfUID(uid int) []Process {
	want := strconv.Itoa(uid)
	var procs []Process
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue // it ended meanwhile
		}
		p, mine := Process{PID: pid}, false
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 2 && f[0] == "PPid:":
				p.PPID, _ = strconv.Atoi(f[1])
			case len(f) >= 2 && f[0] == "State:":
				p.Zombie = f[1] == "Z"
			case len(f) >= 2 && f[0] == "Uid:":
				mine = f[1] == want
			}
		}
		if mine {
			procs = append(procs, p)
		}
	}
	return procs
}

// Package proc lists the processes of a uid from /proc: what the judge's sandbox kills and
// waits for when it empties a box, and what tests check is gone afterwards; and reads a
// process's CPU time, for the measurements that compare their processes' shares.
package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
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

// userHz is the unit of /proc's CPU times (USER_HZ, the clock ticks of times(2)): 100 on
// every Linux architecture Go runs on.
const userHz = 100

// CPUTime is the CPU time, user and system, that process pid has used so far, in ticks of
// 10 ms (the kernel counts no finer for another process).
func CPUTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in brackets and may hold spaces: count from after it.
	i := strings.LastIndexByte(string(data), ')')
	f := strings.Fields(string(data)[i+1:])
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, data)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, data)
	}
	return time.Duration(utime+stime) * time.Second / userHz, nil
}

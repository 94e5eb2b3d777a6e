package judge

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupRoot is where the cgroup filesystems are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// cgroups is the detected cgroup setup of the host: which version, and the parent
// directories under which box cgroups are made. The zero value means "no memory cgroup".
type cgroups struct {
	version int    // 1 or 2; 0 when no usable memory cgroup
	memory  string // v1: parent dir in the memory hierarchy; v2: parent dir
	pids    string // v1: parent dir in the pids hierarchy, "" if none; v2: unused
	cpuacct string // v1: parent dir in the cpuacct hierarchy, "" if none; v2: unused
}

// detectCgroups finds a place where this process may create memory (and pids) cgroups.
// parent, when set, is the directory to use (v2: a delegated cgroup with no processes of
// its own; v1: a path relative to each controller's mount). Without it the box cgroups go
// under this process's own cgroup, as read from /proc/self/cgroup. Each candidate is
// probed by creating and removing a child; if none works, memory falls back to RLIMIT_AS.
func detectCgroups(parent string) (cgroups, error) {
	own, err := ownCgroups()
	if err != nil {
		return cgroups{}, err
	}
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		// Pure v2 (unified) hierarchy.
		dir := filepath.Join(cgroupRoot, own[""])
		if parent != "" {
			dir = parent
		}
		// Box cgroups need the memory and pids controllers enabled for their parent's
		// children; this fails with EBUSY when the parent itself holds processes.
		if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory +pids"), 0); err != nil {
			return cgroups{}, fmt.Errorf("enable memory and pids controllers in %s: %w", dir, err)
		}
		if err := probe(dir); err != nil {
			return cgroups{}, err
		}
		return cgroups{version: 2, memory: dir}, nil
	}
	memRel, pidsRel := own["memory"], own["pids"]
	if parent != "" {
		memRel, pidsRel = parent, parent
	}
	mem := filepath.Join(cgroupRoot, "memory", memRel)
	if _, err := os.Stat(filepath.Join(mem, "memory.limit_in_bytes")); err != nil {
		return cgroups{}, fmt.Errorf("no v1 memory cgroup: %w", err)
	}
	if err := probe(mem); err != nil {
		return cgroups{}, err
	}
	cg := cgroups{version: 1, memory: mem}
	pids := filepath.Join(cgroupRoot, "pids", pidsRel)
	if _, err := os.Stat(filepath.Join(pids, "cgroup.procs")); err == nil && probe(pids) == nil {
		cg.pids = pids
	}
	cpuRel := own["cpuacct"]
	if parent != "" {
		cpuRel = parent
	}
	cpu := filepath.Join(cgroupRoot, "cpuacct", cpuRel)
	if _, err := os.Stat(filepath.Join(cpu, "cpuacct.usage")); err == nil && probe(cpu) == nil {
		cg.cpuacct = cpu
	}
	return cg, nil
}

// ownCgroups reads /proc/self/cgroup: controller name ("" for v2) to path.
func ownCgroups() (map[string]string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	own := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			own[c] = parts[2]
		}
	}
	return own, nil
}

// probe checks that a child cgroup can be created under dir. Its name is random: two
// sandboxes set up at once in one process must not take each other's probe for a failure.
func probe(dir string) error {
	p, err := os.MkdirTemp(dir, "bulb-probe-")
	if err != nil {
		return fmt.Errorf("create cgroup under %s: %w", dir, err)
	}
	return os.Remove(p)
}

// countsCPU reports whether box cgroups account CPU time (cgroup v2, or v1 with cpuacct).
func (c cgroups) countsCPU() bool { return c.version == 2 || c.cpuacct != "" }

// message names the memory limiter, for RunResult.Message.
func (c cgroups) message() string {
	switch c.version {
	case 1:
		return "cgroup v1"
	case 2:
		return "cgroup v2"
	}
	return "RLIMIT_AS"
}

// boxCgroup is the cgroup (v1: one per controller) of one run.
type boxCgroup struct {
	version int
	dirs    []string // v1: memory dir, then the pids and cpuacct dirs if any; v2: the one dir
	cpu     string   // the dir to read CPU time from, "" if none
}

// box returns the cgroup named name, which may or may not exist.
func (c cgroups) box(name string) *boxCgroup {
	b := &boxCgroup{version: c.version}
	b.dirs = append(b.dirs, filepath.Join(c.memory, name))
	if c.version == 1 && c.pids != "" {
		b.dirs = append(b.dirs, filepath.Join(c.pids, name))
	}
	switch {
	case c.version == 2:
		b.cpu = b.dirs[0]
	case c.cpuacct != "":
		b.cpu = filepath.Join(c.cpuacct, name)
		b.dirs = append(b.dirs, b.cpu)
	}
	return b
}

// create makes the cgroup named name with the memory and process limits, first removing
// a leftover of the same name (from a crashed run).
func (c cgroups) create(name string, memory int64, procs int) (*boxCgroup, error) {
	b := c.box(name)
	b.remove() // a leftover of a crashed run
	for _, d := range b.dirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			b.remove()
			return nil, fmt.Errorf("create cgroup: %w", err)
		}
	}
	mem := strconv.FormatInt(memory, 10)
	var settings [][2]string
	switch c.version {
	case 1:
		settings = [][2]string{
			{b.dirs[0] + "/memory.limit_in_bytes", mem},
			{b.dirs[0] + "/memory.memsw.limit_in_bytes", mem}, // no swap; absent without swap accounting
			{b.dirs[0] + "/memory.swappiness", "0"},
		}
		if c.pids != "" {
			settings = append(settings, [2]string{b.dirs[1] + "/pids.max", strconv.Itoa(procs)})
		}
	case 2:
		settings = [][2]string{
			{b.dirs[0] + "/memory.max", mem},
			{b.dirs[0] + "/memory.swap.max", "0"},
			{b.dirs[0] + "/pids.max", strconv.Itoa(procs)},
		}
	}
	for i, s := range settings {
		if err := os.WriteFile(s[0], []byte(s[1]), 0); err != nil {
			optional := c.version == 1 && i > 0 && !strings.HasSuffix(s[0], "pids.max")
			optional = optional || strings.HasSuffix(s[0], "memory.swap.max")
			if !optional {
				b.remove()
				return nil, fmt.Errorf("set %s: %w", s[0], err)
			}
		}
	}
	return b, nil
}

// join moves process pid into the cgroup.
func (b *boxCgroup) join(pid int) error {
	for _, d := range b.dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("join cgroup %s: %w", d, err)
		}
	}
	return nil
}

// peakKB is the cgroup's peak memory in KB, 0 if unknown.
func (b *boxCgroup) peakKB() int64 {
	name := "memory.max_usage_in_bytes"
	if b.version == 2 {
		name = "memory.peak" // Linux 5.19 and later
	}
	data, err := os.ReadFile(filepath.Join(b.dirs[0], name))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	return n / 1024
}

// cpuTime is the CPU time used by every process that was in the cgroup, and whether it
// is known (not without a cgroup, b nil, or without CPU accounting).
func (b *boxCgroup) cpuTime() (time.Duration, bool) {
	switch {
	case b == nil || b.cpu == "":
		return 0, false
	case b.version == 2:
		usec := keyedValue(filepath.Join(b.cpu, "cpu.stat"), "usage_usec")
		return time.Duration(usec) * time.Microsecond, true
	}
	data, err := os.ReadFile(filepath.Join(b.cpu, "cpuacct.usage"))
	if err != nil {
		return 0, false
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	return time.Duration(ns), err == nil
}

// oomKilled reports whether the kernel killed a process of the cgroup for memory.
func (b *boxCgroup) oomKilled() bool {
	name := "memory.oom_control"
	if b.version == 2 {
		name = "memory.events"
	}
	return keyedValue(filepath.Join(b.dirs[0], name), "oom_kill") > 0
}

// keyedValue reads "key value" lines and returns key's value, 0 if absent.
func keyedValue(path, key string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == key {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// kill sends SIGKILL to every process in the cgroup except the one with pid except.
func (b *boxCgroup) kill(except int) {
	for _, d := range b.dirs {
		data, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil && pid != except {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// remove kills what is left in the cgroup and removes it; it waits up to a second for
// the killed processes to go.
func (b *boxCgroup) remove() error {
	var errs []error
	for _, d := range b.dirs {
		if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
			continue
		}
		deadline := time.Now().Add(time.Second)
		for {
			b.kill(-1)
			err := syscall.Rmdir(d)
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

package judge

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"testing"
	"time"
)

// The runs and hostile programs every sandbox backend must handle in the same way.

// runCase is one run of a backend's table: what it runs, what it must give, and which
// limit, if any, must end it.
type runCase struct {
	name   string
	spec   RunSpec
	check  func(t *testing.T, res RunResult)
	killed KillReason
}

// cpuBound gives a run that the CPU limit must end time enough on the wall clock: on a
// busy two-core machine (the whole suite at once) a busy loop may get a tenth of a core,
// and testLimits' 4 s of wall clock would end it first. On an idle one it changes nothing.
func cpuBound(spec RunSpec) RunSpec {
	spec.Limits = withLimits(spec.Limits, Limits{Wall: 30 * time.Second})
	return spec
}

// limitCases are the runs that testLimits must end, whatever the backend.
func limitCases() []runCase {
	return []runCase{
		{"infinite loop", cpuBound(sh("while :; do :; done")), func(t *testing.T, res RunResult) {
			// RLIMIT_CPU's accounting and the cgroup's may differ by a few ticks on a busy
			// machine.
			if res.CPUTime < 800*time.Millisecond {
				t.Errorf("got CPU time %v, want about 1s", res.CPUTime)
			}
		}, KilledCPU},
		{"sleep forever", sh("sleep 1000"), func(t *testing.T, res RunResult) {
			if res.WallTime > testLimits.Wall+time.Second {
				t.Errorf("got wall time %v, want about %v", res.WallTime, testLimits.Wall)
			}
		}, KilledWall},
		{"prints gigabytes", sh("yes"), func(t *testing.T, res RunResult) {
			if int64(len(res.Stdout)+len(res.Stderr)) > testLimits.Output {
				t.Errorf("got %d bytes of output, want at most %d", len(res.Stdout)+len(res.Stderr), testLimits.Output)
			}
		}, KilledOutput},
		{"file size limit", sh("head -c 5000000 /dev/zero > big; echo $?; ls -l big"), func(t *testing.T, res RunResult) {
			if !bytes.Contains(res.Stdout, []byte(" 1048576 ")) {
				t.Errorf("got %q, want the file cut at 1 MiB", res.Stdout)
			}
		}, KilledNone},
	}
}

// mustRunCases runs each case in box, whose programs run as uid, and checks its result,
// that memory was limited by limiter, and that nothing of uid is left.
func mustRunCases(t *testing.T, sb Sandbox, box Box, uid int, limiter string, cases []runCase) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			res, err := sb.Run(context.Background(), box, tt.spec)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.Killed != tt.killed {
				t.Errorf("got killed %q, want %q (exit %d, signal %d, cpu %v, wall %v, stderr %q)", res.Killed, tt.killed, res.ExitCode, res.Signal, res.CPUTime, res.WallTime, res.Stderr)
			}
			if res.Message != limiter || res.Message == "" {
				t.Errorf("got message %q, want %q", res.Message, limiter)
			}
			tt.check(t, res)
			if pids := uidProcesses(uid); len(pids) != 0 {
				t.Errorf("processes of uid %d left: %v", uid, pids)
			}
		})
	}
}

// mustNotConnect runs a program in box that connects to a listener on the host's
// loopback: the connection must fail, and the listener accept nothing.
func mustNotConnect(t *testing.T, sb Sandbox, box Box) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	res, err := sb.Run(context.Background(), box, python(fmt.Sprintf("import socket\ntry:\n    socket.create_connection(('127.0.0.1', %d), timeout=1)\n    print('connected')\nexcept OSError as e:\n    print('blocked', e)\n", port)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(res.Stdout, []byte("blocked")) {
		t.Errorf("got %q, want the connection blocked", res.Stdout)
	}
	select {
	case <-accepted:
		t.Error("the listener on the host accepted a connection from the box")
	case <-time.After(100 * time.Millisecond):
	}
}

// mustStopForkBomb runs a fork bomb in box, whose programs run as uid: a limit must end
// it, and nothing of uid may be left.
func mustStopForkBomb(t *testing.T, sb Sandbox, box Box, uid int) {
	res, err := sb.Run(context.Background(), box, python("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"))
	if err != nil {
		t.Fatal(err)
	}
	// it ends by whichever limit it meets first: CPU, the wall clock, or the memory of
	// the processes it may have (python ones are large)
	if res.Killed != KilledCPU && res.Killed != KilledWall && res.Killed != KilledMemory {
		t.Errorf("got killed %q, want a limit: cpu, wall or memory", res.Killed)
	}
	if pids := uidProcesses(uid); len(pids) != 0 {
		t.Errorf("processes of uid %d left: %v", uid, pids)
	}
}

package judge

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"testing"
	"time"
)

// The hostile programs every sandbox backend must stop in the same way.

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

// Package redistest starts a real, throwaway redis-server for a test: one process per
// [Start], listening only on a unix socket in a temporary directory, stopped when the test
// ends. Without redis-server on PATH the test is skipped (or fails under
// BULB_REQUIRE_DEPS=1, see [testenv.Program]).
//
// A [Server]'s methods are safe to call concurrently.
package redistest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulbquiz/bulb/internal/testenv"
)

const (
	startTimeout = 5 * time.Second  // for the server to answer PING
	stopTimeout  = 10 * time.Second // for it to exit on SIGTERM before it is killed
	maxSocketLen = 100              // sun_path holds 108 bytes on Linux, 104 on BSDs
)

// Option changes how Start runs the server.
type Option func(*config)

type config struct {
	aof bool
}

// WithAOF turns on the append-only file, fsynced on every write, so that a Restart keeps
// every acknowledged write. Without it nothing is persisted.
func WithAOF() Option { return func(c *config) { c.aof = true } }

// Server is a running redis-server owned by one test.
type Server struct {
	bin    string
	dir    string
	socket string
	args   []string

	mu   sync.Mutex
	cmd  *exec.Cmd     // nil while stopped
	done chan struct{} // closed when cmd has exited
}

// Start starts a redis-server for tb and waits until it answers PING. It is stopped in
// tb.Cleanup.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	var c config
	for _, o := range opts {
		o(&c)
	}
	s := &Server{bin: testenv.Program(tb, "redis-server"), dir: tb.TempDir()}
	s.socket = filepath.Join(s.dir, "redis.sock")
	if len(s.socket) > maxSocketLen {
		// a long TMPDIR or test name: unix socket paths are short
		dir, err := os.MkdirTemp("", "redis")
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { os.RemoveAll(dir) })
		s.dir, s.socket = dir, filepath.Join(dir, "redis.sock")
	}
	s.args = []string{
		"--port", "0",
		"--unixsocket", s.socket,
		"--unixsocketperm", "700",
		"--dir", s.dir,
		"--save", "",
	}
	if c.aof {
		s.args = append(s.args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		s.args = append(s.args, "--appendonly", "no")
	}
	tb.Cleanup(s.Stop)
	s.start(tb)
	return s
}

// URL is the server's address for redis.ParseURL: unix:///dir/redis.sock.
func (s *Server) URL() string { return "unix://" + s.socket }

// Client returns a new client of the server, closed in tb.Cleanup.
func (s *Server) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(s.URL())
	if err != nil {
		tb.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

// Stop stops the server (SIGTERM, then SIGKILL if it has not exited within 10 s) and waits
// for it. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd, s.done = nil, nil
}

// Restart stops the server and starts it again on the same directory and socket, so a
// test can check what survives (with WithAOF, every acknowledged write). Clients of the
// old process reconnect by themselves.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop()
	s.start(tb)
}

// start runs the server and waits until it answers PING.
func (s *Server) start(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var log bytes.Buffer // read only once the process has exited
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = &log, &log // the same writer: exec serialises the writes
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // a signalled exit is what Stop asks for
		close(done)
	}()

	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: s.socket, MaxRetries: -1, DialTimeout: 100 * time.Millisecond, DialerRetries: 1})
	defer rdb.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		err := errors.New("no socket yet")
		if _, serr := os.Stat(s.socket); serr == nil { // dialing earlier only logs failures
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			err = rdb.Ping(ctx).Err()
			cancel()
		}
		if err == nil {
			s.cmd, s.done = cmd, done
			return
		}
		select {
		case <-done:
			tb.Fatalf("redis-server exited before answering PING: %v\n%s", cmd.ProcessState, log.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			tb.Fatalf("redis-server did not answer PING within %s: %v\n%s", startTimeout, err, log.String())
		}
	}
}

// Package serverproc runs the Bulb server as a child process of a measurement (the latency
// lab scripts/fairness, the reveal benchmark scripts/reveal): its binary, built from
// ./server unless one is given, on a free loopback port with the memory engine (--data "":
// nothing on disk, nothing left behind), a fresh admin token and no per-address limits
// (every simulated student comes from 127.0.0.1); stopped gracefully, its log summarized.
//
// A Server belongs to the goroutine that started it.
package serverproc

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Options says which server to start and how.
type Options struct {
	Bin          string        // the server binary; empty: go build ./server of the working directory's module
	PingInterval time.Duration // the server's --ping-interval; zero: its default
	Name         string        // the measurement's name: prefixes the lines written to Stderr
	Stderr       io.Writer     // where the build and start commands are quoted, and the build's output goes
}

// Server is a Bulb server process that Start started.
type Server struct {
	URL     string // http://127.0.0.1:PORT
	Token   string // its admin token
	cmd     *exec.Cmd
	dir     string // temporary: the binary if Start built it, and the log
	logPath string
	exited  chan struct{} // closed once cmd.Wait returned
	waitErr error
}

// Start starts the server binary (or one it builds) on a free loopback port with the
// memory engine, a fresh admin token, --conns-per-addr 0 and --join-rate 0, and waits until
// /healthz answers. The server gets SIGTERM if the calling process dies first (Linux).
func Start(ctx context.Context, o Options) (*Server, error) {
	dir, err := os.MkdirTemp("", "bulb-"+o.Name+"-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, logPath: filepath.Join(dir, "server.log"), exited: make(chan struct{})}
	bin := o.Bin
	if bin == "" {
		bin = filepath.Join(dir, "bulb")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./server")
		build.Dir, err = moduleRoot(ctx)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		build.Stdout, build.Stderr = o.Stderr, o.Stderr
		fmt.Fprintf(o.Stderr, "%s: $ go build -o %s ./server\n", o.Name, bin)
		if err := build.Run(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("building the server: %w", err)
		}
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var tok [16]byte
	rand.Read(tok[:])
	s.Token = hex.EncodeToString(tok[:])
	s.URL = "http://" + port
	logf, err := os.Create(s.logPath)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	s.cmd = exec.Command(bin, "--data", "")
	// Not the caller's context: the caller stops the server itself, gracefully, after its clients.
	env := []string{"BULB_ADDR=" + port, "BULB_LOG_LEVEL=info"}
	if o.PingInterval > 0 {
		env = append(env, "BULB_PING_INTERVAL="+o.PingInterval.String())
	}
	env = append(env, "BULB_CONNS_PER_ADDR=0", "BULB_JOIN_RATE=0") // every student comes from 127.0.0.1
	s.cmd.Env = append(append(os.Environ(), "BULB_ADMIN_TOKEN="+s.Token, "BULB_REDIS_URL="), env...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	DieWithParent(s.cmd)
	fmt.Fprintf(o.Stderr, "%s: $ BULB_ADMIN_TOKEN=… %s %s --data ''\n", o.Name, strings.Join(env, " "), bin)
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting the server: %w", err)
	}
	go func() { s.waitErr = s.cmd.Wait(); close(s.exited) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/healthz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.exited:
			tail, _ := os.ReadFile(s.logPath)
			os.RemoveAll(dir)
			return nil, fmt.Errorf("the server exited (%v): %s", s.waitErr, tail)
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, errors.New("the server did not answer /healthz within 30 s")
		}
	}
}

// PID is the server process's id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop ends the server gracefully (SIGTERM, then SIGKILL after 15 s), summarizes its log
// and removes the temporary directory.
func (s *Server) Stop() LogSummary {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	sum := summarizeLog(s.logPath)
	os.RemoveAll(s.dir)
	return sum
}

// LogSummary counts a server log's lines by level and message.
type LogSummary struct {
	Lines    int            `json:"lines"`
	Messages map[string]int `json:"messages"` // "LEVEL message" → lines, for WARN and ERROR and dropped clients
}

// WriteText writes the summary as one line, or a line and one per message, most frequent
// first.
func (sum LogSummary) WriteText(w io.Writer) {
	fmt.Fprintf(w, "server log: %d lines", sum.Lines)
	if len(sum.Messages) == 0 {
		fmt.Fprintln(w, ", no warnings, errors or dropped clients")
		return
	}
	fmt.Fprintln(w, "; warnings, errors and drops:")
	for _, k := range sortedKeys(sum.Messages) {
		fmt.Fprintf(w, "  %5d %s\n", sum.Messages[k], k)
	}
}

var logLine = regexp.MustCompile(`level=([A-Z]+) msg=("(?:[^"\\]|\\.)*"|\S+)`)

func summarizeLog(path string) LogSummary {
	sum := LogSummary{Messages: map[string]int{}}
	f, err := os.Open(path)
	if err != nil {
		return sum
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		sum.Lines++
		m := logLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		msg := strings.Trim(m[2], `"`)
		if m[1] == "WARN" || m[1] == "ERROR" || strings.HasPrefix(msg, "dropped") {
			sum.Messages[m[1]+" "+msg]++
		}
	}
	return sum
}

// moduleRoot is the directory of the go.mod of the working directory's module.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", errors.New("run from Bulb's module (or name a server binary): no go.mod here")
	}
	return filepath.Dir(gomod), nil
}

// freePort returns a loopback address whose port was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// sortedKeys returns m's keys by descending count, then name.
func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	return keys
}

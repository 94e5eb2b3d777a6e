package main

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

// bulbServer is a Bulb server process the lab started.
type bulbServer struct {
	url     string
	token   string
	cmd     *exec.Cmd
	dir     string // temporary: the binary if the lab built it, and the log
	logPath string
	exited  chan struct{} // closed once cmd.Wait returned
	waitErr error
}

// startServer starts the server binary bin (or, if bin is empty, one it builds from
// ./server of the module in the working directory) on a free loopback port with the memory
// engine, a fresh admin token and the given ping interval, and waits until /healthz
// answers.
func startServer(ctx context.Context, bin string, ping time.Duration, stderr io.Writer) (*bulbServer, error) {
	dir, err := os.MkdirTemp("", "bulb-fairness-")
	if err != nil {
		return nil, err
	}
	s := &bulbServer{dir: dir, logPath: filepath.Join(dir, "server.log"), exited: make(chan struct{})}
	if bin == "" {
		bin = filepath.Join(dir, "bulb")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./server")
		build.Dir, err = moduleRoot(ctx)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		build.Stdout, build.Stderr = stderr, stderr
		fmt.Fprintf(stderr, "fairness: $ go build -o %s ./server\n", bin)
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
	s.token = hex.EncodeToString(tok[:])
	s.url = "http://" + port
	logf, err := os.Create(s.logPath)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	s.cmd = exec.Command(bin)
	// Not the lab's context: the lab stops the server itself, gracefully, after its clients.
	s.cmd.Env = append(os.Environ(),
		"BULB_ADMIN_TOKEN="+s.token, "BULB_ADDR="+port, "BULB_LOG_LEVEL=info",
		"BULB_PING_INTERVAL="+ping.String(), "BULB_REDIS_URL=", // the memory engine
		"BULB_CONNS_PER_ADDR=0", "BULB_JOIN_RATE=0") // every student comes from 127.0.0.1
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	dieWithParent(s.cmd)
	fmt.Fprintf(stderr, "fairness: $ BULB_ADMIN_TOKEN=… BULB_ADDR=%s BULB_LOG_LEVEL=info BULB_PING_INTERVAL=%s BULB_CONNS_PER_ADDR=0 BULB_JOIN_RATE=0 %s\n", port, ping, bin)
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting the server: %w", err)
	}
	go func() { s.waitErr = s.cmd.Wait(); close(s.exited) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/healthz", nil)
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
			s.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("the server did not answer /healthz within 30 s")
		}
	}
}

// stop ends the server gracefully (SIGTERM, then SIGKILL after 15 s), summarizes its log
// and removes the temporary directory.
func (s *bulbServer) stop() logSummary {
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

// logSummary counts a server log's lines by level and message.
type logSummary struct {
	Lines    int            `json:"lines"`
	Messages map[string]int `json:"messages"` // "LEVEL message" → lines, for WARN and ERROR and dropped clients
}

var logLine = regexp.MustCompile(`level=([A-Z]+) msg=("(?:[^"\\]|\\.)*"|\S+)`)

func summarizeLog(path string) logSummary {
	sum := logSummary{Messages: map[string]int{}}
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
		return "", errors.New("run the lab from Bulb's module (or give --server or --url): no go.mod here")
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

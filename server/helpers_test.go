package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/internal/clocksync"
	"github.com/coder/websocket"
)

// testServer is a whole Bulb node started in-process by run, on a free loopback port.
type testServer struct {
	URL   string // without the trailing slash
	Admin string
	stop  func()
}

const testAdmin = "test-admin-token"

var (
	listening    = regexp.MustCompile(`Bulb listening on (http://\S+)/`)
	judgeRunning = regexp.MustCompile(`Bulb judge running`)
)

// MustStartServer runs a Bulb node until the test ends. env adds environment variables to
// the test's judgeEnv.
func MustStartServer(tb testing.TB, env map[string]string, args ...string) *testServer {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	jenv := judgeEnv(tb)
	getenv := func(k string) string {
		if k == "BULB_ADMIN_TOKEN" {
			return testAdmin
		}
		if v, ok := env[k]; ok {
			return v
		}
		return jenv[k]
	}
	args = withData(tb, args)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), getenv, pw)
		pw.Close()
	}()
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
		io.Copy(io.Discard, pr)
	}()
	s := &testServer{Admin: testAdmin}
	select {
	case s.URL = <-urls:
	case err := <-done:
		cancel()
		tb.Fatalf("server exited: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		tb.Fatal("server did not start within 10 s")
	}
	var stopped bool
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("run returned %v, want nil", err)
			}
		case <-time.After(15 * time.Second):
			tb.Error("server did not stop within 15 s")
		}
	}
	tb.Cleanup(s.stop)
	return s
}

// withData gives a test server the default engine, the embedded one, on a data directory
// of the test's own, unless args choose an engine (--data or --redis).
func withData(tb testing.TB, args []string) []string {
	for _, a := range args {
		if a == "--data" || a == "--redis" || strings.HasPrefix(a, "--data=") || strings.HasPrefix(a, "--redis=") {
			return args
		}
	}
	return append([]string{"--data", tb.TempDir()}, args...)
}

var (
	judgeEnvs   sync.Map     // testing.TB → its judgeEnv
	nextBoxBase atomic.Int32 // in tens, from 10
)

// judgeEnv returns the environment that gives the test's servers their own box directory
// and range of box ids, the same for every server of one test (they share one host's
// boxes). Box ids are host-wide uids and cgroups: the test servers use ids 100 to 199, the
// judge package's tests those below.
func judgeEnv(tb testing.TB) map[string]string {
	if env, ok := judgeEnvs.Load(tb); ok {
		return env.(map[string]string)
	}
	root := tb.TempDir()
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o711); err != nil { // box uids traverse to their box
			tb.Fatal(err)
		}
	}
	base := 100 + 10*(nextBoxBase.Add(1)%10)
	env := map[string]string{"BULB_BOX_ROOT": root, "BULB_BOX_BASE": strconv.Itoa(int(base)), "BULB_WORKERS": "2"}
	judgeEnvs.Store(tb, env)
	tb.Cleanup(func() { judgeEnvs.Delete(tb) })
	return env
}

// apiError is the error body of every failed call.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// call makes an HTTP call with an optional bearer token and JSON body (a string is sent as
// is), decodes the answer into out if not nil, and returns the status and raw body.
func (s *testServer) call(tb testing.TB, method, path, token string, body any, out any) (int, []byte) {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			tb.Fatalf("%s %s: decoding %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, raw
}

// mustCall is call that fails the test unless the status is want.
func (s *testServer) mustCall(tb testing.TB, want int, method, path, token string, body, out any) {
	tb.Helper()
	if got, raw := s.call(tb, method, path, token, body, out); got != want {
		tb.Fatalf("%s %s: got %d %s, want %d", method, path, got, raw, want)
	}
}

const sampleQuiz = `{"title":"Networks","winners":[100,60,30],"questions":[
 {"kind":"choice","text":"Which layer is TCP?","choices":["2","3","4"],"answer":2},
 {"kind":"short","text":"TCP stands for?","answers":["tcp","transmission control protocol"]},
 {"kind":"choice","text":"Port of HTTPS?","choices":["80","443"],"answer":1}]}`

// MustRoom creates a room from quiz JSON and returns its code and host token.
func (s *testServer) MustRoom(tb testing.TB, quiz string) (string, string) {
	tb.Helper()
	var r struct{ Code, HostToken string }
	s.mustCall(tb, http.StatusCreated, "POST", "/api/rooms", s.Admin, quiz, &r)
	return r.Code, r.HostToken
}

// MustJoin joins a player and returns its ID and token.
func (s *testServer) MustJoin(tb testing.TB, code, name string) (string, string) {
	tb.Helper()
	var p struct{ PlayerID, Token string }
	s.mustCall(tb, http.StatusCreated, "POST", "/api/rooms/"+code+"/players", "", map[string]string{"name": name}, &p)
	return p.PlayerID, p.Token
}

// wsClient is a WebSocket client that reads every frame into a channel, stamped with its
// receipt time.
type wsClient struct {
	c      *websocket.Conn
	frames chan received
	closed chan error // the read error that ended the connection
}

type received struct {
	at       time.Time
	raw      []byte
	Type     string
	Seq      uint64
	N        int
	Code     string
	Rank     int
	RevealAt float64 `json:"at"` // a synced start's reveal instant, ms since the epoch
}

// humanReaction is how long after a synced start's instant a test's client sees it: a
// person's quick reaction, with room to spare over the quiz's false-start threshold
// (100 ms) plus the most a return delay may take off a reaction (75 ms): on a busy
// machine the measured round trips grow, and a smaller margin made honest answers false
// starts.
const humanReaction = 200 * time.Millisecond

// MustDial connects to /ws with token and starts reading, as a student does: a synced
// start's frame is handed on only once a person could have reacted to its bulb.
func (s *testServer) MustDial(tb testing.TB, token string) *wsClient {
	tb.Helper()
	return s.dial(tb, token, true)
}

// mustDialCheater connects to /ws with token and hands every frame on as it arrives: a
// modified client that knows a synced start's instant before its bulb lights.
func (s *testServer) mustDialCheater(tb testing.TB, token string) *wsClient {
	tb.Helper()
	return s.dial(tb, token, false)
}

func (s *testServer) dial(tb testing.TB, token string, human bool) *wsClient {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(s.URL, "http", "ws", 1)+"/ws?token="+token, nil)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(1 << 20)
	w := &wsClient{c: c, frames: make(chan received, 1024), closed: make(chan error, 1)}
	go func() {
		for {
			_, data, err := c.Read(context.Background())
			if err != nil {
				w.closed <- err
				close(w.frames)
				return
			}
			r := received{at: time.Now(), raw: data}
			if err := json.Unmarshal(data, &r); err != nil {
				panic(fmt.Sprintf("server sent invalid JSON %q", data))
			}
			if human && r.Type == "start" && r.RevealAt != 0 {
				// As a student does: the page lights the bulb at its instant (this
				// machine's clock is the server's), and a person reacts no sooner than a
				// human can (else it is a false start).
				time.Sleep(time.Until(clocksync.Time(r.RevealAt).Add(humanReaction)))
			}
			w.frames <- r
		}
	}()
	tb.Cleanup(func() { c.CloseNow() })
	return w
}

// send writes a text frame.
func (w *wsClient) send(tb testing.TB, v any) {
	tb.Helper()
	var data []byte
	switch f := v.(type) {
	case string:
		data = []byte(f)
	default:
		var err error
		if data, err = json.Marshal(v); err != nil {
			tb.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, data); err != nil {
		tb.Fatalf("write: %v", err)
	}
}

// next returns the next frame of the given type, skipping others, within 5 s.
func (w *wsClient) next(tb testing.TB, typ string) received {
	tb.Helper()
	return w.await(tb, typ, func(f received) bool { return f.Type == typ })
}

// reply returns the next result or error frame: the answer to an answer frame.
func (w *wsClient) reply(tb testing.TB) received {
	tb.Helper()
	return w.await(tb, "result or error", func(f received) bool { return f.Type == "result" || f.Type == "error" })
}

// await returns the next frame that matches, skipping others, within 5 s.
func (w *wsClient) await(tb testing.TB, what string, match func(received) bool) received {
	tb.Helper()
	return w.awaitWithin(tb, what, 5*time.Second, match)
}

// awaitWithin returns the next frame that matches, skipping others, within d.
func (w *wsClient) awaitWithin(tb testing.TB, what string, d time.Duration, match func(received) bool) received {
	tb.Helper()
	timeout := time.After(d)
	for {
		select {
		case f, ok := <-w.frames:
			if !ok {
				tb.Fatalf("connection closed waiting for %s: %v", what, <-w.closed)
			}
			if match(f) {
				return f
			}
		case <-timeout:
			tb.Fatalf("no %s frame within %v", what, d)
		}
	}
}

// MustRaceAnswers has every client answer question q at once, choice i%2 for client i
// (right for the even ones, when choice 0 is right), and checks every one gets a result:
// the right answers ranks 1..k each once, the wrong ones rank 0.
func MustRaceAnswers(tb testing.TB, clients []*wsClient, q int) {
	tb.Helper()
	ranks := make([]int, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			c.send(tb, map[string]any{"type": "answer", "n": q, "choice": i % 2})
			r := c.reply(tb)
			if r.Type != "result" {
				tb.Errorf("client %d: got %s, want a result", i, r.raw)
			}
			ranks[i] = r.Rank
		})
	}
	wg.Wait()
	var got []int
	for i, r := range ranks {
		if i%2 == 0 {
			got = append(got, r)
		} else if r != 0 {
			tb.Fatalf("wrong answer of client %d got rank %d, want 0", i, r)
		}
	}
	slices.Sort(got)
	for i, r := range got {
		if r != i+1 {
			tb.Fatalf("right answers got ranks %v, want 1..%d each once", got, len(got))
		}
	}
}

// Every address of 127.0.0.0/8 is this machine's on Linux: a test's clients dial from
// addresses of their own to be different client addresses to the server.

// dialerFrom returns a dialer whose connections come from the loopback address ip.
func dialerFrom(ip string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
}

// clientFrom returns an HTTP client whose connections come from the loopback address ip.
func clientFrom(ip string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dialerFrom(ip).DialContext}}
}

// reply is what a call got.
type reply struct {
	status int
	header http.Header
	code   string // the error code, if any
	body   []byte
	err    error // the call failed: no reply
}

// callWith makes a call with client; header adds headers, body is sent as is.
func (s *testServer) callWith(client *http.Client, method, path string, header map[string]string, body string) reply {
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		return reply{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	r := reply{status: resp.StatusCode, header: resp.Header}
	r.body, r.err = io.ReadAll(resp.Body)
	var e apiError
	if json.Unmarshal(r.body, &e) == nil {
		r.code = e.Error.Code
	}
	return r
}

func (r reply) String() string {
	if r.err != nil {
		return r.err.Error()
	}
	return fmt.Sprintf("%d %s", r.status, r.body)
}

// join joins a player with a fresh name through client, with extra headers.
func (s *testServer) join(client *http.Client, code string, header map[string]string) reply {
	return s.callWith(client, "POST", "/api/rooms/"+code+"/players", header, fmt.Sprintf(`{"name":"p%d"}`, joinNames.Add(1)))
}

var joinNames atomic.Int64

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulbquiz/bulb/internal/testenv"
)

// startPlain runs a server with args and no BULB_ADMIN_TOKEN (its judge has the test's
// boxes): it returns the server and what it printed up to the line that gives its URL.
func startPlain(t *testing.T, args ...string) (*testServer, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	env := judgeEnv(t)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), func(k string) string { return env[k] }, pw)
		pw.Close()
	}()
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var out strings.Builder
	s := &testServer{}
	for s.URL == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				cancel()
				t.Fatalf("server exited: %v\n%s", <-done, out.String())
			}
			out.WriteString(line + "\n")
			if m := listening.FindStringSubmatch(line); m != nil {
				s.URL = m[1]
			}
		case <-time.After(10 * time.Second):
			cancel()
			t.Fatalf("server did not start within 10 s:\n%s", out.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
	t.Cleanup(s.stop)
	return s, out.String()
}

var adminLine = regexp.MustCompile(`admin token: (\S+) \(kept in (\S+)\)`)

// TestDataSurvivesRestart: on the default engine, a server stopped and started again on
// its data directory has the same admin token (kept in a 0600 file there), the rooms,
// the players' tokens and scores; BULB_ADMIN_TOKEN still wins over the kept token.
func TestDataSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv, out := startPlain(t, "--data", dir)
	m := adminLine.FindStringSubmatch(out)
	if m == nil || m[2] != filepath.Join(dir, "admin-token") || !strings.Contains(out, "embedded engine, data in "+dir) {
		t.Fatalf("start-up message:\n%s\nwant the admin token kept in %s and the data directory", out, dir)
	}
	srv.Admin = m[1]
	if fi, err := os.Stat(m[2]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v, %v; want mode 0600", fi, err)
	}
	code, host := srv.MustRoom(t, sampleQuiz)
	id, token := srv.MustJoin(t, code, "alice")
	c := srv.MustDial(t, token)
	c.next(t, "welcome")
	srv.mustCall(t, 200, "POST", "/api/rooms/"+code+"/questions/1/open", host, nil, nil)
	srv.mustCall(t, 200, "POST", "/api/rooms/"+code+"/questions/1/start", host, nil, nil)
	c.next(t, "start")
	c.send(t, map[string]any{"type": "answer", "n": 1, "choice": 2})
	if r := c.reply(t); r.Rank != 1 {
		t.Fatalf("alice's answer: %s, want rank 1", r.raw)
	}
	srv.stop()

	again, out := startPlain(t, "--data", dir)
	if m2 := adminLine.FindStringSubmatch(out); m2 == nil || m2[1] != m[1] {
		t.Fatalf("after the restart:\n%s\nwant the same admin token %s", out, m[1])
	}
	again.Admin = m[1]
	var rooms struct{ Rooms []struct{ Code string } }
	again.mustCall(t, 200, "GET", "/api/rooms", again.Admin, nil, &rooms)
	if len(rooms.Rooms) != 1 || rooms.Rooms[0].Code != code {
		t.Fatalf("rooms after the restart: %+v, want %s", rooms.Rooms, code)
	}
	c = again.MustDial(t, token)
	var w struct {
		PlayerID string `json:"playerId"`
		Score    int    `json:"score"`
		Phase    string `json:"phase"`
	}
	json.Unmarshal(c.next(t, "welcome").raw, &w)
	if w.PlayerID != id || w.Score != 100 || w.Phase != "live" {
		t.Fatalf("alice's welcome after the restart: %+v, want her 100 points and question 1 live", w)
	}
	again.mustCall(t, 200, "POST", "/api/rooms/"+code+"/questions/1/close", host, nil, nil)
	again.stop()

	chosen := MustStartServer(t, nil, "--data", dir) // with BULB_ADMIN_TOKEN
	chosen.mustCall(t, 200, "GET", "/api/rooms", testAdmin, nil, nil)
	if got, _ := chosen.call(t, "GET", "/api/rooms", m[1], nil, nil); got != http.StatusUnauthorized {
		t.Fatalf("the kept token while BULB_ADMIN_TOKEN is set: %d, want 401", got)
	}
}

// TestDataDirRefused: a second server on a data directory in use, a data directory that is
// a file and one on a read-only file system are each refused at start-up with a message
// that says what is wrong.
func TestDataDirRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	MustStartServer(t, nil, "--data", dir)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	readOnly := testenv.SmallFS(t, 1<<20)
	if err := unix.Mount("", readOnly, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ dir, want string }{
		{dir, "is in use by another Bulb server"},
		{file, "not a directory"},
		{readOnly, "cannot be written: open " + readOnly},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := run(ctx, []string{"--addr", "127.0.0.1:0", "--data", c.dir}, func(k string) string { return judgeEnv(t)[k] }, io.Discard)
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.dir) {
			t.Errorf("--data %s: got %v, want an error naming it and saying %q", c.dir, err, c.want)
		}
	}
}

// TestDiskFull runs the server with its data directory on a small file system and fills
// it: a change that cannot be saved fails cleanly (503 or an unavailable error frame) and
// leaves nothing of itself, /healthz says why, and once space returns the server recovers
// by itself; a restart finds exactly what was acknowledged.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	dir := testenv.SmallFS(t, 8<<20)
	srv := MustStartServer(t, nil, "--data", dir, "--join-rate", "0")
	code, host := srv.MustRoom(t, `{"questions":[{"kind":"short","text":"Say a lot","answers":["x"]}]}`)
	room := "/api/rooms/" + code
	const players = 40
	clients := make([]*wsClient, players)
	ids := make([]string, players)
	for i := range clients {
		var token string
		ids[i], token = srv.MustJoin(t, code, fmt.Sprint("p", i))
		clients[i] = srv.MustDial(t, token)
		clients[i].next(t, "welcome")
	}
	srv.mustCall(t, 200, "POST", room+"/questions/1/open", host, nil, nil)
	srv.mustCall(t, 200, "POST", room+"/questions/1/start", host, nil, nil)
	for _, c := range clients {
		c.next(t, "start")
	}

	filler := filepath.Join(dir, "filler")
	testenv.Fill(t, filler)
	// A quiz of 200 long questions needs pages the database does not have.
	var big strings.Builder
	big.WriteString(`{"questions":[`)
	for i := range 200 {
		if i > 0 {
			big.WriteString(",")
		}
		fmt.Fprintf(&big, `{"kind":"short","text":"%s","answers":["x"]}`, strings.Repeat("q", 1990))
	}
	big.WriteString("]}")
	if got, raw := srv.call(t, "POST", "/api/rooms", srv.Admin, big.String(), nil); got != http.StatusServiceUnavailable || !strings.Contains(string(raw), "unavailable") {
		t.Fatalf("a new room on a full disk: %d %s, want 503 unavailable", got, raw)
	}
	var rooms struct{ Rooms []struct{ Code string } }
	if srv.mustCall(t, 200, "GET", "/api/rooms", srv.Admin, nil, &rooms); len(rooms.Rooms) != 1 {
		t.Fatalf("rooms after the refused one: %+v, want only %s", rooms.Rooms, code)
	}
	var health struct {
		Status string
		Error  struct{ Code, Message string }
	}
	if got, _ := srv.call(t, "GET", "/healthz", "", nil, &health); got != http.StatusServiceUnavailable || !strings.Contains(health.Error.Message, "no space left") {
		t.Fatalf("/healthz on a full disk: %d %+v, want 503 saying no space is left", got, health)
	}
	told := map[string]bool{}
	var refused []int
	for i, c := range clients {
		c.send(t, map[string]any{"type": "answer", "n": 1, "text": fmt.Sprintf("%d %s", i, strings.Repeat("a", 990))})
		switch r := c.reply(t); {
		case r.Type == "result":
			told[ids[i]] = true
		case r.Code == "unavailable":
			refused = append(refused, i)
		default:
			t.Fatalf("player %d's answer on a full disk: %s, want a result or unavailable", i, r.raw)
		}
	}
	if len(refused) == 0 {
		t.Fatal("every answer was saved on the full disk: the test did not fill it")
	}
	mustAnswersOf(t, srv, host, room, told)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if got, _ := srv.call(t, "GET", "/healthz", "", nil, nil); got == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/healthz not ok 5 s after space returned")
		}
	}
	for _, i := range refused {
		clients[i].send(t, map[string]any{"type": "answer", "n": 1, "text": fmt.Sprint(i, " again")})
		if r := clients[i].reply(t); r.Type != "result" {
			t.Fatalf("player %d's answer once space returned: %s, want a result", i, r.raw)
		}
		told[ids[i]] = true
	}
	srv.mustCall(t, http.StatusCreated, "POST", "/api/rooms", srv.Admin, big.String(), nil)
	_, metrics := srv.call(t, "GET", "/metrics", "", nil, nil)
	if !regexp.MustCompile(`(?m)^bulb_store_commits_total [1-9]`).Match(metrics) || !regexp.MustCompile(`(?m)^bulb_store_changes_total [1-9]`).Match(metrics) {
		t.Errorf("/metrics has no counts of the store's commits and changes")
	}
	srv.stop()
	srv = MustStartServer(t, nil, "--data", dir)
	mustAnswersOf(t, srv, host, room, told)
}

// mustAnswersOf checks that question 1's answers are those of exactly the given players.
func mustAnswersOf(t *testing.T, srv *testServer, host, room string, players map[string]bool) {
	t.Helper()
	var answers struct{ Answers []answerJSON }
	srv.mustCall(t, 200, "GET", room+"/questions/1/answers", host, nil, &answers)
	got := map[string]bool{}
	for _, a := range answers.Answers {
		got[a.PlayerID] = true
	}
	if len(got) != len(answers.Answers) || len(got) != len(players) {
		t.Fatalf("%d answers of %d players, want the %d acknowledged", len(answers.Answers), len(got), len(players))
	}
	for id := range players {
		if !got[id] {
			t.Fatalf("the acknowledged answer of %s is missing", id)
		}
	}
}

// TestTimedStartDueWhileDown: a timed start that fell due while the server was stopped
// fires once, at once, when it starts again on its data directory (as the README says).
func TestTimedStartDueWhileDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := MustStartServer(t, nil, "--data", dir)
	code, host := srv.MustRoom(t, sampleQuiz)
	room := "/api/rooms/" + code
	srv.mustCall(t, 200, "POST", room+"/questions/1/open", host, nil, nil)
	// Far enough ahead that its timer, which fires a second early for a synced start's
	// lead, is not due before the stop.
	at := time.Now().Add(4 * time.Second)
	srv.mustCall(t, 202, "POST", room+"/questions/1/start", host, map[string]any{"at": at.Format(time.RFC3339Nano)}, nil)
	srv.stop()
	if time.Now().After(at.Add(-time.Second)) {
		t.Fatal("the server took 3 s to stop: its start's timer may have fired before it did")
	}
	time.Sleep(time.Until(at) + 500*time.Millisecond)

	srv = MustStartServer(t, nil, "--data", dir)
	var r struct {
		Phase   string
		Current int
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		srv.mustCall(t, 200, "GET", room, host, nil, &r)
		if r.Phase == "live" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after the restart question 1 is %s, want live: its start was due while the server was down", r.Phase)
		}
	}
	time.Sleep(time.Second) // a second firing, were there one, would show as a second start
	var rep struct{ Starts []struct{ N int } }
	srv.mustCall(t, 200, "GET", room+"/fairness", host, nil, &rep)
	if len(rep.Starts) != 1 || rep.Starts[0].N != 1 {
		t.Fatalf("starts after the restart: %+v, want question 1's, once", rep.Starts)
	}
}

package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/internal/redistest"
)

// failFast bounds how long a call may take to fail while Redis is down: the client's
// timeouts are 1 s, and a stopped Redis refuses connections at once.
const failFast = 1500 * time.Millisecond

// recoverWithin bounds how long a node takes to serve again once Redis is back: go-redis
// stops dialling after a run of failed dials and probes once a second until one succeeds.
const recoverWithin = 5 * time.Second

// MustHealthy waits until s's /healthz says 200, and returns how long that took.
func MustHealthy(tb testing.TB, s *testServer) time.Duration {
	tb.Helper()
	start := time.Now()
	for {
		status, raw := s.call(tb, "GET", "/healthz", "", nil, nil)
		if status == http.StatusOK {
			return time.Since(start)
		}
		if time.Since(start) > recoverWithin {
			tb.Fatalf("/healthz: still %d %s after %v, want 200", status, raw, recoverWithin)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFailureRedisDown stops Redis under a node in the middle of a question: every API
// call fails fast with 503 unavailable, an answer frame gets an unavailable error frame on
// a socket that stays open, /healthz says 503 and why; and once Redis is back the state is
// exactly as before the outage: the failed join and the failed moves left nothing behind,
// and the refused answer is accepted once when sent again.
func TestFailureRedisDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.WithAOF())
	s := MustStartServer(t, map[string]string{"BULB_REDIS_URL": srv.URL()})
	code, host := s.MustRoom(t, sampleQuiz)
	room := "/api/rooms/" + code
	_, aliceToken := s.MustJoin(t, code, "alice")
	_, bobToken := s.MustJoin(t, code, "bob")
	alice, bob := s.MustDial(t, aliceToken), s.MustDial(t, bobToken)
	alice.next(t, "welcome")
	bob.next(t, "welcome")
	s.mustCall(t, 200, "POST", room+"/questions/1/open", host, nil, nil)
	s.mustCall(t, 200, "POST", room+"/questions/1/start", host, nil, nil)
	alice.next(t, "start")
	bob.next(t, "start")
	alice.send(t, map[string]any{"type": "answer", "n": 1, "choice": 2})
	if r := alice.reply(t); r.Type != "result" || r.Rank != 1 {
		t.Fatalf("alice's answer: got %s, want a result with rank 1", r.raw)
	}

	// what a host and an admin see before the outage
	views := []struct{ path, token string }{
		{"/api/rooms", s.Admin},
		{room, host},
		{room + "/questions/1/answers", host},
		{room + "/questions/2/answers", host},
		{room + "/leaderboard", host},
	}
	before := make([]string, len(views))
	for i, v := range views {
		code, raw := s.call(t, "GET", v.path, v.token, nil, nil)
		if code != 200 {
			t.Fatalf("GET %s: got %d %s, want 200", v.path, code, raw)
		}
		before[i] = string(raw)
	}

	srv.Stop()

	t.Run("healthz", func(t *testing.T) {
		start := time.Now()
		var h struct {
			Status string
			Error  struct{ Code, Message string }
		}
		status, raw := s.call(t, "GET", "/healthz", "", nil, &h)
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("/healthz took %v, want it bounded by its 2 s check", took)
		}
		if status != http.StatusServiceUnavailable || h.Status != "unavailable" || h.Error.Code != "unavailable" ||
			!strings.Contains(strings.ToLower(h.Error.Message), "redis") {
			t.Errorf("/healthz with Redis down: got %d %s, want 503, status and code unavailable, a message naming redis", status, raw)
		}
	})

	// Host calls go with the admin token too, which needs no Redis to check, so that the
	// call itself reaches the store.
	calls := []struct {
		name, method, path, token string
		body                      any
	}{
		{"create room", "POST", "/api/rooms", s.Admin, sampleQuiz},
		{"list rooms", "GET", "/api/rooms", s.Admin, nil},
		{"room as host", "GET", room, host, nil},
		{"room as admin", "GET", room, s.Admin, nil},
		{"join", "POST", room + "/players", "", map[string]string{"name": "carol"}},
		{"open next", "POST", room + "/questions/2/open", s.Admin, nil},
		{"start again", "POST", room + "/questions/1/start", s.Admin, nil},
		{"close", "POST", room + "/questions/1/close", s.Admin, nil},
		{"answers", "GET", room + "/questions/1/answers", s.Admin, nil},
		{"leaderboard as player", "GET", room + "/leaderboard", aliceToken, nil},
		{"leaderboard", "GET", room + "/leaderboard", s.Admin, nil},
		{"fairness", "GET", room + "/fairness", s.Admin, nil},
		{"connect", "GET", "/ws?token=" + bobToken, "", nil},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			var e apiError
			status, raw := s.call(t, c.method, c.path, c.token, c.body, &e)
			took := time.Since(start)
			if status != http.StatusServiceUnavailable || e.Error.Code != "unavailable" {
				t.Errorf("%s %s with Redis down: got %d %s, want 503 unavailable", c.method, c.path, status, raw)
			}
			if took > failFast {
				t.Errorf("%s %s with Redis down took %v, want under %v", c.method, c.path, took, failFast)
			}
		})
	}

	start := time.Now()
	bob.send(t, map[string]any{"type": "answer", "n": 1, "choice": 2})
	if r := bob.reply(t); r.Type != "error" || r.Code != "unavailable" || r.N != 1 {
		t.Errorf("answer with Redis down: got %s, want an error frame with code unavailable and n 1", r.raw)
	}
	if took := time.Since(start); took > failFast {
		t.Errorf("answer with Redis down took %v, want under %v", took, failFast)
	}

	srv.Restart(t)
	t.Logf("serving again %v after Redis came back", MustHealthy(t, s).Round(time.Millisecond))

	for i, v := range views {
		_, raw := s.call(t, "GET", v.path, v.token, nil, nil)
		if string(raw) != before[i] {
			t.Errorf("GET %s after the outage:\ngot  %s\nwant %s (as before it)", v.path, raw, before[i])
		}
	}
	// the join that failed left no trace: the name is free
	s.MustJoin(t, code, "carol")
	// the refused answer counts once when sent again
	bob.send(t, map[string]any{"type": "answer", "n": 1, "choice": 2})
	if r := bob.reply(t); r.Type != "result" || r.Rank != 2 {
		t.Fatalf("bob's answer again with Redis back: got %s, want a result with rank 2", r.raw)
	}
	bob.send(t, map[string]any{"type": "answer", "n": 1, "choice": 2})
	if r := bob.reply(t); r.Type != "result" || r.Rank != 2 {
		t.Fatalf("bob's same answer a third time: got %s, want the same result, rank 2", r.raw)
	}
	bob.send(t, map[string]any{"type": "answer", "n": 1, "choice": 0})
	if r := bob.reply(t); r.Type != "error" || r.Code != "already_answered" {
		t.Fatalf("bob's other answer: got %s, want already_answered", r.raw)
	}
	var answers struct {
		Answers []struct {
			Name   string
			Rank   int
			Points int
		}
	}
	s.mustCall(t, 200, "GET", room+"/questions/1/answers", host, nil, &answers)
	if got, _ := json.Marshal(answers.Answers); string(got) != `[{"Name":"alice","Rank":1,"Points":100},{"Name":"bob","Rank":2,"Points":60}]` {
		t.Errorf("answers after the outage: got %s, want alice 1st with 100 and bob 2nd with 60, once each", got)
	}
	s.mustCall(t, 200, "POST", room+"/questions/1/close", host, nil, nil)
	for _, c := range []*wsClient{alice, bob} {
		if f := c.next(t, "close"); f.N != 1 {
			t.Errorf("got close %d, want 1", f.N)
		}
	}
	// both sockets lived through the outage
	for name, c := range map[string]*wsClient{"alice": alice, "bob": bob} {
		select {
		case err := <-c.closed:
			t.Errorf("%s's socket closed: %v", name, err)
		default:
		}
	}
}

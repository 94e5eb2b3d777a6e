package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/internal/clocksync"
)

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	s := MustStartServer(t, nil)
	code, host := s.MustRoom(t, sampleQuiz)
	code2, host2 := s.MustRoom(t, sampleQuiz)
	_, player := s.MustJoin(t, code, "alice")
	room := "/api/rooms/" + code
	tests := []struct {
		name         string
		method, path string
		token        string
		body         any
		status       int
		code         string
	}{
		{"create without token", "POST", "/api/rooms", "", sampleQuiz, 401, "unauthorized"},
		{"create with a wrong token", "POST", "/api/rooms", "nope", sampleQuiz, 401, "unauthorized"},
		{"create as host", "POST", "/api/rooms", host, sampleQuiz, 403, "forbidden"},
		{"create with malformed JSON", "POST", "/api/rooms", s.Admin, `{"questions":[`, 400, "invalid"},
		{"create with no questions", "POST", "/api/rooms", s.Admin, `{"title":"x","questions":[]}`, 400, "invalid"},
		{"create with answer out of range", "POST", "/api/rooms", s.Admin,
			`{"questions":[{"kind":"choice","text":"q","choices":["a","b"],"answer":2}]}`, 400, "invalid"},
		{"create with empty text", "POST", "/api/rooms", s.Admin,
			`{"questions":[{"kind":"short","text":"","answers":["a"]}]}`, 400, "invalid"},
		{"create with a code question", "POST", "/api/rooms", s.Admin,
			`{"questions":[{"kind":"code","text":"sum","languages":["python"]}]}`, 400, "invalid"},
		{"create with a misspelt field", "POST", "/api/rooms", s.Admin,
			`{"questions":[{"kind":"choice","text":"q","choices":["a","b"],"answer":1,"point":50}]}`, 400, "invalid"},
		{"create with something after the quiz", "POST", "/api/rooms", s.Admin, sampleQuiz + `}`, 400, "invalid"},
		{"create over 1 MiB", "POST", "/api/rooms", s.Admin, `{"title":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "too_large"},
		{"list rooms as host", "GET", "/api/rooms", host, nil, 403, "forbidden"},
		{"room state without token", "GET", room, "", nil, 401, "unauthorized"},
		{"room state as player", "GET", room, player, nil, 403, "forbidden"},
		{"room state as another room's host", "GET", room, host2, nil, 403, "forbidden"},
		{"unknown room", "GET", "/api/rooms/000000x", s.Admin, nil, 404, "not_found"},
		{"join unknown room", "POST", "/api/rooms/000000x/players", "", `{"name":"x"}`, 404, "not_found"},
		{"join with a taken name", "POST", room + "/players", "", `{"name":"ALICE"}`, 409, "conflict"},
		{"join with an empty name", "POST", room + "/players", "", `{"name":" "}`, 400, "invalid"},
		{"join with malformed JSON", "POST", room + "/players", "", `{"name":`, 400, "invalid"},
		{"join with a huge body", "POST", room + "/players", "", `{"name":"` + strings.Repeat("x", 100<<10) + `"}`, 413, "too_large"},
		{"open question 0", "POST", room + "/questions/0/open", host, nil, 404, "not_found"},
		{"open question x", "POST", room + "/questions/x/open", host, nil, 404, "not_found"},
		{"open question 4 of 3", "POST", room + "/questions/4/open", host, nil, 404, "not_found"},
		{"open as player", "POST", room + "/questions/1/open", player, nil, 403, "forbidden"},
		{"open with another room's host", "POST", "/api/rooms/" + code2 + "/questions/1/open", host, nil, 403, "forbidden"},
		{"start before open", "POST", room + "/questions/1/start", host, nil, 409, "conflict"},
		{"close before open", "POST", room + "/questions/1/close", host, nil, 409, "conflict"},
		{"answers as player", "GET", room + "/questions/1/answers", player, nil, 403, "forbidden"},
		{"fairness as player", "GET", room + "/fairness", player, nil, 403, "forbidden"},
		{"leaderboard of another room", "GET", "/api/rooms/" + code2 + "/leaderboard", player, nil, 403, "forbidden"},
		{"unknown route", "GET", "/api/nothing", "", nil, 404, "not_found"},
		{"websocket with a wrong token", "GET", "/ws?token=nope", "", nil, 401, "unauthorized"},
		{"websocket without token", "GET", "/ws", "", nil, 401, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e apiError
			status, raw := s.call(t, tt.method, tt.path, tt.token, tt.body, &e)
			if status != tt.status || e.Error.Code != tt.code || e.Error.Message == "" {
				t.Fatalf("got %d %s, want %d with code %q and a message", status, raw, tt.status, tt.code)
			}
		})
	}
	// nothing of that changed the room
	var state struct {
		Phase   string
		Current int
		Players []struct{ Name string }
	}
	s.mustCall(t, 200, "GET", room, host, nil, &state)
	if state.Phase != "lobby" || state.Current != 0 || len(state.Players) != 1 {
		t.Fatalf("got %+v, want the lobby with one player", state)
	}
}

func TestAPIFlow(t *testing.T) {
	t.Parallel()
	s := MustStartServer(t, nil)
	code, host := s.MustRoom(t, sampleQuiz)
	room := "/api/rooms/" + code
	aliceID, alice := s.MustJoin(t, code, "alice")
	_, bob := s.MustJoin(t, code, "bob")

	var rooms struct {
		Rooms []struct {
			Code      string
			Questions int
			Players   int
		}
	}
	s.mustCall(t, 200, "GET", "/api/rooms", s.Admin, nil, &rooms)
	if len(rooms.Rooms) != 1 || rooms.Rooms[0].Code != code || rooms.Rooms[0].Questions != 3 || rooms.Rooms[0].Players != 2 {
		t.Fatalf("got rooms %+v, want room %s with 3 questions and 2 players", rooms, code)
	}

	a, b := s.MustDial(t, alice), s.MustDial(t, bob)
	hostWS := s.MustDial(t, host)
	for _, c := range []*wsClient{a, b, hostWS} {
		c.next(t, "welcome")
	}
	s.mustCall(t, 200, "POST", room+"/questions/2/open", host, nil, nil)
	if q := a.next(t, "question"); q.N != 2 {
		t.Fatalf("got question %d, want 2", q.N)
	}
	var started struct {
		Seq        uint64
		Recipients int
	}
	s.mustCall(t, 200, "POST", room+"/questions/2/start", host, nil, &started)
	if started.Recipients != 2 || started.Seq == 0 {
		t.Fatalf("got %+v, want 2 recipients and a seq", started)
	}
	for _, c := range []*wsClient{a, b} {
		if f := c.next(t, "start"); f.Seq != started.Seq || f.N != 2 {
			t.Fatalf("got start %+v, want seq %d n 2", f, started.Seq)
		}
		c.send(t, map[string]any{"type": "ack", "seq": started.Seq})
	}
	b.send(t, map[string]any{"type": "answer", "n": 2, "text": "UDP"})
	if r := b.reply(t); r.Type != "result" || r.Rank != 0 {
		t.Fatalf("bob's wrong answer: got %s", r.raw)
	}
	a.send(t, map[string]any{"type": "answer", "n": 2, "text": "  Transmission Control   protocol"})
	if r := a.reply(t); r.Type != "result" || r.Rank != 1 {
		t.Fatalf("alice's right answer: got %s", r.raw)
	}
	if f := hostWS.next(t, "answered"); !strings.Contains(string(f.raw), aliceID) && !strings.Contains(string(f.raw), `"name":"bob"`) {
		t.Fatalf("host got %s, want an answered frame", f.raw)
	}
	s.mustCall(t, 200, "POST", room+"/questions/2/close", host, nil, nil)
	for _, c := range []*wsClient{a, b} {
		if f := c.next(t, "close"); f.N != 2 {
			t.Fatalf("got close %d, want 2", f.N)
		}
		lb := c.next(t, "leaderboard")
		if !strings.Contains(string(lb.raw), `"name":"alice","score":100,"rank":1`) {
			t.Fatalf("got leaderboard %s, want alice first with 100", lb.raw)
		}
	}
	var answers struct {
		Answers []struct {
			Name        string
			Correct     bool
			Rank        int
			ArrivalRank int
			Points      int
			ReceivedAt  time.Time
		}
	}
	s.mustCall(t, 200, "GET", room+"/questions/2/answers", host, nil, &answers)
	if len(answers.Answers) != 2 || answers.Answers[0].Name != "alice" || answers.Answers[0].Rank != 1 ||
		answers.Answers[1].Name != "bob" || answers.Answers[1].ArrivalRank != 1 || answers.Answers[0].ReceivedAt.IsZero() {
		t.Fatalf("got answers %+v, want alice ranked 1 then bob (arrived first, wrong)", answers)
	}
	var lb struct {
		Entries []struct {
			Name  string
			Score int
			Rank  int
		}
	}
	s.mustCall(t, 200, "GET", room+"/leaderboard", alice, nil, &lb)
	if len(lb.Entries) != 2 || lb.Entries[0].Name != "alice" || lb.Entries[1].Rank != 2 {
		t.Fatalf("got leaderboard %+v", lb)
	}
	var fair struct {
		Starts []struct {
			Seq, Recipients, Acked int
			Players                []struct{ WrittenUs, AckUs *int64 }
		}
		Bias []struct{ Starts int }
	}
	s.mustCall(t, 200, "GET", room+"/fairness", host, nil, &fair)
	if len(fair.Starts) != 1 || fair.Starts[0].Recipients != 2 || fair.Starts[0].Acked != 2 || len(fair.Bias) != 2 {
		t.Fatalf("got fairness %+v, want one start to 2 players, both acked", fair)
	}
	for _, p := range fair.Starts[0].Players {
		// on loopback an ack may arrive before the server's own write call has returned,
		// so the two are not ordered
		if p.WrittenUs == nil || p.AckUs == nil {
			t.Fatalf("got delivery %+v, want both written and ack times", p)
		}
	}
	// timed start of question 3
	s.mustCall(t, 200, "POST", room+"/questions/3/open", host, nil, nil)
	at := time.Now().Add(300 * time.Millisecond).UTC()
	var sched struct {
		Scheduled bool
		At        time.Time
	}
	s.mustCall(t, 202, "POST", room+"/questions/3/start", host, fmt.Sprintf(`{"at":%q}`, at.Format(time.RFC3339Nano)), &sched)
	if !sched.Scheduled || !sched.At.Equal(at) {
		t.Fatalf("got %+v, want scheduled at %v", sched, at)
	}
	// A synced timed start is sent ahead of its time, which it carries: the page lights
	// the bulb then.
	f := a.next(t, "start")
	if f.N != 3 || !f.at.Before(at) || clocksync.Time(f.RevealAt).Sub(at).Abs() > time.Microsecond {
		t.Fatalf("got start %s at %v, want question 3 sent before, revealed at, %v", f.raw, f.at, at)
	}
	s.mustCall(t, 409, "POST", room+"/questions/3/start", host, nil, nil)
	var past apiError
	s.mustCall(t, 400, "POST", room+"/questions/3/start", host, `{"at":"2020-01-01T00:00:00Z"}`, &past)

	status, raw := s.call(t, "GET", "/metrics", "", nil, nil)
	for _, m := range []string{"bulb_hub_connections 3", "bulb_hub_starts_total 2", `bulb_answers_total{outcome="accepted"} 2`} {
		if status != http.StatusOK || !strings.Contains(string(raw), m) {
			t.Errorf("metrics: got %d without %q", status, m)
		}
	}
	status, raw = s.call(t, "GET", "/healthz", "", nil, nil)
	if status != 200 || !strings.Contains(string(raw), "ok") {
		t.Errorf("healthz: got %d %s", status, raw)
	}
}

func TestPagesServed(t *testing.T) {
	t.Parallel()
	s := MustStartServer(t, nil)
	for path, want := range map[string]string{
		"/": "<html", "/host": "<html", "/admin": "<html", "/static/student.js": "ack", "/static/app.css": "{",
	} {
		status, raw := s.call(t, "GET", path, "", nil, nil)
		if status != 200 || !strings.Contains(string(raw), want) {
			t.Errorf("GET %s: got %d, want 200 containing %q", path, status, want)
		}
	}
}

func TestEditQuizAPI(t *testing.T) {
	t.Parallel()
	s := MustStartServer(t, nil)
	code, host := s.MustRoom(t, sampleQuiz)
	path := "/api/rooms/" + code + "/quiz"
	_, player := s.MustJoin(t, code, "ivy")
	edited := `{"quizVersion":0,"quiz":{"title":"Edited","questions":[{"kind":"choice","text":"q","choices":["a","b"],"answer":0}]}}`
	for _, tt := range []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"as player", player, edited, 403, "forbidden"},
		{"without a version", host, `{"quiz":{}}`, 400, "invalid"},
		{"an invalid quiz", host, `{"quizVersion":0,"quiz":{"questions":[]}}`, 400, "invalid"},
	} {
		var e apiError
		if status, raw := s.call(t, "PUT", path, tt.token, tt.body, &e); status != tt.status || e.Error.Code != tt.code {
			t.Errorf("%s: got %d %s, want %d %s", tt.name, status, raw, tt.status, tt.code)
		}
	}
	var ok struct{ QuizVersion int64 }
	s.mustCall(t, 200, "PUT", path, host, edited, &ok)
	if ok.QuizVersion != 1 {
		t.Fatalf("got quiz version %d, want 1", ok.QuizVersion)
	}
	var e apiError
	if status, raw := s.call(t, "PUT", path, host, edited, &e); status != 409 || e.Error.Code != "conflict" {
		t.Fatalf("the same edit again, now stale: got %d %s, want 409 conflict", status, raw)
	}
	var state struct {
		Title       string
		QuizVersion int64
		Questions   []struct{ Text string }
	}
	s.mustCall(t, 200, "GET", "/api/rooms/"+code, host, nil, &state)
	if state.Title != "Edited" || state.QuizVersion != 1 || len(state.Questions) != 1 {
		t.Fatalf("got %+v, want the edited quiz at version 1", state)
	}

	// after a question was asked, the room state's quiz, sent back as it is, is a valid edit
	room := "/api/rooms/" + code
	s.mustCall(t, 200, "POST", room+"/questions/1/open", host, nil, nil)
	s.mustCall(t, 200, "POST", room+"/questions/1/close", host, nil, nil)
	var full map[string]any
	s.mustCall(t, 200, "GET", room, host, nil, &full)
	roundTrip := map[string]any{"quizVersion": full["quizVersion"], "quiz": map[string]any{
		"title": full["title"], "ranking": full["ranking"], "timing": full["timing"], "winners": full["winners"], "questions": full["questions"]}}
	s.mustCall(t, 200, "PUT", path, host, roundTrip, &ok)
	if ok.QuizVersion != 2 {
		t.Fatalf("got quiz version %d, want 2", ok.QuizVersion)
	}
}

package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestAdminHostsOnWS: the admin token is a host of every room on the socket too, naming
// the room; without a room or with an unknown one it is refused before the upgrade.
func TestAdminHostsOnWS(t *testing.T) {
	t.Parallel()
	s := MustStartServer(t, nil)
	code, _ := s.MustRoom(t, sampleQuiz)
	h := s.MustDial(t, s.Admin+"&room="+code)
	if w := h.next(t, "welcome"); !strings.Contains(string(w.raw), `"room":"`+code+`","role":"host"`) {
		t.Fatalf("admin's welcome: got %s, want a host's of room %s", w.raw, code)
	}
	s.MustJoin(t, code, "ada")
	if j := h.next(t, "joined"); !strings.Contains(string(j.raw), `"name":"ada"`) {
		t.Fatalf("got %s, want ada's join", j.raw)
	}
	for _, tt := range []struct {
		query string
		want  int
	}{{"?token=" + s.Admin, http.StatusBadRequest}, {"?token=" + s.Admin + "&room=000000", http.StatusNotFound}} {
		if got, body := s.call(t, "GET", "/ws"+tt.query, "", nil, nil); got != tt.want {
			t.Errorf("GET /ws%s: got %d %s, want %d", strings.Replace(tt.query, s.Admin, "ADMIN", 1), got, body, tt.want)
		}
	}
}

// TestPresenterSeesNoAnswer: the presenter token (from the host's room state) opens a
// read-only socket: players appear as they join, answers are counted as they come, and
// not one frame before the close says what anyone answered or which answer is right;
// after the close the reveal does. The token can neither answer nor run the room.
func TestPresenterSeesNoAnswer(t *testing.T) {
	t.Parallel()
	s := MustStartServer(t, nil)
	code, host := s.MustRoom(t, sampleQuiz)
	room := "/api/rooms/" + code
	var state struct{ PresenterToken string }
	s.mustCall(t, 200, "GET", room, host, nil, &state)
	if !strings.HasPrefix(state.PresenterToken, code+".") {
		t.Fatalf("presenterToken: got %q, want the room code, a dot and the MAC", state.PresenterToken)
	}
	p := s.MustDial(t, state.PresenterToken)
	if w := p.next(t, "welcome"); !strings.Contains(string(w.raw), `"role":"presenter"`) || !strings.Contains(string(w.raw), `"title":"Networks","questions":3`) {
		t.Fatalf("presenter's welcome: got %s", w.raw)
	}
	var players []*wsClient
	for _, name := range []string{"ada", "bob", "cy"} {
		_, tok := s.MustJoin(t, code, name)
		c := s.MustDial(t, tok)
		c.next(t, "welcome")
		players = append(players, c)
		if j := p.next(t, "joined"); !strings.Contains(string(j.raw), `"name":"`+name+`"`) {
			t.Fatalf("got %s, want %s joining", j.raw, name)
		}
	}
	s.mustCall(t, http.StatusForbidden, "POST", room+"/questions/1/open", state.PresenterToken, nil, nil)
	p.send(t, map[string]any{"type": "answer", "n": 1, "choice": 2})
	if r := p.reply(t); r.Code != "forbidden" {
		t.Errorf("a presenter's answer: got %s, want forbidden", r.raw)
	}
	s.mustCall(t, 200, "POST", room+"/questions/1/open", host, nil, nil)
	s.mustCall(t, 200, "POST", room+"/questions/1/start", host, nil, nil)
	for i, c := range players {
		c.next(t, "start")
		c.send(t, map[string]any{"type": "answer", "n": 1, "choice": i % 3})
		c.reply(t)
	}
	s.mustCall(t, 200, "POST", room+"/questions/1/close", host, nil, nil)

	var before []string
	var tallies int
	for {
		f := p.await(t, "a frame", func(received) bool { return true })
		if f.Type == "close" {
			break
		}
		before = append(before, string(f.raw))
		if f.Type == "tally" {
			tallies++
		}
	}
	if tallies != 3 {
		t.Errorf("tallies before the close: got %d, want 3 in %v", tallies, before)
	}
	for _, f := range before {
		for _, leak := range []string{`"answer":`, `"correct"`, `"choice":`, `"rank"`, `"type":"answered"`, `"type":"result"`} {
			if strings.Contains(f, leak) {
				t.Errorf("before the close the presenter got %s, which has %s", f, leak)
			}
		}
	}
	rv := p.next(t, "reveal")
	var reveal struct {
		Answer  int
		Counts  []int
		Correct int
	}
	if err := json.Unmarshal(rv.raw, &reveal); err != nil || reveal.Answer != 2 || len(reveal.Counts) != 3 || reveal.Correct != 1 {
		t.Errorf("the reveal after the close: got %s, want answer 2, a count per choice, one right", rv.raw)
	}
	var lb struct{ Entries []struct{ Name string } }
	s.mustCall(t, 200, "GET", room+"/leaderboard", state.PresenterToken, nil, &lb)
	if len(lb.Entries) != 3 {
		t.Errorf("the presenter's leaderboard: got %+v, want 3 entries", lb.Entries)
	}
}

// TestFinishAndDeleteRoom: the host ends the quiz (everyone gets the podium, answers are
// refused) and deletes the room (players are removed with 4001, tokens die at once).
func TestFinishAndDeleteRoom(t *testing.T) {
	t.Parallel()
	s := MustStartServer(t, nil)
	code, host := s.MustRoom(t, sampleQuiz)
	room := "/api/rooms/" + code
	_, tok := s.MustJoin(t, code, "ada")
	c := s.MustDial(t, tok)
	c.next(t, "welcome")
	s.mustCall(t, 200, "POST", room+"/questions/1/open", host, nil, nil)
	s.mustCall(t, 200, "POST", room+"/questions/1/start", host, nil, nil)
	c.next(t, "start")
	var fin struct{ Phase string }
	s.mustCall(t, 200, "POST", room+"/finish", host, nil, &fin)
	if fin.Phase != "finished" {
		t.Errorf("finish: got phase %q, want finished", fin.Phase)
	}
	c.next(t, "close")
	if f := c.next(t, "finished"); !strings.Contains(string(f.raw), `"podium":[{`) {
		t.Errorf("got %s, want the podium", f.raw)
	}
	if st := c.next(t, "standing"); !strings.Contains(string(st.raw), `"final":true`) {
		t.Errorf("got %s, want ada's final standing", st.raw)
	}
	c.send(t, map[string]any{"type": "answer", "n": 1, "choice": 2})
	if r := c.reply(t); r.Code != "closed" {
		t.Errorf("an answer once finished: got %s, want closed", r.raw)
	}
	s.mustCall(t, http.StatusConflict, "POST", room+"/questions/2/open", host, nil, nil)

	s.mustCall(t, 200, "DELETE", room, host, nil, nil)
	if f := c.next(t, "removed"); !strings.Contains(string(f.raw), "deleted") {
		t.Errorf("got %s, want removed: the room deleted", f.raw)
	}
	select {
	case err := <-c.closed:
		if got := websocket.CloseStatus(err); got != 4001 {
			t.Errorf("the player's socket: got close %v, want 4001", got)
		}
	case <-time.After(5 * time.Second):
		t.Error("the player's socket was not closed")
	}
	s.mustCall(t, http.StatusUnauthorized, "GET", room, host, nil, nil)
	s.mustCall(t, http.StatusUnauthorized, "GET", room+"/leaderboard", tok, nil, nil)
}

// TestResultsExport: a row per player per question asked and the final board, as CSV in
// UTF-8 with a BOM (Excel then reads Korean names right) where a name that a spreadsheet
// would take for a formula is text, and as JSON.
func TestResultsExport(t *testing.T) {
	t.Parallel()
	s := MustStartServer(t, nil)
	code, host := s.MustRoom(t, sampleQuiz)
	room := "/api/rooms/" + code
	var clients []*wsClient
	for _, name := range []string{"김민준", "=HYPERLINK(1)"} {
		_, tok := s.MustJoin(t, code, name)
		c := s.MustDial(t, tok)
		c.next(t, "welcome")
		clients = append(clients, c)
	}
	s.mustCall(t, 200, "POST", room+"/questions/1/open", host, nil, nil)
	s.mustCall(t, 200, "POST", room+"/questions/1/start", host, nil, nil)
	clients[0].next(t, "start")
	clients[0].send(t, map[string]any{"type": "answer", "n": 1, "choice": 2})
	clients[0].reply(t)
	s.mustCall(t, 200, "POST", room+"/questions/1/close", host, nil, nil)

	status, raw := s.call(t, "GET", room+"/results.csv", host, nil, nil)
	if status != 200 {
		t.Fatalf("results.csv: got %d %s", status, raw)
	}
	text := string(raw)
	if !strings.HasPrefix(text, "\uFEFFquestion,question text,player,answer,correct,rank,points,seconds from start,submissions\r\n") {
		t.Fatalf("results.csv: got %q, want the BOM and the header first", text[:min(len(text), 120)])
	}
	lines := strings.Split(strings.TrimSpace(text), "\r\n")
	want := []string{
		"1,Which layer is TCP?,김민준,C: 4,yes,1,100,",
		"1,Which layer is TCP?,'=HYPERLINK(1),,,,0,,",
		"",
		"place,player,score",
		"1,김민준,100",
		"2,'=HYPERLINK(1),0",
	}
	if len(lines) != 1+len(want) {
		t.Fatalf("results.csv: got %q, want a header and %d lines", lines, len(want))
	}
	for i, w := range want {
		if got := lines[i+1]; !strings.HasPrefix(got, w) || w == "" && got != "" {
			t.Errorf("results.csv line %d: got %q, want it to begin %q", i+2, got, w)
		}
	}
	var js struct {
		Rows []struct {
			Name     string
			Answer   string
			Correct  bool
			Answered bool
		}
		Leaderboard []struct{ Name string }
	}
	s.mustCall(t, 200, "GET", room+"/results.json", host, nil, &js)
	if len(js.Rows) != 2 || js.Rows[0].Answer != "C: 4" || !js.Rows[0].Correct || js.Rows[1].Answered || len(js.Leaderboard) != 2 {
		t.Errorf("results.json: got %+v", js)
	}
	_, tok := s.MustJoin(t, code, "eve")
	s.mustCall(t, http.StatusForbidden, "GET", room+"/results.csv", tok, nil, nil)
}

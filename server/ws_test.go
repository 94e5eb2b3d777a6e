package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bulbquiz/bulb/internal/clocksync"
	"github.com/bulbquiz/bulb/protocol"
	"github.com/coder/websocket"
)

func TestFramesRefused(t *testing.T) {
	t.Parallel()
	s := MustStartServer(t, nil)
	code, host := s.MustRoom(t, sampleQuiz)
	room := "/api/rooms/" + code
	players := 0
	// player joins a new player: each takes at most five answer frames here, the rate limit
	player := func() *wsClient {
		players++
		_, token := s.MustJoin(t, code, fmt.Sprintf("mallory%d", players))
		c := s.MustDial(t, token)
		w := c.next(t, "welcome")
		if !strings.Contains(string(w.raw), `"room":"`+code+`"`) {
			t.Fatalf("got welcome %s, want room %s", w.raw, code)
		}
		return c
	}
	c := player()
	expect := func(t *testing.T, frame any, n int, code string) {
		t.Helper()
		c.send(t, frame)
		r := c.reply(t)
		if r.Type != "error" || r.Code != code {
			t.Fatalf("sent %v: got %s, want error %q", frame, r.raw, code)
		}
		var e struct{ Message string }
		if json.Unmarshal(r.raw, &e); e.Message == "" || (n > 0 && r.N != n) {
			t.Fatalf("sent %v: got %s, want a message about question %d", frame, r.raw, n)
		}
	}
	answer := func(n int, choice any) map[string]any {
		return map[string]any{"type": "answer", "n": n, "choice": choice}
	}

	expect(t, answer(1, 2), 1, "not_started")
	expect(t, `{"type":"answer","n":1,`, 0, "invalid")
	expect(t, `{"type":"shout"}`, 0, "invalid")
	expect(t, `[1,2,3]`, 0, "invalid")
	expect(t, `{"type":"answer","n":"one"}`, 0, "invalid")
	s.mustCall(t, 200, "POST", room+"/questions/1/open", host, nil, nil)
	c.next(t, "question")
	expect(t, answer(1, 2), 1, "not_started")
	s.mustCall(t, 200, "POST", room+"/questions/1/start", host, nil, nil)
	c.next(t, "start") // the bulb lit: answers count from now
	c = player()
	expect(t, answer(1, 7), 1, "invalid")
	expect(t, answer(1, -1), 1, "invalid")
	expect(t, map[string]any{"type": "answer", "n": 1, "text": "4"}, 1, "invalid")
	expect(t, map[string]any{"type": "answer", "n": 2, "text": "tcp"}, 2, "not_started")
	expect(t, answer(9, 0), 9, "not_found")
	c = player()

	// binary frames are refused, the socket stays open
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.c.Write(ctx, websocket.MessageBinary, []byte(`{"type":"answer"}`)); err != nil {
		t.Fatal(err)
	}
	if r := c.reply(t); r.Code != "invalid" {
		t.Fatalf("binary frame: got %s, want invalid", r.raw)
	}

	c.send(t, answer(1, 0))
	if r := c.reply(t); r.Type != "result" {
		t.Fatalf("a valid answer: got %s, want a result", r.raw)
	}
	expect(t, answer(1, 2), 1, "already_answered") // a second answer, even a right one
	// one second holds 5 answer frames: the two above and three more; the sixth is refused
	for range 3 {
		expect(t, answer(1, 2), 1, "already_answered")
	}
	expect(t, answer(1, 2), 1, "rate_limited")

	s.mustCall(t, 200, "POST", room+"/questions/1/close", host, nil, nil)
	time.Sleep(time.Second) // let the rate window pass
	expect(t, answer(1, 2), 1, "closed")

	// nothing refused changed the outcome: one answer, wrong, no points
	var answers struct {
		Answers []struct {
			Correct bool
			Points  int
		}
	}
	s.mustCall(t, 200, "GET", room+"/questions/1/answers", host, nil, &answers)
	if len(answers.Answers) != 1 || answers.Answers[0].Correct || answers.Answers[0].Points != 0 {
		t.Fatalf("got %+v, want the one wrong answer", answers.Answers)
	}

	// a text frame that is not UTF-8 closes the socket with 1007 (RFC 6455)
	bad := player()
	bad.send(t, "{\"type\":\"answer\",\"n\":1,\"text\":\"caf\xe9\"}")
	select {
	case err := <-bad.closed:
		if got := websocket.CloseStatus(err); got != websocket.StatusInvalidFramePayloadData {
			t.Fatalf("got close %v (%v), want 1007", got, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a frame of invalid UTF-8 did not close the socket")
	}

	// a frame over protocol.MaxFrame (512 KiB) closes the socket with 1009
	c.send(t, `{"type":"answer","text":"`+strings.Repeat("x", protocol.MaxFrame)+`"}`)
	select {
	case err := <-c.closed:
		if got := websocket.CloseStatus(err); got != websocket.StatusMessageTooBig {
			t.Fatalf("got close %v (%v), want 1009", got, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("oversized frame did not close the socket")
	}
}

// TestFloodDropped: a socket flooding frames just before a start is dropped with 1008,
// while the other players get the start promptly and their own frames, a burst of acks at
// connect (as a page's clock sync would send), acks and answers, are never refused.
func TestFloodDropped(t *testing.T) {
	t.Parallel()
	const honest = 20
	s := MustStartServer(t, nil)
	code, host := s.MustRoom(t, sampleQuiz)
	room := "/api/rooms/" + code
	players := make([]*wsClient, honest)
	for i := range players {
		_, token := s.MustJoin(t, code, fmt.Sprintf("honest%d", i))
		players[i] = s.MustDial(t, token)
		players[i].next(t, "welcome")
		for range 30 {
			players[i].send(t, `{"type":"ack","seq":0}`)
		}
	}
	_, token := s.MustJoin(t, code, "flooder")
	flooder := s.MustDial(t, token)
	flooder.next(t, "welcome")
	s.mustCall(t, 200, "POST", room+"/questions/1/open", host, nil, nil)
	for _, p := range players {
		p.next(t, "question")
	}

	// The flood: acks, which get no reply (a flood of frames that get one fills the
	// flooder's queue and is dropped as too slow), as fast as the socket takes them.
	var sent atomic.Int64
	stopped := make(chan struct{}) // the server dropped the flooder: its writes fail
	go func() {
		defer close(stopped)
		for flooder.c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"ack","seq":1}`)) == nil {
			sent.Add(1)
		}
	}()
	// The start goes out in the thick of the flood: once the flooder wrote 200 frames, or
	// as soon as the server dropped it, which a server that reads as fast as the flooder
	// writes does after twice its burst (40 allowed, 40 tolerated).
	for deadline := time.Now().Add(5 * time.Second); sent.Load() < 200; time.Sleep(time.Millisecond) {
		select {
		case <-stopped:
		default:
			if time.Now().After(deadline) {
				t.Fatalf("the flooder wrote %d frames in 5 s, want 200", sent.Load())
			}
			continue
		}
		if n := sent.Load(); n < 80 {
			t.Fatalf("the flooder was stopped after %d frames, want at least its burst and tolerance, 80", n)
		}
		break
	}
	began := time.Now()
	s.mustCall(t, 200, "POST", room+"/questions/1/start", host, nil, nil)
	var slowest time.Duration
	for i, p := range players {
		f := p.next(t, "start")
		slowest = max(slowest, f.at.Sub(began))
		p.send(t, map[string]any{"type": "ack", "seq": f.Seq})
		p.send(t, map[string]any{"type": "answer", "n": 1, "choice": i % 3})
		if r := p.reply(t); r.Type != "result" {
			t.Errorf("honest player %d's answer: got %s, want a result", i, r.raw)
		}
	}
	select {
	case err := <-flooder.closed:
		if got := websocket.CloseStatus(err); got != websocket.StatusPolicyViolation {
			t.Fatalf("flooder: got close %v (%v), want 1008", got, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("flooder still connected after 5 s")
	}
	// Without the hub's limit the flood delayed the start by over a second on two cores.
	if limit := time.Second / 2; slowest > limit {
		t.Errorf("slowest start after the start call began: got %v, want under %v", slowest, limit)
	}
	t.Logf("slowest start %v after the call", slowest.Round(time.Millisecond))
	for i, p := range players { // nothing an honest player sent was refused
	drain:
		for {
			select {
			case f := <-p.frames:
				if f.Code == "rate_limited" {
					t.Errorf("honest player %d: got %s", i, f.raw)
				}
			default:
				break drain
			}
		}
	}
}

func TestHostCannotAnswer(t *testing.T) {
	t.Parallel()
	s := MustStartServer(t, nil)
	code, host := s.MustRoom(t, sampleQuiz)
	h := s.MustDial(t, host)
	if w := h.next(t, "welcome"); !strings.Contains(string(w.raw), `"role":"host"`) {
		t.Fatalf("got %s, want a host welcome", w.raw)
	}
	s.mustCall(t, 200, "POST", "/api/rooms/"+code+"/questions/1/open", host, nil, nil)
	s.mustCall(t, 200, "POST", "/api/rooms/"+code+"/questions/1/start", host, nil, nil)
	h.send(t, map[string]any{"type": "answer", "n": 1, "choice": 2})
	if r := h.reply(t); r.Code != "forbidden" {
		t.Fatalf("host answer: got %s, want forbidden", r.raw)
	}
}

func TestReconnectKeepsIdentity(t *testing.T) {
	t.Parallel()
	s := MustStartServer(t, nil)
	code, host := s.MustRoom(t, sampleQuiz)
	room := "/api/rooms/" + code
	id, token := s.MustJoin(t, code, "ruth")
	first := s.MustDial(t, token)
	first.next(t, "welcome")
	s.mustCall(t, 200, "POST", room+"/questions/1/open", host, nil, nil)
	s.mustCall(t, 200, "POST", room+"/questions/1/start", host, nil, nil)
	first.next(t, "start")
	first.send(t, map[string]any{"type": "answer", "n": 1, "choice": 2})
	first.reply(t)

	second := s.MustDial(t, token)
	select {
	case err := <-first.closed:
		if got := websocket.CloseStatus(err); got != 4000 {
			t.Fatalf("older socket: got close %v, want 4000", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("older socket not closed")
	}
	w := second.next(t, "welcome")
	var welcome struct {
		PlayerID string
		Score    int
		Phase    string
		Question struct{ N int }
		Answered struct{ Rank, Points int }
	}
	if err := json.Unmarshal(w.raw, &welcome); err != nil {
		t.Fatal(err)
	}
	if welcome.PlayerID != id || welcome.Score != 100 || welcome.Phase != "live" || welcome.Question.N != 1 || welcome.Answered.Rank != 1 {
		t.Fatalf("got welcome %s, want player %s, score 100, live question 1 answered with rank 1", w.raw, id)
	}
	second.send(t, map[string]any{"type": "answer", "n": 1, "choice": 2})
	if r := second.reply(t); r.Type != "result" || r.Rank != 1 {
		t.Fatalf("the same answer again after reconnecting: got %s, want its result again, rank 1", r.raw)
	}
	second.send(t, map[string]any{"type": "answer", "n": 1, "choice": 0})
	if r := second.reply(t); r.Code != "already_answered" {
		t.Fatalf("another answer after reconnecting: got %s, want already_answered", r.raw)
	}
}

// TestManyClients runs 300 players on one in-process server: every one gets the start,
// concurrent answers get unique ranks, and answers sent in a known order rank in it.
func TestManyClients(t *testing.T) {
	t.Parallel()
	const n = 300
	s := MustStartServer(t, nil, "--join-rate", "0") // 300 joins from one address, at once
	quiz := `{"winners":[100,60,30],"questions":[
		{"kind":"choice","text":"a","choices":["x","y"],"answer":0},
		{"kind":"choice","text":"b","choices":["x","y"],"answer":1}]}`
	code, host := s.MustRoom(t, quiz)
	room := "/api/rooms/" + code
	clients := make([]*wsClient, n)
	ids := make([]string, n)
	for i := range clients {
		var token string
		ids[i], token = s.MustJoin(t, code, fmt.Sprintf("p%03d", i))
		clients[i] = s.MustDial(t, token)
	}
	for _, c := range clients {
		c.next(t, "welcome")
	}

	startAll := func(q int) uint64 {
		t.Helper()
		s.mustCall(t, 200, "POST", fmt.Sprintf("%s/questions/%d/open", room, q), host, nil, nil)
		var st struct {
			Seq        uint64
			Recipients int
		}
		s.mustCall(t, 200, "POST", fmt.Sprintf("%s/questions/%d/start", room, q), host, nil, &st)
		if st.Recipients != n {
			t.Fatalf("got %d recipients, want %d", st.Recipients, n)
		}
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Go(func() {
				f := c.next(t, "start")
				if f.Seq != st.Seq || f.N != q {
					t.Errorf("got start %s, want seq %d", f.raw, st.Seq)
				}
				c.send(t, map[string]any{"type": "ack", "seq": f.Seq})
			})
		}
		wg.Wait()
		return st.Seq
	}

	// question 1: everyone at once
	startAll(1)
	MustRaceAnswers(t, clients, 1)
	s.mustCall(t, 200, "POST", room+"/questions/1/close", host, nil, nil)

	// question 2: answers in a known order, each after the previous one's result
	startAll(2)
	order := make([]int, n)
	for i := range order {
		order[i] = (i * 7) % n // 7 and 300 are coprime: a permutation
	}
	for place, i := range order {
		clients[i].send(t, map[string]any{"type": "answer", "n": 2, "choice": 1})
		if r := clients[i].reply(t); r.Rank != place+1 {
			t.Fatalf("client %d answered %d-th: got %s, want rank %d", i, place+1, r.raw, place+1)
		}
	}
	var answers struct {
		Answers []struct {
			PlayerID   string
			Rank       int
			Points     int
			ReceivedAt time.Time
		}
	}
	s.mustCall(t, 200, "GET", room+"/questions/2/answers", host, nil, &answers)
	for place, a := range answers.Answers {
		if a.PlayerID != ids[order[place]] || a.Rank != place+1 || (place > 0 && a.ReceivedAt.Before(answers.Answers[place-1].ReceivedAt)) {
			t.Fatalf("answer %d: got %+v, want player %s ranked %d after the one before", place, a, ids[order[place]], place+1)
		}
	}
	if answers.Answers[0].Points != 100 || answers.Answers[2].Points != 30 || answers.Answers[3].Points != 0 {
		t.Fatalf("got points %d %d %d, want 100, 30, 0", answers.Answers[0].Points, answers.Answers[2].Points, answers.Answers[3].Points)
	}

	var fair struct {
		Starts []struct {
			Recipients, Acked int
			SpreadUs          int64
		}
	}
	s.mustCall(t, 200, "GET", room+"/fairness", host, nil, &fair)
	if len(fair.Starts) != 2 || fair.Starts[0].Recipients != n || fair.Starts[0].Acked != n {
		t.Fatalf("got fairness %+v, want 2 starts to %d players, all acked", fair.Starts, n)
	}
}

func TestShutdownClosesSockets(t *testing.T) {
	t.Parallel()
	s := MustStartServer(t, nil)
	code, _ := s.MustRoom(t, sampleQuiz)
	_, token := s.MustJoin(t, code, "sam")
	c := s.MustDial(t, token)
	c.next(t, "welcome")
	s.stop()
	select {
	case err := <-c.closed:
		if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
			t.Fatalf("got close %v (%v), want 1001 going away", got, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("socket still open after shutdown")
	}
}

// FuzzFrame sends arbitrary client frames to a live server: every frame that is not an ack
// gets exactly one reply, a result or an error, and the connection survives, unless the
// frame is not UTF-8, which closes it with 1007.
func FuzzFrame(f *testing.F) {
	for _, seed := range []string{
		`{"type":"answer","n":1,"choice":2}`, `{"type":"answer","n":1,"text":"tcp"}`, `{"type":"ack","seq":1}`,
		`{"type":"answer","n":-1}`, `{"type":"answer","n":1e99}`, `{"type":"answer","choice":null}`, `{}`, `null`, `"x"`,
		`{"type":"answer","n":1,"choice":2,"text":"both"}`, "\xff\xfe", `{"type":"ack","seq":-1}`, `{"type":"answer","n":2,"text":"` + strings.Repeat("é", 2000) + `"}`,
	} {
		f.Add([]byte(seed))
	}
	s := MustStartServer(f, nil, "--join-rate", "0") // a join per input, from one address
	code, host := s.MustRoom(f, sampleQuiz)
	s.mustCall(f, 200, "POST", "/api/rooms/"+code+"/questions/1/open", host, nil, nil)
	s.mustCall(f, 200, "POST", "/api/rooms/"+code+"/questions/1/start", host, nil, nil)
	players := 0
	f.Fuzz(func(t *testing.T, data []byte) {
		players++
		_, token := s.MustJoin(t, code, fmt.Sprintf("f%d", players))
		c := s.MustDial(t, token)
		c.next(t, "welcome")
		c.send(t, string(data))
		if !utf8.Valid(data) { // RFC 6455: it fails the connection with 1007
			select {
			case err := <-c.closed:
				if got := websocket.CloseStatus(err); got != websocket.StatusInvalidFramePayloadData {
					t.Fatalf("sent %q: got close %v (%v), want 1007", data, got, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("sent %q: socket still open, want it closed with 1007", data)
			}
			return
		}
		c.send(t, `{"type":"probe"}`) // its error marks the end of the replies to data
		var replies []received
		for {
			r := c.reply(t)
			if strings.Contains(string(r.raw), `"unknown frame type \"probe\""`) {
				break
			}
			replies = append(replies, r)
		}
		f, err := protocol.DecodeClient(data)
		isAck := err == nil && f.Type == protocol.TypeAck
		if isAck && len(replies) != 0 || !isAck && len(replies) != 1 {
			t.Fatalf("sent %q: got %d replies, want %d", data, len(replies), map[bool]int{true: 0, false: 1}[isAck])
		}
		c.c.Close(websocket.StatusNormalClosure, "")
	})
}

// TestAnswerBeforeTheBulb: under the synced reveal a client learns the start's instant
// before its bulb lights. An answer that arrives before that instant is refused with
// not_started and uses up nothing, whether false starts are counted or not (here they are
// off), and whether it comes on the socket that got the start or on a new one that
// connected after it (the welcome tells the instant too). After the instant it counts.
func TestAnswerBeforeTheBulb(t *testing.T) {
	t.Parallel()
	s := MustStartServer(t, nil)
	code, host := s.MustRoom(t, `{"title":"Early","falseStartMs":0,"questions":[
 {"kind":"choice","text":"1","choices":["a","b"],"answer":1},{"kind":"choice","text":"2","choices":["a","b"],"answer":1},
 {"kind":"choice","text":"3","choices":["a","b"],"answer":1},{"kind":"choice","text":"4","choices":["a","b"],"answer":1},
 {"kind":"choice","text":"5","choices":["a","b"],"answer":1}]}`)
	room := "/api/rooms/" + code
	_, token := s.MustJoin(t, code, "mallory")
	c := s.mustDialCheater(t, token)
	c.next(t, "welcome")
	// The reveal instant leaves at least 150 ms (the shortest lead) for the cheater to
	// answer, and to connect again: a question where the machine was too slow for that
	// proves nothing, and the next one tries again.
	early := func(sent, at time.Time) bool { return sent.Before(at.Add(-50 * time.Millisecond)) } // the server reads it by then
	reconnected := false
	for n := 1; n <= 5 && !reconnected; n++ {
		s.mustCall(t, 200, "POST", fmt.Sprintf("%s/questions/%d/open", room, n), host, nil, nil)
		s.mustCall(t, 200, "POST", fmt.Sprintf("%s/questions/%d/start", room, n), host, nil, nil)
		at := clocksync.Time(c.next(t, "start").RevealAt)
		c.send(t, map[string]any{"type": "answer", "n": n, "choice": 1})
		sent := time.Now()
		if r := c.reply(t); early(sent, at) && r.Code != "not_started" {
			t.Fatalf("question %d: an answer %v before the bulb lit: got %s, want not_started", n, at.Sub(sent), r.raw)
		}
		// A new socket got no start: it learns the instant from its welcome.
		c = s.mustDialCheater(t, token)
		c.next(t, "welcome")
		c.send(t, map[string]any{"type": "answer", "n": n, "choice": 1})
		sent = time.Now()
		r := c.reply(t)
		if early(sent, at) {
			if r.Code != "not_started" {
				t.Fatalf("question %d: an answer on a new socket %v before the bulb lit: got %s, want not_started", n, at.Sub(sent), r.raw)
			}
			reconnected = true
		}
		// Refused, it changed nothing: the player's answer after the bulb counts.
		time.Sleep(time.Until(at.Add(humanReaction)))
		c.send(t, map[string]any{"type": "answer", "n": n, "choice": 1})
		if r := c.reply(t); r.Type != "result" || r.Rank != 1 {
			if r.Code != "already_answered" || reconnected {
				t.Fatalf("question %d: the answer after the bulb: got %s, want rank 1", n, r.raw)
			}
		}
		s.mustCall(t, 200, "POST", fmt.Sprintf("%s/questions/%d/close", room, n), host, nil, nil)
	}
	if !reconnected {
		t.Fatal("in none of 5 questions did a new socket connect before the bulb lit: the machine is too slow for this test")
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/bulbquiz/bulb/internal/clocksync"
)

// crashQuiz is a code question, then choice questions whose first choice is right.
const crashQuiz = `{"winners":[100,60,30],"questions":[
 {"kind":"code","text":"Print a+b.","languages":["python"],"tests":[{"in":"1 2\n","out":"3\n"}],
  "timeLimitMs":2000,"memoryLimitMB":64,"checker":"tokens","points":100},
 {"kind":"choice","text":"q2","choices":["right","wrong"],"answer":0},
 {"kind":"choice","text":"q3","choices":["right","wrong"],"answer":0},
 {"kind":"choice","text":"q4","choices":["right","wrong"],"answer":0}]}`

// student is a test's student across the server's restarts: what it was told of its
// answers (result frames), and the connection of the moment.
type student struct {
	i         int
	id, token string

	mu      sync.Mutex
	results map[int]result // by question: the result frames it got
	welcome welcomeFrame   // the latest
}

// result is a result frame.
type result struct {
	N        int  `json:"n"`
	Accepted bool `json:"accepted"`
	Correct  bool `json:"correct"`
	Rank     int  `json:"rank"`
	Points   int  `json:"points"`
}

// welcomeFrame is the part of a welcome frame the test reads.
type welcomeFrame struct {
	Score    int    `json:"score"`
	Current  int    `json:"current"`
	Phase    string `json:"phase"`
	Answered *struct {
		Rank   int `json:"rank"`
		Points int `json:"points"`
	} `json:"answered"`
}

// play connects to the server at url and plays until the connection ends, as the page
// does: on a start it waits for the reveal instant and a person's reaction, then answers
// (the first choice, right, for even students); after a reconnect it answers a live
// question it has no result for. It returns once it has the welcome frame, reading on
// in the background until the connection drops; done is closed then.
func (s *student) play(tb testing.TB, url string) (done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(url, "http", "ws", 1)+"/ws?token="+s.token, nil)
	if err != nil {
		tb.Errorf("student %d: dial: %v", s.i, err)
		return nil
	}
	c.SetReadLimit(1 << 20)
	answer := func(n int) {
		b, _ := json.Marshal(map[string]any{"type": "answer", "n": n, "choice": s.i % 2})
		c.Write(context.Background(), websocket.MessageText, b) // a dead server: the reader sees it
	}
	welcomed := make(chan struct{})
	done = make(chan struct{})
	go func() {
		defer close(done)
		defer c.CloseNow()
		for {
			_, data, err := c.Read(context.Background())
			if err != nil {
				return
			}
			var f struct {
				Type string  `json:"type"`
				N    int     `json:"n"`
				At   float64 `json:"at"`
			}
			json.Unmarshal(data, &f)
			switch f.Type {
			case "welcome":
				var w welcomeFrame
				json.Unmarshal(data, &w)
				s.mu.Lock()
				s.welcome = w
				_, has := s.results[w.Current]
				s.mu.Unlock()
				close(welcomed)
				if w.Phase == "live" && w.Current > 1 && !has {
					answer(w.Current) // answered before the crash, the same answer gets its result
				}
			case "start":
				if f.N > 1 {
					go func() {
						jitter := rand.N(100 * time.Millisecond)
						time.Sleep(time.Until(clocksync.Time(f.At).Add(humanReaction + jitter)))
						answer(f.N)
					}()
				}
			case "result":
				var r result
				json.Unmarshal(data, &r)
				if r.Accepted && r.N > 1 {
					s.mu.Lock()
					s.results[r.N] = r
					s.mu.Unlock()
				}
			}
		}
	}()
	select {
	case <-welcomed:
	case <-done:
		tb.Errorf("student %d: the connection ended before its welcome", s.i)
	case <-time.After(10 * time.Second):
		tb.Errorf("student %d: no welcome within 10 s", s.i)
	}
	return done
}

// freeLoopback returns a loopback address no one listens on, for a server that must come
// back on the same address after a restart.
func freeLoopback(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestKilledMidQuiz kills the real server process (kill -9) three times in one quiz, each
// at a random moment while 300 students answer a question with a timed close scheduled
// and a code submission of an earlier question is being judged, and starts it again on
// the same data directory and address. Every answer whose result a student got is kept
// with its rank and points; ranks stay unique; the students reconnect with their tokens
// and keep their scores; the submission gets exactly one verdict; the timed close fires,
// once, at its time or at once on restart if it fell due while the server was down.
func TestKilledMidQuiz(t *testing.T) {
	mustSandbox(t)
	const students = 300
	dir, addr := t.TempDir(), freeLoopback(t)
	var env []string
	for k, v := range judgeEnv(t) {
		env = append(env, k+"="+v)
	}
	startServer := func() *node {
		http.DefaultClient.CloseIdleConnections() // those of the last process are dead
		return MustStartProcess(t, "bulb", env, nil, "--data", dir, "--addr", addr,
			"--join-rate", "0", "--conns-per-addr", "0", "--unknown-room-rate", "0")
	}
	srv := startServer()
	code, host := srv.MustRoom(t, crashQuiz)
	room := "/api/rooms/" + code
	class := make([]*student, students)
	for i := range class {
		id, token := srv.MustJoin(t, code, fmt.Sprint("s", i))
		class[i] = &student{i: i, id: id, token: token, results: map[int]result{}}
	}
	var conns []chan struct{}
	connect := func() {
		conns = conns[:0]
		for _, s := range class {
			conns = append(conns, s.play(t, srv.URL))
		}
	}
	connect()

	// Question 1: a submission that takes 3 s to judge, still judging when the server dies.
	_, adaToken := srv.MustJoin(t, code, "ada")
	ada := srv.MustDial(t, adaToken)
	ada.next(t, "welcome")
	srv.mustCall(t, 200, "POST", room+"/questions/1/open", host, nil, nil)
	srv.mustCall(t, 200, "POST", room+"/questions/1/start", host, nil, nil)
	ada.next(t, "start")
	sub := ada.submit(t, "python", "import time\ntime.sleep(3)\n"+pyRight)
	srv.mustCall(t, 200, "POST", room+"/questions/1/close", host, nil, nil)

	for n := 2; n <= 4; n++ {
		srv.mustCall(t, 200, "POST", room+fmt.Sprintf("/questions/%d/open", n), host, nil, nil)
		srv.mustCall(t, 200, "POST", room+fmt.Sprintf("/questions/%d/start", n), host, nil, nil)
		closeAt := time.Now().Add(time.Second + rand.N(1500*time.Millisecond))
		srv.mustCall(t, 202, "POST", room+fmt.Sprintf("/questions/%d/close", n), host, map[string]any{"at": closeAt.Format(time.RFC3339Nano)}, nil)
		time.Sleep(rand.N(2 * time.Second)) // before, while or after they answer, before or after the close
		srv.kill(t)
		for _, done := range conns {
			if done != nil {
				<-done
			}
		}
		t.Logf("question %d: killed %v before the timed close", n, time.Until(closeAt).Round(time.Millisecond))
		srv = startServer()
		connect()
		var r struct{ Phase string }
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			srv.mustCall(t, 200, "GET", room, host, nil, &r)
			if r.Phase == "closed" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("question %d: still %s 10 s after the restart; its timed close was due at %v", n, r.Phase, closeAt)
			}
		}
		if now := time.Now(); now.Before(closeAt) {
			t.Fatalf("question %d closed at %v, before its time %v", n, now, closeAt)
		}
		mustKeptEveryResult(t, srv, host, room, n, class)
	}

	// The submission: judged again after the first restart, one verdict.
	var answers struct{ Answers []answerJSON }
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		srv.mustCall(t, 200, "GET", room+"/questions/1/answers", host, nil, &answers)
		if len(answers.Answers) == 1 && answers.Answers[0].Verdict != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("question 1: %+v 30 s on, want submission %d judged", answers.Answers, sub)
		}
	}
	if v := answers.Answers[0]; v.Verdict.Verdict != "AC" || v.ArrivalRank != sub || v.Rank != 1 {
		t.Fatalf("question 1: %+v, want submission %d accepted, ranked 1", v, sub)
	}
	var board struct {
		Entries []struct {
			PlayerID string `json:"playerId"`
			Name     string `json:"name"`
			Score    int    `json:"score"`
		} `json:"entries"`
	}
	srv.mustCall(t, 200, "GET", room+"/leaderboard", host, nil, &board)
	for _, e := range board.Entries {
		if e.Name == "ada" && e.Score != 100 {
			t.Fatalf("ada's score: %d, want the 100 points of her one accepted submission", e.Score)
		}
	}

	// Scores: each student's, as its welcome says, is the sum of the points of its
	// answers as the server keeps them.
	connect()
	points := map[string]int{}
	for n := 2; n <= 4; n++ {
		srv.mustCall(t, 200, "GET", room+fmt.Sprintf("/questions/%d/answers", n), host, nil, &answers)
		for _, a := range answers.Answers {
			points[a.PlayerID] += a.Points
		}
	}
	for _, s := range class {
		s.mu.Lock()
		got := s.welcome.Score
		s.mu.Unlock()
		if got != points[s.id] {
			t.Errorf("student %d: score %d after the restart, want %d, the sum of its kept answers", s.i, got, points[s.id])
		}
	}
}

// answerJSON is an Answer as GET …/answers gives it.
type answerJSON struct {
	PlayerID    string `json:"playerId"`
	Correct     bool   `json:"correct"`
	Rank        int    `json:"rank"`
	ArrivalRank int    `json:"arrivalRank"`
	Points      int    `json:"points"`
	Verdict     *struct {
		Verdict string `json:"verdict"`
	} `json:"verdict"`
}

// mustKeptEveryResult checks question n's answers after a restart: every result a student
// was told is there with the same rank and points, each student answered once, and the
// right answers hold ranks 1..k once each in arrival order.
func mustKeptEveryResult(t *testing.T, srv *node, host, room string, n int, class []*student) {
	t.Helper()
	var answers struct{ Answers []answerJSON }
	srv.mustCall(t, 200, "GET", room+fmt.Sprintf("/questions/%d/answers", n), host, nil, &answers)
	kept := map[string]answerJSON{}
	var ranks []int
	for _, a := range answers.Answers {
		if _, dup := kept[a.PlayerID]; dup {
			t.Fatalf("question %d: player %s answered twice", n, a.PlayerID)
		}
		kept[a.PlayerID] = a
		if a.Correct {
			ranks = append(ranks, a.Rank)
		}
	}
	slices.Sort(ranks)
	for i, r := range ranks {
		if r != i+1 {
			t.Fatalf("question %d: ranks %v, want 1..%d once each", n, ranks, len(ranks))
		}
	}
	told := 0
	for _, s := range class {
		s.mu.Lock()
		r, ok := s.results[n]
		s.mu.Unlock()
		if !ok {
			continue
		}
		told++
		a, in := kept[s.id]
		if !in || a.Rank != r.Rank || a.Points != r.Points || a.Correct != r.Correct {
			t.Errorf("question %d, student %d: told %+v, the server keeps %+v (kept: %v)", n, s.i, r, a, in)
		}
	}
	t.Logf("question %d: %d answers kept, %d results told, %d ranked", n, len(kept), told, len(ranks))
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulbquiz/bulb/internal/redistest"
)

// outcome is what a player was told about one answer.
type outcome struct {
	Correct bool `json:"correct"`
	Rank    int  `json:"rank"`
	Points  int  `json:"points"`
}

// answerUntilDone sends an answer frame and reads the reply; on an unavailable error it
// sends the same answer again, up to a deadline. Answers are idempotent: if an earlier try
// was stored but its reply lost, the retry gets that stored result. It returns the
// accepted result; any other reply fails the test.
func answerUntilDone(tb testing.TB, c *wsClient, n, choice int) (res outcome, tries int) {
	tb.Helper()
	deadline := time.Now().Add(recoverWithin + 3*time.Second)
	for {
		tries++
		c.send(tb, map[string]any{"type": "answer", "n": n, "choice": choice})
		r := c.reply(tb)
		switch {
		case r.Type == "result":
			if err := json.Unmarshal(r.raw, &res); err != nil {
				tb.Fatal(err)
			}
			return res, tries
		case r.Code != "unavailable":
			tb.Fatalf("answer to question %d (try %d): got %s, want a result, or unavailable to retry", n, tries, r.raw)
		case time.Now().After(deadline):
			tb.Fatalf("answer to question %d: still unavailable after %d tries", n, tries)
		}
		time.Sleep(250 * time.Millisecond) // stays within the 5 answers a second
	}
}

// subscribers counts the subscriptions to every channel of the server, whatever its name.
func subscribers(ctx context.Context, rdb *redis.Client) (int64, error) {
	channels, err := rdb.PubSubChannels(ctx, "*").Result()
	if err != nil || len(channels) == 0 {
		return 0, err
	}
	counts, err := rdb.PubSubNumSub(ctx, channels...).Result()
	var sum int64
	for _, n := range counts {
		sum += n
	}
	return sum, err
}

// TestDurabilityRedisRestart restarts Redis (append-only file, fsync always) in the middle
// of a live question served by two node processes, while players on both nodes answer.
// Every answer a player was told was accepted (a result frame) survives with the same rank
// and points, and so do the scores; an answer refused as unavailable is accepted when sent
// again; no WebSocket closes; and the nodes reconnect by themselves, pub/sub included: the
// next question's start reaches the players on both nodes.
func TestDurabilityRedisRestart(t *testing.T) {
	t.Parallel()
	const (
		players = 16
		before  = 4  // players 0..3 answer before the restart
		racing  = 12 // players 4..11 answer while Redis restarts; the rest after
	)
	srv := redistest.Start(t, redistest.WithAOF())
	rdb := srv.Client(t)
	nodes := []*node{MustStartNode(t, srv.URL(), "d1"), MustStartNode(t, srv.URL(), "d2")}
	winners := make([]int, players) // distinct points for every rank
	for i := range winners {
		winners[i] = 10 * (players - i)
	}
	quizJSON, _ := json.Marshal(map[string]any{"winners": winners, "questions": []map[string]any{
		{"kind": "choice", "text": "a", "choices": []string{"x", "y"}, "answer": 0},
		{"kind": "choice", "text": "b", "choices": []string{"x", "y"}, "answer": 1},
	}})
	code, host := nodes[0].MustRoom(t, string(quizJSON))
	room := "/api/rooms/" + code
	clients := make([]*wsClient, players)
	ids := make([]string, players)
	for i := range clients {
		n := nodes[i%2]
		var token string
		ids[i], token = n.MustJoin(t, code, fmt.Sprintf("p%02d", i))
		clients[i] = n.MustDial(t, token)
	}
	for _, c := range clients {
		c.next(t, "welcome")
	}
	nodes[0].mustCall(t, 200, "POST", room+"/questions/1/open", host, nil, nil)
	nodes[1].mustCall(t, 200, "POST", room+"/questions/1/start", host, nil, nil)
	for _, c := range clients {
		c.next(t, "start")
	}
	subs, err := subscribers(context.Background(), rdb)
	if err != nil || subs < 2 {
		t.Fatalf("subscriptions before the restart: got %d, %v; want one per node at least", subs, err)
	}

	// Question 1: every fourth player answers wrong.
	choice := func(i int) int {
		if i%4 == 3 {
			return 1
		}
		return 0
	}
	told := make([]outcome, players) // what each player was told
	var mu sync.Mutex
	answer := func(i int, duringRestart bool) {
		res, tries := answerUntilDone(t, clients[i], 1, choice(i))
		mu.Lock()
		defer mu.Unlock()
		told[i] = res
		switch {
		case tries > 1 && !duringRestart:
			t.Errorf("p%02d: needed %d tries with Redis up", i, tries)
		case tries > 1:
			t.Logf("p%02d: accepted on try %d", i, tries)
		}
	}
	for i := range before {
		answer(i, false)
	}
	var wg sync.WaitGroup
	began := time.Now()
	for i := before; i < racing; i++ {
		wg.Go(func() {
			time.Sleep(time.Duration(i-before) * 20 * time.Millisecond)
			answer(i, true)
		})
	}
	time.Sleep(30 * time.Millisecond)
	srv.Restart(t)
	t.Logf("Redis restarted %v after the racing answers began", time.Since(began).Round(time.Millisecond))
	wg.Wait()

	// Both nodes serve and are subscribed again, by themselves.
	for _, n := range nodes {
		t.Logf("node serving %v after the answers", MustHealthy(t, &n.testServer).Round(time.Millisecond))
	}
	deadline := time.Now().Add(recoverWithin)
	for {
		got, err := subscribers(context.Background(), rdb)
		if err == nil && got == subs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscriptions after the restart: got %d, %v; want %d as before within %v", got, err, subs, recoverWithin)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := racing; i < players; i++ {
		answer(i, false)
	}

	// Every answer is there once, with what its player was told, seen alike from both nodes.
	type answer1 struct {
		PlayerID    string `json:"playerId"`
		ArrivalRank int    `json:"arrivalRank"`
		outcome
	}
	var got []answer1
	for k, n := range nodes {
		var list struct{ Answers []answer1 }
		n.mustCall(t, 200, "GET", room+"/questions/1/answers", host, nil, &list)
		if k > 0 && fmt.Sprint(list.Answers) != fmt.Sprint(got) {
			t.Fatalf("nodes disagree on the answers:\n%v\n%v", got, list.Answers)
		}
		got = list.Answers
	}
	if len(got) != players {
		t.Fatalf("got %d answers, want %d: %v", len(got), players, got)
	}
	var ranks, arrivals []int
	seen := make([]bool, players)
	for _, a := range got {
		i := slices.Index(ids, a.PlayerID)
		if i < 0 {
			t.Fatalf("answer of unknown player %s", a.PlayerID)
		}
		if seen[i] {
			t.Errorf("p%02d answered twice: %v", i, got)
		}
		seen[i] = true
		if a.outcome != told[i] {
			t.Errorf("p%02d: stored %+v, but was told %+v", i, a.outcome, told[i])
		}
		if a.Correct != (choice(i) == 0) {
			t.Errorf("p%02d: stored correct=%v for choice %d", i, a.Correct, choice(i))
		}
		if a.Correct {
			ranks = append(ranks, a.Rank)
		}
		arrivals = append(arrivals, a.ArrivalRank)
	}
	slices.Sort(ranks)
	slices.Sort(arrivals)
	for i, r := range ranks {
		if r != i+1 {
			t.Errorf("ranks of correct answers: got %v, want 1..%d each once", ranks, len(ranks))
			break
		}
	}
	for i, r := range arrivals {
		if r != i+1 {
			t.Errorf("arrival ranks: got %v, want 1..%d each once", arrivals, players)
			break
		}
	}

	// The next question goes through both nodes: close, open and start from different
	// nodes reach the players of both.
	nodes[1].mustCall(t, 200, "POST", room+"/questions/1/close", host, nil, nil)
	nodes[0].mustCall(t, 200, "POST", room+"/questions/2/open", host, nil, nil)
	for _, c := range clients {
		c.next(t, "close")
		if q := c.next(t, "question"); q.N != 2 {
			t.Fatalf("got question %d, want 2", q.N)
		}
	}
	var st struct {
		Seq        uint64
		Recipients int
	}
	nodes[1].mustCall(t, 200, "POST", room+"/questions/2/start", host, nil, &st)
	if st.Recipients != players {
		t.Errorf("start after the restart: got %d recipients, want %d over both nodes", st.Recipients, players)
	}
	for i, c := range clients {
		if f := c.next(t, "start"); f.N != 2 || f.Seq != st.Seq {
			t.Fatalf("p%02d on node %d: got %s, want the start of question 2 with seq %d", i, i%2+1, f.raw, st.Seq)
		}
	}
	want := map[string]int{}
	for i, o := range told {
		want[ids[i]] = o.Points
	}
	for i := range 4 { // two players on each node
		res, _ := answerUntilDone(t, clients[i], 2, 1)
		if res.Rank == 0 {
			t.Fatalf("p%02d's answer to question 2: got %+v, want accepted and ranked", i, res)
		}
		want[ids[i]] += res.Points
	}

	var board struct {
		Entries []struct {
			PlayerID string `json:"playerId"`
			Score    int    `json:"score"`
		}
	}
	nodes[0].mustCall(t, 200, "GET", room+"/leaderboard", host, nil, &board)
	gotScores := map[string]int{}
	for _, e := range board.Entries {
		gotScores[e.PlayerID] = e.Score
	}
	if !maps.Equal(gotScores, want) {
		t.Errorf("scores: got %v, want %v", gotScores, want)
	}

	for i, c := range clients {
		select {
		case err := <-c.closed:
			t.Errorf("p%02d's socket closed: %v", i, err)
		default:
		}
	}
}

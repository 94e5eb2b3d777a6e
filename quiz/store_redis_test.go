package quiz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulbquiz/bulb/internal/redistest"
	"github.com/bulbquiz/bulb/protocol"
)

func TestRedisStore(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	var stores atomic.Int64
	testStore(t, func(*testing.T) Store {
		// a prefix of its own: a fresh, empty store on the same server
		return NewRedisStore(rdb, fmt.Sprintf("test%d:", stores.Add(1)))
	})
}

// TestRedisAward checks that award.lua gives the points of Scoring.Award, to the point.
func TestRedisAward(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	script := redis.NewScript(awardLua + "return award(cjson.decode(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))")
	lua := func(t *testing.T, sc Scoring, rank int, elapsedUs int64) int {
		t.Helper()
		b := mustJSON(t, redisScoringOf(sc))
		got, err := script.Run(ctx, rdb, nil, b, rank, elapsedUs).Int()
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	firstCome := Scoring{Winners: []int{100, 60, 30}}
	speed := func(points int, limit time.Duration) Scoring {
		return Scoring{Speed: true, Points: points, TimeLimit: limit}
	}
	for _, tc := range []struct {
		name string
		sc   Scoring
		rank int
		t    time.Duration
		want int
	}{
		{"first-come rank 1", firstCome, 1, time.Second, 100},
		{"first-come rank 3", firstCome, 3, time.Second, 30},
		{"first-come past the winners", firstCome, 4, 0, 0},
		{"first-come rank 0", firstCome, 0, 0, 0},
		{"first-come no winners", Scoring{}, 1, 0, 0},
		{"speed at once", speed(100, 20*time.Second), 7, 0, 100},
		{"speed just under 0.5 s", speed(100, 20*time.Second), 1, 500*time.Millisecond - time.Microsecond, 100},
		{"speed at 0.5 s", speed(100, 20*time.Second), 1, 500 * time.Millisecond, 99}, // 98.75
		{"speed at 0.5 s, T 1 s", speed(100, time.Second), 1, 500 * time.Millisecond, 75},
		{"speed at T/2", speed(100, 20*time.Second), 1, 10 * time.Second, 75},
		{"speed just under T", speed(100, 20*time.Second), 1, 20*time.Second - time.Microsecond, 50},
		{"speed at T", speed(100, 20*time.Second), 1, 20 * time.Second, 50},
		{"speed past T", speed(100, 20*time.Second), 1, 25 * time.Second, 50},
		{"speed an hour past T", speed(100, time.Second), 1, time.Hour, 50},
		{"half rounds up: 0.5", speed(1, time.Second), 1, time.Second, 1},
		{"half rounds up: 1.5", speed(3, time.Second), 1, time.Second, 2},
		{"half rounds up: 50.5", speed(101, time.Second), 1, 2 * time.Second, 51},
		{"half rounds up: 1.5 at T/2", speed(2, 4*time.Second), 1, 2 * time.Second, 2},
		{"half rounds up: 499999.5", speed(999_999, time.Second), 1, time.Second, 500_000},
		{"quarter rounds down: 5.25", speed(7, 2*time.Second), 1, time.Second, 5},
		{"largest P and T", speed(1_000_000, time.Hour), 1, time.Hour/3 + time.Microsecond, 833_333},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.sc.Award(tc.rank, tc.t); got != tc.want {
				t.Errorf("Go: got %d points, want %d", got, tc.want)
			}
			if got := lua(t, tc.sc, tc.rank, tc.t.Microseconds()); got != tc.want {
				t.Errorf("Lua: got %d points, want %d", got, tc.want)
			}
		})
	}

	t.Run("random speed cases", func(t *testing.T) {
		type sample struct {
			sc  Scoring
			t   time.Duration
			cmd *redis.Cmd
		}
		rng := rand.New(rand.NewPCG(1, 2))
		samples := make([]sample, 2000)
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := range samples {
				sc := speed(1+rng.IntN(maxPoints), time.Duration(minTimeLimitMs+rng.IntN(maxTimeLimitMs-minTimeLimitMs+1))*time.Millisecond)
				us := rng.Int64N(int64(sc.TimeLimit/time.Microsecond) * 5 / 4)
				samples[i] = sample{sc: sc, t: time.Duration(us) * time.Microsecond, cmd: script.Run(ctx, p, nil, mustJSON(t, redisScoringOf(sc)), 1, us)}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range samples {
			got, err := s.cmd.Int()
			if want := s.sc.Award(1, s.t); err != nil || got != want {
				t.Fatalf("P %d, T %s, t %s: Lua got %d (%v), Go %d", s.sc.Points, s.sc.TimeLimit, s.t, got, err, want)
			}
		}
	})
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// TestRedisStoreUnavailable checks that with Redis gone every call fails fast with
// Unavailable. The client here gives up after one retry of one quick dial; the server
// should configure its client in the same spirit: DialTimeout and Read/WriteTimeout about
// 1 s, MaxRetries 1, DialerRetries 1, PoolTimeout 1 s, so that a request never waits on a
// dead Redis for more than a few seconds.
func TestRedisStoreUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	opt, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = 200*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond
	opt.MaxRetries, opt.DialerRetries = 1, 1
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })

	ctx := context.Background()
	s := NewRedisStore(rdb, "")
	qz := validQuiz()
	if err := qz.Normalize(); err != nil {
		t.Fatal(err)
	}
	r := &Room{Code: "123456", HostToken: Token(), Quiz: qz, Phase: PhaseLobby, CreatedAt: time.Now()}
	if err := s.CreateRoom(ctx, r); err != nil {
		t.Fatal(err)
	}
	p := Player{ID: "p1", Name: "alice", Token: Token()}
	if err := s.AddPlayer(ctx, r.Code, p); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Quiz(ctx, r.Code); err != nil { // cached from now on: the rest must still fail
		t.Fatal(err)
	}
	srv.Stop()

	cold := NewRedisStore(rdb, "") // nothing cached
	a := protocol.Answer{N: 1, PlayerID: p.ID, Correct: true}
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"CreateRoom", func() error {
			return s.CreateRoom(ctx, &Room{Code: "654321", HostToken: Token(), Quiz: qz, Phase: PhaseLobby})
		}},
		{"Room", func() error { _, err := s.Room(ctx, r.Code); return err }},
		{"Quiz", func() error { _, err := cold.Quiz(ctx, r.Code); return err }},
		{"Rooms", func() error { _, err := s.Rooms(ctx); return err }},
		{"AddPlayer", func() error { return s.AddPlayer(ctx, r.Code, Player{ID: "p2", Name: "bob", Token: Token()}) }},
		{"Identify", func() error { _, err := s.Identify(ctx, p.Token); return err }},
		{"Update", func() error {
			_, err := s.Update(ctx, r.Code, func(r *Room) error { r.Current++; return nil })
			return err
		}},
		{"Accept", func() error { _, _, err := s.Accept(ctx, r.Code, a, ScoringFor(qz, 1)); return err }},
		{"Finalize", func() error { return s.Finalize(ctx, r.Code, 1, nil) }},
		{"Answers", func() error { _, err := s.Answers(ctx, r.Code, 1); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := tc.call()
			took := time.Since(start)
			if ErrorCode(err) != protocol.Unavailable || ErrorMessage(err) != "storage unavailable" {
				t.Fatalf("got %v, want an unavailable error", err)
			}
			if took > 2*time.Second {
				t.Fatalf("took %s, want at most 2s", took)
			}
			t.Logf("%s in %s", err, took.Round(time.Millisecond))
		})
	}
}

// TestRedisStoreTwoNodes checks first-come ranking across nodes: two stores with clients
// of their own ("two servers") on one Redis accept 500 concurrent answers to one question.
func TestRedisStoreTwoNodes(t *testing.T) {
	srv := redistest.Start(t)
	nodes := []Store{NewRedisStore(srv.Client(t), ""), NewRedisStore(srv.Client(t), "")}
	ctx := context.Background()
	qz := validQuiz()
	qz.Winners = []int{100, 60, 30}
	if err := qz.Normalize(); err != nil {
		t.Fatal(err)
	}
	r := &Room{Code: "482913", HostToken: Token(), Quiz: qz, Phase: PhaseLobby, CreatedAt: time.Now()}
	if err := nodes[0].CreateRoom(ctx, r); err != nil {
		t.Fatal(err)
	}
	const players = 500
	ps := make([]Player, players)
	for i := range ps {
		ps[i] = Player{ID: fmt.Sprintf("id%04d", i), Name: fmt.Sprintf("p%04d", i), Token: Token()}
		if err := nodes[i%2].AddPlayer(ctx, r.Code, ps[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := nodes[1].Update(ctx, r.Code, func(r *Room) error {
		r.Current, r.Phase, r.StartedAt = 1, PhaseLive, time.Now()
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	sc := ScoringFor(qz, 1)
	results := make([]protocol.Answer, players)
	errs := make([]error, players)
	ready := make(chan struct{})
	var wg sync.WaitGroup
	for i := range ps {
		wg.Go(func() {
			<-ready
			a := protocol.Answer{N: 1, PlayerID: ps[i].ID, Correct: i%3 != 0, Response: protocol.Response{Choice: intp(i % 3)}}
			results[i], _, errs[i] = nodes[i%2].Accept(ctx, r.Code, a, sc)
			// the other node must refuse the same player's second, different answer
			a.Response = protocol.Response{Text: "second"}
			if _, _, err := nodes[(i+1)%2].Accept(ctx, r.Code, a, sc); ErrorCode(err) != protocol.AlreadyAnswered {
				t.Errorf("second answer of %s: got %v, want already_answered", ps[i].Name, err)
			}
		})
	}
	close(ready)
	wg.Wait()

	total := mustRaceRanks(t, results, errs)
	for i, node := range nodes {
		room, err := node.Room(ctx, r.Code)
		if err != nil {
			t.Fatal(err)
		}
		scores := 0
		for _, p := range room.Players {
			scores += p.Score
		}
		answers, err := node.Answers(ctx, r.Code, 1)
		if err != nil {
			t.Fatal(err)
		}
		if total != 190 || scores != 190 || len(answers) != players || len(room.Players) != players {
			t.Fatalf("node %d: got %d points awarded, %d in scores, %d answers, %d players; want 190, 190, %d, %d",
				i, total, scores, len(answers), len(room.Players), players, players)
		}
	}
}

// TestRedisStoreRestart checks that a room, its players and answers survive a restart of
// Redis with the append-only file on, and that a store keeps working across it.
func TestRedisStoreRestart(t *testing.T) {
	srv := redistest.Start(t, redistest.WithAOF())
	s := NewRedisStore(srv.Client(t), "")
	ctx := context.Background()
	qz := validQuiz()
	if err := qz.Normalize(); err != nil {
		t.Fatal(err)
	}
	r := &Room{Code: "100200", HostToken: Token(), Quiz: qz, Phase: PhaseLobby, CreatedAt: time.Now()}
	if err := s.CreateRoom(ctx, r); err != nil {
		t.Fatal(err)
	}
	p := Player{ID: "p1", Name: "alice", Token: Token(), JoinedAt: time.Now()}
	if err := s.AddPlayer(ctx, r.Code, p); err != nil {
		t.Fatal(err)
	}
	startedAt := time.Now()
	if _, err := s.Update(ctx, r.Code, func(r *Room) error {
		r.Current, r.Phase, r.StartedAt = 1, PhaseLive, startedAt
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want, _, err := s.Accept(ctx, r.Code, protocol.Answer{N: 1, PlayerID: p.ID, Response: protocol.Response{Choice: intp(2)}, Correct: true}, ScoringFor(qz, 1))
	if err != nil {
		t.Fatal(err)
	}

	srv.Restart(t)

	room, err := s.Room(ctx, r.Code)
	if err != nil {
		t.Fatal(err)
	}
	if room.Phase != PhaseLive || room.Current != 1 || !room.StartedAt.Equal(startedAt.Truncate(time.Microsecond)) ||
		len(room.Players) != 1 || room.Players[0].Score != 100 || room.Version != 2 {
		t.Fatalf("after a restart: got room %+v, want question 1 live, alice with 100 points, version 2", room)
	}
	answers, err := s.Answers(ctx, r.Code, 1)
	if err != nil || len(answers) != 1 || answers[0].Rank != 1 || !answers[0].ReceivedAt.Equal(want.ReceivedAt) || *answers[0].Response.Choice != 2 {
		t.Fatalf("after a restart: got answers %+v %v, want %+v", answers, err, want)
	}
	if id, err := s.Identify(ctx, p.Token); err != nil || id.PlayerID != p.ID {
		t.Fatalf("after a restart: got identity %+v %v, want player %s", id, err, p.ID)
	}
}

// TestRedisStoreQuizEditAcrossNodes edits a quiz on one node while another has the old
// one cached: the other's answers marked by the old quiz are refused, and it reads the new.
func TestRedisStoreQuizEditAcrossNodes(t *testing.T) {
	srv := redistest.Start(t)
	a, b := NewRedisStore(srv.Client(t), ""), NewRedisStore(srv.Client(t), "")
	ctx := context.Background()
	qz := validQuiz()
	if err := qz.Normalize(); err != nil {
		t.Fatal(err)
	}
	r := &Room{Code: "123456", HostToken: Token(), Quiz: qz, Phase: PhaseLobby, CreatedAt: time.Now()}
	if err := a.CreateRoom(ctx, r); err != nil {
		t.Fatal(err)
	}
	p := Player{ID: "p1", Name: "pat", Token: Token()}
	if err := a.AddPlayer(ctx, r.Code, p); err != nil {
		t.Fatal(err)
	}
	cached, err := b.Quiz(ctx, r.Code) // b caches version 0
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Update(ctx, r.Code, func(r *Room) error {
		r.Quiz.Questions[0].Answer = intp(0) // the right choice is now 0
		r.Quiz.Version++
		r.Current, r.Phase, r.StartedAt = 1, PhaseLive, time.Now()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Accept(ctx, r.Code, protocol.Answer{N: 1, PlayerID: p.ID, Correct: true}, ScoringFor(cached, 1)); !errors.Is(err, ErrStaleQuiz) {
		t.Fatalf("b's answer judged by its cached quiz: got %v, want ErrStaleQuiz", err)
	}
	fresh, err := b.Quiz(ctx, r.Code)
	if err != nil || fresh.Version != 1 || *fresh.Questions[0].Answer != 0 {
		t.Fatalf("b's quiz after the refusal: got v%d answer %v, %v; want v1 with answer 0", fresh.Version, fresh.Questions[0].Answer, err)
	}
	room, err := b.Room(ctx, r.Code)
	if err != nil || room.Quiz.Version != 1 {
		t.Fatalf("b's room: got quiz v%d, %v; want v1", room.Quiz.Version, err)
	}
}

// TestRedisStoreRemovalLeavesNoTrace: a removed player's keys and fields are gone, even
// when the removal races a verdict that would rank the player and add to its score.
func TestRedisStoreRemovalLeavesNoTrace(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	s := NewRedisStore(rdb, "")
	ctx := context.Background()
	qz := Quiz{Winners: []int{300}, Questions: []Question{codeQuestion()}}
	if err := qz.Normalize(); err != nil {
		t.Fatal(err)
	}
	sc := ScoringFor(qz, 1)
	for i := range 30 {
		r := &Room{Code: fmt.Sprintf("%06d", 100000+i), HostToken: Token(), Quiz: qz, Phase: PhaseLobby, CreatedAt: time.Now()}
		if err := s.CreateRoom(ctx, r); err != nil {
			t.Fatal(err)
		}
		p := Player{ID: "p1", Name: "Ｍallory", Token: Token()}
		if err := s.AddPlayer(ctx, r.Code, p); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Update(ctx, r.Code, func(r *Room) error { r.Current, r.Phase, r.StartedAt = 1, PhaseLive, time.Now(); return nil }); err != nil {
			t.Fatal(err)
		}
		a, _, err := s.Accept(ctx, r.Code, protocol.Answer{N: 1, PlayerID: p.ID, Response: protocol.Response{Language: "c", Source: "x"}}, sc)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := s.RemovePlayer(ctx, r.Code, p.ID); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if _, _, err := s.Verdict(ctx, r.Code, 1, a.ArrivalRank, protocol.Verdict{Verdict: protocol.AC}, sc); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		for _, k := range []struct{ key, field string }{
			{s.key(r.Code, "players"), p.ID}, {s.key(r.Code, "scores"), p.ID}, {s.key(r.Code, "names"), foldName(p.Name)},
		} {
			if n, err := rdb.HExists(ctx, k.key, k.field).Result(); err != nil || n {
				t.Fatalf("room %s: %s %s is still there (%v)", r.Code, k.key, k.field, err)
			}
		}
		if n, err := rdb.Exists(ctx, s.tokenKey(p.Token)).Result(); err != nil || n != 0 {
			t.Fatalf("room %s: the token key is still there (%v)", r.Code, err)
		}
	}
}

// TestRedisStoreExpireLeavesNoKeys: an expired room leaves no key behind (but the mark
// that keeps its code from a new room for a while), and no token.
func TestRedisStoreExpireLeavesNoKeys(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	s := NewRedisStore(rdb, "")
	qz := Quiz{Timing: Compensated, Questions: []Question{validQuiz().Questions[0], codeQuestion()}}
	if err := qz.Normalize(); err != nil {
		t.Fatal(err)
	}
	r := &Room{Code: "424242", HostToken: Token(), Quiz: qz, Phase: PhaseLobby, CreatedAt: time.Now()}
	if err := s.CreateRoom(ctx, r); err != nil {
		t.Fatal(err)
	}
	var ps []Player
	for _, name := range []string{"ann", "ben", "cy"} {
		p := Player{ID: randomHex(8), Name: name, Token: Token()}
		if err := s.AddPlayer(ctx, r.Code, p); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	live := func(n int) {
		if _, err := s.Update(ctx, r.Code, func(r *Room) error { r.Current, r.Phase, r.StartedAt = n, PhaseLive, time.Now(); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	// every kind of key a room has: a finalized question, a judged code question, a removal
	live(1)
	sc := ScoringFor(qz, 1)
	if _, _, err := s.Accept(ctx, r.Code, protocol.Answer{N: 1, PlayerID: ps[0].ID, Correct: true}, sc); err != nil {
		t.Fatal(err)
	}
	answers, _ := s.Answers(ctx, r.Code, 1)
	if err := s.Finalize(ctx, r.Code, 1, Rank(answers, sc)); err != nil {
		t.Fatal(err)
	}
	live(2)
	sc = ScoringFor(qz, 2)
	a, _, err := s.Accept(ctx, r.Code, protocol.Answer{N: 2, PlayerID: ps[1].ID, Response: protocol.Response{Language: "c", Source: "x"}}, sc)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Verdict(ctx, r.Code, 2, a.ArrivalRank, protocol.Verdict{Verdict: protocol.AC}, sc); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemovePlayer(ctx, r.Code, ps[2].ID); err != nil {
		t.Fatal(err)
	}
	keys := func(pattern string) []string {
		t.Helper()
		got, err := rdb.Keys(ctx, pattern).Result()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		return got
	}
	if got := keys("*{424242}*"); len(got) < 15 {
		t.Fatalf("before: got keys %v, want every kind", got)
	}

	gone, err := s.Expire(ctx, time.Now().Add(time.Second))
	if err != nil || !slices.Equal(gone, []string{r.Code}) {
		t.Fatalf("Expire: got %v, %v; want %s", gone, err, r.Code)
	}
	if got := keys("*{424242}*"); !slices.Equal(got, []string{"bulb:{424242}:gone"}) {
		t.Errorf("after: got keys %v, want only the mark bulb:{424242}:gone", got)
	}
	if got := keys("bulb:token:*"); len(got) != 0 {
		t.Errorf("after: got token keys %v, want none", got)
	}
	if n, err := rdb.ZCard(ctx, s.roomsKey()).Result(); err != nil || n != 0 {
		t.Errorf("after: the rooms index holds %d rooms (%v), want none", n, err)
	}
	if ttl, err := rdb.TTL(ctx, "bulb:{424242}:gone").Result(); err != nil || ttl <= 0 || ttl > goneFor {
		t.Errorf("the mark's TTL: got %v (%v), want at most %v", ttl, err, goneFor)
	}
	// the code waits before it names another room: another node may still cache the quiz
	if err := s.CreateRoom(ctx, r); ErrorCode(err) != protocol.Conflict {
		t.Errorf("a new room with the code just expired: got %v, want conflict", err)
	}
}

// TestRedisStoreExpireKeepsOlderRooms: a room written before rooms' activity was kept has
// no activity key; the first sweep counts it active then, rather than delete a room that
// may be in use.
func TestRedisStoreExpireKeepsOlderRooms(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	s := NewRedisStore(rdb, "")
	created := time.Now().Add(-48 * time.Hour)
	r := &Room{Code: "123123", HostToken: Token(), Quiz: validQuiz(), Phase: PhaseLobby, CreatedAt: created}
	if err := r.Quiz.Normalize(); err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return created }
	if err := s.CreateRoom(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(ctx, s.key(r.Code, "active")).Err(); err != nil { // as an older Bulb left it
		t.Fatal(err)
	}
	s.now = time.Now
	if gone, err := s.Expire(ctx, time.Now().Add(-24*time.Hour)); err != nil || len(gone) != 0 {
		t.Fatalf("the first sweep: got %v, %v; want the room kept", gone, err)
	}
	if gone, err := s.Expire(ctx, time.Now().Add(time.Second)); err != nil || !slices.Equal(gone, []string{r.Code}) {
		t.Fatalf("a sweep a day later: got %v, %v; want the room expired", gone, err)
	}
}

// TestRedisQuizCacheForgetsGoneRooms: a node's cached quizzes of rooms another node
// expired or deleted do not stay for the life of the process: entries past quizCacheAge
// go once that age has passed since the last pruning.
func TestRedisQuizCacheForgetsGoneRooms(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	a, b := NewRedisStore(rdb, "cache:"), NewRedisStore(rdb, "cache:")
	for range 50 {
		r := mustRoom(t, b, nil)
		if _, err := a.Quiz(ctx, r.Code); err != nil { // node A caches it
			t.Fatal(err)
		}
	}
	if gone, err := b.Expire(ctx, time.Now().Add(time.Hour)); err != nil || len(gone) != 50 {
		t.Fatalf("node B expired %d rooms, %v; want 50", len(gone), err)
	}
	// quizCacheAge later (the entries and the last pruning made that long ago), node A
	// caches another room's quiz.
	long := time.Now().Add(-quizCacheAge)
	a.quizzes.Range(func(k, v any) bool {
		a.quizzes.Store(k, cachedQuiz{quiz: v.(cachedQuiz).quiz, loaded: long})
		return true
	})
	a.pruned.Store(long.UnixNano())
	live := mustRoom(t, b, nil)
	if _, err := a.Quiz(ctx, live.Code); err != nil {
		t.Fatal(err)
	}
	var kept []string
	a.quizzes.Range(func(k, _ any) bool { kept = append(kept, k.(string)); return true })
	if !slices.Equal(kept, []string{live.Code}) {
		t.Fatalf("node A caches %d quizzes, want only the live room's", len(kept))
	}
}

// TestRedisRemoveWithStaleQuizCache: a player removed through a node whose cached quiz is
// older than an edit made on another node still takes no rank from a later verdict.
func TestRedisRemoveWithStaleQuizCache(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	a, b := NewRedisStore(rdb, "stale:"), NewRedisStore(rdb, "stale:")
	r := mustRoom(t, b, nil)                       // two questions, neither code
	if _, err := a.Quiz(ctx, r.Code); err != nil { // node A caches this quiz
		t.Fatal(err)
	}
	qz := r.Quiz // node B: the host makes question 2 a code question and asks it
	qz.Questions = append(qz.Questions[:1:1], codeQuestion())
	if err := qz.Normalize(); err != nil {
		t.Fatal(err)
	}
	nr, err := b.Update(ctx, r.Code, func(r *Room) error { qz.Version = r.Quiz.Version + 1; r.Quiz = qz; return nil })
	if err != nil {
		t.Fatal(err)
	}
	p := mustPlayer(t, b, r.Code, "ann")
	goLive(t, b, r.Code, 2)
	sc := ScoringFor(nr.Quiz, 2)
	sub, _, err := b.Accept(ctx, r.Code, protocol.Answer{N: 2, PlayerID: p.ID, Response: protocol.Response{Language: "python", Source: "print(3)"}}, sc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.RemovePlayer(ctx, r.Code, p.ID); err != nil { // through node A
		t.Fatal(err)
	}
	_, final, err := b.Verdict(ctx, r.Code, 2, sub.ArrivalRank, verdict(protocol.AC), sc)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range final {
		if f.Rank != 0 || f.Points != 0 {
			t.Fatalf("a removed player was ranked: %+v", f)
		}
	}
}

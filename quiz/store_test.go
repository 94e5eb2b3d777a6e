package quiz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

// testStore is the contract every Store meets (testStoreRooms is part of it). Each
// engine's test calls it with a constructor of fresh, empty stores.
func testStore(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()

	t.Run("rooms and tokens", func(t *testing.T) {
		s := newStore(t)
		r := mustRoom(t, s, nil)
		if err := s.CreateRoom(ctx, r); ErrorCode(err) != protocol.Conflict {
			t.Fatalf("creating room %s twice: got %v, want conflict", r.Code, err)
		}
		if _, err := s.Room(ctx, "000000x"); ErrorCode(err) != protocol.NotFound {
			t.Fatalf("unknown room: got %v, want not_found", err)
		}
		id, err := s.Identify(ctx, r.HostToken)
		if err != nil || id.Role != RoleHost || id.Room != r.Code {
			t.Fatalf("host token: got %+v %v, want host of %s", id, err, r.Code)
		}
		p := mustPlayer(t, s, r.Code, "alice")
		if err := s.AddPlayer(ctx, r.Code, Player{ID: "x", Name: "ALICE", Token: Token()}); ErrorCode(err) != protocol.Conflict {
			t.Fatalf("duplicate name: got %v, want conflict", err)
		}
		id, err = s.Identify(ctx, p.Token)
		if err != nil || id.Role != RolePlayer || id.PlayerID != p.ID || id.Name != "alice" {
			t.Fatalf("player token: got %+v %v, want player %s", id, err, p.ID)
		}
		if _, err := s.Identify(ctx, "nope"); ErrorCode(err) != protocol.Unauthorized {
			t.Fatalf("unknown token: got %v, want unauthorized", err)
		}
		got, err := s.Room(ctx, r.Code)
		if err != nil || len(got.Players) != 1 || got.Quiz.Questions[0].Text != r.Quiz.Questions[0].Text {
			t.Fatalf("got room %+v %v, want one player and the quiz", got, err)
		}
	})

	t.Run("player reads one player with the room", func(t *testing.T) {
		s := newStore(t)
		r := mustRoom(t, s, nil)
		mustPlayer(t, s, r.Code, "ann")
		p := mustPlayer(t, s, r.Code, "ben")
		goLive(t, s, r.Code, 1)
		if _, _, err := s.Accept(ctx, r.Code, protocol.Answer{N: 1, PlayerID: p.ID, Response: protocol.Response{Choice: intp(2)}, Correct: true}, ScoringFor(r.Quiz, 1)); err != nil {
			t.Fatal(err)
		}
		room, got, err := s.Player(ctx, r.Code, p.ID)
		if err != nil || got.ID != p.ID || got.Name != "ben" || got.Score != 100 || got.Token != p.Token {
			t.Fatalf("Player: got %+v, %v; want ben with 100 points", got, err)
		}
		if room.Players != nil || room.Current != 1 || room.Phase != PhaseLive || room.Quiz.Questions[0].Text != r.Quiz.Questions[0].Text || room.HostToken != r.HostToken {
			t.Fatalf("Player's room: got %+v, want question 1 live, the quiz, no players", room)
		}
		if room, got, err := s.Player(ctx, r.Code, ""); err != nil || got.ID != "" || room.Code != r.Code {
			t.Fatalf("Player with no ID: got %+v, %+v, %v; want the room alone", room, got, err)
		}
		if _, _, err := s.Player(ctx, r.Code, "nobody"); ErrorCode(err) != protocol.NotFound {
			t.Fatalf("unknown player: got %v, want not_found", err)
		}
		if _, _, err := s.Player(ctx, "000000x", p.ID); ErrorCode(err) != protocol.NotFound {
			t.Fatalf("unknown room: got %v, want not_found", err)
		}
	})

	t.Run("a room takes MaxPlayers and no more", func(t *testing.T) {
		s := newStore(t)
		r := mustRoom(t, s, nil)
		const joiners = 32 // at once, as a class joins
		var wg sync.WaitGroup
		for g := range joiners {
			wg.Go(func() {
				for i := g; i < MaxPlayers; i += joiners {
					if err := s.AddPlayer(ctx, r.Code, Player{ID: fmt.Sprint(i), Name: fmt.Sprint("p", i), Token: fmt.Sprint("t", i)}); err != nil {
						t.Errorf("player %d: %v", i, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err := s.AddPlayer(ctx, r.Code, Player{ID: "x", Name: "one too many", Token: "tx"}); ErrorCode(err) != protocol.Conflict {
			t.Fatalf("player %d: got %v, want conflict", MaxPlayers+1, err)
		}
	})

	t.Run("update is atomic and refusals change nothing", func(t *testing.T) {
		s := newStore(t)
		r := mustRoom(t, s, nil)
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				if _, err := s.Update(ctx, r.Code, func(r *Room) error { r.Current++; return nil }); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		_, err := s.Update(ctx, r.Code, func(r *Room) error { r.Current = -1; return Errorf(protocol.Conflict, "no") })
		if ErrorCode(err) != protocol.Conflict {
			t.Fatalf("refused update: got %v, want the refusal", err)
		}
		got, _ := s.Room(ctx, r.Code)
		if got.Current != 100 || got.Version < 100 {
			t.Fatalf("got current %d version %d, want 100 and at least 100", got.Current, got.Version)
		}
	})

	t.Run("accept checks phase and answers once", func(t *testing.T) {
		s := newStore(t)
		r := mustRoom(t, s, nil)
		p := mustPlayer(t, s, r.Code, "bob")
		sc := ScoringFor(r.Quiz, 1)
		a := protocol.Answer{N: 1, PlayerID: p.ID, Response: protocol.Response{Choice: intp(2)}, Correct: true}
		if _, _, err := s.Accept(ctx, r.Code, a, sc); ErrorCode(err) != protocol.NotStarted {
			t.Fatalf("in the lobby: got %v, want not_started", err)
		}
		if _, err := s.Update(ctx, r.Code, func(r *Room) error { r.Current, r.Phase = 1, PhaseOpen; return nil }); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Accept(ctx, r.Code, a, sc); ErrorCode(err) != protocol.NotStarted {
			t.Fatalf("open: got %v, want not_started", err)
		}
		goLive(t, s, r.Code, 1)
		if _, _, err := s.Accept(ctx, r.Code, protocol.Answer{N: 2, PlayerID: p.ID, Correct: true}, sc); ErrorCode(err) != protocol.NotStarted {
			t.Fatalf("a later question: got %v, want not_started", err)
		}
		got, _, err := s.Accept(ctx, r.Code, a, sc)
		if err != nil || got.Rank != 1 || got.Points != 100 || got.ArrivalRank != 1 || got.Name != "bob" {
			t.Fatalf("got %+v %v, want rank 1 with 100 points", got, err)
		}
		again, replayed, err := s.Accept(ctx, r.Code, a, sc)
		if err != nil || !replayed || again.Rank != 1 || again.Points != 100 || !again.ReceivedAt.Equal(got.ReceivedAt) {
			t.Fatalf("the same answer again: got %+v, %v; want the stored one, replayed", again, err)
		}
		other := a
		other.Response, other.Correct = protocol.Response{Choice: intp(0)}, false
		if _, _, err := s.Accept(ctx, r.Code, other, sc); ErrorCode(err) != protocol.AlreadyAnswered {
			t.Fatalf("another answer: got %v, want already_answered", err)
		}
		if _, err := s.Update(ctx, r.Code, func(r *Room) error { r.Phase = PhaseClosed; return nil }); err != nil {
			t.Fatal(err)
		}
		q := mustPlayer(t, s, r.Code, "carol")
		if _, _, err := s.Accept(ctx, r.Code, protocol.Answer{N: 1, PlayerID: q.ID, Correct: true}, sc); ErrorCode(err) != protocol.Closed {
			t.Fatalf("after close: got %v, want closed", err)
		}
		room, _ := s.Room(ctx, r.Code)
		if room.Players[0].Score != 100 || room.Players[1].Score != 0 {
			t.Fatalf("got scores %d and %d, want 100 and 0", room.Players[0].Score, room.Players[1].Score)
		}
		answers, _ := s.Answers(ctx, r.Code, 1)
		if len(answers) != 1 {
			t.Fatalf("got %d answers, want 1: refused answers must change nothing", len(answers))
		}
	})

	t.Run("under the synced reveal an answer counts from the reveal instant", func(t *testing.T) {
		s := newStore(t)
		r := mustRoom(t, s, nil)
		p := mustPlayer(t, s, r.Code, "mallory")
		sc := ScoringFor(r.Quiz, 1)
		if !sc.Synced {
			t.Fatal("the default quiz is not synced")
		}
		reveal := time.Now().Add(time.Second).Truncate(time.Microsecond)
		if _, err := s.Update(ctx, r.Code, func(r *Room) error {
			r.Current, r.Phase, r.StartedAt = 1, PhaseLive, reveal // the start went out ahead
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		a := protocol.Answer{N: 1, PlayerID: p.ID, Response: protocol.Response{Choice: intp(2)}, Correct: true, ReceivedAt: reveal.Add(-time.Microsecond)}
		if _, _, err := s.Accept(ctx, r.Code, a, sc); ErrorCode(err) != protocol.NotStarted {
			t.Fatalf("arrived 1 µs before the reveal: got %v, want not_started", err)
		}
		if answers, _ := s.Answers(ctx, r.Code, 1); len(answers) != 0 {
			t.Fatalf("got %d answers, want none: a refused answer changes nothing", len(answers))
		}
		a.ReceivedAt = reveal
		if got, _, err := s.Accept(ctx, r.Code, a, sc); err != nil || got.Rank != 1 {
			t.Fatalf("arrived at the reveal: got %+v, %v; want rank 1", got, err)
		}
	})

	t.Run("1000 concurrent answers get unique ranks and the right winners", func(t *testing.T) {
		s := newStore(t)
		r := mustRoom(t, s, []int{100, 60, 30})
		const players = 1000
		ps := make([]Player, players)
		for i := range ps {
			ps[i] = mustPlayer(t, s, r.Code, fmt.Sprintf("p%04d", i))
		}
		goLive(t, s, r.Code, 1)
		sc := ScoringFor(r.Quiz, 1)
		results := make([]protocol.Answer, players)
		errs := make([]error, players)
		ready := make(chan struct{})
		var wg sync.WaitGroup
		for i := range ps {
			wg.Go(func() {
				<-ready
				a := protocol.Answer{N: 1, PlayerID: ps[i].ID, Correct: i%3 != 0, Response: protocol.Response{Choice: intp(i % 3)}}
				results[i], _, errs[i] = s.Accept(ctx, r.Code, a, sc)
				// every player tries again with another answer: it must always be refused
				a.Response = protocol.Response{Text: "second"}
				if _, _, err := s.Accept(ctx, r.Code, a, sc); ErrorCode(err) != protocol.AlreadyAnswered {
					t.Errorf("second answer of %s: got %v, want already_answered", ps[i].Name, err)
				}
			})
		}
		close(ready)
		wg.Wait()

		total := mustRaceRanks(t, results, errs)
		room, _ := s.Room(ctx, r.Code)
		scores := 0
		for _, p := range room.Players {
			scores += p.Score
		}
		if total != 190 || scores != 190 {
			t.Fatalf("got %d points awarded and %d in scores, want 190 in both", total, scores)
		}
		answers, _ := s.Answers(ctx, r.Code, 1)
		if len(answers) != players {
			t.Fatalf("got %d stored answers, want %d", len(answers), players)
		}
	})

	t.Run("a quiz edit is kept and answers marked by the old quiz are refused", func(t *testing.T) {
		s := newStore(t)
		r := mustRoom(t, s, nil)
		p := mustPlayer(t, s, r.Code, "quinn")
		old, err := s.Quiz(ctx, r.Code)
		if err != nil {
			t.Fatal(err)
		}
		edited := old
		edited.Title = "edited"
		edited.Questions = append(slices.Clone(old.Questions), old.Questions[0])
		edited.Version = old.Version + 1
		if _, err := s.Update(ctx, r.Code, func(r *Room) error { r.Quiz = edited; return nil }); err != nil {
			t.Fatal(err)
		}
		got, err := s.Quiz(ctx, r.Code)
		room, _ := s.Room(ctx, r.Code)
		if err != nil || got.Title != "edited" || got.Version != edited.Version || len(got.Questions) != 3 ||
			room.Quiz.Title != "edited" || room.Quiz.Version != edited.Version {
			t.Fatalf("after the edit: got quiz %q v%d with %d questions, room quiz %q v%d; want edited v%d with 3",
				got.Title, got.Version, len(got.Questions), room.Quiz.Title, room.Quiz.Version, edited.Version)
		}
		goLive(t, s, r.Code, 3)
		a := protocol.Answer{N: 3, PlayerID: p.ID, Correct: true}
		if _, _, err := s.Accept(ctx, r.Code, a, ScoringFor(old, 1)); !errors.Is(err, ErrStaleQuiz) {
			t.Fatalf("an answer marked by the old quiz: got %v, want ErrStaleQuiz", err)
		}
		if _, _, err := s.Accept(ctx, r.Code, a, ScoringFor(got, 3)); err != nil {
			t.Fatalf("an answer marked by the new quiz: %v", err)
		}
	})

	t.Run("code submissions rank by arrival once judged", func(t *testing.T) {
		s := newStore(t)
		r, sc := codeRoom(t, s)
		a, b, c, d := mustPlayer(t, s, r.Code, "a"), mustPlayer(t, s, r.Code, "b"), mustPlayer(t, s, r.Code, "c"), mustPlayer(t, s, r.Code, "d")
		for i, p := range []Player{a, b, a, c, d} {
			if got := submit(t, s, r.Code, sc, p); got.ArrivalRank != i+1 {
				t.Fatalf("submission %d got number %d", i+1, got.ArrivalRank)
			}
		}
		steps := []struct {
			sub       int
			verdict   string
			stored    string // the verdict stored after the call
			finalSubs []int  // submissions made final, in arrival order
			ranks     []int  // their ranks
		}{
			{2, "AC", "AC", nil, nil},                 // b's AC waits for a's earlier #1
			{2, "WA", "AC", nil, nil},                 // a second verdict changes nothing
			{4, "AC", "AC", nil, nil},                 // c's AC waits too
			{1, "WA", "WA", []int{1, 2}, []int{0, 1}}, // #1 settles, and with it b's #2: rank 1
			{3, "AC", "AC", []int{3, 4}, []int{2, 3}}, // a's #3 and c's #4
			{5, "AC", "AC", []int{5}, []int{4}},       // d: rank 4, no points left
		}
		for _, st := range steps {
			got, final, err := s.Verdict(ctx, r.Code, 1, st.sub, verdict(st.verdict), sc)
			if err != nil {
				t.Fatalf("verdict %s on #%d: %v", st.verdict, st.sub, err)
			}
			if got.ArrivalRank != st.sub || got.Verdict == nil || got.Verdict.Verdict != st.stored || got.Verdict.MemoryKB != 3456 {
				t.Fatalf("verdict %s on #%d: stored %+v, want #%d with %s", st.verdict, st.sub, got, st.sub, st.stored)
			}
			var subs, ranks []int
			for _, f := range final {
				subs, ranks = append(subs, f.ArrivalRank), append(ranks, f.Rank)
				if f.Pending {
					t.Errorf("final answer #%d still pending", f.ArrivalRank)
				}
			}
			if fmt.Sprint(subs, ranks) != fmt.Sprint(st.finalSubs, st.ranks) {
				t.Fatalf("verdict %s on #%d: final %v ranks %v, want %v ranks %v", st.verdict, st.sub, subs, ranks, st.finalSubs, st.ranks)
			}
		}
		if _, _, err := s.Accept(ctx, r.Code, protocol.Answer{N: 1, PlayerID: b.ID, Response: protocol.Response{Language: "c", Source: "x"}}, sc); ErrorCode(err) != protocol.AlreadyAnswered {
			t.Fatalf("a submission after an accepted one: got %v, want already_answered", err)
		}
		for _, sub := range []int{0, 6} {
			if _, _, err := s.Verdict(ctx, r.Code, 1, sub, verdict("AC"), sc); ErrorCode(err) != protocol.NotFound {
				t.Fatalf("verdict on #%d of 5: got %v, want not_found", sub, err)
			}
		}
		room, _ := s.Room(ctx, r.Code)
		scores := map[string]int{}
		for _, p := range room.Players {
			scores[p.Name] = p.Score
		}
		if want := map[string]int{"a": 200, "b": 300, "c": 100, "d": 0}; fmt.Sprint(scores) != fmt.Sprint(want) {
			t.Fatalf("scores %v, want %v", scores, want)
		}
		answers, _ := s.Answers(ctx, r.Code, 1)
		if len(answers) != 5 || answers[1].Rank != 1 || answers[1].Points != 300 || answers[0].Rank != 0 || answers[0].Verdict.Verdict != "WA" {
			t.Fatalf("stored answers %+v", answers)
		}
	})

	t.Run("code submissions judged after the close still count", func(t *testing.T) {
		s := newStore(t)
		r, sc := codeRoom(t, s)
		p := mustPlayer(t, s, r.Code, "late")
		sub := submit(t, s, r.Code, sc, p)
		if _, err := s.Update(ctx, r.Code, func(r *Room) error { r.Phase = PhaseClosed; return nil }); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Accept(ctx, r.Code, protocol.Answer{N: 1, PlayerID: p.ID, Response: protocol.Response{Language: "c", Source: "x"}}, sc); ErrorCode(err) != protocol.Closed {
			t.Fatalf("a submission after the close: got %v, want closed", err)
		}
		got, final, err := s.Verdict(ctx, r.Code, 1, sub.ArrivalRank, verdict("AC"), sc)
		if err != nil || len(final) != 1 || got.Rank != 1 || got.Points != 300 {
			t.Fatalf("verdict after the close: %+v, %v, %v; want rank 1 with 300 points", got, final, err)
		}
	})

	t.Run("a player's code submissions are bounded", func(t *testing.T) {
		s := newStore(t)
		r, sc := codeRoom(t, s)
		p := mustPlayer(t, s, r.Code, "spammer")
		for range MaxSubmissions {
			submit(t, s, r.Code, sc, p)
		}
		if _, _, err := s.Accept(ctx, r.Code, protocol.Answer{N: 1, PlayerID: p.ID, Response: protocol.Response{Language: "c", Source: "x"}}, sc); ErrorCode(err) != protocol.RateLimited {
			t.Fatalf("submission %d: got %v, want rate_limited", MaxSubmissions+1, err)
		}
	})

	t.Run("concurrent code submissions and verdicts rank each player's first AC by arrival", func(t *testing.T) {
		s := newStore(t)
		r, sc := codeRoom(t, s)
		const players, each = 30, 4
		ps := make([]Player, players)
		for i := range ps {
			ps[i] = mustPlayer(t, s, r.Code, fmt.Sprint("p", i))
		}
		// Every player sends its submissions at once with the others; a submission is
		// accepted when (player + k) % 3 == 0, and judged at once, racing the others.
		var wg sync.WaitGroup
		errs := make(chan error, players*each*2)
		for i, p := range ps {
			wg.Go(func() {
				for k := range each {
					a, _, err := s.Accept(ctx, r.Code, protocol.Answer{N: 1, PlayerID: p.ID, Response: protocol.Response{Language: "c", Source: fmt.Sprint(k)}}, sc)
					if ErrorCode(err) == protocol.AlreadyAnswered {
						continue // an earlier one was accepted already
					}
					if err != nil {
						errs <- err
						return
					}
					v := verdict("WA")
					if (i+k)%3 == 0 {
						v = verdict("AC")
					}
					wg.Go(func() {
						if _, _, err := s.Verdict(ctx, r.Code, 1, a.ArrivalRank, v, sc); err != nil {
							errs <- err
						}
					})
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		answers, err := s.Answers(ctx, r.Code, 1)
		if err != nil {
			t.Fatal(err)
		}
		seen, rank := map[string]bool{}, 0
		for _, a := range answers { // arrival order
			if a.Pending || a.Verdict == nil {
				t.Fatalf("submission #%d still pending after every verdict", a.ArrivalRank)
			}
			want := 0
			if a.Verdict.Verdict == "AC" && !seen[a.PlayerID] {
				seen[a.PlayerID] = true
				rank++
				want = rank
			}
			if a.Rank != want {
				t.Fatalf("submission #%d of %s (%s): rank %d, want %d", a.ArrivalRank, a.Name, a.Verdict.Verdict, a.Rank, want)
			}
		}
		if rank != players {
			t.Fatalf("%d players ranked, want every one of %d (each has an AC among its first three)", rank, players)
		}
	})

	t.Run("finalize applies once", func(t *testing.T) {
		s := newStore(t)
		r := mustRoom(t, s, []int{100, 60})
		p := mustPlayer(t, s, r.Code, "dee")
		goLive(t, s, r.Code, 1)
		sc := ScoringFor(r.Quiz, 1)
		sc.Deferred = true
		a, _, err := s.Accept(ctx, r.Code, protocol.Answer{N: 1, PlayerID: p.ID, Correct: true}, sc)
		if err != nil || !a.Pending || a.Rank != 0 || a.Points != 0 {
			t.Fatalf("deferred accept: got %+v %v, want pending with rank 0", a, err)
		}
		answers, _ := s.Answers(ctx, r.Code, 1)
		ranked := Rank(answers, sc)
		for range 2 {
			if err := s.Finalize(ctx, r.Code, 1, ranked); err != nil {
				t.Fatal(err)
			}
		}
		room, _ := s.Room(ctx, r.Code)
		answers, _ = s.Answers(ctx, r.Code, 1)
		if room.Players[0].Score != 100 || answers[0].Rank != 1 || answers[0].Pending {
			t.Fatalf("got score %d, answer %+v; want 100 once and rank 1", room.Players[0].Score, answers[0])
		}
	})

	testStoreRooms(t, newStore)
}

// mustRoom creates a room of validQuiz with the given winners in s.
func mustRoom(t *testing.T, s Store, winners []int) *Room {
	t.Helper()
	ctx := context.Background()
	qz := validQuiz()
	qz.Winners = winners
	if err := qz.Normalize(); err != nil {
		t.Fatal(err)
	}
	r := &Room{Code: roomCode(), HostToken: Token(), Quiz: qz, Phase: PhaseLobby, CreatedAt: time.Now()}
	if err := s.CreateRoom(ctx, r); err != nil {
		t.Fatal(err)
	}
	return r
}

// mustPlayer adds a player called name to room code of s.
func mustPlayer(t *testing.T, s Store, code, name string) Player {
	t.Helper()
	ctx := context.Background()
	p := Player{ID: randomHex(8), Name: name, Token: Token(), JoinedAt: time.Now()}
	if err := s.AddPlayer(ctx, code, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// goLive makes question n of room code live.
func goLive(t *testing.T, s Store, code string, n int) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Update(ctx, code, func(r *Room) error {
		r.Current, r.Phase, r.StartedAt = n, PhaseLive, time.Now()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// codeRoom creates a room of one code question, live, and returns its scoring.
func codeRoom(t *testing.T, s Store) (*Room, Scoring) {
	t.Helper()
	ctx := context.Background()
	qz := Quiz{Winners: []int{300, 200, 100}, Questions: []Question{codeQuestion()}}
	if err := qz.Normalize(); err != nil {
		t.Fatal(err)
	}
	r := &Room{Code: roomCode(), HostToken: Token(), Quiz: qz, Phase: PhaseLobby, CreatedAt: time.Now()}
	if err := s.CreateRoom(ctx, r); err != nil {
		t.Fatal(err)
	}
	goLive(t, s, r.Code, 1)
	return r, ScoringFor(qz, 1)
}

// submit makes a code submission of p, which must be pending.
func submit(t *testing.T, s Store, code string, sc Scoring, p Player) protocol.Answer {
	t.Helper()
	ctx := context.Background()
	a, _, err := s.Accept(ctx, code, protocol.Answer{N: 1, PlayerID: p.ID, Response: protocol.Response{Language: "python", Source: "print(3)"}}, sc)
	if err != nil {
		t.Fatalf("submission of %s: %v", p.Name, err)
	}
	if !a.Pending || a.Rank != 0 || a.Verdict != nil {
		t.Fatalf("a fresh submission: got %+v, want pending, unranked, no verdict", a)
	}
	return a
}

// verdict is a verdict called name.
func verdict(name string) protocol.Verdict {
	return protocol.Verdict{Verdict: name, Passed: 1, Total: 2, TimeMs: 12, MemoryKB: 3456, Message: name}
}

func TestMemoryStore(t *testing.T) {
	testStore(t, func(*testing.T) Store { return NewMemoryStore() })
}

// mustRaceRanks checks the answers of a race with winners [100, 60, 30]: each accepted
// once with a unique arrival rank; right ones ranked 1..k each once, in accept order, the
// first three with 100, 60 and 30 points, wrong ones unranked. It returns the points given.
func mustRaceRanks(t *testing.T, results []protocol.Answer, errs []error) int {
	t.Helper()
	arrivals, byRank := map[int]bool{}, map[int]protocol.Answer{}
	total := 0
	for i, a := range results {
		if errs[i] != nil {
			t.Fatalf("answer %d: %v", i, errs[i])
		}
		if arrivals[a.ArrivalRank] {
			t.Fatalf("arrival rank %d given twice", a.ArrivalRank)
		}
		arrivals[a.ArrivalRank] = true
		total += a.Points
		if !a.Correct {
			if a.Rank != 0 || a.Points != 0 {
				t.Fatalf("wrong answer got rank %d points %d, want 0 and 0", a.Rank, a.Points)
			}
			continue
		}
		if _, dup := byRank[a.Rank]; dup {
			t.Fatalf("rank %d given twice", a.Rank)
		}
		byRank[a.Rank] = a
	}
	for rank := 1; rank <= len(byRank); rank++ {
		a, ok := byRank[rank]
		if !ok {
			t.Fatalf("rank %d missing: ranks must be 1..%d", rank, len(byRank))
		}
		// ranks follow the accept order: a higher rank was accepted no earlier
		if prev := byRank[rank-1]; rank > 1 && (a.ArrivalRank < prev.ArrivalRank || a.ReceivedAt.Before(prev.ReceivedAt)) {
			t.Fatalf("rank %d arrived before rank %d", rank, rank-1)
		}
	}
	for rank, want := range map[int]int{1: 100, 2: 60, 3: 30, 4: 0} {
		if got := byRank[rank].Points; got != want {
			t.Errorf("rank %d: got %d points, want %d", rank, got, want)
		}
	}
	return total
}

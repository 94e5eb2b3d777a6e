package quiz

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

// testStoreRooms is the part of the Store contract about who may sit in a room and how
// long the room lives: names, locks, removed players, expiry. testStore runs it.
func testStoreRooms(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()

	t.Run("names a person could take for each other are one name", func(t *testing.T) {
		s := newStore(t)
		r := mustRoom(t, s, nil)
		mustPlayer(t, s, r.Code, "alice")
		wide := mustPlayer(t, s, r.Code, "ＢＯＢ") // fullwidth, kept as typed
		for _, name := range []string{
			"alice", "ALICE", "Alice",
			"\u0430lice",             // Cyrillic а
			"ａｌｉｃｅ",                  // fullwidth
			"\u0391LICE",             // Greek capital alpha
			"bob", "Bob", "b\u043eb", // Cyrillic о
			"b0b",   // a zero looks like an o
			"aIice", // a capital I looks like an l
			"ALlCE", // and an l like a capital I
			"alIce", // a capital I is an i, too
		} {
			if err := s.AddPlayer(ctx, r.Code, Player{ID: randomHex(8), Name: name, Token: Token()}); ErrorCode(err) != protocol.Conflict {
				t.Errorf("adding %q beside alice and ＢＯＢ: got %v, want conflict", name, err)
			}
		}
		mustPlayer(t, s, r.Code, "alicia")
		id, err := s.Identify(ctx, wide.Token)
		room, _ := s.Room(ctx, r.Code)
		if err != nil || id.Name != "ＢＯＢ" || len(room.Players) != 3 || room.Players[1].Name != "ＢＯＢ" {
			t.Fatalf("got identity %+v (%v) and players %+v, want ＢＯＢ shown as typed among 3", id, err, room.Players)
		}
	})

	t.Run("a locked room takes no new players until unlocked", func(t *testing.T) {
		s := newStore(t)
		r := mustRoom(t, s, nil)
		mustPlayer(t, s, r.Code, "early")
		if _, err := s.Update(ctx, r.Code, func(r *Room) error { r.Locked = true; return nil }); err != nil {
			t.Fatal(err)
		}
		err := s.AddPlayer(ctx, r.Code, Player{ID: randomHex(8), Name: "late", Token: Token()})
		if ErrorCode(err) != protocol.Conflict || ErrorMessage(err) != "the room is locked" {
			t.Fatalf("joining a locked room: got %v, want conflict: the room is locked", err)
		}
		room, _ := s.Room(ctx, r.Code)
		if !room.Locked || len(room.Players) != 1 {
			t.Fatalf("got locked %v with %d players, want locked with 1", room.Locked, len(room.Players))
		}
		if _, err := s.Update(ctx, r.Code, func(r *Room) error { r.Locked = false; return nil }); err != nil {
			t.Fatal(err)
		}
		mustPlayer(t, s, r.Code, "late")
		if room, _ := s.Room(ctx, r.Code); room.Locked || len(room.Players) != 2 {
			t.Fatalf("got locked %v with %d players, want unlocked with 2", room.Locked, len(room.Players))
		}
	})

	t.Run("a removed player's seat is free and its token dead", func(t *testing.T) {
		s := newStore(t)
		r := mustRoom(t, s, nil)
		alice := mustPlayer(t, s, r.Code, "alice")
		bob := mustPlayer(t, s, r.Code, "bob")
		goLive(t, s, r.Code, 1)
		sc := ScoringFor(r.Quiz, 1)
		if _, _, err := s.Accept(ctx, r.Code, protocol.Answer{N: 1, PlayerID: bob.ID, Response: protocol.Response{Choice: intp(2)}, Correct: true}, sc); err != nil {
			t.Fatal(err)
		}
		got, err := s.RemovePlayer(ctx, r.Code, bob.ID)
		if err != nil || got.ID != bob.ID || got.Name != "bob" || got.Token != bob.Token {
			t.Fatalf("RemovePlayer: got %+v, %v; want bob", got, err)
		}
		if _, err := s.Identify(ctx, bob.Token); ErrorCode(err) != protocol.Unauthorized {
			t.Fatalf("the removed player's token: got %v, want unauthorized", err)
		}
		if _, _, err := s.Player(ctx, r.Code, bob.ID); ErrorCode(err) != protocol.NotFound {
			t.Fatalf("the removed player: got %v, want not_found", err)
		}
		other := protocol.Answer{N: 1, PlayerID: bob.ID, Response: protocol.Response{Choice: intp(0)}}
		if _, _, err := s.Accept(ctx, r.Code, other, sc); ErrorCode(err) == "" {
			t.Fatal("an answer of the removed player was accepted")
		}
		if _, err := s.RemovePlayer(ctx, r.Code, bob.ID); ErrorCode(err) != protocol.NotFound {
			t.Fatalf("removing bob twice: got %v, want not_found", err)
		}
		if _, err := s.RemovePlayer(ctx, "000000x", alice.ID); ErrorCode(err) != protocol.NotFound {
			t.Fatalf("removing from an unknown room: got %v, want not_found", err)
		}
		bob2 := mustPlayer(t, s, r.Code, "BOB") // the name is free again
		carol := mustPlayer(t, s, r.Code, "carol")
		if _, err := s.RemovePlayer(ctx, r.Code, alice.ID); err != nil {
			t.Fatal(err)
		}
		dave := mustPlayer(t, s, r.Code, "dave")
		room, _ := s.Room(ctx, r.Code)
		var got2 []string
		for _, p := range room.Players {
			got2 = append(got2, fmt.Sprint(p.Name, ":", p.Score))
		}
		if want := []string{"BOB:0", "carol:0", "dave:0"}; !slices.Equal(got2, want) {
			t.Fatalf("players: got %v, want %v in join order, the new BOB without bob's points", got2, want)
		}
		if id, err := s.Identify(ctx, bob2.Token); err != nil || id.PlayerID != bob2.ID || carol.ID == dave.ID {
			t.Fatalf("the new BOB's token: got %+v, %v", id, err)
		}
		answers, _ := s.Answers(ctx, r.Code, 1)
		if len(answers) != 1 || answers[0].PlayerID != bob.ID || answers[0].Rank != 1 {
			t.Fatalf("answers after the removal: got %+v, want bob's, ranked 1, kept", answers)
		}
	})

	t.Run("a removed player takes no rank given after its removal", func(t *testing.T) {
		s := newStore(t)
		r, sc := codeRoom(t, s)
		gone, stays := mustPlayer(t, s, r.Code, "gone"), mustPlayer(t, s, r.Code, "stays")
		first := submit(t, s, r.Code, sc, gone)
		second := submit(t, s, r.Code, sc, stays)
		if _, err := s.RemovePlayer(ctx, r.Code, gone.ID); err != nil {
			t.Fatal(err)
		}
		// the judge was already at work on gone's submission: its AC comes after all
		got, final, err := s.Verdict(ctx, r.Code, 1, first.ArrivalRank, verdict("AC"), sc)
		if err != nil || got.Rank != 0 || got.Points != 0 || len(final) != 1 {
			t.Fatalf("the AC of the removed player: got %+v, %v, %v; want it final with no rank", got, final, err)
		}
		got, _, err = s.Verdict(ctx, r.Code, 1, second.ArrivalRank, verdict("AC"), sc)
		if err != nil || got.Rank != 1 || got.Points != 300 {
			t.Fatalf("the next AC: got %+v, %v; want rank 1 with 300 points", got, err)
		}
		room, _ := s.Room(ctx, r.Code)
		if len(room.Players) != 1 || room.Players[0].Name != "stays" || room.Players[0].Score != 300 {
			t.Fatalf("got players %+v, want only stays, with 300", room.Players)
		}

		// a compensated question: finalized with the removed player's answer ranked (the
		// service leaves it out; a removal may come between its read and the store's
		// write), the points go to nobody
		r2 := mustRoom(t, s, []int{100, 60})
		a, b := mustPlayer(t, s, r2.Code, "a"), mustPlayer(t, s, r2.Code, "b")
		goLive(t, s, r2.Code, 1)
		sc2 := ScoringFor(r2.Quiz, 1)
		sc2.Deferred = true
		for _, p := range []Player{a, b} {
			if _, _, err := s.Accept(ctx, r2.Code, protocol.Answer{N: 1, PlayerID: p.ID, Correct: true}, sc2); err != nil {
				t.Fatal(err)
			}
		}
		answers, _ := s.Answers(ctx, r2.Code, 1)
		ranked := Rank(answers, sc2)
		if _, err := s.RemovePlayer(ctx, r2.Code, a.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.Finalize(ctx, r2.Code, 1, ranked); err != nil {
			t.Fatal(err)
		}
		room, _ = s.Room(ctx, r2.Code)
		if len(room.Players) != 1 || room.Players[0].ID != b.ID || room.Players[0].Score != 60 {
			t.Fatalf("got players %+v, want only b, with 60", room.Players)
		}
	})

	t.Run("a deleted room goes with all it holds; the others stay", func(t *testing.T) {
		s := newStore(t)
		doomed, kept := mustRoom(t, s, nil), mustRoom(t, s, nil)
		p := mustPlayer(t, s, doomed.Code, "ann")
		k := mustPlayer(t, s, kept.Code, "kim")
		goLive(t, s, doomed.Code, 1)
		if _, _, err := s.Accept(ctx, doomed.Code, protocol.Answer{N: 1, PlayerID: p.ID, Response: protocol.Response{Choice: intp(2)}, Correct: true}, ScoringFor(doomed.Quiz, 1)); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteRoom(ctx, doomed.Code); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Room(ctx, doomed.Code); ErrorCode(err) != protocol.NotFound {
			t.Fatalf("the deleted room: got %v, want not_found", err)
		}
		if _, err := s.Answers(ctx, doomed.Code, 1); ErrorCode(err) != protocol.NotFound {
			t.Fatalf("the deleted room's answers: got %v, want not_found", err)
		}
		for _, token := range []string{doomed.HostToken, p.Token} {
			if _, err := s.Identify(ctx, token); ErrorCode(err) != protocol.Unauthorized {
				t.Fatalf("a token of the deleted room: got %v, want unauthorized", err)
			}
		}
		if err := s.DeleteRoom(ctx, doomed.Code); ErrorCode(err) != protocol.NotFound {
			t.Fatalf("deleting it again: got %v, want not_found", err)
		}
		if id, err := s.Identify(ctx, k.Token); err != nil || id.Room != kept.Code {
			t.Fatalf("the other room's player: got %+v, %v", id, err)
		}
		if rooms, err := s.Rooms(ctx); err != nil || len(rooms) != 1 || rooms[0].Code != kept.Code {
			t.Fatalf("rooms: got %d, %v; want only %s", len(rooms), err, kept.Code)
		}
	})

	t.Run("rooms quiet since the cut-off expire with all they hold", func(t *testing.T) {
		s := newStore(t)
		t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
		clock := &fakeClock{now: t0}
		setClock(t, s, clock.Now)
		quiet := mustRoom(t, s, nil)
		q := mustPlayer(t, s, quiet.Code, "quiet")
		joined := mustRoom(t, s, nil)
		answered := mustRoom(t, s, nil)
		a := mustPlayer(t, s, answered.Code, "answering")
		goLive(t, s, answered.Code, 1)
		scheduled := mustRoom(t, s, nil)
		if _, err := s.Update(ctx, scheduled.Code, func(r *Room) error {
			r.Current, r.Phase, r.StartAt = 1, PhaseOpen, t0.Add(3*time.Hour)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		clock.Set(t0.Add(time.Hour)) // one room gets a player, another an answer
		mustPlayer(t, s, joined.Code, "late")
		if _, _, err := s.Accept(ctx, answered.Code, protocol.Answer{N: 1, PlayerID: a.ID, Response: protocol.Response{Choice: intp(1)}}, ScoringFor(answered.Quiz, 1)); err != nil {
			t.Fatal(err)
		}
		clock.Set(t0.Add(2 * time.Hour))

		expire := func(before time.Time, want ...string) {
			t.Helper()
			gone, err := s.Expire(ctx, before)
			slices.Sort(want)
			if err != nil || !slices.Equal(gone, want) {
				t.Fatalf("Expire(%s): got %v, %v; want %v", before.Sub(t0), gone, err, want)
			}
		}
		expire(t0.Add(30*time.Minute), quiet.Code)
		if _, err := s.Room(ctx, quiet.Code); ErrorCode(err) != protocol.NotFound {
			t.Fatalf("the expired room: got %v, want not_found", err)
		}
		if _, err := s.Answers(ctx, quiet.Code, 1); ErrorCode(err) != protocol.NotFound {
			t.Fatalf("the expired room's answers: got %v, want not_found", err)
		}
		for _, token := range []string{quiet.HostToken, q.Token} {
			if _, err := s.Identify(ctx, token); ErrorCode(err) != protocol.Unauthorized {
				t.Fatalf("a token of the expired room: got %v, want unauthorized", err)
			}
		}
		if err := s.AddPlayer(ctx, quiet.Code, Player{ID: randomHex(8), Name: "after", Token: Token()}); ErrorCode(err) != protocol.NotFound {
			t.Fatalf("joining the expired room: got %v, want not_found", err)
		}
		rooms, err := s.Rooms(ctx)
		if err != nil || len(rooms) != 3 {
			t.Fatalf("Rooms: got %d rooms, %v; want the 3 others", len(rooms), err)
		}
		expire(t0.Add(30 * time.Minute)) // once is enough

		// a join and an answer count as activity; a scheduled start, at its time
		expire(t0.Add(time.Hour+time.Second), answered.Code, joined.Code)
		if _, err := s.Room(ctx, scheduled.Code); err != nil {
			t.Fatalf("the room with a start scheduled at 3h: %v", err)
		}
		expire(t0.Add(3*time.Hour+time.Second), scheduled.Code)
		if rooms, err := s.Rooms(ctx); err != nil || len(rooms) != 0 {
			t.Fatalf("Rooms: got %d rooms, %v; want none", len(rooms), err)
		}
	})
}

// fakeClock is a clock a test sets.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// setClock gives store s the clock now for its rooms' activity.
func setClock(t *testing.T, s Store, now func() time.Time) {
	t.Helper()
	switch s := s.(type) {
	case *MemoryStore:
		s.now = now
	case *RedisStore:
		s.now = now
	case *BoltStore:
		s.now = now
	case *reopening:
		s.setNow(now)
	default:
		t.Fatalf("no clock to set in a %T", s)
	}
}

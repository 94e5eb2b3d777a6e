package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/bulbquiz/bulb/internal/redistest"
	"github.com/bulbquiz/bulb/protocol"
)

// mustBeRemoved waits for c to get a removed frame and then be closed with 4001.
func mustBeRemoved(tb testing.TB, c *wsClient, message string) {
	tb.Helper()
	if f := c.next(tb, "removed"); !strings.Contains(string(f.raw), `"message":"`+message+`"`) {
		tb.Fatalf("got %s, want a removed frame saying %q", f.raw, message)
	}
	select {
	case err := <-c.closed:
		if got := websocket.CloseStatus(err); got != protocol.CloseRemoved {
			tb.Fatalf("got close %v (%v), want %d", got, err, protocol.CloseRemoved)
		}
	case <-time.After(5 * time.Second):
		tb.Fatal("the removed player's socket was not closed")
	}
}

// mustRefuseDial checks that /ws refuses token with 401.
func (s *testServer) mustRefuseDial(tb testing.TB, token string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, strings.Replace(s.URL, "http", "ws", 1)+"/ws?token="+token, nil)
	if err == nil {
		c.CloseNow()
		tb.Fatal("a removed player's token opened a socket")
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		tb.Fatalf("dialing with a removed player's token: got %v (%v), want 401", resp, err)
	}
}

func TestRemovePlayer(t *testing.T) {
	t.Parallel()
	s := MustStartServer(t, nil)
	code, host := s.MustRoom(t, sampleQuiz)
	room := "/api/rooms/" + code
	h := s.MustDial(t, host)
	h.next(t, "welcome")
	mallory, malloryToken := s.MustJoin(t, code, "mallory")
	bob, bobToken := s.MustJoin(t, code, "bob")
	m := s.MustDial(t, malloryToken)
	m.next(t, "welcome")
	b := s.MustDial(t, bobToken)
	b.next(t, "welcome")

	// a player removes only itself; a host never "me"; an unknown player is not found
	s.mustCall(t, http.StatusForbidden, "DELETE", room+"/players/"+mallory, bobToken, nil, nil)
	s.mustCall(t, http.StatusForbidden, "DELETE", room+"/players/me", host, nil, nil)
	s.mustCall(t, http.StatusNotFound, "DELETE", room+"/players/nobody", host, nil, nil)

	var removed struct{ PlayerID, Name string }
	s.mustCall(t, http.StatusOK, "DELETE", room+"/players/"+mallory, host, nil, &removed)
	if removed.PlayerID != mallory || removed.Name != "mallory" {
		t.Fatalf("got %+v, want mallory", removed)
	}
	mustBeRemoved(t, m, "the host removed you from the room")
	if f := h.next(t, "left"); !strings.Contains(string(f.raw), `"playerId":"`+mallory+`","name":"mallory"`) {
		t.Fatalf("the host got %s, want mallory left", f.raw)
	}
	s.mustCall(t, http.StatusUnauthorized, "GET", room+"/leaderboard", malloryToken, nil, nil)
	s.mustRefuseDial(t, malloryToken)
	s.mustCall(t, http.StatusNotFound, "DELETE", room+"/players/"+mallory, host, nil, nil)
	s.MustJoin(t, code, "MALLORY") // the name is free again

	// a player leaves by itself
	s.mustCall(t, http.StatusOK, "DELETE", room+"/players/me", bobToken, nil, &removed)
	if removed.PlayerID != bob {
		t.Fatalf("leaving: got %+v, want bob", removed)
	}
	mustBeRemoved(t, b, "you left the room")
	s.mustCall(t, http.StatusUnauthorized, "DELETE", room+"/players/me", bobToken, nil, nil)
	s.mustRefuseDial(t, bobToken)

	var state struct {
		Players []struct{ Name string }
	}
	s.mustCall(t, http.StatusOK, "GET", room, host, nil, &state)
	if len(state.Players) != 1 || state.Players[0].Name != "MALLORY" {
		t.Fatalf("got players %+v, want the new MALLORY alone", state.Players)
	}
}

func TestLockRoom(t *testing.T) {
	t.Parallel()
	s := MustStartServer(t, nil)
	code, host := s.MustRoom(t, sampleQuiz)
	room := "/api/rooms/" + code
	_, player := s.MustJoin(t, code, "early")

	s.mustCall(t, http.StatusForbidden, "POST", room+"/lock", player, map[string]bool{"locked": true}, nil)
	s.mustCall(t, http.StatusBadRequest, "POST", room+"/lock", host, map[string]string{}, nil)
	var locked struct{ Locked bool }
	s.mustCall(t, http.StatusOK, "POST", room+"/lock", host, map[string]bool{"locked": true}, &locked)
	if !locked.Locked {
		t.Fatal("lock: got locked false, want true")
	}
	var state struct{ Locked bool }
	s.mustCall(t, http.StatusOK, "GET", room, host, nil, &state)
	if !state.Locked {
		t.Fatal("room state: got locked false, want true")
	}
	var refused apiError
	s.mustCall(t, http.StatusConflict, "POST", room+"/players", "", map[string]string{"name": "late"}, &refused)
	if refused.Error.Code != "conflict" || refused.Error.Message != "the room is locked" {
		t.Fatalf("joining a locked room: got %+v, want conflict: the room is locked", refused.Error)
	}
	// players already in stay in
	s.mustCall(t, http.StatusOK, "GET", room+"/leaderboard", player, nil, nil)

	s.mustCall(t, http.StatusOK, "POST", room+"/lock", s.Admin, map[string]bool{"locked": false}, &locked)
	if locked.Locked {
		t.Fatal("unlock: got locked true, want false")
	}
	s.MustJoin(t, code, "late")
}

// TestRemovePlayerAcrossNodes: the host removes a player on one node while the player's
// socket is on another; the removal reaches it there.
func TestRemovePlayerAcrossNodes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a, b := MustStartNode(t, srv.URL(), "a"), MustStartNode(t, srv.URL(), "b")
	code, host := a.MustRoom(t, sampleQuiz)
	id, token := a.MustJoin(t, code, "mallory")
	m := b.MustDial(t, token)
	m.next(t, "welcome")
	a.mustCall(t, http.StatusOK, "DELETE", "/api/rooms/"+code+"/players/"+id, host, nil, nil)
	mustBeRemoved(t, m, "the host removed you from the room")
	b.mustRefuseDial(t, token)
	a.mustRefuseDial(t, token)
}

// TestRoomExpires: with --room-ttl, a room nobody uses is gone after it (404), its tokens
// with it (401), while a room in use stays.
func TestRoomExpires(t *testing.T) {
	t.Parallel()
	const ttl = 500 * time.Millisecond
	s := MustStartServer(t, map[string]string{"BULB_ROOM_TTL": "1h"}, "--room-ttl", ttl.String()) // the flag wins
	quiet, host := s.MustRoom(t, sampleQuiz)
	_, player := s.MustJoin(t, quiet, "quiet")
	busy, busyHost := s.MustRoom(t, sampleQuiz)
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		if status, _ := s.call(t, "GET", "/api/rooms/"+quiet, s.Admin, nil, nil); status == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the quiet room was not gone within 10 s")
		}
		s.MustJoin(t, busy, "p"+strconv.Itoa(i))
		time.Sleep(ttl / 5)
	}
	s.mustCall(t, http.StatusUnauthorized, "GET", "/api/rooms/"+quiet, host, nil, nil)
	s.mustCall(t, http.StatusUnauthorized, "GET", "/api/rooms/"+quiet+"/leaderboard", player, nil, nil)
	s.mustCall(t, http.StatusNotFound, "POST", "/api/rooms/"+quiet+"/players", "", map[string]string{"name": "late"}, nil)
	s.mustCall(t, http.StatusOK, "GET", "/api/rooms/"+busy, busyHost, nil, nil)
}

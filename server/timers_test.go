package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/bulbquiz/bulb/internal/clocksync"
	"github.com/bulbquiz/bulb/internal/redistest"
)

// TestTimeLimitAcrossNodes: on two nodes of one Redis, a question's time limit closes it
// once, on time, though the node that started it dies meanwhile; every player, on either
// node, gets its timer, one close and one reveal; a presenter on the other node counts the
// answers. Then the room is deleted on the Redis engine: its players are removed, its
// tokens dead.
func TestTimeLimitAcrossNodes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	n1, n2 := MustStartNode(t, srv.URL(), "n1"), MustStartNode(t, srv.URL(), "n2")
	code, host := n2.MustRoom(t, `{"questions":[{"kind":"choice","text":"a","choices":["x","y"],"answer":0,"timeLimitMs":1500},
		{"kind":"choice","text":"b","choices":["x","y"],"answer":1}]}`)
	room := "/api/rooms/" + code
	var state struct{ PresenterToken string }
	n2.mustCall(t, 200, "GET", room, host, nil, &state)
	pres := n2.MustDial(t, state.PresenterToken)
	pres.next(t, "welcome")
	var clients []*wsClient
	for i := range 6 {
		_, token := n2.MustJoin(t, code, fmt.Sprintf("p%d", i))
		c := n2.MustDial(t, token)
		c.next(t, "welcome")
		clients = append(clients, c)
	}

	n1.mustCall(t, 200, "POST", room+"/questions/1/open", host, nil, nil)
	var started struct{ RevealAt time.Time }
	n1.mustCall(t, 200, "POST", room+"/questions/1/start", host, nil, &started)
	end := started.RevealAt.Add(1500 * time.Millisecond)
	for i, c := range clients {
		tm := c.next(t, "timer")
		var f struct{ EndsAt float64 }
		if err := json.Unmarshal(tm.raw, &f); err != nil || clocksync.Time(f.EndsAt).Sub(end).Abs() > time.Millisecond {
			t.Fatalf("client %d: got %s, want the timer of the close at %v", i, tm.raw, end)
		}
	}
	clients[0].send(t, map[string]any{"type": "answer", "n": 1, "choice": 0})
	clients[0].reply(t)
	if f := pres.next(t, "tally"); !strings.Contains(string(f.raw), `"answers":1`) {
		t.Errorf("the presenter on the other node: got %s, want the tally of one answer", f.raw)
	}
	n1.kill(t) // the node that scheduled the close dies before it

	for i, c := range clients {
		f := c.awaitWithin(t, "close", 10*time.Second, func(f received) bool { return f.Type == "close" })
		if f.at.Before(end) || f.at.After(end.Add(leaseWait)) {
			t.Errorf("client %d: closed at %v, want at %v (within the lease's %v)", i, f.at, end, leaseWait)
		}
		c.next(t, "reveal")
	}
	time.Sleep(time.Second) // a second close would come within this
	for i, c := range clients {
		for len(c.frames) > 0 {
			if f := <-c.frames; f.Type == "close" || f.Type == "reveal" {
				t.Fatalf("client %d got a second %s: %s", i, f.Type, f.raw)
			}
		}
	}

	n2.mustCall(t, 200, "DELETE", room, host, nil, nil)
	for i, c := range clients {
		if f := c.next(t, "removed"); !strings.Contains(string(f.raw), "deleted") {
			t.Errorf("client %d: got %s, want removed, the room deleted", i, f.raw)
		}
		select {
		case err := <-c.closed:
			if got := websocket.CloseStatus(err); got != 4001 {
				t.Errorf("client %d: closed with %v, want 4001", i, got)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("client %d: not closed", i)
		}
	}
	if f := pres.next(t, "deleted"); f.Type != "deleted" {
		t.Errorf("the presenter: got %s, want deleted", f.raw)
	}
	n2.mustCall(t, 401, "GET", room, host, nil, nil)
	n2.mustCall(t, 404, "POST", room+"/players", "", map[string]string{"name": "late"}, nil)
}

// leaseWait bounds how late a timed close fires when the node that scheduled it died:
// another node waits out the dead one's lease (quiz's leaseTTL, 3 s) at most, plus a margin.
const leaseWait = 4 * time.Second

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/bulbquiz/bulb/protocol"
)

// newTestPeer serves a peer on channel "room" until the test ends.
func newTestPeer(t *testing.T) (*peer, *httptest.Server) {
	t.Helper()
	p, err := newPeer("room", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.shutdown(ctx)
		srv.Close()
	})
	return p, srv
}

// exchange writes msg and returns the next message, within 5 s.
func exchange(t *testing.T, c *websocket.Conn, msg string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if msg != "" {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	_, data, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestPeer: a client connects and subscribes in centrifuge's JSON protocol, syncs its
// clock through the RPC, reports seen, and receives Bulb's start frame, byte for byte, as
// a publication's data.
func TestPeer(t *testing.T) {
	p, srv := newTestPeer(t)
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/connection/websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	got := exchange(t, c, `{"id":1,"connect":{"name":"a"}}`+"\n"+`{"id":2,"subscribe":{"channel":"room"}}`)
	for !bytes.Contains(got, []byte(`"id":2`)) { // the replies may come in one message or two
		got = append(got, exchange(t, c, "")...)
	}
	if bytes.Contains(got, []byte(`"error"`)) || !bytes.Contains(got, []byte(`"id":1,"connect"`)) {
		t.Fatalf("connect and subscribe: got %s", got)
	}

	got = exchange(t, c, `{"id":3,"rpc":{"method":"sync","data":{"type":"sync","t0":1700000000000.5}}}`)
	var rpc struct {
		ID  int
		RPC struct{ Data protocol.SyncFrame }
	}
	if err := json.Unmarshal(got, &rpc); err != nil || rpc.ID != 3 || rpc.RPC.Data.T0 != 1700000000000.5 ||
		rpc.RPC.Data.T1 <= 0 || rpc.RPC.Data.T2 < rpc.RPC.Data.T1 || !bytes.Contains(got, []byte(`"data":{"type":"sync",`)) {
		t.Errorf("sync: got %s (%v), want t0 back and t1 ≤ t2", got, err)
	}

	if err := c.Write(ctx, websocket.MessageText, []byte(`{"send":{"data":{"type":"seen","seq":1,"receivedAt":1,"revealedAt":2,"errorMs":0.1,"late":false}}}`)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(srv.URL+"/start?n=4", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != `{"seq":1,"recipients":1}`+"\n" {
		t.Errorf("POST /start: got %s, want seq 1, 1 recipient", body)
	}
	want := `{"push":{"channel":"room","pub":{"data":` + string(protocol.AppendStart(nil, 4, 1, 0)) + `}}}`
	if got := strings.TrimSpace(string(exchange(t, c, ""))); got != want {
		t.Errorf("start: got %s, want %s", got, want)
	}
	// An asynchronous message is handled apart from the connection's reads: it may be
	// counted a moment after the start went out.
	for deadline := time.Now().Add(5 * time.Second); p.seen.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if p.seen.Load() != 1 || p.syncs.Load() != 1 {
		t.Errorf("got %d seen, %d syncs, want 1, 1", p.seen.Load(), p.syncs.Load())
	}

	for _, bad := range []string{"/start", "/start?n=0", "/start?n=x"} {
		resp, err := http.Post(srv.URL+bad, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %s: got %s, want 400", bad, resp.Status)
		}
	}
}

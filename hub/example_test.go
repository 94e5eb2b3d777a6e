package hub_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/bulbquiz/bulb/hub"
	"github.com/bulbquiz/bulb/protocol"
)

// greeter is a Handler: it welcomes every new connection and ignores what clients send.
type greeter struct{}

func (greeter) Open(_ context.Context, c *hub.Conn) {
	c.Send(fmt.Appendf(nil, `{"type":"welcome","playerId":%q}`, c.Client().ID))
}

func (greeter) Frame(context.Context, *hub.Conn, protocol.ClientFrame, time.Time) {}

// Serve WebSocket connections with the hub, then light the bulb of a room: every player
// gets the same start frame.
func Example() {
	h := hub.New(hub.Options{Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		// A real server knows the client from its token; here the query says who it is.
		client := hub.Client{Room: "482913", ID: r.URL.Query().Get("player"), Name: r.URL.Query().Get("player")}
		h.Serve(r.Context(), ws, client, greeter{})
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names := []string{"alice", "bob"}
	var clients []*websocket.Conn
	for _, name := range names {
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/?player="+name, nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer ws.CloseNow()
		// The welcome comes from Open, so the hub has registered the client by now.
		_, welcome, _ := ws.Read(ctx)
		fmt.Printf("%s got %s\n", name, welcome)
		clients = append(clients, ws)
	}

	seq, recipients, err := h.Start(ctx, "482913", 1, time.Time{})
	fmt.Printf("start %d sent to %d players, err %v\n", seq, recipients, err)
	for i, ws := range clients {
		_, frame, _ := ws.Read(ctx)
		fmt.Printf("%s got %s\n", names[i], frame)
		ws.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"ack","seq":%d}`, seq))
	}

	for _, ws := range clients {
		ws.Close(websocket.StatusNormalClosure, "bye")
	}
	h.Shutdown(ctx)
	st := h.Fairness("482913", 0).Starts[0]
	// The acks were read before the close handshakes above ended.
	fmt.Printf("fairness: seq %d, %d recipients, %d acked, %d dropped\n", st.Seq, st.Recipients, st.Acked, st.Dropped)

	// Output:
	// alice got {"type":"welcome","playerId":"alice"}
	// bob got {"type":"welcome","playerId":"bob"}
	// start 1 sent to 2 players, err <nil>
	// alice got {"type":"start","n":1,"seq":1}
	// bob got {"type":"start","n":1,"seq":1}
	// fairness: seq 1, 2 recipients, 2 acked, 0 dropped
}

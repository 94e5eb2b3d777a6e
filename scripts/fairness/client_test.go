package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/bulbquiz/bulb/internal/clocksync"
)

// TestSyncedClient runs a lab client against a WebSocket server that answers its sync
// samples as Bulb does and, after the burst, sends a synced start: the client lights at
// the instant, answers a reaction time later, and reports seen in between; closing the
// connection stops its timers (the next sync sample's among them).
func TestSyncedClient(t *testing.T) {
	const reaction = 120 * time.Millisecond
	type got struct {
		syncs      int
		burst      time.Duration // from the first sync sample to the eighth
		at         float64       // the start's instant, ms
		seen       map[string]any
		seenAt     time.Time
		answeredAt time.Time
		err        error
	}
	done := make(chan got, 1)
	srv := serveWS(10*time.Second, func(ctx context.Context, c *websocket.Conn) {
		var g got
		var first time.Time
		for g.answeredAt.IsZero() || g.seen == nil {
			_, data, err := c.Read(ctx)
			now := time.Now()
			if err != nil {
				g.err = err
				break
			}
			var f map[string]any
			if err := json.Unmarshal(data, &f); err != nil {
				g.err = err
				break
			}
			switch f["type"] {
			case "sync":
				if g.syncs++; g.syncs == 1 {
					first = now
				}
				t1 := clocksync.Millis(now)
				c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"sync","t0":%v,"t1":%.3f,"t2":%.3f}`, f["t0"], t1, clocksync.Millis(time.Now())))
				if g.syncs == syncBurst {
					g.burst = now.Sub(first)
					g.at = clocksync.Millis(time.Now().Add(200 * time.Millisecond))
					c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"start","n":1,"seq":7,"at":%.3f}`, g.at))
				}
			case "seen":
				g.seen, g.seenAt = f, now
			case "answer":
				g.answeredAt = now
			default:
				g.err = fmt.Errorf("unexpected frame %s", data)
			}
		}
		done <- g
		c.Close(websocket.StatusNormalClosure, "")
	}, func(err error) { done <- got{err: err} })
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	r := &room{replies: make([]atomic.Int32, 2), synced: true}
	c := &client{room: r, conn: conn, rng: rand.New(rand.NewPCG(1, 1)),
		recs: map[int]*record{}, errs: map[string]int{}, timers: map[*time.Timer]struct{}{}}
	cfg := config{reactionMean: reaction, reactionSD: 0, reactionFloor: 0}
	read := make(chan struct{})
	go func() { defer close(read); c.read(cfg) }()
	c.startSync()

	g := <-done
	<-read // the server closed: the read loop stopped every timer, and returns
	if g.err != nil {
		t.Fatal(g.err)
	}
	if g.syncs != syncBurst {
		t.Errorf("sync samples: got %d, want the burst's %d (the next comes %v later)", g.syncs, syncBurst, syncEvery)
	}
	if min, max := (syncBurst-1)*syncSpacing, (syncBurst-1)*syncSpacing+150*time.Millisecond; g.burst < min || g.burst > max {
		t.Errorf("the burst took %v, want %v (and not much more)", g.burst, min)
	}
	rec := c.recs[1]
	if rec == nil || rec.lit.IsZero() || !rec.clocked || rec.late {
		t.Fatalf("record: got %+v, want lit on time with a clock estimate", rec)
	}
	// Over loopback the estimate's offset is within its error bound of 0, and the bulb
	// lights at the instant.
	if lit := clocksync.Millis(rec.lit) - g.at; lit < -rec.est.Error-0.5 || lit > rec.est.Error+5 {
		t.Errorf("lit %.2f ms after the instant, want within the estimate's error %.2f ms (and a little late for the scheduler)", lit, rec.est.Error)
	}
	if d := g.answeredAt.Sub(rec.lit); d < reaction || d > reaction+50*time.Millisecond {
		t.Errorf("answered %v after lighting, want the reaction time %v", d, reaction)
	}
	if d := rec.sent.Sub(rec.lit); d < reaction {
		t.Errorf("the record's reaction: got %v, want at least %v", d, reaction)
	}
	if d := g.seenAt.Sub(rec.lit); d < seenMin || d > seenMax+50*time.Millisecond {
		t.Errorf("seen %v after lighting, want %v to %v", d, seenMin, seenMax)
	}
	if g.seen["seq"] != 7.0 || g.seen["late"] != false {
		t.Errorf("seen: got %v, want seq 7, not late", g.seen)
	}
	if revealed, _ := g.seen["revealedAt"].(float64); math.Abs(revealed-(clocksync.Millis(rec.lit)+rec.est.Offset)) > 0.01 {
		t.Errorf("seen revealedAt: got %v, want the lighting in server time %v", revealed, clocksync.Millis(rec.lit)+rec.est.Offset)
	}
	c.mu.Lock()
	left := len(c.timers)
	c.mu.Unlock()
	if left != 0 {
		t.Errorf("%d timers left after the connection ended", left)
	}
}

// serveWS starts a test server that accepts each request's WebSocket and hands it to
// handle with a context of the given timeout; a failed accept goes to fail.
func serveWS(timeout time.Duration, handle func(ctx context.Context, c *websocket.Conn), fail func(error)) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			fail(err)
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		handle(ctx, c)
	}))
}

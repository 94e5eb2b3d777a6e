package hub

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/bulbquiz/bulb/internal/clocksync"
	"github.com/bulbquiz/bulb/protocol"
)

// Role says whether a connection is a player's, a host's or a presenter's. Only players
// receive the measured start fan-out; hosts and presenters (the watchers) get the start
// frame after it.
type Role uint8

// Connection roles.
const (
	Player Role = iota
	Host
	Presenter // a room's projector screen: what everyone gets and SendPresenters
)

// Client is who is on the other end of a connection.
type Client struct {
	Room string
	ID   string // player ID; empty for hosts and presenters
	Name string
	Role Role
}

// Handler receives what a connection reads, other than acks. Frame is called from the
// connection's reader goroutine only, one frame at a time, with the instant the frame was
// read; it may reply with c.Send.
type Handler interface {
	// Open is called once the connection is registered, before any frame is read.
	Open(ctx context.Context, c *Conn)
	// Frame is called for every well-formed client frame that is not an ack, decoded.
	Frame(ctx context.Context, c *Conn, f protocol.ClientFrame, received time.Time)
}

const (
	rttSamples = 8
	syncQueue  = 4 // clock sync answers waiting per connection; a request past them is ignored
	startQueue = 4 // start frames waiting per connection before it is dropped as too slow
)

// Conn is one WebSocket connection registered in the hub.
//
// An idle connection has one goroutine, its reader. Its frames are written by one of the
// hub's writer goroutines, which takes the connection when a frame is queued and writes
// until its queues are empty. Pings start from a timer, each on a goroutine of its own
// until its pong is back.
type Conn struct {
	hub    *Hub
	ws     *websocket.Conn
	client Client
	limit  int // ordinary frames waiting, at most

	mu        sync.Mutex
	frames    [][]byte              // ordinary frames waiting, oldest first; nil when none
	starts    [startQueue]*delivery // start frames waiting: a ring, always written first
	nstart    int                   // how many, from starts[head]
	head      int
	syncs     [syncQueue]syncRequest // clock sync answers waiting: a ring, written after starts
	nsync     int                    // how many, from syncs[shead]
	shead     int
	writing   bool // a writer has the connection (or, once closing, has been given it)
	closing   bool // drop was called: the writer sends the close frame; nothing is queued
	closeCode websocket.StatusCode
	closeWhy  string
	farewell  []byte // the frame written before the close frame, if any
	pinger    *time.Timer
	tasks     sync.WaitGroup // the writer and the ping at work on the connection

	lastStart  atomic.Pointer[delivery]
	writeSince atomic.Int64 // when the write under way began, by the hub's watchdog; 0 if none

	rttMu sync.Mutex
	rtts  [rttSamples]time.Duration // ring of recent ping round trips
	nrtt  int

	// The reader goroutine's own: the client's frame rate (limit.go).
	allowed bucket // frames the client may send
	excess  bucket // frames past that before it is dropped as a flooder
	refused int    // frames refused in a row
}

// Client returns who is on the other end.
func (c *Conn) Client() Client { return c.client }

// Send queues frame for this connection without waiting. If the queue is full the client is
// too slow: it is dropped and Send returns false. frame must not be changed afterwards.
func (c *Conn) Send(frame []byte) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	if len(c.frames) >= c.limit {
		c.mu.Unlock()
		c.drop(protocol.CloseTooSlow, "too slow: send queue full", "queue_full")
		return false
	}
	c.frames = append(c.frames, frame)
	c.wakeLocked()
	c.mu.Unlock()
	return true
}

func (c *Conn) sendStart(d *delivery) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	if c.nstart == startQueue {
		c.mu.Unlock()
		c.drop(protocol.CloseTooSlow, "too slow: start queue full", "queue_full")
		return false
	}
	c.lastStart.Store(d) // before the frame can reach the client and its ack come back
	c.starts[(c.head+c.nstart)%startQueue] = d
	c.nstart++
	c.wakeLocked()
	c.mu.Unlock()
	return true
}

// syncRequest is a client's clock sync sample to answer: its send time t0 and when the
// server received it (t1), both in ms.
type syncRequest struct {
	t0, t1 float64
}

// sendSync queues the answer to a client's sync sent at t0 (ms, the client's clock) and
// received at received; the writer stamps the server's send time t2 just before it writes
// the answer, so that the time the answer waits here counts as the server's, not the
// network's. Syncs past a few waiting are ignored: the client sends another.
func (c *Conn) sendSync(t0 float64, received time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.nsync == syncQueue {
		return
	}
	c.syncs[(c.shead+c.nsync)%syncQueue] = syncRequest{t0: t0, t1: clocksync.Millis(received)}
	c.nsync++
	c.wakeLocked()
}

// wakeLocked hands the connection to a writer unless one has it. c.mu is held.
func (c *Conn) wakeLocked() {
	if !c.writing {
		c.writing = true
		c.tasks.Add(1)
		c.hub.dispatch(c)
	}
}

// Close ends the connection with the given close code and reason, once: frames still
// waiting are not sent, but farewell, if not nil, is written just before the close frame.
func (c *Conn) Close(code websocket.StatusCode, why string, farewell []byte) {
	c.end(code, why, "", farewell)
}

// drop ends the connection once with the given close code; a writer sends the close
// frame. Frames still waiting are not sent. reason labels the drop in the metrics; empty
// means not a drop (shutdown).
func (c *Conn) drop(code websocket.StatusCode, why, reason string) { c.end(code, why, reason, nil) }

// end is drop with a farewell frame.
func (c *Conn) end(code websocket.StatusCode, why, reason string, farewell []byte) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.closeCode, c.closeWhy, c.farewell = code, why, farewell
	for i := range c.nstart { // starts still waiting never reach this client
		c.starts[(c.head+i)%startQueue].dropped.Store(true)
	}
	c.frames, c.starts, c.nstart, c.nsync = nil, [startQueue]*delivery{}, 0, 0
	if c.pinger != nil {
		c.pinger.Stop()
	}
	c.wakeLocked()
	c.mu.Unlock()
	if reason != "" {
		c.hub.m.dropped.WithLabelValues(reason).Inc()
		c.hub.log.Info("dropped client", "room", c.client.Room, "player", c.client.ID, "reason", reason)
	}
}

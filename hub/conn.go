package hub

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Role says whether a connection is a player's or a host's. Only players receive the
// measured start fan-out.
type Role uint8

// Connection roles.
const (
	Player Role = iota
	Host
)

// Client is who is on the other end of a connection.
type Client struct {
	Room string
	ID   string // player ID; empty for hosts
	Name string
	Role Role
}

// Handler receives what a connection reads, other than acks. Frame is called from the
// connection's reader goroutine only, one frame at a time, with the instant the frame was
// read; it may reply with c.Send.
type Handler interface {
	// Open is called once the connection is registered, before any frame is read.
	Open(ctx context.Context, c *Conn)
	// Frame is called for every text frame that is not an ack.
	Frame(ctx context.Context, c *Conn, data []byte, received time.Time)
}

// Close codes the hub uses besides the standard ones.
const (
	// StatusReplaced closes a player's older connection when it connects again.
	StatusReplaced websocket.StatusCode = 4000
)

const rttSamples = 8

// Conn is one WebSocket connection registered in the hub.
type Conn struct {
	hub    *Hub
	ws     *websocket.Conn
	client Client

	queue chan []byte    // ordinary frames
	start chan *delivery // start frames: always written first

	done      chan struct{} // closed by drop
	dropOnce  sync.Once
	closeCode websocket.StatusCode
	closeWhy  string

	lastStart atomic.Pointer[delivery]
	pinging   atomic.Bool
	watchdog  *time.Timer // armed during each write: closes a socket whose write hangs

	rttMu sync.Mutex
	rtts  [rttSamples]time.Duration // ring of recent ping round trips
	nrtt  int
}

// Client returns who is on the other end.
func (c *Conn) Client() Client { return c.client }

// Send queues frame for this connection without waiting. If the queue is full the client is
// too slow: it is dropped and Send returns false. frame must not be changed afterwards.
func (c *Conn) Send(frame []byte) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	select {
	case c.queue <- frame:
		return true
	default:
		c.drop(websocket.StatusPolicyViolation, "too slow: send queue full", "queue_full")
		return false
	}
}

func (c *Conn) sendStart(d *delivery) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	c.lastStart.Store(d) // before the frame can reach the client and its ack come back
	select {
	case c.start <- d:
		return true
	default:
		c.drop(websocket.StatusPolicyViolation, "too slow: start queue full", "queue_full")
		return false
	}
}

// drop ends the connection once with the given close code; the writer goroutine sends the
// close frame. reason labels the drop in the metrics; empty means not a drop (shutdown).
func (c *Conn) drop(code websocket.StatusCode, why, reason string) {
	c.dropOnce.Do(func() {
		c.closeCode, c.closeWhy = code, why
		if reason != "" {
			c.hub.m.dropped.WithLabelValues(reason).Inc()
			c.hub.log.Info("dropped client", "room", c.client.Room, "player", c.client.ID, "reason", reason)
		}
		close(c.done)
	})
}

// Serve registers ws as the given client's connection and runs it until it closes: the
// calling goroutine reads, a writer goroutine writes. It returns when the connection is
// closed and unregistered. Frames other than acks go to handler.
func (h *Hub) Serve(ctx context.Context, ws *websocket.Conn, client Client, handler Handler) error {
	c := &Conn{
		hub:    h,
		ws:     ws,
		client: client,
		queue:  make(chan []byte, queueSize(h.opts, client.Role)),
		start:  make(chan *delivery, 4),
		done:   make(chan struct{}),
	}
	ws.SetReadLimit(h.opts.ReadLimit)
	// One timer per connection, reset per write, instead of a context per write: the
	// writes of a start are the hot path.
	c.watchdog = time.AfterFunc(time.Hour, func() { ws.CloseNow() })
	c.watchdog.Stop()
	if err := h.register(c); err != nil {
		ws.Close(websocket.StatusGoingAway, "server shutting down")
		return err
	}
	defer h.serving.Done()
	defer h.unregister(c)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { c.write(ctx) })
	handler.Open(ctx, c)
	err := c.read(ctx, handler)
	c.drop(websocket.StatusNormalClosure, "", "")
	cancel()
	wg.Wait()
	return err
}

func queueSize(o Options, r Role) int {
	if r == Host {
		return o.HostQueue
	}
	return o.QueueSize
}

func (h *Hub) register(c *Conn) error {
	r := h.room(c.client.Room, true)
	// Check closed and join the room under one h.mu read lock, so that Shutdown (which
	// takes h.mu to set closed and collect the connections) either sees c or refuses it.
	h.mu.RLock()
	if h.closed {
		h.mu.RUnlock()
		return ErrClosed
	}
	h.serving.Add(1)
	r.mu.Lock()
	var old *Conn
	if c.client.Role == Host {
		r.hosts[c] = struct{}{}
	} else {
		old = r.players[c.client.ID]
		r.players[c.client.ID] = c
	}
	r.mu.Unlock()
	h.mu.RUnlock()
	if old != nil {
		old.drop(StatusReplaced, "replaced by a newer connection", "")
	}
	h.m.connections.Inc()
	return nil
}

func (h *Hub) unregister(c *Conn) {
	r := h.room(c.client.Room, false)
	r.mu.Lock()
	if c.client.Role == Host {
		delete(r.hosts, c)
	} else if r.players[c.client.ID] == c {
		delete(r.players, c.client.ID)
	}
	r.mu.Unlock()
	h.m.connections.Dec()
}

// read reads frames until the connection fails or is closed (a drop makes the writer
// close the socket, which ends Read). Acks are recorded here; everything else goes to the
// handler.
func (c *Conn) read(ctx context.Context, handler Handler) error {
	for {
		typ, data, err := c.ws.Read(ctx)
		received := time.Now()
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) { // the library has sent the 1009 close
				c.hub.m.dropped.WithLabelValues("too_big").Inc()
			}
			return err
		}
		if typ != websocket.MessageText {
			c.Send(binaryError)
			continue
		}
		if c.ack(data, received) {
			continue
		}
		handler.Frame(ctx, c, data, received)
	}
}

var binaryError = []byte(`{"type":"error","code":"invalid","message":"frames are JSON text, not binary"}`)

// ack records an ack frame's arrival and reports whether data was one.
func (c *Conn) ack(data []byte, received time.Time) bool {
	var f struct {
		Type string `json:"type"`
		Seq  uint64 `json:"seq"`
	}
	if json.Unmarshal(data, &f) != nil || f.Type != "ack" {
		return false
	}
	if d := c.lastStart.Load(); d != nil && d.rec.Seq == f.Seq {
		d.acked.CompareAndSwap(0, int64(received.Sub(d.rec.t0)))
	}
	return true
}

// write is the connection's writer goroutine: start frames first, then the queue; pings
// on a ticker. On drop it sends the close frame.
func (c *Conn) write(ctx context.Context) {
	var pings sync.WaitGroup
	defer pings.Wait()
	tick := time.NewTicker(c.hub.opts.PingInterval)
	defer tick.Stop()
	c.startPing(ctx, &pings)
	for {
		select {
		case d := <-c.start:
			c.writeStart(d)
			continue
		default:
		}
		select {
		case d := <-c.start:
			c.writeStart(d)
		case f := <-c.queue:
			if err := c.writeFrame(f); err != nil {
				c.drop(websocket.StatusPolicyViolation, "too slow: write timed out", "write_failed")
			}
		case <-tick.C:
			c.startPing(ctx, &pings)
		case <-c.done:
			c.closeSocket()
			return
		}
	}
}

func (c *Conn) writeStart(d *delivery) {
	err := c.writeFrame(d.rec.frame)
	if err != nil {
		d.dropped.Store(true)
		c.drop(websocket.StatusPolicyViolation, "too slow: write timed out", "write_failed")
		return
	}
	w := time.Since(d.rec.t0)
	d.written.Store(int64(w))
	d.rtt.Store(int64(c.lastRTT()))
	c.hub.m.startWrite.Observe((w - time.Duration(d.enqueued.Load())).Seconds())
}

// writeFrame writes one text frame; if it takes longer than the write timeout, the
// watchdog closes the socket, which ends the write with an error.
func (c *Conn) writeFrame(f []byte) error {
	c.watchdog.Reset(c.hub.opts.WriteTimeout)
	err := c.ws.Write(context.Background(), websocket.MessageText, f)
	c.watchdog.Stop()
	return err
}

func (c *Conn) closeSocket() {
	if c.closeCode == websocket.StatusNormalClosure {
		c.ws.CloseNow() // the read side failed: the peer is gone or broke the protocol
		return
	}
	if err := c.ws.Close(c.closeCode, c.closeWhy); err != nil && !errors.Is(err, context.Canceled) {
		c.ws.CloseNow()
	}
}

// startPing measures one round trip in its own goroutine, unless one is under way. A ping
// that times out drops the client: it is not reading.
func (c *Conn) startPing(ctx context.Context, wg *sync.WaitGroup) {
	if !c.pinging.CompareAndSwap(false, true) {
		return
	}
	wg.Go(func() {
		defer c.pinging.Store(false)
		ctx, cancel := context.WithTimeout(ctx, c.hub.opts.PingTimeout)
		defer cancel()
		t := time.Now()
		if err := c.ws.Ping(ctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				c.drop(websocket.StatusPolicyViolation, "not answering pings", "ping_timeout")
			}
			return
		}
		c.addRTT(time.Since(t))
	})
}

func (c *Conn) addRTT(d time.Duration) {
	c.rttMu.Lock()
	defer c.rttMu.Unlock()
	c.rtts[c.nrtt%rttSamples] = d
	c.nrtt++
}

// minRTT is the lowest of the recent round trips, or 0 if none was measured.
func (c *Conn) minRTT() time.Duration {
	c.rttMu.Lock()
	defer c.rttMu.Unlock()
	var m time.Duration
	for i := range min(c.nrtt, rttSamples) {
		if m == 0 || c.rtts[i] < m {
			m = c.rtts[i]
		}
	}
	return m
}

// lastRTT is the latest round trip, or 0 if none was measured.
func (c *Conn) lastRTT() time.Duration {
	c.rttMu.Lock()
	defer c.rttMu.Unlock()
	if c.nrtt == 0 {
		return 0
	}
	return c.rtts[(c.nrtt-1)%rttSamples]
}

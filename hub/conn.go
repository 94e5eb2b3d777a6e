package hub

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/bulbquiz/bulb/protocol"
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
	// Frame is called for every well-formed client frame that is not an ack, decoded.
	Frame(ctx context.Context, c *Conn, f protocol.ClientFrame, received time.Time)
}

const (
	rttSamples = 8
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
	c.frames, c.starts, c.nstart = nil, [startQueue]*delivery{}, 0
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

// Buffer sizes of an accepted connection. net/http hands a hijacked connection its 4 KiB
// read and write buffers, which the library keeps for the connection's life. A client's
// frames (acks, answers) are small, and so are most of the server's: a start frame is
// about 30 bytes, a result about 120, a question a few hundred. A larger frame, such as a
// leaderboard, only takes a second read or write system call.
const (
	readBuffer  = 512
	writeBuffer = 512
)

// Accept is [websocket.Accept] with read and write buffers of 512 bytes instead of
// net/http's 4 KiB ones. Together with [Hub.Attach], which lets the HTTP handler return,
// net/http's buffers are freed with the request.
func Accept(w http.ResponseWriter, r *http.Request, opts *websocket.AcceptOptions) (*websocket.Conn, error) {
	return websocket.Accept(smallBuffers{w}, r, opts)
}

// smallBuffers is a ResponseWriter whose Hijack returns the connection with new, smaller
// buffers.
type smallBuffers struct{ http.ResponseWriter }

func (s smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	// Bytes the client sent after its request (a pipelined first frame) are in net/http's
	// buffer: move them to the new one, where websocket.Accept looks for them.
	var src io.Reader = conn
	n := brw.Reader.Buffered()
	if n > 0 {
		early, _ := brw.Reader.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn)
	}
	br := bufio.NewReaderSize(src, max(readBuffer, n))
	if n > 0 {
		br.Peek(n) // reads the copy only: it holds n bytes
	}
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(conn, writeBuffer)), nil
}

// Serve registers ws as the given client's connection and runs it until it closes or ctx
// is done: the calling goroutine reads. It returns when the connection is closed and
// unregistered. Frames other than acks go to handler.
func (h *Hub) Serve(ctx context.Context, ws *websocket.Conn, client Client, handler Handler) error {
	c, err := h.attach(ws, client)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { ws.CloseNow() })
	defer stop()
	c.open(ctx, handler)
	return c.serve(ctx, handler)
}

// Attach registers ws as the given client's connection, calls handler's Open and
// returns; the hub reads the connection on a goroutine of its own until it closes or
// [Hub.Shutdown]. An HTTP handler that attaches and returns lets net/http free the
// request's memory while the connection lives. Frames get ctx's values but not its
// cancellation (a request's context ends when its handler returns). Attach fails only
// once the hub is shutting down.
func (h *Hub) Attach(ctx context.Context, ws *websocket.Conn, client Client, handler Handler) error {
	c, err := h.attach(ws, client)
	if err != nil {
		return err
	}
	// Open runs here, on the caller's goroutine, whose stack is about to be freed: the
	// reader's stays the size that reading needs.
	c.open(ctx, handler)
	go func() {
		if err := c.serve(context.WithoutCancel(ctx), handler); err != nil {
			h.log.Debug("connection ended", "room", client.Room, "player", client.ID, "err", err)
		}
	}()
	return nil
}

// attach registers a new connection, or closes ws if the hub is shutting down.
func (h *Hub) attach(ws *websocket.Conn, client Client) (*Conn, error) {
	c := &Conn{hub: h, ws: ws, client: client, limit: queueSize(h.opts, client.Role)}
	ws.SetReadLimit(h.opts.ReadLimit)
	if err := h.register(c); err != nil {
		ws.Close(protocol.CloseGoingAway, "server shutting down")
		return nil, err
	}
	return c, nil
}

// open starts the pings of a registered connection (the first at once) and calls the
// handler's Open.
func (c *Conn) open(ctx context.Context, handler Handler) {
	c.mu.Lock()
	c.pinger = time.AfterFunc(0, c.ping)
	c.mu.Unlock()
	handler.Open(ctx, c)
}

// serve reads an open connection until it fails or is closed, and returns once the
// writer and pings have stopped and the connection is unregistered.
func (c *Conn) serve(ctx context.Context, handler Handler) error {
	defer c.hub.serving.Done()
	defer c.hub.unregister(c)
	err := c.read(ctx, handler)
	c.drop(websocket.StatusNormalClosure, "", "")
	c.tasks.Wait()
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
		old.drop(protocol.CloseReplaced, "replaced by a newer connection", "")
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
// close the socket, which ends Read). Each frame is decoded once, here: acks are recorded,
// a frame that is not a well-formed client frame gets an error frame, and everything else
// goes to the handler. Reads take no context: one with a Done channel would cost every
// read a context.AfterFunc inside the library, and the socket's close ends a read anyway.
func (c *Conn) read(ctx context.Context, handler Handler) error {
	for {
		typ, data, err := c.ws.Read(context.Background())
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
		f, err := protocol.DecodeClient(data)
		switch {
		case err != nil:
			c.Send(protocol.Encode(protocol.ErrorFrame{Code: protocol.Invalid, Message: err.Error()}))
		case f.Type == protocol.TypeAck:
			c.ack(f.Seq, received)
		default:
			handler.Frame(ctx, c, f, received)
		}
	}
}

var binaryError = protocol.Encode(protocol.ErrorFrame{Code: protocol.Invalid, Message: "frames are JSON text, not binary"})

// ack records the arrival of the ack of start seq.
func (c *Conn) ack(seq uint64, received time.Time) {
	if d := c.lastStart.Load(); d != nil && d.rec.Seq == seq {
		d.acked.CompareAndSwap(0, int64(received.Sub(d.rec.t0)))
	}
}

// Delivery tells when the write of question n's start frame to this connection returned
// (or, if it has not yet, when it was enqueued) and the round trip that start's signal
// took: from the write to the client's ack of it, or the median of the connection's recent
// ping round trips if that is less or there is no ack. ok is false if the connection got
// no start of question n.
//
// The ack times this very start's path, jitter and all; a ping's median is the typical
// path (its minimum would under-compensate a jittery one). A client can make its round
// trips look longer, never shorter: one that holds back its pongs still acks at once (or
// its acks show late in the fairness report), so the lesser of the two is taken, and the
// quiz caps what any client gains.
func (c *Conn) Delivery(n int) (written time.Time, rtt time.Duration, ok bool) {
	d := c.lastStart.Load()
	if d == nil || d.rec.N != n {
		return time.Time{}, 0, false
	}
	at := d.written.Load()
	if at == 0 {
		at = d.enqueued.Load()
	}
	rtt = c.medianRTT()
	// An ack read before the writer recorded its write's return (it was descheduled in
	// between) times nothing: the median stands.
	if acked, w := d.acked.Load(), d.written.Load(); w > 0 && acked > w && (rtt == 0 || time.Duration(acked-w) < rtt) {
		rtt = time.Duration(acked - w)
	}
	return d.rec.t0.Add(time.Duration(at)), rtt, true
}

// write runs on a writer goroutine that has the connection: it writes start frames first,
// then the other frames, until both queues are empty, and lets the connection go. After a
// drop it sends the farewell frame, if any, and the close frame instead.
func (c *Conn) write() {
	defer c.tasks.Done()
	for {
		c.mu.Lock()
		if c.closing {
			code, why, farewell := c.closeCode, c.closeWhy, c.farewell
			c.farewell = nil
			c.mu.Unlock()
			if farewell != nil {
				_ = c.writeFrame(farewell) // a failure is the close's too
			}
			c.closeSocket(code, why)
			return
		}
		var d *delivery
		var f []byte
		switch {
		case c.nstart > 0:
			d, c.starts[c.head] = c.starts[c.head], nil
			c.head, c.nstart = (c.head+1)%startQueue, c.nstart-1
		case len(c.frames) > 0:
			f, c.frames[0] = c.frames[0], nil
			if c.frames = c.frames[1:]; len(c.frames) == 0 {
				c.frames = nil // an idle connection keeps no backing array
			}
		default:
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		if d != nil {
			c.writeStart(d)
		} else if err := c.writeFrame(f); err != nil {
			c.drop(protocol.CloseTooSlow, "too slow: write timed out", "write_failed")
		}
	}
}

func (c *Conn) writeStart(d *delivery) {
	err := c.writeFrame(d.rec.frame)
	if err != nil {
		d.dropped.Store(true)
		c.drop(protocol.CloseTooSlow, "too slow: write timed out", "write_failed")
		return
	}
	w := time.Since(d.rec.t0)
	d.written.Store(int64(w))
	d.rtt.Store(int64(c.lastRTT()))
	c.hub.m.startWrite.Observe((w - time.Duration(d.enqueued.Load())).Seconds())
}

// writeFrame writes one text frame, on the writer that holds the connection; if it takes
// longer than the write timeout, the hub's watchdog closes the socket, which ends the
// write with an error. No context per write: the writes of a start are the hot path.
func (c *Conn) writeFrame(f []byte) error {
	c.writeSince.Store(c.hub.dog.now())
	err := c.ws.Write(context.Background(), websocket.MessageText, f)
	c.writeSince.Store(0)
	return err
}

func (c *Conn) closeSocket(code websocket.StatusCode, why string) {
	if code == websocket.StatusNormalClosure {
		c.ws.CloseNow() // the read side failed: the peer is gone or broke the protocol
		return
	}
	if err := c.ws.Close(code, why); err != nil && !errors.Is(err, context.Canceled) {
		c.ws.CloseNow()
	}
}

// ping measures one round trip, on the pinger timer's goroutine, and sets the timer for
// the next one. A ping that times out drops the client: it is not reading.
func (c *Conn) ping() {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.tasks.Add(1)
	c.mu.Unlock()
	defer c.tasks.Done()
	ctx, cancel := context.WithTimeout(context.Background(), c.hub.opts.PingTimeout)
	defer cancel()
	t := time.Now()
	if err := c.ws.Ping(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			c.drop(protocol.CloseTooSlow, "not answering pings", "ping_timeout")
		}
		return
	}
	c.addRTT(time.Since(t))
	c.mu.Lock()
	if !c.closing {
		c.pinger.Reset(c.hub.opts.PingInterval)
	}
	c.mu.Unlock()
}

func (c *Conn) addRTT(d time.Duration) {
	c.rttMu.Lock()
	defer c.rttMu.Unlock()
	c.rtts[c.nrtt%rttSamples] = d
	c.nrtt++
}

// medianRTT is the median of the recent round trips (the lower middle one of an even
// number), or 0 if none was measured.
func (c *Conn) medianRTT() time.Duration {
	c.rttMu.Lock()
	n := min(c.nrtt, rttSamples)
	recent := slices.Clone(c.rtts[:n])
	c.rttMu.Unlock()
	if n == 0 {
		return 0
	}
	slices.Sort(recent)
	return recent[(n-1)/2]
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

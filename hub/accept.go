package hub

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/bulbquiz/bulb/protocol"
	"github.com/coder/websocket"
)

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
	now := time.Now()
	c.allowed.fill(now, h.opts.FrameBurst)
	c.excess.fill(now, h.opts.FrameBurst)
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
	if r != Player {
		return o.HostQueue
	}
	return o.QueueSize
}

func (h *Hub) register(c *Conn) error {
	var r *room
	// Check closed and join the room under one h.mu read lock, so that Shutdown (which
	// takes h.mu to set closed and collect the connections) either sees c or refuses it,
	// and the room is not forgotten meanwhile (forgetLocal takes h.mu too).
	for {
		r = h.room(c.client.Room, true)
		h.mu.RLock()
		if h.rooms[c.client.Room] == r || h.closed {
			break
		}
		h.mu.RUnlock() // forgotten since: take it anew
	}
	if h.closed {
		h.mu.RUnlock()
		return ErrClosed
	}
	h.serving.Add(1)
	r.mu.Lock()
	var old *Conn
	if c.client.Role != Player {
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
	if c.client.Role != Player {
		delete(r.hosts, c)
	} else if r.players[c.client.ID] == c {
		delete(r.players, c.client.ID)
	}
	unused := r.unusedLocked()
	r.mu.Unlock()
	h.m.connections.Dec()
	if unused {
		h.forgetLocal(c.client.Room, false, nil) // nothing of it to keep: no connection, no start
	}
}

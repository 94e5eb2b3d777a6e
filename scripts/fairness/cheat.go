package main

import (
	"context"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The cheater: a client that fakes a large round trip by holding back its pongs. The
// WebSocket library answers every ping by itself, so the cheat sits below it, in the
// net.Conn the library writes to: pongConn parses the client's outgoing byte stream into
// WebSocket frames and writes every pong frame late, every other frame at once. Control
// frames may be sent between the frames of other messages (RFC 6455 §5.5), so a pong that
// is overtaken by later frames is still a valid stream; only the server's ping timer sees
// a difference.

// WebSocket opcodes (RFC 6455 §5.2) the cheat looks at.
const opPong = 0xA

// pongConn is a client-side net.Conn that delays every outgoing pong frame by delay. It
// passes the HTTP upgrade request through untouched, up to its blank line. Write is safe
// for concurrent use; writes of whole frames reach the underlying connection in order,
// except for the pongs.
type pongConn struct {
	net.Conn
	delay time.Duration

	held *atomic.Int64 // counts the pongs held back; may be nil

	mu    sync.Mutex // one write to Conn at a time, so that frames never interleave
	split frameSplitter

	tmu    sync.Mutex // guards timers and closed
	timers map[*time.Timer]struct{}
	closed bool
	wg     sync.WaitGroup // held pongs' timers that were not stopped
}

// dialPongDelayed returns a DialContext function whose connections hold back pongs by
// delay, for an http.Transport; held counts the pongs held back.
func dialPongDelayed(delay time.Duration, held *atomic.Int64) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &pongConn{Conn: c, delay: delay, held: held}, nil
	}
}

// Write queues the pongs in p (and in earlier writes' unfinished frames) to be written
// after the delay and writes everything else now. It reports len(p) written unless the
// underlying write fails.
func (c *pongConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, seg := range c.split.feed(p) {
		if !seg.pong {
			if _, err := c.Conn.Write(seg.data); err != nil {
				return 0, err
			}
			continue
		}
		if c.held != nil {
			c.held.Add(1)
		}
		c.hold(seg.data)
	}
	return len(p), nil
}

// hold writes a pong frame after c.delay, unless the connection is closed by then.
func (c *pongConn) hold(frame []byte) {
	c.tmu.Lock()
	defer c.tmu.Unlock()
	if c.closed {
		return
	}
	if c.timers == nil {
		c.timers = map[*time.Timer]struct{}{}
	}
	var t *time.Timer
	c.wg.Add(1)
	t = time.AfterFunc(c.delay, func() {
		defer c.wg.Done()
		c.tmu.Lock()
		delete(c.timers, t)
		closed := c.closed
		c.tmu.Unlock()
		if closed {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.Conn.Write(frame) // a failed write shows as the connection's failure
	})
	c.timers[t] = struct{}{}
}

// Close closes the connection, drops the pongs still held back and waits for any that
// is being written.
func (c *pongConn) Close() error {
	c.tmu.Lock()
	c.closed = true
	for t := range c.timers {
		if t.Stop() {
			c.wg.Done()
		}
	}
	c.timers = nil
	c.tmu.Unlock()
	err := c.Conn.Close()
	c.wg.Wait()
	return err
}

// segment is a piece of the outgoing stream: the HTTP preamble or one whole frame.
type segment struct {
	data []byte
	pong bool
}

// frameSplitter cuts a client's outgoing byte stream into the HTTP upgrade request (up to
// and including its blank line) and then whole WebSocket frames. It keeps an unfinished
// frame until the rest of it arrives. The zero value is ready at the start of a stream.
type frameSplitter struct {
	framing bool   // past the HTTP request
	crlf    int    // bytes of "\r\n\r\n" matched at the end of the preamble so far
	buf     []byte // the unfinished frame
}

// feed takes the next bytes of the stream and returns the segments they complete, in
// order. Returned data does not alias p.
func (s *frameSplitter) feed(p []byte) []segment {
	var out []segment
	if !s.framing {
		const end = "\r\n\r\n"
		i := 0
		for ; i < len(p) && s.crlf < len(end); i++ {
			switch {
			case p[i] == end[s.crlf]:
				s.crlf++
			case p[i] == end[0]:
				s.crlf = 1
			default:
				s.crlf = 0
			}
		}
		if i > 0 {
			out = append(out, segment{data: append([]byte(nil), p[:i]...)})
		}
		if s.crlf < len(end) {
			return out
		}
		s.framing, p = true, p[i:]
	}
	s.buf = append(s.buf, p...)
	for {
		n, ok := frameLen(s.buf)
		if !ok || len(s.buf) < n {
			break
		}
		out = append(out, segment{data: append([]byte(nil), s.buf[:n]...), pong: s.buf[0]&0x0F == opPong})
		s.buf = s.buf[n:]
	}
	if len(s.buf) == 0 {
		s.buf = nil // let the array go
	}
	return out
}

// frameLen returns the whole length of the frame at the start of b, header and payload,
// or false if b does not yet hold the header up to the payload length.
func frameLen(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	hdr, n := 2, uint64(b[1]&0x7F)
	switch n {
	case 126:
		if len(b) < 4 {
			return 0, false
		}
		hdr, n = 4, uint64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		if len(b) < 10 {
			return 0, false
		}
		hdr, n = 10, binary.BigEndian.Uint64(b[2:10])
	}
	if b[1]&0x80 != 0 { // masked, as every client frame is
		hdr += 4
	}
	return hdr + int(n), true
}

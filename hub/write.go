package hub

import (
	"context"
	"errors"
	"time"

	"github.com/bulbquiz/bulb/internal/clocksync"
	"github.com/bulbquiz/bulb/protocol"
	"github.com/coder/websocket"
)

// write runs on a writer goroutine that has the connection: it writes start frames first,
// then clock sync answers, then the other frames, until the queues are empty, and lets the
// connection go. After a
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
		var sync *syncRequest
		switch {
		case c.nstart > 0:
			d, c.starts[c.head] = c.starts[c.head], nil
			c.head, c.nstart = (c.head+1)%startQueue, c.nstart-1
		case c.nsync > 0:
			req := c.syncs[c.shead]
			sync = &req
			c.shead, c.nsync = (c.shead+1)%syncQueue, c.nsync-1
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
			continue
		}
		if sync != nil {
			f = protocol.AppendSync(make([]byte, 0, 96), sync.t0, sync.t1, clocksync.Millis(time.Now()))
		}
		if err := c.writeFrame(f); err != nil {
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

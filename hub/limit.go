package hub

import (
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

// Why the hub limits the rate of every client's frames: each frame costs the server a read,
// a decode and perhaps a reply, on the reader goroutine of its connection but on the cores
// every connection shares. One socket sending non-answer frames as fast as it could just
// before a start delayed the other clients' start by more than a second on two cores.
//
// A connection's frames fill a token bucket: Options.FrameBurst at once, refilled at
// Options.FrameRate a second; that is generous for what a page sends (an ack per start,
// answers, a few clock-sync frames at connect). A frame past it is refused unread: the
// first few in a row get a rate_limited error frame, the others nothing. Refused frames
// drain a second bucket of the same size and rate, the client's tolerance; a client that
// empties that one too, sending at more than twice its rate for a while, is a flooder and
// is dropped with 1008.

// excessReplies is how many refused frames in a row get an error frame; later ones are
// refused silently, so that a flood does not turn into a flood of replies.
const excessReplies = 3

// bucket is a token bucket. It belongs to one goroutine (a connection's reader), so it
// takes no lock and lives inside the Conn.
type bucket struct {
	tokens float64
	last   time.Time
}

// fill makes the bucket full at now.
func (b *bucket) fill(now time.Time, burst int) {
	b.tokens, b.last = float64(burst), now
}

// take takes a token at now, if there is one: the bucket refills at rate tokens a second,
// up to burst.
func (b *bucket) take(now time.Time, rate float64, burst int) bool {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(float64(burst), b.tokens+d.Seconds()*rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// frameAllowed counts a client frame received at now against the connection's rate, on its
// reader goroutine. It returns whether to handle the frame; a refused one may get an error
// frame, and a flooder is dropped (flood is then true).
func (c *Conn) frameAllowed(now time.Time) (ok, flood bool) {
	o := &c.hub.opts
	if c.allowed.take(now, o.FrameRate, o.FrameBurst) {
		c.refused = 0
		return true, false
	}
	if !c.excess.take(now, o.FrameRate, o.FrameBurst) {
		c.drop(protocol.CloseFlood, "sending frames too fast", "flood")
		return false, true
	}
	if c.refused++; c.refused <= excessReplies {
		c.Send(c.hub.rateLimited)
	}
	return false, false
}

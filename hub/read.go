package hub

import (
	"context"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/bulbquiz/bulb/internal/clocksync"
	"github.com/bulbquiz/bulb/protocol"
	"github.com/coder/websocket"
)

// read reads frames until the connection fails or is closed (a drop makes the writer
// close the socket, which ends Read), or until the client breaks a rule that drops it.
// Each frame is counted against the client's rate (limit.go), then decoded once, here:
// acks are recorded, a frame that is not a well-formed client frame gets an error frame,
// and everything else goes to the handler. Reads take no context: one with a Done channel
// would cost every read a context.AfterFunc inside the library, and the socket's close
// ends a read anyway.
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
		if ok, flood := c.frameAllowed(received); flood {
			return errFlood
		} else if !ok {
			continue
		}
		if typ != websocket.MessageText {
			c.Send(binaryError)
			continue
		}
		// RFC 6455 (8.1): a text frame that is not UTF-8 fails the connection with 1007.
		// The library leaves that check to its caller.
		if !utf8.Valid(data) {
			c.drop(protocol.CloseInvalidUTF8, "text frame is not valid UTF-8", "invalid_utf8")
			return errInvalidUTF8
		}
		f, err := protocol.DecodeClient(data)
		switch {
		case err != nil:
			c.Send(protocol.Encode(protocol.ErrorFrame{Code: protocol.Invalid, Message: err.Error()}))
		case f.Type == protocol.TypeAck:
			c.ack(f.Seq, received)
		case f.Type == protocol.TypeSync:
			c.sendSync(f.T0, received)
		case f.Type == protocol.TypeSeen:
			c.seenStart(f.Seq, f.Seen)
		default:
			handler.Frame(ctx, c, f, received)
		}
	}
}

// The window around a start where a seen report's times must lie (seenStart).
const (
	seenBefore = 10 * time.Second
	seenAfter  = time.Minute
)

var binaryError = protocol.Encode(protocol.ErrorFrame{Code: protocol.Invalid, Message: "frames are JSON text, not binary"})

// seenStart records what the client reports of start seq (a seen frame), if it is the
// connection's latest start and its times are near it: from seenBefore before the start
// to seenAfter after it (no start is sent more than a second ahead of its reveal).
func (c *Conn) seenStart(seq uint64, s protocol.Seen) {
	d := c.lastStart.Load()
	if d == nil || d.rec.Seq != seq {
		return
	}
	t0 := clocksync.Millis(d.rec.t0)
	near := func(ms float64) bool { return ms-t0 >= -seenBefore.Seconds()*1e3 && ms-t0 <= seenAfter.Seconds()*1e3 }
	if !near(s.ReceivedAt) || !near(s.RevealedAt) {
		return // a clock far off, or a made-up report: it would only skew the figures
	}
	rel := func(ms float64) int64 { return int64(clocksync.Time(ms).Sub(d.rec.t0)) }
	sr := &seenReport{received: rel(s.ReceivedAt), revealed: rel(s.RevealedAt), errorNs: int64(s.ErrorMs * 1e6),
		offsetNs: int64(s.OffsetMs * 1e6), late: s.Late}
	if d.seen.CompareAndSwap(nil, sr) {
		c.hub.m.clockError.Observe(s.ErrorMs / 1e3)
		if s.Late {
			c.hub.m.late.Inc()
		}
	}
}

// ack records the arrival of the ack of start seq.
func (c *Conn) ack(seq uint64, received time.Time) {
	if d := c.lastStart.Load(); d != nil && d.rec.Seq == seq {
		d.acked.CompareAndSwap(0, int64(received.Sub(d.rec.t0)))
	}
}

// StartDelivery is what a connection knows of the start of a question: when the write of
// its start frame returned (or, if it has not yet, when it was enqueued), the round trip of
// that start's signal (RTT: from the write to the client's ack, or the median of the
// connection's recent ping round trips if that is less or there is no ack), the reveal
// instant of a synced start (zero for an immediate one), and the client's return delay:
// half its median ping round trip.
//
// The ack times this very start's path, jitter and all; a ping's median is the typical
// path (its minimum would under-compensate a jittery one). A client can make its round
// trips look longer, never shorter: one that holds back its pongs still acks at once (or
// its acks show late in the fairness report), so the lesser of the two is taken, and the
// quiz caps what any client gains.
type StartDelivery struct {
	Written     time.Time
	RTT         time.Duration
	Reveal      time.Time
	ReturnDelay time.Duration
}

// Delivery returns what the connection knows of question n's start; ok is false if the
// connection got no start of question n.
func (c *Conn) Delivery(n int) (StartDelivery, bool) {
	d := c.lastStart.Load()
	if d == nil || d.rec.N != n {
		return StartDelivery{}, false
	}
	at := d.written.Load()
	if at == 0 {
		at = d.enqueued.Load()
	}
	median := c.medianRTT()
	sd := StartDelivery{Written: d.rec.t0.Add(time.Duration(at)), RTT: median, Reveal: d.rec.Reveal, ReturnDelay: median / 2}
	// An ack read before the writer recorded its write's return (it was descheduled in
	// between) times nothing: the median stands.
	if acked, w := d.acked.Load(), d.written.Load(); w > 0 && acked > w && (sd.RTT == 0 || time.Duration(acked-w) < sd.RTT) {
		sd.RTT = time.Duration(acked - w)
	}
	return sd, true
}

// Why read stopped reading a client that broke a rule; the writer closes its socket.
var (
	errFlood       = errors.New("hub: client dropped: frames too fast")
	errInvalidUTF8 = errors.New("hub: client dropped: text frame not valid UTF-8")
)

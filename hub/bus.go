package hub

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Bus connects the hubs of the nodes that serve the same rooms: frames and starts published
// on one node reach the connections of every node. MemoryBus joins hubs in one process;
// RedisBus joins processes through Redis pub/sub.
type Bus interface {
	// Publish sends msg to every node, this one included.
	Publish(ctx context.Context, msg []byte) error
	// Run delivers every message published from now on to deliver, in publish order, until
	// ctx is done. While it runs, this node counts as live.
	Run(ctx context.Context, deliver func(msg []byte)) error
	// NextSeq returns a start sequence number, unique and increasing across the nodes.
	NextSeq(ctx context.Context) (uint64, error)
	// Report records that this node fanned start seq out to recipients players.
	Report(ctx context.Context, seq uint64, recipients int) error
	// Recipients waits until every live node has reported start seq, or ctx is done, and
	// returns the sum of the reports so far.
	Recipients(ctx context.Context, seq uint64) (int, error)
}

// recipientsWait bounds how long a start waits for the other nodes' reports.
const recipientsWait = 2 * time.Second

// message is what travels on the bus.
type message struct {
	Kind   string          `json:"k"` // toAll, toHosts, toPlayer or kindStart
	Room   string          `json:"r"`
	Player string          `json:"p,omitempty"`
	Frame  json.RawMessage `json:"f,omitempty"`
	N      int             `json:"n,omitempty"`
	Seq    uint64          `json:"s,omitempty"`
	At     int64           `json:"t,omitempty"` // Unix ns: when a start was published, or a scheduled start's time
}

// Kinds of bus messages besides the audiences of a frame.
const (
	kindStart    = "start"
	kindSchedule = "schedule"
)

// Schedule tells every node, this one included, that question n of the room is to start
// at the given time, so that any node can fire it should the one that scheduled it die.
// Each node hands it to the function set with OnSchedule.
func (h *Hub) Schedule(roomName string, n int, at time.Time) {
	if h.bus == nil {
		h.scheduled(roomName, n, at.UnixNano())
		return
	}
	h.publish(message{Kind: kindSchedule, Room: roomName, N: n, At: at.UnixNano()})
}

// OnSchedule sets what this node does when a start is scheduled on any node. Set it before
// Run.
func (h *Hub) OnSchedule(fn func(room string, n int, at time.Time)) { h.onSchedule.Store(&fn) }

func (h *Hub) scheduled(roomName string, n int, at int64) {
	if fn := h.onSchedule.Load(); fn != nil {
		(*fn)(roomName, n, time.Unix(0, at))
	}
}

// Run delivers what other nodes publish to this node's connections until ctx is done. It
// returns at once without a bus.
func (h *Hub) Run(ctx context.Context) error {
	if h.bus == nil {
		return nil
	}
	return h.bus.Run(ctx, func(raw []byte) { h.deliver(ctx, raw) })
}

func (h *Hub) deliver(ctx context.Context, raw []byte) {
	var m message
	if err := json.Unmarshal(raw, &m); err != nil {
		h.log.Error("undecodable bus message", "err", err)
		return
	}
	switch m.Kind {
	case kindStart:
	case kindSchedule:
		h.scheduled(m.Room, m.N, m.At)
		return
	default:
		h.local(m.Room, m.Kind, m.Player, m.Frame)
		return
	}
	delay := time.Duration(time.Now().UnixNano() - m.At)
	h.m.busDelay.Observe(delay.Seconds())
	recipients, err := h.fanout(ctx, m.Room, m.N, m.Seq, delay)
	if err == nil {
		err = h.bus.Report(ctx, m.Seq, recipients)
	}
	if err != nil {
		h.log.Warn("start from the bus", "room", m.Room, "seq", m.Seq, "err", err)
	}
}

// startOnBus publishes a start to every node and waits for their recipient counts.
func (h *Hub) startOnBus(ctx context.Context, roomName string, n int) (uint64, int, error) {
	seq, err := h.bus.NextSeq(ctx)
	if err != nil {
		return 0, 0, err
	}
	msg, err := json.Marshal(message{Kind: kindStart, Room: roomName, N: n, Seq: seq, At: time.Now().UnixNano()})
	if err != nil {
		return 0, 0, err
	}
	if err := h.bus.Publish(ctx, msg); err != nil {
		return 0, 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, recipientsWait)
	defer cancel()
	recipients, err := h.bus.Recipients(wctx, seq)
	if errors.Is(err, context.DeadlineExceeded) {
		h.log.Warn("not every node reported its recipients in time", "room", roomName, "seq", seq, "recipients", recipients)
		err = nil
	}
	return seq, recipients, err
}

// publish sends a frame message to every node; frames are notifications, so a failure is
// logged rather than returned.
func (h *Hub) publish(m message) {
	msg, err := json.Marshal(m)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), h.opts.WriteTimeout)
		defer cancel()
		err = h.bus.Publish(ctx, msg)
	}
	if err != nil {
		h.log.Warn("publishing a frame", "room", m.Room, "to", m.Kind, "err", err)
	}
}

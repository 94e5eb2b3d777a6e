package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
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
	// Reply adds this node's answer to the request with the given id: its recipients of a
	// start, its fairness records.
	Reply(ctx context.Context, id string, data []byte) error
	// Gather waits until every live node has replied to request id, or ctx is done, and
	// returns the replies so far.
	Gather(ctx context.Context, id string) ([][]byte, error)
}

// gatherWait bounds how long a node waits for the other nodes' replies.
const gatherWait = 2 * time.Second

// message is what travels on the bus.
type message struct {
	Kind   string          `json:"k"` // toAll, toHosts, toPlayer or kindStart
	Room   string          `json:"r"`
	Player string          `json:"p,omitempty"`
	Frame  json.RawMessage `json:"f,omitempty"`
	N      int             `json:"n,omitempty"`
	Action string          `json:"a,omitempty"` // of a schedule
	Seq    uint64          `json:"s,omitempty"`
	At     int64           `json:"t,omitempty"` // Unix ns: when a start was published, or a scheduled start's time
}

// Kinds of bus messages besides the audiences of a frame.
const (
	kindStart    = "start"
	kindSchedule = "schedule"
	kindFairness = "fairness" // Player is the request id
	kindOnline   = "online"   // Player is the request id
)

// Schedule tells every node, this one included, that question n of the room is to start
// or close (action) at the given time, so that any node can fire it should the one that
// scheduled it die. Each node hands it to the function set with OnSchedule.
func (h *Hub) Schedule(roomName string, n int, action string, at time.Time) {
	m := message{Kind: kindSchedule, Room: roomName, N: n, Action: action, At: at.UnixNano()}
	if h.bus == nil {
		h.scheduled(m)
		return
	}
	h.publish(m)
}

// OnSchedule sets what this node does when something is scheduled on any node. Set it
// before Run.
func (h *Hub) OnSchedule(fn func(room string, n int, action string, at time.Time)) {
	h.onSchedule.Store(&fn)
}

func (h *Hub) scheduled(m message) {
	if fn := h.onSchedule.Load(); fn != nil {
		(*fn)(m.Room, m.N, m.Action, time.Unix(0, m.At))
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
		h.scheduled(m)
		return
	case kindFairness, kindOnline:
		var local any = h.online(m.Room)
		if m.Kind == kindFairness {
			local = h.localStarts(m.Room)
		}
		data, err := json.Marshal(reply[any]{Node: h.opts.Node, Data: local})
		if err == nil {
			err = h.bus.Reply(ctx, m.Player, data)
		}
		if err != nil {
			h.log.Warn("replying to a request", "kind", m.Kind, "room", m.Room, "err", err)
		}
		return
	default:
		h.local(m.Room, m.Kind, m.Player, m.Frame)
		return
	}
	delay := time.Duration(time.Now().UnixNano() - m.At)
	h.m.busDelay.Observe(delay.Seconds())
	recipients, err := h.fanout(ctx, m.Room, m.N, m.Seq, delay)
	if err == nil {
		err = h.bus.Reply(ctx, startReplies(m.Seq), []byte(strconv.Itoa(recipients)))
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
	replies, err := h.gather(ctx, startReplies(seq))
	recipients := 0
	for _, r := range replies {
		n, perr := strconv.Atoi(string(r))
		if perr != nil {
			return seq, recipients, fmt.Errorf("a node's recipients %q: %w", r, perr)
		}
		recipients += n
	}
	return seq, recipients, err
}

func startReplies(seq uint64) string { return "start:" + strconv.FormatUint(seq, 10) }

// gather waits up to gatherWait for every live node's reply to request id. Nodes that do
// not reply in time are left out, with a warning.
func (h *Hub) gather(ctx context.Context, id string) ([][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, gatherWait)
	defer cancel()
	replies, err := h.bus.Gather(ctx, id)
	if errors.Is(err, context.DeadlineExceeded) {
		h.log.Warn("not every node replied in time", "request", id, "replies", len(replies))
		err = nil
	}
	return replies, err
}

// ClusterFairness is Fairness over every node: each node's records of the room's starts,
// merged. Without a bus it is this node's.
func (h *Hub) ClusterFairness(ctx context.Context, roomName string, limit int) (Report, error) {
	if h.bus == nil {
		return h.Fairness(roomName, limit), nil
	}
	parts, err := ask(ctx, h, kindFairness, roomName, h.localStarts(roomName))
	if err != nil {
		return Report{}, err
	}
	return report(roomName, mergeStarts(parts...), limit), nil
}

// Online returns the IDs of the room's players that have a connection, on any node.
func (h *Hub) Online(ctx context.Context, roomName string) (map[string]bool, error) {
	parts := [][]string{h.online(roomName)}
	if h.bus != nil {
		var err error
		if parts, err = ask(ctx, h, kindOnline, roomName, parts[0]); err != nil {
			return nil, err
		}
	}
	out := map[string]bool{}
	for _, ids := range parts {
		for _, id := range ids {
			out[id] = true
		}
	}
	return out, nil
}

// reply is a node's answer to a request.
type reply[T any] struct {
	Node string `json:"node"`
	Data T      `json:"data"`
}

// ask publishes a request about the room to every node and returns this node's answer,
// local, with the other nodes' JSON replies, decoded. This node's own is taken directly,
// not over the bus, so that it is there even while the bus is catching up (just after
// Redis restarted, say).
func ask[T any](ctx context.Context, h *Hub, kind, roomName string, local T) ([]T, error) {
	id := kind + ":" + strconv.FormatUint(rand.Uint64(), 36)
	msg, err := json.Marshal(message{Kind: kind, Room: roomName, Player: id})
	if err != nil {
		return nil, err
	}
	if err := h.bus.Publish(ctx, msg); err != nil {
		return nil, err
	}
	raw, err := h.gather(ctx, id)
	if err != nil {
		return nil, err
	}
	out := []T{local}
	for _, r := range raw {
		var rep reply[T]
		if err := json.Unmarshal(r, &rep); err != nil {
			return nil, fmt.Errorf("a node's reply to %s: %w", kind, err)
		}
		if rep.Node != h.opts.Node {
			out = append(out, rep.Data)
		}
	}
	return out, nil
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

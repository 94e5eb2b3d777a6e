package hub

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"
)

// Bus connects the hubs of the nodes that serve the same rooms: it carries what one node
// publishes to every node, and the replies that nodes give to a request. MemoryBus joins
// hubs in one process; RedisBus joins processes through Redis. On it the hub builds frames
// and starts that reach every node's connections, and generic node messaging (Notify,
// Survey) that other components use with topics of their own.
type Bus interface {
	// Publish sends msg to every node, this one included.
	Publish(ctx context.Context, msg []byte) error
	// Run delivers every message published from now on to deliver, in publish order, until
	// ctx is done. While it runs, this node counts as live.
	Run(ctx context.Context, deliver func(msg []byte)) error
	// NextSeq returns a start sequence number, unique and increasing across the nodes.
	NextSeq(ctx context.Context) (uint64, error)
	// Reply adds this node's answer to the request with the given id.
	Reply(ctx context.Context, id string, data []byte) error
	// Gather waits until every live node has replied to request id, or ctx is done, and
	// returns the replies so far.
	Gather(ctx context.Context, id string) ([][]byte, error)
}

// gatherWait bounds how long a node waits for the other nodes' replies.
const gatherWait = 2 * time.Second

// message is what travels on the bus.
type message struct {
	Kind   string          `json:"k"` // an audience of a frame (toAll, toHosts, toPlayer) or kindStart, kindNotify, kindSurvey
	From   string          `json:"o"` // the node that published it
	Room   string          `json:"r,omitempty"`
	Player string          `json:"p,omitempty"`
	Frame  json.RawMessage `json:"f,omitempty"`
	N      int             `json:"n,omitempty"`
	Seq    uint64          `json:"s,omitempty"`
	At     int64           `json:"t,omitempty"` // Unix ns: when a start was published
	Reveal int64           `json:"v,omitempty"` // Unix ns: a synced start's reveal instant
	Topic  string          `json:"c,omitempty"` // of a notification or survey
	ID     string          `json:"i,omitempty"` // of a survey: where the replies go
	Data   []byte          `json:"d,omitempty"` // of a notification or survey
}

// Kinds of bus messages besides the audiences of a frame.
const (
	kindStart  = "start"
	kindNotify = "notify"
	kindSurvey = "survey"
)

// Run delivers what other nodes publish to this node's connections and handlers, and
// saves the starts' fairness records to the Archive, until ctx is done. It returns at once
// with neither a bus nor an archive.
func (h *Hub) Run(ctx context.Context) error {
	if h.bus == nil && h.opts.Archive == nil {
		return nil
	}
	if h.opts.Archive != nil {
		done := make(chan struct{})
		defer func() { <-done }()
		go func() {
			defer close(done)
			h.runArchive(ctx)
		}()
	}
	if h.bus == nil {
		<-ctx.Done()
		return nil
	}
	var surveys sync.WaitGroup // answers to surveys, off the delivery goroutine
	defer surveys.Wait()
	slots := make(chan struct{}, surveySlots)
	return h.bus.Run(ctx, func(raw []byte) { h.deliver(ctx, raw, slots, &surveys) })
}

// surveySlots is how many surveys a node answers at once. An answer can take a while (a
// room's fairness records, for one): it runs apart from the bus's delivery goroutine, so
// that starts and frames from other nodes never wait behind it; a survey past the slots
// gets an error answer at once.
const surveySlots = 4

func (h *Hub) deliver(ctx context.Context, raw []byte, slots chan struct{}, surveys *sync.WaitGroup) {
	var m message
	if err := json.Unmarshal(raw, &m); err != nil {
		h.log.Error("undecodable bus message", "err", err)
		return
	}
	switch m.Kind {
	case kindStart:
		h.startFromBus(ctx, m)
	case kindNotify:
		h.notified(m)
	case kindSurvey:
		select {
		case slots <- struct{}{}:
			surveys.Go(func() {
				defer func() { <-slots }()
				h.surveyed(ctx, m)
			})
		default:
			h.replySurvey(ctx, m, nodeReply{Node: h.opts.Node, Err: "busy answering other surveys"})
		}
	default:
		h.local(m.Room, m.Kind, m.Player, m.Frame)
	}
}

// startFromBus fans a start published on any node out to this node's players and replies
// with their number.
func (h *Hub) startFromBus(ctx context.Context, m message) {
	delay := time.Duration(time.Now().UnixNano() - m.At)
	h.m.busDelay.Observe(delay.Seconds())
	var reveal time.Time
	if m.Reveal != 0 {
		reveal = time.Unix(0, m.Reveal)
	}
	recipients, err := h.fanout(ctx, m.Room, m.N, m.Seq, reveal, delay)
	if err == nil {
		err = h.bus.Reply(ctx, startReplies(m.Seq), []byte(strconv.Itoa(recipients)))
	}
	if err != nil {
		h.log.Warn("start from the bus", "room", m.Room, "seq", m.Seq, "err", err)
	}
}

// startOnBus publishes a start to every node and waits for their recipient counts. Once
// it is published the start is on its way to every player, whatever happens to the
// counts: a failure to read them is logged, and the start is not reported as failed.
func (h *Hub) startOnBus(ctx context.Context, roomName string, n int, reveal time.Time) (uint64, int, error) {
	seq, err := h.bus.NextSeq(ctx)
	if err != nil {
		return 0, 0, err
	}
	m := message{Kind: kindStart, Room: roomName, N: n, Seq: seq, At: time.Now().UnixNano()}
	if !reveal.IsZero() {
		m.Reveal = reveal.UnixNano()
	}
	if err := h.publishMessage(ctx, m); err != nil {
		return 0, 0, err
	}
	replies, err := h.gather(ctx, startReplies(seq))
	if err != nil {
		h.log.Warn("a start went out, but not every node's count of its recipients came back", "room", roomName, "seq", seq, "err", err)
	}
	recipients := 0
	for _, r := range replies {
		n, perr := strconv.Atoi(string(r))
		if perr != nil {
			h.log.Warn("a node's count of a start's recipients", "room", roomName, "seq", seq, "reply", string(r), "err", perr)
			continue
		}
		recipients += n
	}
	return seq, recipients, nil
}

func startReplies(seq uint64) string { return "start:" + strconv.FormatUint(seq, 10) }

// publishMessage sends m, from this node, to every node.
func (h *Hub) publishMessage(ctx context.Context, m message) error {
	m.From = h.opts.Node
	msg, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return h.bus.Publish(ctx, msg)
}

// publish sends a frame message to every node; frames are notifications, so a failure is
// logged rather than returned.
func (h *Hub) publish(m message) {
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.WriteTimeout)
	defer cancel()
	if err := h.publishMessage(ctx, m); err != nil {
		h.log.Warn("publishing a frame", "room", m.Room, "to", m.Kind, "err", err)
	}
}

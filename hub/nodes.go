package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
)

// Node messaging, for any component: Notify tells every other node something, Survey asks
// every node something and gathers the replies. A component registers its handlers by
// topic (OnNotify, OnSurvey) before Run; the hub's own surveys (who is online, fairness
// records) are such topics too. Without a bus there are no other nodes: Notify does
// nothing and Survey asks only this node.

// Topics of the hub's own surveys.
const (
	topicOnline   = "hub.online"
	topicFairness = "hub.fairness"
)

// OnNotify sets fn as this node's handler of the notifications of topic that other nodes
// send. fn runs on the bus's delivery goroutine: it must not block.
func (h *Hub) OnNotify(topic string, fn func(data []byte)) {
	h.handlersMu.Lock()
	defer h.handlersMu.Unlock()
	h.onNotify[topic] = fn
}

// OnSurvey sets fn as this node's answer to the surveys of topic, this node's own
// included. fn runs apart from the bus's delivery goroutine, on one of its own (a few
// surveys are answered at once), or on Survey's caller's for this node's own answer: it
// must be safe for concurrent use.
func (h *Hub) OnSurvey(topic string, fn func(ctx context.Context, data []byte) ([]byte, error)) {
	h.handlersMu.Lock()
	defer h.handlersMu.Unlock()
	h.onSurvey[topic] = fn
}

// Notify sends data to the handler of topic on every other node.
func (h *Hub) Notify(ctx context.Context, topic string, data []byte) error {
	if h.bus == nil {
		return nil
	}
	return h.publishMessage(ctx, message{Kind: kindNotify, Topic: topic, Data: data})
}

func (h *Hub) notified(m message) {
	if m.From == h.opts.Node {
		return // this node acted on it already
	}
	h.handlersMu.RLock()
	fn := h.onNotify[m.Topic]
	h.handlersMu.RUnlock()
	if fn == nil {
		h.log.Warn("a notification nobody handles", "topic", m.Topic, "from", m.From)
		return
	}
	fn(m.Data)
}

// nodeReply is a node's answer to a survey.
type nodeReply struct {
	Node string `json:"node"`
	Data []byte `json:"data"`
	Err  string `json:"err,omitempty"`
}

// Survey asks every node the question data of topic and returns their answers, this
// node's first. This node's own answer is taken directly, not over the bus, so that it is
// there even while the bus is catching up (just after Redis restarted, say). Nodes that
// do not reply within two seconds are left out, with a warning; a node whose handler
// failed makes Survey fail.
func (h *Hub) Survey(ctx context.Context, topic string, data []byte) ([][]byte, error) {
	h.handlersMu.RLock()
	fn := h.onSurvey[topic]
	h.handlersMu.RUnlock()
	if fn == nil {
		return nil, fmt.Errorf("hub: no answer to surveys of %q", topic)
	}
	local, err := fn(ctx, data)
	if err != nil || h.bus == nil {
		return [][]byte{local}, err
	}
	id := topic + ":" + strconv.FormatUint(rand.Uint64(), 36)
	if err := h.publishMessage(ctx, message{Kind: kindSurvey, Topic: topic, ID: id, Data: data}); err != nil {
		return nil, err
	}
	raw, err := h.gather(ctx, id)
	if err != nil {
		return nil, err
	}
	out := [][]byte{local}
	for _, r := range raw {
		var rep nodeReply
		if err := json.Unmarshal(r, &rep); err != nil {
			return nil, fmt.Errorf("a node's reply to %s: %w", topic, err)
		}
		if rep.Err != "" {
			return nil, fmt.Errorf("node %s failed %s: %s", rep.Node, topic, rep.Err)
		}
		if rep.Node != h.opts.Node {
			out = append(out, rep.Data)
		}
	}
	return out, nil
}

// surveyed answers a survey from any node, this one included (Survey drops this node's
// reply but every live node must reply for the gathering to end).
func (h *Hub) surveyed(ctx context.Context, m message) {
	h.handlersMu.RLock()
	fn := h.onSurvey[m.Topic]
	h.handlersMu.RUnlock()
	rep := nodeReply{Node: h.opts.Node}
	if fn == nil {
		rep.Err = "no answer to surveys of " + strconv.Quote(m.Topic)
	} else if data, err := fn(ctx, m.Data); err != nil {
		rep.Err = err.Error()
	} else {
		rep.Data = data
	}
	h.replySurvey(ctx, m, rep)
}

// replySurvey sends rep to the node that asked survey m.
func (h *Hub) replySurvey(ctx context.Context, m message, rep nodeReply) {
	b, err := json.Marshal(rep)
	if err == nil {
		err = h.bus.Reply(ctx, m.ID, b)
	}
	if err != nil {
		h.log.Warn("replying to a survey", "topic", m.Topic, "err", err)
	}
}

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

// surveyOf returns what Survey returns, each answer decoded as JSON into a T.
func surveyOf[T any](ctx context.Context, h *Hub, topic string, question []byte) ([]T, error) {
	raw, err := h.Survey(ctx, topic, question)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			return nil, fmt.Errorf("an answer to %s: %w", topic, err)
		}
	}
	return out, nil
}

// answerJSON turns a function of a room into a survey answer: the room's name is the
// question, the function's value, as JSON, the answer.
func answerJSON[T any](fn func(room string) T) func(context.Context, []byte) ([]byte, error) {
	return func(_ context.Context, room []byte) ([]byte, error) { return json.Marshal(fn(string(room))) }
}

// ClusterFairness is Fairness over every node: each node's records of the room's starts,
// merged.
func (h *Hub) ClusterFairness(ctx context.Context, roomName string, limit int) (Report, error) {
	parts, err := surveyOf[[]StartStats](ctx, h, topicFairness, []byte(roomName))
	if err != nil {
		return Report{}, err
	}
	return report(roomName, mergeStarts(parts...), limit), nil
}

// Online returns the IDs of the room's players that have a connection, on any node.
func (h *Hub) Online(ctx context.Context, roomName string) (map[string]bool, error) {
	parts, err := surveyOf[[]string](ctx, h, topicOnline, []byte(roomName))
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, ids := range parts {
		for _, id := range ids {
			out[id] = true
		}
	}
	return out, nil
}

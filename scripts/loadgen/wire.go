package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
)

// The protocols loadgen's clients speak: Bulb's, or centrifuge's JSON protocol (to
// scripts/peer), which carries the same frames.
const (
	protoBulb       = "bulb"
	protoCentrifuge = "centrifuge"
)

// centrifugePath is the WebSocket endpoint of a centrifuge node (as Centrifugo's).
const centrifugePath = "/connection/websocket"

// wire turns a client's frames into what its protocol sends, and what the server sent
// into frames. A frame is one of Bulb's, a JSON object with a "type" (docs/protocol.md);
// centrifuge carries the client's sync as an RPC whose reply is the server's sync
// frame, its other frames as asynchronous messages, and a start as a publication whose
// data is the start frame. A wire is safe for concurrent use.
type wire struct {
	proto  string
	nextID atomic.Uint32 // centrifuge: the last command ID used
}

// centrifugeHello is the first message of a centrifuge client: a connect and a subscribe
// to channel, as commands 1 and 2 (the JSON protocol takes commands one a line).
func (w *wire) centrifugeHello(name, channel string) []byte {
	w.nextID.Store(2)
	b := fmt.Appendf(nil, `{"id":1,"connect":{"name":%s}}`, strconv.Quote(name))
	return fmt.Appendf(b, "\n"+`{"id":2,"subscribe":{"channel":%s}}`, strconv.Quote(channel))
}

// wrap returns the message that carries frame msg, whose type is typ.
func (w *wire) wrap(typ string, msg []byte) []byte {
	if w.proto != protoCentrifuge {
		return msg
	}
	if typ == "sync" {
		b := fmt.Appendf(nil, `{"id":%d,"rpc":{"method":"sync","data":`, w.nextID.Add(1))
		return append(append(b, msg...), "}}"...)
	}
	return append(append([]byte(`{"send":{"data":`), msg...), "}}"...)
}

// centrifugeReply is one reply or push of centrifuge's JSON protocol, with the fields
// loadgen reads.
type centrifugeReply struct {
	ID    uint32 `json:"id"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	RPC *struct {
		Data json.RawMessage `json:"data"`
	} `json:"rpc"`
	Push *struct {
		Pub *struct {
			Data json.RawMessage `json:"data"`
		} `json:"pub"`
		Disconnect *struct {
			Code   int    `json:"code"`
			Reason string `json:"reason"`
		} `json:"disconnect"`
	} `json:"push"`
}

// inbound is what one message from the server holds.
type inbound struct {
	frames  [][]byte // Bulb frames, in order
	pings   int      // centrifuge: pings to answer, each with a pong ({})
	replied []uint32 // centrifuge: IDs of the commands answered without an error
	errs    []string // centrifuge: errors and disconnects, as text
}

// unwrap reads a message from the server.
func (w *wire) unwrap(data []byte) (inbound, error) {
	if w.proto != protoCentrifuge {
		return inbound{frames: [][]byte{data}}, nil
	}
	var in inbound
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var r centrifugeReply
		if err := json.Unmarshal(line, &r); err != nil {
			return in, fmt.Errorf("centrifuge reply %q: %w", line, err)
		}
		switch {
		case r.Error != nil:
			in.errs = append(in.errs, fmt.Sprintf("command %d: error %d %s", r.ID, r.Error.Code, r.Error.Message))
		case r.Push != nil && r.Push.Pub != nil:
			in.frames = append(in.frames, r.Push.Pub.Data)
		case r.Push != nil && r.Push.Disconnect != nil:
			in.errs = append(in.errs, fmt.Sprintf("disconnect %d %s", r.Push.Disconnect.Code, r.Push.Disconnect.Reason))
		case r.ID > 0:
			in.replied = append(in.replied, r.ID)
			if r.RPC != nil {
				in.frames = append(in.frames, r.RPC.Data)
			}
		case r.Push == nil:
			in.pings++ // {}: the server's ping
		}
	}
	return in, nil
}

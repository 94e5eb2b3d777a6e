package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// MaxFrame is the largest client frame read, in bytes: a code answer of 64 KiB (the quiz's
// MaxCode), escaped in JSON, fits, so that code over its limit gets a clear error frame
// rather than a closed socket. A larger frame closes the socket with CloseTooBig.
const MaxFrame = 512 << 10

// Client frame types.
const (
	TypeAnswer = "answer" // answer question N with a Response
	TypeAck    = "ack"    // a start arrived: measures delivery
)

// ClientFrame is a frame a client sent, decoded once: Type says which of the other fields
// apply.
type ClientFrame struct {
	Type     string
	N        int    // answer: the question
	Seq      uint64 // ack: the start's sequence number
	Response        // answer: the response
}

// clientJSON is a client frame as it is read: seq is checked by hand, so that a negative
// or fractional one is an ack's error rather than malformed JSON.
type clientJSON struct {
	Type string          `json:"type"`
	N    int             `json:"n"`
	Seq  json.RawMessage `json:"seq"`
	Response
}

// DecodeClient decodes a client's text frame. Its error is fit to show the client, in an
// error frame with code Invalid: malformed JSON, an unknown type, or an ack without a
// whole-number seq.
func DecodeClient(data []byte) (ClientFrame, error) {
	var j clientJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return ClientFrame{}, errMalformed
	}
	f := ClientFrame{Type: j.Type, N: j.N, Response: j.Response}
	switch j.Type {
	case TypeAnswer:
	case TypeAck:
		seq, err := strconv.ParseUint(string(j.Seq), 10, 64)
		if err != nil {
			return ClientFrame{}, errAckSeq
		}
		f.Seq = seq
	default:
		return ClientFrame{}, fmt.Errorf("unknown frame type %q", j.Type)
	}
	return f, nil
}

var (
	errMalformed = errors.New("malformed JSON frame")
	errAckSeq    = errors.New("an ack needs the start's seq, a whole number")
)

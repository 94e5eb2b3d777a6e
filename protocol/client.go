package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// MaxFrame is the largest client frame read, in bytes: a code answer of 64 KiB (the quiz's
// MaxCode), escaped in JSON, fits, so that code over its limit gets a clear error frame
// rather than a closed socket. A larger frame closes the socket with CloseTooBig.
const MaxFrame = 512 << 10

// Client frame types.
const (
	TypeAnswer = "answer" // answer question N with a Response
	TypeAck    = "ack"    // a start arrived (pages without clock sync): measures delivery
	TypeSync   = "sync"   // a clock sync sample: the server answers with its times
	TypeSeen   = "seen"   // a start was received and revealed, in server time
)

// Bounds of a seen frame's figures: times and offsets in ms since the epoch stay under
// MaxSeenTime (the year 5138), a clock's error bound under MaxSeenErrorMs (a clock sample
// with a longer round trip is discarded).
const (
	MaxSeenTime    = 1e14
	MaxSeenErrorMs = 10_000
)

// ClientFrame is a frame a client sent, decoded once: Type says which of the other fields
// apply.
type ClientFrame struct {
	Type     string
	N        int     // answer: the question
	Seq      uint64  // ack, seen: the start's sequence number
	T0       float64 // sync: the client's send time, ms on its own clock
	Seen     Seen    // seen
	Response         // answer: the response
}

// Seen is what a page reports of a start after revealing it: when the start arrived and
// when its bulb lit, both in server time (ms since the Unix epoch, from its synced clock),
// that clock's offset from the page's own and its error bound, and whether the start
// arrived after its reveal instant.
type Seen struct {
	ReceivedAt float64 `json:"receivedAt"`
	RevealedAt float64 `json:"revealedAt"`
	ErrorMs    float64 `json:"errorMs"`
	OffsetMs   float64 `json:"offsetMs"` // the page's estimate of the server's clock less its own
	Late       bool    `json:"late"`
}

// clientJSON is a client frame as it is read: seq is checked by hand, so that a negative
// or fractional one is an ack's error rather than malformed JSON.
type clientJSON struct {
	Type string          `json:"type"`
	N    int             `json:"n"`
	Seq  json.RawMessage `json:"seq"`
	T0   *float64        `json:"t0"`
	Seen
	Response
}

// DecodeClient decodes a client's text frame. Its error is fit to show the client, in an
// error frame with code Invalid: malformed JSON, an unknown type, an ack or seen without a
// whole-number seq, a sync without its time, or a seen whose times are not finite.
func DecodeClient(data []byte) (ClientFrame, error) {
	var j clientJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return ClientFrame{}, errMalformed
	}
	f := ClientFrame{Type: j.Type, N: j.N, Response: j.Response}
	switch j.Type {
	case TypeAnswer:
	case TypeAck, TypeSeen:
		seq, err := strconv.ParseUint(string(j.Seq), 10, 64)
		if err != nil {
			return ClientFrame{}, fmt.Errorf("%s: %w", j.Type, errSeq)
		}
		f.Seq = seq
		if j.Type == TypeSeen {
			if !(j.ReceivedAt > 0 && j.ReceivedAt < MaxSeenTime && j.RevealedAt > 0 && j.RevealedAt < MaxSeenTime &&
				j.ErrorMs >= 0 && j.ErrorMs <= MaxSeenErrorMs && math.Abs(j.OffsetMs) <= MaxSeenTime) {
				return ClientFrame{}, errSeenTimes
			}
			f.Seen = j.Seen
		}
	case TypeSync:
		if j.T0 == nil || math.IsInf(*j.T0, 0) {
			return ClientFrame{}, errSyncT0
		}
		f.T0 = *j.T0
	default:
		return ClientFrame{}, fmt.Errorf("unknown frame type %q", j.Type)
	}
	return f, nil
}

var (
	errMalformed = errors.New("malformed JSON frame")
	errSeq       = errors.New("a start's seq, a whole number, is needed")
	errSyncT0    = errors.New("a sync needs t0, the client's send time in ms")
	errSeenTimes = fmt.Errorf("a seen needs receivedAt and revealedAt, times in ms since the epoch, errorMs from 0 to %d, and offsetMs under %g in size", MaxSeenErrorMs, float64(MaxSeenTime))
)

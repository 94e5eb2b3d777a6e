package protocol

import "github.com/coder/websocket"

// Close codes of a WebSocket the server ends.
const (
	// CloseGoingAway: the server is shutting down.
	CloseGoingAway = websocket.StatusGoingAway
	// CloseInvalidUTF8: a text frame that is not valid UTF-8 (RFC 6455, section 8.1). It
	// is WebSocket's "invalid frame payload data".
	CloseInvalidUTF8 = websocket.StatusInvalidFramePayloadData
	// CloseTooSlow: the client was too slow (its queue filled up, a write timed out, or it
	// stopped answering pings). It is WebSocket's "policy violation".
	CloseTooSlow = websocket.StatusPolicyViolation
	// CloseFlood: the client kept sending frames faster than its limit. Like CloseTooSlow,
	// it is WebSocket's "policy violation".
	CloseFlood = websocket.StatusPolicyViolation
	// CloseTooBig: a frame over MaxFrame.
	CloseTooBig = websocket.StatusMessageTooBig
	// CloseReplaced: a newer connection of the same player replaced this one.
	CloseReplaced websocket.StatusCode = 4000
	// CloseRemoved: the player's seat was removed (the host removed the player, or the
	// player left); a removed frame came first, and the token no longer works.
	CloseRemoved websocket.StatusCode = 4001
)

// CloseCodes lists every close code the server sends, once each, in the order of
// docs/protocol.md.
var CloseCodes = []websocket.StatusCode{CloseGoingAway, CloseInvalidUTF8, CloseTooSlow, CloseTooBig, CloseReplaced, CloseRemoved}

// Package protocol is Bulb's wire protocol, the one home of what docs/protocol.md
// specifies: the error codes shared by HTTP and WebSocket, every WebSocket frame in both
// directions with its encoding, the close codes, and the values that frames and HTTP
// bodies carry alike (a student's Response, an Answer, a judge's Verdict, a leaderboard
// Entry). Its files follow the page: errors.go (Conventions: errors), values.go (Answer),
// server.go (WebSocket: server → client), client.go (client → server) and close.go (close
// codes).
//
// quiz, hub, judge and server all import it; it imports none of them. The domain uses the
// values defined here as its own (quiz stores an Answer, the judge returns a Verdict), so
// that what a student is sent is exactly what was stored, and a field added to the
// protocol is added in one place.
//
// Everything here is plain data and pure functions, safe to use concurrently.
package protocol

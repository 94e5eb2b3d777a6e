package protocol

// ErrorCode says why a request or frame was refused. HTTP answers and error frames carry
// one, with a message for people; the server maps each to one HTTP status.
type ErrorCode string

// The error codes.
const (
	Invalid         ErrorCode = "invalid"          // malformed or invalid input
	Unauthorized    ErrorCode = "unauthorized"     // missing or unknown token
	Forbidden       ErrorCode = "forbidden"        // a token without the right to this room or call
	NotFound        ErrorCode = "not_found"        // unknown room, question or route
	Conflict        ErrorCode = "conflict"         // duplicate name, call out of phase, stale edit
	TooLarge        ErrorCode = "too_large"        // body or frame over its limit
	NotStarted      ErrorCode = "not_started"      // answer before the bulb is lit
	Closed          ErrorCode = "closed"           // answer after close or to another question
	AlreadyAnswered ErrorCode = "already_answered" // a second answer to one question
	FalseStart      ErrorCode = "false_start"      // an answer faster than a person can react: it used up the answer
	RateLimited     ErrorCode = "rate_limited"     // too many frames, or code submissions
	Busy            ErrorCode = "busy"             // the judge's queue is full: try again shortly
	Unavailable     ErrorCode = "unavailable"      // the engine cannot serve now
	Internal        ErrorCode = "internal"         // a bug; details are logged, never shown
)

// ErrorCodes lists every error code, in the order of docs/protocol.md.
var ErrorCodes = []ErrorCode{Invalid, Unauthorized, Forbidden, NotFound, Conflict, TooLarge, NotStarted,
	Closed, AlreadyAnswered, FalseStart, RateLimited, Busy, Unavailable, Internal}

// ErrorBody is the body of every failed HTTP call: {"error":{"code","message"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is what went wrong: a code and a message fit to show a user.
type ErrorDetail struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
}

package quiz

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to one HTTP status in the server and is shown to users as is.
const (
	Invalid         = "invalid"          // malformed or invalid input
	Unauthorized    = "unauthorized"     // missing or unknown token
	Forbidden       = "forbidden"        // a token without the right to this room or call
	NotFound        = "not_found"        // unknown room, question or route
	Conflict        = "conflict"         // duplicate name, call out of phase, stale edit
	TooLarge        = "too_large"        // body or frame over its limit
	NotStarted      = "not_started"      // answer before the bulb is lit
	Closed          = "closed"           // answer after close or to another question
	AlreadyAnswered = "already_answered" // a second answer to one question
	RateLimited     = "rate_limited"     // too many answer frames, or code submissions
	Busy            = "busy"             // the judge's queue is full: try again shortly
	Unavailable     = "unavailable"      // the engine cannot serve now
	Internal        = "internal"         // a bug; details are logged, never shown
)

// Error is the one error type of Bulb's domain: a code from the list above and a message
// fit to show a user.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it is or wraps an *Error, and Internal otherwise.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ErrorMessage returns the message of err if it is or wraps an *Error, and a generic text
// otherwise, so that internal details never reach a user.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

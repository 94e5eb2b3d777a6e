package quiz

import (
	"errors"
	"fmt"

	"github.com/bulbquiz/bulb/protocol"
)

// Error is the one error type of Bulb's domain: a code of the protocol (protocol.Invalid,
// protocol.NotFound, …) and a message fit to show a user.
type Error struct {
	Code    protocol.ErrorCode
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code protocol.ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it is or wraps an *Error, and protocol.Internal
// otherwise.
func ErrorCode(err error) protocol.ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return protocol.Internal
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

// ErrorFrame returns the error frame that refuses a frame with err, about question n if
// n > 0.
func ErrorFrame(err error, n int) []byte {
	return protocol.Encode(protocol.ErrorFrame{Code: ErrorCode(err), Message: ErrorMessage(err), N: n})
}

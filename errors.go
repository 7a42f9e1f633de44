package tokenledger

import (
	"errors"
	"fmt"
)

// Errors that callers match with errors.Is to decide how to answer.
var (
	// ErrInvalid marks input that breaks a rule of the contract. Nothing was
	// stored. HTTP answers it with 400.
	ErrInvalid = errors.New("invalid input")

	// ErrUnavailable marks a store that cannot be reached or did not answer
	// in time. HTTP answers it with 503.
	ErrUnavailable = errors.New("storage unavailable")

	// ErrClosed is returned by a store after Close.
	ErrClosed = errors.New("store is closed")
)

// UnavailableError is a store's refusal whose message is written for the
// API's callers: one sentence that says why the store cannot answer now,
// with nothing secret in it (for example, how many events wait in the
// fallback spool). It matches ErrUnavailable.
type UnavailableError struct {
	// Msg is the sentence shown to callers.
	Msg string
	// Err is the underlying cause, for logs; it may be nil.
	Err error
}

// Error returns the sentence, followed by the cause when there is one.
func (e *UnavailableError) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

// Is makes errors.Is(err, ErrUnavailable) true for an *UnavailableError.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

// ValidationError describes one broken rule in a request or file. Its
// message is one sentence that says what is wrong. It matches ErrInvalid.
type ValidationError struct {
	// Index is the position of the offending event in a batch, or -1 when
	// the error is not about one event of a batch.
	Index int
	// Field is the JSON name of the offending field, or "" when the error
	// is about the whole body.
	Field string
	// Msg is the rule that was broken, e.g. "must not be negative".
	Msg string
}

// Error returns one sentence naming the event, the field and the rule.
func (e *ValidationError) Error() string {
	s := e.Msg
	if e.Field != "" {
		s = e.Field + " " + s
	}
	if e.Index >= 0 {
		s = fmt.Sprintf("event %d: %s", e.Index, s)
	}
	return s
}

// Is makes errors.Is(err, ErrInvalid) true for a *ValidationError.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// invalid returns a *ValidationError about field of a single event.
func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Index: -1, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// atIndex sets the batch index on err when it is a *ValidationError.
func atIndex(err error, i int) error {
	var ve *ValidationError
	if errors.As(err, &ve) {
		c := *ve
		c.Index = i
		return &c
	}
	return err
}

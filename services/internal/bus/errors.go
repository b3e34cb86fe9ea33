package bus

import "errors"

// PermanentError marks a handler error that no retry can fix: the message is
// malformed, violates the contract, or names something that does not exist.
// Consume copies such a message to the dead-letter subject and terminates it
// instead of redelivering it.
type PermanentError struct {
	Err error
}

func (e *PermanentError) Error() string { return e.Err.Error() }

func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that Consume dead-letters the message at once. It
// returns nil for a nil err, so `return bus.Permanent(decode(m))` is safe.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err, or an error it wraps, is a *PermanentError.
func IsPermanent(err error) bool {
	var pe *PermanentError
	return errors.As(err, &pe)
}

// Package failure is the program's one error type: what went wrong, what kind of
// failure it is (each kind is one exit code), the AADSTS code when the identity
// provider sent one, the profile it concerns, and the cause it wraps. Every package
// builds its failures here; entra only classifies the identity provider's errors into
// it, and cli maps kinds to exit codes and shows the error once.
//
// Wording: lower case, no final period, context added once per layer, and "failed to
// X: %w" for an operation that failed (docs/architecture.md).
package failure

import (
	"errors"
	"fmt"
)

// Kind is what a caller does about a failure; each maps to one exit code.
type Kind int

const (
	Unexpected    Kind = iota // exit 1
	Usage                     // exit 2: bad input
	ConsentNeeded             // exit 3: a person must run consent again
	Transient                 // exit 4: try again later
	Configuration             // exit 5: fix the app, secret, certificate, tenant or store
)

// String is the kind as the contract's JSON error object names it.
func (k Kind) String() string {
	switch k {
	case Usage:
		return "bad_input"
	case ConsentNeeded:
		return "consent_required"
	case Transient:
		return "transient"
	case Configuration:
		return "configuration"
	}
	return "internal"
}

// Error is a classified failure. Message is plain text for a person and never holds a
// secret.
type Error struct {
	Kind    Kind
	OAuth   string // the OAuth error, e.g. invalid_grant
	AADSTS  string // Entra's code without its prefix, e.g. "700082"
	Profile string // the profile the failure concerns, for the remedy; "" if none
	Remedy  string // the command that fixes it, when the failing layer knows better than cli
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.AADSTS != "" {
		return fmt.Sprintf("%s (AADSTS%s)", e.Message, e.AADSTS)
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds a failure of kind k. As with fmt.Errorf, a %w verb wraps its operand,
// so errors.Is and errors.As reach the cause.
func Errorf(k Kind, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Kind: k, Message: err.Error(), Err: errors.Unwrap(err)}
}

// Wrap classifies err as kind k unless it already carries a kind; nil stays nil.
func Wrap(k Kind, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Kind: k, Message: err.Error(), Err: err}
}

// RemedyOf is the first Remedy set along err's chain of failures, "" if none: an
// outer layer that adds context keeps the remedy of the layer that knew it.
func RemedyOf(err error) string {
	var e *Error
	for errors.As(err, &e) {
		if e.Remedy != "" {
			return e.Remedy
		}
		err = e.Err
	}
	return ""
}

// KindOf returns the kind of err, Unexpected when it carries none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Unexpected
}

// WithProfile records the profile err concerns, unless it already names one. err
// keeps its text; errors.As finds a copy of its *Error that names the profile.
func WithProfile(err error, profile string) error {
	var e *Error
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &e):
		return &Error{Kind: Unexpected, Profile: profile, Message: err.Error(), Err: err}
	case e.Profile != "":
		return err
	}
	c := *e
	c.Profile = profile
	if e == err {
		return &c
	}
	return &withProfile{err: err, e: &c}
}

type withProfile struct {
	err error
	e   *Error
}

func (w *withProfile) Error() string   { return w.err.Error() }
func (w *withProfile) Unwrap() []error { return []error{w.e, w.err} }

// ProfileOf is the profile err concerns, "" when it names none.
func ProfileOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Profile
	}
	return ""
}

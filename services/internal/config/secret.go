package config

import (
	"fmt"
	"log/slog"
	"strconv"
)

// redacted stands in for a secret's value wherever a Secret is printed.
const redacted = "[REDACTED]"

// Secret holds a credential (a password, a token, an API key). Every way of
// printing it – fmt with any verb, slog, JSON, YAML and text marshalling –
// gives "[REDACTED]", so a config or a struct holding one can be logged or
// dumped safely. An empty Secret prints as "" so that "not set" stays
// visible. Reveal is the one way to get the value, and should appear only
// where the credential is handed to the library that uses it.
//
// fmt cannot call methods on unexported struct fields, so keep Secrets in
// exported fields (config structs have them exported anyway, for YAML).
type Secret string

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString covers %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// Format covers every fmt verb, including those (%x, %d) that would
// otherwise bypass String.
func (s Secret) Format(f fmt.State, verb rune) {
	text := s.String()
	if verb == 'q' || (verb == 'v' && f.Flag('#')) {
		text = strconv.Quote(text)
	}
	_, _ = f.Write([]byte(text))
}

// LogValue keeps the value out of slog output, whatever the handler.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText also covers encoders that fall back to text, and JSON map keys.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// MarshalYAML is what Print relies on.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

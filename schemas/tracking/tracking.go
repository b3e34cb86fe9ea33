package tracking

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// HeaderName is the mail header that carries the value Sign returns.
const HeaderName = "X-Mailmon-Track"

const (
	// MinSecretLen is the shortest key secret accepted: 32 bytes, the
	// output size of SHA-256, so the key is never the weak link of the MAC.
	MinSecretLen = 32
	// MaxClockSkew is how far in the future a timestamp may be before
	// Verify rejects it, to allow for the sender's clock running ahead.
	MaxClockSkew = 5 * time.Minute

	MaxCustomerLen  = 64
	MaxSourceLen    = 64
	MaxMessageIDLen = 128
	MaxKeyIDLen     = 32

	// maxInputLen bounds what Parse looks at. The longest header Sign
	// produces is under 900 bytes; the rest is room for folding whitespace.
	maxInputLen = 4096
	// maxUnix is 9999-12-31T23:59:59Z, so every accepted t converts to a
	// time.Time and back unchanged.
	maxUnix = 253402300799
	macLen  = sha256.Size
)

// Reasons a header is refused. Verify and Parse wrap exactly one of them,
// so callers can count rejections by kind with errors.Is.
var (
	ErrMalformed    = errors.New("tracking: malformed header")
	ErrVersion      = errors.New("tracking: unsupported header version")
	ErrUnknownKey   = errors.New("tracking: unknown key id")
	ErrTruncatedMAC = errors.New("tracking: truncated MAC")
	ErrTampered     = errors.New("tracking: MAC mismatch (tampered or foreign header)")
	ErrFuture       = errors.New("tracking: timestamp in the future")
	ErrExpired      = errors.New("tracking: header too old")

	// ErrInvalidField is returned by Sign for a field it cannot carry.
	ErrInvalidField = errors.New("tracking: invalid field")
	// ErrInvalidKey is returned for a key with a bad id or a short secret.
	ErrInvalidKey = errors.New("tracking: invalid key")
)

// Fields is what the header ties a message to.
type Fields struct {
	// Customer is the account the message was sent for.
	Customer string
	// Source is the sending IP address or the name of the sending source.
	Source string
	// MessageID is our id of the message, or the probe id for a probe.
	MessageID string
	// Time is when the message was signed; the header keeps whole seconds.
	Time time.Time
}

// Sign returns the header value for f, signed with the current key. The
// value is ASCII, has no raw whitespace inside fields and is at most about
// 900 bytes, so it fits one header line and folds cleanly at "; ".
func (k Keyring) Sign(f Fields) (string, error) {
	if err := k.Current.validate(); err != nil {
		return "", err
	}
	if err := checkFields(f, ErrInvalidField); err != nil {
		return "", err
	}
	signed := signedPart(k.Current.ID, f)
	mac := computeMAC(k.Current.Secret, signed)
	return strings.ReplaceAll(signed, ";", "; ") + "; h=" + base64.RawURLEncoding.EncodeToString(mac), nil
}

// Verify checks a header value and returns its fields only if the MAC is
// valid under one of the keyring's keys and the timestamp is not more than
// MaxClockSkew ahead of now nor (when maxAge > 0) older than maxAge.
// Whitespace anywhere in value, as added by header folding in transit, is
// ignored. Every refusal wraps one of the Err* reasons.
func (k Keyring) Verify(value string, now time.Time, maxAge time.Duration) (Fields, error) {
	p, err := parse(value)
	if err != nil {
		return Fields{}, err
	}
	key, ok := k.lookup(p.keyID)
	if !ok {
		return Fields{}, fmt.Errorf("%w %q", ErrUnknownKey, p.keyID)
	}
	if err := key.validate(); err != nil {
		return Fields{}, err
	}
	if !hmac.Equal(p.mac, computeMAC(key.Secret, p.signed)) {
		return Fields{}, ErrTampered
	}
	if p.fields.Time.After(now.Add(MaxClockSkew)) {
		return Fields{}, fmt.Errorf("%w: signed at %s, now %s", ErrFuture, p.fields.Time.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if maxAge > 0 && now.Sub(p.fields.Time) > maxAge {
		return Fields{}, fmt.Errorf("%w: signed at %s, older than %s", ErrExpired, p.fields.Time.Format(time.RFC3339), maxAge)
	}
	return p.fields, nil
}

// Parse reads a header value WITHOUT checking its MAC or its age, and
// returns its fields and the id of the key it claims to be signed with.
//
// The result is untrusted: anyone can write a header that parses. Use it
// only to show what a header says (inspect tools, debugging); anything that
// attributes a complaint, bounce or probe must use Keyring.Verify.
func Parse(value string) (Fields, string, error) {
	p, err := parse(value)
	if err != nil {
		return Fields{}, "", err
	}
	return p.fields, p.keyID, nil
}

type parsed struct {
	fields Fields
	keyID  string
	signed string // the text the MAC covers
	mac    []byte
}

// tags lists the header's tags in the one order they may appear.
var tags = [...]string{"v", "k", "c", "s", "m", "t", "h"}

func parse(value string) (parsed, error) {
	if len(value) > maxInputLen {
		return parsed{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxInputLen)
	}
	compact := removeWhitespace(value)
	parts := strings.Split(compact, ";")
	// The version comes first and is checked first, so a header from a
	// newer mailmon is reported as such and not as garbage.
	version, ok := strings.CutPrefix(parts[0], "v=")
	if !ok {
		return parsed{}, fmt.Errorf("%w: does not start with v=", ErrMalformed)
	}
	if version != "1" {
		return parsed{}, fmt.Errorf("%w %q", ErrVersion, clip(version))
	}
	if len(parts) != len(tags) {
		return parsed{}, fmt.Errorf("%w: %d fields, want %d", ErrMalformed, len(parts), len(tags))
	}
	values := make([]string, len(tags))
	for i, part := range parts {
		tag, v, ok := strings.Cut(part, "=")
		if !ok || tag != tags[i] {
			return parsed{}, fmt.Errorf("%w: field %d is %q, want %s=", ErrMalformed, i+1, clip(part), tags[i])
		}
		values[i] = v
	}

	var p parsed
	p.keyID = values[1]
	if err := checkKeyID(p.keyID); err != nil {
		return parsed{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var err error
	if p.fields.Customer, err = decodeValue(values[2]); err != nil {
		return parsed{}, fmt.Errorf("%w: c: %v", ErrMalformed, err)
	}
	if p.fields.Source, err = decodeValue(values[3]); err != nil {
		return parsed{}, fmt.Errorf("%w: s: %v", ErrMalformed, err)
	}
	if p.fields.MessageID, err = decodeValue(values[4]); err != nil {
		return parsed{}, fmt.Errorf("%w: m: %v", ErrMalformed, err)
	}
	unix, err := parseUnix(values[5])
	if err != nil {
		return parsed{}, fmt.Errorf("%w: t: %v", ErrMalformed, err)
	}
	p.fields.Time = time.Unix(unix, 0).UTC()
	if err := checkFields(p.fields, ErrMalformed); err != nil {
		return parsed{}, err
	}
	if p.mac, err = decodeMAC(values[6]); err != nil {
		return parsed{}, err
	}
	p.signed = compact[:strings.LastIndex(compact, ";h=")]
	return p, nil
}

// signedPart is the canonical text the MAC covers: the header up to and
// without ";h=", with no whitespace. Because every value is encoded and
// the tags are fixed in order, one set of fields has exactly one such text.
func signedPart(keyID string, f Fields) string {
	var b strings.Builder
	b.WriteString("v=1;k=")
	b.WriteString(keyID)
	b.WriteString(";c=")
	encodeValue(&b, f.Customer)
	b.WriteString(";s=")
	encodeValue(&b, f.Source)
	b.WriteString(";m=")
	encodeValue(&b, f.MessageID)
	b.WriteString(";t=")
	b.WriteString(strconv.FormatInt(f.Time.Unix(), 10))
	return b.String()
}

func computeMAC(secret []byte, signed string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(signed))
	return m.Sum(nil)
}

func checkFields(f Fields, reason error) error {
	for _, field := range []struct {
		name, value string
		max         int
	}{
		{"customer", f.Customer, MaxCustomerLen},
		{"source", f.Source, MaxSourceLen},
		{"message id", f.MessageID, MaxMessageIDLen},
	} {
		if err := checkValue(field.value, field.max); err != nil {
			return fmt.Errorf("%w: %s %v", reason, field.name, err)
		}
	}
	if f.Time.IsZero() || f.Time.Unix() < 1 || f.Time.Unix() > maxUnix {
		return fmt.Errorf("%w: time %v is not between 1970 and 9999", reason, f.Time)
	}
	return nil
}

func checkValue(v string, max int) error {
	switch {
	case v == "":
		return errors.New("is empty")
	case len(v) > max:
		return fmt.Errorf("is %d bytes, longer than %d", len(v), max)
	case !utf8.ValidString(v):
		return errors.New("is not valid UTF-8")
	case strings.ContainsFunc(v, unicode.IsControl):
		return errors.New("contains a control character")
	}
	return nil
}

// isSafe reports whether c is written as itself in a value; every other
// byte is percent-encoded. The set excludes the header's own syntax (";",
// "=", "%"), whitespace, quotes and comment parentheses, so no value can
// end a field, start another or be changed by an MTA in transit.
func isSafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("-._~:@/+", c) >= 0
}

const upperHex = "0123456789ABCDEF"

func encodeValue(b *strings.Builder, v string) {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if isSafe(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&0x0F])
	}
}

// decodeValue accepts only what encodeValue writes (upper-case hex, and
// only for bytes that need it), so each value has one spelling and a
// verified header always re-signs to the same text.
func decodeValue(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isSafe(c) {
			b.WriteByte(c)
			continue
		}
		if c != '%' {
			return "", fmt.Errorf("byte %q must be percent-encoded", c)
		}
		if i+2 >= len(s) {
			return "", errors.New("incomplete %-escape")
		}
		hi, lo := strings.IndexByte(upperHex, s[i+1]), strings.IndexByte(upperHex, s[i+2])
		if hi < 0 || lo < 0 {
			return "", fmt.Errorf("bad %%-escape %q (want upper-case hex)", s[i:i+3])
		}
		decoded := byte(hi<<4 | lo)
		if isSafe(decoded) {
			return "", fmt.Errorf("%%-escape %q of a character that needs none", s[i:i+3])
		}
		b.WriteByte(decoded)
		i += 2
	}
	return b.String(), nil
}

// encodedMACLen is the length of a full MAC in unpadded base64url.
var encodedMACLen = base64.RawURLEncoding.EncodedLen(macLen)

// decodeMAC tells a MAC cut short (by a careless MTA or a forger) from one
// that is not a MAC at all.
func decodeMAC(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("%w: h is not unpadded base64url", ErrMalformed)
		}
	}
	switch {
	case len(s) < encodedMACLen:
		return nil, fmt.Errorf("%w: %d characters, want %d", ErrTruncatedMAC, len(s), encodedMACLen)
	case len(s) > encodedMACLen:
		return nil, fmt.Errorf("%w: h is %d characters, want %d", ErrMalformed, len(s), encodedMACLen)
	}
	mac, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: h is not canonical base64url", ErrMalformed)
	}
	return mac, nil
}

func parseUnix(s string) (int64, error) {
	if s == "" || len(s) > 12 || s[0] == '0' || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not seconds since 1970", clip(s))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxUnix {
		return 0, fmt.Errorf("%q is not seconds since 1970", clip(s))
	}
	return n, nil
}

func removeWhitespace(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\r', '\n':
		default:
			b = append(b, s[i])
		}
	}
	return string(b)
}

// clip keeps error messages about hostile input short.
func clip(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

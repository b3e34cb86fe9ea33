package silence

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mailmon/mailmon/schemas"
)

// Bucket is the KV bucket that holds the silences.
const Bucket = "alert_silences"

// Limits on one silence. They bound what a record read from the bucket
// can cost, and keep a silence about planned maintenance rather than a
// permanent mute.
const (
	MaxMatchers     = 16
	MaxValueBytes   = 128
	MaxCommentBytes = 1024
	MaxCreatedBy    = 64
	MaxIDBytes      = 64
	// MaxDuration is the longest a silence may last.
	MaxDuration = 30 * 24 * time.Hour
	// MaxRecordBytes is the largest stored record read; anything longer is
	// refused before it is decoded.
	MaxRecordBytes = 16 << 10
	// MaxSilences is how many silences the bucket may hold (active, pending
	// and recently ended); Add refuses more, and the in-memory copy holds
	// no more.
	MaxSilences = 1000
	// Retention is how long an ended silence stays listed before Add
	// deletes it.
	Retention = 7 * 24 * time.Hour
)

// Label names a matcher may use: the fields of schemas.AlertRaised that
// identify what an alert is about.
const (
	LabelRule            = "rule"
	LabelSubject         = "subject"
	LabelSeverity        = "severity"
	LabelCustomer        = "customer"
	LabelProvider        = "provider"
	LabelSourceIP        = "source_ip"
	LabelRecipientDomain = "recipient_domain"
)

// severities are the values schemas.AlertRaised.Severity takes.
var severities = []string{schemas.AlertInfo, schemas.AlertWarning, schemas.AlertCritical}

// Labels lists every label name, in the order they are documented.
var Labels = []string{LabelRule, LabelSubject, LabelSeverity, LabelCustomer, LabelProvider, LabelSourceIP, LabelRecipientDomain}

// label returns the alert's value for a label name.
func label(a *schemas.AlertRaised, name string) string {
	switch name {
	case LabelRule:
		return a.Rule
	case LabelSubject:
		return a.Subject
	case LabelSeverity:
		return a.Severity
	case LabelCustomer:
		return a.Customer
	case LabelProvider:
		return a.Provider
	case LabelSourceIP:
		return a.SourceIP
	case LabelRecipientDomain:
		return a.RecipientDomain
	}
	return ""
}

// Matcher accepts alerts whose label Name equals Value, or starts with
// Value minus its trailing "*".
type Matcher struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ParseMatcher reads "name=value" as written on the command line.
func ParseMatcher(s string) (Matcher, error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok {
		return Matcher{}, fmt.Errorf("matcher %q: want name=value, e.g. provider=gmail", truncate(s))
	}
	m := Matcher{Name: strings.TrimSpace(name), Value: value}
	return m, m.Validate()
}

// String writes the matcher as ParseMatcher reads it.
func (m Matcher) String() string { return m.Name + "=" + m.Value }

// Validate checks the name is a label and the value is 1 to MaxValueBytes
// visible ASCII characters with "*" at most once, at the end.
func (m Matcher) Validate() error {
	if !isLabel(m.Name) {
		return fmt.Errorf("matcher %q: unknown label %q (one of %s)", truncate(m.String()), truncate(m.Name), strings.Join(Labels, ", "))
	}
	if m.Value == "" {
		return fmt.Errorf("matcher %s: empty value (use %s=* for any value)", m.Name, m.Name)
	}
	if len(m.Value) > MaxValueBytes {
		return fmt.Errorf("matcher %s: value longer than %d bytes", m.Name, MaxValueBytes)
	}
	if m.Name == LabelSeverity && !strings.HasSuffix(m.Value, "*") && !slices.Contains(severities, m.Value) {
		// A misspelt severity would silently mute nothing.
		return fmt.Errorf("matcher severity: %q is not one of %s", truncate(m.Value), strings.Join(severities, ", "))
	}
	for i := 0; i < len(m.Value); i++ {
		c := m.Value[i]
		if c <= ' ' || c > '~' {
			return fmt.Errorf("matcher %s: value may hold only visible ASCII characters", m.Name)
		}
		if c == '*' && i != len(m.Value)-1 {
			return fmt.Errorf("matcher %s: %q: \"*\" may only end a value (a prefix)", m.Name, m.Value)
		}
	}
	return nil
}

// Matches reports whether the alert's label satisfies the matcher. An
// empty label never does.
func (m Matcher) Matches(a *schemas.AlertRaised) bool {
	v := label(a, m.Name)
	if v == "" {
		return false
	}
	if prefix, ok := strings.CutSuffix(m.Value, "*"); ok {
		return strings.HasPrefix(v, prefix)
	}
	return v == m.Value
}

func isLabel(name string) bool {
	for _, l := range Labels {
		if name == l {
			return true
		}
	}
	return false
}

// Silence holds back the notifications of the alerts every matcher
// accepts, from StartsAt until EndsAt.
type Silence struct {
	ID        string    `json:"id"`
	Matchers  []Matcher `json:"matchers"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	Comment   string    `json:"comment"`
	CreatedBy string    `json:"created_by"`
}

// State of a silence at some time.
const (
	StatePending = "pending"
	StateActive  = "active"
	StateExpired = "expired"
)

// State tells whether the silence has yet to start, is active or has ended
// at now.
func (s Silence) State(now time.Time) string {
	switch {
	case now.Before(s.StartsAt):
		return StatePending
	case now.Before(s.EndsAt):
		return StateActive
	}
	return StateExpired
}

// Active reports whether the silence mutes alerts at now: StartsAt <= now <
// EndsAt.
func (s Silence) Active(now time.Time) bool { return s.State(now) == StateActive }

// Matches reports whether the silence is active at now and every matcher
// accepts the alert. A silence without matchers (never valid) matches
// nothing.
func (s Silence) Matches(a *schemas.AlertRaised, now time.Time) bool {
	if a == nil || len(s.Matchers) == 0 || !s.Active(now) {
		return false
	}
	for _, m := range s.Matchers {
		if !m.Matches(a) {
			return false
		}
	}
	return true
}

// Validate checks everything a stored silence must satisfy, whoever wrote
// it: an id fit for a KV key, 1 to MaxMatchers valid matchers with no
// label twice, a span of at most MaxDuration that does not end before it
// starts, and bounded printable text.
func (s Silence) Validate() error {
	var errs []error
	if s.ID == "" || len(s.ID) > MaxIDBytes || strings.IndexFunc(s.ID, notIDChar) >= 0 {
		errs = append(errs, fmt.Errorf("id %q: 1 to %d letters, digits and dashes", truncate(s.ID), MaxIDBytes))
	}
	switch {
	case len(s.Matchers) == 0:
		errs = append(errs, errors.New("no matchers: a silence without them would mute every alert"))
	case len(s.Matchers) > MaxMatchers:
		errs = append(errs, fmt.Errorf("%d matchers, at most %d", len(s.Matchers), MaxMatchers))
	default:
		seen := make(map[string]bool, len(s.Matchers))
		for _, m := range s.Matchers {
			if err := m.Validate(); err != nil {
				errs = append(errs, err)
			} else if seen[m.Name] {
				errs = append(errs, fmt.Errorf("label %s matched twice", m.Name))
			}
			seen[m.Name] = true
		}
	}
	switch {
	case s.StartsAt.IsZero() || s.EndsAt.IsZero():
		errs = append(errs, errors.New("starts_at and ends_at are required"))
	case s.EndsAt.Before(s.StartsAt):
		errs = append(errs, errors.New("ends_at is before starts_at"))
	case s.EndsAt.Sub(s.StartsAt) > MaxDuration:
		errs = append(errs, fmt.Errorf("lasts %s, at most %s", s.EndsAt.Sub(s.StartsAt), MaxDuration))
	}
	if err := checkText("comment", s.Comment, MaxCommentBytes); err != nil {
		errs = append(errs, err)
	}
	if err := checkText("created_by", s.CreatedBy, MaxCreatedBy); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func notIDChar(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-')
}

// checkText requires 1 to max bytes of valid UTF-8 without control
// characters: the text is printed in tables and notifications.
func checkText(name, s string, max int) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is required", name)
	case len(s) > max:
		return fmt.Errorf("%s longer than %d bytes", name, max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not UTF-8", name)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return fmt.Errorf("%s holds control characters", name)
	}
	return nil
}

// Marshal is the record stored under the silence's id.
func (s Silence) Marshal() []byte {
	b, _ := json.Marshal(s) // plain fields: cannot fail
	return b
}

// Unmarshal reads a stored record strictly (no unknown fields, at most
// MaxRecordBytes) and validates it. A field this version does not know
// could narrow what the writer meant to silence, so it is refused rather
// than ignored.
func Unmarshal(b []byte) (Silence, error) {
	if len(b) > MaxRecordBytes {
		return Silence{}, fmt.Errorf("record of %d bytes, at most %d", len(b), MaxRecordBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Silence
	if err := dec.Decode(&s); err != nil {
		return Silence{}, fmt.Errorf("record: %w", err)
	}
	if dec.More() {
		return Silence{}, errors.New("record: data after the JSON object")
	}
	if err := s.Validate(); err != nil {
		return Silence{}, err
	}
	return s, nil
}

// truncate keeps error messages about hostile input short.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

package dsn

import (
	"strings"
	"time"

	"github.com/mailmon/mailmon/services/internal/rawmail"
)

// Kinds of message (Bounce.Kind).
const (
	// KindBounce: at least one recipient failed or was delayed.
	KindBounce = "bounce"
	// KindDelivered: a delivery (or relay/expansion) confirmation only.
	KindDelivered = "delivered"
	// KindAutoReply: a vacation or other automatic reply (RFC 3834).
	KindAutoReply = "auto_reply"
	// KindFeedback: a complaint notice that came back the bounce way.
	KindFeedback = "feedback"
	// KindNone: not an automatic report of any kind recognised.
	KindNone = "none"
)

// Actions (RFC 3464 section 2.3.3).
const (
	ActionFailed    = "failed"
	ActionDelayed   = "delayed"
	ActionDelivered = "delivered"
	ActionRelayed   = "relayed"
	ActionExpanded  = "expanded"
)

// Formats (Bounce.Format): "rfc3464" when a delivery-status part carried
// the recipients, "ses" for Amazon SES JSON, "text" for a human-readable
// bounce read by the structural rules.
const (
	FormatRFC3464 = "rfc3464"
	FormatSES     = "ses"
	FormatText    = "text"
)

// Bounce is what Parse found in one message.
type Bounce struct {
	Kind   string
	Format string
	// The bounce message itself.
	From      string
	Subject   string
	MessageID string
	// ReportingMTA is the per-message Reporting-MTA without its type.
	ReportingMTA string
	// ArrivalDate is the per-message Arrival-Date: when the reporting MTA
	// received the original.
	ArrivalDate time.Time
	// Recipients are every recipient the bounce reports on, in order, with
	// any action; Failed returns the ones that count as bounces.
	Recipients []Recipient
	// Original is the returned message (or its header), nil when none came
	// back.
	Original *Original
}

// Recipient is one recipient of a bounce.
type Recipient struct {
	// Recipient is the failed address (DSN Final-Recipient, without its
	// type), as written.
	Recipient string
	// OriginalRecipient is the DSN Original-Recipient, or the address a
	// text bounce says it was expanded from.
	OriginalRecipient string
	// Action is failed, delayed, delivered, relayed or expanded.
	Action string
	// Status is the RFC 3463 enhanced status code, e.g. "5.1.1": the DSN
	// Status, or the first one in the diagnostic.
	Status string
	// ReplyCode is the SMTP reply code in the diagnostic; 0 when none.
	ReplyCode int
	// RemoteMTA and ReportingMTA are the DSN fields without their "dns;"
	// type, or the host a text bounce names.
	RemoteMTA    string
	ReportingMTA string
	// DiagnosticType is the DSN Diagnostic-Code type ("smtp", "x-unix",
	// ...), lower case; "" for a text bounce.
	DiagnosticType string
	// Diagnostic is the error text: the DSN Diagnostic-Code without its
	// type, or the bounce's own words about this recipient.
	Diagnostic string
	// Command is the SMTP command the error answered, when known: CONN,
	// HELO, EHLO, MAIL, RCPT, DATA (upper case).
	Command string
	// LastAttempt is the DSN Last-Attempt-Date.
	LastAttempt time.Time

	// Classification (package bounceclass), for failed and delayed
	// recipients; Reason is "delivered" for a delivered one.
	Reason    string
	Category  string
	Signature string
	Rule      string
	Permanent bool

	// context is the text around the recipient in the notice, where the
	// SMTP command is looked for.
	context string
	// vendorCategory is the reporting MTA's own verdict
	// (X-PowerMTA-BounceCategory).
	vendorCategory string
}

// Original is the returned message as the bounce carries it.
type Original struct {
	Header rawmail.Header
	// HeadersOnly is true when only the header came back.
	HeadersOnly bool
	MessageID   string
	From        string
	To          string
	Subject     string
	ReturnPath  string
	// DKIMDomains are the d= tags of its DKIM signatures, lower case.
	DKIMDomains []string
}

// TrackingHeaderName is mailmon's tracking header (schemas/tracking).
const TrackingHeaderName = "X-Mailmon-Track"

// TrackingHeader returns the raw, unverified X-Mailmon-Track value of the
// returned message, "" when there is none. The caller verifies it with
// schemas/tracking.
func (b *Bounce) TrackingHeader() string {
	if b.Original == nil {
		return ""
	}
	return b.Original.Header.Get(TrackingHeaderName)
}

// Failed returns the recipients that count as bounces: failed and delayed
// ones. It is empty unless Kind is KindBounce.
func (b *Bounce) Failed() []Recipient {
	if b.Kind != KindBounce {
		return nil
	}
	var out []Recipient
	for _, r := range b.Recipients {
		if r.Action == ActionFailed || r.Action == ActionDelayed {
			out = append(out, r)
		}
	}
	return out
}

// stripType removes an RFC 3464 address or diagnostic type ("rfc822;",
// "dns;", "smtp;") and returns the type (lower case) and the value.
func stripType(v string) (typ, val string) {
	v = strings.TrimSpace(v)
	i := strings.IndexByte(v, ';')
	if i > 0 && i < 20 && !strings.ContainsAny(v[:i], " <@\"") {
		return strings.ToLower(strings.TrimSpace(v[:i])), strings.TrimSpace(v[i+1:])
	}
	return "", v
}

package arf

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/mailmon/mailmon/services/internal/rawmail"
)

// Formats a report can have (Report.Format).
const (
	FormatARF              = "arf"
	FormatJMRP             = "jmrp"
	FormatAmazonSES        = "amazon_ses"
	FormatYahooCFL         = "yahoo_cfl"
	FormatAppleUnsubscribe = "apple_unsubscribe"
	FormatDMARCText        = "dmarc_text"
	// FormatNone: not a feedback report of any kind Parse knows.
	FormatNone = "none"
)

// Feedback types (RFC 5965 section 7.3, RFC 6430, RFC 6591).
const (
	TypeAbuse       = "abuse"
	TypeFraud       = "fraud"
	TypeVirus       = "virus"
	TypeOther       = "other"
	TypeNotSpam     = "not-spam"
	TypeOptOut      = "opt-out"
	TypeAuthFailure = "auth-failure"
)

// TrackingHeaderName is mailmon's tracking header (schemas/tracking).
const TrackingHeaderName = "X-Mailmon-Track"

// Report is what Parse found in one message. String fields are verbatim
// (unfolded and trimmed; angle brackets kept); absent fields are empty.
type Report struct {
	// IsARF is true when the message has a message/feedback-report part.
	IsARF bool
	// Format is FormatARF or one of the non-ARF formats, FormatNone when
	// the message is no feedback report at all.
	Format string

	// The report message itself.
	ReportFrom      string
	ReportSubject   string
	ReportMessageID string
	ReportDate      time.Time
	// TopContentType is the report's media type; ReportType its
	// report-type parameter.
	TopContentType string
	ReportType     string

	// Fields is the message/feedback-report part as read, every field in
	// order; the typed fields below are taken from it.
	Fields rawmail.Header

	// Fields of the message/feedback-report part (RFC 5965 section 3).
	FeedbackType     string
	UserAgent        string
	Version          string
	SourceIP         string
	OriginalMailFrom string
	OriginalRcptTo   []string
	// ArrivalDate is Arrival-Date, else the legacy Received-Date, parsed;
	// ArrivalDateRaw is the text it was read from.
	ArrivalDate           time.Time
	ArrivalDateRaw        string
	ReportedDomain        []string
	ReportedURI           []string
	ReportingMTA          string
	Incidents             string
	OriginalEnvelopeID    string
	AuthenticationResults []string
	RemovalRecipient      []string
	// RFC 6591 fields.
	AuthFailure       string
	DeliveryResult    string
	DKIMDomain        string
	DKIMIdentity      string
	DKIMSelector      string
	SPFDNS            []string
	IdentityAlignment string
	// Other holds every other field of the report part, by lower-case
	// name (vendor fields such as Abuse-Type or Redacted-Address, and the
	// bulky DKIM-Canonicalized-Header/-Body).
	Other map[string][]string

	// Original is the reported message (its header, and whether the body
	// came too); nil when the report carries none.
	Original *Original

	// Non-ARF details.
	// JMRPOriginalRecipient is X-HmXmrOriginalRecipient of a JMRP report.
	JMRPOriginalRecipient string
	// AppleUnsubscribe is set for Apple Mail's opt-out message.
	AppleUnsubscribe bool
	// TextSourceIP is the sending IP a non-ARF report names in its
	// subject or text ("complaint about message from 192.0.2.1", "Sender
	// IP Address: ...").
	TextSourceIP string
}

// Original is the reported message as the report carries it.
type Original struct {
	Header rawmail.Header
	// HeadersOnly is true when only the header came back
	// (text/rfc822-headers, or a header quoted in text).
	HeadersOnly bool
	MessageID   string
	From        string
	To          string
	Subject     string
	ReturnPath  string
	Date        string
	// DKIMDomains are the d= tags of its DKIM-Signature fields, in order.
	DKIMDomains []string
	// XHeaders are its X-* fields, in order, names as written.
	XHeaders []rawmail.Field
}

// Incidents returns the Incidents field as a number: 1 when absent or
// unreadable (RFC 5965: one incident unless stated).
func (r *Report) IncidentCount() int {
	n, err := strconv.Atoi(strings.TrimSpace(r.Incidents))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// EffectiveFeedbackType is the report's Feedback-Type, lower-cased, or for
// a non-ARF format what it means: abuse for JMRP, Amazon SES and Yahoo
// CFL complaints, opt-out for Apple's unsubscribe, auth-failure for a text
// DMARC report. It is "" for a message that is no report.
func (r *Report) EffectiveFeedbackType() string {
	if r.FeedbackType != "" {
		return strings.ToLower(r.FeedbackType)
	}
	switch r.Format {
	case FormatJMRP, FormatAmazonSES, FormatYahooCFL:
		return TypeAbuse
	case FormatAppleUnsubscribe:
		return TypeOptOut
	case FormatDMARCText:
		return TypeAuthFailure
	case FormatARF:
		return TypeOther
	}
	return ""
}

// TrackingHeader returns the raw value of the X-Mailmon-Track header of
// the reported message ("" when there is none). It is not verified: the
// caller must check it with schemas/tracking before trusting it.
func (r *Report) TrackingHeader() string {
	if r.Original != nil {
		if v := r.Original.Header.Get(TrackingHeaderName); v != "" {
			return v
		}
	}
	return ""
}

// Trace is what a complaint can be traced to, best key first.
type Trace struct {
	// TrackingHeader is the raw X-Mailmon-Track value of the original
	// (unverified).
	TrackingHeader string `json:"tracking_header,omitempty"`
	// DKIMDomain is the d= of the original's first DKIM signature, else
	// the report's DKIM-Domain.
	DKIMDomain string `json:"dkim_domain,omitempty"`
	// MessageID is the original's Message-ID without angle brackets.
	MessageID string `json:"message_id,omitempty"`
	// SourceIP is the reported source IP as an address, when it is one.
	SourceIP string `json:"source_ip,omitempty"`
	// RecipientDomain is the domain of the complaining recipient when the
	// report did not redact it.
	RecipientDomain string `json:"recipient_domain,omitempty"`
}

// Trace collects the keys a complaint can be traced by.
func (r *Report) Trace() Trace {
	var t Trace
	t.TrackingHeader = r.TrackingHeader()
	if r.Original != nil {
		if len(r.Original.DKIMDomains) > 0 {
			t.DKIMDomain = r.Original.DKIMDomains[0]
		}
		t.MessageID = StripAngle(r.Original.MessageID)
	}
	if t.DKIMDomain == "" {
		t.DKIMDomain = strings.ToLower(strings.TrimSpace(r.DKIMDomain))
	}
	if a, ok := SourceAddr(r.SourceIP); ok {
		t.SourceIP = a.String()
	} else if a, ok := SourceAddr(r.TextSourceIP); ok {
		t.SourceIP = a.String()
	}
	t.RecipientDomain = r.recipientDomain()
	return t
}

func (r *Report) recipientDomain() string {
	cands := append([]string(nil), r.OriginalRcptTo...)
	if r.JMRPOriginalRecipient != "" {
		cands = append(cands, r.JMRPOriginalRecipient)
	}
	if r.Original != nil && r.Original.To != "" {
		cands = append(cands, r.Original.To)
	}
	for _, c := range cands {
		c = StripAngle(strings.TrimSpace(c))
		if i := strings.LastIndexByte(c, '<'); i >= 0 {
			c = StripAngle(c[i:])
		}
		at := strings.LastIndexByte(c, '@')
		if at <= 0 || at == len(c)-1 {
			continue
		}
		local, dom := c[:at], strings.ToLower(strings.TrimRight(c[at+1:], ">. "))
		if strings.Contains(strings.ToLower(local), "redacted") || strings.ContainsAny(dom, " <>\"") {
			continue
		}
		return dom
	}
	return ""
}

// SourceAddr reads the IP address at the start of a Source-IP value
// ("192.0.2.1", "192.0.2.1 (host.example)", "[2001:db8::1]", "::ffff:...").
func SourceAddr(v string) (netip.Addr, bool) {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, " \t(;,"); i >= 0 {
		v = v[:i]
	}
	v = strings.Trim(v, "[]")
	v = strings.TrimPrefix(strings.TrimPrefix(v, "IPv6:"), "ipv6:")
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// StripAngle removes one pair of angle brackets around s, and white space.
func StripAngle(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '<' && s[len(s)-1] == '>' {
		return strings.TrimSpace(s[1 : len(s)-1])
	}
	return s
}

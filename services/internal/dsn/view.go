package dsn

import "time"

// View is the JSON shape of one failed (or delayed) recipient that
// `mailmon inspect bounce` prints: the recipient's fields, its
// classification, and the bounce-level keys it can be traced by.
type View struct {
	Recipient         string `json:"recipient"`
	OriginalRecipient string `json:"original_recipient,omitempty"`
	Action            string `json:"action"`
	Reason            string `json:"reason"`
	Category          string `json:"category"`
	Permanent         bool   `json:"permanent"`
	Status            string `json:"status"`
	ReplyCode         int    `json:"reply_code"`
	Diagnostic        string `json:"diagnostic"`
	DiagnosticType    string `json:"diagnostic_type,omitempty"`
	Command           string `json:"command,omitempty"`
	RemoteMTA         string `json:"remote_mta,omitempty"`
	ReportingMTA      string `json:"reporting_mta,omitempty"`
	Signature         string `json:"signature,omitempty"`
	Rule              string `json:"rule,omitempty"`
	LastAttempt       string `json:"last_attempt,omitempty"`
	Format            string `json:"format"`
	BounceMessageID   string `json:"bounce_message_id,omitempty"`
	ArrivalDate       string `json:"arrival_date,omitempty"`
	Trace             Trace  `json:"trace"`
}

// Trace is what a bounce can be traced to: the returned message's keys.
type Trace struct {
	// TrackingHeader is the raw, unverified X-Mailmon-Track value.
	TrackingHeader string `json:"tracking_header,omitempty"`
	// DKIMDomain is the d= of the returned message's first DKIM signature.
	DKIMDomain string `json:"dkim_domain,omitempty"`
	// MessageID is the returned message's Message-ID without brackets.
	MessageID string `json:"message_id,omitempty"`
	// Sender is the returned message's From.
	Sender string `json:"sender,omitempty"`
}

// Trace collects the keys a bounce can be traced by.
func (b *Bounce) Trace() Trace {
	var t Trace
	if o := b.Original; o != nil {
		t.TrackingHeader = b.TrackingHeader()
		if len(o.DKIMDomains) > 0 {
			t.DKIMDomain = o.DKIMDomains[0]
		}
		t.MessageID = stripAngle(o.MessageID)
		t.Sender = o.From
	}
	return t
}

// Views returns one View per failed or delayed recipient; none for a
// message that is not a bounce.
func (b *Bounce) Views() []View {
	failed := b.Failed()
	if len(failed) == 0 {
		return nil
	}
	tr := b.Trace()
	out := make([]View, 0, len(failed))
	for _, r := range failed {
		v := View{
			Recipient:         r.Recipient,
			OriginalRecipient: r.OriginalRecipient,
			Action:            r.Action,
			Reason:            r.Reason,
			Category:          r.Category,
			Permanent:         r.Permanent,
			Status:            r.Status,
			ReplyCode:         r.ReplyCode,
			Diagnostic:        r.Diagnostic,
			DiagnosticType:    r.DiagnosticType,
			Command:           r.Command,
			RemoteMTA:         r.RemoteMTA,
			ReportingMTA:      r.ReportingMTA,
			Signature:         r.Signature,
			Rule:              r.Rule,
			Format:            b.Format,
			BounceMessageID:   stripAngle(b.MessageID),
			Trace:             tr,
		}
		if !r.LastAttempt.IsZero() {
			v.LastAttempt = r.LastAttempt.Format(time.RFC3339)
		}
		if !b.ArrivalDate.IsZero() {
			v.ArrivalDate = b.ArrivalDate.Format(time.RFC3339)
		}
		out = append(out, v)
	}
	return out
}

func stripAngle(s string) string {
	for len(s) >= 2 && s[0] == '<' && s[len(s)-1] == '>' {
		s = s[1 : len(s)-1]
	}
	return s
}

package dsn

import (
	"encoding/json"
	"strings"

	"github.com/mailmon/mailmon/services/internal/rawmail"
)

// sesNotification is the JSON Amazon SES publishes (through SNS, often by
// email) for bounces, complaints and deliveries.
type sesNotification struct {
	Type             string `json:"Type"`    // SNS envelope
	Message          string `json:"Message"` // SNS envelope: the notification as a string
	NotificationType string `json:"notificationType"`
	EventType        string `json:"eventType"`
	Bounce           *struct {
		BounceType        string `json:"bounceType"`
		BounceSubType     string `json:"bounceSubType"`
		ReportingMTA      string `json:"reportingMTA"`
		RemoteMTAIP       string `json:"remoteMtaIp"`
		BouncedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			Action         string `json:"action"`
			Status         string `json:"status"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"bouncedRecipients"`
	} `json:"bounce"`
	Complaint *struct {
		ComplainedRecipients []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"complainedRecipients"`
	} `json:"complaint"`
	Delivery *struct {
		Recipients   []string `json:"recipients"`
		SMTPResponse string   `json:"smtpResponse"`
		ReportingMTA string   `json:"reportingMTA"`
	} `json:"delivery"`
	Mail *struct {
		Headers []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"headers"`
	} `json:"mail"`
}

// sesJSON reads an Amazon SES notification in the body. It reports false
// when the body is not one.
func sesJSON(b *Bounce, text string) bool {
	i := strings.Index(text, `{"`)
	if i < 0 || !strings.Contains(text, `"notificationType"`) && !strings.Contains(text, `"eventType"`) {
		return false
	}
	j := strings.LastIndexByte(text, '}')
	if j < i {
		return false
	}
	raw := text[i : j+1]
	var n sesNotification
	// Mail gateways wrap the long line; the wrap inserts a line break and
	// one space.
	if json.Unmarshal([]byte(strings.ReplaceAll(strings.ReplaceAll(raw, "\r\n", "\n"), "\n ", "")), &n) != nil &&
		json.Unmarshal([]byte(strings.ReplaceAll(raw, "\n", "")), &n) != nil {
		return false
	}
	if n.Message != "" && n.NotificationType == "" {
		var inner sesNotification
		if json.Unmarshal([]byte(n.Message), &inner) != nil {
			return false
		}
		n = inner
	}
	kind := strings.ToLower(n.NotificationType)
	if kind == "" {
		kind = strings.ToLower(n.EventType)
	}
	if n.Mail != nil && len(n.Mail.Headers) > 0 {
		var h rawmail.Header
		for _, f := range n.Mail.Headers {
			h = append(h, rawmail.Field{Name: f.Name, Value: f.Value})
		}
		b.Original = newOriginal(h, true)
	}
	b.Format = FormatSES
	switch kind {
	case "bounce":
		if n.Bounce == nil {
			return false
		}
		b.Kind = KindBounce
		_, b.ReportingMTA = stripType(n.Bounce.ReportingMTA)
		transient := strings.EqualFold(n.Bounce.BounceType, "Transient")
		for _, r := range n.Bounce.BouncedRecipients {
			rc := Recipient{
				Recipient:    r.EmailAddress,
				Action:       normAction(r.Action),
				Status:       findStatus(r.Status),
				ReportingMTA: b.ReportingMTA,
			}
			if r.Action == "" {
				rc.Action = ActionFailed
				if transient {
					rc.Action = ActionDelayed
				}
			}
			rc.DiagnosticType, rc.Diagnostic = stripType(r.DiagnosticCode)
			if rc.Diagnostic == "" {
				// SES's own verdict when the remote gave none.
				rc.Diagnostic = strings.TrimSpace(n.Bounce.BounceType + " " + n.Bounce.BounceSubType)
			}
			b.Recipients = append(b.Recipients, rc)
		}
	case "complaint":
		b.Kind = KindFeedback
	case "delivery":
		b.Kind = KindDelivered
		if n.Delivery != nil {
			_, b.ReportingMTA = stripType(n.Delivery.ReportingMTA)
			for _, a := range n.Delivery.Recipients {
				rc := Recipient{Recipient: a, Action: ActionDelivered, Diagnostic: n.Delivery.SMTPResponse}
				rc.Status = findStatus(n.Delivery.SMTPResponse)
				b.Recipients = append(b.Recipients, rc)
			}
		}
	default:
		b.Format = ""
		b.Original = nil
		return false
	}
	return true
}

package arf

import "time"

// View is the JSON shape of a report that `mailmon inspect arf` prints:
// every field by its snake_case name, null (or an empty list) when absent,
// values verbatim, dates in RFC 3339.
type View struct {
	IsARF                 bool                `json:"is_arf"`
	Format                string              `json:"format"`
	FeedbackType          *string             `json:"feedback_type"`
	EffectiveFeedbackType string              `json:"effective_feedback_type,omitempty"`
	UserAgent             *string             `json:"user_agent"`
	Version               *string             `json:"version"`
	SourceIP              *string             `json:"source_ip"`
	OriginalMailFrom      *string             `json:"original_mail_from"`
	OriginalRcptTo        []string            `json:"original_rcpt_to"`
	ArrivalDate           *string             `json:"arrival_date"`
	ArrivalDateRaw        *string             `json:"arrival_date_raw"`
	ReportedDomain        []string            `json:"reported_domain"`
	ReportedURI           []string            `json:"reported_uri"`
	ReportingMTA          *string             `json:"reporting_mta"`
	Incidents             *string             `json:"incidents"`
	OriginalEnvelopeID    *string             `json:"original_envelope_id"`
	AuthenticationResults []string            `json:"authentication_results"`
	AuthFailure           *string             `json:"auth_failure"`
	DeliveryResult        *string             `json:"delivery_result"`
	DKIMDomain            *string             `json:"dkim_domain"`
	DKIMIdentity          *string             `json:"dkim_identity"`
	DKIMSelector          *string             `json:"dkim_selector"`
	SPFDNS                []string            `json:"spf_dns"`
	IdentityAlignment     *string             `json:"identity_alignment"`
	RemovalRecipient      []string            `json:"removal_recipient"`
	OtherReportFields     map[string][]string `json:"other_report_fields"`

	OriginalIncluded   string              `json:"original_included"`
	OriginalMessageID  *string             `json:"original_message_id"`
	OriginalFrom       *string             `json:"original_from"`
	OriginalTo         *string             `json:"original_to"`
	OriginalSubject    *string             `json:"original_subject"`
	OriginalReturnPath *string             `json:"original_return_path"`
	OriginalXHeaders   map[string][]string `json:"original_x_headers"`

	JMRPOriginalRecipient *string `json:"jmrp_original_recipient,omitempty"`
	AppleUnsubscribe      bool    `json:"apple_unsubscribe,omitempty"`

	ReportFrom      *string `json:"report_from"`
	ReportSubject   *string `json:"report_subject"`
	ReportMessageID *string `json:"report_message_id"`
	TopContentType  string  `json:"top_content_type"`
	ReportType      *string `json:"report_type"`

	Trace Trace `json:"trace"`
}

// View returns the report in its JSON shape.
func (r *Report) View() View {
	rf := func(name string) *string { return field(r.Fields, name) }
	v := View{
		IsARF:                 r.IsARF,
		Format:                r.Format,
		FeedbackType:          rf("Feedback-Type"),
		EffectiveFeedbackType: r.EffectiveFeedbackType(),
		UserAgent:             rf("User-Agent"),
		Version:               rf("Version"),
		SourceIP:              rf("Source-IP"),
		OriginalMailFrom:      rf("Original-Mail-From"),
		OriginalRcptTo:        list(r.OriginalRcptTo),
		ArrivalDateRaw:        opt(r.ArrivalDateRaw, false),
		ReportedDomain:        list(r.ReportedDomain),
		ReportedURI:           list(r.ReportedURI),
		ReportingMTA:          rf("Reporting-MTA"),
		Incidents:             rf("Incidents"),
		OriginalEnvelopeID:    rf("Original-Envelope-Id"),
		AuthenticationResults: list(r.AuthenticationResults),
		AuthFailure:           rf("Auth-Failure"),
		DeliveryResult:        rf("Delivery-Result"),
		DKIMDomain:            rf("DKIM-Domain"),
		DKIMIdentity:          rf("DKIM-Identity"),
		DKIMSelector:          rf("DKIM-Selector"),
		SPFDNS:                list(r.SPFDNS),
		IdentityAlignment:     rf("Identity-Alignment"),
		RemovalRecipient:      list(r.RemovalRecipient),
		OtherReportFields:     r.Other,
		OriginalIncluded:      "none",
		OriginalXHeaders:      map[string][]string{},
		JMRPOriginalRecipient: opt(r.JMRPOriginalRecipient, false),
		AppleUnsubscribe:      r.AppleUnsubscribe,
		ReportFrom:            opt(r.ReportFrom, false),
		ReportSubject:         opt(r.ReportSubject, false),
		ReportMessageID:       opt(r.ReportMessageID, false),
		TopContentType:        r.TopContentType,
		ReportType:            opt(r.ReportType, false),
		Trace:                 r.Trace(),
	}
	if v.OtherReportFields == nil {
		v.OtherReportFields = map[string][]string{}
	}
	if !r.ArrivalDate.IsZero() {
		s := r.ArrivalDate.Format(time.RFC3339)
		v.ArrivalDate = &s
	}
	if o := r.Original; o != nil {
		v.OriginalIncluded = "message"
		if o.HeadersOnly {
			v.OriginalIncluded = "headers"
		}
		// The original's fields are kept verbatim, so an empty Message-ID
		// field is "" and a missing one null.
		v.OriginalMessageID = field(o.Header, "Message-ID")
		v.OriginalFrom = field(o.Header, "From")
		v.OriginalTo = field(o.Header, "To")
		v.OriginalSubject = field(o.Header, "Subject")
		v.OriginalReturnPath = field(o.Header, "Return-Path")
		for _, f := range o.XHeaders {
			v.OriginalXHeaders[f.Name] = append(v.OriginalXHeaders[f.Name], f.Value)
		}
	}
	return v
}

// opt returns nil for an empty string unless keep is set, else a pointer
// to it.
func opt(s string, keep bool) *string {
	if s == "" && !keep {
		return nil
	}
	return &s
}

func list(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func field(h interface{ Values(string) []string }, name string) *string {
	vs := h.Values(name)
	if len(vs) == 0 {
		return nil
	}
	return &vs[0]
}

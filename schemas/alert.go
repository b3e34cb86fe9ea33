package schemas

// AlertRaised asks a human to look at something: a missing probe, a new
// blocklist listing, a complaint rate past a threshold. The notifier delivers
// it to webhooks; the sink stores it.
type AlertRaised struct {
	Header
	// Rule is the name of the rule that fired, e.g. "complaint_rate".
	Rule string `json:"rule"`
	// Severity is one of "info", "warning", "critical".
	Severity string `json:"severity"`
	// Subject names what the alert is about, e.g. "customer:acme" or
	// "ip:192.0.2.10".
	Subject string `json:"subject"`
	Summary string `json:"summary"`
	// DedupeKey groups repeated alerts about one condition, so a receiver
	// can update one incident instead of opening many.
	DedupeKey string `json:"dedupe_key"`

	Customer        string `json:"customer,omitempty"`
	SourceIP        string `json:"source_ip,omitempty"`
	Provider        string `json:"provider,omitempty"`
	RecipientDomain string `json:"recipient_domain,omitempty"`
	ProbeID         string `json:"probe_id,omitempty"`

	// Evidence holds the figures behind the alert as name/value pairs
	// (e.g. "rate"="0.0042"), kept flat so every store can hold them.
	EvidenceNames  []string `json:"evidence_names,omitempty"`
	EvidenceValues []string `json:"evidence_values,omitempty"`
}

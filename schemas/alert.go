package schemas

// Vocabulary of alerts.
const (
	// AlertFiring: the condition holds.
	AlertFiring = "firing"
	// AlertResolved: the condition that fired under the same dedupe_key is
	// over (e.g. a decision was released).
	AlertResolved = "resolved"

	// AlertInfo, AlertWarning and AlertCritical are alert severities.
	AlertInfo     = "info"
	AlertWarning  = "warning"
	AlertCritical = "critical"
)

// AlertRaised asks a human to look at something: a missing probe, a new
// blocklist listing, a complaint rate past a threshold, a seed account that
// cannot be read. The notifier delivers it to webhooks; the sink stores it.
// A later alert with the same dedupe_key and status "resolved" closes it.
type AlertRaised struct {
	Header
	// Rule is the name of the rule that fired, e.g. "complaint_rate".
	Rule string `json:"rule" ch:"lc"`
	// Status is "firing" or "resolved".
	Status string `json:"status" ch:"lc" enum:"firing,resolved"`
	// Severity is one of "info", "warning", "critical".
	Severity string `json:"severity" ch:"lc" enum:"info,warning,critical"`
	// Subject names what the alert is about, e.g. "customer:acme" or
	// "ip:192.0.2.10".
	Subject string `json:"subject" ch:"lc"`
	// Summary is one line for a human, e.g. "acme: complaint rate 0.42 %
	// to gmail over 24h (limit 0.3 %)".
	Summary string `json:"summary"`
	// DedupeKey groups repeated alerts about one condition, so a receiver
	// can update one incident instead of opening many.
	DedupeKey string `json:"dedupe_key"`

	// Customer is the customer concerned, when there is one.
	Customer string `json:"customer,omitempty" ch:"lc"`
	// SourceIP is the sending IP concerned, when there is one.
	SourceIP string `json:"source_ip,omitempty" ch:"lc"`
	// Provider is the mailbox provider concerned, when there is one.
	Provider string `json:"provider,omitempty" ch:"lc"`
	// RecipientDomain is the recipient domain concerned, when there is one.
	RecipientDomain string `json:"recipient_domain,omitempty" ch:"lc"`
	// ProbeID is the probe concerned, for probe alerts.
	ProbeID string `json:"probe_id,omitempty"`
	// DecisionID is the id of the decision event the alert reports, when
	// it reports one.
	DecisionID string `json:"decision_id,omitempty"`
	// EventIDs are ids of events behind the alert (complaints, listings,
	// missing probes), for drill-down.
	EventIDs []string `json:"event_ids,omitempty"`

	// EvidenceNames holds the names of the figures behind the alert (e.g.
	// "rate"), kept flat so every store can hold them.
	EvidenceNames []string `json:"evidence_names,omitempty" parallel:"evidence"`
	// EvidenceValues holds the value of each name in evidence_names (e.g.
	// "0.0042").
	EvidenceValues []string `json:"evidence_values,omitempty" parallel:"evidence"`

	// Silenced is true when an active silence (mailmon silence add)
	// matched the alert as it was raised: it is recorded like any other,
	// and the notifier tells no route about it.
	Silenced bool `json:"silenced,omitempty"`
}

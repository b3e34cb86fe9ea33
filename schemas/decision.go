package schemas

import "time"

// Vocabulary of enforcement decisions.
const (
	// ScopeCustomer, ScopeSourceIP and ScopeCustomerProvider name what a
	// decision applies to: all of one customer's mail, all mail from one
	// sending IP, or one customer's mail to one provider.
	ScopeCustomer         = "customer"
	ScopeSourceIP         = "source_ip"
	ScopeCustomerProvider = "customer_provider"

	// ActionCutoff: the subject's mail is refused by the policy service.
	ActionCutoff = "cutoff"
	// ActionReroute: the subject's mail leaves through the low-reputation
	// (NDR) transport instead of the normal pool.
	ActionReroute = "reroute"
)

// DecisionTarget says what a decision applies to. Every decision event
// carries it, so the events of one decision can be joined on the subject.
type DecisionTarget struct {
	// Scope is what the decision applies to: "customer", "source_ip" or
	// "customer_provider".
	Scope string `json:"scope" ch:"lc" enum:"customer,source_ip,customer_provider"`
	// Subject is the enforcement key, e.g. "customer:acme", "ip:192.0.2.10"
	// or "customer:acme/provider:gmail".
	Subject string `json:"subject" ch:"lc"`
	// Customer is the customer the decision applies to, for customer scopes.
	Customer string `json:"customer,omitempty" ch:"lc"`
	// SourceIP is the sending IP the decision applies to, for the
	// source_ip scope.
	SourceIP string `json:"source_ip,omitempty" ch:"lc"`
	// Provider is the provider the decision applies to, for the
	// customer_provider scope.
	Provider string `json:"provider,omitempty" ch:"lc"`
}

// DecisionTerm says which rule made a new decision and how long it lasts.
type DecisionTerm struct {
	// Rule is the name of the rule that decided, e.g. "complaint_rate",
	// "complaint_count", "blocklist", "rejection_burst".
	Rule string `json:"rule" ch:"lc"`
	// Offence counts this subject's offences within the memory window,
	// this one included; 1 is a first offence.
	Offence uint16 `json:"offence"`
	// Until is when the decision expires; absent when it lasts until
	// lifted by hand.
	Until time.Time `json:"until,omitzero"`
	// DurationMs is until minus time; 0 when it lasts until lifted.
	DurationMs int64 `json:"duration_ms,omitempty"`
}

// DecisionEvidence holds the figures a rule judged when it made a decision,
// so the abuse team can check why.
type DecisionEvidence struct {
	// WindowMs is the length of the sliding window the rule evaluated.
	WindowMs int64 `json:"window_ms,omitempty"`
	// Complaints is the number of counted complaints in the window.
	Complaints uint64 `json:"complaints"`
	// Delivered is the number of messages delivered to the provider(s) in
	// the window, the rate's denominator.
	Delivered uint64 `json:"delivered"`
	// Rate is complaints divided by delivered, as a fraction (0.003 is
	// 0.3 %); 0 for rules that are not rates.
	Rate float64 `json:"rate"`
	// Threshold is the limit the rule compared against, in the same unit
	// as the figure it judges (a fraction for rates, a count for counts).
	Threshold float64 `json:"threshold"`
	// SampleComplaintIDs are ids of some complaint.received events behind
	// the decision.
	SampleComplaintIDs []string `json:"sample_complaint_ids,omitempty"`
	// EvidenceNames names other figures behind the decision, e.g.
	// "listing"; evidence_values holds their values, e.g. "zen.spamhaus.org".
	EvidenceNames []string `json:"evidence_names,omitempty" parallel:"evidence"`
	// EvidenceValues holds the value of each name in evidence_names.
	EvidenceValues []string `json:"evidence_values,omitempty" parallel:"evidence"`
}

// DecisionCutoff records that the complaint evaluator cut a subject off:
// the policy service refuses its mail until the decision expires or is
// lifted. The evidence fields say why, so the abuse team can check it.
type DecisionCutoff struct {
	Header
	DecisionTarget
	DecisionTerm
	// PolicyAction is the Postfix access action answered to the subject's
	// mail, e.g. "REJECT" or "DEFER_IF_PERMIT".
	PolicyAction string `json:"policy_action" ch:"lc"`
	// PolicyText is the text answered with the action, e.g. "5.7.1 Sending
	// suspended: complaint rate above limit".
	PolicyText string `json:"policy_text,omitempty"`
	DecisionEvidence
}

// DecisionReroute records that the complaint evaluator moved a subject's
// mail to the low-reputation (NDR) transport, so the good pool stays clean
// and the mail is still delivered, until the decision expires or is lifted.
type DecisionReroute struct {
	Header
	DecisionTarget
	DecisionTerm
	// Transport is the Postfix transport the mail is filtered to (the
	// policy service answers "FILTER <transport>:"), e.g. "ndr".
	Transport string `json:"transport" ch:"lc"`
	DecisionEvidence
}

// EndedDecision identifies a cut-off or reroute that has stopped, by
// expiry or by hand, and says how long it was in force.
type EndedDecision struct {
	// DecisionID is the id of the decision.cutoff or decision.reroute event
	// that ended.
	DecisionID string `json:"decision_id"`
	// Action is what ended: "cutoff" or "reroute".
	Action string `json:"action" ch:"lc" enum:"cutoff,reroute"`
	DecisionTarget
	// Rule is the rule that made the decision.
	Rule string `json:"rule" ch:"lc"`
	// Offence is the offence number of the decision that ended.
	Offence uint16 `json:"offence"`
	// DecidedAt is when the decision was made.
	DecidedAt time.Time `json:"decided_at"`
	// HeldMs is how long the decision was in force, time minus decided_at.
	HeldMs int64 `json:"held_ms"`
}

// DecisionRelease records that a cut-off or reroute expired and the
// subject's mail flows normally again. The offence still counts towards
// escalation within the memory window.
type DecisionRelease struct {
	Header
	EndedDecision
}

// DecisionLift records that an operator lifted a cut-off or reroute by hand
// before it expired (mailmon enforcement lift).
type DecisionLift struct {
	Header
	EndedDecision
	// LiftedBy names the operator who lifted it, as given to the CLI.
	LiftedBy string `json:"lifted_by" ch:"lc"`
	// Note is the operator's reason for lifting it.
	Note string `json:"note,omitempty"`
}

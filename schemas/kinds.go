package schemas

// Type strings and subjects of every v1 event. The type carries the version;
// the subject does not, so a v2 can share a stream with v1 during a migration.
const (
	TypeProbeSent           = "mailmon.probe.v1.sent"
	TypeProbeReceived       = "mailmon.probe.v1.received"
	TypeProbeMissing        = "mailmon.probe.v1.missing"
	TypeProbeLate           = "mailmon.probe.v1.late"
	TypeDeliveryAttempted   = "mailmon.delivery.v1.attempted"
	TypeComplaintReceived   = "mailmon.complaint.v1.received"
	TypeBounceReceived      = "mailmon.bounce.v1.received"
	TypeDNSBLListed         = "mailmon.dnsbl.v1.listed"
	TypeDNSBLDelisted       = "mailmon.dnsbl.v1.delisted"
	TypeDNSBLChecked        = "mailmon.dnsbl.v1.checked"
	TypeDNSBLError          = "mailmon.dnsbl.v1.error"
	TypeDNSAudit            = "mailmon.dns.v1.audit"
	TypeDecisionCutoff      = "mailmon.decision.v1.cutoff"
	TypeDecisionReroute     = "mailmon.decision.v1.reroute"
	TypeDecisionRelease     = "mailmon.decision.v1.release"
	TypeDecisionLift        = "mailmon.decision.v1.lift"
	TypeAlertRaised         = "mailmon.alert.v1.raised"
	TypeAuthFailureReceived = "mailmon.authfailure.v1.received"
	TypeSuppressionAdded    = "mailmon.suppression.v1.added"
	TypeSuppressionRemoved  = "mailmon.suppression.v1.removed"
	TypeDMARCRecord         = "mailmon.dmarc.v1.record"
	TypeTLSRPTResult        = "mailmon.tlsrpt.v1.result"

	SubjectProbeSent           = "mailmon.probe.sent"
	SubjectProbeReceived       = "mailmon.probe.received"
	SubjectProbeMissing        = "mailmon.probe.missing"
	SubjectProbeLate           = "mailmon.probe.late"
	SubjectDeliveryAttempted   = "mailmon.delivery.attempted"
	SubjectComplaintReceived   = "mailmon.complaint.received"
	SubjectBounceReceived      = "mailmon.bounce.received"
	SubjectDNSBLListed         = "mailmon.dnsbl.listed"
	SubjectDNSBLDelisted       = "mailmon.dnsbl.delisted"
	SubjectDNSBLChecked        = "mailmon.dnsbl.checked"
	SubjectDNSBLError          = "mailmon.dnsbl.error"
	SubjectDNSAudit            = "mailmon.dns.audit"
	SubjectDecisionCutoff      = "mailmon.decision.cutoff"
	SubjectDecisionReroute     = "mailmon.decision.reroute"
	SubjectDecisionRelease     = "mailmon.decision.release"
	SubjectDecisionLift        = "mailmon.decision.lift"
	SubjectAlertRaised         = "mailmon.alert.raised"
	SubjectAuthFailureReceived = "mailmon.authfailure.received"
	SubjectSuppressionAdded    = "mailmon.suppression.added"
	SubjectSuppressionRemoved  = "mailmon.suppression.removed"
	SubjectDMARCRecord         = "mailmon.dmarc.record"
	SubjectTLSRPTResult        = "mailmon.tlsrpt.result"

	// SubjectDeadLetterPrefix is followed by the worker name:
	// mailmon.dlq.<worker>. Dead letters are raw copies, not events.
	SubjectDeadLetterPrefix = "mailmon.dlq."
)

// The registration order is the order of Kinds() and of the ClickHouse
// migrations; append new kinds at the end.
func init() {
	register[ProbeSent](TypeProbeSent, SubjectProbeSent, "probe_sent")
	register[ProbeReceived](TypeProbeReceived, SubjectProbeReceived, "probe_received")
	register[ProbeMissing](TypeProbeMissing, SubjectProbeMissing, "probe_missing")
	register[ProbeLate](TypeProbeLate, SubjectProbeLate, "probe_late")
	register[DeliveryAttempted](TypeDeliveryAttempted, SubjectDeliveryAttempted, "delivery_attempted")
	register[ComplaintReceived](TypeComplaintReceived, SubjectComplaintReceived, "complaint_received")
	register[BounceReceived](TypeBounceReceived, SubjectBounceReceived, "bounce_received")
	register[DNSBLListed](TypeDNSBLListed, SubjectDNSBLListed, "dnsbl_listed")
	register[DNSBLDelisted](TypeDNSBLDelisted, SubjectDNSBLDelisted, "dnsbl_delisted")
	register[DNSBLChecked](TypeDNSBLChecked, SubjectDNSBLChecked, "dnsbl_checked")
	register[DNSBLError](TypeDNSBLError, SubjectDNSBLError, "dnsbl_error")
	register[DNSAudit](TypeDNSAudit, SubjectDNSAudit, "dns_audit")
	register[DecisionCutoff](TypeDecisionCutoff, SubjectDecisionCutoff, "decision_cutoff")
	register[DecisionReroute](TypeDecisionReroute, SubjectDecisionReroute, "decision_reroute")
	register[DecisionRelease](TypeDecisionRelease, SubjectDecisionRelease, "decision_release")
	register[DecisionLift](TypeDecisionLift, SubjectDecisionLift, "decision_lift")
	register[AlertRaised](TypeAlertRaised, SubjectAlertRaised, "alert_raised")
	register[AuthFailureReceived](TypeAuthFailureReceived, SubjectAuthFailureReceived, "authfailure_received")
	register[SuppressionAdded](TypeSuppressionAdded, SubjectSuppressionAdded, "suppression_added")
	register[SuppressionRemoved](TypeSuppressionRemoved, SubjectSuppressionRemoved, "suppression_removed")
	register[DMARCRecord](TypeDMARCRecord, SubjectDMARCRecord, "dmarc_record")
	register[TLSRPTResult](TypeTLSRPTResult, SubjectTLSRPTResult, "tlsrpt_result")
}

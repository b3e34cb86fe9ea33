package schemas

import "time"

// Vocabulary of DMARC aggregate and SMTP TLS report events.
const (
	// DMARCPass and DMARCFail are a record's DMARC verdict: pass when the
	// receiver's policy-evaluated DKIM or SPF result is pass (RFC 7489
	// section 3.1: either aligned identifier suffices).
	DMARCPass = "pass"
	DMARCFail = "fail"
)

// DMARCRecord is one <record> of a DMARC aggregate report (RFC 7489
// appendix C, and the RFC 9990 revision): what one receiver saw, over the
// report's period, of the mail from one source IP under one header From
// domain, and what it did with it. Time is the start of the report's
// period, so the same report received twice gives the same rows; the id
// derives from the reporter, the report id and the record's position.
type DMARCRecord struct {
	Header
	// ReportID is the reporter's <report_id>.
	ReportID string `json:"report_id"`
	// OrgName is the reporter (<org_name>, lower-cased), e.g. "google.com".
	OrgName string `json:"org_name" ch:"lc"`
	// ReporterEmail is the reporter's contact <email>.
	ReporterEmail string `json:"reporter_email,omitempty" ch:"lc"`
	// Begin and End bound the report's period (<date_range>).
	Begin time.Time `json:"begin"`
	End   time.Time `json:"end"` // End is the end of the report's period.
	// Domain is the domain whose published policy the report is about
	// (<policy_published><domain>), lower-cased.
	Domain string `json:"domain" ch:"lc"`
	// Policy is the published p= ("none", "quarantine", "reject"), and
	// SubdomainPolicy sp=; Percent is pct= (100 when absent).
	Policy          string `json:"policy" ch:"lc"`
	SubdomainPolicy string `json:"subdomain_policy,omitempty" ch:"lc"` // SubdomainPolicy is the published sp=, when given.
	Percent         uint8  `json:"percent"`                            // Percent is the published pct= (100 when absent).
	// SourceIP is the IP address the receiver saw the mail come from.
	SourceIP string `json:"source_ip" ch:"lc"`
	// Count is how many messages the row stands for.
	Count uint64 `json:"count"`
	// Disposition is what the receiver did: "none", "quarantine" or
	// "reject" (<policy_evaluated><disposition>).
	Disposition string `json:"disposition" ch:"lc"`
	// DKIM and SPF are the policy-evaluated (aligned) results, "pass" or
	// "fail"; DMARC is "pass" when either passed, else "fail".
	DKIM  string `json:"dkim" ch:"lc"`
	SPF   string `json:"spf" ch:"lc"`                    // SPF is the policy-evaluated SPF result, "pass" or "fail".
	DMARC string `json:"dmarc" ch:"lc" enum:"pass,fail"` // DMARC is "pass" when DKIM or SPF passed, else "fail".
	// OverrideReasons are the <reason><type> values a receiver gave for
	// not applying the policy (forwarded, mailing_list, local_policy, ...).
	OverrideReasons []string `json:"override_reasons,omitempty"`
	// HeaderFrom, EnvelopeFrom and EnvelopeTo are the record's
	// <identifiers>, lower-cased.
	HeaderFrom   string `json:"header_from" ch:"lc"`
	EnvelopeFrom string `json:"envelope_from,omitempty" ch:"lc"` // EnvelopeFrom is the <envelope_from> identifier.
	EnvelopeTo   string `json:"envelope_to,omitempty" ch:"lc"`   // EnvelopeTo is the <envelope_to> identifier.
	// The raw <auth_results>, one array element per <dkim> (domain,
	// selector, result) and per <spf> (domain, scope, result).
	DKIMDomains   []string `json:"dkim_domains,omitempty"`
	DKIMSelectors []string `json:"dkim_selectors,omitempty"` // DKIMSelectors are the <dkim><selector> values.
	DKIMResults   []string `json:"dkim_results,omitempty"`   // DKIMResults are the <dkim><result> values.
	SPFDomains    []string `json:"spf_domains,omitempty"`    // SPFDomains are the <spf><domain> values.
	SPFScopes     []string `json:"spf_scopes,omitempty"`     // SPFScopes are the <spf><scope> values.
	SPFResults    []string `json:"spf_results,omitempty"`    // SPFResults are the <spf><result> values.
	// OurSource says whether SourceIP is one of our sending networks
	// (trace.source_networks): false rows under our domains are other
	// senders, possibly spoofing.
	OurSource bool `json:"our_source"`
	// Customer is the customer whose domain HeaderFrom is, when the
	// configuration maps it to one.
	Customer string `json:"customer,omitempty" ch:"lc"`
	// ReceivedVia is the input the report came through: "smtp", "imap" or
	// "file".
	ReceivedVia string `json:"received_via" ch:"lc" enum:"smtp,imap,file"`
}

// TLSRPTResult is one policy of an SMTP TLS report (RFC 8460 section 4):
// how many sessions one sending organisation opened, over the report's
// period, to the MX hosts of one policy domain, and how many of them failed
// to negotiate TLS and why. Time is the start of the report's period; the
// id derives from the organisation, the report id and the policy's
// position.
type TLSRPTResult struct {
	Header
	// ReportID is the report's "report-id".
	ReportID string `json:"report_id"`
	// Organization is the "organization-name" of the sender that reported.
	Organization string `json:"organization" ch:"lc"`
	// ContactInfo is the report's "contact-info".
	ContactInfo string `json:"contact_info,omitempty"`
	// Begin and End bound the report's "date-range".
	Begin time.Time `json:"begin"`
	End   time.Time `json:"end"` // End is the end of the report's "date-range".
	// PolicyDomain is the receiving domain the policy is for, lower-cased;
	// PolicyType is "sts", "tlsa" or "no-policy-found".
	PolicyDomain string `json:"policy_domain" ch:"lc"`
	PolicyType   string `json:"policy_type" ch:"lc"` // PolicyType is "sts", "tlsa" or "no-policy-found".
	// PolicyStrings are the policy's "policy-string" lines and MXHosts its
	// "mx-host" patterns.
	PolicyStrings []string `json:"policy_strings,omitempty"`
	MXHosts       []string `json:"mx_hosts,omitempty"` // MXHosts are the policy's "mx-host" patterns.
	// Success and Failure are the "total-successful-session-count" and
	// "total-failure-session-count".
	Success uint64 `json:"success"`
	Failure uint64 `json:"failure"` // Failure is the "total-failure-session-count".
	// The "failure-details", one array element per entry: result type
	// (e.g. "certificate-expired"), sending MTA IP, receiving MX hostname,
	// receiving IP, failed session count and failure reason code.
	FailureResultTypes   []string `json:"failure_result_types,omitempty"`
	FailureSendingIPs    []string `json:"failure_sending_ips,omitempty"`    // FailureSendingIPs are the "sending-mta-ip" values.
	FailureReceivingMXs  []string `json:"failure_receiving_mxs,omitempty"`  // FailureReceivingMXs are the "receiving-mx-hostname" values.
	FailureReceivingIPs  []string `json:"failure_receiving_ips,omitempty"`  // FailureReceivingIPs are the "receiving-ip" values.
	FailureSessionCounts []uint64 `json:"failure_session_counts,omitempty"` // FailureSessionCounts are the "failed-session-count" values.
	FailureReasonCodes   []string `json:"failure_reason_codes,omitempty"`   // FailureReasonCodes are the "failure-reason-code" values.
	// OurSource says whether any failing sending MTA IP is one of our
	// sending networks (trace.source_networks).
	OurSource bool `json:"our_source"`
	// ReceivedVia is the input the report came through: "smtp", "imap" or
	// "file".
	ReceivedVia string `json:"received_via" ch:"lc" enum:"smtp,imap,file"`
}

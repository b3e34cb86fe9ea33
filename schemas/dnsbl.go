package schemas

import "time"

// Vocabulary of blocklist and DNS audit events.
const (
	// TargetIP and TargetDomain say what a DNS check was about.
	TargetIP     = "ip"
	TargetDomain = "domain"

	// StateClean: the previous sweep found the target not listed.
	StateClean = "clean"
	// StateUnknown: no trustworthy previous answer (first sweep, or the
	// zone failed its self-test or answered with an error).
	StateUnknown = "unknown"

	// ZoneOK: the zone passed its self-test this sweep; its answers count.
	ZoneOK = "ok"
	// ZoneUnknown: the zone failed its self-test; its answers were not
	// trusted, so no target is "clean" on it for this sweep.
	ZoneUnknown = "unknown"

	// Severities of a DNS audit finding, mildest first.
	SeverityOK       = "ok"
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// DNSBLLookup names one target looked up on one blocklist zone. Both kinds
// of listing change carry it, so they pair up on target and zone.
type DNSBLLookup struct {
	// Target is the IP address or domain name that was checked.
	Target string `json:"target"`
	// TargetKind is "ip" or "domain".
	TargetKind string `json:"target_kind" ch:"lc" enum:"ip,domain"`
	// SourceIP is the target when it is one of our sending IPs, so the
	// listing joins with delivery data.
	SourceIP string `json:"source_ip,omitempty" ch:"lc"`
	// Zone is the DNS zone queried, e.g. "zen.spamhaus.org".
	Zone string `json:"zone" ch:"lc"`
	// List is the catalogue name of the blocklist, e.g. "Spamhaus ZEN".
	List string `json:"list" ch:"lc"`
	// Weight is the catalogue weight of the zone; higher means a listing
	// hurts delivery more.
	Weight float64 `json:"weight"`
	// QueryName is the DNS name that was asked, e.g.
	// "10.2.0.192.zen.spamhaus.org".
	QueryName string `json:"query_name"`
}

// DNSBLListed records a transition to listed: a target (one of our IPs or
// domains) that was clean or unknown on a blocklist zone is now listed
// there. Only answers inside 127.0.0.0/8 that the zone's catalogue entry
// calls a listing count; error codes produce dnsbl.error instead.
type DNSBLListed struct {
	Header
	DNSBLLookup
	// AnswerCodes are the A records returned, e.g. ["127.0.0.2", "127.0.0.4"].
	AnswerCodes []string `json:"answer_codes,omitempty" parallel:"answer"`
	// AnswerMeanings gives the catalogue meaning of each answer code, in the
	// same order, e.g. "SBL: Spamhaus SBL data".
	AnswerMeanings []string `json:"answer_meanings,omitempty" parallel:"answer"`
	// TXT is the zone's TXT reason for the listing, when it gives one.
	TXT string `json:"txt,omitempty"`
	// DelistURL is where to request removal, from the catalogue.
	DelistURL string `json:"delist_url,omitempty"`
	// PreviousState is the state before this sweep: "clean" or "unknown".
	PreviousState string `json:"previous_state" ch:"lc" enum:"clean,unknown"`
	// SweepID is the id of the sweep that saw the change (see dnsbl.checked).
	SweepID string `json:"sweep_id"`
	// Resolver is the DNS server that answered, host:port.
	Resolver string `json:"resolver" ch:"lc"`
}

// DNSBLDelisted records a transition from listed to not listed on a zone
// that passed its self-test in the same sweep.
type DNSBLDelisted struct {
	Header
	DNSBLLookup
	// PreviousAnswerCodes are the A records the target was listed with.
	PreviousAnswerCodes []string `json:"previous_answer_codes,omitempty"`
	// ListedSince is when the listing was first seen, when known.
	ListedSince time.Time `json:"listed_since,omitzero"`
	// ListedMs is how long the listing lasted as far as we saw it; 0 when
	// listed_since is unknown.
	ListedMs int64 `json:"listed_ms,omitempty"`
	// SweepID is the id of the sweep that saw the change.
	SweepID string `json:"sweep_id"`
	// Resolver is the DNS server that answered, host:port.
	Resolver string `json:"resolver" ch:"lc"`
}

// DNSBLChecked summarises one sweep of every target against every zone. The
// zone_* fields are parallel arrays with one entry per zone, in the same
// order, so per-zone health fits a flat row.
type DNSBLChecked struct {
	Header
	// SweepID identifies the sweep; listed, delisted and error events of
	// the same sweep carry it.
	SweepID string `json:"sweep_id"`
	// Resolver is the DNS server used, host:port.
	Resolver string `json:"resolver" ch:"lc"`
	// StartedAt is when the sweep began; time is when it finished.
	StartedAt time.Time `json:"started_at"`
	// DurationMs is time minus started_at.
	DurationMs int64 `json:"duration_ms"`
	// Targets is the number of IPs and domains checked.
	Targets uint32 `json:"targets"`
	// Queries is the number of DNS queries sent, retries included.
	Queries uint32 `json:"queries"`
	// Listed is the number of (target, zone) pairs listed after the sweep.
	Listed uint32 `json:"listed"`
	// NewlyListed is the number of listed transitions in this sweep.
	NewlyListed uint32 `json:"newly_listed"`
	// Delisted is the number of delisted transitions in this sweep.
	Delisted uint32 `json:"delisted"`
	// Errors is the number of (target, zone) checks that ended in an error.
	Errors uint32 `json:"errors"`
	// ZoneNames are the zones swept.
	ZoneNames []string `json:"zone_names,omitempty" parallel:"zone"`
	// ZoneStates says per zone whether its self-test passed: "ok" or
	// "unknown" (answers not trusted this sweep).
	ZoneStates []string `json:"zone_states,omitempty" parallel:"zone" enum:"ok,unknown"`
	// ZoneListed is the number of targets listed per zone.
	ZoneListed []uint32 `json:"zone_listed,omitempty" parallel:"zone"`
	// ZoneErrors is the number of failed checks per zone.
	ZoneErrors []uint32 `json:"zone_errors,omitempty" parallel:"zone"`
	// ZoneQueries is the number of queries sent per zone.
	ZoneQueries []uint32 `json:"zone_queries,omitempty" parallel:"zone"`
}

// DNSBLError records a blocklist check whose answer could not be trusted,
// so the target is neither listed nor clean on that zone for the sweep. The
// cause is an error return code (Spamhaus 127.255.255.252/254/255 for typing
// errors, public resolvers and rate limits; 127.0.1.255 for an IP asked of a
// domain list), a failed zone self-test, a timeout, SERVFAIL, or a resolver
// that rewrites NXDOMAIN.
type DNSBLError struct {
	Header
	// Target is the IP or domain checked; empty when the error concerns
	// the whole zone (a failed self-test).
	Target string `json:"target,omitempty"`
	// TargetKind is "ip" or "domain"; empty with target.
	TargetKind string `json:"target_kind,omitempty" ch:"lc" enum:"ip,domain"`
	// SourceIP is the target when it is one of our sending IPs.
	SourceIP string `json:"source_ip,omitempty" ch:"lc"`
	// Zone is the DNS zone queried.
	Zone string `json:"zone" ch:"lc"`
	// List is the catalogue name of the blocklist.
	List string `json:"list" ch:"lc"`
	// Cause classifies the error: error_code, selftest_failed, timeout,
	// servfail, refused, truncated, nxdomain_rewrite, bad_answer, network.
	Cause string `json:"cause" ch:"lc"`
	// AnswerCode is the error return code, e.g. "127.255.255.254".
	AnswerCode string `json:"answer_code,omitempty" ch:"lc"`
	// Meaning is the catalogue meaning of answer_code, e.g. "query via
	// public/open resolver".
	Meaning string `json:"meaning,omitempty"`
	// Rcode is the DNS response code when not NOERROR, e.g. "SERVFAIL".
	Rcode string `json:"rcode,omitempty" ch:"lc"`
	// Error is a human-readable description of the failure.
	Error string `json:"error,omitempty"`
	// QueryName is the DNS name that was asked.
	QueryName string `json:"query_name,omitempty"`
	// SweepID is the id of the sweep the check belonged to.
	SweepID string `json:"sweep_id"`
	// Resolver is the DNS server asked, host:port.
	Resolver string `json:"resolver" ch:"lc"`
}

// DNSAudit records the DNS hygiene of one of our sending IPs or domains in
// one audit pass: PTR and forward-confirmed reverse DNS for an IP; SPF
// (present, valid, authorising each sending IP), DKIM selectors, DMARC and
// MX for a domain. The finding_* fields are parallel arrays, one entry per
// check, passed checks included (severity "ok").
type DNSAudit struct {
	Header
	// AuditID identifies the audit pass; every target of a pass shares it.
	AuditID string `json:"audit_id"`
	// Target is the IP address or domain name audited.
	Target string `json:"target"`
	// TargetKind is "ip" or "domain".
	TargetKind string `json:"target_kind" ch:"lc" enum:"ip,domain"`
	// SourceIP is the target when it is one of our sending IPs.
	SourceIP string `json:"source_ip,omitempty" ch:"lc"`
	// PTRNames are the PTR names of an IP target.
	PTRNames []string `json:"ptr_names,omitempty"`
	// SPFRecord is the SPF TXT record of a domain target, as published.
	SPFRecord string `json:"spf_record,omitempty"`
	// DMARCRecord is the _dmarc TXT record of a domain target, as published.
	DMARCRecord string `json:"dmarc_record,omitempty"`
	// DMARCPolicy is the p= of the DMARC record: none, quarantine or reject.
	DMARCPolicy string `json:"dmarc_policy,omitempty" ch:"lc"`
	// DKIMSelectors are the DKIM selectors checked for a domain target.
	DKIMSelectors []string `json:"dkim_selectors,omitempty"`
	// MXHosts are the MX host names of a domain target.
	MXHosts []string `json:"mx_hosts,omitempty"`
	// WorstSeverity is the most severe finding: ok, info, warning or
	// critical.
	WorstSeverity string `json:"worst_severity" ch:"lc" enum:"ok,info,warning,critical"`
	// FindingChecks names each check, e.g. "ptr", "fcrdns", "spf",
	// "spf_authorizes_ip", "dkim", "dmarc", "mx".
	FindingChecks []string `json:"finding_checks,omitempty" parallel:"finding"`
	// FindingSeverities is each check's severity: ok, info, warning or
	// critical.
	FindingSeverities []string `json:"finding_severities,omitempty" parallel:"finding" enum:"ok,info,warning,critical"`
	// FindingMessages explains each check's result for a human.
	FindingMessages []string `json:"finding_messages,omitempty" parallel:"finding"`
}

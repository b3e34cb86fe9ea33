package schemas

import "time"

// Vocabulary of complaint and bounce events.
const (
	// TraceTrackingHeader: traced through our verified tracking header.
	TraceTrackingHeader = "tracking_header"
	// TraceDKIM: traced through the d= of a DKIM signature in the original.
	TraceDKIM = "dkim"
	// TraceMessageID: traced through the original Message-ID.
	TraceMessageID = "message_id"
	// TraceSourceIP: only the reported source IP was known.
	TraceSourceIP = "source_ip"
	// TraceNone: the report matched nothing of ours.
	TraceNone = "none"

	// ReceivedViaSMTP, ReceivedViaIMAP and ReceivedViaFile name the input a
	// report or bounce came through.
	ReceivedViaSMTP = "smtp"
	ReceivedViaIMAP = "imap"
	ReceivedViaFile = "file"
)

// ComplaintReceived records one feedback-loop report: a recipient marked our
// mail as spam (or the provider reports fraud, a virus, not-spam, ...).
// Time is when the provider received the reported message (arrival_date)
// when the report gives a plausible one, else the report's own date, else
// when it was ingested: the same complaint reported twice is then the same
// row. Only events with counted=true and trusted=true
// count towards complaint rates.
type ComplaintReceived struct {
	Header
	// TrackingID is the message id from our verified tracking header in the
	// original message.
	TrackingID string `json:"tracking_id,omitempty"`
	// Customer is the customer the complaint was traced to.
	Customer string `json:"customer,omitempty" ch:"lc"`
	// SourceIP is our sending IP the complaint was traced to: the tracking
	// header's source first, else the report's Source-IP.
	SourceIP string `json:"source_ip,omitempty" ch:"lc"`
	// Provider is the mailbox provider that sent the report.
	Provider string `json:"provider" ch:"lc"`
	// RecipientDomain is the domain of the complaining recipient, when the
	// report did not redact it.
	RecipientDomain string `json:"recipient_domain,omitempty" ch:"lc"`
	// TraceMethod is how the complaint was tied to customer and IP:
	// "tracking_header", "dkim", "message_id", "source_ip" or "none".
	TraceMethod string `json:"trace_method" ch:"lc" enum:"tracking_header,dkim,message_id,source_ip,none"`
	// Counted says whether this report counts as a complaint: abuse, plus
	// fraud and virus when configured; not-spam and others do not.
	Counted bool `json:"counted"`
	// Format is the report format: "arf" (RFC 5965), "jmrp" (legacy
	// Microsoft) or "yahoo_cfl".
	Format string `json:"format" ch:"lc"`
	// ReceivedVia is the input the report came through: "smtp", "imap" or
	// "file".
	ReceivedVia string `json:"received_via" ch:"lc" enum:"smtp,imap,file"`
	// FeedbackType is the ARF Feedback-Type: abuse, fraud, virus, other,
	// not-spam, opt-out, auth-failure, ...
	FeedbackType string `json:"feedback_type" ch:"lc"`
	// UserAgent is the ARF User-Agent of the reporting system.
	UserAgent string `json:"user_agent,omitempty" ch:"lc"`
	// Version is the ARF Version field, normally "1".
	Version string `json:"version,omitempty" ch:"lc"`
	// ReportingMTA is the ARF Reporting-MTA, without its "dns;" type.
	ReportingMTA string `json:"reporting_mta,omitempty" ch:"lc"`
	// ReportMessageID is the Message-ID of the report itself, so a report
	// ingested twice can be recognised.
	ReportMessageID string `json:"report_message_id,omitempty"`
	// ReportedSourceIP is the ARF Source-IP as reported.
	ReportedSourceIP string `json:"reported_source_ip,omitempty" ch:"lc"`
	// OriginalMailFrom is the ARF Original-Mail-From.
	OriginalMailFrom string `json:"original_mail_from,omitempty"`
	// OriginalRcptTo are the ARF Original-Rcpt-To values, often redacted.
	OriginalRcptTo []string `json:"original_rcpt_to,omitempty"`
	// ArrivalDate is the ARF Arrival-Date (or legacy Received-Date).
	ArrivalDate time.Time `json:"arrival_date,omitzero"`
	// ReportedDomains are the ARF Reported-Domain values.
	ReportedDomains []string `json:"reported_domains,omitempty"`
	// ReportedURIs are the ARF Reported-URI values.
	ReportedURIs []string `json:"reported_uris,omitempty"`
	// Incidents is the ARF Incidents count; 0 when absent (meaning one).
	Incidents uint32 `json:"incidents,omitempty"`
	// AuthenticationResults is the ARF Authentication-Results field.
	AuthenticationResults string `json:"authentication_results,omitempty"`
	// AuthFailure is the ARF Auth-Failure field (RFC 6591), e.g. "dmarc".
	AuthFailure string `json:"auth_failure,omitempty" ch:"lc"`
	// OriginalMessageID is the Message-ID of the reported copy, without
	// angle brackets.
	OriginalMessageID string `json:"original_message_id,omitempty"`
	// OriginalFrom is the From header of the reported copy.
	OriginalFrom string `json:"original_from,omitempty"`
	// OriginalSubject is the Subject header of the reported copy.
	OriginalSubject string `json:"original_subject,omitempty"`
	// DKIMDomain is the d= of the DKIM signature in the reported copy.
	DKIMDomain string `json:"dkim_domain,omitempty" ch:"lc"`
	// HeadersExcerpt is the start of the original's header block, kept as
	// evidence, cut to at most 4 KiB.
	HeadersExcerpt string `json:"headers_excerpt,omitempty"`
	// Trusted says the report's origin was verified (see Trust): only
	// complaints with counted=true and trusted=true count towards
	// enforcement and alerts. Absent means false, so a report from an
	// unverified sender, or an event written before the field existed,
	// never makes mailmon act.
	Trusted bool `json:"trusted,omitempty"`
	// Trust says why the report is trusted or not: "operator_dkim" (DKIM
	// signature of a configured feedback-loop operator verified),
	// "reporter_network" (SMTP from a configured reporter network),
	// "smtp_auth" (SMTP from an authenticated user), "trusted_input" (an
	// IMAP account, directory or import marked trusted), or, untrusted,
	// "unverified" (none of these: unsigned, or signed by a domain that is
	// not a configured operator, or a signature that did not verify).
	Trust string `json:"trust,omitempty" ch:"lc" enum:"operator_dkim,reporter_network,smtp_auth,trusted_input,unverified"`
}

// Trust reasons of a complaint (ComplaintReceived.Trust).
const (
	TrustOperatorDKIM    = "operator_dkim"
	TrustReporterNetwork = "reporter_network"
	TrustSMTPAuth        = "smtp_auth"
	TrustTrustedInput    = "trusted_input"
	TrustUnverified      = "unverified"
)

// BounceReceived records one failed (or delayed) recipient from a bounce
// message that came back to our return path: an RFC 3464 DSN or a
// non-standard bounce, written by our own MTA or by a remote one that had
// accepted the message. Time is when the bounce was ingested. Auto-replies
// are not bounces and are not published.
type BounceReceived struct {
	Header
	OutgoingMessage
	// TraceMethod is how the bounce was tied to customer and IP:
	// "tracking_header", "dkim", "message_id", "source_ip" or "none".
	TraceMethod string `json:"trace_method" ch:"lc" enum:"tracking_header,dkim,message_id,source_ip,none"`
	// ReceivedVia is the input the bounce came through: "smtp", "imap" or
	// "file".
	ReceivedVia string `json:"received_via" ch:"lc" enum:"smtp,imap,file"`
	// Format is the bounce format recognised: "rfc3464", or the sender's
	// style when non-standard ("postfix", "exim", "qmail", "exchange",
	// "gmail", "ses", ...).
	Format string `json:"format" ch:"lc"`
	// Recipient is the failed recipient address.
	Recipient string `json:"recipient"`
	// OrigRecipient is the DSN Original-Recipient, when given.
	OrigRecipient string `json:"orig_recipient,omitempty"`
	// Action is the DSN Action: failed, delayed, delivered, relayed or
	// expanded.
	Action string `json:"action" ch:"lc"`
	// Status is the enhanced status code, e.g. "5.1.1".
	Status string `json:"status,omitempty" ch:"lc"`
	// ReplyCode is the SMTP reply code inside the diagnostic; 0 when none.
	ReplyCode uint16 `json:"reply_code,omitempty"`
	// RemoteMTA is the DSN Remote-MTA, without its "dns;" type.
	RemoteMTA string `json:"remote_mta,omitempty" ch:"lc"`
	// ReportingMTA is the DSN Reporting-MTA, without its "dns;" type.
	ReportingMTA string `json:"reporting_mta,omitempty" ch:"lc"`
	// Diagnostic is the diagnostic text (DSN Diagnostic-Code without its
	// "smtp;" type, or the bounce's human-readable reason).
	Diagnostic string `json:"diagnostic,omitempty"`
	// Reason is the bounce classifier's reason, e.g. "userunknown".
	Reason string `json:"reason" ch:"lc"`
	// Category is the bounce classifier's coarse category, e.g.
	// "user_unknown".
	Category string `json:"category" ch:"lc"`
	// Signature names the blocklist or provider rule the diagnostic cites.
	Signature string `json:"signature,omitempty" ch:"lc"`
	// ArrivalDate is the DSN Arrival-Date of the original message.
	ArrivalDate time.Time `json:"arrival_date,omitzero"`
	// LastAttemptDate is the DSN Last-Attempt-Date.
	LastAttemptDate time.Time `json:"last_attempt_date,omitzero"`
	// OriginalMessageID is the Message-ID of the returned message, without
	// angle brackets.
	OriginalMessageID string `json:"original_message_id,omitempty"`
	// OriginalSender is the envelope or header sender of the returned
	// message.
	OriginalSender string `json:"original_sender,omitempty"`
	// BounceMessageID is the Message-ID of the bounce itself.
	BounceMessageID string `json:"bounce_message_id,omitempty"`
	// HeadersExcerpt is the start of the returned message's header block,
	// kept as evidence, cut to at most 4 KiB.
	HeadersExcerpt string `json:"headers_excerpt,omitempty"`
}

// AuthFailureReceived records one authentication-failure report (ARF
// Feedback-Type: auth-failure, RFC 6591, or a text DMARC failure report): a
// provider tells us a message claiming to be ours failed SPF, DKIM or DMARC.
// It is not a complaint, so it has its own kind and never counts towards
// complaint rates. Time is when the report was ingested.
type AuthFailureReceived struct {
	Header
	// TrackingID is the message id from our verified tracking header in the
	// original message.
	TrackingID string `json:"tracking_id,omitempty"`
	// Customer is the customer the report was traced to.
	Customer string `json:"customer,omitempty" ch:"lc"`
	// SourceIP is the sending IP the report was traced to: the tracking
	// header's source first, else the report's Source-IP.
	SourceIP string `json:"source_ip,omitempty" ch:"lc"`
	// Provider is the mailbox provider that sent the report.
	Provider string `json:"provider" ch:"lc"`
	// TraceMethod is how the report was tied to customer and IP:
	// "tracking_header", "dkim", "message_id", "source_ip" or "none".
	TraceMethod string `json:"trace_method" ch:"lc" enum:"tracking_header,dkim,message_id,source_ip,none"`
	// Format is the report format: "arf" or "dmarc_text".
	Format string `json:"format" ch:"lc"`
	// ReceivedVia is the input the report came through: "smtp", "imap" or
	// "file".
	ReceivedVia string `json:"received_via" ch:"lc" enum:"smtp,imap,file"`
	// AuthFailure is the RFC 6591 Auth-Failure field: "dmarc", "dkim",
	// "spf", "adsp", "bodyhash", "revoked", "signature"; empty when the
	// report did not say.
	AuthFailure string `json:"auth_failure,omitempty" ch:"lc"`
	// DeliveryResult is the RFC 6591 Delivery-Result: "delivered", "spam",
	// "policy", "reject" or "other".
	DeliveryResult string `json:"delivery_result,omitempty" ch:"lc"`
	// DKIMDomain is the RFC 6591 DKIM-Domain of the signature that failed,
	// else the d= of the original's first DKIM signature.
	DKIMDomain string `json:"dkim_domain,omitempty" ch:"lc"`
	// DKIMIdentity is the RFC 6591 DKIM-Identity (the i= of the signature).
	DKIMIdentity string `json:"dkim_identity,omitempty"`
	// DKIMSelector is the RFC 6591 DKIM-Selector (the s= of the signature).
	DKIMSelector string `json:"dkim_selector,omitempty" ch:"lc"`
	// IdentityAlignment is the RFC 6591 Identity-Alignment field.
	IdentityAlignment string `json:"identity_alignment,omitempty" ch:"lc"`
	// AuthenticationResults is the ARF Authentication-Results field.
	AuthenticationResults string `json:"authentication_results,omitempty"`
	// UserAgent is the ARF User-Agent of the reporting system.
	UserAgent string `json:"user_agent,omitempty" ch:"lc"`
	// ReportingMTA is the ARF Reporting-MTA, without its "dns;" type.
	ReportingMTA string `json:"reporting_mta,omitempty" ch:"lc"`
	// ReportMessageID is the Message-ID of the report itself.
	ReportMessageID string `json:"report_message_id,omitempty"`
	// ReportedSourceIP is the ARF Source-IP as reported.
	ReportedSourceIP string `json:"reported_source_ip,omitempty" ch:"lc"`
	// OriginalMailFrom is the ARF Original-Mail-From.
	OriginalMailFrom string `json:"original_mail_from,omitempty"`
	// ArrivalDate is the ARF Arrival-Date (or legacy Received-Date).
	ArrivalDate time.Time `json:"arrival_date,omitzero"`
	// ReportedDomains are the ARF Reported-Domain values.
	ReportedDomains []string `json:"reported_domains,omitempty"`
	// Incidents is the ARF Incidents count; 0 when absent (meaning one).
	Incidents uint32 `json:"incidents,omitempty"`
	// OriginalMessageID is the Message-ID of the reported copy, without
	// angle brackets.
	OriginalMessageID string `json:"original_message_id,omitempty"`
	// OriginalFrom is the From header of the reported copy.
	OriginalFrom string `json:"original_from,omitempty"`
	// OriginalSubject is the Subject header of the reported copy.
	OriginalSubject string `json:"original_subject,omitempty"`
	// HeadersExcerpt is the start of the original's header block, kept as
	// evidence, cut to at most 4 KiB.
	HeadersExcerpt string `json:"headers_excerpt,omitempty"`
}

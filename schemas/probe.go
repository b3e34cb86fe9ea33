package schemas

import "time"

// Vocabulary of the probe events. The enum tags on the fields below list the
// same values; the schema test keeps the two in step.
const (
	// SubmissionSMTP: the probe was handed to an SMTP relay.
	SubmissionSMTP = "smtp"
	// SubmissionSendmail: the probe was handed to the local sendmail command.
	SubmissionSendmail = "sendmail"

	// OutcomeAccepted: the final reply was 2xx (the message was queued).
	OutcomeAccepted = "accepted"
	// OutcomeTempfail: a 4xx reply refused the probe for now.
	OutcomeTempfail = "tempfail"
	// OutcomeRefused: a 5xx reply refused the probe for good.
	OutcomeRefused = "refused"
	// OutcomeError: no SMTP verdict at all (network, TLS, local command).
	OutcomeError = "error"

	// PlacementInbox, PlacementSpam and PlacementOther say where a seed
	// mailbox filed a probe: the inbox, the folder the provider uses for
	// spam (SPECIAL-USE \Junk or a configured name), or any other folder.
	PlacementInbox = "inbox"
	PlacementSpam  = "spam"
	PlacementOther = "other"

	// ProtocolIMAP and ProtocolPOP3 name how a seed mailbox was read.
	ProtocolIMAP = "imap"
	ProtocolPOP3 = "pop3"

	// ArrivalInternalDate: the arrival time is the IMAP INTERNALDATE.
	ArrivalInternalDate = "internaldate"
	// ArrivalReceived: the arrival time is the date of the topmost
	// Received header (POP3, or an INTERNALDATE that cannot be trusted).
	ArrivalReceived = "received"
)

// NoDuration in a *_ms field that allows it means the step did not happen
// or was not logged, because 0 ms is a real measurement on a fast link.
const NoDuration = -1

// ProbeRoute identifies a probe and the way it travels: the outgoing path
// and sending IP, and the provider and domain of the seed address it goes
// to. Every probe event carries it, so the events of one probe join on
// probe_id and group by path and provider alike.
type ProbeRoute struct {
	// ProbeID identifies the probe; it is in the subject line and in the
	// signed tracking header of the message.
	ProbeID string `json:"probe_id"`
	// TrackingID is the message id carried in the signed tracking header.
	TrackingID string `json:"tracking_id,omitempty"`
	// SourceIP is the sending IP the probe left (or was meant to leave)
	// from, when the path has a known address; empty for a relay that picks
	// its own.
	SourceIP string `json:"source_ip,omitempty" ch:"lc"`
	// Provider is the mailbox provider of the seed address, e.g. "gmail".
	Provider string `json:"provider" ch:"lc"`
	// RecipientDomain is the domain of the seed address.
	RecipientDomain string `json:"recipient_domain" ch:"lc"`
	// Route is the configured name of the outgoing path the probe used.
	Route string `json:"route" ch:"lc"`
}

// ProbeSeed says which seed a probe was addressed to and which content it
// carried.
type ProbeSeed struct {
	// Target is the configured name of the seed target.
	Target string `json:"target" ch:"lc"`
	// SeedAddress is the seed mailbox the probe was addressed to.
	SeedAddress string `json:"seed_address"`
	// Variant is the content variant, e.g. "plain", "html" or
	// "list_unsubscribe", so placement can be compared across variants;
	// empty when the probe had none.
	Variant string `json:"variant,omitempty" ch:"lc"`
}

// ProbeFiling says where the retriever found a probe.
type ProbeFiling struct {
	// Account is the configured name of the seed account that was read.
	// Credentials are never recorded.
	Account string `json:"account" ch:"lc"`
	// Protocol is how the mailbox was read: "imap" or "pop3".
	Protocol string `json:"protocol" ch:"lc" enum:"imap,pop3"`
	// Placement is where the provider filed the probe: "inbox", "spam" or
	// "other". POP3 only sees the inbox.
	Placement string `json:"placement" ch:"lc" enum:"inbox,spam,other"`
	// Folder is the mailbox name as the server calls it, e.g. "[Gmail]/Spam".
	Folder string `json:"folder" ch:"lc"`
}

// ProbeVerdicts are the authentication results the provider recorded in
// the stored probe.
type ProbeVerdicts struct {
	// SPF is the SPF result the provider recorded, e.g. "pass" or
	// "softfail"; empty when it recorded none.
	SPF string `json:"spf,omitempty" ch:"lc"`
	// DKIM is the provider's DKIM result for our signature.
	DKIM string `json:"dkim,omitempty" ch:"lc"`
	// DMARC is the provider's DMARC result.
	DMARC string `json:"dmarc,omitempty" ch:"lc"`
}

// ProbeSent records one probe handed to one of our outgoing paths, with the
// SMTP transaction as the sender saw it. Time is when the final reply came
// back; latencies downstream are measured from it. A refused or failed probe
// is published too, with its outcome and reply.
type ProbeSent struct {
	Header
	ProbeRoute
	// Submission says how the probe was handed over: "smtp" to a relay or
	// "sendmail" to the local command.
	Submission string `json:"submission" ch:"lc" enum:"smtp,sendmail"`
	// Relay is the relay's host:port; empty for sendmail.
	Relay string `json:"relay,omitempty" ch:"lc"`
	// HeloName is the name the sender gave in EHLO/HELO.
	HeloName string `json:"helo_name,omitempty" ch:"lc"`
	ProbeSeed
	// MessageID is the Message-ID header of the probe, without angle brackets.
	MessageID string `json:"message_id"`
	// SizeBytes is the size of the message as submitted.
	SizeBytes uint32 `json:"size_bytes"`
	// DKIMDomain is the d= of our DKIM signature; empty when unsigned.
	DKIMDomain string `json:"dkim_domain,omitempty" ch:"lc"`
	// DKIMSelector is the s= of our DKIM signature; empty when unsigned.
	DKIMSelector string `json:"dkim_selector,omitempty" ch:"lc"`
	// TLSVersion is the negotiated TLS version, e.g. "TLS1.3"; empty for a
	// plaintext session or sendmail.
	TLSVersion string `json:"tls_version,omitempty" ch:"lc"`
	// TLSCipher is the negotiated cipher suite name.
	TLSCipher string `json:"tls_cipher,omitempty" ch:"lc"`
	// AuthMechanism is the SMTP AUTH mechanism used ("PLAIN", "LOGIN");
	// empty when no authentication took place. Credentials are never recorded.
	AuthMechanism string `json:"auth_mechanism,omitempty" ch:"lc"`
	// Outcome is "accepted" (2xx), "tempfail" (4xx), "refused" (5xx) or
	// "error" (no SMTP verdict: network, TLS or local command failure).
	Outcome string `json:"outcome" ch:"lc" enum:"accepted,tempfail,refused,error"`
	// FailedPhase is the phase in which a probe that was not accepted
	// failed; empty when accepted.
	FailedPhase string `json:"failed_phase,omitempty" ch:"lc" enum:"connect,banner,ehlo,starttls,auth,mail,rcpt,data,submit"`
	// ReplyCode is the final SMTP reply code, e.g. 250 or 554; 0 when no
	// reply was received.
	ReplyCode uint16 `json:"reply_code,omitempty"`
	// EnhancedStatus is the RFC 3463 enhanced status code of the final
	// reply, e.g. "2.0.0" or "5.7.1".
	EnhancedStatus string `json:"enhanced_status,omitempty" ch:"lc"`
	// ReplyText is the text of the final reply as the server sent it.
	ReplyText string `json:"reply_text,omitempty"`
	// QueueID is the relay's queue id from "queued as ..." when accepted.
	QueueID string `json:"queue_id,omitempty"`
	// Reason is the bounce classifier's reason for a refused or deferred
	// probe, e.g. "blocked" or "badreputation".
	Reason string `json:"reason,omitempty" ch:"lc"`
	// Category is the bounce classifier's coarse category, e.g.
	// "blocked_ip_or_blocklist".
	Category string `json:"category,omitempty" ch:"lc"`
	// Error describes a failure that produced no SMTP reply. It never
	// contains credentials.
	Error string `json:"error,omitempty"`
	// ConnectMs is the TCP connect time; -1 when not attempted.
	ConnectMs int32 `json:"connect_ms"`
	// BannerMs is the wait for the 220 greeting; -1 when not reached.
	BannerMs int32 `json:"banner_ms"`
	// EhloMs is the EHLO round trip; -1 when not reached.
	EhloMs int32 `json:"ehlo_ms"`
	// StarttlsMs is STARTTLS plus the TLS handshake (or the handshake alone
	// for implicit TLS); -1 when there was no TLS.
	StarttlsMs int32 `json:"starttls_ms"`
	// AuthMs is the SMTP AUTH exchange; -1 when not used.
	AuthMs int32 `json:"auth_ms"`
	// MailMs is the MAIL FROM round trip; -1 when not reached.
	MailMs int32 `json:"mail_ms"`
	// RcptMs is the RCPT TO round trip; -1 when not reached.
	RcptMs int32 `json:"rcpt_ms"`
	// DataMs is from DATA to the final reply after the message body; -1
	// when not reached.
	DataMs int32 `json:"data_ms"`
	// TotalMs is the whole submission, connect (or command start) to the
	// final reply.
	TotalMs int32 `json:"total_ms"`
}

// ProbeReceived records a probe found in a seed mailbox before its deadline:
// where it was filed, how long it took, and how the provider judged its
// authentication. Time is when the retriever saw it.
type ProbeReceived struct {
	Header
	ProbeRoute
	ProbeSeed
	ProbeFiling
	// MessageID is the Message-ID header of the probe, without angle brackets.
	MessageID string `json:"message_id"`
	// SentAt is when the probe was accepted by our outgoing path.
	SentAt time.Time `json:"sent_at"`
	// ArrivedAt is when the provider stored the probe (see arrival_source).
	ArrivedAt time.Time `json:"arrived_at"`
	// ArrivalSource names the clock behind arrived_at: "internaldate" or
	// "received" (the topmost Received header).
	ArrivalSource string `json:"arrival_source" ch:"lc" enum:"internaldate,received"`
	// LatencyMs is the delivery latency, arrived_at minus sent_at; 0 when
	// arrived_at is the very second of sent_at (the providers' clocks count
	// whole seconds). It can be negative when the provider's clock is
	// behind ours.
	LatencyMs int64 `json:"latency_ms"`
	// DetectionMs is the detection delay, time minus arrived_at: how long
	// the probe sat in the mailbox before we saw it.
	DetectionMs int64 `json:"detection_ms"`
	// ReceivedHops is the number of Received headers in the stored message.
	ReceivedHops uint16 `json:"received_hops"`
	ProbeVerdicts
	// DMARCPolicy is the DMARC policy the provider says it applied, e.g.
	// "none", "quarantine" or "reject".
	DMARCPolicy string `json:"dmarc_policy,omitempty" ch:"lc"`
	// ARC is the provider's ARC result, when it recorded one.
	ARC string `json:"arc,omitempty" ch:"lc"`
	// CompAuth is Microsoft's composite authentication result.
	CompAuth string `json:"compauth,omitempty" ch:"lc"`
	// CompAuthReason is Microsoft's compauth reason code, e.g. "100".
	CompAuthReason string `json:"compauth_reason,omitempty" ch:"lc"`
	// DKIMDomains are the d= values of the signatures the provider checked.
	DKIMDomains []string `json:"dkim_domains,omitempty"`
	// AuthServID is the authserv-id of the Authentication-Results header
	// used; empty when the provider omits it (Microsoft).
	AuthServID string `json:"authserv_id,omitempty" ch:"lc"`
	// AuthenticationResults is the provider's Authentication-Results header
	// as written, cut to at most 2 KiB.
	AuthenticationResults string `json:"authentication_results,omitempty"`
	// Deleted says whether the retriever removed the probe afterwards.
	Deleted bool `json:"deleted"`
}

// ProbeMissing records a probe that was accepted by our outgoing path but not
// found in its seed mailbox by the deadline. Time is when it was declared
// missing. A seed account that cannot be read produces an alert instead,
// never a missing probe.
type ProbeMissing struct {
	Header
	ProbeRoute
	ProbeSeed
	// Account is the configured name of the seed account that was watched.
	Account string `json:"account" ch:"lc"`
	// MessageID is the Message-ID header of the probe, without angle brackets.
	MessageID string `json:"message_id"`
	// SentAt is when the probe was accepted by our outgoing path.
	SentAt time.Time `json:"sent_at"`
	// DeadlineMs is the target's configured deadline after sent_at.
	DeadlineMs int64 `json:"deadline_ms"`
	// WaitedMs is how long we waited in fact, time minus sent_at.
	WaitedMs int64 `json:"waited_ms"`
	// FoldersChecked lists the folders searched for the probe.
	FoldersChecked []string `json:"folders_checked,omitempty"`
}

// ProbeLate records a probe that turned up after it had been declared
// missing. It does not retract the missing event: the probe did miss its
// deadline. Time is when the retriever saw it.
type ProbeLate struct {
	Header
	ProbeRoute
	ProbeSeed
	ProbeFiling
	// MessageID is the Message-ID header of the probe, without angle brackets.
	MessageID string `json:"message_id"`
	// SentAt is when the probe was accepted by our outgoing path.
	SentAt time.Time `json:"sent_at"`
	// ArrivedAt is when the provider stored the probe.
	ArrivedAt time.Time `json:"arrived_at"`
	// LatencyMs is arrived_at minus sent_at.
	LatencyMs int64 `json:"latency_ms"`
	// DeadlineMs is the target's configured deadline after sent_at.
	DeadlineMs int64 `json:"deadline_ms"`
	// LateByMs is how far past the deadline the probe arrived.
	LateByMs int64 `json:"late_by_ms"`
	// MissingEventID is the id of the probe.missing event this follows,
	// when the retriever still knows it.
	MissingEventID string `json:"missing_event_id,omitempty"`
	ProbeVerdicts
}

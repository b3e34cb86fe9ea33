package schemas

// Vocabulary of delivery events.
const (
	// StatusSent: the remote server accepted the recipient.
	StatusSent = "sent"
	// StatusDeferred: the attempt failed for now; the MTA will retry.
	StatusDeferred = "deferred"
	// StatusBounced: the attempt failed for good; a bounce goes back.
	StatusBounced = "bounced"
	// StatusExpired: the message sat in the queue past its lifetime and was
	// returned (Postfix qmgr "status=expired").
	StatusExpired = "expired"
	// StatusRejected: our own MTA refused the message before queueing it
	// (Postfix NOQUEUE), e.g. on a policy-service cut-off.
	StatusRejected = "rejected"

	// TrackingValid: the tracking header was present and its HMAC verified.
	TrackingValid = "valid"
	// TrackingMissing: the message carried no tracking header.
	TrackingMissing = "missing"
	// TrackingInvalid: a tracking header was present but foreign, tampered
	// with or malformed; nothing in it was trusted.
	TrackingInvalid = "invalid"

	// MTAPostfix and MTAExim name the MTA whose log produced an event.
	MTAPostfix = "postfix"
	MTAExim    = "exim"
)

// OutgoingMessage says which of our messages, to which recipient, an event
// is about: whose mail it was, where it left from and where it went. A
// delivery attempt and a bounce both carry it, so they join on tracking_id
// and group by customer, IP and provider alike.
type OutgoingMessage struct {
	// TrackingID is the message id from our verified tracking header in
	// the message.
	TrackingID string `json:"tracking_id,omitempty"`
	// Customer is the customer the message was sent for, from the verified
	// tracking header or traced otherwise; empty when unknown.
	Customer string `json:"customer,omitempty" ch:"lc"`
	// SourceIP is our sending IP the message left from (for a delivery
	// attempt, mapped from the transport or bind address).
	SourceIP string `json:"source_ip,omitempty" ch:"lc"`
	// Provider is the recipient's mailbox provider, from the recipient
	// domain or an MX name; empty when not one we track.
	Provider string `json:"provider,omitempty" ch:"lc"`
	// RecipientDomain is the domain part of the recipient address.
	RecipientDomain string `json:"recipient_domain" ch:"lc"`
	// ProbeID is set when the message was one of our probes.
	ProbeID string `json:"probe_id,omitempty"`
}

// DeliveryAttempted records one delivery attempt for one recipient, as our
// MTA logged it. It comes from a Postfix delivery-agent line (or a qmgr
// expiry, or a NOQUEUE reject) joined with what the log said earlier about
// the same queue id, or from an Exim delivery line. Time is the timestamp of the log line. The remote
// reply is classified by its text, not only its code.
type DeliveryAttempted struct {
	Header
	OutgoingMessage
	// TrackingStatus is "valid", "missing" or "invalid" (present but not
	// verifiable; its contents were ignored).
	TrackingStatus string `json:"tracking_status" ch:"lc" enum:"valid,missing,invalid"`
	// MTA is "postfix" or "exim".
	MTA string `json:"mta" ch:"lc" enum:"postfix,exim"`
	// MTAHost is the host name in the log line.
	MTAHost string `json:"mta_host" ch:"lc"`
	// MTAInstance is the syslog name of the logging service, e.g.
	// "postfix-out1/smtp" or "exim".
	MTAInstance string `json:"mta_instance,omitempty" ch:"lc"`
	// Agent is the delivery agent: smtp, lmtp, local, virtual, pipe, error,
	// retry, discard (Postfix); qmgr for an expiry; smtpd for a NOQUEUE
	// reject; the transport name for Exim.
	Agent string `json:"agent,omitempty" ch:"lc"`
	// QueueID is the MTA's queue id; empty for a NOQUEUE reject.
	QueueID string `json:"queue_id,omitempty"`
	// MessageID is the Message-ID header, without angle brackets.
	MessageID string `json:"message_id,omitempty"`
	// Sender is the envelope sender; empty for the null sender.
	Sender string `json:"sender,omitempty"`
	// Recipient is the envelope recipient of this attempt.
	Recipient string `json:"recipient"`
	// OrigRecipient is the recipient before alias or virtual rewriting
	// (Postfix orig_to=).
	OrigRecipient string `json:"orig_recipient,omitempty"`
	// SizeBytes is the queued message size (qmgr size=); 0 when not logged.
	SizeBytes uint32 `json:"size_bytes,omitempty"`
	// Nrcpt is the number of recipients of the queued message (qmgr nrcpt=).
	Nrcpt uint32 `json:"nrcpt,omitempty"`
	// ClientHost is the host name of the client that submitted the message
	// to our MTA.
	ClientHost string `json:"client_host,omitempty" ch:"lc"`
	// ClientIP is the address of the client that submitted the message.
	ClientIP string `json:"client_ip,omitempty" ch:"lc"`
	// SASLUsername is the SMTP AUTH user that submitted the message (the
	// name only; never a password).
	SASLUsername string `json:"sasl_username,omitempty" ch:"lc"`
	// Status is "sent", "deferred", "bounced", "expired" or "rejected"
	// (refused by our own MTA before queueing).
	Status string `json:"status" ch:"lc" enum:"sent,deferred,bounced,expired,rejected"`
	// DSN is the enhanced status code the MTA logged, e.g. "4.7.0".
	DSN string `json:"dsn,omitempty" ch:"lc"`
	// ReplyCode is the remote SMTP reply code; 0 when there was no remote
	// reply (connection failure, local delivery).
	ReplyCode uint16 `json:"reply_code,omitempty"`
	// Reply is the text in parentheses after the status: the remote reply
	// or the MTA's own explanation.
	Reply string `json:"reply,omitempty"`
	// Reason is the bounce classifier's reason, e.g. "badreputation";
	// "delivered" for a sent attempt.
	Reason string `json:"reason,omitempty" ch:"lc"`
	// Category is the bounce classifier's coarse category, e.g.
	// "blocked_ip_or_blocklist".
	Category string `json:"category,omitempty" ch:"lc"`
	// Signature names the blocklist or provider rule the reply cites, e.g.
	// "spamhaus" or "outlook:S3150".
	Signature string `json:"signature,omitempty" ch:"lc"`
	// RelayHost is the host name of the next hop (relay=host[ip]:port).
	RelayHost string `json:"relay_host,omitempty" ch:"lc"`
	// RelayIP is the address of the next hop.
	RelayIP string `json:"relay_ip,omitempty" ch:"lc"`
	// RelayPort is the port of the next hop.
	RelayPort uint16 `json:"relay_port,omitempty"`
	// ConnUse is how many deliveries the cached connection had carried
	// (Postfix conn_use=); 0 for a fresh connection.
	ConnUse uint32 `json:"conn_use,omitempty"`
	// DelayMs is the total time since the message entered the queue
	// (delay=); -1 when not logged.
	DelayMs int64 `json:"delay_ms"`
	// DelayBeforeQmgrMs is the time before the queue manager, including
	// message transmission into the MTA (delays=a/./././); -1 when not logged.
	DelayBeforeQmgrMs int64 `json:"delay_before_qmgr_ms"`
	// DelayInQmgrMs is the time in the queue manager (delays=./b/./.);
	// -1 when not logged.
	DelayInQmgrMs int64 `json:"delay_in_qmgr_ms"`
	// DelayConnSetupMs is connection setup including DNS, HELO and TLS
	// (delays=././c/.); -1 when not logged.
	DelayConnSetupMs int64 `json:"delay_conn_setup_ms"`
	// DelayTransmissionMs is message transmission (delays=./././d); -1 when
	// not logged.
	DelayTransmissionMs int64 `json:"delay_transmission_ms"`
}

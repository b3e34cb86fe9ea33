package bounceclass

// Rule is one text rule: when at least one Any pattern occurs in the text,
// at least one With pattern too (if With is set) and no Without pattern, the
// rule matches and gives Reason. Patterns are plain substrings compared with
// the normalised text (ASCII lower case, white space runs as one space, see
// normalizedBytes); a leading or trailing space in a pattern stands for a word
// edge (the text is padded with a space on both ends).
//
// Rules are tried in table order and the first that matches wins, so a rule
// must come before every more general rule its texts would also match.
type Rule struct {
	ID        string
	Reason    string
	Any       []string
	With      []string
	Without   []string
	Signature string // optional, used when no SignatureRule names one
	// IfStatus narrows the reason with the enhanced status code: keys are
	// "subject.detail" ("2.3") or "subject" ("6"), tried in that order.
	IfStatus map[string]string
	// IfPhase narrows the reason with the SMTP command the reply answered,
	// when the text tells it (see Phases): e.g. "User unknown" in reply to
	// MAIL FROM is about the sender, and after the end of DATA (the
	// recipient was accepted at RCPT time) it is a filter.
	IfPhase map[string]string
	// OnlyWithoutCodes makes the rule a last resort: when the enhanced
	// status or the reply code names a reason (codeReason), that reason
	// wins over this rule's.
	OnlyWithoutCodes bool
}

// SMTP phases a reply can answer, as IfPhase keys.
const (
	PhaseConnect = "connect" // banner / greeting
	PhaseHelo    = "helo"
	PhaseMail    = "mail"
	PhaseRcpt    = "rcpt"
	PhaseData    = "data"
)

// Phases lists how MTAs name the command a reply answered: Postfix "(in
// reply to RCPT TO command)", "refused to talk to me"; Exim "SMTP error
// from remote mail server after RCPT TO:<...>", "after end of data"; qmail
// "does not like recipient", "did not like our final DATA", "failed after I
// sent the message"; Sendmail "... while talking to". The first phase with
// a pattern in the text wins, in this order.
var Phases = []struct {
	Phase    string
	Patterns []string
}{
	{PhaseData, []string{"end of data", "after data", "final data", "after i sent the message", "in reply to data command", "reply to end of data"}},
	{PhaseRcpt, []string{"in reply to rcpt to command", "after rcpt to", "did not like our rcpt to", "does not like recipient", "rcpt to:<", ">>> rcpt to"}},
	{PhaseMail, []string{"in reply to mail from command", "after mail from", "sender was rejected", ">>> mail from"}},
	{PhaseHelo, []string{"in reply to ehlo command", "in reply to helo command", "after ehlo", "after helo", "my name was rejected"}},
	{PhaseConnect, []string{"refused to talk to me", "after initial connection", "in reply to initial", "during greeting"}},
}

// Rules is the ordered rule table. The sections, in order:
//
//  1. provider replies with a documented meaning (Gmail, Microsoft, Yahoo,
//     Apple, Orange, Cox, Comcast, GoDaddy, ...), whose wording often also
//     holds generic words ("blocked", "spam", "rate limited") that later
//     rules would read the wrong way;
//  2. connection and per-session limits (they name their cause even when
//     the reply also says "blocked"), then blocklists and reputation: a
//     named DNSBL or "listed" is a block of the sending IP whatever else
//     the text says;
//  3. sender authentication (SPF, DKIM, DMARC) and reverse DNS;
//  4. rate limits;
//  5. the recipient's mailbox: full, disabled, moved, unknown;
//  6. the recipient's domain: unknown, null MX, relaying;
//  7. the message: virus, spam, size, content, RFC compliance;
//  8. the sender: rejected envelope sender or sender domain;
//  9. policy and security;
//  10. transport and remote system trouble: expiry, network, system, mailer;
//  11. generic refusals ("blocked", "denied") last.
var Rules = []Rule{
	// ---- 1. Provider replies --------------------------------------------
	// Gmail (https://support.google.com/a/answer/3726730).
	{ID: "gmail-unusual-rate", Signature: "gmail-{status}", Reason: ReasonBlocked, Any: []string{"unusual rate of unsolicited mail", "gmail has detected an unusual rate of mail", "an unusual rate of mail originating"}},
	{ID: "gmail-same-message-id", Signature: "gmail-{status}", Reason: ReasonPolicyViolation, Any: []string{"sending messages with the same message-id"}},
	{ID: "gmail-dmarc", Signature: "gmail-{status}", Reason: ReasonAuthFailure, Any: []string{"is not accepted due to domain's dmarc policy", "unauthenticated email from"}},
	{ID: "gmail-spf-hardfail", Signature: "gmail-{status}", Reason: ReasonAuthFailure, Any: []string{"has an spf record with a hard fail policy", "fails to pass spf checks", "the spf record of the sending domain has"}},
	{ID: "gmail-unauthenticated", Signature: "gmail-{status}", Reason: ReasonAuthFailure, Any: []string{"senders to authenticate with", "senders to authenticate their email with", "fails to pass authentication checks", "does not have authentication information", "aligned with either the authenticated spf or dkim", "to add a dmarc record to", "does not meet ipv6 sending guidelines regarding authentication"}},
	{ID: "gmail-ptr", Signature: "gmail-{status}", Reason: ReasonRequirePTR, Any: []string{"does not have a ptr record", "doesn't have a ptr record", "ipv6 sending guidelines regarding ptr records", "does not match the ip address of the hostname specified in the pointer"}},
	{ID: "gmail-low-reputation", Signature: "gmail-{status}", Reason: ReasonBadReputation, Any: []string{"very low reputation of the sending", "low reputation of the sending ip", "low reputation of the sending domain"}},
	{ID: "gmail-suspicious-content", Signature: "gmail-{status}", Reason: ReasonSpamDetected, Any: []string{"due to the nature of the content or the links within", "likely unsolicited mail", "rejected due to spam classification"}},
	{ID: "gmail-receiving-too-quickly", Reason: ReasonSpeeding, Any: []string{"is receiving mail too quickly", "receiving mail at a rate that", "smtp relay limit exceeded", "smtp relay sending limit exceeded", "daily sending quota exceeded", "daily user sending limit exceeded"}},
	{ID: "gmail-over-quota", Reason: ReasonMailboxFull, Any: []string{"inbox is out of storage space", "account that you tried to reach is over quota", "storage quota exceeded", "email quota exceeded", "?p=overquota"}},
	{ID: "gmail-disabled", Signature: "gmail-{status}", Reason: ReasonSuspend, Any: []string{"account that you tried to reach is disabled", "account that you tried to reach is inactive", "?p=disableduser"}},
	{ID: "gmail-no-such-account", IfPhase: map[string]string{PhaseData: ReasonFiltered}, Signature: "gmail-{status}", Reason: ReasonUserUnknown, Any: []string{"account that you tried to reach does not exist", "?p=nosuchuser"}},
	{ID: "gmail-recipient-rfc5321", Signature: "gmail-{status}", Reason: ReasonUserUnknown, Any: []string{"is not a valid rfc 5321 address"}, With: []string{"recipient address"}},
	{ID: "gmail-rfc5322", Signature: "gmail-{status}", Reason: ReasonNotCompliantRFC, Any: []string{"missing a valid address in the from: header", "multiple addresses in from: header", "is not rfc 5322 compliant", "missing a valid message-id", "unicode character in a disallowed header", "encoded-word syntax is not permitted", "is not a valid rfc 5321 address", "mail message is malformed", "rfcmessagenoncompliant", "headers are not rfc compliant"}},
	{ID: "gmail-attachment", Signature: "gmail-{status}", Reason: ReasonPolicyViolation, Any: []string{"illegal attachment on your message", "content presents a potential security issue", "content presents a potential securi", "has a policy that prohibited the mail", "?p=blockedmessage"}},
	{ID: "gmail-tls", Reason: ReasonFailedSTARTTLS, Any: []string{"senders to use tls/ssl", "wasn't sent over a tls connection", "must issue a starttls command first", "tls required for rcpt domain", "starttls may not be repeated"}},
	{ID: "gmail-relay", Reason: ReasonNoRelaying, Any: []string{"mail relay denied", "invalid credentials for relay", "not authorized to send email directly to our servers"}},
	{ID: "gmail-login", Reason: ReasonSecurityError, Any: []string{"too many login attempts", "application-specific password required", "please log in with your web browser", "please log in through your web browser", "username and password not accepted", "no identity changes permitted", "cannot authenticate due to temporary system problem"}},
	{ID: "gmail-not-whitelisted", Reason: ReasonBlocked, Any: []string{"ip not in whitelist for rcpt domain", "denial of service (dos) for the smtp relay", "try again later, closing connection", "helo/ehlo argument is invalid", "empty helo/ehlo argument"}},
	{ID: "gmail-size", Signature: "gmail-{status}", Reason: ReasonMesgTooBig, IfStatus: map[string]string{"2.3": ReasonExceedLimit}, Any: []string{"exceeded google's message size limits", "exceeded google\"s message size limits", "exceeds google's message size limit", "?p=maxsizeerror"}},
	{ID: "gmail-header-size", Signature: "gmail-{status}", Reason: ReasonExceedLimit, Any: []string{"exceeds google's limit of", "exceeded google's message header size", "bytes per individual header size", "exceeds google's header"}},
	{ID: "gmail-too-many-recipients", Signature: "gmail-{status}", Reason: ReasonTooManyConn, Any: []string{"your message has too many recipients", "too many recipients for this sender"}},
	{ID: "gmail-loop", Signature: "gmail-{status}", Reason: ReasonNetworkError, Any: []string{"message exceeded 50 hops", "?p=mailloop"}},
	{ID: "gmail-connection-expired", Reason: ReasonExpired, Any: []string{"connection expired, try reconnecting", "timeout - closing connection"}},
	// Gmail as the sending side: its delay and failure notices say "The
	// recipient server did not accept our requests to connect" for a
	// message it kept retrying and gave up on, an expiry whatever the
	// network cause.
	{ID: "gmail-retried-connect", Reason: ReasonExpired, Any: []string{"did not accept our requests to connect"}},
	{ID: "gmail-null-mx", Signature: "gmail-{status}", Reason: ReasonNotAccept, Any: []string{"returned null mx", "doesn't receive email according to the administrator"}},
	{ID: "gmail-dns-error", Signature: "gmail-{status}", Reason: ReasonNetworkError, Any: []string{"dns error: "}, With: []string{"lookup of"}},
	{ID: "gmail-groups", Signature: "gmail-{status}", Reason: ReasonRejected, Any: []string{"group you tried to contact", "groups.google.com/support", "'send mail as'", "the settings for your 'send mail as' account"}},
	{ID: "gmail-sender-denied", Reason: ReasonRejected, Any: []string{"mail sending denied", "unauthenticated email is not accepted"}},
	{ID: "gmail-system", Reason: ReasonSystemError, Any: []string{"temporary system problem", "multiple destination domains per transaction", "mail server has temporarily rejected this message", "mail server temporarily rejected message", "domain policy size per transaction exceeded"}},
	{ID: "gmail-protocol", Reason: ReasonSyntaxError, Any: []string{"smtp protocol violation", "no data after bdat", "too many unauthenticated commands", "xoauth is no longer supported"}},

	// Microsoft (Exchange Online / Outlook.com NDR codes,
	// https://learn.microsoft.com/exchange/mail-flow-best-practices/non-delivery-reports-in-exchange-online).
	// Outlook.com postmaster codes (RP-, SC-, DY-, OU-; https://sendersupport.olc.protection.outlook.com/pm/troubleshooting.aspx).
	{ID: "outlook-reputation-codes", Signature: "outlook-{status}", Reason: ReasonBadReputation, Any: []string{"rp-001", "rp-002", "rp-003", "sc-001", "ou-002"}},
	{ID: "outlook-namespace-mining", Signature: "outlook-{status}", Reason: ReasonPolicyViolation, Any: []string{"sc-002"}},
	{ID: "outlook-block-codes", Signature: "outlook-{status}", Reason: ReasonBlocked, Any: []string{"sc-003", "sc-004", "dy-001", "dy-002", "ou-001"}},
	{ID: "outlook-network-blocklist", Signature: "outlook-{status}", Reason: ReasonBlocked, Any: []string{"part of their network is on our block list", "(s3140)", "(s3150)", "banned sending ip", "access denied, banned sender", "using customer block list", "access denied, rejected by recipient", "access denied, bad helo", "does not accept email over ipv6", "access denied, please try again later", "weren't sent. please contact your internet service provider", "too many unwanted messages have been sent", "not currently accepting mail from your ip"}},
	{ID: "outlook-ip-reputation", Signature: "outlook-{status}", Reason: ReasonBadReputation, Any: []string{"rate limited due to ip reputation", "(s3113)", "(s3114)", "(s775)"}},
	{ID: "outlook-connections", Signature: "outlook-{status}", Reason: ReasonTooManyConn, Any: []string{"exceeded the maximum number of connections", "(s3115)"}},
	{ID: "outlook-rate", Signature: "outlook-{status}", Reason: ReasonSpeeding, Any: []string{"has exceeded permitted limits within", "recipient thread limit exceeded", "reached your daily limit for message recipients", "submission quota exceeded", "per hour message receive limit", "the recipient has exceeded their limit for", "tenant has exceeded threshold", "traffic not accepted from this ip"}},
	{ID: "outlook-dmarc", Signature: "outlook-{status}", Reason: ReasonAuthFailure, Any: []string{"does not pass dmarc verification", "doesn't meet the required authentication level", "must pass either spf or dkim validation", "because of sender policy framework violation"}},
	{ID: "outlook-reverse-dns", Signature: "outlook-{status}", Reason: ReasonRequirePTR, Any: []string{"must have a reverse dns record"}},
	{ID: "outlook-spam-abuse", Signature: "outlook-{status}", Reason: ReasonRejected, Any: []string{"access denied, spam abuse detected", "access denied, bad outbound sender", "client blocked from sending from unregistered domains", "sender not in allowed-senders list", "sender not authenticated for group", "sender was not authenticated", "sender denied"}},
	{ID: "outlook-recipient-access-denied", IfPhase: map[string]string{PhaseData: ReasonFiltered}, Signature: "outlook-{status}", Reason: ReasonUserUnknown, Any: []string{"recipient address rejected: access denied", "access denied. as(201806281)", "resolver.adr.exrecipnotfound", "resolver.adr.recipnotfound", "bad destination mailbox address", "invalid x.400 address", "returned unknown recipient or mailbox unavailable", "resolver.adr.recipientnotfound", "recipnotfound", "recipient not found by smtp address lookup", "storedrv.submit; invalid recipient address", "recipient address reserved by rfc 2606", "recipient addresses in single label domains not accepted"}},
	{ID: "outlook-banned-recipient", Signature: "outlook-{status}", Reason: ReasonSuspend, Any: []string{"access denied, banned recipient", "mailbox cannot be accessed"}},
	{ID: "outlook-mailbox-full", Signature: "outlook-{status}", Reason: ReasonMailboxFull, Any: []string{"storedrv.deliver: mailbox full", "storedrv.deliver; mailbox full", "mapiexceptionshutoffquotaexceeded", "mapiexceptionquotaexceeded"}},
	{ID: "outlook-size", Signature: "outlook-{status}", Reason: ReasonMesgTooBig, Any: []string{"resolver.rst.recipsizelimit", "message too large for this recipient"}},
	{ID: "outlook-tls", Signature: "outlook-{status}", Reason: ReasonFailedSTARTTLS, Any: []string{"failed mta-sts validation", "starttls is required to send mail", "starttls-not-supported", "certificate-expired:", "tlsa-invalid:", "dnssec-invalid:", "certificate-host-mismatch:", "restrictdomainstocertificate"}},
	{ID: "outlook-dns", Reason: ReasonNetworkError, Any: []string{"dns query failed", "smtpsend.dns.nonexistentdomain", "hop count exceeded - possible mail loop", "routing loop detected"}},
	{ID: "outlook-expired", Reason: ReasonExpired, Any: []string{"message expired", "queue expired"}},
	{ID: "outlook-policy", Signature: "outlook-{status}", Reason: ReasonPolicyViolation, Any: []string{"x-dg-ref header is too long", "policy violation detected (as345)", "delivery not authorized, message refused"}, With: []string{"5.0.350", "5.7.9", "x-dg-ref", "as345"}},
	{ID: "outlook-relay", Reason: ReasonNoRelaying, Any: []string{"tenantattribution; relay access denied", "unable to relay"}},
	{ID: "outlook-not-authenticated", Reason: ReasonSecurityError, Any: []string{"client was not authenticated", "cannot achieve exchange server authentication"}},
	{ID: "outlook-system", Signature: "outlook-{status}", Reason: ReasonSystemError, Any: []string{"message failed to be replicated", "(suspiciousremoteservererror)", "server busy. please try again later from", "pfa agent busy", "when journaling archive is disabled", "misconfigured forwarding address", "missing or bad storedriver mdb properties"}},
	{ID: "outlook-domain-unreachable", Signature: "outlook-{status}", Reason: ReasonHostUnknown, Any: []string{"because the domain is not reachable", "hosted tenant which has no mail-enabled subscriptions"}},
	{ID: "outlook-content-filter", Signature: "outlook-{status}", Reason: ReasonSpamDetected, Any: []string{"content filter agent quarantined this message"}},

	// Yahoo / AOL (https://senders.yahooinc.com/smtp-error-codes).
	{ID: "yahoo-tss04", Signature: "yahoo-{status}", Reason: ReasonBadReputation, Any: []string{"[tss04]", "temporarily deferred due to unexpected volume or user complaints"}},
	{ID: "yahoo-permanently-deferred", Signature: "yahoo-{status}", Reason: ReasonBlocked, Any: []string{" will be permanently deferred", "[tss09]", "[tss11]", "[tss12]"}},
	{ID: "yahoo-unresolvable-from", Signature: "yahoo-{status}", Reason: ReasonRejected, Any: []string{"unresolvable rfc.5321 from domain", "due to unresolvable rfc.5321"}},
	{ID: "yahoo-policy", Signature: "yahoo-{status}", Reason: ReasonPolicyViolation, Any: []string{"not accepted for policy reasons", "[ph01]"}},
	{ID: "yahoo-no-account", IfPhase: map[string]string{PhaseData: ReasonFiltered}, Signature: "yahoo-{status}", Reason: ReasonUserUnknown, Any: []string{"this user doesn't have a ", "dd this user doesn't"}},
	{ID: "yahoo-disabled", Reason: ReasonSuspend, Any: []string{" is no longer valid.", "this mailbox is disabled"}},
	{ID: "yahoo-per-connection", Signature: "yahoo-{status}", Reason: ReasonTooManyConn, Any: []string{"max message per connection reached"}},
	{ID: "yahoo-invalid-ip-for-domain", Signature: "yahoo-{status}", Reason: ReasonBlocked, Any: []string{"invalid ip for sending mail of domain"}},

	// Apple iCloud (https://support.apple.com/HT204137).
	{ID: "apple-policy", Reason: ReasonPolicyViolation, Any: []string{"[cs01]", "[hm08]", "due to local policy"}},
	{ID: "apple-volume", Reason: ReasonSpeeding, Any: []string{"deferred due to excessive volume"}},
	{ID: "apple-not-accepting", Reason: ReasonBlocked, Any: []string{"esmtp not accepting connections"}},
	{ID: "apple-moved", Reason: ReasonHasMoved, Any: []string{"recipient no longer on server"}},
	{ID: "apple-inactive-address", IfPhase: map[string]string{PhaseData: ReasonFiltered}, Signature: "apple-{status}", Reason: ReasonUserUnknown, Any: []string{"inactive email address"}},
	{ID: "apple-spamhaus-domain", Signature: "apple-{status}", Reason: ReasonBlocked, Any: []string{"rejected due to having a domain present in the spamhaus"}},

	// Orange / Wanadoo (OFR codes).
	// Orange and La Poste end their replies with an error label such as
	// "OFR006_102", "OFR_999 [999]" or "LPN007_505"; the number names the
	// reason (https://www.postmastery.com/orange-postmaster-smtp-error-codes-ofr/).
	{ID: "orange-blocked", Signature: "orange-{status}", Reason: ReasonBlocked, Any: []string{"_101", "_102", "_103", "_510", "_999"}, With: []string{"ofr", "lpn"}},
	{ID: "orange-connections", Signature: "orange-{status}", Reason: ReasonTooManyConn, Any: []string{"_104", "trop de connexions"}, With: []string{"ofr", "lpn", "trop de connexions"}},
	{ID: "orange-auth", Signature: "orange-{status}", Reason: ReasonSecurityError, Any: []string{"_305", "_402", "code d'authentification invalide", "code d\"authentification invalide"}, With: []string{"ofr", "lpn", "authentification"}},
	{ID: "orange-spf", Signature: "orange-{status}", Reason: ReasonAuthFailure, Any: []string{"_401", "_517", "verifier la configuration spf", "spf/dns de votre", "verification dmarc en echec"}, With: []string{"ofr", "lpn", "spf", "dmarc"}},
	{ID: "orange-sender", Signature: "orange-{status}", Reason: ReasonRejected, Any: []string{"_403", "_405", "_415", "_421", "emetteur invalide"}, With: []string{"ofr", "lpn", "emetteur invalide"}},
	{ID: "orange-recipient", IfPhase: map[string]string{PhaseData: ReasonFiltered}, Signature: "orange-{status}", Reason: ReasonUserUnknown, Any: []string{"_416", "destinataire invalide"}, With: []string{"ofr", "lpn", "destinataire invalide"}},
	{ID: "orange-full", Signature: "orange-{status}", Reason: ReasonMailboxFull, Any: []string{"_417", "boite du destinataire pleine"}, With: []string{"ofr", "lpn", "pleine"}},
	{ID: "orange-suspended", Signature: "orange-{status}", Reason: ReasonSuspend, Any: []string{"_420", "_426", "boite du destinataire archivee", "compte du destinataire est bloque"}, With: []string{"ofr", "lpn", "destinataire"}},
	{ID: "orange-system", Signature: "orange-{status}", Reason: ReasonSystemError, Any: []string{"_505"}, With: []string{"ofr", "lpn"}},
	{ID: "orange-spam", Signature: "orange-{status}", Reason: ReasonSpamDetected, Any: []string{"_506", "mail rejete. mail rejected"}, With: []string{"ofr", "lpn", "mail rejete"}},
	{ID: "orange-size", Signature: "orange-{status}", Reason: ReasonMesgTooBig, Any: []string{"_514", "taille limite du message"}, With: []string{"ofr", "lpn", "taille limite"}},
	{ID: "orange-client-host", Signature: "orange-{status}", Reason: ReasonPolicyViolation, Any: []string{"_630"}, With: []string{"ofr", "lpn"}},
	{ID: "orange-refused", Signature: "orange-{status}", Reason: ReasonBlocked, Any: []string{"bloquee pour incident de spam", "service refuse. veuillez essayer plus tard"}},

	// Cox (https://www.cox.com/residential/support/email-error-codes.html).
	{ID: "cox-aup", Signature: "cox-{status}", Reason: ReasonBlocked, Any: []string{"aup#cdrbl", "aup#rbl", "aup#bl", "aup#cxrbl", "aup#cxbl", "aup#in-", "aup#pol", "aup#cxdns"}},
	{ID: "cox-rate", Signature: "cox-{status}", Reason: ReasonSpeeding, Any: []string{"aup#cxcnct", "aup#cxmxrt", "aup#cxsnd"}},
	{ID: "cox-unknown", IfPhase: map[string]string{PhaseData: ReasonFiltered}, Signature: "cox-{status}", Reason: ReasonUserUnknown, Any: []string{"aup#cxrcpt", "aup#rcpt"}},

	// GoDaddy / secureserver.net IB codes
	// (https://www.godaddy.com/help/fix-rejected-email-with-a-bounce-error-40685).
	{ID: "godaddy-auth", Reason: ReasonSecurityError, Any: []string{"ib401", "authentication not allowed on ibsmtp"}},
	{ID: "godaddy-from", Reason: ReasonNotCompliantRFC, Any: []string{"ib501", "ib502", "blank from: addresses are not allowed", "ip addresses are not allowed as a from"}},
	{ID: "godaddy-from-invalid", Reason: ReasonRejected, Any: []string{"ib506", "from: domain is invalid"}},
	{ID: "godaddy-spf", Reason: ReasonAuthFailure, Any: []string{"ib508", "per it's spf record", "per its spf record"}},
	{ID: "godaddy-ptr", Reason: ReasonRequirePTR, Any: []string{"ib108", "reverse dns for this ip failed"}},
	{ID: "godaddy-spam", Reason: ReasonSpamDetected, Any: []string{"ib212", "content judged to be spam by the internet community.", "message rejected for spam or virus content"}, Without: []string{"this ip has"}},
	{ID: "godaddy-virus", Reason: ReasonVirusDetected, Any: []string{"ib705", "virus infected message rejected"}},
	{ID: "godaddy-recipients", Reason: ReasonTooManyConn, Any: []string{"ib605", "ib007", "too many sessions from this ip"}},
	{ID: "godaddy-rate", Reason: ReasonSpeeding, Any: []string{"ib101", "ib504", "ib510", "ib607", "sent too many messages this hour", "max number of messages per session"}},
	{ID: "godaddy-blocked", Reason: ReasonBlocked, Any: []string{"ib110", "ib111", "ib112", "ib113", "ib104", "ib105", "ib106", "rbl reject"}},
	{ID: "godaddy-reputation", Reason: ReasonBadReputation, Any: []string{"ib103", "poor reputation on cloudmark"}},
	{ID: "godaddy-storage", Reason: ReasonMailboxFull, Any: []string{"account storage limit"}},

	// Comcast, Tencent, mail.ru, Zoho, Amazon SES and others.
	{ID: "comcast-ptr", Reason: ReasonRequirePTR, Any: []string{"must have a ptr record with a valid reverse dns"}},
	{ID: "qq-dmarc", Reason: ReasonAuthFailure, Any: []string{"dmarc check failed"}},
	{ID: "ses-not-verified", Reason: ReasonNoRelaying, Any: []string{"email address is not verified", "identities failed the check"}},
	{ID: "zoho-not-reachable", Reason: ReasonExpired, Any: []string{"host not reachable"}},

	// Deutsche Telekom (T-Online): "554 IP=... - A problem occurred. (Ask your postmaster ...) (BL)".
	{ID: "t-online-bl", Reason: ReasonBlocked, Any: []string{"(bl)", "a problem occurred. (ask your postmaster"}},
	// cPanel/Exim "The account or domain may not exist, they may be blacklisted, or missing the proper dns entries."
	{ID: "cpanel-account-or-domain", Reason: ReasonHostUnknown, Any: []string{"the account or domain may not exist"}},
	// Lotus Domino, also in Japanese.
	{ID: "domino-not-listed", IfPhase: map[string]string{PhaseData: ReasonFiltered}, Reason: ReasonUserUnknown, Any: []string{"not listed in domino directory", "not listed in public name & address book", "not listed in public name", "ディレクトリには見つかりません", "ディレクトリのリストにありません", "invalid final delivery userid"}},
	// Greylisting is a first-contact deferral, not a failure: known, so
	// Matched, but no failure reason.
	{ID: "greylisted", Reason: ReasonUndefined, Any: []string{"greylist", "graylist", "grey-list", "gray-list", "greylisting", "postgrey"}},

	// The envelope sender (not the IP) is on the receiver's own list.
	{ID: "sender-blacklisted", Reason: ReasonRejected, Any: []string{"sender is in my black list", "sender address has been blacklisted", "email address has been blacklisted", "sender blacklisted", "address that has been blacklisted", "address is on a blacklist", "sender address is blacklisted", "sender is blacklisted", "sender is spammer", "from address is blacklisted"}},

	// Connection and per-session limits name their cause even when the
	// reply also says "blocked" or cites the IP: before the blocklists.
	{ID: "too-many-connections", Reason: ReasonTooManyConn, Any: []string{"maximum connection limit", "per-domain connection limit", "too many errors from your ip", "numerous attempts to deliver", "too many errors", "too many connections", "connection rate", "frequency limited", "ip frequency", "too many concurrent", "too many simultaneous", "too many sessions", "connection limit", "connections per ip", "max connections", "maximum connections", "maximum number of connections", "concurrency limit", "too many open connections", "too many hosts", "too many smtp sessions", "too many recipients", "too many rcpt", "recipient limit", "recipients limit", "max recipients", "maximum recipients", "too many addresses", "number of recipients", "too many messages in this connection", "too many messages per connection", "message limit per connection", "messages per connection"}},

	// ---- 2. Blocklists and reputation -----------------------------------
	{ID: "ironport-reputation", Reason: ReasonBadReputation, Any: []string{"sending mta's poor reputation", "poor reputation", "bad reputation", "low reputation", "low sender reputation", "reputation score", "reputation is too low", "senderscore", "sender score", "reputation of the sending", "ip reputation", "domain reputation", "reputation-based"}, Without: []string{"not on a blacklist"}},
	// Domains or links of the message body on a URI blocklist: the content,
	// not the sending IP. (A DBL hit on the HELO name or sender domain,
	// "Helo command [...] blocked using dbl.spamhaus.org", is a block.)
	{ID: "uribl", Reason: ReasonSpamDetected, Any: []string{"uribl", "surbl", "blacklisted url", "blacklisted link", "url in message", "urls in message", "link in message", "links in message", "bad url", "blocked url", "listed url", "listed domain in", "domain in message body", "in the message body is listed"}},
	{ID: "dbl-content", Reason: ReasonSpamDetected, Any: []string{"dbl.spamhaus", "spamhaus dbl", "spamhaus.org/dbl", "spamhaus domain block list"}, With: []string{"url", "link", "body", "content", "message contains"}},
	{ID: "dnsbl-named", Reason: ReasonBlocked, Any: []string{"spamhaus", "barracuda", "spamcop", "sorbs.net", "dnsbl", " rbl", "rbl.", "-rbl", "rbl ", " rbls", " bl.", "uceprotect", "abuseat", "cbl.abuse", "psbl", "blocklist.de", "mailspike", "invaluement", "abusix", "0spam", "backscatterer", "spfbl", "nordspam", "hostkarma", "junkemailfilter", "ix.dnsbl", "manitu", "s5h.net", "truncate.gbudb", "dnsbl-lookup", "senderbase", "talosintelligence", "mail-abuse.com", "trendmicro", "cloudmark.com/reset", "csi.cloudmark", "pbl.", " xbl", " sbl", "realtime blackhole", "real-time blackhole", "dul.dnsbl"}},
	{ID: "blocklist-listed", Reason: ReasonBlocked, Any: []string{"bad sender ip address", "blocked using ", "dynamic/zombied", "bad ip profile", "host network not allowed", "hosts with dynamic ip", "is in a black list", "no access from mail server", "not currently accepting mail from your ip", "refused - see http", "blocked - see http", "rejecting open proxy", "sender ip address rejected", "server access forbidden by your ip", "looks suspiciously like spammer", "was blocked by ", "mail from dynamic ip", "you are not allowed to connect", "you are sending spam", "currently sending spam", "temporary blacklisted", "your server requires confirmation", "confirm this mail server", "access from ip address", "listed as abusive", "based on blacklist", "ip address is listed", "network is temporary", "blacklisted", "blocklisted", "block listed", "black listed", "blacklist", "blocklist", "block list", "denylist", "on our list of ", "listed on", "listed in", "listed at", "listed by", "is listed", "are listed", "has been listed", "ip blocked", "ip address blocked", "ip address is blocked", "ip is blocked", "ip has been blocked", "ip banned", "address is banned", "host blocked", "client host blocked", "network is blocked", "dynamic ip", "dynamic address", "dial-up", "dialup", "residential", "dynamically assigned", "use the smtp server of your isp", "use your isp", "use your provider", "smtp server of your isp", "connection refused by", "too many spams from your ip", "spam source", "spam sources", "known spammer", "spammer", "for spamming"}, Without: []string{"sender address", "sender domain", "recipient address rejected", "address is on a blacklist", "sending to/from an address", "your ip address is not allowed", "not listed", "policy", "policies"}},

	{ID: "reputation", Reason: ReasonBadReputation, Any: []string{"reputation"}},
	// The HELO/EHLO name was refused: about the sending host, a block.
	{ID: "helo-rejected", Reason: ReasonBlocked, Any: []string{"my name was rejected", "helo command rejected", "ehlo command rejected", "invalid helo", "bad helo", "helo name", "helo/ehlo", "helo argument", "ehlo argument", "hostname in helo", "name in helo"}},

	// ---- 3. Relaying, authentication and reverse DNS ---------------------
	{ID: "no-relaying", Reason: ReasonNoRelaying, Any: []string{"relay access denied", "relaying denied", "relay denied", "relay not permitted", "relaying not permitted", "relay not allowed", "relaying not allowed", "unable to relay", "we do not relay", "not relay", "no relaying", "relaying prohibited", "relay prohibited", "relaying is prohibited", "relaying mail to", "not allowed to relay", "relay rejected", "cannot relay", "can't relay", "couldn't relay", "open relay", "relay attempt", "relaying disallowed", "not a gateway", "is not a registered gateway user", "relay service", "relay from"}},
	{ID: "dmarc", Reason: ReasonAuthFailure, Any: []string{"dmarc"}, Without: []string{"dmarc record to"}},
	{ID: "spf-fail", Reason: ReasonAuthFailure, Any: []string{"spf check failed", "spf fail", "spf validation", "spf record", "spf policy", "spf check", " spf ", "spf=fail", "spf: fail", "sender policy framework", "spf/dns", "(spf)", "spf_", "spf-", "not designated", "is not allowed to send", "not permitted to send", "is not authorized to send mail", "unauthorized ip", "is not an authorized sender", "not authorized by", "designates", "not a permitted sender"}},
	{ID: "dkim-fail", Reason: ReasonAuthFailure, Any: []string{"dkim", "domainkey", "unauthenticated mail", "unauthenticated email", "not authenticated", "authentication check", "authentication requirements", "authentication-results", "arc validation"}, Without: []string{"smtp auth", "authentication required", "sender was not authenticated", "unauthenticated senders", "not authenticated for"}},
	{ID: "ptr", Reason: ReasonRequirePTR, Any: []string{"bad dns ptr", "cannot resolve your address", "fix reverse dns", "missing ptr", "custom reverse dns", "reverse dns failed", "reverse dns required", "reverse lookup rejected", "no reverse dns", "unresolvable relay host name", "generic dns ptr", "invalid rdns", "unverifyable sending ips", "ptr record", "no ptr", "ptr lookup", "reverse dns", "reverse lookup", "rdns", "reverse-dns", "reverse mapping", "reverse dns lookup", "no reverse", "reverse address", "does not resolve to", "doesn't resolve to", "cannot resolve your address", "cannot resolve your hostname", "cannot find your hostname", "can't resolve your hostname", "unresolvable ip", "unverifyable sending ip", "unverifiable sending ip", "not verifiable sending ip", "client host name is unknown", "cannot find your reverse hostname", "hostname does not match", "mismatches client ip", "does not match the ip", "name does not match ip", "fcrdns", "forward-confirmed", "ip name lookup failed", "without a valid sender domain", "no hostname", "host name lookup failed", "cannot resolve ptr", "no dns ptr", "domain name of your ip", "generic hostname", "generic reverse"}},

	// ---- 4. Rate limits and connection limits ----------------------------
	{ID: "rate-limited", Reason: ReasonSpeeding, Any: []string{"rate limit", "rate-limit", "ratelimit", "rate limited", "too many messages", "too many mails", "too many emails", "too fast", "too quickly", "too frequently", "excessive volume", "sending rate", "receiving rate", "message rate", "throttl", "slow down", "exceeded the rate", "exceeds the rate", "mails per", "messages per hour", "messages per minute", "per hour", "per minute", "per day limit", "daily limit", "hourly limit", "quota for sending", "sending quota", "exceeded sending", "temporarily deferred due to", "please reduce", "volume too high", "unusual volume"}, Without: []string{"mailbox full", "over quota", "quota exceeded", "storage"}},

	// Postfix smtpd "Sender address rejected: ...", Sendmail "Domain of
	// sender address ... does not exist": about our envelope sender,
	// whatever the detail says.
	{ID: "sender-address-rejected", Reason: ReasonRejected, Any: []string{"sender address rejected", "domain of sender address", "sender domain not found", "sender domain does not exist", "sender domain must exist", "sender domain must resolve", "unroutable sender address", "unrouteable sender address"}},

	// ---- 5. The recipient's mailbox -------------------------------------
	// The recipient (or its mailbox settings) refuses the message: a filter.
	{ID: "recipient-filter", Reason: ReasonFiltered, Any: []string{"account is protected by", "is not accepting any mail", "message filtered", "rejected due to user rules", "is only accepting mail from specific", "refused due to recipient preferences", "user refuses to receive", "refuse to receive mail", "refuses to accept your mail", "user reject", "you have been blocked by the recipient", "blocked by the recipient", "has restricted sms e-mail", "recipient's list of senders", "not on the recipient's list", "recipient has blocked", "blocked by recipient", "mail from you is not accepted by this recipient"}},
	{ID: "mailbox-full", Reason: ReasonMailboxFull, Any: []string{"exceeded storage allocation", "insufficient disk space", "not sufficient disk space", "too many messages on the server", "space has been used up", "exceeding receiving limits", "mailbox exceeds allowed size", "maximum allowed storage", "boite du destinataire pleine", "postfach voll", "mailbox size exceeded", "file too large", "mailbox full", "mailbox is full", "mailbox is over", "mailbox over", "mail box full", "mailbox size limit", "mailbox quota", "mailbox exceeds", "mailbox has exceeded", "mailbox would exceed", "mailbox limit", "mailfolder is full", "mail folder full", "user's mailbox is full", "box is full", "over quota", "overquota", "over the quota", "over its quota", "over their quota", "quota exceeded", "quota exceed", "exceeded quota", "exceeds quota", "exceeded storage", "exceeds storage", "exceeded its storage", "insufficient storage for user", "quota full", "quota violation", "disk quota", "would exceed quota", "exceeded the quota", "exceed the quota", "exceeded his quota", "exceeded her quota", "recipient's mailbox exceeded", "number of messages in recipient's mailbox", "too much mail data", "not enough storage space", "out of storage space", "user is over", "account is full", "account is over", "mailbox is overfull", "storage space", "inbox is full", "mailbox space", "quota has been exceeded", "full mailbox", "insufficient disk space for user", "no space left", "no space on", "quota reached", "quota limit", "over-quota", "recipient overquota", "mailquota", "mail quota", "exceeded its quota", "exceeded their quota", "exceeds the quota", "user quota", "storage limit", "storage allocation", "out of space", "mailbox capacity"}, Without: []string{"sending quota", "daily user sending", "submission quota", "smtp relay"}},
	{ID: "mailbox-disabled", Reason: ReasonSuspend, Any: []string{"currently suspended", "archived recipient", "deactivated mailbox", "user is terminated", "temporarily inactive", "suspend the service", "disabled or discontinued", "account has been temporarily suspended", "user or domain is disabled", "mailbox unavailable or access denied", "invalid/inactive user", "account has been closed", "account closed", "mailbox closed", "mailbox has been closed", "no longer in service", "account is no longer", "mailbox is no longer", "account is disabled", "account disabled", "account has been disabled", "account is suspended", "account suspended", "account has been suspended", "mailbox disabled", "mailbox is disabled", "mailbox has been disabled", "mailbox is suspended", "mailbox suspended", "mailbox is inactive", "mailbox inactive", "account is inactive", "account inactive", "account is locked", "account locked", "account has been locked", "temporary locked", "temporarily locked", "mailbox is locked", "mailbox locked", "is deactivated", "has been deactivated", "inactive account", "inactive user", "inactive mailbox", "disabled recipient", "disabled mailbox", "disabled account", "user disabled", "user is disabled", "user suspended", "recipient suspended", "address is suspended", "not active", "no longer active", "has been frozen", "is frozen", "account expired", "account has expired", "mailbox expired", "user account is expired", "account is unavailable", "mailbox unavailable due to", "is on hold", "(s)account is disabled", "due to inactivity", "for inactivity", "user is suspended", "recipient is suspended", "account is not active", "mailbox is not active", "temporarily disabled", "has been disabled", "is inactive"}, Without: []string{"mta-sts", "tls", "inactive and", "delivery temporarily suspended"}},
	{ID: "mailbox-moved", Reason: ReasonHasMoved, Any: []string{"has moved", "mailbox has moved", "no longer on server", "address has changed", "moved to", "no forwarding address", "new address is", "please use his new address", "changed his address"}},
	{ID: "null-mx", Reason: ReasonNotAccept, Any: []string{"null mx", "does not accept mail", "doesn't accept mail", "not accepting mail", "no mx record", "no mx found", "no mx for", "mx or srv record indicated no smtp service", "couldn't find a mail exchanger", "could not find a mail exchanger", "no mail exchanger", "no smtp service", "not accepting network messages", "malformed or unexpected name server reply"}},
	// Postfix adds "try again" when the lookup failed for now.
	{ID: "dns-temporary", Reason: ReasonNetworkError, Any: []string{"host not found, try again", "temporary failure in name resolution", "name server timeout", "dns temporary failure", "temporary dns failure", "lookup timed out"}},
	{ID: "host-unknown", Reason: ReasonHostUnknown, IfPhase: map[string]string{PhaseMail: ReasonRejected, PhaseHelo: ReasonBlocked}, Any: []string{"host unknown", "unknown host", "host not found", "host or domain name not found", "domain not found", "domain name not found", "no such domain", "domain does not exist", "domain doesn't exist", "domain unknown", "unknown domain", "invalid domain", "illegal host/domain", "name or service not known", "nxdomain", "name service error", "unrouteable mail domain", "unroutable domain", "domain is not reachable", "domain may not exist", "no route for domain", "bad destination system", "domain isn't in my list of allowed rcpthosts", "not in my list of allowed rcpthosts", "domain is not hosted", "domain not hosted", "not hosted here", "no such host", "could not resolve domain", "no valid recipients were found for this message"}, Without: []string{"sender domain", "from: domain"}},
	{ID: "user-unknown", Reason: ReasonUserUnknown, IfPhase: map[string]string{PhaseData: ReasonFiltered, PhaseMail: ReasonRejected, PhaseHelo: ReasonBlocked}, Any: []string{"user not known", "not a local address", "badrcptto", "validrcptto", "is not an active address", "non-existent user", "nonexistent user", "non existent user", "unknown e-mail address", "unknown email address", "utilisateur inconnu", "nessun utente", "no existe ese usuario", "no existe dicha persona", "no mail box available", "no mailbox by that name", "no mailbox here by that name", "there is no one at this address", "recipient not ok", "recipient is not local", "recipient is not accepted", "address not present", "not present in directory", "no such address here", "email name is not found", "> not found", "was not found in", "destination addresses were unknown", "destination server rejected recipients", "user missing home directory", "unknown virtual user", "can't accept user", "adresse nicht gefunden", "envelope recipient has been denied", "mailbox invalid", "mailbox not present", "wrong or no longer valid", "does not exist at the organization", "no such account", "unknown local user", "unknown user account", "unknown alias", "invalid alias", "no such alias", "not a known recipient", "nicht bekannt", "unbekannt", "inexistant", "inexistente", "non esiste", "user unknown", "unknown user", "user not found", "no such user", "no such mailbox", "no such recipient", "no such account", "no such address", "no such local user", "unknown recipient", "recipient unknown", "unknown address", "address unknown", "unknown local part", "unknown or illegal alias", "unknown mailbox", "mailbox unknown", "mailbox not found", "mailbox does not exist", "mailbox doesn't exist", "mailbox is unavailable", "mailbox unavailable", "mailbox not available", "mailbox name not allowed", "no mailbox", "invalid mailbox", "invalid recipient", "recipient invalid", "invalid address", "address invalid", "invalid user", "user invalid", "user does not exist", "user doesn't exist", "user doesn't have", "user does not have", "recipient does not exist", "recipient doesn't exist", "recipient not found", "recipient address rejected: undeliverable address", "address does not exist", "address doesn't exist", "address not found", "address couldn't be found", "address could not be found", "account does not exist", "account doesn't exist", "does not have an account", "doesn't have an account", "not a valid mailbox", "not a valid recipient", "not a valid user", "is not a known user", "is not a valid", "not our customer", "no valid recipients", "bad destination mailbox", "bad recipient", "destination address rejected", "unrouteable address", "unroutable address", "undeliverable address", "not listed in domino directory", "not listed in public name", "user unknown in", "mailbox unavailable", "no mail box", "no account by that name", "this address no longer accepts mail", "no longer accepts mail", "addressee unknown", "name not recognized", "recipient rejected", "user not exist", "user not local", "not a registered user", "is not registered", "unknown or invalid", "no such person", "this account does not exist", "invalid email address", "email address does not exist", "email account does not exist", "the email account that you tried to reach does not exist", "requested action not taken: mailbox unavailable", "recipient address rejected: user", "rejected: no such", "user_unknown", "no such", "does not exist", "recipnotfound"}, Without: []string{"domain does not exist", "host does not exist", "sender address", "sender domain", "domain not found", "no such domain", "does not exist e2110", "from: domain", "sender's", "envelope sender", "group you tried", "no such file", "no such host", "procmail", "directory"}},

	// ---- 6. The recipient's domain --------------------------------------

	// ---- 7. The message --------------------------------------------------
	{ID: "virus", Reason: ReasonVirusDetected, Any: []string{"virus", "malware", "infected", "trojan", "worm found", "phishing url", "malicious", "clamav", "ransomware"}, Without: []string{"anti-virus", "antivirus"}},
	{ID: "content-rejected", Reason: ReasonSpamDetected, IfStatus: map[string]string{"6": ReasonContentError}, Any: []string{"message content rejected", "content rejected"}},
	{ID: "spam-content", Reason: ReasonSpamDetected, Any: []string{" - spam", "block for spam", "no spam please", "detected as spam", "classified as spam", "probability of spam", "mail content denied", "may consider spam", "probable spam", "bulk.advertising", "banned content", "rejecting mail content", "spam-like", "spam complaints", "unacceptable content", "recurrent pattern", "reject, id=", "bulk e-mail", "spam", "junk mail", " ube ", " ube,", "(ube)", "unsolicited", "bulk mail", "bulk email", "content rejected", "message content rejected", "content filter", "contentfilter", "content-filter", "scored as", "spam score", "spamassassin", "score too high", "high score", "suspicious", "unwanted", "looks like spam", "classified as", "filtered as", "not accepted because of its content", "because of its content", "detected as", "detected by", "appears to be", "spam detected", "rejected by filter"}, Without: []string{"spammer", "for spamming", "spam source", "not spam", "antispam policy", "antispam policies", "anti-spam policy", "anti-spam policies"}},
	{ID: "exceed-limit", Reason: ReasonExceedLimit, Any: []string{"exceeds administrative limit", "exceeds the administrative limit", "exceeded administrative limit", "length exceeds administrative limit", "administrative limit"}},
	{ID: "too-big", Reason: ReasonMesgTooBig, IfStatus: map[string]string{"2.3": ReasonExceedLimit}, Any: []string{"message too big", "message too large", "message is too big", "message is too large", "message size exceeds", "message size limit", "size limit", "exceeds size", "exceeds maximum size", "exceeded maximum size", "exceeds the maximum size", "maximum message size", "maximum size", "too large", "too big", "mail size", "message length exceeds", "line limit exceeded", "line too long", "size exceeds", "exceeded the size", "exceeds the size", "message size", "size of message", "message exceeds", "data size", "size error"}, Without: []string{"header"}},
	{ID: "not-rfc", Reason: ReasonNotCompliantRFC, Any: []string{"rfc 5322", "rfc5322", "rfc 2822", "rfc2822", "rfc 822", "rfc822", "rfc 5321", "rfc5321", "rfc compliant", "rfc-compliant", "not compliant with rfc", "non-compliant", "noncompliant", "duplicate header", "multiple from", "missing from", "no from", "missing date", "missing message-id", "invalid message-id", "missing header", "malformed header", "invalid header", "syntax of the header", "bare lf", "bare cr", "bare line feed"}},
	// A refused attachment or file type is the receiver's policy about
	// content (Sisimai: policyviolation, "an illegal attachment"; Gmail
	// "illegal attachment", Exchange attachment filtering), not a malformed
	// message.
	{ID: "attachment-policy", Reason: ReasonPolicyViolation, Any: []string{"attachment", "attachments", "file type", "filetype", "file extension", "executable"}},
	{ID: "content-error", Reason: ReasonContentError, Any: []string{"content error", "header too large", "headers too large", "header size", "too many headers", "header is too long", "headers exceed", "8-bit data", "8bit data", "improper use of 8-bit", "bad header", "invalid content", "invalid characters", "illegal character", "content not accepted", "media not supported", "conversion failed", "conversion required", "charset", " mime ", "mime type", "encoding", "message is malformed", "malformed message", "corrupt message", "message format", "message content not available", "too many related errors", "depth exceeded"}},

	// ---- 8. The sender ---------------------------------------------------
	{ID: "sender-rejected", Reason: ReasonRejected, Any: []string{"access denied (sender blacklisted)", "administrative prohibition", "batv", "backscatter", "bogus mail from", "bouncedeny", "valid-address-filter", "empty envelope sender", "envelope blocked", "no third-party dsns", "fully qualified email address required", "mail from not owned by user", "null sender is not allowed", "returned mail not accepted here", "sender email address rejected", "sender not pre-approved", "sender domain is empty", "spam reporting address", "empty email address", "this server does not accept mail from", "unsigned dsn", "not allowed to post to this mailing list", "your access to submit messages", "sender isn't on the recipient's list", "sender address rejected", "sender rejected", "sender denied", "sender blocked", "sender is blocked", "sender not allowed", "sender address is not allowed", "sender is not allowed", "sender refused", "sender verify failed", "sender verification", "sender address verification", "could not verify sender", "sender was rejected", "sender domain", "sender's domain", "from domain", "envelope sender", "unroutable sender", "unrouteable sender", "sender address", "bounce address", "null sender", "empty sender", "invalid sender", "sender invalid", "unknown sender", "sender unknown", "bad sender", "rejected sender", "domain of sender", "sender's address", "purported responsible address", "address that has been blacklisted", "address is on a blacklist", "not a member of", "not allowed to post", "permission to post", "members only", "only members", "moderated", "list is closed", "closed list", "does not exist e2110", "from: domain", "your address", "your email address", "your domain", "originator", "you are not allowed to send", "you're not allowed to send", "not authorized to send to", "not allowed to send", "send mail to yourself", "send e-mail to yourself", "message from yourself", "redundant"}},

	// ---- 9. Policy and security ------------------------------------------
	{ID: "tls-required", Reason: ReasonFailedSTARTTLS, Any: []string{"certificate not verified", "certificate verification", "server certificate", "untrusted issuer", "tls is required, but", "tls handshake failure", "handshake failure", "starttls", "must use tls", "tls required", "requires tls", "require tls", "requiretls", "encryption required", "encryption needed", "tls is required", "tls connection required", "tls negotiation failed", "tls handshake", "ssl handshake", "certificate verification failed", "cannot start tls", "tls failure"}, Without: []string{"smtp auth", "login", "password"}},
	{ID: "policy", Reason: ReasonPolicyViolation, Any: []string{"because the recipient is not accepting mail with", "members-only list", "closed mailing list", "email rejected due to security policies", "header are not accepted", "organizational settings", "message given low priority", "organization policy", "mass mailer", "captcha", "protocol violation", "policy violation", "violates", "violation of", "against our policy", "against policy", "local policy", "policy reasons", "policy rejection", "rejected by policy", "denied by policy", "by policy", "due to policy", "our policy", "our policies", "mail policy", "content policy", "antispam policy", "anti-spam policy", "acceptable use", " aup ", "policy restrictions", "prohibited", "not permitted", "is forbidden", "forbidden", "header error", "restricted", "policy"}},
	// Postfix check_client_access REJECT: the client (our IP) is refused.
	{ID: "client-access-denied", Reason: ReasonBlocked, Any: []string{"client host rejected: access denied"}},
	{ID: "access-denied", Reason: ReasonSecurityError, IfPhase: map[string]string{PhaseMail: ReasonRejected}, Any: []string{"access denied"}},
	{ID: "auth-required", Reason: ReasonSecurityError, Any: []string{"account not subscribed to ses", "authentication credentials invalid", "authentication failure", "authentication failed", "authentication turned on in your email client", "insecure mail relay", "you don't authenticate", "is a dead domain", "not authorized to perform ses:", "authentication required", "authentication is required", "auth required", "must authenticate", "smtp auth", "smtp authentication", "please authenticate", "not authenticated", "unauthenticated senders", "authentication failed", "authentication credentials", "invalid credentials", "bad credentials", "password", "login", "log in", "certificate", "cryptographic", "encryption", "security", "delivery not authorized", "not authorized", "unauthorized", "authorization", "permission denied", "no permission", "insufficient permission", "failed to delivery"}},

	// ---- 10. Transport and remote system ---------------------------------
	// Remote-system faults that would otherwise read as timeouts or loops.
	{ID: "system-specific", Reason: ReasonSystemError, Any: []string{"timeout waiting for input", "local error in processing", "queue file write error", "local configuration error", "mail system configuration error", "server configuration error", "system config error", "temporary local problem", "interrupted system call", "internal error reading data", "can't create user output file", "aliasing/forwarding loop broken", "encountered an error while being processed", "no mdb", "service currently unavailable", "transaction failed "}},
	// A refusal at connection or greeting time (Postfix "refused to talk to
	// me", qmail "my name was rejected", Exim "after initial connection")
	// whose text names no better reason is a block of the client.
	{ID: "greeting-refused", Reason: ReasonBlocked, Any: []string{"service not available, closing transmission channel", "refused to talk to me", "my name was rejected", "after initial connection", "in reply to ehlo", "in reply to helo", "after ehlo", "after helo", "during greeting", "in the banner", "smtp greeting"}},
	// Timeouts are reported as an expiry (the message waited out its retries).
	{ID: "timeout", Reason: ReasonExpired, Any: []string{"timed out", "timeout", "time out", "winsock error code: 10060", "host not reachable"}},
	{ID: "network", Reason: ReasonNetworkError, Any: []string{"dns records for the destination computer could not be found", "host name lookup failure", "forwarding loop", "malformed name server reply", "message looping", "unable to resolve route", "all relevant mx records point to non-existent hosts", "connection refused", "connection reset", "connection closed", "connection dropped", "lost connection", "connection lost", "no route to host", "network is unreachable", "host is unreachable", "unreachable", "could not connect", "couldn't connect", "can't connect", "cannot connect", "unable to connect", "failed to connect", "wasn't able to establish", "unable to establish", "could not establish", "connect to ", "connection failure", "connection error", "network error", "dns error", "dns failure", "dns lookup", "lookup failure", "name server", "nameserver", "temporary lookup failure", "servfail", "too many hops", "hop count", "mail loop", "mailloop", "loop detected", "loops back", "loop back", "routing loop", "socket error", "broken pipe", "resolver"}},
	{ID: "system-full", Reason: ReasonSystemFull, Any: []string{"insufficient system storage", "insufficient system resources", "system storage", "disk full", "disk is full", "out of disk", "no space left on device", "file system full", "filesystem full", "not enough disk", "mail system full", "queue full", "queue is full", "server is full", "system full", "congested", "congestion"}},
	{ID: "mailer-error", Reason: ReasonMailerError, Any: []string{"mailer error", "mailer-daemon error", "pipe to |", "|/", "procmail", "|ifs", "x-unix", "command died with status", "command output", "exit code", "exited with", "exit status", "unknown mailer", "mailer failed", "local delivery failed", "delivery to pipe", "couldn't create", "lock failure", "sieve", "maildrop", "operating system error"}},
	{ID: "directory-error", Reason: ReasonSystemError, Any: []string{"ldap", "directory server", "directory lookup"}},
	{ID: "expired-queue", Reason: ReasonExpired, Any: []string{"delivery expired", "failed to deliver to domain", "giving up on", "failing for a long time", "has not been collected after", "sitting in queue", "retry time not reached", "server did not respond", "after multiple retries", "within the allowed queue period", "could not be delivered for more than", "expired", "retry timeout exceeded", "retry time exceeded", "delivery time expired", "too long in queue", "been in the queue too long", "in the queue too long", "message timed out", "could not deliver for", "could not be delivered for", "was not delivered within", "not delivered within", "giving up", "gave up", "envelope expired", "message will be deleted from queue", "delivery period expired", "retry period", "max delivery time", "maximum delivery time", "undeliverable for", "has been delayed", "delivery to the following recipient has been delayed", "will be retried", "still undelivered", "could not find a gateway", "delivery attempts will continue", "deferred"}, Without: []string{"operating system error", "user unknown", "mailbox full"}},
	{ID: "system-error", Reason: ReasonSystemError, Any: []string{"system error", "server error", "write error", "queue file", "internal error", "internal server error", "system problem", "local error", "temporary failure", "temporary error", "temporarily unavailable", "temporary problem", "service unavailable", "service not available", "service is unavailable", "service temporarily", "server busy", "system busy", "too busy", "server too busy", "try again", "try later", "please retry", "resources temporarily", "configuration error", "misconfigured", "not configured", "system incorrectly", "database error", "storage error", "i/o error", "processing error", "error processing", "transaction failed", "transient", "unexpected error", "unknown error", "not available", "unavailable", "out of memory"}},
	{ID: "syntax", Reason: ReasonSyntaxError, Any: []string{"syntax error", "protocol error", "command unrecognized", "unrecognized command", "command not recognized", "unknown command", "bad sequence", "command not implemented", "not implemented", "invalid command", "need rcpt", "need mail", "send hello first", "helo first", "ehlo first", "mail first", "rcpt first", "parameter", "invalid argument", "invalid arguments", "line too long"}},

	// ---- 11. Generic refusals --------------------------------------------
	{ID: "on-hold", Reason: ReasonOnHold, Any: []string{"on hold", "onhold", "quarantine", "held for", "pending"}},
	// A bare "Recipient address rejected" (Postfix smtpd) is about the recipient.
	{ID: "recipient-rejected", IfPhase: map[string]string{PhaseData: ReasonFiltered}, Reason: ReasonUserUnknown, Any: []string{"recipient address rejected", "recipient rejected", "rcpt rejected"}},
	// Generic words about the client IP: a block.
	{ID: "client-ip-refused", Reason: ReasonBlocked, Any: []string{"your ip", "sending ip", "connecting ip", "client ip", "ip address of your", "from your ip", "client host rejected", "ip range"}},
	{ID: "generic-blocked", Reason: ReasonBlocked, Any: []string{"blocked", "block", "banned", "ban ", "refused to talk", "not welcome", "go away", "rejected due to", "refused", "denied", "reject", "not allowed", "not accepted"}},
	// A notice that says only that the message was not delivered, with no
	// cause and no code that names one (Exchange "Did not reach the
	// following recipient(s)", "Delivery has failed to these recipients";
	// "could not be delivered"; "undeliverable"): onhold, Sisimai's reason
	// for a bounce with too little detail to judge.
	{ID: "no-cause-given", Reason: ReasonOnHold, OnlyWithoutCodes: true, Any: []string{"did not reach the following recipient", "delivery has failed to these recipients", "could not be delivered to", "couldn't be delivered to", "was not delivered to", "wasn't delivered to", "message delivery failed", "delivery failed", "undeliverable", "undelivered mail", "unable to deliver"}},
}

// SignatureRule names the blocklist or provider error a text cites; the
// first rule of Signatures whose Any (and With, when set) patterns occur
// wins. "{status}" in Signature is replaced by the enhanced status code (and
// "-{status}" dropped when there is none).
type SignatureRule struct {
	Signature string
	Any       []string
	With      []string
}

// Signatures: blocklists first (the most actionable), then provider error
// codes, then the provider alone.
var Signatures = []SignatureRule{
	{Signature: "spamhaus", Any: []string{"spamhaus"}},
	{Signature: "barracuda", Any: []string{"barracuda"}},
	{Signature: "spamcop", Any: []string{"spamcop"}},
	{Signature: "talos", Any: []string{"talosintelligence", "senderbase", "ironport", "sending mta's poor reputation"}},
	{Signature: "sorbs", Any: []string{"sorbs"}},
	{Signature: "uceprotect", Any: []string{"uceprotect"}},
	{Signature: "abuseat-cbl", Any: []string{"abuseat", "cbl.abuse"}},
	{Signature: "proofpoint", Any: []string{"proofpoint", "pphosted"}},
	{Signature: "cloudmark", Any: []string{"cloudmark"}},
	{Signature: "mailspike", Any: []string{"mailspike"}},
	{Signature: "psbl", Any: []string{"psbl"}},
	{Signature: "invaluement", Any: []string{"invaluement"}},
	{Signature: "abusix", Any: []string{"abusix"}},
	{Signature: "trendmicro", Any: []string{"mail-abuse.com", "trendmicro", "trend micro"}},
	{Signature: "manitu", Any: []string{"manitu"}},
	{Signature: "uribl", Any: []string{"uribl"}},
	{Signature: "surbl", Any: []string{"surbl"}},
	{Signature: "mimecast", Any: []string{"mimecast"}},
	{Signature: "messagelabs", Any: []string{"messagelabs"}},
	{Signature: "outlook-S3140", Any: []string{"s3140"}},
	{Signature: "outlook-S3150", Any: []string{"s3150"}},
	{Signature: "outlook-S3113", Any: []string{"(s3113)"}},
	{Signature: "outlook-S3114", Any: []string{"(s3114)"}},
	{Signature: "outlook-S3115", Any: []string{"(s3115)"}},
	{Signature: "outlook-S775", Any: []string{"(s775)"}},
	{Signature: "outlook-RP-001", Any: []string{"rp-001"}},
	{Signature: "outlook-RP-002", Any: []string{"rp-002"}},
	{Signature: "outlook-RP-003", Any: []string{"rp-003"}},
	{Signature: "outlook-SC-001", Any: []string{"sc-001"}},
	{Signature: "outlook-SC-002", Any: []string{"sc-002"}},
	{Signature: "outlook-SC-003", Any: []string{"sc-003"}},
	{Signature: "outlook-SC-004", Any: []string{"sc-004"}},
	{Signature: "outlook-DY-001", Any: []string{"dy-001"}},
	{Signature: "outlook-DY-002", Any: []string{"dy-002"}},
	{Signature: "outlook-OU-001", Any: []string{"ou-001"}},
	{Signature: "outlook-OU-002", Any: []string{"ou-002"}},
	{Signature: "yahoo-TSS04", Any: []string{"[tss04]"}},
	{Signature: "yahoo-TSS09", Any: []string{"[tss09]"}},
	{Signature: "yahoo-TSS11", Any: []string{"[tss11]"}},
	{Signature: "yahoo-TSS12", Any: []string{"[tss12]"}},
	{Signature: "yahoo-BL21", Any: []string{"[bl21]"}},
	{Signature: "yahoo-BL22", Any: []string{"[bl22]"}},
	{Signature: "yahoo-BL23", Any: []string{"[bl23]"}},
	{Signature: "yahoo-PH01", Any: []string{"[ph01]"}},
	{Signature: "apple-CS01", Any: []string{"[cs01]"}},
	{Signature: "apple-HM08", Any: []string{"[hm08]"}},
	{Signature: "orange-OFR", Any: []string{"ofr_", "ofr0"}},
	{Signature: "cox-AUP", Any: []string{"aup#"}},
	{Signature: "godaddy-IB", Any: []string{" ib0", " ib1", " ib2", " ib4", " ib5", " ib6", " ib7"}, With: []string{"secureserver", "x.co/", "godaddy"}},
	{Signature: "gmail-{status}", Any: []string{"gsmtp", "support.google.com", "gmail", "google.com/mail", ".google.com"}},
	{Signature: "outlook-{status}", Any: []string{"outlook.com", "postmaster.live.com", "hotmail", "office365", "protection.outlook", "mail.live.com", "sender.office.com", "exchangelabs", "eop-"}},
	{Signature: "yahoo-{status}", Any: []string{"yahoo"}},
	{Signature: "apple-{status}", Any: []string{"icloud", "me.com", "support.apple.com"}},
}

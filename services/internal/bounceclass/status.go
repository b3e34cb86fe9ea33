package bounceclass

import "strings"

// statusDetail maps enhanced status codes "subject.detail" (RFC 3463, the
// IANA registry of RFC 5248) to a reason, for either class (4 or 5). Codes
// not listed fall back to statusSubject.
var statusDetail = map[string]string{
	"1.0":  ReasonUserUnknown,    // Other address status
	"1.1":  ReasonUserUnknown,    // Bad destination mailbox address
	"1.2":  ReasonHostUnknown,    // Bad destination system address
	"1.3":  ReasonUserUnknown,    // Bad destination mailbox address syntax
	"1.4":  ReasonUserUnknown,    // Destination mailbox address ambiguous
	"1.5":  ReasonDelivered,      // Destination address valid
	"1.6":  ReasonHasMoved,       // Destination mailbox has moved, no forwarding address
	"1.7":  ReasonRejected,       // Bad sender's mailbox address syntax
	"1.8":  ReasonRejected,       // Bad sender's system address
	"1.9":  ReasonSystemError,    // Message relayed to non-compliant mailer (RFC 3886)
	"1.10": ReasonNotAccept,      // Recipient address has null MX (RFC 7505)
	"2.0":  ReasonFiltered,       // Other or undefined mailbox status: the mailbox exists but refused
	"2.1":  ReasonSuspend,        // Mailbox disabled, not accepting messages
	"2.2":  ReasonMailboxFull,    // Mailbox full
	"2.3":  ReasonExceedLimit,    // Message length exceeds administrative limit
	"2.4":  ReasonSystemError,    // Mailing list expansion problem
	"3.0":  ReasonSystemError,    // Other or undefined mail system status
	"3.1":  ReasonSystemFull,     // Mail system full
	"3.2":  ReasonNotAccept,      // System not accepting network messages
	"3.3":  ReasonSystemError,    // System not capable of selected features
	"3.4":  ReasonMesgTooBig,     // Message too big for system
	"3.5":  ReasonSystemError,    // System incorrectly configured
	"4.0":  ReasonNetworkError,   // Other or undefined network or routing status
	"4.1":  ReasonNetworkError,   // No answer from host
	"4.2":  ReasonNetworkError,   // Bad connection
	"4.3":  ReasonSystemError,    // Directory server failure
	"4.4":  ReasonHostUnknown,    // Unable to route
	"4.5":  ReasonSystemFull,     // Mail system congestion
	"4.6":  ReasonNetworkError,   // Routing loop detected
	"4.7":  ReasonExpired,        // Delivery time expired
	"4.8":  ReasonNetworkError,   // Retry on IPv4 (RFC 8553 era registry entry)
	"5.1":  ReasonSyntaxError,    // Invalid command
	"5.2":  ReasonSyntaxError,    // Syntax error
	"5.3":  ReasonTooManyConn,    // Too many recipients
	"5.4":  ReasonSyntaxError,    // Invalid command arguments
	"5.5":  ReasonSystemError,    // Wrong protocol version
	"5.6":  ReasonSyntaxError,    // Authentication exchange line too long (RFC 4954)
	"7.0":  ReasonSecurityError,  // Other or undefined security status
	"7.1":  ReasonSecurityError,  // Delivery not authorized, message refused
	"7.2":  ReasonSecurityError,  // Mailing list expansion prohibited
	"7.3":  ReasonSecurityError,  // Security conversion required but not possible
	"7.4":  ReasonSecurityError,  // Security features not supported
	"7.5":  ReasonSecurityError,  // Cryptographic failure
	"7.6":  ReasonSecurityError,  // Cryptographic algorithm not supported
	"7.7":  ReasonSecurityError,  // Message integrity failure
	"7.8":  ReasonSecurityError,  // Authentication credentials invalid (RFC 4954)
	"7.9":  ReasonSecurityError,  // Authentication mechanism is too weak
	"7.10": ReasonFailedSTARTTLS, // Encryption needed
	"7.11": ReasonSecurityError,  // Encryption required for requested authentication mechanism
	"7.12": ReasonSecurityError,  // A password transition is needed
	"7.13": ReasonSuspend,        // User account disabled (RFC 5248)
	"7.14": ReasonSecurityError,  // Trust relationship required
	"7.15": ReasonSecurityError,  // Priority level is too low (RFC 6710)
	"7.16": ReasonMesgTooBig,     // Message is too big for the specified priority
	"7.17": ReasonHasMoved,       // Mailbox owner has changed (RFC 7293)
	"7.18": ReasonHasMoved,       // Domain owner has changed
	"7.19": ReasonSecurityError,  // RRVS test cannot be completed
	"7.20": ReasonAuthFailure,    // No passing DKIM signature found (RFC 7372)
	"7.21": ReasonAuthFailure,    // No acceptable DKIM signature found
	"7.22": ReasonAuthFailure,    // No valid author-matched DKIM signature found
	"7.23": ReasonAuthFailure,    // SPF validation failed
	"7.24": ReasonAuthFailure,    // SPF validation error
	"7.25": ReasonRequirePTR,     // Reverse DNS validation failed
	"7.26": ReasonAuthFailure,    // Multiple authentication checks failed
	"7.27": ReasonRejected,       // Sender address has null MX (RFC 7505)
	"7.28": ReasonBlocked,        // Mail flood detected (RFC 8651 registry entry)
	"7.29": ReasonAuthFailure,    // ARC validation failure (RFC 8617)
	"7.30": ReasonFailedSTARTTLS, // REQUIRETLS support required (RFC 8689)
}

// statusSubject is the fallback per subject (the middle number) when the
// detail is not in statusDetail, e.g. vendor codes like 5.7.606 or 4.4.316.
// Subjects 0 (undefined) and 5 (protocol) tell too little.
var statusSubject = map[byte]string{
	'1': ReasonUserUnknown,
	'2': ReasonFiltered,
	'3': ReasonSystemError,
	'4': ReasonNetworkError,
	'6': ReasonContentError,
	'7': ReasonSecurityError,
}

// StatusReason returns the reason an enhanced status code alone implies, or
// "" when it implies none (x.0.0, internal or malformed codes).
func StatusReason(status string) string {
	if len(status) < 5 || status[1] != '.' {
		return ""
	}
	switch status[0] {
	case '2':
		return ReasonDelivered
	case '4', '5':
	default:
		return ""
	}
	sd := status[2:]
	i := strings.IndexByte(sd, '.')
	if i < 0 || i == len(sd)-1 {
		return ""
	}
	if r, ok := statusDetail[sd]; ok {
		// Directory routing failures are permanent only for 5.4.4; a 4.4.4 is
		// a routing problem that may pass.
		if r == ReasonHostUnknown && status[0] == '4' && sd == "4.4" {
			return ReasonNetworkError
		}
		return r
	}
	if sd[0] == '0' {
		return ""
	}
	return statusSubject[sd[0]]
}

// replyReason maps a basic SMTP reply code (RFC 5321 section 4.2.3) to a
// reason when its meaning is specific enough; "" otherwise (421, 450, 550,
// 553, 554 are used for everything).
func replyReason(code int) string {
	switch {
	case code >= 200 && code < 300:
		return ReasonDelivered
	}
	switch code {
	case 451:
		return ReasonSystemError // local error in processing
	case 452:
		return ReasonSystemFull // insufficient system storage
	case 500, 501, 502, 503, 504, 555:
		return ReasonSyntaxError // syntax errors, bad sequence, unimplemented parameters
	case 521, 556:
		return ReasonNotAccept // host / domain does not accept mail (RFC 7504)
	case 530, 534, 535, 538:
		return ReasonSecurityError // authentication required / failed (RFC 4954)
	case 551:
		return ReasonHasMoved // user not local; please try <forward-path>
	case 552:
		return ReasonMailboxFull // exceeded storage allocation
	}
	return ""
}

// codeReason decides from the codes alone: the status when it tells
// something, else the reply code, else ReasonUndefined.
func codeReason(code int, status string) string {
	if r := StatusReason(status); r != "" {
		return r
	}
	if r := replyReason(code); r != "" {
		return r
	}
	return ReasonUndefined
}

// statusNarrowing looks the status up in a rule's IfStatus: first by
// "subject.detail", then by "subject".
func statusNarrowing(m map[string]string, status string) string {
	if len(m) == 0 || len(status) < 5 || status[1] != '.' {
		return ""
	}
	sd := status[2:]
	if r, ok := m[sd]; ok {
		return r
	}
	if i := strings.IndexByte(sd, '.'); i > 0 {
		return m[sd[:i]]
	}
	return ""
}

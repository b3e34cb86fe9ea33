package bounceclass

import "strings"

// decisiveStatus lists the enhanced status codes (RFC 3463, the IANA
// registry of RFC 5248; "subject.detail", either class) whose registered
// meaning names one reason so plainly that no wording of the text overrules
// it: a "550 5.2.2 ... unavailable" is a full mailbox, a "4.4.7" an expired
// message whatever network error the text goes on to describe. They decide
// before the text rules. Codes whose use varies between MTAs (x.0.0, x.1.1
// after DATA, x.2.1, x.7.1, ...) are not here: the text decides for them and
// they only fill in when no rule matches (statusDetail). Nor are the
// RFC 7372 details 7.20-7.24: Gmail answers "4.7.23" when the sending IP has
// no PTR record (support.google.com/a/answer/3726730), so the detail alone
// does not tell SPF from reverse DNS, nor are 2.3 and 3.4: Gmail answers
// 5.3.4 for an oversized header and Microsoft 5.2.3 for a message too big
// for one recipient, so the text tells the two size limits apart.
var decisiveStatus = map[string]string{
	"1.6":  ReasonHasMoved,    // Destination mailbox has moved, no forwarding address
	"2.2":  ReasonMailboxFull, // Mailbox full
	"4.7":  ReasonExpired,     // Delivery time expired
	"7.13": ReasonSuspend,     // User account disabled (RFC 5248)
	"7.25": ReasonRequirePTR,  // Reverse DNS validation failed
	"7.26": ReasonAuthFailure, // Multiple authentication checks failed
}

// ProviderCode is a range of enhanced status details one provider uses
// with a meaning it documents, outside the IANA registry (e.g. Microsoft's
// 5.7.606-5.7.649 "banned sending IP").
type ProviderCode struct {
	Provider string
	// Subject is the status subject ("7" for x.7.nnn); From and To bound
	// the detail, inclusive. Both classes (4 and 5) match.
	Subject  string
	From, To int
	Reason   string
	Meaning  string
	Source   string // the provider's page documenting the code
}

// msNDR is Microsoft's list of Exchange Online NDR codes; the ranges below
// have their own pages under it.
const msNDR = "https://learn.microsoft.com/exchange/mail-flow-best-practices/non-delivery-reports-in-exchange-online/non-delivery-reports-in-exchange-online"

// ProviderCodes are the provider status codes the classifier knows, tried
// after decisiveStatus and before the text rules. Only details no RFC
// registers are listed, so a code here cannot be another MTA's standard
// code. (Providers that use registered codes with their own wording, Gmail,
// Yahoo, Apple, Cox, Orange, GoDaddy, Mimecast, Proofpoint, IronPort,
// Barracuda, Spamhaus, are in the first sections of Rules, by the tokens
// and sentences their pages document; see doc.go.)
var ProviderCodes = []ProviderCode{
	{"microsoft", "7", 501, 501, ReasonRejected, "Access denied, spam abuse detected (the sending account)", msNDR},
	{"microsoft", "7", 502, 502, ReasonRejected, "Access denied, banned sender", msNDR},
	{"microsoft", "7", 503, 503, ReasonSuspend, "Access denied, banned recipient", msNDR},
	{"microsoft", "7", 505, 505, ReasonSuspend, "Access denied, banned recipient", msNDR},
	{"microsoft", "7", 506, 506, ReasonBlocked, "Access denied, bad HELO", msNDR},
	{"microsoft", "7", 507, 507, ReasonBlocked, "Access denied, rejected by recipient (the sending IP)", msNDR},
	{"microsoft", "7", 508, 508, ReasonSpeeding, "Access denied, the IP has exceeded permitted limits", msNDR},
	{"microsoft", "7", 509, 509, ReasonAuthFailure, "Access denied, sending domain does not pass DMARC verification", msNDR},
	{"microsoft", "7", 510, 510, ReasonBlocked, "Access denied, the domain does not accept email over IPv6", msNDR},
	{"microsoft", "7", 511, 511, ReasonBlocked, "Access denied, banned sender (IP)", msNDR},
	{"microsoft", "7", 512, 512, ReasonNotCompliantRFC, "Access denied, message must be RFC 5322 section 3.6.2 compliant", msNDR},
	{"microsoft", "7", 513, 513, ReasonBlocked, "Service unavailable, client host blocked using customer block list", msNDR},
	{"microsoft", "7", 515, 515, ReasonAuthFailure, "Access denied, sending domain doesn't meet the required authentication level", msNDR},
	{"microsoft", "7", 606, 649, ReasonBlocked, "Access denied, banned sending IP", "https://learn.microsoft.com/exchange/mail-flow-best-practices/non-delivery-reports-in-exchange-online/fix-error-code-5-7-606-through-5-7-649-in-exchange-online"},
	{"microsoft", "7", 700, 749, ReasonSpeeding, "Access denied, tenant has exceeded threshold", "https://learn.microsoft.com/exchange/mail-flow-best-practices/non-delivery-reports-in-exchange-online/fix-error-code-5-7-700-through-5-7-750"},
	{"microsoft", "7", 750, 750, ReasonBlocked, "Service unavailable, client blocked from sending from unregistered domains", "https://learn.microsoft.com/exchange/mail-flow-best-practices/non-delivery-reports-in-exchange-online/fix-error-code-5-7-700-through-5-7-750"},
}

// statusEvidence returns the reason the enhanced status decides before the
// text rules (decisiveStatus, then ProviderCodes), or "".
func statusEvidence(status string) string {
	if len(status) < 5 || status[1] != '.' || status[0] != '4' && status[0] != '5' {
		return ""
	}
	sd := status[2:]
	if r, ok := decisiveStatus[sd]; ok {
		return r
	}
	subject, detail, ok := strings.Cut(sd, ".")
	if !ok || len(detail) != 3 {
		return ""
	}
	n := 0
	for i := 0; i < len(detail); i++ {
		c := detail[i]
		if c < '0' || c > '9' {
			return ""
		}
		n = n*10 + int(c-'0')
	}
	for i := range ProviderCodes {
		p := &ProviderCodes[i]
		if p.Subject == subject && n >= p.From && n <= p.To {
			return p.Reason
		}
	}
	return ""
}

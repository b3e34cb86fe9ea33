package dsn

import (
	"strings"

	"github.com/mailmon/mailmon/services/internal/bounceclass"
)

// maxContext bounds the text searched for the SMTP command.
const maxContext = 16 << 10

// commandOf returns the SMTP command an error answered, as the common MTAs
// word it (Postfix "in reply to RCPT TO command"; Exim "after end of data",
// "after pipelined RCPT TO"; Sendmail ">>> DATA"; qmail-remote "does not
// like recipient", "sender was rejected", "failed on DATA command", "failed
// after I sent the message"; Yahoo "[RCPT_TO]"): RCPT, MAIL, DATA, HELO, CONN,
// STARTTLS or AUTH, the one named first; "" when none is.
//
// It reads the text once, word by word, keeping the last few words to see
// whether a command word follows a trigger.
func commandOf(s string) string {
	var prev [6]string // the last words, prev[0] the latest
	push := func(w string) {
		copy(prev[1:], prev[:len(prev)-1])
		prev[0] = w
	}
	for i := 0; i < len(s); {
		// The next word: letters, digits, '_', '-', '\'', or a run of '>'.
		c := s[i]
		if c == '>' {
			j := i
			for j < len(s) && s[j] == '>' {
				j++
			}
			if j-i == 3 {
				push(">>>")
			}
			i = j
			continue
		}
		if !isTokenByte(c) {
			if c == '[' {
				// "[RCPT_TO]" as Yahoo writes it.
				if j := strings.IndexByte(s[i:min(len(s), i+12)], ']'); j > 0 {
					switch lowerASCII(s[i+1 : i+j]) {
					case "rcpt_to":
						return "RCPT"
					case "mail_from":
						return "MAIL"
					case "data":
						return "DATA"
					case "ehlo", "helo":
						return "HELO"
					}
				}
			}
			i++
			continue
		}
		j := i
		for j < len(s) && isTokenByte(s[j]) {
			j++
		}
		w := s[i:j]
		i = j
		if len(w) > 12 {
			push("")
			continue
		}
		w = lowerASCII(w)
		if cmd := commandWord(w); cmd != "" && triggered(prev) {
			return cmd
		}
		switch w {
		case "recipient", "sender":
			// "does not like recipient", "didn't like sender" (qmail).
			if prev[0] == "like" && (prev[1] == "not" || prev[1] == "didn't" || prev[1] == "doesn't") {
				if w == "recipient" {
					return "RCPT"
				}
				return "MAIL"
			}
		case "failed":
			if prev[0] == "greeting" {
				return "CONN"
			}
		case "rejected":
			if prev[0] == "was" && prev[1] == "name" || prev[0] == "helo" {
				return "HELO"
			}
			if prev[0] == "was" && prev[1] == "sender" && prev[2] == "but" {
				// qmail-remote: "Connected to X but sender was rejected."
				return "MAIL"
			}
		case "message":
			// qmail-remote: "X failed after I sent the message."
			if prev[0] == "the" && prev[1] == "sent" && prev[2] == "i" && prev[3] == "after" {
				return "DATA"
			}
		}
		push(w)
	}
	return ""
}

func isTokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '\'' || c >= 0x80
}

// commandWord maps a lower-case word to the command it names.
func commandWord(w string) string {
	switch w {
	case "rcpt", "rcpt_to":
		return "RCPT"
	case "mail", "mail_from":
		return "MAIL"
	case "data", "bdat":
		return "DATA"
	case "ehlo", "helo":
		return "HELO"
	case "connect", "connection", "greeting":
		return "CONN"
	case "starttls":
		return "STARTTLS"
	case "auth":
		return "AUTH"
	}
	return ""
}

// triggered reports whether the words before a command word say that an
// error answered it: "in reply to", "after", "response to", "while
// sending", "during", ">>>", "said to", "like our", "SMTP command",
// "following", "for", "failed on", with "the", "end of", "final",
// "initial", "pipelined" or "our" allowed in between.
func triggered(prev [6]string) bool {
	k := 0
	for k < len(prev) {
		switch prev[k] {
		case "the", "final", "initial", "our", "of", "end", "pipelined":
			k++
			continue
		}
		break
	}
	if k >= len(prev) {
		return false
	}
	at := func(n int) string {
		if k+n < len(prev) {
			return prev[k+n]
		}
		return ""
	}
	switch at(0) {
	case "after", "during", ">>>", "following", "for", "smtp":
		return true
	case "on":
		// qmail-remote: "X failed on DATA command."
		return at(1) == "failed"
	case "to":
		return at(1) == "reply" && at(2) == "in" || at(1) == "response" || at(1) == "said"
	case "sending":
		return at(1) == "while"
	case "like":
		return true
	case "command":
		return at(1) == "smtp"
	}
	return false
}

// classify fills Reason, Category, Signature, Rule, Permanent, ReplyCode,
// Status and Command of every failed and delayed recipient, and Reason of
// delivered ones.
func (b *Bounce) classify() {
	for i := range b.Recipients {
		r := &b.Recipients[i]
		switch r.Action {
		case ActionDelivered, ActionRelayed, ActionExpanded:
			r.Reason = bounceclass.ReasonDelivered
			r.Category = bounceclass.CategoryOf(r.Reason)
			continue
		}
		text := r.Diagnostic
		smtpType := r.DiagnosticType == "" || r.DiagnosticType == "smtp" || r.DiagnosticType == "esmtp" || r.DiagnosticType == "text"
		if !smtpType {
			// "X-Unix; 255": a local mailer's exit status, not an SMTP
			// reply code.
			text = strings.TrimLeft(text, "0123456789 ")
		}
		code, status, _ := bounceclass.ParseReply(text)
		if !smtpType {
			code = 0
		}
		if r.ReplyCode == 0 {
			r.ReplyCode = code
		}
		if r.Status == "" || isGenericStatus(r.Status) && status != "" && status[0] == r.Status[0] {
			if status != "" {
				r.Status = status
			}
		}
		if r.Command == "" {
			r.Command = commandOf(r.Diagnostic)
		}
		if r.RemoteMTA == "" {
			r.RemoteMTA = remoteHostOf(r.Diagnostic)
		}
		if r.Command == "" {
			ctx := r.context
			if len(ctx) > maxContext {
				ctx = ctx[:maxContext]
			}
			r.Command = commandOf(ctx)
		}
		phase := phaseOf(r.Command)
		if phase == bounceclass.PhaseData && mailboxStatus(r.Status) {
			// The status says the address itself is bad (RFC 3463 X.1.1
			// and kin): a server that checks recipients only after DATA
			// still refused the address, not the content.
			phase = ""
		}
		res := bounceclass.Classify(bounceclass.Input{Text: text, ReplyCode: r.ReplyCode, Status: r.Status, Phase: phase})
		r.Reason, r.Signature, r.Rule, r.Permanent = res.Reason, res.Signature, res.Rule, res.Permanent

		if r.ReplyCode == 0 {
			r.ReplyCode = res.ReplyCode
		}
		if r.Status == "" {
			r.Status = res.Status
		}
		b.dsnDecision(r, res)
		if v, ok := vendorReason[strings.ToLower(r.vendorCategory)]; ok && v != r.Reason {
			// The reporting MTA classified the failure itself
			// (X-PowerMTA-BounceCategory): it saw the whole session.
			r.Reason, r.Rule = v, "dsn-vendor-category"
		}
		r.Category = bounceclass.CategoryOf(r.Reason)
	}
}

// phaseOf maps the command an error answered (Recipient.Command) to the
// classifier's phase, "" for those the classifier has no phase for
// (STARTTLS, AUTH) and when it is unknown.
func phaseOf(cmd string) string {
	switch cmd {
	case "CONN":
		return bounceclass.PhaseConnect
	case "HELO":
		return bounceclass.PhaseHelo
	case "MAIL":
		return bounceclass.PhaseMail
	case "RCPT":
		return bounceclass.PhaseRcpt
	case "DATA":
		return bounceclass.PhaseData
	}
	return ""
}

// isGenericStatus reports the catch-all enhanced codes ("5.0.0", "4.0.0")
// that a more specific code in the diagnostic improves on.
func isGenericStatus(s string) bool {
	return s == "5.0.0" || s == "4.0.0" || s == "5.0.000" || s == "4.0.000"
}

// dsnDecision applies what the DSN itself says over the text classifier:
// a delayed (or expired) recipient is expired unless its text gives a
// cause that retrying cannot fix; an error at connection or HELO that the
// text does not explain is a block of the sending host.
func (b *Bounce) dsnDecision(r *Recipient, res bounceclass.Result) {
	switch r.Action {
	case actionExpired:
		r.Action = ActionFailed
		r.Reason = bounceclass.ReasonExpired
		return
	case ActionDelayed:
		if !res.Matched || weakForDelay[r.Reason] {
			r.Reason = bounceclass.ReasonExpired
		}
		r.Permanent = false
		return
	}
	switch {
	case r.Reason == bounceclass.ReasonNetworkError && statusSubject(r.Status) == "4.4":
		// A failure reported with a transient network status (RFC 3463
		// X.4.x): the remote host could not be reached, and the MTA gave
		// up retrying when the message's time in the queue ran out (qmail
		// "has been in the queue too long", Postfix's queue lifetime).
		// The delivery time expired (X.4.7).
		r.Reason = bounceclass.ReasonExpired
	}
	if !res.Matched {
		switch {
		case r.Command == "CONN" || r.Command == "HELO":
			r.Reason = bounceclass.ReasonBlocked
		case r.DiagnosticType == "x-unix" || pipeDelivery(r):
			// A local delivery program (procmail, a pipe) failed: RFC 3464's
			// X-Unix diagnostic type, or a recipient delivered through a
			// command (Exim names such an address "pipe to |command";
			// Sendmail and Postfix aliases start it with "|").
			r.Reason = bounceclass.ReasonMailerError
		}
	}
	if r.Reason == bounceclass.ReasonUserUnknown && filteredRule(r) {
		// "User unknown" that did not answer RCPT TO, with no status
		// naming a bad mailbox, comes from a filter after DATA that hides
		// its verdict behind that phrase (common with mobile carriers):
		// the message was filtered, the address may well exist.
		r.Reason = bounceclass.ReasonFiltered
	}
}

// pipeDelivery reports a recipient whose delivery was a command's.
func pipeDelivery(r *Recipient) bool {
	if strings.HasPrefix(r.Recipient, "|") || strings.HasPrefix(r.OriginalRecipient, "|") {
		return true
	}
	ctx := r.context[:min(len(r.context), maxContext)]
	return strings.Contains(ctx, "pipe to |")
}

var filteredRule = func(r *Recipient) bool {
	if r.Command == "RCPT" || mailboxStatus(r.Status) || strings.HasPrefix(r.Status[min(len(r.Status), 1):], ".5.") {
		return false
	}
	return r.Command == "DATA" || r.Status != ""
}

// statusSubject returns the class and subject of an enhanced status code
// ("5.1" of "5.1.1"), "" when s is not one.
func statusSubject(s string) string {
	if len(s) < 5 || s[1] != '.' || s[3] != '.' {
		return ""
	}
	return s[:3]
}

// mailboxStatus reports the enhanced codes that say the address itself is
// bad (RFC 3463 X.1.0, X.1.1, X.1.3: other address status, bad destination
// mailbox, bad mailbox syntax).
func mailboxStatus(s string) bool {
	if len(s) < 5 {
		return false
	}
	switch s[1:] {
	case ".1.0", ".1.1", ".1.3", ".1.10":
		return true
	}
	return false
}

// weakForDelay are reasons that, for a delayed recipient, describe the
// retrying rather than a cause: the recipient is reported as expired.
var weakForDelay = map[string]bool{
	bounceclass.ReasonUndefined:   true,
	bounceclass.ReasonOnHold:      true,
	bounceclass.ReasonExpired:     true,
	bounceclass.ReasonSystemError: true,
	bounceclass.ReasonHostUnknown: true,
	bounceclass.ReasonTooManyConn: true,
	bounceclass.ReasonSpeeding:    true,
}

// vendorReason maps the bounce categories reporting MTAs put in their DSNs
// (PowerMTA's X-PowerMTA-BounceCategory) to reasons.
var vendorReason = map[string]string{
	"bad-mailbox":         bounceclass.ReasonUserUnknown,
	"inactive-mailbox":    bounceclass.ReasonSuspend,
	"quota-issues":        bounceclass.ReasonMailboxFull,
	"bad-domain":          bounceclass.ReasonHostUnknown,
	"no-answer-from-host": bounceclass.ReasonNetworkError,
	"bad-connection":      bounceclass.ReasonNetworkError,
	"routing-errors":      bounceclass.ReasonSystemError,
	"protocol-errors":     bounceclass.ReasonSystemError,
	"relaying-issues":     bounceclass.ReasonNoRelaying,
	"spam-related":        bounceclass.ReasonSpamDetected,
	"virus-related":       bounceclass.ReasonVirusDetected,
	"content-related":     bounceclass.ReasonContentError,
	"policy-related":      bounceclass.ReasonPolicyViolation,
	"invalid-sender":      bounceclass.ReasonRejected,
	"message-expired":     bounceclass.ReasonExpired,
	"bad-configuration":   bounceclass.ReasonSystemError,
}

// remotePrefixes come right before the remote host in bounce texts
// (Postfix "host mx[192.0.2.1] said", Exim "host mx [192.0.2.1]:",
// Sendmail "while talking to mx.:", Exchange "Remote Server at mx (ip)").
var remotePrefixes = []string{"host ", "while talking to ", "remote server at ", "server at ", "talking to "}

// remoteHostOf returns the remote host a bounce text names, "" when none.
func remoteHostOf(s string) string {
	lower := lowerASCII(s)
	for _, p := range remotePrefixes {
		for from := 0; from < len(lower); {
			i := strings.Index(lower[from:], p)
			if i < 0 {
				break
			}
			i += from + len(p)
			from = i
			if h := hostToken(s[i:]); h != "" {
				return h
			}
		}
	}
	// qmail: "192.0.2.1 does not like recipient."
	if j := strings.Index(lower, " does not like "); j > 0 {
		if h := hostToken(s[strings.LastIndexByte(s[:j], ' ')+1 : j]); h != "" {
			return h
		}
	}
	return ""
}

// hostToken reads a host name or IP address at the start of s: letters,
// digits, dots and hyphens (with at least one dot), or an IPv6 literal;
// a following "[ip]" or "(ip)" is not part of it.
func hostToken(s string) string {
	j := 0
	for j < len(s) {
		c := s[j]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' && j > 0 {
			j++
			continue
		}
		break
	}
	h := strings.TrimRight(s[:j], ".:-")
	if len(h) < 4 || !strings.Contains(h, ".") && strings.Count(h, ":") < 2 {
		return ""
	}
	return strings.ToLower(h)
}

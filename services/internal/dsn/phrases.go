package dsn

import "strings"

// Phrase lists stand in for case-insensitive regular expressions on the
// hot paths: the text is lower-cased once (ASCII only, so byte offsets
// stay the same) and searched with strings.Contains, which is many times
// faster than a (?i) alternation over kilobytes of text.

// lowerASCII lower-cases A-Z only, keeping every other byte (and so the
// length and the offsets) as it is.
func lowerASCII(s string) string {
	i := 0
	for ; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			break
		}
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if c := b[i]; c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

// lowerInto writes s lower-cased (ASCII) into buf, which must be long
// enough, and returns the written bytes. Looking a string(result) up in a
// map or switching on it does not allocate.
func lowerInto(buf []byte, s string) []byte {
	b := buf[:len(s)]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 32
		}
		b[i] = c
	}
	return b
}

// anyPhrase reports whether lower contains one of the phrases.
func anyPhrase(lower string, phrases []string) bool {
	for _, p := range phrases {
		if strings.Contains(lower, p) {
			return true
		}
	}
	return false
}

// bounceBodyPhrases are sentences bounce texts use (lower case).
var bounceBodyPhrases = []string{
	"could not be delivered", "couldn't be delivered", "cannot be delivered", "can't be delivered",
	"was not delivered", "wasn't delivered", "not been delivered", "not be delivered",
	"delivery to the following recipient", "delivery has failed", "delivery failed", "delivery of your message",
	"delivery status notification", "delivery problem", "delivery error",
	"following address(es) failed", "following addresses failed", "following address failed",
	"following recipient", "following addresses had", "addresses had permanent", "had permanent fatal",
	"unable to deliver", "undeliverable", "permanent error", "permanent fatal", "permanently",
	"permanent failure", "wasn't able to deliver", "was unable to deliver", "did not reach",
	"not reach the following", "failed to deliver", "returned to sender", "returned to the sender",
	"mail delivery failed", "mail delivery system", "mail delivery subsystem",
	"message could not", "message cannot", "message can not", "message was not", "message wasn't",
	"rejected your message", "rejected the message", "rejected your mail",
	"message was rejected", "mail was rejected", "email was rejected", "message has been rejected",
	"message was returned", "has been delayed", "have been delayed", "delivery delayed", "delivery is delayed",
	"will be retried", "will retry", "will continue to retry", "will be retrying",
	"user unknown", "unknown user", "mailbox unknown", "recipient unknown", "address unknown",
	"not found", "does not exist", "doesn't exist", "mailbox is full", "mailbox full", "quota",
	"no such user", "no such mailbox", "no such address", "giving up", "i'm afraid", "mailer-daemon",
	"mail system at host", "reason:", "reasons:", "error:", "errors:", "diagnostic", "smtp error",
	"remote host said", "said:", "are not a member of", "are not member of", "not delivered",
	"送信できませんでした", "届きませんでした", "配信でき", "宛先不明", "エラー",
}

// stillTryingPhrases say that delivery is still being tried (a delay
// warning, not a final failure).
var stillTryingPhrases = []string{
	"will be retried", "will continue to retry", "will continue trying", "will retry",
	"will keep trying", "still trying", "warning message only", "has been delayed",
	"have been delayed", "delivery is delayed", "delivery delayed", "delivery has been delayed",
	"is delayed", "been delayed", "message delayed",
}

// errorWordPhrases are words bounces use for errors, in English and the
// other languages seen most (lower case).
var errorWordPhrases = []string{
	"said:", "error", "fail", "reject", "refus", "denied", "unknown", "no such", "invalid",
	"not found", "not exist", "not recogni", "not listed", "not allowed", "not accepted", "not permitted",
	"not available", "not known", "not reachable", "not deliver", "not responding", "not valid",
	"not registered", "not a member", "does not", "doesn't", "full", "quota", "exceed", "block",
	"timed out", "time out", "timeout", "expired", "unable", "cannot", "can't", "couldn't", "could not",
	"unavailable", "spam", "policy", "disabled", "inactive", "suspend", "deferred", "retry", "retried",
	"too many", "too big", "too large", "too long", "giving up", "undeliver", "unrout", "unreachable",
	"blacklist", "blocklist", "black list", "overquota", "over quota", "insufficient", "loop", "virus",
	"forbidden", "unauthori", "relay", "problem", "temporar", "permanent", "delayed", "bounce",
	"returned", "in use", "moved", "closed", "ungültig", "unbekannt", "inconnu", "introuvable",
	"desconocido", "inexistente", "sconosciuto", "エラー", "存在しません", "見つかりません", "ありません",
	"できません", "拒否", "不明", "容量", "超過",
}

// helpLinePhrases mark lines that name help addresses, not recipients.
var helpLinePhrases = []string{
	"contact", "assistance", "question", "helpdesk", "help desk", "support", "administrator",
	"postmaster", "abuse", "information", "unsubscribe", "visit", "please send", "send mail to", "reply to",
}

// boilerplatePhrases are the stock openings of bounce texts, which say
// that delivery failed but not why (lower case, matched at the start).
var boilerplatePhrases = []string{
	"this is the mail system", "this message was created automatically",
	"a message that you sent could not be delivered", "i'm sorry to have to inform you",
	"i'm afraid i wasn't able", "your message did not reach", "delivery to the following recipient",
	"delivery has failed to these recipients", "the following address(es) failed",
	"the following addresses failed", "the following address failed", "this is an automatically generated",
	"the original message was received", "sorry, we were unable to deliver", "hi. this is the",
	"unable to deliver your message to the following", "unable to deliver message to the following",
	"could not be delivered to one or more", "the following recipient", "your message could not be delivered",
	"this is a permanent error", "the mail system", "message not delivered", "** message not delivered",
	"** address not found",
}

// hasCode reports whether s has an SMTP error reply code (4xx or 5xx
// followed by a space or dash) or an enhanced status (4.x.x, 5.x.x), each
// standing as its own word. Success codes say nothing about an error.
func hasCode(s string) bool {
	for i := 0; i+3 < len(s); i++ {
		c := s[i]
		if c != '4' && c != '5' {
			continue
		}
		if i > 0 && isWordByte(s[i-1]) {
			continue
		}
		if isDigit(s[i+1]) && isDigit(s[i+2]) && (s[i+3] == ' ' || s[i+3] == '-') {
			return true
		}
		if s[i+1] == '.' && findStatus(s[i:min(len(s), i+10)]) != "" && strings.HasPrefix(s[i:], findStatus(s[i:min(len(s), i+10)])) {
			st := findStatus(s[i:min(len(s), i+10)])
			if j := i + len(st); j == len(s) || !isWordByte(s[j]) {
				return true
			}
		}
	}
	return false
}

func isWordByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_'
}

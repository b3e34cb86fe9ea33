package dsn

import (
	"strings"

	"github.com/mailmon/mailmon/services/internal/rawmail"
)

// bounceSubjectPhrases are what bounce subjects say, in the languages seen
// most (lower case).
var bounceSubjectPhrases = []string{
	"undeliver", "returned mail", "return to sender", "returned to sender", "delivery status notification",
	"delivery failure", "delivery failed", "delivery has failed", "delivery problem", "delivery report",
	"delivery notification", "delivery error", "delivery incomplete", "mail delivery", "failure notice",
	"non-delivery", "nondeliver", "non delivery", "could not deliver", "could not be deliver", "not delivered",
	"bounce", "rejected", "warning: could not send", "mail system error", "permanent error", "returned message",
	"failed mail", "mail failure", "unzustellbar", "nicht zustellbar", "non remis", "non distribu",
	"no entregado", "no se puede entregar", "non recapitato", "niet bezorgd", "onbestelbaar", "不達",
	"配信エラー", "送信エラー", "エラー", "返送", "メール送信失敗", "mail error", "message error",
	"delayed mail", "delivery delayed", "(delay)", "warning: message", "message delayed", "still being retried",
	"are not a member", "are not member", "returned", "failure",
}

// autoSubjectPhrases are what the subjects of vacation and other automatic
// replies say (lower case).
var autoSubjectPhrases = []string{
	"auto reply", "auto-reply", "autoreply", "automatic reply", "automatic response", "auto response",
	"auto-response", "autoresponse", "autorespond", "auto:", "out of office", "out of the office",
	"vacation", "away from", "away until", "on leave", "abwesen", "automatische antwort", "autoantwort",
	"réponse automatique", "respuesta automática", "risposta automatica", "absence", "automatisch",
	"自動応答", "自動返信", "不在", "ooo ",
	// Outlook's "Automatic reply:" prefix in the languages it is
	// localised to, and common out-of-office wordings.
	"resposta automática", "automatiskt svar", "autosvar", "automaattinen vastaus",
	"automatyczna odpowiedź", "automatická odpověď", "automatikus válasz", "αυτόματη απάντηση",
	"автоматический ответ", "otomatik yanıt", "自动回复", "自動回覆", "자동 회신",
	"fuera de la oficina", "hors du bureau", "außer haus", "ausser haus", "afwezig", "poza biurem",
}

// challengeSubjectPhrases are what challenge-response systems put in the
// subject of the request they send to an unknown sender (TMDA's
// confirm_request template: "Please confirm your message"; sender
// verification services). Lower case.
var challengeSubjectPhrases = []string{
	"please confirm your message", "confirm your message", "sender verification", "verify your email",
	"verification required", "confirmation request", "please verify", "challenge-response",
	"antispam verification", "anti-spam verification",
}

// challengeBodyPhrases say that a message is held until its sender
// answers (lower case).
var challengeBodyPhrases = []string{
	"has not been verified", "release your message", "confirm that you", "verify that you",
	"to confirm your message", "to verify your", "confirmation request", "please confirm",
	"click the link", "whitelist", "approved senders", "held until", "is being held",
}

// reportKind recognises, before any recipient is read, the reports that
// come back the bounce way but are not bounces: a feedback report (RFC
// 5965: multipart/report; report-type=feedback-report) and a
// challenge-response request (RFC 3834 counts challenge-response systems
// among automatic responders: it is an automatic reply, not a failure).
// It returns "" for everything else, and for any message that carries a
// delivery-status part or names failed recipients.
func reportKind(h rawmail.Header, subject, notice string, sc partScan) string {
	if len(sc.dsn) > 0 || h.Has("X-Failed-Recipients") {
		return ""
	}
	if sc.multipartReport && sc.reportType == "feedback-report" {
		return KindFeedback
	}
	if isChallenge(h, subject, notice) {
		return KindAutoReply
	}
	return ""
}

// isChallenge reports a challenge-response request: TMDA's own header, or
// a challenge subject together with body text asking the sender to
// confirm.
func isChallenge(h rawmail.Header, subject, notice string) bool {
	if strings.Contains(strings.ToLower(h.Get("X-Delivery-Agent")), "tmda") {
		return true
	}
	if !anyPhrase(strings.ToLower(subject), challengeSubjectPhrases) {
		return false
	}
	head := notice
	if len(head) > 4096 {
		head = head[:4096]
	}
	return anyPhrase(lowerASCII(head), challengeBodyPhrases)
}

// isDaemonSender reports the senders bounces come from.
func isDaemonSender(from string) bool {
	low := strings.ToLower(from)
	for _, s := range []string{"mailer-daemon", "mailer_daemon", "post_master", "mail-daemon", "postmaster", "mail delivery",
		"maildelivery", "mail administrator", "mail system", "mailer daemon", "mdaemon", "mailerdaemon",
		"delivery subsystem", "mail-delivery", "bounce"} {
		if strings.Contains(low, s) {
			return true
		}
	}
	return false
}

// isBounceLike decides whether a message without a delivery-status part
// is a bounce worth reading as text.
func isBounceLike(h rawmail.Header, subject, notice string, sc partScan) bool {
	if h.Has("X-Failed-Recipients") {
		return true
	}
	if sc.multipartReport && sc.reportType == "delivery-status" {
		return true
	}
	daemon := isDaemonSender(h.Get("From")) || isDaemonSender(h.Get("Sender"))
	nullSender := strings.TrimSpace(h.Get("Return-Path")) == "<>"
	subj := anyPhrase(lowerASCII(subject), bounceSubjectPhrases)
	head := notice
	if len(head) > 4096 {
		head = head[:4096]
	}
	if isAutoReply(h, subject) && !daemon && !subj {
		return false
	}
	if daemon && subj {
		return true
	}
	body := anyPhrase(lowerASCII(head), bounceBodyPhrases)
	switch {
	case daemon && body:
		return true
	case subj && body:
		return true
	case nullSender && body:
		return true
	case sc.original != nil && body && (daemon || nullSender || subj):
		return true
	}
	return false
}

// isAutoReply recognises vacation and other automatic replies (RFC 3834
// and the headers and subjects auto-responders use).
func isAutoReply(h rawmail.Header, subject string) bool {
	as := strings.ToLower(h.Get("Auto-Submitted"))
	if strings.HasPrefix(as, "auto-replied") {
		return true
	}
	for _, name := range []string{"X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Autoresponder", "X-Vacation"} {
		if v := strings.ToLower(h.Get(name)); v != "" && v != "no" && v != "false" {
			return true
		}
	}
	if strings.EqualFold(h.Get("X-Apple-Action"), "VACATION") {
		return true
	}
	prec := strings.ToLower(h.Get("Precedence"))
	if prec == "auto_reply" || prec == "auto-reply" {
		return true
	}
	if len(subject) > 998 {
		subject = subject[:998] // RFC 5322's line limit; keeps ToLower bounded
	}
	if low := strings.ToLower(subject); anyPhrase(low, autoSubjectPhrases) || strings.HasPrefix(low, "ooo") {
		return true
	}
	return false
}

// decideKind settles what the message is once its recipients are read.
func (b *Bounce) decideKind(h rawmail.Header, notice string, sc partScan) string {
	failed, delivered := false, false
	for _, r := range b.Recipients {
		switch r.Action {
		case ActionFailed, ActionDelayed, actionExpired:
			failed = true
		case ActionDelivered, ActionRelayed, ActionExpanded:
			delivered = true
		}
	}
	switch {
	case failed:
		return KindBounce
	case delivered:
		return KindDelivered
	case isAutoReply(h, b.Subject):
		return KindAutoReply
	case h.Get("Content-Type") != "" && strings.Contains(strings.ToLower(h.Get("Content-Type")), "feedback-report"):
		return KindFeedback
	}
	return KindNone
}

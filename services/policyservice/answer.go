package policyservice

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/enforcement"
)

// maxTextBytes bounds the text of a cut-off's answer. Postfix puts it in
// an SMTP reply line (at most 512 bytes with the code, the recipient and
// Postfix's own words), so a longer text is cut here rather than there.
const maxTextBytes = 300

// maxNexthopBytes bounds reroute_nexthop (a host name in brackets and a
// port fit easily).
const maxNexthopBytes = 255

// answerFor builds the Postfix action for a decoded record, or says why
// the record may not be answered. Nothing of the record reaches Postfix
// unchecked: the action must be an allowed one, a reroute's transport one
// of the configured ones, and the text printable ASCII whose leading
// enhanced status code, if any, is well formed. The line is assembled
// here from those checked parts.
func (c Config) answerFor(r enforcement.Record) (string, error) {
	if r.PolicyAction != "" && !slices.Contains(cutoffActions, r.PolicyAction) {
		return "", fmt.Errorf("policy_action %s is not a Postfix cut-off action", quoteShort(r.PolicyAction))
	}
	recordText, err := cleanText(r.PolicyText)
	if err != nil {
		return "", fmt.Errorf("policy_text: %w", err)
	}
	switch r.Action {
	case schemas.ActionReroute:
		if !c.allows("FILTER") {
			return "", fmt.Errorf("reroute: FILTER is not in allowed_actions")
		}
		if !slices.Contains(c.RerouteTransports, r.Transport) {
			return "", fmt.Errorf("reroute transport %s is not one of reroute_transports", quoteShort(r.Transport))
		}
		return "FILTER " + r.Transport + ":" + c.RerouteNexthop, nil
	case schemas.ActionCutoff:
	default:
		return "", fmt.Errorf("unknown action %s", quoteShort(r.Action))
	}
	action := r.PolicyAction
	if c.CutoffAction != "" {
		action = c.CutoffAction
	}
	if action == "" {
		action = "DEFER_IF_PERMIT"
	}
	if !c.allows(action) {
		return "", fmt.Errorf("cut-off action %s is not in allowed_actions", action)
	}
	text := recordText
	if c.CutoffText != "" {
		text, _ = cleanText(c.CutoffText) // checked by Validate
	}
	if text == "" {
		if text, err = cleanText("Sending suspended for " + r.Subject); err != nil {
			return "", fmt.Errorf("subject: %w", err)
		}
	}
	switch action {
	case "REJECT":
		text = withStatusClass(text, '5')
	case "DEFER_IF_PERMIT", "DEFER":
		text = withStatusClass(text, '4')
	}
	return action + " " + text, nil
}

// cleanText checks a text meant for Postfix: printable ASCII only (no
// CR, LF, NUL or other control bytes, which could end the answer or
// smuggle a second one), and a leading enhanced status code, if there is
// one, well formed. Over maxTextBytes it is cut.
func cleanText(s string) (string, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return "", fmt.Errorf("byte 0x%02x at offset %d: only printable ASCII is answered", c, i)
		}
	}
	s = strings.TrimSpace(s)
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		code, _, _ := strings.Cut(s, " ")
		if !validStatus(code) {
			return "", fmt.Errorf("starts with %s, which is not an enhanced status code (RFC 3463 class.subject.detail)", quoteShort(code))
		}
	}
	if len(s) > maxTextBytes {
		s = strings.TrimSpace(s[:maxTextBytes])
	}
	return s, nil
}

// validStatus reports whether s is an RFC 3463 enhanced status code:
// class 2, 4 or 5, then a subject and a detail of one to three digits.
func validStatus(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || (parts[0] != "2" && parts[0] != "4" && parts[0] != "5") {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}

// withStatusClass makes the enhanced status code at the start of text
// (adding x.7.1 when there is none) belong to class c: Postfix refuses a
// 4.x.x code on a REJECT and a 5.x.x code on a DEFER. text has been
// through cleanText.
func withStatusClass(text string, c byte) string {
	if code, _, _ := strings.Cut(text, " "); validStatus(code) {
		return string(c) + text[1:]
	}
	return string(c) + ".7.1 " + text
}

// validNexthop accepts printable ASCII without spaces, e.g.
// "[relay.example]:25".
func validNexthop(s string) bool {
	if len(s) > maxNexthopBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// quoteShort quotes an untrusted value for a log line or an alert: Go
// escapes for anything unprintable, at most 40 bytes of it.
func quoteShort(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%q...", s[:40])
	}
	return fmt.Sprintf("%q", s)
}

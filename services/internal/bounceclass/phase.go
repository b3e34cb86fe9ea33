package bounceclass

import "strings"

// PhaseOf maps the name of an SMTP command, as DSNs, logs and operators
// write it, to a phase for Input.Phase: "DATA", "BDAT" or "end of DATA" →
// PhaseData; "RCPT" or "RCPT TO" → PhaseRcpt; "MAIL" or "MAIL FROM" →
// PhaseMail; "HELO", "EHLO" or "LHLO" → PhaseHelo; "CONNECT", "banner" or
// "greeting" → PhaseConnect. Case and surrounding white space do not
// matter. ok is false for anything else (and "" gives "", true: no stage).
func PhaseOf(command string) (phase string, ok bool) {
	c := strings.ToUpper(strings.Join(strings.Fields(command), " "))
	c = strings.TrimSuffix(c, " COMMAND")
	c = strings.TrimSuffix(c, ":")
	switch c {
	case "":
		return "", true
	case "DATA", "BDAT", "END OF DATA", "DOT":
		return PhaseData, true
	case "RCPT", "RCPT TO":
		return PhaseRcpt, true
	case "MAIL", "MAIL FROM":
		return PhaseMail, true
	case "HELO", "EHLO", "LHLO":
		return PhaseHelo, true
	case "CONNECT", "CONNECTION", "BANNER", "GREETING", "INITIAL CONNECTION":
		return PhaseConnect, true
	}
	return "", false
}

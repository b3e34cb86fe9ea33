package bounceclass

import (
	"strings"
	"unicode/utf8"
)

// ParseReply splits an SMTP reply as MTAs log and DSNs carry it into the reply
// code, the enhanced status code and the text:
//
//	"smtp; 550 5.1.1 <a@b>: Recipient address rejected: User unknown"
//	  -> 550, "5.1.1", "<a@b>: Recipient address rejected: User unknown"
//	"550-5.7.26 This mail ... 550-5.7.26 Gmail requires ..."
//	  -> 550, "5.7.26", "This mail ... Gmail requires ..."  (continuation prefixes dropped)
//
// A leading diagnostic type ("smtp;", "X-Postfix;", "X-Unix;") is dropped. When
// the text does not start with a code (Postfix "host x[1.2.3.4] said: 550 5.1.1 ...",
// Exim "SMTP error from remote mail server after RCPT TO:<...>: 550 ..."), the
// first reply code and enhanced status found in it are returned and text is the
// whole input, trimmed. code is 0 and status "" when none is found.
func ParseReply(s string) (code int, status string, text string) {
	s = strings.TrimSpace(stripDiagType(clipText(s)))
	rest := s
	if c, n := replyCodeAt(rest, 0); n > 0 {
		code = c
		rest = rest[n:]
		if len(rest) > 0 && (rest[0] == '-' || rest[0] == ' ' || rest[0] == ':') {
			rest = strings.TrimLeft(rest[1:], " :")
		}
		if st, m := statusAt(rest, 0); m > 0 {
			status = st
			rest = rest[m:]
		}
		text = strings.TrimSpace(dropContinuations(rest, s[:3]))
		return code, status, text
	}
	if st, m := statusAt(rest, 0); m > 0 {
		status = st
		return 0, status, strings.TrimSpace(rest[m:])
	}
	code, status = FindCodes(s)
	return code, status, s
}

// stripDiagType drops a leading "smtp;" style diagnostic type (RFC 3464
// Diagnostic-Code: diagnostic-type; text).
func stripDiagType(s string) string {
	t := strings.TrimLeft(s, " \t")
	for i := 0; i < len(t) && i < 16; i++ {
		c := t[i]
		if c == ';' && i > 0 {
			return t[i+1:]
		}
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c >= '0' && c <= '9' && i > 0) {
			break
		}
	}
	return s
}

// dropContinuations removes the "550-5.7.1 " / "550 5.7.1 " prefixes of the
// continuation lines of a multi-line reply joined into one line.
func dropContinuations(s, code string) string {
	if !strings.Contains(s, code) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if (i == 0 || s[i-1] == ' ') && strings.HasPrefix(s[i:], code) && i+3 < len(s) && (s[i+3] == '-' || s[i+3] == ' ') {
			j := i + 4
			if _, m := statusAt(s, j); m > 0 {
				j += m
			}
			for j < len(s) && s[j] == ' ' {
				j++
			}
			i = j
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// replyCodeAt reads a reply code [2-5][0-5][0-9] at s[i], followed by the end,
// a space, '-' or ':'. It returns the code and its length, or 0, 0.
func replyCodeAt(s string, i int) (int, int) {
	if i+3 > len(s) {
		return 0, 0
	}
	a, b, c := s[i], s[i+1], s[i+2]
	if a < '2' || a > '5' || b < '0' || b > '5' || !isDigit(c) {
		return 0, 0
	}
	if i+3 < len(s) {
		switch s[i+3] {
		case ' ', '-', ':', ',', '\t', '\r', '\n':
		default:
			return 0, 0
		}
	}
	return int(a-'0')*100 + int(b-'0')*10 + int(c-'0'), 3
}

// statusAt reads an enhanced status code class.subject.detail (RFC 3463:
// class 2, 4 or 5, subject and detail of 1 to 3 digits) at s[i]. It returns the
// code and the number of bytes read (trailing space included), or "", 0.
func statusAt(s string, i int) (string, int) {
	j := i
	if j >= len(s) || (s[j] != '2' && s[j] != '4' && s[j] != '5') {
		return "", 0
	}
	j++
	for part := 0; part < 2; part++ {
		if j >= len(s) || s[j] != '.' {
			return "", 0
		}
		j++
		k := j
		for j < len(s) && isDigit(s[j]) && j-k < 3 {
			j++
		}
		if j == k {
			return "", 0
		}
	}
	if j < len(s) && (isDigit(s[j]) || s[j] == '.') {
		return "", 0
	}
	st := s[i:j]
	for j < len(s) && s[j] == ' ' {
		j++
	}
	return st, j - i
}

// FindCodes returns the first SMTP reply code and the first enhanced status code
// that stand as words in s (0 and "" when absent). A reply code counts only when
// followed by a space, '-' or the end and preceded by the start, a space, ':' or
// a quote, so sizes and port numbers inside the text are mostly left alone.
func FindCodes(s string) (code int, status string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '2' || c > '5' {
			continue
		}
		var p byte = ' '
		if i > 0 {
			p = s[i-1]
		}
		if isDigit(p) || p == '.' || (p >= 'a' && p <= 'z') || (p >= 'A' && p <= 'Z') || p == '/' || p == '=' || p == '-' || p == '_' {
			continue
		}
		if status == "" {
			if st, m := statusAt(s, i); m > 0 {
				status = st
				i += len(st) - 1
				if code != 0 {
					return code, status
				}
				continue
			}
		}
		if code == 0 && p != '#' && p != '[' {
			if v, m := replyCodeAt(s, i); m > 0 && (i+3 == len(s) || s[i+3] == ' ' || s[i+3] == '-') {
				code = v
				if status == "" {
					if st, m := statusAt(s, i+4); m > 0 {
						status = st
					}
				}
				if status != "" {
					return code, status
				}
				i += 2
			}
		}
	}
	return code, status
}

// MaxTextBytes bounds the reply text read by ParseReply and Classify.
// RFC 5321 (section 4.5.3.1.5) limits a reply line to 512 octets, and the
// longest multi-line rejections seen from providers are a few kilobytes;
// what lies beyond this is no provider's wording, only work for a hostile
// sender.
const MaxTextBytes = 64 << 10

// clipText cuts s to MaxTextBytes, at the start of a UTF-8 sequence.
func clipText(s string) string {
	if len(s) <= MaxTextBytes {
		return s
	}
	n := MaxTextBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

package dsn

import "strings"

// isLocalChar reports whether c may appear in the local part of an
// address as bounces print it: RFC 5322 atext and dots, plus bytes of
// UTF-8 local parts (RFC 6531).
func isLocalChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c >= 0x80:
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0
}

// isDomainChar reports whether c may appear in a domain (letters, digits,
// hyphen, dot, UTF-8 for IDNs, brackets for an address literal).
func isDomainChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c >= 0x80:
		return true
	}
	return c == '-' || c == '.'
}

// addrAt returns the address around the '@' at index at in s, with its
// start and end, or ok=false when there is none (no local part, no dot in
// the domain, ...).
func addrAt(s string, at int) (addr string, start, end int, ok bool) {
	start = at
	for start > 0 && isLocalChar(s[start-1]) {
		start--
	}
	end = at + 1
	if end < len(s) && s[end] == '[' {
		// Address literal: user@[192.0.2.1]
		if j := strings.IndexByte(s[end:], ']'); j > 0 {
			end += j + 1
			return s[start:end], start, end, start < at
		}
	}
	for end < len(s) && isDomainChar(s[end]) {
		end++
	}
	// Trailing dots and hyphens belong to the sentence.
	for end > at+1 && (s[end-1] == '.' || s[end-1] == '-') {
		end--
	}
	// Leading dots and quotes of the local part belong to the sentence.
	for start < at && (s[start] == '.' || s[start] == '\'' || s[start] == '`') {
		start++
	}
	if start >= at || end <= at+1 {
		return "", 0, 0, false
	}
	return s[start:end], start, end, true
}

// findAddresses returns every address in s, in order.
func findAddresses(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '@')
		if j < 0 {
			break
		}
		at := i + j
		if a, _, end, ok := addrAt(s, at); ok {
			if strings.Contains(a[strings.IndexByte(a, '@'):], ".") {
				out = append(out, a)
			}
			i = end
			continue
		}
		i = at + 1
	}
	return out
}

// labelPrefixes are the labels that may stand before a failed recipient at
// the start of a line, lower case, without the colon.
var labelPrefixes = []string{
	"final-recipient", "original-recipient", "x-actual-recipient",
	"failed recipient", "failed recipients", "failed address", "failed addresses",
	"invalid recipient", "unknown recipient", "undeliverable recipient", "bad recipient",
	"recipient address", "recipient addresses", "recipients", "recipient", "rcpt to", "rcpt",
	"original recipient", "intended recipient", "destination address", "destination",
	"address", "addresses", "e-mail address", "email address", "e-mail", "email", "mailbox",
	"target mail address", "target address", "user", "to", "for", "addressee",
	"宛先", "送信先", "受信者",
}

// headerLabels are labels that put an address in a role other than the
// failed recipient (a quoted header of the original): not recipients.
var headerLabels = map[string]bool{
	"from": true, "sender": true, "reply-to": true, "cc": true, "bcc": true, "return-path": true,
	"errors-to": true, "envelope-from": true, "mail from": true, "mail-from": true, "by": true,
	"x-sender": true, "x-original-sender": true, "delivered-to": true, "resent-from": true,
	"mailto": true, "http": true, "https": true,
}

// leadAddress reads a line that starts with an address: optional list
// markers, an optional label ("Recipient:", or any short text before a
// colon, such as "Unknown user:"), an optional reply code ("554 <x>...",
// as in Sendmail transcripts), an optional type ("rfc822;"), then the
// address bare or in angle brackets. rest is what follows the address, with
// the punctuation that joins it (":", "...", ">") removed, prefixed with a
// label or code that says something about the error. labelled tells
// whether a label was present.
func leadAddress(line string) (addr, rest string, labelled, ok bool) {
	t := strings.TrimLeft(line, " \t*•-·")
	if t == "" {
		return "", "", false, false
	}
	prefix := ""
	low := lowerASCII(t[:min(len(t), 48)])
	known := false
	for _, l := range labelPrefixes {
		if strings.HasPrefix(low, l) {
			r := strings.TrimLeft(t[len(l):], " \t")
			if strings.HasPrefix(r, ":") || strings.HasPrefix(r, "：") {
				if strings.HasPrefix(r, ":") {
					r = r[1:]
				} else {
					r = r[len("："):]
				}
				t, labelled, known = strings.TrimLeft(r, " \t"), true, true
				break
			}
		}
	}
	if !known {
		// "Unknown user: x@y", "Mailbox full: x@y": a short label that
		// is itself the error.
		if i := strings.IndexByte(t, ':'); i >= 3 && i <= 60 && !strings.ContainsAny(t[:i], "<>@[]()\"") {
			lab := strings.TrimSpace(t[:i])
			r := strings.TrimLeft(t[i+1:], " \t")
			if headerLabels[strings.ToLower(lab)] {
				return "", "", false, false
			}
			if len(strings.Fields(lab)) <= 6 && (strings.HasPrefix(r, "<") || strings.IndexByte(r, '@') > 0 && strings.IndexAny(r[:strings.IndexByte(r, '@')], " \t") < 0) {
				t, labelled, prefix = r, true, lab
			}
		}
	}
	if !labelled && len(t) > 4 && (t[0] == '4' || t[0] == '5') && isDigit(t[1]) && isDigit(t[2]) && (t[3] == ' ' || t[3] == '-') {
		// "554 <kijitora@example.edu>... Remote protocol error"
		r := strings.TrimLeft(t[4:], " ")
		code := t[:3]
		if st := findStatus(r); st != "" && strings.HasPrefix(r, st) {
			code += " " + st
			r = strings.TrimLeft(r[len(st):], " ")
		}
		if strings.HasPrefix(r, "<") {
			t, prefix = r, code
		}
	}
	if i := strings.IndexByte(t, ';'); i > 0 && i < 10 && strings.EqualFold(t[:i], "rfc822") {
		t = strings.TrimLeft(t[i+1:], " \t")
	}
	bracket := strings.HasPrefix(t, "<")
	if bracket {
		t = t[1:]
	}
	t = strings.TrimLeft(t, "\"'")
	at := strings.IndexByte(t, '@')
	if at <= 0 || at > 256 {
		return "", "", false, false
	}
	// The local part must start the (unbracketed) text.
	for i := 0; i < at; i++ {
		if !isLocalChar(t[i]) {
			return "", "", false, false
		}
	}
	a, start, end, found := addrAt(t, at)
	if !found || start != 0 {
		return "", "", false, false
	}
	rest = t[end:]
	if bracket {
		rest = strings.TrimPrefix(rest, ">")
	}
	rest = strings.TrimLeft(rest, "\"'")
	if rest != "" {
		c := rest[0]
		// The address must end there: followed by space, punctuation or
		// the end, not by more of a word.
		if isLocalChar(c) && c != '.' && c != '-' {
			return "", "", false, false
		}
	}
	rest = strings.TrimSpace(strings.TrimLeft(rest, " \t:.>,;"))
	if prefix != "" {
		rest = strings.TrimSpace(prefix + " " + rest)
	}
	return a, rest, labelled, true
}

// normAddr is the form addresses are compared in.
func normAddr(a string) string { return lowerASCII(strings.Trim(a, "<>\"' ")) }

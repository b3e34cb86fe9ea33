package dsn

import (
	"strings"

	"github.com/mailmon/mailmon/services/internal/rawmail"
)

// separatorOpen are the openings (lower case, after leading dashes, stars
// and the like) of lines that always introduce the returned message.
var separatorOpen = []string{
	"this is a copy of the message", "this is a copy of your message", "this is a copy of the original",
	"this is a copy of the headers", "below this line is a copy", "below is a copy",
	"copy of the original message", "copy of the original mail", "original message follows",
	"original mail follows", "original e-mail follows", "original email follows", "original message header",
	"original message is", "original message text", "message headers follow", "message header follows",
	"headers of the original", "headers of your", "header of the original", "headers of the returned",
	"headers of the message", "original headers", "original header", "message text follows",
	"included is a copy", "attached is a copy", "here is a copy of", "text of the message follows",
	"text of the original message follows", "content-type: message/rfc822", "unsent message follows",
	"returned message follows", "undelivered message follows",
}

// separatorNouns are phrases that introduce the returned message when
// nothing but "follows", "below" or punctuation comes after them:
// "----- Original message -----", "------- Returned Message --------".
var separatorNouns = []string{
	"original message", "the original message", "returned message", "undelivered message", "unsent message",
	"undeliverable message", "rejected message", "bounced message", "failed message", "returned mail",
	"undelivered mail", "original mail", "your message reads", "your message follows", "your message was",
	"original e-mail", "original email", "bounced e-mail", "bounced email", "bounced mail", "message",
}

// separatorTails may follow a separator noun.
var separatorTails = []string{"follows", "follow", "is attached", "attached", "below", "is below", "is included", "headers", "header", "text", "reads"}

// isSeparator reports a line that introduces the returned message.
func isSeparator(l string) bool { return isSeparatorLower(lowerASCII(l)) }

// separatorWords: a separator line has one of them.
var separatorWords = []string{"copy", "original", "message", "mail", "header", "follow", "rfc822"}

func isSeparatorLower(lower string) bool {
	if len(lower) > 200 || !anyPhrase(lower, separatorWords) {
		return false
	}
	t := strings.TrimLeft(lower, " \t-=*_|#>")
	if t == "" || looksLikeSentenceAboutOriginal(t) {
		return false
	}
	t = strings.TrimPrefix(t, "the ")
	for _, p := range separatorOpen {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	for _, n := range separatorNouns {
		if !strings.HasPrefix(t, n) {
			continue
		}
		rest := strings.TrimSpace(t[len(n):])
		for _, tail := range separatorTails {
			if strings.HasPrefix(rest, tail) {
				rest = strings.TrimSpace(rest[len(tail):])
				break
			}
		}
		if strings.Trim(rest, "-=*:._|#> \t") == "" && (n != "message" || strings.HasPrefix(lower, "-") || strings.HasPrefix(lower, "*") || strings.HasPrefix(lower, "=")) {
			return true
		}
	}
	return false
}

// headerStartNames are fields that can start a quoted message header.
var headerStartNames = map[string]bool{
	"received": true, "return-path": true, "message-id": true, "from": true, "to": true,
	"subject": true, "date": true, "mime-version": true, "dkim-signature": true,
	"delivered-to": true, "x-original-to": true, "reply-to": true, "content-type": true,
	"authentication-results": true, "x-mailer": true, "sender": true, "cc": true,
	"received-spf": true, "arc-seal": true, "x-received": true, "x-google-dkim-signature": true,
	"domainkey-signature": true, "user-agent": true, "envelope-to": true, "x-apparently-to": true,
}

// cutOriginal splits the text of a bounce where the returned message
// starts: at a separator line, or at the first quoted message header. The
// separator itself belongs to neither half.
func cutOriginal(text string) (notice, quoted string) {
	// Walk the lines in place; offsets into text let the halves be
	// slices of it.
	lines := rawmail.Lines(text)
	off := 0
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if mayBeSeparator(l) && isSeparator(l) {
			return strings.TrimRight(text[:off], "\r\n"), text[min(len(text), off+len(l)+1):]
		}
		if isHeaderRunAt(lines, i) {
			return text[:off], text[off:]
		}
		off += len(l) + 1
		if off < len(text) && text[off-1] == '\r' {
			off++
		}
	}
	return text, ""
}

// mayBeSeparator is a quick test that a line could be a separator: it
// holds one of the letters pairs "py", "ig", "ss", "ai", "ea", "ll", "82"
// that every separator word has, in any case.
func mayBeSeparator(l string) bool {
	if len(l) > 200 || len(l) < 6 {
		return false
	}
	for i := 0; i+1 < len(l); i++ {
		a, b := l[i]|0x20, l[i+1]|0x20
		switch {
		case a == 'p' && b == 'y', a == 'i' && b == 'g', a == 's' && b == 's', a == 'a' && b == 'i',
			a == 'e' && b == 'a', a == 'l' && b == 'l', a == '8' && b == '2':
			return true
		}
	}
	return false
}

// looksLikeSentenceAboutOriginal keeps prose such as "The original message
// was received at ..." (Sendmail's first line) from being a separator.
func looksLikeSentenceAboutOriginal(low string) bool {
	return strings.Contains(low, "was received at") || strings.Contains(low, "message was received") ||
		strings.Contains(low, "could not be delivered") || strings.Contains(low, "was not delivered")
}

// isHeaderRunAt reports whether a quoted message header starts at line i:
// a field at the start of the line whose name often starts a header, and
// at least three fields in a row counting it, with one of Received,
// Return-Path, Message-ID, or From together with Subject or Date.
func isHeaderRunAt(lines []string, i int) bool {
	name, _, ok := splitFieldLine(lines[i])
	var buf [32]byte
	if !ok || lines[i][0] == ' ' || lines[i][0] == '\t' || len(name) > len(buf) || !headerStartNames[string(lowerInto(buf[:], name))] {
		return false
	}
	fields := 0
	strong, from, subjDate := false, false, false
	for j := i; j < len(lines) && j < i+60; j++ {
		l := lines[j]
		if l == "" {
			break
		}
		if l[0] == ' ' || l[0] == '\t' {
			if fields == 0 {
				return false
			}
			continue
		}
		n, _, ok := splitFieldLine(l)
		if !ok {
			break
		}
		fields++
		if len(n) > len(buf) {
			continue
		}
		switch string(lowerInto(buf[:], n)) {
		case "received", "return-path", "message-id", "dkim-signature", "x-received":
			strong = true
		case "from":
			from = true
		case "subject", "date":
			subjDate = true
		}
	}
	return fields >= 3 && (strong || from && subjDate)
}

// headerSearchLines is how many lines of the quoted part are searched for
// the start of the returned message's header.
const headerSearchLines = 41

// quotedHeader reads the first message header in the quoted part of a
// bounce (after the separator).
func quotedHeader(quoted string) (rawmail.Header, bool) {
	if i, ok := quotedHeaderStart(quoted); ok {
		h, _ := rawmail.ParseHeader([]byte(quoted[i:]))
		return h, len(h) > 0
	}
	return nil, false
}

// quotedHeaderStart returns the offset of the line of s where a quoted
// message header starts, among its first headerSearchLines lines. Only the
// lines the search needs are split off, not the whole text.
func quotedHeaderStart(s string) (int, bool) {
	lines, offs := leadingLines(s, headerSearchLines+60)
	for i := range lines {
		if i >= headerSearchLines {
			break
		}
		if isHeaderRunAt(lines, i) {
			return offs[i], true
		}
	}
	return 0, false
}

// leadingLines returns up to n first lines of s (as rawmail.Lines splits
// them) and the offset of each in s.
func leadingLines(s string, n int) (lines []string, offs []int) {
	off := 0
	for len(lines) < n && off < len(s) {
		rest := s[off:]
		line, next := rest, len(s)
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			line, next = rest[:i], off+i+1
		}
		lines = append(lines, strings.TrimSuffix(line, "\r"))
		offs = append(offs, off)
		off = next
	}
	return lines, offs
}

// htmlToText turns an HTML bounce into lines of text: block elements and
// <br> become line breaks, script and style go with their content, other
// tags go, and the common entities are decoded.
func htmlToText(h string) string {
	var sb strings.Builder
	sb.Grow(len(h))
	for i := 0; i < len(h); {
		c := h[i]
		switch c {
		case '<':
			j := strings.IndexByte(h[i:], '>')
			if j < 0 {
				i = len(h)
				continue
			}
			tag := lowerASCII(h[i+1 : i+j])
			i += j + 1
			name := strings.TrimPrefix(tag, "/")
			if k := strings.IndexAny(name, " \t\r\n/"); k >= 0 {
				name = name[:k]
			}
			if (name == "script" || name == "style") && !strings.HasPrefix(tag, "/") {
				if k := indexCloseTag(h[i:], name); k >= 0 {
					i += k
				} else {
					i = len(h)
				}
				continue
			}
			switch name {
			case "br", "p", "div", "tr", "li", "table", "h1", "h2", "h3", "h4", "pre", "blockquote":
				sb.WriteByte('\n')
			case "td", "th":
				sb.WriteByte(' ')
			}
		case '&':
			j := strings.IndexByte(h[i:min(len(h), i+10)], ';')
			if j < 0 {
				sb.WriteByte(c)
				i++
				continue
			}
			switch lowerASCII(h[i : i+j+1]) {
			case "&nbsp;":
				sb.WriteByte(' ')
			case "&lt;":
				sb.WriteByte('<')
			case "&gt;":
				sb.WriteByte('>')
			case "&amp;":
				sb.WriteByte('&')
			case "&quot;":
				sb.WriteByte('"')
			case "&#39;", "&apos;":
				sb.WriteByte('\'')
			default:
				sb.WriteByte(' ')
			}
			i += j + 1
		default:
			sb.WriteByte(c)
			i++
		}
	}
	lines := strings.Split(sb.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

// indexCloseTag returns the index in s of the closing tag "</name", the
// name in any case, or -1. It reads s once and copies nothing (lower-casing
// the rest of the document for each <script> made many of them quadratic).
func indexCloseTag(s, name string) int {
	for i := 0; ; {
		j := strings.Index(s[i:], "</")
		if j < 0 {
			return -1
		}
		k := i + j + 2
		if len(s)-k >= len(name) && lowerASCII(s[k:k+len(name)]) == name {
			return k - 2
		}
		i = k
	}
}

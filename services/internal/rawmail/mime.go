package rawmail

import (
	"bytes"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// Limits that bound the work one message can cause.
const (
	// MaxDepth is how deep multiparts and attached messages are followed.
	MaxDepth = 12
	// MaxParts is how many parts one message may have in all; later parts
	// are dropped.
	MaxParts = 512
)

// Part is one node of a message's MIME tree. The message itself is the
// root part.
type Part struct {
	Header Header
	// MediaType is the lower-case media type, "text/plain" when the part
	// has no Content-Type (RFC 2045 section 5.2), or "message/rfc822" for
	// a part of a multipart/digest.
	MediaType string
	// Params are the Content-Type parameters, names lower-cased.
	Params map[string]string
	// Body is the body with its Content-Transfer-Encoding removed. For a
	// multipart it is the whole body, boundaries included.
	Body []byte
	// Parts are the children of a multipart.
	Parts []*Part
	// Message is the message a message/rfc822 (or message/global) part
	// carries, or the header a text/rfc822-headers part carries (with an
	// empty body).
	Message *Part
}

// Full returns the part parsed in full: for the attached message of a
// ParseShallow result (a header and raw bytes) it parses the raw bytes;
// any other part is returned as it is.
func (p *Part) Full() *Part { return p.FullWith(nil) }

// FullWith is Full charging the work to bud (see ParseWith).
func (p *Part) FullWith(bud *Budget) *Part {
	if p == nil || len(p.Parts) > 0 || len(p.Body) == 0 || len(p.Header) == 0 {
		return p
	}
	if h, _ := parseHeader(p.Body, bud); len(h) == len(p.Header) && len(h) > 0 && h[0] == p.Header[0] {
		return ParseWith(p.Body, bud)
	}
	return p
}

// Parse reads a whole message. It never fails; see ParseHeader and the
// package documentation for how damage is handled. Parts past MaxParts
// and nesting past MaxDepth are left out.
func Parse(raw []byte) *Part { return ParseWith(raw, nil) }

// ParseWith is Parse charging its work to bud. When a limit of bud runs
// out, parsing stops where it is and bud.Err() says which limit it was;
// the parts read so far are returned. A nil bud is Parse.
func ParseWith(raw []byte, bud *Budget) *Part {
	n := 0
	return parsePart(raw, 0, &n, "text/plain", false, bud)
}

// ParseShallow reads a message like Parse, but of an attached message
// (message/rfc822, message/global) it reads only the header: the attached
// Part has the header and, as Body, the attached message's raw bytes
// (header included, transfer encoding of the outer part removed), which
// Parse can read in full when needed. Report parsers need only the
// header of the message a report returns, and its body may be large.
func ParseShallow(raw []byte) *Part { return ParseShallowWith(raw, nil) }

// ParseShallowWith is ParseShallow charging its work to bud (see
// ParseWith).
func ParseShallowWith(raw []byte, bud *Budget) *Part {
	n := 0
	return parsePart(raw, 0, &n, "text/plain", true, bud)
}

// ParseHeadersOnly reads raw as a bare header block, as carried by a
// text/rfc822-headers part.
func ParseHeadersOnly(raw []byte) *Part { return parseHeadersOnly(raw, nil) }

func parseHeadersOnly(raw []byte, bud *Budget) *Part {
	raw = skipBlankLines(raw)
	h, n := parseHeader(raw, bud)
	p := &Part{Header: h, Body: raw[n:]}
	p.MediaType, p.Params = contentType(h, "text/plain")
	return p
}

func contentType(h Header, def string) (string, map[string]string) {
	v := h.Get("Content-Type")
	if v == "" {
		return def, nil
	}
	mt, params := ParseMediaType(v)
	if mt == "" || !strings.Contains(mt, "/") {
		mt = def
	}
	return mt, params
}

// parsePart reads one part at depth; count is the number of parts read so
// far in the whole message. Every pass over the part's bytes (header,
// transfer decoding, boundary search) is charged to bud, so a message's
// cost is its size times its nesting depth at most.
func parsePart(raw []byte, depth int, count *int, def string, shallow bool, bud *Budget) *Part {
	*count++
	h, n := parseHeader(raw, bud)
	body := raw[n:]
	p := &Part{Header: h}
	p.MediaType, p.Params = contentType(h, def)
	bud.Scan(len(body))
	p.Body = DecodeTransfer(h.Get("Content-Transfer-Encoding"), body)
	if bud.Exceeded() {
		return p
	}
	switch {
	case strings.HasPrefix(p.MediaType, "multipart/"):
		childDef := "text/plain"
		if p.MediaType == "multipart/digest" {
			childDef = "message/rfc822"
		}
		bud.Scan(len(p.Body))
		for _, b := range splitMultipart(p.Body, p.Params["boundary"]) {
			if !bud.part(*count, depth+1) {
				break
			}
			p.Parts = append(p.Parts, parsePart(b, depth+1, count, childDef, shallow, bud))
		}
	case p.MediaType == "message/rfc822" || p.MediaType == "message/global" ||
		p.MediaType == "message/partial":
		if bud.part(*count, depth+1) {
			inner := skipBlankLines(p.Body)
			if shallow {
				*count++
				h, _ := parseHeader(inner, bud)
				m := &Part{Header: h, Body: inner}
				m.MediaType, m.Params = contentType(h, "text/plain")
				p.Message = m
			} else {
				p.Message = parsePart(inner, depth+1, count, "text/plain", false, bud)
			}
		}
	case p.MediaType == "text/rfc822-headers" || p.MediaType == "message/rfc822-headers":
		if bud.part(*count, depth+1) {
			*count++
			p.Message = parseHeadersOnly(p.Body, bud)
		}
	}
	return p
}

// skipBlankLines drops empty lines at the start of b.
func skipBlankLines(b []byte) []byte {
	for len(b) > 0 {
		line, rest := cutLine(b)
		if len(bytes.TrimSpace(line)) != 0 {
			return b
		}
		b = rest
	}
	return b
}

// splitMultipart returns the bodies between the boundary lines of a
// multipart body. The preamble and epilogue are dropped; a missing closing
// delimiter ends the last part at the end of the body. With no boundary,
// or none found, it returns nil.
func splitMultipart(body []byte, boundary string) [][]byte {
	if boundary == "" {
		return nil
	}
	delim := []byte("--" + boundary)
	var parts [][]byte
	start := -1 // start of the current part's bytes
	pos := 0
	for pos < len(body) {
		// pos is at the start of a line.
		lineEnd := bytes.IndexByte(body[pos:], '\n')
		next := len(body)
		if lineEnd >= 0 {
			next = pos + lineEnd + 1
			lineEnd = pos + lineEnd
		} else {
			lineEnd = len(body)
		}
		line := body[pos:lineEnd]
		if len(line) >= len(delim) && line[0] == '-' && bytes.HasPrefix(line, delim) {
			tail := bytes.TrimRight(line[len(delim):], " \t\r")
			closing := bytes.Equal(tail, []byte("--"))
			if len(tail) == 0 || closing {
				if start >= 0 {
					end := pos
					// The line break before the delimiter belongs to it.
					if end > start && body[end-1] == '\n' {
						end--
						if end > start && body[end-1] == '\r' {
							end--
						}
					}
					parts = append(parts, body[start:end])
				}
				if closing {
					return parts
				}
				start = next
			}
		}
		pos = next
	}
	if start >= 0 && start < len(body) {
		parts = append(parts, body[start:])
	}
	return parts
}

// Walk calls fn for p and every part below it, depth first, in order,
// including the parts of attached messages. It stops descending into a
// part when fn returns false for it.
func (p *Part) Walk(fn func(*Part) bool) {
	if p == nil || !fn(p) {
		return
	}
	for _, c := range p.Parts {
		c.Walk(fn)
	}
	if p.Message != nil {
		p.Message.Walk(fn)
	}
}

// IsMultipart reports whether p is a multipart with parts.
func (p *Part) IsMultipart() bool { return len(p.Parts) > 0 }

// Text returns the body of p as UTF-8 text, converted from the charset
// parameter. An unknown charset, or bytes that are not valid in it, leave
// the text as close to the bytes as possible. ISO-2022-JP text without a
// charset parameter (common in Japanese bounces) is recognised by its
// escape sequences.
func (p *Part) Text() string {
	return ToUTF8(p.Params["charset"], p.Body)
}

// ToUTF8 converts b from the named charset to UTF-8.
func ToUTF8(cs string, b []byte) string {
	cs = strings.ToLower(strings.TrimSpace(cs))
	switch cs {
	case "", "us-ascii", "ascii", "utf-8", "utf8", "x-unknown", "unknown-8bit", "default":
		if bytes.Contains(b, []byte("\x1b$B")) || bytes.Contains(b, []byte("\x1b$@")) {
			cs = "iso-2022-jp"
			break
		}
		return string(b)
	}
	if isASCII(b) && !strings.HasPrefix(cs, "iso-2022") && !strings.HasPrefix(cs, "utf-16") && cs != "utf-7" {
		return string(b)
	}
	r, err := charset.Reader(cs, bytes.NewReader(b))
	if err != nil {
		return string(b)
	}
	out, err := io.ReadAll(r)
	if err != nil && len(out) == 0 {
		return string(b)
	}
	if !utf8.Valid(out) {
		return strings.ToValidUTF8(string(out), "\uFFFD")
	}
	return string(out)
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

package rawmail

import (
	"bytes"
	"mime"
	"strings"

	"github.com/emersion/go-message/charset"
)

// Field is one header field. Value is unfolded (each line break and the
// white space around it become one space) and trimmed, but otherwise as
// written: encoded words are not decoded.
type Field struct {
	Name  string
	Value string
}

// Header is a header block, fields in the order they appear.
type Header []Field

// Get returns the value of the first field named name (case-insensitive),
// or "".
func (h Header) Get(name string) string {
	for i := range h {
		if strings.EqualFold(h[i].Name, name) {
			return h[i].Value
		}
	}
	return ""
}

// Has reports whether a field named name is present.
func (h Header) Has(name string) bool {
	for i := range h {
		if strings.EqualFold(h[i].Name, name) {
			return true
		}
	}
	return false
}

// Values returns the values of every field named name, in order.
func (h Header) Values(name string) []string {
	var out []string
	for i := range h {
		if strings.EqualFold(h[i].Name, name) {
			out = append(out, h[i].Value)
		}
	}
	return out
}

// maxHeaderFields bounds one header block; the rest is ignored.
const maxHeaderFields = 1000

// ParseHeader reads the header block at the start of b and returns it with
// the rest of b after the blank line that ends it. It never fails:
//
//   - an mbox "From " line (or a quoted ">From " line) before the first
//     field is skipped;
//   - a line starting with white space continues the previous field;
//   - a line that is neither a field nor a continuation ends the header
//     (the body then starts at that line, as when a broken writer left out
//     the blank line);
//   - CRLF and bare LF line ends are both accepted.
func ParseHeader(b []byte) (Header, []byte) {
	h, n := parseHeader(b, nil)
	return h, b[n:]
}

// parseHeader does the work of ParseHeader, charging bud for the lines it
// reads, and returns the offset where the body starts. Its cost is linear
// in the header block alone, never in what follows it, so that callers may
// read many header blocks one after another in one body.
func parseHeader(b []byte, bud *Budget) (Header, int) {
	end, lines := headerExtent(b)
	bud.Scan(end)
	bud.Lines(lines)
	// One copy of the header block; field names and single-line values
	// are slices of it, so most fields cost no allocation of their own.
	h, n := parseHeaderString(string(b[:end]), lines)
	return h, n
}

// headerExtent returns the length of the header block at the start of b
// (through the blank line that ends it, or up to the first line that
// ends it without one) and the number of lines in it. It follows the
// rules of parseHeaderString line by line, so that parseHeaderString needs
// a copy of the header block only.
func headerExtent(b []byte) (end, lines int) {
	first, haveField, mediaField := true, false, false
	pos := 0
	for pos < len(b) {
		next := len(b)
		line := b[pos:]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line, next = line[:i], pos+i+1
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		lines++
		switch {
		case len(line) == 0:
			return next, lines
		case line[0] == ' ' || line[0] == '\t':
		case first && (bytes.HasPrefix(line, []byte("From ")) || bytes.HasPrefix(line, []byte(">From "))):
			first = false
		default:
			name, ok := splitFieldBytes(line)
			if !ok {
				if haveField && mediaField && isParamLine(line) {
					break
				}
				return pos, lines - 1
			}
			first, haveField = false, true
			mediaField = bytes.EqualFold(name, []byte("Content-Type")) || bytes.EqualFold(name, []byte("Content-Disposition"))
		}
		pos = next
	}
	return len(b), lines
}

// splitFieldBytes is splitFieldString's test of a field line, on bytes; it
// returns the field name.
func splitFieldBytes(line []byte) ([]byte, bool) {
	i := bytes.IndexByte(line[:min(len(line), 81)], ':')
	if i <= 0 || i > 80 {
		return nil, false
	}
	n := bytes.TrimRight(line[:i], " \t")
	if len(n) == 0 {
		return nil, false
	}
	for _, c := range n {
		if c <= ' ' || c >= 0x7f {
			return nil, false
		}
	}
	return n, true
}

// parseHeaderString does the work of ParseHeader on a string and returns
// the offset where the body starts.
func parseHeaderString(s string, lines int) (Header, int) {
	h := make(Header, 0, min(lines, 16))
	name, value := "", ""
	// The unfolded value of a field with continuation lines is built in
	// one builder, each line appended once.
	var folded strings.Builder
	isFolded := false
	fold := func(t string) {
		if !isFolded {
			folded.Reset()
			folded.WriteString(value)
			isFolded = true
		}
		if folded.Len() > 0 {
			folded.WriteByte(' ')
		}
		folded.WriteString(t)
	}
	flush := func() {
		if name != "" && len(h) < maxHeaderFields {
			if isFolded {
				value = folded.String()
			}
			h = append(h, Field{Name: name, Value: value})
		}
		name, isFolded = "", false
	}
	first := true
	pos := 0
	for pos < len(s) {
		next := len(s)
		lineEnd := len(s)
		if i := strings.IndexByte(s[pos:], '\n'); i >= 0 {
			lineEnd, next = pos+i, pos+i+1
		}
		line := s[pos:lineEnd]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			flush()
			return h, next
		}
		if line[0] == ' ' || line[0] == '\t' {
			// A continuation; one with nothing to continue is skipped.
			if name != "" {
				if t := strings.TrimSpace(line); t != "" {
					fold(t)
				}
			}
			pos = next
			continue
		}
		if first && (strings.HasPrefix(line, "From ") || strings.HasPrefix(line, ">From ")) {
			first = false
			pos = next
			continue
		}
		n, v, ok := splitFieldString(line)
		if !ok && name != "" && isParamLine([]byte(line)) && (strings.EqualFold(name, "Content-Type") || strings.EqualFold(name, "Content-Disposition")) {
			// "boundary=..." left unindented on its own line: a
			// parameter of the field above.
			fold(strings.TrimSpace(line))
			pos = next
			continue
		}
		if !ok {
			// Not a field: the header ends here without a blank line.
			flush()
			return h, pos
		}
		first = false
		flush()
		name, value = n, strings.TrimSpace(v)
		pos = next
	}
	flush()
	return h, len(s)
}

// splitFieldString splits "Name: value". The name is 1-80 printable ASCII
// characters other than space and colon; white space before the colon is
// tolerated.
func splitFieldString(line string) (string, string, bool) {
	i := strings.IndexByte(line[:min(len(line), 81)], ':')
	if i <= 0 || i > 80 {
		return "", "", false
	}
	n := strings.TrimRight(line[:i], " \t")
	if len(n) == 0 {
		return "", "", false
	}
	for j := 0; j < len(n); j++ {
		if c := n[j]; c <= ' ' || c >= 0x7f {
			return "", "", false
		}
	}
	return n, line[i+1:], true
}

// isParamLine reports a line that is a MIME parameter ("name=value",
// optionally after a semicolon).
func isParamLine(line []byte) bool {
	t := bytes.TrimLeft(line, " \t;")
	i := bytes.IndexByte(t, '=')
	if i <= 0 || i > 40 {
		return false
	}
	for _, c := range t[:i] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '*') {
			return false
		}
	}
	return true
}

// cutLine returns the first line of b without its line end (LF or CRLF)
// and the rest of b after it.
func cutLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		line, rest = b, nil
	} else {
		line, rest = b[:i], b[i+1:]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// Lines splits text into lines without their line ends.
func Lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	ls := strings.Split(s, "\n")
	for i, l := range ls {
		ls[i] = strings.TrimSuffix(l, "\r")
	}
	return ls
}

var wordDecoder = mime.WordDecoder{CharsetReader: charset.Reader}

// DecodeHeader decodes RFC 2047 encoded words in a header value. A value
// that cannot be decoded is returned as it is.
func DecodeHeader(v string) string {
	if !strings.Contains(v, "=?") {
		return v
	}
	d, err := wordDecoder.DecodeHeader(v)
	if err != nil {
		return v
	}
	return d
}

// ParseMediaType reads a Content-Type (or Content-Disposition) value
// leniently: the media type is lower-cased ("" when absent), parameter
// names are lower-cased, quotes and backslash escapes are removed, and
// damage (stray semicolons, missing values, unbalanced quotes) is skipped
// rather than failing the whole value as mime.ParseMediaType does.
func ParseMediaType(v string) (string, map[string]string) {
	mt, rest, _ := strings.Cut(v, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if i := strings.IndexAny(mt, " \t("); i >= 0 {
		mt = mt[:i]
	}
	var params map[string]string
	for rest != "" {
		rest = strings.TrimLeft(rest, " \t;")
		if rest == "" {
			break
		}
		eq := strings.IndexAny(rest, "=;")
		if eq < 0 || rest[eq] == ';' {
			// A parameter without a value: skip it.
			if eq < 0 {
				break
			}
			rest = rest[eq+1:]
			continue
		}
		key := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			var sb strings.Builder
			i := 1
			for ; i < len(rest); i++ {
				c := rest[i]
				if c == '\\' && i+1 < len(rest) {
					i++
					sb.WriteByte(rest[i])
					continue
				}
				if c == '"' {
					break
				}
				sb.WriteByte(c)
			}
			val = sb.String()
			if i < len(rest) {
				i++
			}
			rest = rest[i:]
			if j := strings.IndexByte(rest, ';'); j >= 0 {
				rest = rest[j+1:]
			} else {
				rest = ""
			}
		} else {
			j := strings.IndexByte(rest, ';')
			if j < 0 {
				val, rest = rest, ""
			} else {
				val, rest = rest[:j], rest[j+1:]
			}
			val = strings.TrimSpace(val)
		}
		if key == "" {
			continue
		}
		if params == nil {
			params = make(map[string]string, 2)
		}
		if _, dup := params[key]; !dup {
			params[key] = val
		}
	}
	return mt, params
}

// ParseHeaderWith is ParseHeader charging the lines and bytes it reads to
// bud (see ParseWith).
func ParseHeaderWith(b []byte, bud *Budget) (Header, []byte) {
	h, n := parseHeader(b, bud)
	return h, b[n:]
}

// HeaderLen returns the length of the header block at the start of b, as
// ParseHeader reads it (so b[n:] is the body ParseHeader returns), and
// the number of lines it has, without building its fields: a caller can
// look for a header in text and skip a run of lines too short to be one
// at no cost beyond reading it.
func HeaderLen(b []byte) (n, lines int) { return headerExtent(b) }

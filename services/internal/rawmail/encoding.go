package rawmail

import "strings"

// DecodeTransfer removes a Content-Transfer-Encoding (RFC 2045 section 6)
// from body. base64 and quoted-printable are decoded leniently: characters
// outside the alphabet and broken escapes are skipped or kept, never an
// error. Other encodings (7bit, 8bit, binary, unknown) return body as is.
func DecodeTransfer(cte string, body []byte) []byte {
	cte = strings.ToLower(strings.TrimSpace(cte))
	switch {
	case strings.HasPrefix(cte, "base64"):
		return DecodeBase64(body)
	case strings.HasPrefix(cte, "quoted-printable"):
		return DecodeQP(body)
	}
	return body
}

// DecodeBase64 decodes base64 text, ignoring line breaks, white space and
// any other character outside the alphabet, accepting the URL-safe
// alphabet, and decoding what it can of a truncated or unpadded input and
// of several encoded blocks written one after another.
func DecodeBase64(b []byte) []byte {
	out := make([]byte, 0, len(b)*3/4+3)
	group := make([]byte, 0, 4)
	var q [3]byte
	emit := func() {
		// Decode a (possibly short) group of 2-4 characters.
		if len(group) < 2 {
			group = group[:0]
			return
		}
		var v uint32
		for i := 0; i < 4; i++ {
			v <<= 6
			if i < len(group) {
				v |= uint32(b64val[group[i]])
			}
		}
		q[0], q[1], q[2] = byte(v>>16), byte(v>>8), byte(v)
		out = append(out, q[:len(group)-1]...)
		group = group[:0]
	}
	for _, c := range b {
		if c == '=' {
			// Padding ends the current group; a new block may follow.
			emit()
			continue
		}
		if b64val[c] == 0xff {
			continue
		}
		group = append(group, c)
		if len(group) == 4 {
			emit()
		}
	}
	emit()
	return out
}

var b64val = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alpha); i++ {
		t[alpha[i]] = byte(i)
	}
	t['-'], t['_'] = 62, 63
	return t
}()

// DecodeQP decodes quoted-printable text (RFC 2045 section 6.7): "=XX"
// escapes (either case), soft line breaks ("=" at the end of a line, with
// or without trailing white space). A "=" that starts no valid escape is
// kept as it is.
func DecodeQP(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '=' {
			out = append(out, c)
			continue
		}
		// Soft line break: "=" then optional spaces then CRLF or LF.
		j := i + 1
		for j < len(b) && (b[j] == ' ' || b[j] == '\t') {
			j++
		}
		if j < len(b) && b[j] == '\n' {
			i = j
			continue
		}
		if j+1 < len(b) && b[j] == '\r' && b[j+1] == '\n' {
			i = j + 1
			continue
		}
		if j == len(b) {
			break
		}
		if i+2 < len(b) {
			h, ok1 := unhex(b[i+1])
			l, ok2 := unhex(b[i+2])
			if ok1 && ok2 {
				out = append(out, h<<4|l)
				i += 2
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

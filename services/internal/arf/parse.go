package arf

import (
	"bytes"
	"regexp"
	"strings"

	"github.com/mailmon/mailmon/services/internal/rawmail"
)

// maxForwardDepth bounds how many forwarding layers Parse looks through
// for a report attached to another message.
const maxForwardDepth = 3

// ErrBudgetExceeded is wrapped by the error of Parse when a message costs
// more work than its limits allow (rawmail.ErrBudgetExceeded).
var ErrBudgetExceeded = rawmail.ErrBudgetExceeded

// Parse reads one message with rawmail.DefaultLimits and returns what it
// found. Damage is no error: a message that is no report of any kind comes
// back with IsARF false and Format FormatNone. The only error is one
// wrapping ErrBudgetExceeded, for a message that costs more work to read
// than the limits allow; no report is returned with it.
func Parse(raw []byte) (*Report, error) {
	return ParseLimits(raw, rawmail.DefaultLimits())
}

// ParseLimits is Parse with other limits.
func ParseLimits(raw []byte, limits rawmail.Limits) (*Report, error) {
	return parseBudget(raw, rawmail.NewBudget(limits))
}

func parseBudget(raw []byte, bud *rawmail.Budget) (*Report, error) {
	r := fromPart(rawmail.ParseShallowWith(raw, bud), 0, bud)
	if err := bud.Err(); err != nil {
		return nil, err
	}
	return r, nil
}

func fromPart(root *rawmail.Part, depth int, bud *rawmail.Budget) *Report {
	r := &Report{Format: FormatNone}
	h := root.Header
	r.ReportFrom = h.Get("From")
	r.ReportSubject = h.Get("Subject")
	r.ReportMessageID = h.Get("Message-ID")
	if t, ok := rawmail.ParseDate(h.Get("Date")); ok {
		r.ReportDate = t
	}
	r.TopContentType = root.MediaType
	r.ReportType = strings.ToLower(root.Params["report-type"])

	fb, orig, attached := findParts(root)
	if fb == nil && r.ReportType == "feedback-report" {
		fb = findFieldsPart(root, bud)
	}
	if fb == nil && depth < maxForwardDepth {
		// A report forwarded as an attachment (an abuse desk passing it
		// on): read the attached report instead.
		for _, m := range attached {
			if bud.Exceeded() {
				return r
			}
			if inner := fromPart(m.FullWith(bud), depth+1, bud); inner.IsARF {
				return inner
			}
		}
	}
	if orig != nil {
		r.Original = originalFrom(orig.Message, orig.MediaType != "message/rfc822" &&
			orig.MediaType != "message/global")
	}
	if fb != nil {
		r.IsARF = true
		r.Format = FormatARF
		r.readFields(fb.Body, bud)
		if r.Original == nil {
			r.Original = inlineOriginal(root, fb, bud)
		}
		return r
	}
	r.classifyNonARF(root, bud)
	return r
}

// findParts walks the tree for the first message/feedback-report part,
// the first attached original (message/rfc822 or a header-only part) and
// every attached message (for forwarded reports). It does not descend into
// attached messages.
func findParts(root *rawmail.Part) (fb, orig *rawmail.Part, attached []*rawmail.Part) {
	root.Walk(func(p *rawmail.Part) bool {
		if p == root {
			return true
		}
		switch p.MediaType {
		case "message/feedback-report":
			if fb == nil {
				fb = p
			}
		case "message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers":
			if p.Message != nil {
				if orig == nil {
					orig = p
				}
				attached = append(attached, p.Message)
			}
			return false
		}
		return true
	})
	return fb, orig, attached
}

// findFieldsPart finds, in a report that declares report-type
// feedback-report but labels its machine-readable part wrongly, the part
// whose body starts with a Feedback-Type field.
func findFieldsPart(root *rawmail.Part, bud *rawmail.Budget) *rawmail.Part {
	var found *rawmail.Part
	root.Walk(func(p *rawmail.Part) bool {
		if found != nil || p.Message != nil || bud.Exceeded() {
			return false
		}
		if len(p.Parts) == 0 && strings.HasPrefix(p.MediaType, "text/") {
			if h, _ := rawmail.ParseHeaderWith(trimLeadingBlank(p.Body), bud); h.Has("Feedback-Type") {
				found = p
			}
		}
		return true
	})
	return found
}

func trimLeadingBlank(b []byte) []byte {
	for len(b) > 0 && (b[0] == '\n' || b[0] == '\r' || b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// readFields reads the message/feedback-report fields. Blank lines and
// lines that are not fields are skipped, so a report with stray text in
// this part loses nothing.
func (r *Report) readFields(body []byte, bud *rawmail.Budget) {
	r.Fields = readFieldLines(body, bud)
	for _, f := range r.Fields {
		v := f.Value
		switch strings.ToLower(f.Name) {
		case "feedback-type":
			setOnce(&r.FeedbackType, v)
		case "user-agent":
			setOnce(&r.UserAgent, v)
		case "version":
			setOnce(&r.Version, v)
		case "source-ip":
			setOnce(&r.SourceIP, v)
		case "original-mail-from":
			setOnce(&r.OriginalMailFrom, v)
		case "original-rcpt-to":
			r.OriginalRcptTo = append(r.OriginalRcptTo, v)
		case "arrival-date":
			r.ArrivalDateRaw = v
		case "received-date":
			if r.ArrivalDateRaw == "" {
				r.ArrivalDateRaw = v
			}
		case "reported-domain":
			r.ReportedDomain = append(r.ReportedDomain, v)
		case "reported-uri":
			r.ReportedURI = append(r.ReportedURI, v)
		case "reporting-mta":
			setOnce(&r.ReportingMTA, v)
		case "incidents":
			setOnce(&r.Incidents, v)
		case "original-envelope-id":
			setOnce(&r.OriginalEnvelopeID, v)
		case "authentication-results":
			r.AuthenticationResults = append(r.AuthenticationResults, v)
		case "removal-recipient":
			r.RemovalRecipient = append(r.RemovalRecipient, v)
		case "auth-failure":
			setOnce(&r.AuthFailure, v)
		case "delivery-result":
			setOnce(&r.DeliveryResult, v)
		case "dkim-domain":
			setOnce(&r.DKIMDomain, v)
		case "dkim-identity":
			setOnce(&r.DKIMIdentity, v)
		case "dkim-selector":
			setOnce(&r.DKIMSelector, v)
		case "spf-dns":
			r.SPFDNS = append(r.SPFDNS, v)
		case "identity-alignment":
			setOnce(&r.IdentityAlignment, v)
		case "content-type", "content-transfer-encoding", "content-disposition", "mime-version":
			// MIME fields of a part read as fields: not report fields.
		default:
			if r.Other == nil {
				r.Other = make(map[string][]string)
			}
			k := strings.ToLower(f.Name)
			r.Other[k] = append(r.Other[k], v)
		}
	}
	if r.ArrivalDateRaw != "" {
		if t, ok := rawmail.ParseDate(r.ArrivalDateRaw); ok {
			r.ArrivalDate = t
		}
	}
}

func setOnce(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

// readFieldLines reads "Name: value" lines with folded continuations,
// skipping blank lines and anything that is not a field. Each run of
// fields is read once (rawmail.ParseHeaderWith costs only the run it
// reads), so the whole body is read in one pass.
func readFieldLines(body []byte, bud *rawmail.Budget) rawmail.Header {
	var out rawmail.Header
	for len(body) > 0 && !bud.Exceeded() {
		h, rest := rawmail.ParseHeaderWith(body, bud)
		out = append(out, h...)
		if len(rest) == len(body) || len(h) == 0 && len(rest) == 0 {
			// No progress: skip one line.
			i := bytes.IndexByte(body, '\n')
			if i < 0 {
				break
			}
			bud.Lines(1)
			rest = body[i+1:]
		}
		body = rest
	}
	return out
}

// originalFrom builds the Original of an attached message or header.
func originalFrom(m *rawmail.Part, headersOnly bool) *Original {
	if m == nil || len(m.Header) == 0 {
		return nil
	}
	h := m.Header
	o := &Original{
		Header:      h,
		HeadersOnly: headersOnly,
		MessageID:   h.Get("Message-ID"),
		From:        h.Get("From"),
		To:          h.Get("To"),
		Subject:     h.Get("Subject"),
		ReturnPath:  h.Get("Return-Path"),
		Date:        h.Get("Date"),
	}
	for _, f := range h {
		if len(f.Name) > 2 && (f.Name[0] == 'X' || f.Name[0] == 'x') && f.Name[1] == '-' {
			o.XHeaders = append(o.XHeaders, f)
		}
		if strings.EqualFold(f.Name, "DKIM-Signature") {
			if d := DKIMTag(f.Value, "d"); d != "" {
				o.DKIMDomains = append(o.DKIMDomains, strings.ToLower(d))
			}
		}
	}
	return o
}

// DKIMTag returns the value of tag name in a DKIM-Signature value (RFC
// 6376 section 3.2 tag list), white space removed.
func DKIMTag(sig, name string) string {
	for _, t := range strings.Split(sig, ";") {
		k, v, ok := strings.Cut(t, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.Join(strings.Fields(v), "")
		}
	}
	return ""
}

// headerNames are fields that mark the start of a quoted message header.
var headerNames = map[string]bool{
	"received": true, "return-path": true, "from": true, "to": true, "subject": true,
	"date": true, "message-id": true, "dkim-signature": true, "mime-version": true,
	"delivered-to": true, "x-original-to": true, "authentication-results": true,
}

// inlineOriginal finds a message header quoted in a text part of the
// report (when the original is not attached as its own part): the first
// run of at least three header fields, one of them From, Message-ID,
// Subject or Received.
func inlineOriginal(root *rawmail.Part, skip *rawmail.Part, bud *rawmail.Budget) *Original {
	var o *Original
	root.Walk(func(p *rawmail.Part) bool {
		if o != nil || p == skip || p.Message != nil || bud.Exceeded() {
			return false
		}
		if len(p.Parts) == 0 && strings.HasPrefix(p.MediaType, "text/") {
			bud.Scan(len(p.Body))
			if h, ok := quotedHeader(p.Text(), bud); ok {
				o = originalFrom(&rawmail.Part{Header: h}, true)
			}
		}
		return true
	})
	return o
}

// QuotedHeader finds the first run of header fields quoted in text: at
// least three fields, starting at a line whose field name is a common
// message header, with one of From, Message-ID, Subject or Received.
func QuotedHeader(text string) (rawmail.Header, bool) { return quotedHeader(text, nil) }

// quotedHeader is QuotedHeader charging its work to bud. A run of fields
// that is not the quoted header is skipped as a whole: every run starting
// further inside it holds a subset of its fields, so it cannot qualify
// either, and each line is read once.
func quotedHeader(text string, bud *rawmail.Budget) (rawmail.Header, bool) {
	b := []byte(text)
	for pos := 0; pos < len(b) && !bud.Exceeded(); {
		end := pos + bytes.IndexByte(b[pos:], '\n')
		if end < pos {
			end = len(b)
		}
		line := b[pos:end]
		if i := indexColon(line); i > 0 && headerNames[lowerName(line[:i])] {
			n, lines := rawmail.HeaderLen(b[pos:])
			if lines >= 3 {
				// Enough lines for three fields: read them.
				h, _ := rawmail.ParseHeaderWith(b[pos:pos+n], bud)
				if len(h) >= 3 && (h.Has("From") || h.Has("Message-ID") || h.Has("Subject") || h.Has("Received")) {
					return h, true
				}
			} else {
				bud.Scan(n)
				bud.Lines(lines)
			}
			if pos+n > end+1 {
				pos += n
				continue
			}
		}
		pos = end + 1
	}
	return nil, false
}

// lowerName returns a field name in lower case ("" for one longer than
// any name in headerNames).
func lowerName(name []byte) string {
	var buf [32]byte
	if len(name) > len(buf) {
		return ""
	}
	for i, c := range name {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return string(buf[:len(name)])
}

func indexColon(line []byte) int {
	for i, c := range line {
		if c == ':' {
			return i
		}
		if c <= ' ' || c >= 0x7f || i > 40 {
			return -1
		}
	}
	return -1
}

var (
	reComplaintFrom = regexp.MustCompile(`(?i)complaint about message from\s+\[?([0-9a-fA-F:.]+)`)
	reSenderIP      = regexp.MustCompile(`(?im)^\s*(?:sender ip address|source ip|source-ip|sender ip|ip address)\s*:\s*\[?([0-9a-fA-F:.]+)`)
	reSubjectIP     = regexp.MustCompile(`(?i)\bIP[: ]\s*([0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9a-fA-F]*:[0-9a-fA-F:.]+)`)
	reDMARCText     = regexp.MustCompile(`(?i)\bdmarc\b.*\b(?:failure|forensic|failed)\b|\b(?:failure|forensic|failed)\b.*\bdmarc\b`)
)

// classifyNonARF recognises the complaint formats that are not ARF.
func (r *Report) classifyNonARF(root *rawmail.Part, bud *rawmail.Budget) {
	h := root.Header
	subject := rawmail.DecodeHeader(r.ReportSubject)
	from := strings.ToLower(r.ReportFrom)
	if r.Original != nil {
		r.JMRPOriginalRecipient = r.Original.Header.Get("X-HmXmrOriginalRecipient")
	}
	switch {
	case strings.EqualFold(h.Get("X-Apple-Unsubscribe"), "true"):
		r.Format = FormatAppleUnsubscribe
		r.AppleUnsubscribe = true
	case r.JMRPOriginalRecipient != "":
		r.Format = FormatJMRP
	case reComplaintFrom.MatchString(subject) && r.Original != nil:
		r.Format = FormatJMRP
		if strings.Contains(from, "amazonses") {
			r.Format = FormatAmazonSES
		}
	case (strings.Contains(from, "arf.mail.yahoo.") || strings.EqualFold(h.Get("X-Yahoo-Newman-Property"), "cfl")) && r.Original != nil:
		r.Format = FormatYahooCFL
	default:
		text := firstText(root)
		bud.Scan(2 * len(text))
		if reDMARCText.MatchString(subject) || reDMARCText.MatchString(firstLines(text, 6)) {
			r.Format = FormatDMARCText
			if r.Original == nil {
				if hh, ok := quotedHeader(text, bud); ok {
					r.Original = originalFrom(&rawmail.Part{Header: hh}, true)
				}
			}
			if m := reSenderIP.FindStringSubmatch(text); m != nil {
				r.TextSourceIP = m[1]
			} else if m := reSubjectIP.FindStringSubmatch(subject); m != nil {
				r.TextSourceIP = m[1]
			}
		}
	}
	if r.TextSourceIP == "" {
		if m := reComplaintFrom.FindStringSubmatch(subject); m != nil {
			r.TextSourceIP = m[1]
		}
	}
	if _, ok := SourceAddr(r.TextSourceIP); !ok {
		r.TextSourceIP = ""
	}
}

// firstText returns the first text part of the message as UTF-8.
func firstText(root *rawmail.Part) string {
	var s string
	found := false
	root.Walk(func(p *rawmail.Part) bool {
		if found || p.Message != nil {
			return false
		}
		if len(p.Parts) == 0 && strings.HasPrefix(p.MediaType, "text/") {
			s, found = p.Text(), true
			return false
		}
		return true
	})
	return s
}

func firstLines(s string, n int) string {
	i := 0
	for k := 0; k < n; k++ {
		j := strings.IndexByte(s[i:], '\n')
		if j < 0 {
			return s
		}
		i += j + 1
	}
	return s[:i]
}

package dsn

import (
	"strings"

	"github.com/mailmon/mailmon/services/internal/rawmail"
)

// ErrBudgetExceeded is wrapped by the error of Parse when a message costs
// more work than its limits allow (rawmail.ErrBudgetExceeded).
var ErrBudgetExceeded = rawmail.ErrBudgetExceeded

// Parse reads one message with rawmail.DefaultLimits and returns what it
// found, classified. Damage is no error: a message that is no bounce comes
// back with a Kind other than KindBounce and no failed recipients. The
// only error is one wrapping ErrBudgetExceeded, for a message that costs
// more work to read than the limits allow; no bounce is returned with it.
func Parse(raw []byte) (*Bounce, error) {
	return ParseLimits(raw, rawmail.DefaultLimits())
}

// ParseLimits is Parse with other limits.
func ParseLimits(raw []byte, limits rawmail.Limits) (*Bounce, error) {
	return parseBudget(raw, rawmail.NewBudget(limits))
}

func parseBudget(raw []byte, bud *rawmail.Budget) (*Bounce, error) {
	b := parseMessage(rawmail.ParseShallowWith(raw, bud), 0, bud)
	if err := bud.Err(); err != nil {
		return nil, err
	}
	return b, nil
}

// maxNesting bounds how deep Parse looks into bounces that carry another
// bounce (a relay or gateway returning the bounce it received).
const maxNesting = 2

func parseMessage(root *rawmail.Part, depth int, bud *rawmail.Budget) *Bounce {
	b := &Bounce{Kind: KindNone}
	h := root.Header
	b.From = h.Get("From")
	b.Subject = rawmail.DecodeHeader(h.Get("Subject"))
	b.MessageID = h.Get("Message-ID")

	sc := scanParts(root, bud)
	if sc.original != nil {
		b.Original = newOriginal(sc.original.Header, sc.originalHeadersOnly)
	}

	// The notification text, cut where the returned message starts.
	text := strings.Join(sc.texts, "\n")
	if text == "" && sc.html != nil {
		bud.Scan(2 * len(sc.html.Body))
		text = htmlToText(sc.html.Text())
	}
	// Every pass below reads the text a bounded number of times (cutting,
	// field search, recipient search), each a few passes at most.
	if !bud.Scan(8 * len(text)) {
		return b
	}
	notice, quoted := cutOriginal(text)
	if b.Original == nil && quoted != "" {
		if hh, ok := quotedHeader(quoted); ok {
			b.Original = newOriginal(hh, true)
		}
	}

	if sesJSON(b, text) {
		// Amazon SES notification: recipients and kind set.
		b.classify()
		return b
	}
	if k := reportKind(h, b.Subject, notice, sc); k != "" {
		// A complaint report or a challenge to the sender: no recipient
		// failed, whatever its text says about delivery.
		b.Kind = k
		return b
	}
	for _, p := range sc.dsn {
		b.readDeliveryStatus(p, bud)
	}
	if len(b.Recipients) == 0 {
		// A delivery-status block pasted into the text (or a mislabelled
		// part).
		b.readDeliveryStatusText(notice, bud)
	}
	if len(b.Recipients) == 0 && depth < maxNesting {
		// A bounce that wraps the bounce it received (a gateway or a
		// forwarding mailbox): read the inner one.
		var inner *rawmail.Part
		if sc.original != nil && looksLikeBounceHeader(sc.original.Header) {
			inner = sc.original.FullWith(bud)
		} else if quoted != "" {
			if q := rawmail.ParseShallowWith([]byte(skipToHeader(quoted)), bud); looksLikeBounceHeader(q.Header) {
				inner = q
			}
		}
		if inner != nil && !bud.Exceeded() {
			if ib := parseMessage(inner, depth+1, bud); ib.Kind == KindBounce {
				return ib
			}
		}
	}
	if len(b.Recipients) > 0 {
		b.Format = FormatRFC3464
		b.enrichFromText(notice)
	} else if isBounceLike(h, b.Subject, notice, sc) {
		b.Format = FormatText
		b.readText(h, notice, b.exclusions(h))
	}
	b.Kind = b.decideKind(h, notice, sc)
	b.classify()
	return b
}

// looksLikeBounceHeader reports whether a message header is a bounce's:
// a delivery-status report, or from a mailer daemon.
func looksLikeBounceHeader(h rawmail.Header) bool {
	ct := strings.ToLower(h.Get("Content-Type"))
	return strings.Contains(ct, "delivery-status") || h.Has("X-Failed-Recipients") ||
		isDaemonSender(h.Get("From")) && anyPhrase(lowerASCII(h.Get("Subject")), bounceSubjectPhrases)
}

// skipToHeader drops the lines before the first quoted header in s.
func skipToHeader(s string) string {
	if i, ok := quotedHeaderStart(s); ok {
		return s[i:]
	}
	return s
}

// partScan is what scanParts found in the MIME tree.
type partScan struct {
	dsn                 []*rawmail.Part // message/delivery-status parts
	original            *rawmail.Part   // the returned message (or header)
	originalHeadersOnly bool
	texts               []string      // text/plain bodies before the original, UTF-8
	html                *rawmail.Part // the first text/html part, read when there is no text/plain
	multipartReport     bool
	reportType          string
}

func scanParts(root *rawmail.Part, bud *rawmail.Budget) partScan {
	var sc partScan
	sc.reportType = strings.ToLower(root.Params["report-type"])
	sc.multipartReport = root.MediaType == "multipart/report"
	root.Walk(func(p *rawmail.Part) bool {
		if bud.Exceeded() {
			return false
		}
		switch p.MediaType {
		case "message/delivery-status", "message/global-delivery-status":
			sc.dsn = append(sc.dsn, p)
			return false
		case "message/rfc822", "message/global", "message/partial":
			if sc.original == nil && p.Message != nil {
				sc.original = p.Message
			}
			return false
		case "text/rfc822-headers", "message/rfc822-headers", "message/global-headers":
			if sc.original == nil && p.Message != nil {
				sc.original = p.Message
				sc.originalHeadersOnly = true
			}
			return false
		}
		if len(p.Parts) > 0 {
			return true
		}
		if strings.HasPrefix(p.MediaType, "multipart/") {
			// A multipart whose boundary is missing or wrong: its body is
			// all the text there is.
			bud.Scan(len(p.Body))
			sc.texts = append(sc.texts, p.Text())
			return false
		}
		if p != root && sc.original == nil && looksLikeMessageHeader(p.Header) {
			// A part with no MIME header of its own that starts with the
			// returned message's header.
			sc.original = p
			return false
		}
		if sc.original != nil {
			return false
		}
		switch {
		case p.MediaType == "text/plain" || p.MediaType == "text/enriched" || p.MediaType == "text":
			if strings.EqualFold(strings.TrimSpace(p.Header.Get("Content-Disposition")), "attachment") && len(sc.texts) > 0 {
				return false
			}
			bud.Scan(len(p.Body))
			sc.texts = append(sc.texts, p.Text())
		case p.MediaType == "text/html":
			if sc.html == nil {
				sc.html = p
			}
		}
		return false
	})
	return sc
}

// looksLikeMessageHeader reports whether a part's header is that of a mail
// message rather than a MIME part: two or more of the fields every message
// has.
func looksLikeMessageHeader(h rawmail.Header) bool {
	n := 0
	for _, f := range h {
		var buf [16]byte
		if len(f.Name) > len(buf) {
			continue
		}
		switch string(lowerInto(buf[:], f.Name)) {
		case "received", "return-path", "message-id", "from", "subject", "date", "to":
			n++
		}
	}
	return n >= 2
}

func newOriginal(h rawmail.Header, headersOnly bool) *Original {
	if len(h) == 0 {
		return nil
	}
	o := &Original{
		Header:      h,
		HeadersOnly: headersOnly,
		MessageID:   h.Get("Message-ID"),
		From:        h.Get("From"),
		To:          h.Get("To"),
		Subject:     h.Get("Subject"),
		ReturnPath:  h.Get("Return-Path"),
	}
	for _, v := range h.Values("DKIM-Signature") {
		for _, t := range strings.Split(v, ";") {
			k, val, ok := strings.Cut(t, "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "d") {
				o.DKIMDomains = append(o.DKIMDomains, strings.ToLower(strings.Join(strings.Fields(val), "")))
			}
		}
	}
	return o
}

// exclusions are the addresses that cannot be failed recipients: the
// bounce's own sender and recipient, and the returned message's sender.
func (b *Bounce) exclusions(h rawmail.Header) map[string]bool {
	ex := map[string]bool{}
	add := func(v string) {
		for _, a := range findAddresses(v) {
			ex[lowerASCII(a)] = true
		}
	}
	add(h.Get("From"))
	add(h.Get("To"))
	add(h.Get("Return-Path"))
	add(h.Get("Reply-To"))
	add(h.Get("Delivered-To"))
	if o := b.Original; o != nil {
		add(o.From)
		add(o.ReturnPath)
		add(o.Header.Get("Sender"))
		add(o.Header.Get("Reply-To"))
	}
	return ex
}

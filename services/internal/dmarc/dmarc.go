package dmarc

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mailmon/mailmon/services/internal/rawmail"
)

// Errors Parse wraps, one per reason a document is refused.
var (
	// ErrNotXML: the document is not well-formed XML.
	ErrNotXML = errors.New("not XML")
	// ErrNoFeedback: the XML's root element is not <feedback>.
	ErrNoFeedback = errors.New("no <feedback> root")
	// ErrNoMetadata: the <feedback> has no <report_metadata>.
	ErrNoMetadata = errors.New("no report_metadata")
	// ErrBadValue: a number (date, count, pct) or an IP address that
	// cannot be read.
	ErrBadValue = errors.New("bad value")
)

// Report is one aggregate report.
type Report struct {
	// OrgName, Email and ReportID are the reporter's <report_metadata>,
	// trimmed (OrgName keeps its case: "XYZ Corporation").
	OrgName, Email, ReportID string
	// Begin and End bound the reporting period (<date_range>), in UTC.
	Begin, End time.Time
	// Domain, ADKIM, ASPF, Policy and SubdomainPolicy are the published
	// policy (<policy_published>: domain, adkim, aspf, p, sp), lower-cased.
	Domain, ADKIM, ASPF, Policy, SubdomainPolicy string
	// Percent is pct=, 100 when absent.
	Percent int
	// NonexistentPolicy (np=) and Testing (t=, "y" or "n") are RFC 9990's
	// additions, "" when absent.
	NonexistentPolicy, Testing string
	Records                    []Record
}

// Record is one <record>: the mail from one source IP with one set of
// identifiers and results.
type Record struct {
	// SourceIP is the zero Addr when the record has none.
	SourceIP netip.Addr
	Count    uint64
	// Disposition, DKIM and SPF are <policy_evaluated>: what the receiver
	// did ("none", "quarantine", "reject") and the aligned results
	// ("pass", "fail"), lower-cased.
	Disposition, DKIM, SPF string
	// OverrideReasons are the non-empty <reason><type> values.
	OverrideReasons []string
	// HeaderFrom, EnvelopeFrom and EnvelopeTo are <identifiers>,
	// lower-cased.
	HeaderFrom, EnvelopeFrom, EnvelopeTo string
	// DKIMAuth and SPFAuth are the raw <auth_results>.
	DKIMAuth []DKIMAuth
	SPFAuth  []SPFAuth
}

// DKIMAuth is one DKIM result of <auth_results>; Domain and Result are
// lower-cased, Selector is as given.
type DKIMAuth struct{ Domain, Selector, Result string }

// SPFAuth is one SPF result of <auth_results>; all lower-cased.
type SPFAuth struct{ Domain, Scope, Result string }

// The XML as it comes; elements matched by local name in any namespace.
type xmlFeedback struct {
	XMLName  xml.Name
	Metadata *struct {
		OrgName   string `xml:"org_name"`
		Email     string `xml:"email"`
		ReportID  string `xml:"report_id"`
		DateRange struct {
			Begin string `xml:"begin"`
			End   string `xml:"end"`
		} `xml:"date_range"`
	} `xml:"report_metadata"`
	Policy struct {
		Domain  string  `xml:"domain"`
		ADKIM   string  `xml:"adkim"`
		ASPF    string  `xml:"aspf"`
		P       string  `xml:"p"`
		SP      string  `xml:"sp"`
		NP      string  `xml:"np"`
		Pct     *string `xml:"pct"`
		Testing string  `xml:"testing"`
	} `xml:"policy_published"`
	Records []xmlRecord `xml:"record"`
}

type xmlRecord struct {
	Row struct {
		SourceIP string `xml:"source_ip"`
		Count    string `xml:"count"`
		Eval     struct {
			Disposition string `xml:"disposition"`
			DKIM        string `xml:"dkim"`
			SPF         string `xml:"spf"`
			Reasons     []struct {
				Type string `xml:"type"`
			} `xml:"reason"`
		} `xml:"policy_evaluated"`
	} `xml:"row"`
	Identifiers struct {
		HeaderFrom   string `xml:"header_from"`
		EnvelopeFrom string `xml:"envelope_from"`
		EnvelopeTo   string `xml:"envelope_to"`
	} `xml:"identifiers"`
	Auth struct {
		DKIM []struct {
			Domain   string `xml:"domain"`
			Selector string `xml:"selector"`
			Result   string `xml:"result"`
		} `xml:"dkim"`
		SPF []struct {
			Domain string `xml:"domain"`
			Scope  string `xml:"scope"`
			Result string `xml:"result"`
		} `xml:"spf"`
	} `xml:"auth_results"`
}

// Parse reads one aggregate report document (decompressed XML). See the
// package documentation for what it tolerates and what it refuses.
func Parse(doc []byte) (*Report, error) {
	doc = trimJunk(doc)
	if len(doc) == 0 {
		return nil, fmt.Errorf("%w: no XML element", ErrNotXML)
	}
	doc = toUTF8(doc)
	raw := xml.NewDecoder(bytes.NewReader(doc))
	// The document is UTF-8 by now, whatever its declaration says.
	raw.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	raw.Entity = xml.HTMLEntity
	d := xml.NewTokenDecoder(&depthLimiter{d: raw})
	var fb xmlFeedback
	if err := d.Decode(&fb); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotXML, err)
	}
	if fb.XMLName.Local != "feedback" {
		return nil, fmt.Errorf("%w: the root element is <%s>", ErrNoFeedback, fb.XMLName.Local)
	}
	if fb.Metadata == nil {
		return nil, ErrNoMetadata
	}
	m := fb.Metadata
	r := &Report{
		OrgName:           clean(m.OrgName),
		Email:             clean(m.Email),
		ReportID:          clean(m.ReportID),
		Domain:            lower(fb.Policy.Domain),
		ADKIM:             lower(fb.Policy.ADKIM),
		ASPF:              lower(fb.Policy.ASPF),
		Policy:            lower(fb.Policy.P),
		SubdomainPolicy:   lower(fb.Policy.SP),
		NonexistentPolicy: lower(fb.Policy.NP),
		Testing:           lower(fb.Policy.Testing),
		Percent:           100,
	}
	var err error
	if r.Begin, err = unixTime("begin", m.DateRange.Begin); err != nil {
		return nil, err
	}
	if r.End, err = unixTime("end", m.DateRange.End); err != nil {
		return nil, err
	}
	if fb.Policy.Pct != nil && clean(*fb.Policy.Pct) != "" {
		pct, err := strconv.Atoi(clean(*fb.Policy.Pct))
		if err != nil || pct < 0 || pct > 100 {
			return nil, fmt.Errorf("%w: pct %q", ErrBadValue, clean(*fb.Policy.Pct))
		}
		r.Percent = pct
	}
	r.Records = make([]Record, 0, len(fb.Records))
	for i := range fb.Records {
		rec, err := record(&fb.Records[i])
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i+1, err)
		}
		r.Records = append(r.Records, rec)
	}
	return r, nil
}

// MaxDepth is how deep elements may nest; a report needs 5 levels.
// encoding/xml's work per element grows with the nesting depth, so a
// document of nothing but start tags would cost time quadratic in its
// size.
const MaxDepth = 64

// depthLimiter hands the raw tokens of a decoder (namespaces are
// translated by the decoder reading from it) to another decoder, and ends
// the document with an error past MaxDepth.
type depthLimiter struct {
	d     *xml.Decoder
	depth int
}

func (l *depthLimiter) Token() (xml.Token, error) {
	t, err := l.d.RawToken()
	switch t.(type) {
	case xml.StartElement:
		l.depth++
		if l.depth > MaxDepth {
			return nil, fmt.Errorf("elements nested more than %d deep", MaxDepth)
		}
	case xml.EndElement:
		l.depth--
	}
	return t, err
}

func record(x *xmlRecord) (Record, error) {
	rec := Record{
		Disposition:  lower(x.Row.Eval.Disposition),
		DKIM:         lower(x.Row.Eval.DKIM),
		SPF:          lower(x.Row.Eval.SPF),
		HeaderFrom:   lower(x.Identifiers.HeaderFrom),
		EnvelopeFrom: lower(x.Identifiers.EnvelopeFrom),
		EnvelopeTo:   lower(x.Identifiers.EnvelopeTo),
	}
	if s := clean(x.Row.SourceIP); s != "" {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return rec, fmt.Errorf("%w: source_ip %q", ErrBadValue, s)
		}
		rec.SourceIP = ip.Unmap()
	}
	if s := clean(x.Row.Count); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			// A count written as a number with a zero fraction ("3.0").
			f, ferr := strconv.ParseFloat(s, 64)
			if ferr != nil || f < 0 || f >= 1<<63 || f != math.Trunc(f) {
				return rec, fmt.Errorf("%w: count %q", ErrBadValue, s)
			}
			n = uint64(f)
		}
		rec.Count = n
	}
	for _, reason := range x.Row.Eval.Reasons {
		if t := lower(reason.Type); t != "" {
			rec.OverrideReasons = append(rec.OverrideReasons, t)
		}
	}
	for _, a := range x.Auth.DKIM {
		rec.DKIMAuth = append(rec.DKIMAuth, DKIMAuth{Domain: lower(a.Domain), Selector: clean(a.Selector), Result: lower(a.Result)})
	}
	for _, a := range x.Auth.SPF {
		rec.SPFAuth = append(rec.SPFAuth, SPFAuth{Domain: lower(a.Domain), Scope: lower(a.Scope), Result: lower(a.Result)})
	}
	return rec, nil
}

// unixTime reads a <date_range> bound: Unix seconds (some reporters write
// a fraction, which is dropped).
func unixTime(what, s string) (time.Time, error) {
	s = clean(s)
	if s == "" {
		return time.Time{}, fmt.Errorf("%w: no date_range %s", ErrBadValue, what)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > -1e15 && f < 1e15 {
		return time.Unix(int64(f), 0).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%w: date_range %s %q", ErrBadValue, what, s)
}

func clean(s string) string { return strings.TrimSpace(s) }
func lower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// reDecl finds the XML declaration.
var reDecl = regexp.MustCompile(`<\?xml[\s?]`)

// trimJunk cuts text before the document's start (the XML declaration or
// the first <feedback> tag, whichever comes first) and after the last
// </feedback>. A document that has neither a declaration nor a <feedback>
// tag is returned from its first '<' (the decoder then says what it is).
func trimJunk(doc []byte) []byte {
	start := feedbackStart(doc)
	if loc := reDecl.FindIndex(doc[:max(start, 0)]); loc != nil {
		start = loc[0]
	} else if start < 0 {
		if loc := reDecl.FindIndex(doc); loc != nil {
			start = loc[0]
		}
	}
	if start < 0 {
		start = bytes.IndexByte(doc, '<')
		if start < 0 {
			return nil
		}
	}
	doc = doc[start:]
	if end := feedbackEnd(doc); end > 0 {
		doc = doc[:end]
	}
	return doc
}

var feedbackName = []byte("feedback")

// feedbackStart is the offset of the first <feedback> start tag (with or
// without a namespace prefix), or -1.
func feedbackStart(doc []byte) int {
	for off := 0; ; {
		i := bytes.Index(doc[off:], feedbackName)
		if i < 0 {
			return -1
		}
		i += off
		off = i + len(feedbackName)
		if off < len(doc) && !isSpace(doc[off]) && doc[off] != '>' && doc[off] != '/' {
			continue
		}
		if lt := tagOpen(doc, i); lt >= 0 && (lt+1 == i || doc[lt+1] != '/') {
			return lt
		}
	}
}

// feedbackEnd is the offset just past the last </feedback> end tag (with
// or without a prefix), or -1.
func feedbackEnd(doc []byte) int {
	for end := len(doc); ; {
		i := bytes.LastIndex(doc[:end], feedbackName)
		if i < 0 {
			return -1
		}
		end = i
		j := i + len(feedbackName)
		for j < len(doc) && isSpace(doc[j]) {
			j++
		}
		if j == len(doc) || doc[j] != '>' {
			continue
		}
		if lt := tagOpen(doc, i); lt >= 0 && lt+1 < i && doc[lt+1] == '/' {
			return j + 1
		}
	}
}

// tagOpen returns the offset of the '<' that opens the tag whose local
// name starts at i: right before it, or before "/", "prefix:" or
// "/prefix:"; -1 when there is none.
func tagOpen(doc []byte, i int) int {
	j := i
	if j > 0 && doc[j-1] == ':' {
		j--
		for j > 0 && isNameByte(doc[j-1]) {
			j--
		}
		if j == i-1 { // an empty prefix
			return -1
		}
	}
	if j > 0 && doc[j-1] == '/' {
		j--
	}
	if j > 0 && doc[j-1] == '<' {
		return j - 1
	}
	return -1
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isNameByte(c byte) bool {
	return c == '_' || c == '-' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// reEncoding reads the encoding of an XML declaration.
var reEncoding = regexp.MustCompile(`^<\?xml[^>]*?encoding\s*=\s*["']([-\w.:]+)["']`)

// toUTF8 converts a document that declares a charset other than UTF-8 to
// UTF-8, and replaces every byte that is not valid UTF-8 with U+FFFD.
func toUTF8(doc []byte) []byte {
	if m := reEncoding.FindSubmatch(doc); m != nil {
		cs := strings.ToLower(string(m[1]))
		if cs != "utf-8" && cs != "utf8" && cs != "us-ascii" && cs != "ascii" {
			doc = []byte(rawmail.ToUTF8(cs, doc))
		}
	}
	if utf8.Valid(doc) {
		return doc
	}
	out := make([]byte, 0, len(doc)+16)
	for len(doc) > 0 {
		r, n := utf8.DecodeRune(doc)
		if r == utf8.RuneError && n <= 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
			doc = doc[1:]
			continue
		}
		out = append(out, doc[:n]...)
		doc = doc[n:]
	}
	return out
}

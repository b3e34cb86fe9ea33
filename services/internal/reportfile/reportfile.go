package reportfile

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"

	"github.com/mailmon/mailmon/services/internal/rawmail"
)

// ErrLimit is wrapped by the error of an input that runs into one of its
// Limits (a decompression bomb, too many documents, archives nested too
// deep, a message that costs too much to read). Such an input is a dead
// letter, not a transient failure.
var ErrLimit = errors.New("report file limit exceeded")

// ErrNoReport is wrapped by the error of an input that holds nothing that
// looks like a DMARC or TLS report.
var ErrNoReport = errors.New("no report found")

// Format is the kind of report a document is.
type Format string

// The report formats.
const (
	// FormatDMARC is a DMARC aggregate report (XML, RFC 7489 appendix C,
	// RFC 9990).
	FormatDMARC Format = "dmarc"
	// FormatTLSRPT is an SMTP TLS report (JSON, RFC 8460).
	FormatTLSRPT Format = "tlsrpt"
)

// Document is one report document found in an input.
type Document struct {
	// Name is the file name it came under (attachment or zip entry, with
	// a gzip layer's ".gz" taken off), "" when it had none.
	Name   string
	Format Format
	// Data is the document, decompressed.
	Data []byte
}

// Limits bound what one input may cost.
type Limits struct {
	// MaxInput is the largest raw input, in bytes.
	MaxInput int64
	// MaxDocument is the largest decompressed document (or inner
	// archive), in bytes.
	MaxDocument int64
	// MaxTotal bounds the bytes decompressed from one input altogether.
	MaxTotal int64
	// MaxRatio bounds decompressed size over compressed size for each
	// decompressed stream larger than RatioFloor.
	MaxRatio int64
	// MaxDocuments bounds the zip entries of one archive and the documents
	// of one input.
	MaxDocuments int
}

// RatioFloor is the decompressed size up to which MaxRatio does not apply:
// a small stream may compress extremely well (a tiny report padded with
// spaces) without being a bomb.
const RatioFloor = 1 << 20

// MaxNesting is how many archive layers (gzip, zip) may wrap a document:
// a gzip inside a zip is fine, a third layer is refused.
const MaxNesting = 2

// DefaultLimits are far above any real report (the largest aggregate
// reports, from the biggest receivers, are a few MiB of XML; a report of
// thousands of near-identical records compresses about 100 times) and keep
// one hostile input under 64 MiB of decompressed data (about twice that
// allocated while reading it).
func DefaultLimits() Limits {
	return Limits{
		MaxInput:     64 << 20,
		MaxDocument:  32 << 20,
		MaxTotal:     64 << 20,
		MaxRatio:     1000,
		MaxDocuments: 32,
	}
}

// Extract finds the report documents in raw: an RFC 5322 message (its
// attachments and inline parts), a gzip or zip file, or a bare XML/JSON
// document. Errors: ErrLimit (a bomb or other input past lim; errors.Is),
// ErrNoReport (nothing that looks like a report), or a decompression error
// of a part that looked like a report when nothing else was found.
func Extract(raw []byte, lim Limits) ([]Document, error) {
	if int64(len(raw)) > lim.MaxInput {
		return nil, fmt.Errorf("%w: input of %d bytes (max_input %d)", ErrLimit, len(raw), lim.MaxInput)
	}
	x := &extractor{lim: lim}
	if isMail(raw) {
		if err := x.mail(raw); err != nil {
			return nil, err
		}
	} else if err := x.add("", raw, 0); err != nil {
		return nil, err
	}
	if len(x.docs) == 0 {
		if x.firstErr != nil {
			return nil, x.firstErr
		}
		return nil, fmt.Errorf("%w: %s", ErrNoReport, x.describe())
	}
	return x.docs, nil
}

// extractor collects the documents of one input against its limits.
type extractor struct {
	lim   Limits
	docs  []Document
	total int64 // decompressed bytes so far
	// firstErr is the first error of a part that looked like a report
	// but could not be read (a broken gzip); it is returned only when no
	// document was found.
	firstErr error
	// seen counts the candidates looked at, for ErrNoReport's message.
	seen int
}

func (x *extractor) describe() string {
	if x.seen == 0 {
		return "no part is a report attachment (gzip, zip, XML or TLS report JSON)"
	}
	return fmt.Sprintf("%d candidate part(s), none a DMARC <feedback> document or TLS report JSON", x.seen)
}

// mail walks the MIME tree of a message and adds every part that may be a
// report.
func (x *extractor) mail(raw []byte) error {
	bud := rawmail.NewBudget(rawmail.DefaultLimits())
	root := rawmail.ParseWith(raw, bud)
	if err := bud.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrLimit, err)
	}
	var err error
	root.Walk(func(p *rawmail.Part) bool {
		if err != nil {
			return false
		}
		if p.IsMultipart() || p.Message != nil {
			return true
		}
		name := partName(p)
		if !candidate(p.MediaType, name) && !sniffable(p.Body) {
			return true
		}
		err = x.add(name, p.Body, 0)
		return err == nil
	})
	return err
}

// add takes data found at nesting level depth (the number of archive
// layers around it): an archive is opened, a report is kept, anything else
// is left out.
func (x *extractor) add(name string, data []byte, depth int) error {
	x.seen++
	switch {
	case isGzip(data):
		if depth >= MaxNesting {
			return fmt.Errorf("%w: archives nested more than %d deep (gzip in %q)", ErrLimit, MaxNesting, name)
		}
		out, inner, err := x.gunzip(name, data)
		if err != nil {
			return x.failed(err)
		}
		return x.add(inner, out, depth+1)
	case isZip(data):
		if depth >= MaxNesting {
			return fmt.Errorf("%w: archives nested more than %d deep (zip in %q)", ErrLimit, MaxNesting, name)
		}
		return x.unzip(name, data, depth)
	}
	f := Detect(data)
	if f == "" {
		return nil
	}
	if len(x.docs) >= x.lim.MaxDocuments {
		return fmt.Errorf("%w: more than %d documents (max_documents)", ErrLimit, x.lim.MaxDocuments)
	}
	x.docs = append(x.docs, Document{Name: name, Format: f, Data: data})
	return nil
}

// failed keeps the first error of a broken (not hostile) part, so that
// the other parts are still looked at; a limit error ends the input.
func (x *extractor) failed(err error) error {
	if errors.Is(err, ErrLimit) {
		return err
	}
	if x.firstErr == nil {
		x.firstErr = err
	}
	return nil
}

// gunzip decompresses the first member of a gzip stream; bytes after it
// are ignored (some reporters append junk). It returns the data and the
// name of what it held.
func (x *extractor) gunzip(name string, data []byte) ([]byte, string, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, "", fmt.Errorf("gzip %q: %w", name, err)
	}
	zr.Multistream(false)
	inner := strings.TrimSuffix(strings.TrimSuffix(name, ".gz"), ".GZ")
	if inner == name && zr.Name != "" {
		inner = path.Base(zr.Name)
	}
	out, err := x.inflate(zr, int64(len(data)), "gzip "+quote(name))
	if err != nil {
		return nil, "", err
	}
	return out, inner, nil
}

// unzip adds the entries of a zip archive.
func (x *extractor) unzip(name string, data []byte, depth int) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil && (zr == nil || !errors.Is(err, zip.ErrInsecurePath)) {
		return x.failed(fmt.Errorf("zip %q: %w", name, err))
	}
	if len(zr.File) > x.lim.MaxDocuments {
		return fmt.Errorf("%w: zip %q has %d entries (max_documents %d)", ErrLimit, name, len(zr.File), x.lim.MaxDocuments)
	}
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			if err := x.failed(fmt.Errorf("zip %q entry %q: %w", name, f.Name, err)); err != nil {
				return err
			}
			continue
		}
		// The compressed size is what the archive claims; the archive
		// itself bounds what it can really hold.
		csize := min(int64(f.CompressedSize64), int64(len(data)))
		out, err := x.inflate(rc, csize, fmt.Sprintf("zip %s entry %s", quote(name), quote(f.Name)))
		rc.Close()
		if err != nil {
			if err := x.failed(err); err != nil {
				return err
			}
			continue
		}
		if err := x.add(path.Base(f.Name), out, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// inflate reads a decompressor to its end, never more than the limits
// allow: the rest of MaxTotal, MaxDocument, and MaxRatio times the
// compressed size (above RatioFloor). Past any of them it stops and
// returns an error wrapping ErrLimit.
func (x *extractor) inflate(r io.Reader, compressed int64, what string) ([]byte, error) {
	limit, which := x.lim.MaxDocument, "max_document"
	if rest := x.lim.MaxTotal - x.total; rest < limit {
		limit, which = rest, "max_total"
	}
	if ratio := max(RatioFloor, satMul(x.lim.MaxRatio, compressed)); ratio < limit {
		limit, which = ratio, fmt.Sprintf("max_ratio %d of %d compressed bytes", x.lim.MaxRatio, compressed)
	}
	limit = max(limit, 0)
	out, err := readLimited(r, limit)
	x.total += int64(len(out))
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("%w: %s inflates past %d bytes (%s)", ErrLimit, what, limit, which)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// readLimited reads r to its end or to limit+1 bytes, whichever comes
// first, into a buffer it grows by doubling but never past limit+1, so
// that all it allocates is about 2*(limit+1) bytes at most.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	buf := make([]byte, 0, min(limit+1, 32<<10))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return buf, nil
			}
			// Double, but go straight to limit+1 rather than to a size
			// that would need one more doubling to get there.
			next := int64(2 * cap(buf))
			if 2*next > limit+1 {
				next = limit + 1
			}
			grown := make([]byte, len(buf), next)
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// satMul is a*b, saturating at the largest int64 (and 0 for negatives).
func satMul(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	if a > (1<<63-1)/b {
		return 1<<63 - 1
	}
	return a * b
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// reportTypes are the media types a report part comes as (RFC 6713, RFC
// 8460 section 6, and the common aliases).
var reportTypes = map[string]bool{
	"application/gzip":             true,
	"application/x-gzip":           true,
	"application/zip":              true,
	"application/x-zip-compressed": true,
	"application/x-zip":            true,
	"text/xml":                     true,
	"application/xml":              true,
	"application/tlsrpt+gzip":      true,
	"application/tlsrpt+json":      true,
}

// reReportName matches the file names of report attachments: anything
// ending .xml, .json, .gz or .zip (the conventional names are
// receiver!domain!begin!end[!unique].xml.gz and friends).
var reReportName = regexp.MustCompile(`(?i)\.(xml|json|gz|gzip|zip)$`)

// reConventionalName matches the conventional report file names,
// receiver!policy-domain!begin!end[!unique][.xml|.json][.gz|.zip], whatever
// the part's media type says.
var reConventionalName = regexp.MustCompile(`(?i)^[^!]*![^!]+!\d+!\d+(![^.]*)?(\.xml|\.json)?(\.gz|\.zip)?$`)

// candidate says whether a part of this media type and file name is to be
// opened as a report.
func candidate(mediaType, name string) bool {
	if reportTypes[mediaType] || reConventionalName.MatchString(name) {
		return true
	}
	return (mediaType == "application/octet-stream" || mediaType == "application/x-unknown" ||
		mediaType == "application/force-download") && reReportName.MatchString(name)
}

// partName is the file name of a part: Content-Disposition's filename, or
// Content-Type's name.
func partName(p *rawmail.Part) string {
	if cd := p.Header.Get("Content-Disposition"); cd != "" {
		if _, params := rawmail.ParseMediaType("x/" + cd); params["filename"] != "" {
			return rawmail.DecodeHeader(params["filename"])
		}
	}
	return rawmail.DecodeHeader(p.Params["name"])
}

// sniffable says whether a part's bytes look like a report or an archive,
// whatever its media type.
func sniffable(b []byte) bool {
	return isGzip(b) || isZip(b) || Detect(b) != ""
}

func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }
func isZip(b []byte) bool  { return bytes.HasPrefix(b, []byte("PK\x03\x04")) }

// reFeedbackRoot matches the start tag of a <feedback> element, with or
// without a namespace prefix.
var reFeedbackRoot = regexp.MustCompile(`<(?:[A-Za-z_][-\w.]*:)?feedback[\s>/]`)

// Detect says which report a decompressed document is: FormatDMARC for XML
// with a <feedback> element (any namespace), FormatTLSRPT for a JSON
// object with a "policies" member, "" for anything else.
func Detect(doc []byte) Format {
	t := bytes.TrimLeft(bytes.TrimPrefix(doc, []byte("\xef\xbb\xbf")), " \t\r\n")
	if len(t) > 0 && t[0] == '{' {
		if bytes.Contains(t, []byte(`"policies"`)) {
			return FormatTLSRPT
		}
		return ""
	}
	if reFeedbackRoot.Match(doc) {
		return FormatDMARC
	}
	return ""
}

// mailFields are header fields of which one marks an input as a message.
var mailFields = []string{"From", "To", "Subject", "Date", "Content-Type", "MIME-Version", "Received", "Return-Path", "Message-ID", "Delivered-To"}

// isMail says whether raw starts with a message header (as opposed to an
// archive or a bare document).
func isMail(raw []byte) bool {
	if isGzip(raw) || isZip(raw) {
		return false
	}
	t := bytes.TrimLeft(raw, " \t\r\n")
	if len(t) > 0 && (t[0] == '<' || t[0] == '{') {
		return false
	}
	h, _ := rawmail.ParseHeader(raw)
	for _, name := range mailFields {
		if h.Has(name) {
			return true
		}
	}
	return false
}

// LooksLikeReport is a cheap check that a message carries a DMARC
// aggregate or SMTP TLS report: a part whose media type is a report type
// (gzip, zip, XML, application/tlsrpt+gzip or +json), a part of any type
// named by the report naming convention (receiver!domain!begin!end...), an
// application/octet-stream named .xml, .json, .gz or .zip, or a
// multipart/report with report-type=tlsrpt. It reads headers and MIME structure only and
// decompresses nothing; Extract has the last word.
func LooksLikeReport(raw []byte) bool {
	if int64(len(raw)) > DefaultLimits().MaxInput || !isMail(raw) {
		return false
	}
	bud := rawmail.NewBudget(rawmail.DefaultLimits())
	root := rawmail.ParseWith(raw, bud)
	found := false
	root.Walk(func(p *rawmail.Part) bool {
		if found {
			return false
		}
		if p.MediaType == "multipart/report" && strings.EqualFold(p.Params["report-type"], "tlsrpt") {
			found = true
			return false
		}
		if !p.IsMultipart() && p.Message == nil && candidate(p.MediaType, partName(p)) {
			found = true
		}
		return !found
	})
	return found
}

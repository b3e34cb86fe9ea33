package suppression

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mailmon/mailmon/schemas"
)

// The CSV format of suppression lists. ESPs export their lists as CSV
// with a header row; the column names differ (SendGrid "email", Mailgun
// "address", Postmark "recipient", Mailchimp "Email Address") and so do
// the times (RFC 3339, Unix seconds, "2006-01-02 15:04:05" in UTC).
// ReadCSV takes any of them; WriteCSV writes the export format, which
// ReadCSV reads back:
//
//	email,customer,scope,reason,created_at,expires_at,bounce_category,status,recipient_hash,recipient_domain,note
//
// With suppression.hash_key set the email column is empty and the row is
// identified by recipient_hash (and recipient_domain): such an export can
// be imported again under the same key, not under another.

// CSVHeader is the header row of the export format.
var CSVHeader = []string{"email", "customer", "scope", "reason", "created_at", "expires_at",
	"bounce_category", "status", "recipient_hash", "recipient_domain", "note"}

// CSVLimits bounds what one ReadCSV call reads.
type CSVLimits struct {
	// MaxRows is the most data rows (after the header) read; more is an
	// error for the whole file.
	MaxRows int
	// MaxBytes is the most bytes read; more is an error for the whole
	// file.
	MaxBytes int64
	// MaxErrors is the most row errors kept (all are counted).
	MaxErrors int
}

// DefaultCSVLimits allow a million rows in 256 MiB, keeping the first 100
// row errors.
func DefaultCSVLimits() CSVLimits {
	return CSVLimits{MaxRows: 1_000_000, MaxBytes: 256 << 20, MaxErrors: 100}
}

// maxCSVField bounds one field: an address is at most 320 bytes, a note a
// sentence or two.
const maxCSVField = 1024

// maxCSVColumns bounds the header.
const maxCSVColumns = 64

// CSVRow is one row of a suppression CSV. Only the address (Email) or the
// digest (RecipientHash) is required; every other field may be empty.
type CSVRow struct {
	// Line is the row's line in the file (1 is the header).
	Line int
	// Email is the address as written (trimmed), or a domain for a domain
	// entry; empty in an export of hashed addresses.
	Email    string
	Customer string
	// Scope is empty or a schemas.Suppress*Recipient/Domain scope.
	Scope string
	// Reason is empty or a schemas.Suppress* reason.
	Reason         string
	Created        time.Time
	Expires        time.Time
	BounceCategory string
	Status         string
	// RecipientHash is the 32-hex-digit digest (lower case), when given.
	RecipientHash   string
	RecipientDomain string
	Note            string
}

// CSVRowError is a row that could not be read.
type CSVRowError struct {
	Line int
	Err  error
}

func (e CSVRowError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// CSVResult is what ReadCSV read: the good rows, and the bad ones by line.
type CSVResult struct {
	Rows []CSVRow
	// Errors are the first MaxErrors bad rows; ErrorCount counts them all.
	Errors     []CSVRowError
	ErrorCount int
}

// Column names as ESPs write them, after lower-casing and turning spaces
// and dashes into underscores.
var csvColumns = map[string]string{
	"email": "email", "address": "email", "recipient": "email", "email_address": "email",
	"reason": "reason", "created": "created", "created_at": "created",
	"expires": "expires", "expires_at": "expires", "customer": "customer", "scope": "scope", "note": "note",
	"bounce_category": "bounce_category", "status": "status",
	"recipient_hash": "recipient_hash", "recipient_domain": "recipient_domain",
}

// Reasons as ESPs name them.
var csvReasons = map[string]string{
	"hard_bounce": schemas.SuppressHardBounce, "bounce": schemas.SuppressHardBounce, "bounced": schemas.SuppressHardBounce,
	"hardbounce": schemas.SuppressHardBounce, "hard": schemas.SuppressHardBounce,
	"complaint": schemas.SuppressComplaint, "spam_complaint": schemas.SuppressComplaint, "spam": schemas.SuppressComplaint,
	"spamreport": schemas.SuppressComplaint, "spam_report": schemas.SuppressComplaint, "abuse": schemas.SuppressComplaint,
	"unsubscribe": schemas.SuppressUnsubscribe, "unsubscribed": schemas.SuppressUnsubscribe, "unsub": schemas.SuppressUnsubscribe,
	"manual": schemas.SuppressManual, "manual_suppression": schemas.SuppressManual,
	"soft_bounces": schemas.SuppressSoftBounces,
}

// Scopes, with the short forms an operator writes by hand.
var csvScopes = map[string]string{
	schemas.SuppressCustomerRecipient: schemas.SuppressCustomerRecipient, "customer": schemas.SuppressCustomerRecipient,
	schemas.SuppressGlobalRecipient: schemas.SuppressGlobalRecipient, "global": schemas.SuppressGlobalRecipient,
	schemas.SuppressCustomerDomain: schemas.SuppressCustomerDomain, "domain": schemas.SuppressCustomerDomain,
}

// ParseReason maps a reason as ESPs and operators write it ("bounce",
// "spam complaint", "unsubscribed") to a schemas.Suppress* reason.
func ParseReason(s string) (string, error) {
	r, ok := csvReasons[columnName(s)]
	if !ok {
		return "", fmt.Errorf("unknown reason %q (hard_bounce, complaint, unsubscribe, manual, soft_bounces)", short(s))
	}
	return r, nil
}

var columnSeparators = strings.NewReplacer(" ", "_", "-", "_")

func columnName(s string) string {
	return columnSeparators.Replace(strings.ToLower(strings.TrimSpace(s)))
}

var (
	errCSVTooLarge = errors.New("suppression csv: file too large")
	errCSVNoHeader = errors.New("suppression csv: no header row naming the address column (email, address, recipient, email address) or recipient_hash")
)

// countingReader fails once more than max bytes have been read.
type countingReader struct {
	r   io.Reader
	n   int64
	max int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.n > c.max {
		return 0, errCSVTooLarge
	}
	if rest := c.max + 1 - c.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		return n, errCSVTooLarge
	}
	return n, err
}

// ReadCSV reads a suppression CSV. A row that cannot be read is recorded
// with its line in the result and reading goes on; the returned error is
// for the whole file (no header, over the limits, a read failure), with
// what was read so far. Time and memory are linear in the input.
func ReadCSV(r io.Reader, lim CSVLimits) (CSVResult, error) {
	var res CSVResult
	if lim.MaxRows <= 0 || lim.MaxBytes <= 0 {
		return res, errors.New("suppression csv: limits must be positive")
	}
	cr := &countingReader{r: r, max: lim.MaxBytes}
	in := csv.NewReader(cr)
	in.FieldsPerRecord = -1
	in.ReuseRecord = true

	header, err := in.Read()
	if err != nil {
		if errors.Is(err, errCSVTooLarge) {
			return res, fmt.Errorf("%w: over %d bytes", errCSVTooLarge, lim.MaxBytes)
		}
		if err == io.EOF {
			return res, errCSVNoHeader
		}
		return res, fmt.Errorf("suppression csv: header: %w", err)
	}
	if len(header) > maxCSVColumns {
		return res, fmt.Errorf("suppression csv: header of %d columns, over %d", len(header), maxCSVColumns)
	}
	col := map[string]int{}
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff") // a byte order mark from a spreadsheet
		}
		name, ok := csvColumns[columnName(h)]
		if !ok {
			continue
		}
		if _, dup := col[name]; dup {
			return res, fmt.Errorf("suppression csv: header names the %s column twice", name)
		}
		col[name] = i
	}
	_, hasEmail := col["email"]
	_, hasHash := col["recipient_hash"]
	if !hasEmail && !hasHash {
		return res, errCSVNoHeader
	}

	rows := 0
	for {
		rec, err := in.Read()
		if err == io.EOF {
			return res, nil
		}
		if errors.Is(err, errCSVTooLarge) {
			return res, fmt.Errorf("%w: over %d bytes", errCSVTooLarge, lim.MaxBytes)
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return res, fmt.Errorf("suppression csv: %w", err)
			}
			res.addError(lim, pe.StartLine, errors.New(pe.Err.Error()))
			continue
		}
		if blank(rec) {
			continue
		}
		line, _ := in.FieldPos(0)
		rows++
		if rows > lim.MaxRows {
			return res, fmt.Errorf("suppression csv: more than %d rows", lim.MaxRows)
		}
		row, err := parseCSVRow(rec, col, len(res.Errors) < lim.MaxErrors)
		if err != nil {
			res.addError(lim, line, err)
			continue
		}
		row.Line = line
		res.Rows = append(res.Rows, row)
	}
}

func (res *CSVResult) addError(lim CSVLimits, line int, err error) {
	res.ErrorCount++
	if len(res.Errors) < lim.MaxErrors {
		res.Errors = append(res.Errors, CSVRowError{Line: line, Err: err})
	}
}

func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// errCSVRow stands for a bad row's problems once MaxErrors rows have been
// kept: later ones are only counted, so their messages are not built.
var errCSVRow = errors.New("bad row")

// parseCSVRow reads one record. With detail false a bad row is errCSVRow,
// without the work of describing it.
func parseCSVRow(rec []string, col map[string]int, detail bool) (CSVRow, error) {
	var row CSVRow
	var errs []error
	failed := false
	fail := func(describe func() error) {
		failed = true
		if detail {
			errs = append(errs, describe())
		}
	}
	field := func(name string) string {
		i, ok := col[name]
		if !ok || i >= len(rec) {
			return ""
		}
		v := strings.TrimSpace(rec[i])
		if len(v) > maxCSVField {
			fail(func() error { return fmt.Errorf("%s: longer than %d bytes", name, maxCSVField) })
			return ""
		}
		if !utf8.ValidString(v) {
			fail(func() error { return fmt.Errorf("%s: not UTF-8", name) })
			return ""
		}
		for _, c := range v {
			if c < 0x20 && c != '\t' || c == 0x7f {
				fail(func() error { return fmt.Errorf("%s: holds a control character", name) })
				return ""
			}
		}
		return v
	}
	row.Email = field("email")
	row.Customer = field("customer")
	row.Note = field("note")
	row.BounceCategory = field("bounce_category")
	row.Status = field("status")
	row.RecipientDomain = strings.ToLower(field("recipient_domain"))
	if s := field("scope"); s != "" {
		sc, ok := csvScopes[columnName(s)]
		if !ok {
			fail(func() error {
				return fmt.Errorf("scope %q: not customer_recipient, global_recipient or customer_domain", short(s))
			})
		}
		row.Scope = sc
	}
	if s := field("reason"); s != "" {
		r, ok := csvReasons[columnName(s)]
		if !ok {
			fail(func() error { _, err := ParseReason(s); return err })
		}
		row.Reason = r
	}
	for _, t := range []struct {
		name string
		into *time.Time
	}{{"created", &row.Created}, {"expires", &row.Expires}} {
		v := field(t.name)
		var ok bool
		if *t.into, ok = parseCSVTime(v); !ok {
			fail(func() error { _, err := ParseCSVTime(v); return fmt.Errorf("%s: %w", t.name, err) })
		}
	}
	if h := strings.ToLower(field("recipient_hash")); h != "" {
		if len(h) != 32 || !isHex(h) {
			fail(func() error { return fmt.Errorf("recipient_hash %q: not 32 hex digits", short(h)) })
		}
		row.RecipientHash = h
	}
	if row.Scope == schemas.SuppressGlobalRecipient && row.Customer != "" {
		fail(func() error { return fmt.Errorf("scope global_recipient with customer %q", short(row.Customer)) })
	}
	var n Normalizer
	switch {
	case row.Email == "" && row.RecipientHash == "":
		fail(func() error { return errors.New("no address") })
	case row.Email == "":
	case row.Scope == schemas.SuppressCustomerDomain && !strings.Contains(row.Email, "@"):
		if _, err := n.Domain(row.Email); err != nil {
			fail(func() error { return err })
		}
	default:
		if _, _, err := n.Address(row.Email); err != nil {
			fail(func() error { return fmt.Errorf("address %q: %w", short(row.Email), err) })
		}
	}
	if failed {
		if !detail {
			return CSVRow{}, errCSVRow
		}
		return CSVRow{}, errors.Join(errs...)
	}
	return row, nil
}

// maxCSVUnix is the first second of the year 10000: later times have no
// RFC 3339 form.
const maxCSVUnix = 253402300800

// ParseCSVTime reads a time as ESPs export it: RFC 3339, Unix seconds, or
// "2006-01-02 15:04:05" (UTC). Empty is the zero time.
func ParseCSVTime(s string) (time.Time, error) {
	t, ok := parseCSVTime(s)
	if ok {
		return t, nil
	}
	s = strings.TrimSpace(s)
	if isDigits(s) {
		return time.Time{}, fmt.Errorf("%q: Unix seconds out of range", short(s))
	}
	return time.Time{}, fmt.Errorf("%q: not RFC 3339, Unix seconds or %q", short(s), time.DateTime)
}

func parseCSVTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, true
	}
	if isDigits(s) {
		if len(s) > 12 {
			return time.Time{}, false
		}
		n, _ := strconv.ParseInt(s, 10, 64)
		if n >= maxCSVUnix {
			return time.Time{}, false
		}
		return time.Unix(n, 0).UTC(), true
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), true
	}
	if t, err := time.Parse(time.DateTime, s); err == nil {
		return t.UTC(), true
	}
	return time.Time{}, false
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// CSVRowOf is the export row of an entry: no address when it is hashed.
func CSVRowOf(e Entry) CSVRow {
	return CSVRow{
		Email: e.Recipient, Customer: e.Customer, Scope: e.Scope, Reason: e.Reason,
		Created: e.Created, Expires: e.Expires, BounceCategory: e.BounceCategory, Status: e.Status,
		RecipientHash: e.RecipientHash, RecipientDomain: e.RecipientDomain, Note: e.Note,
	}
}

// CSVWriter writes the export format, header first.
type CSVWriter struct {
	w      *csv.Writer
	header bool
	rec    []string
}

// NewCSVWriter returns a writer of the export format to w.
func NewCSVWriter(w io.Writer) *CSVWriter {
	return &CSVWriter{w: csv.NewWriter(w), rec: make([]string, len(CSVHeader))}
}

// Write writes one row (and the header before the first).
func (cw *CSVWriter) Write(r CSVRow) error {
	if !cw.header {
		cw.header = true
		if err := cw.w.Write(CSVHeader); err != nil {
			return err
		}
	}
	cw.rec = append(cw.rec[:0], r.Email, r.Customer, r.Scope, r.Reason, csvTime(r.Created), csvTime(r.Expires),
		r.BounceCategory, r.Status, r.RecipientHash, r.RecipientDomain, r.Note)
	return cw.w.Write(cw.rec)
}

// Flush writes the header if no row was written, then flushes.
func (cw *CSVWriter) Flush() error {
	if !cw.header {
		cw.header = true
		if err := cw.w.Write(CSVHeader); err != nil {
			return err
		}
	}
	cw.w.Flush()
	return cw.w.Error()
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

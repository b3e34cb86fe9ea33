package notifier

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mailmon/mailmon/services/internal/config"
)

// TLS modes of an email route.
const (
	EmailTLSStartTLS = "starttls"
	EmailTLSImplicit = "implicit"
	EmailTLSNone     = "none"
)

// Limits of an email message. Alerts are outside input (any worker that may
// publish on mailmon.alert.> writes them), so every part of a message has a
// bound: a hostile or broken alert yields a long but finite message.
const (
	// maxEmailRecipients bounds a route's to list.
	maxEmailRecipients = 50
	// maxSubjectRunes bounds the Subject header's text before encoding.
	maxSubjectRunes = 200
	// maxHeaderRunes bounds every other header value taken from an alert.
	maxHeaderRunes = 100
	// maxFieldRunes bounds one value (summary, evidence value, id) in the
	// body.
	maxFieldRunes = 500
	// maxAlertsShown is how many alerts of one notification the body shows
	// in full; the rest are counted.
	maxAlertsShown = 50
	// maxEvidenceShown is how many evidence pairs of one alert are shown.
	maxEvidenceShown = 50
	// maxSampleEvents is how many of an alert's event ids are shown.
	maxSampleEvents = 10
	// maxThreadRefs bounds the References header (one per dedupe key).
	maxThreadRefs = 10
	// maxBodyBytes is the size past which no further alert or evidence
	// line is added to the body (one more line may end it), so a large
	// group makes a message every relay takes.
	maxBodyBytes = 128 << 10
)

// validateEmail checks an email route's keys; config.Validate calls it for
// routes of kind email. Problems never quote the password.
func (r Route) validateEmail() error {
	var check config.Check
	if r.URL != "" {
		check.Addf("url", "is not used by an email route (smtp_addr is)")
	}
	if r.Token != "" {
		check.Addf("token", "is not used by an email route (username and password are)")
	}
	host, port, err := net.SplitHostPort(r.SMTPAddr)
	if r.SMTPAddr == "" {
		check.Addf("smtp_addr", "is required")
	} else if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		check.Addf("smtp_addr", "must be host:port, got %q", r.SMTPAddr)
	}
	switch r.TLS {
	case "", EmailTLSStartTLS, EmailTLSImplicit:
	case EmailTLSNone:
		if r.SMTPAddr != "" && !isLoopbackHost(host) {
			check.Addf("tls", "none is allowed only when smtp_addr is a loopback address (alerts and the password would cross the network in clear)")
		}
	default:
		check.Addf("tls", "must be starttls, implicit or none, got %q", r.TLS)
	}
	if r.TLSCAFile != "" {
		if _, err := loadCAPool(r.TLSCAFile); err != nil {
			check.Addf("tls_ca_file", "%v", err)
		}
	}
	if r.From == "" {
		check.Addf("from", "is required")
	} else if _, err := parseEmailAddress(r.From); err != nil {
		check.Addf("from", "%v", err)
	}
	if len(r.To) == 0 {
		check.Addf("to", "is required")
	}
	if len(r.To) > maxEmailRecipients {
		check.Addf("to", "has %d recipients; at most %d", len(r.To), maxEmailRecipients)
	}
	for i, to := range r.To {
		if _, err := parseEmailAddress(to); err != nil {
			check.Addf(fmt.Sprintf("to[%d]", i), "%v", err)
		}
	}
	if r.HeloName != "" && !validHeloName(r.HeloName) {
		check.Addf("helo_name", "must be a host name or an address literal such as [192.0.2.1], got %q", r.HeloName)
	}
	if r.Timeout < 0 {
		check.Addf("timeout", "must not be negative")
	}
	return check.Err()
}

// parseEmailAddress reads one address of a route ("a@example.net" or
// "Name <a@example.net>"). The address itself must be ASCII: mailmon does not
// use SMTPUTF8, so a relay that lacks it would refuse the message; a display
// name may be any text and is encoded.
func parseEmailAddress(s string) (*mail.Address, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not an e-mail address", s)
	}
	for _, r := range a.Address {
		if r > unicode.MaxASCII || unicode.IsControl(r) {
			return nil, fmt.Errorf("%q: the address must be ASCII", s)
		}
	}
	return a, nil
}

// validHeloName accepts what EHLO takes (RFC 5321 section 4.1.1.1): a
// domain of letters, digits, hyphens and dots, or an address literal.
func validHeloName(s string) bool {
	if len(s) > 255 {
		return false
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		lit := strings.TrimPrefix(s[1:len(s)-1], "IPv6:")
		return net.ParseIP(lit) != nil
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loadCAPool reads a PEM bundle of CA certificates.
func loadCAPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// emailTLSConfig is how an email route checks its relay: the system's roots
// or tls_ca_file, against tls_server_name or the host of smtp_addr. The CA
// file is read at every send, so a renewed bundle needs no restart.
func emailTLSConfig(r Route) (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(r.SMTPAddr)
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if r.TLSServerName != "" {
		cfg.ServerName = r.TLSServerName
	}
	if r.TLSCAFile != "" {
		pool, err := loadCAPool(r.TLSCAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// emailSubject is the Subject line: status, highest severity, rule and
// subject, so a mail client's list says what happened without opening the
// message.
func emailSubject(n Notification) string {
	severity := ""
	for _, a := range n.Alerts {
		if severity == "" || severityRank(a.Severity) > severityRank(severity) {
			severity = a.Severity
		}
	}
	rule := ""
	if len(n.Alerts) > 0 {
		rule = n.Alerts[0].Rule
	}
	s := fmt.Sprintf("[%s %s] %s: %s", strings.ToUpper(oneLine(n.Status, 20)), oneLine(severity, 20),
		oneLine(rule, maxHeaderRunes), oneLine(n.GroupKey, maxHeaderRunes))
	if len(n.Alerts) > 1 {
		s += fmt.Sprintf(" (+%d more)", len(n.Alerts)-1)
	}
	return oneLine(s, maxSubjectRunes)
}

// emailMessage is the whole RFC 5322 message for one notification.
func emailMessage(from *mail.Address, to []*mail.Address, n Notification, now time.Time) []byte {
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	// Every notification about a condition refers to one thread id derived
	// from its dedupe key, so a mail client shows the firing and the
	// resolved message together.
	var refs []string
	for _, a := range n.Alerts {
		ref := threadID(a.DedupeKey, domain)
		if !slices.Contains(refs, ref) && len(refs) < maxThreadRefs {
			refs = append(refs, ref)
		}
	}
	var threading [][2]string
	if len(refs) > 0 {
		threading = [][2]string{{"In-Reply-To", refs[0]}, {"References", strings.Join(refs, " ")}}
	}
	return textMessage(from, to, now, emailSubject(n), messageID(n, domain), threading, []byte(emailBody(n)))
}

// textMessage is an RFC 5322 message sent by mailmon: headers in CRLF lines
// of printable ASCII (the subject encoded, folded and bounded, then extra
// in order) and a quoted-printable UTF-8 plain-text body.
func textMessage(from *mail.Address, to []*mail.Address, now time.Time, subject, messageID string, extra [][2]string, body []byte) []byte {
	var h strings.Builder
	writeHeader(&h, "Date", now.Format(time.RFC1123Z))
	writeHeader(&h, "From", from.String())
	recipients := make([]string, len(to))
	for i, a := range to {
		recipients[i] = a.String()
	}
	writeHeader(&h, "To", strings.Join(recipients, ", "))
	// The Q encoder leaves plain ASCII as it is, so a "=?" from outside
	// text would reach the reader as the start of an encoded word (RFC 2047
	// section 5); breaking the pair keeps it literal.
	writeHeader(&h, "Subject", mime.QEncoding.Encode("utf-8", strings.ReplaceAll(subject, "=?", "= ?")))
	writeHeader(&h, "Message-ID", messageID)
	for _, kv := range extra {
		writeHeader(&h, kv[0], kv[1])
	}
	// RFC 3834: a message sent by a program; autoresponders (vacation
	// notices) must not answer it. The second header is Exchange's.
	writeHeader(&h, "Auto-Submitted", "auto-generated")
	writeHeader(&h, "X-Auto-Response-Suppress", "All")
	writeHeader(&h, "MIME-Version", "1.0")
	writeHeader(&h, "Content-Type", "text/plain; charset=utf-8")
	writeHeader(&h, "Content-Transfer-Encoding", "quoted-printable")

	var msg bytes.Buffer
	msg.WriteString(h.String())
	msg.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&msg)
	qp.Write(body) // writes to a bytes.Buffer cannot fail
	qp.Close()
	return msg.Bytes()
}

// messageID is the same for the same alerts to the same route, so a
// notification sent again after a failed attempt carries the id of the
// first try and a mail store can tell the copies apart from news.
func messageID(n Notification, domain string) string {
	h := sha256.New()
	h.Write([]byte(n.Receiver))
	for _, a := range n.Alerts {
		h.Write([]byte{0})
		h.Write([]byte(a.ID))
	}
	return "<mailmon." + hex.EncodeToString(h.Sum(nil))[:32] + "@" + domain + ">"
}

// threadID names the thread of one condition. The dedupe key is hashed: it
// is outside text and a message id must be a dot-atom.
func threadID(dedupeKey, domain string) string {
	sum := sha256.Sum256([]byte(dedupeKey))
	return "<mailmon-thread." + hex.EncodeToString(sum[:16]) + "@" + domain + ">"
}

// emailBody is the plain text a person reads: per alert what happened,
// about whom, the evidence and where to look further.
func emailBody(n Notification) string {
	var b strings.Builder
	if len(n.Alerts) == 1 {
		fmt.Fprintf(&b, "%s\n\n", oneLine(n.Alerts[0].Summary, maxFieldRunes))
	} else {
		fmt.Fprintf(&b, "%d alerts about %s.\n\n", len(n.Alerts), oneLine(n.GroupKey, maxFieldRunes))
	}
	for i, a := range n.Alerts {
		if i == maxAlertsShown || b.Len() >= maxBodyBytes {
			fmt.Fprintf(&b, "... and %d more alerts about %s, not shown.\n", len(n.Alerts)-i, oneLine(n.GroupKey, maxFieldRunes))
			break
		}
		if len(n.Alerts) > 1 {
			fmt.Fprintf(&b, "--- %d. %s\n", i+1, oneLine(a.Summary, maxFieldRunes))
		}
		line := func(name, value string) {
			if value != "" {
				fmt.Fprintf(&b, "%-17s %s\n", name+":", oneLine(value, maxFieldRunes))
			}
		}
		line("Status", a.Status)
		line("Severity", a.Severity)
		line("Rule", a.Rule)
		line("Subject", a.Subject)
		line("Customer", a.Customer)
		line("Provider", a.Provider)
		line("Source IP", a.SourceIP)
		line("Recipient domain", a.RecipientDomain)
		line("Probe", a.ProbeID)
		line("Time", a.Time.UTC().Format(time.RFC3339))
		if len(a.EvidenceNames) > 0 {
			b.WriteString("Evidence:\n")
			for j, name := range a.EvidenceNames {
				if j == maxEvidenceShown || b.Len() >= maxBodyBytes {
					fmt.Fprintf(&b, "  ... %d more\n", len(a.EvidenceNames)-j)
					break
				}
				value := ""
				if j < len(a.EvidenceValues) {
					value = a.EvidenceValues[j]
				}
				fmt.Fprintf(&b, "  %s=%s\n", oneLine(name, maxHeaderRunes), oneLine(value, maxFieldRunes))
			}
		}
		if len(a.EventIDs) > 0 {
			shown := a.EventIDs[:min(len(a.EventIDs), maxSampleEvents)]
			fmt.Fprintf(&b, "Sample events (%d of %d):\n", len(shown), len(a.EventIDs))
			for _, id := range shown {
				fmt.Fprintf(&b, "  %s\n", oneLine(id, maxHeaderRunes))
			}
		}
		if a.DecisionID != "" {
			id := oneLine(a.DecisionID, maxHeaderRunes)
			line("Decision", id)
			fmt.Fprintf(&b, "  explain it with: mailmon enforcement explain %s\n", shellWord(id))
		}
		line("Alert id", a.ID)
		line("Dedupe key", a.DedupeKey)
		b.WriteString("\n")
	}
	b.WriteString("-- \nSent by the mailmon notifier.\n")
	return b.String()
}

// shellWord quotes s for a POSIX shell unless it is plainly safe (a
// decision id is a UUID; a hostile one must not become a command when
// pasted).
func shellWord(s string) string {
	safe := s != ""
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// oneLine makes outside text fit one line: invalid UTF-8 becomes U+FFFD;
// control characters (CR, LF, NUL, ...), format characters (bidi
// overrides, zero-width marks) and line or paragraph separators become
// spaces; runs of spaces collapse; and text longer than max runes is cut,
// ending in "…". It reads at most 16 bytes per rune of max, so its work
// does not grow with s: what lies beyond (after a long run of spaces) is
// cut too.
func oneLine(s string, max int) string {
	cut := false
	if limit := 16*max + 64; len(s) > limit {
		for limit > 0 && !utf8.RuneStart(s[limit]) {
			limit--
		}
		s, cut = s[:limit], true
	}
	var b strings.Builder
	n := 0
	pendingSpace := false
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			pendingSpace = n > 0
			continue
		}
		if n >= max || (pendingSpace && n+1 >= max) {
			b.WriteString("…")
			return b.String()
		}
		if pendingSpace {
			b.WriteByte(' ')
			n++
			pendingSpace = false
		}
		b.WriteRune(r) // an invalid byte comes out as U+FFFD
		n++
	}
	if cut {
		b.WriteString("…")
	}
	return b.String()
}

// writeHeader writes one header field, folded at spaces so lines stay
// within 78 characters where the value allows (RFC 5322 section 2.2.3).
// value is printable ASCII without CR or LF: encoded outside text or
// mailmon's own.
func writeHeader(b *strings.Builder, name, value string) {
	col := 0
	for i, word := range strings.Split(name+": "+value, " ") {
		if i > 0 {
			if col+1+len(word) > 78 {
				b.WriteString("\r\n ")
				col = 1
			} else {
				b.WriteByte(' ')
				col++
			}
		}
		b.WriteString(word)
		col += len(word)
	}
	b.WriteString("\r\n")
}

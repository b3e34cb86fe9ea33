package fblingester

import (
	"fmt"
	"strings"
	"time"
)

// reportSpec describes a feedback report for the trust tests.
type reportSpec struct {
	reportID string    // the report's own Message-ID (local part)
	from     string    // the report's From address
	sourceIP string    // Source-IP
	track    string    // X-Mailmon-Track of the original ("" for none)
	origID   string    // the original's Message-ID
	rcpt     string    // Original-Rcpt-To
	origDKIM string    // a DKIM-Signature line for the original ("" none)
	origFull []byte    // the whole original (signed); else a header is built
	headers  bool      // return only the original's header (text/rfc822-headers)
	arrival  time.Time // Arrival-Date; zero: now
}

func (r reportSpec) build() []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	arrival := r.arrival
	if arrival.IsZero() {
		arrival = time.Now().Add(-time.Hour)
	}
	from := r.from
	if from == "" {
		from = "feedback@fbl.provider.test"
	}
	w("From: Feedback Loop <%s>", from)
	w("To: fbl@sender.example")
	w("Subject: complaint about message from %s", r.sourceIP)
	w("Date: %s", time.Now().UTC().Format(time.RFC1123Z))
	w("Message-ID: <%s@fbl.provider.test>", r.reportID)
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=feedback-report; boundary=\"BOUND\"")
	w("")
	w("--BOUND")
	w("Content-Type: text/plain")
	w("")
	w("This is an email abuse report for an email message received from IP %s.", r.sourceIP)
	w("")
	w("--BOUND")
	w("Content-Type: message/feedback-report")
	w("")
	w("Feedback-Type: abuse")
	w("User-Agent: ProviderFBL/1.0")
	w("Version: 1")
	w("Original-Mail-From: <bounce-1@sender.example>")
	w("Original-Rcpt-To: <%s>", r.rcpt)
	w("Arrival-Date: %s", arrival.UTC().Format(time.RFC1123Z))
	w("Reporting-MTA: dns; mx.provider.test")
	w("Source-IP: %s", r.sourceIP)
	w("")
	w("--BOUND")
	if r.origFull != nil {
		w("Content-Type: message/rfc822")
		w("")
		b.Write(r.origFull)
		w("")
	} else {
		if r.headers {
			w("Content-Type: text/rfc822-headers")
		} else {
			w("Content-Type: message/rfc822")
		}
		w("")
		b.WriteString(r.originalHeader())
		if !r.headers {
			w("")
			w("Everything must go.")
		}
	}
	w("--BOUND--")
	return []byte(b.String())
}

func (r reportSpec) originalHeader() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	w("Received: from out1.sender.example ([%s]) by mx.provider.test; Mon, 7 Dec 2026 11:58:12 +0000", r.sourceIP)
	if r.origDKIM != "" {
		w("%s", r.origDKIM)
	}
	if r.track != "" {
		w("X-Mailmon-Track: %s", r.track)
	}
	w("From: \"Acme Shop\" <news@sender.example>")
	w("To: %s", r.rcpt)
	w("Subject: Winter sale")
	w("Message-ID: <%s>", r.origID)
	return b.String()
}

// original is a whole message from one of our customers, to be signed
// and returned in a report.
func original(origID, rcpt string) []byte {
	return []byte("From: \"Acme Shop\" <news@sender.example>\r\nTo: " + rcpt + "\r\nSubject: Winter sale\r\n" +
		"Date: " + time.Now().Add(-2*time.Hour).UTC().Format(time.RFC1123Z) + "\r\nMessage-ID: <" + origID + ">\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nEverything must go.\r\n")
}

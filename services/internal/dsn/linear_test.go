package dsn

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mailmon/mailmon/services/internal/lineartest"
	"github.com/mailmon/mailmon/services/internal/rawmail"
)

const dsnHead = "From: MAILER-DAEMON@mx.example.net\nTo: sender@example.com\nSubject: Undelivered Mail Returned to Sender\n" +
	"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n" +
	"--b\nContent-Type: text/plain\n\nYour message could not be delivered.\n"

// foldedDiagnostic is a DSN whose Diagnostic-Code is folded over many
// lines (each line used to rebuild the whole value).
func foldedDiagnostic(size int) []byte {
	return lineartest.Repeat(dsnHead+"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"+
		"Final-Recipient: rfc822; user@example.org\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 unknown",
		"\n folded words", "\n--b--\n", size)
}

// manyRecipientGroups is a DSN with a recipient group after another.
func manyRecipientGroups(size int) []byte {
	var sb strings.Builder
	sb.WriteString(dsnHead + "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n")
	for i := 0; sb.Len() < size-8; i++ {
		fmt.Fprintf(&sb, "\nFinal-Recipient: rfc822; u%d@example.org\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\n", i)
	}
	sb.WriteString("--b--\n")
	return []byte(sb.String())
}

// textRecipients is a text bounce listing many failed recipients, each
// with its error (the old stress test's "many recipients").
func textRecipients(size int) []byte {
	var sb strings.Builder
	sb.WriteString("From: MAILER-DAEMON@example.com\nSubject: Undelivered Mail\n\nThe following addresses failed:\n\n")
	for i := 0; sb.Len() < size; i++ {
		fmt.Fprintf(&sb, "<user%d@example.net>: host mx said: 550 5.1.1 unknown (in reply to RCPT TO command)\n", i)
	}
	return []byte(sb.String())
}

// bareRecipients lists recipients without any error, one per line, past
// the lines searched for recipients: every recipient then searches the
// text around it for its error, and the lines after the recipients are
// one long paragraph (each recipient used to read it all).
func bareRecipients(size int) []byte {
	var sb strings.Builder
	sb.WriteString("From: MAILER-DAEMON@example.com\nSubject: Undelivered Mail\n\nThe following addresses failed:\n\n")
	for i := 0; sb.Len() < size; i++ {
		fmt.Fprintf(&sb, "<user%d@example.net>\n", i)
	}
	return []byte(sb.String())
}

// transcriptRecipients follows each recipient with a session transcript
// line (each recipient used to search every line of the notice for its
// transcript lines).
func transcriptRecipients(size int) []byte {
	var sb strings.Builder
	sb.WriteString("From: MAILER-DAEMON@example.com\nSubject: Returned mail: see transcript for details\n\n   ----- The following addresses had permanent fatal errors -----\n")
	for i := 0; sb.Len() < size; i++ {
		fmt.Fprintf(&sb, "<user%d@example.net>\n>>> RCPT To:<user%d@example.net>\n<<< 550 5.1.1 unknown\n", i, i)
	}
	return []byte(sb.String())
}

// htmlScripts is an HTML bounce of many script elements (each used to
// lower-case a copy of the rest of the document to find its end).
func htmlScripts(size int) []byte {
	return lineartest.Repeat("From: MAILER-DAEMON@example.com\nSubject: Undelivered Mail\nContent-Type: text/html\n\n<p>Delivery failed</p>",
		"<SCRIPT>x</Script><style>y</STYLE>", "", size)
}

// longLine is one line of addresses; manyLines many one-letter lines.
func longLine(size int) []byte {
	return lineartest.Repeat("From: MAILER-DAEMON@example.com\nSubject: failure notice\n\n", "a@b.c ", "", size)
}

func manyLines(size int) []byte {
	return lineartest.Repeat("From: MAILER-DAEMON@example.com\nSubject: failure notice\n\n", "x\n", "", size)
}

// pastedDeliveryStatus is a text bounce with delivery-status fields pasted
// into the text and a folded diagnostic.
func pastedDeliveryStatus(size int) []byte {
	return lineartest.Repeat("From: MAILER-DAEMON@example.com\nSubject: failure notice\n\nFinal-Recipient: rfc822; a@example.org\nAction: failed\nDiagnostic-Code: smtp; 550",
		"\n more", "\n", size)
}

// quotedOriginalHeader is a text bounce whose quoted original has a very
// long header, folded over many lines.
func quotedOriginalHeader(size int) []byte {
	return lineartest.Repeat("From: MAILER-DAEMON@example.com\nSubject: failure notice\n\n<a@example.org>: 550 5.1.1 unknown\n\n"+
		"------ This is a copy of the message, including all the headers. ------\n\nReceived: from x\nFrom: s@example.com\nSubject: hi\nX-Long: a",
		"\n b", "\n\nbody\n", size)
}

// nestedBounces is a bounce returning a bounce returning a text bounce
// (as deep as Parse looks), the innermost with a large text.
func nestedBounces(size int) []byte {
	inner := string(textRecipients(size))
	for i := 0; i < maxNesting; i++ {
		inner = fmt.Sprintf("From: MAILER-DAEMON@relay%d.example\nSubject: Undelivered Mail Returned to Sender\n"+
			"Content-Type: multipart/report; report-type=delivery-status; boundary=\"n%d\"\n\n"+
			"--n%d\nContent-Type: text/plain\n\nreturned\n--n%d\nContent-Type: message/rfc822\n\n%s\n--n%d--\n", i, i, i, i, inner, i)
	}
	return []byte(inner)
}

func parseOK(raw []byte) error {
	_, err := Parse(raw)
	return err
}

// TestParseLinear feeds ~100 KB and ~1 MB hostile bounces of each kind and
// fails when the larger takes more than 15 times as long. The inputs are
// within the default budget, so they are parsed in full.
func TestParseLinear(t *testing.T) {
	for _, c := range []lineartest.Case{
		{Name: "folded Diagnostic-Code", Build: foldedDiagnostic, Parse: parseOK},
		{Name: "many recipient groups", Build: manyRecipientGroups, Parse: parseOK},
		{Name: "text recipients", Build: textRecipients, Parse: parseOK},
		{Name: "bare recipients", Build: bareRecipients, Parse: parseOK},
		{Name: "transcript recipients", Build: transcriptRecipients, Parse: parseOK},
		{Name: "HTML scripts", Build: htmlScripts, Parse: parseOK},
		{Name: "long line", Build: longLine, Parse: parseOK},
		{Name: "many lines", Build: manyLines, Parse: parseOK},
		{Name: "pasted delivery status", Build: pastedDeliveryStatus, Parse: parseOK},
		{Name: "quoted original header", Build: quotedOriginalHeader, Parse: parseOK},
		{Name: "nested bounces", Build: nestedBounces, Parse: parseOK},
	} {
		t.Run(c.Name, func(t *testing.T) { lineartest.Run(t, c) })
	}
}

// TestParseBounded: whatever the input, at most maxRecipients recipients.
func TestParseBounded(t *testing.T) {
	for name, in := range map[string][]byte{"text": textRecipients(1 << 20), "groups": manyRecipientGroups(1 << 20)} {
		b, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Recipients) != maxRecipients {
			t.Errorf("%s: %d recipients, want %d", name, len(b.Recipients), maxRecipients)
		}
	}
}

// TestParseStopsOnBudget: a bounce over its budget ends with an error
// wrapping ErrBudgetExceeded that says what ran out.
func TestParseStopsOnBudget(t *testing.T) {
	limits := rawmail.DefaultLimits()
	limits.Lines = 10_000
	_, err := ParseLimits(foldedDiagnostic(1<<20), limits)
	if !errors.Is(err, ErrBudgetExceeded) || !strings.Contains(err.Error(), "lines") {
		t.Fatalf("err = %v, want ErrBudgetExceeded for lines", err)
	}
	limits = rawmail.DefaultLimits()
	limits.ScanBytes = 1 << 20
	_, err = ParseLimits(manyLines(1<<20), limits)
	if !errors.Is(err, ErrBudgetExceeded) || !strings.Contains(err.Error(), "bytes scanned") {
		t.Fatalf("err = %v, want ErrBudgetExceeded for bytes scanned", err)
	}
	limits = rawmail.DefaultLimits()
	limits.Parts = 3
	_, err = ParseLimits(nestedBounces(10<<10), limits)
	if !errors.Is(err, ErrBudgetExceeded) || !strings.Contains(err.Error(), "MIME parts") {
		t.Fatalf("err = %v, want ErrBudgetExceeded for MIME parts", err)
	}
}

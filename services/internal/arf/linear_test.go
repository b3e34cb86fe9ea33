package arf

import (
	"errors"
	"strings"
	"testing"

	"github.com/mailmon/mailmon/services/internal/lineartest"
	"github.com/mailmon/mailmon/services/internal/rawmail"
)

const reportHead = "From: fbl@provider.example\nTo: fbl@sender.example\nSubject: complaint\nMessage-ID: <r1@provider.example>\n" +
	"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\n\n"

// feedbackFieldsThenJunk is a report whose message/feedback-report part
// holds its fields and then many lines that are not fields (each line
// used to cost a copy of the rest of the part).
func feedbackFieldsThenJunk(size int) []byte {
	return lineartest.Repeat(reportHead+"--b\nContent-Type: text/plain\n\nThis is an abuse report.\n"+
		"--b\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: x/1\nVersion: 1\n",
		"this line is not a field\n",
		"--b\nContent-Type: text/rfc822-headers\n\nFrom: a@sender.example\nSubject: s\nMessage-ID: <m@sender.example>\n--b--\n", size)
}

// quotedFromLines is a report without an attached original whose text
// part is "From: a" and "x" over and over: every "From:" line starts a
// run that is searched for a quoted header.
func quotedFromLines(size int) []byte {
	return lineartest.Repeat(reportHead+"--b\nContent-Type: text/plain\n\n",
		"From: a\nx\n",
		"--b\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: x/1\nVersion: 1\n--b--\n", size)
}

// dmarcTextFromLines is the same text in a plain-text DMARC report (not
// ARF), where the quoted header is searched in the first text part.
func dmarcTextFromLines(size int) []byte {
	return lineartest.Repeat("From: dmarc@provider.example\nSubject: DMARC failure report for sender.example\n\n"+
		"This is a DMARC failure report.\nSender IP Address: 192.0.2.1\n",
		"From: a\nx\n", "", size)
}

// foldedFeedbackField is one feedback field folded over many lines.
func foldedFeedbackField(size int) []byte {
	return lineartest.Repeat(reportHead+"--b\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nVersion: 1\nReported-URI: http://x.example/",
		"\n a", "\n--b--\n", size)
}

// forwardedReports is a report forwarded as an attachment, three times
// over, with a large text in the innermost one.
func forwardedReports(size int) []byte {
	inner := string(feedbackFieldsThenJunk(size))
	for i := 0; i < 3; i++ {
		inner = "From: desk" + strings.Repeat("x", i) + "@example.net\nSubject: Fwd\nContent-Type: multipart/mixed; boundary=\"f\"\n\n--f\nContent-Type: text/plain\n\nforwarded\n--f\nContent-Type: message/rfc822\n\n" + inner + "\n--f--\n"
	}
	return []byte(inner)
}

func parseOK(raw []byte) error {
	_, err := Parse(raw)
	return err
}

// TestParseLinear feeds ~100 KB and ~1 MB hostile reports of each kind
// and fails when the larger takes more than 15 times as long: parsing is
// linear in the input. The inputs are within the default budget, so the
// whole input is parsed.
func TestParseLinear(t *testing.T) {
	for _, c := range []lineartest.Case{
		{Name: "feedback part with non-field lines", Build: feedbackFieldsThenJunk, Parse: parseOK},
		{Name: "text part of From: lines", Build: quotedFromLines, Parse: parseOK},
		{Name: "DMARC text of From: lines", Build: dmarcTextFromLines, Parse: parseOK},
		{Name: "folded feedback field", Build: foldedFeedbackField, Parse: parseOK},
		{Name: "forwarded three times", Build: forwardedReports, Parse: parseOK},
	} {
		t.Run(c.Name, func(t *testing.T) { lineartest.Run(t, c) })
	}
}

// TestParseStopsOnBudget: a hostile report over its budget ends with an
// error wrapping ErrBudgetExceeded, and ends early: a 1 MB and a 10 MB
// report over the same small budget take about the same time (the ratio
// check of lineartest with 10x the input again, so a parser that read on
// to the end would take 10x, within the ratio: the check here is that the
// larger one is not more than twice as slow).
func TestParseStopsOnBudget(t *testing.T) {
	limits := rawmail.DefaultLimits()
	limits.Lines = 20_000
	_, err := ParseLimits(feedbackFieldsThenJunk(1<<20), limits)
	if !errors.Is(err, ErrBudgetExceeded) {
		t.Fatalf("err = %v, want ErrBudgetExceeded", err)
	}
	if !strings.Contains(err.Error(), "field lines") {
		t.Errorf("error %q does not say what ran out", err)
	}
	limits = rawmail.DefaultLimits()
	limits.ScanBytes = 512 << 10
	_, err = ParseLimits(quotedFromLines(1<<20), limits)
	if !errors.Is(err, ErrBudgetExceeded) || !strings.Contains(err.Error(), "bytes scanned") {
		t.Fatalf("err = %v, want ErrBudgetExceeded for bytes scanned", err)
	}
	// The default budget ends a 10 MiB message of nothing but field-like
	// lines.
	_, err = Parse(lineartest.Repeat(reportHead+"--b\nContent-Type: message/feedback-report\n\n", "a:\n", "--b--\n", 10<<20))
	if !errors.Is(err, ErrBudgetExceeded) {
		t.Fatalf("10 MiB of field lines: err = %v, want ErrBudgetExceeded", err)
	}
}

package fblingester

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/mailmon/mailmon/schemas"
)

// TestOverBudgetReportIsDeadLettered: a report that costs the parsers more
// work than their budget (here 10 MiB of field lines in the feedback part,
// within the default size limit) is dead-lettered with the budget error as
// its reason, not parsed for minutes.
func TestOverBudgetReportIsDeadLettered(t *testing.T) {
	in := analyser(t)
	var b bytes.Buffer
	b.WriteString("From: fbl@provider.example\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n")
	for b.Len() < 10<<20-64 {
		b.WriteString("a:\r\n")
	}
	b.WriteString("--b--\r\n")
	res, err := in.analyse(context.Background(), b.Bytes(), origin{via: schemas.ReceivedViaSMTP})
	if err != nil {
		t.Fatal(err)
	}
	if res.outcome != outcomeDeadLetter || !strings.Contains(res.reason, "work budget exceeded") || len(res.events) != 0 {
		t.Fatalf("outcome %q, reason %q, %d events; want a dead letter for the budget", res.outcome, res.reason, len(res.events))
	}
}

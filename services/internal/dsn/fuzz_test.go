package dsn

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailmon/mailmon/services/internal/rawmail"
)

// tightLimits are small enough that fuzzed inputs run into them.
var tightLimits = rawmail.Limits{ScanBytes: 16 << 10, Lines: 300, Parts: 16, Depth: 4}

// maxPassesPerByte bounds how many times one nesting level reads a byte
// (as counted by the budget).
const maxPassesPerByte = 16

// FuzzParse feeds arbitrary bytes to Parse. Whatever the input: no panic;
// the only error is a budget error, and it comes without a bounce; every
// failed recipient has a reason and category and there are at most
// maxRecipients; the views encode as JSON; the work counted is linear in
// the input; and with tight limits, parsing stops soon after a limit runs
// out.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte("From: MAILER-DAEMON\nSubject: Undelivered\nX-Failed-Recipients: a@b.c\n\n<a@b.c>:\n"))
	f.Add([]byte("Content-Type: message/delivery-status\n\nFinal-Recipient: rfc822;\nAction:\nStatus: 5.\n"))
	f.Add([]byte("Subject: AWS Notification\n\n{\"notificationType\":\"Bounce\",\"bounce\":{}}"))
	f.Add([]byte("Content-Type: message/delivery-status\n\nFinal-Recipient: rfc822; a@b.c\nAction: failed\nDiagnostic-Code: smtp; 550\n x\n\n y\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		bud := rawmail.NewBudget(rawmail.DefaultLimits())
		b, err := parseBudget(raw, bud)
		checkResult(t, b, err)
		if max := int64(maxPassesPerByte*(rawmail.MaxDepth+1)) * int64(len(raw)+1); bud.Used().ScanBytes > max {
			t.Fatalf("%d bytes scanned for a %d-byte message (more than %d)", bud.Used().ScanBytes, len(raw), max)
		}

		tight := rawmail.NewBudget(tightLimits)
		b, err = parseBudget(raw, tight)
		checkResult(t, b, err)
		if used := tight.Used().ScanBytes; used > tightLimits.ScanBytes+int64(maxPassesPerByte*len(raw)) {
			t.Fatalf("kept scanning after the budget ran out: %d bytes (limit %d, message %d)", used, tightLimits.ScanBytes, len(raw))
		}
	})
}

func checkResult(t *testing.T, b *Bounce, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrBudgetExceeded) {
			t.Fatalf("error that is not a budget error: %v", err)
		}
		if b != nil {
			t.Fatal("a bounce came with the budget error")
		}
		return
	}
	if b == nil {
		t.Fatal("no bounce and no error")
	}
	if len(b.Recipients) > maxRecipients {
		t.Fatalf("%d recipients, at most %d", len(b.Recipients), maxRecipients)
	}
	for _, r := range b.Failed() {
		if r.Reason == "" || r.Category == "" {
			t.Fatalf("failed recipient without reason: %+v", r)
		}
	}
	if _, err := json.Marshal(b.Views()); err != nil {
		t.Fatal(err)
	}
	_ = b.TrackingHeader()
}

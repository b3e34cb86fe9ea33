package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestInspectRejection(t *testing.T) {
	in := strings.Join([]string{
		"smtp; 550 5.1.1 <a@example.com>: Recipient address rejected: User unknown in virtual mailbox table",
		"host mx[192.0.2.1] refused to talk to me: 554 5.7.1 Service unavailable; Client host [192.0.2.9] blocked using zen.spamhaus.org",
		"",
		"550-5.7.26 This mail has been blocked because the sender is unauthenticated. 550-5.7.26 Gmail requires all senders to authenticate with either SPF or DKIM.",
		"something nobody wrote a rule for", // no trailing newline
	}, "\n")
	var out bytes.Buffer
	if err := inspectRejection(context.Background(), strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []struct{ reason, category, signature string }{
		{"userunknown", "user_unknown", ""},
		{"blocked", "blocked_ip_or_blocklist", "spamhaus"},
		{"undefined", "other", ""},
		{"authfailure", "policy_auth_spf_dkim_dmarc", "gmail-5.7.26"},
		{"undefined", "other", ""},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines out, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, l := range lines {
		var got rejectionLine
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatal(err)
		}
		if got.Line != i+1 || got.Reason != want[i].reason || got.Category != want[i].category || got.Signature != want[i].signature {
			t.Errorf("line %d: got %s", i+1, l)
		}
	}
}

// TestInspectRejectionCutsLongLines: a line longer than maxRejectionLine is
// classified from its first maxRejectionLine bytes, and the next line is
// still its own.
func TestInspectRejectionCutsLongLines(t *testing.T) {
	in := "550 5.1.1 " + strings.Repeat("x", 3*maxRejectionLine) + "\n452 4.2.2 mailbox full\n"
	var out bytes.Buffer
	if err := inspectRejection(context.Background(), strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	var first, second rejectionLine
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if len(first.Text) > maxRejectionLine || first.Code != 550 {
		t.Errorf("first line: %d bytes of text, code %d", len(first.Text), first.Code)
	}
	if second.Line != 2 || second.Code != 452 {
		t.Errorf("second line: %+v", second)
	}
}

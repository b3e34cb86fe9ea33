package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
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
		{"onhold", "other", ""},
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

// TestInspectRejectionStage: a JSON line's command, or -stage for plain
// lines, is the SMTP stage the reply answered; a JSON line's own command
// wins, and a line that is not JSON or names no known command is still
// classified, with an error.
func TestInspectRejectionStage(t *testing.T) {
	in := strings.Join([]string{
		"550 5.1.1 User unknown",
		`{"text": "550 5.1.1 User unknown", "command": "DATA"}`,
		`{"text": "550 5.1.1 User unknown", "command": "RCPT"}`,
		`{"text": "550 5.1.1 User unknown", "command": "QUIT"}`,
		`{"text": "550 5.1.1 User unknown (in reply to RCPT TO command)", "command": "DATA"}`,
		`{"text": "550 5.1.1 User unknown"`,
	}, "\n")
	for _, tc := range []struct {
		stage string
		want  []rejectionLine
	}{
		{"", []rejectionLine{
			{Reason: "userunknown", Category: "user_unknown"},
			{Reason: "filtered", Category: "filtered", Stage: "data"},
			{Reason: "userunknown", Category: "user_unknown", Stage: "rcpt"},
			{Reason: "userunknown", Category: "user_unknown", Error: "unknown command"},
			{Reason: "userunknown", Category: "user_unknown", Stage: "data"},
			{Reason: "userunknown", Category: "user_unknown", Error: "not a JSON line"},
		}},
		{"MAIL", []rejectionLine{
			{Reason: "rejected", Category: "sender_rejected", Stage: "mail"},
			{Reason: "filtered", Category: "filtered", Stage: "data"},
			{Reason: "userunknown", Category: "user_unknown", Stage: "rcpt"},
			{Reason: "userunknown", Category: "user_unknown", Error: "unknown command"},
			{Reason: "userunknown", Category: "user_unknown", Stage: "data"},
			{Reason: "rejected", Category: "sender_rejected", Stage: "mail", Error: "not a JSON line"},
		}},
	} {
		run, err := rejectionFlags([]string{"-stage", tc.stage}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := run(context.Background(), strings.NewReader(in), &out); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != len(tc.want) {
			t.Fatalf("-stage %q: %d lines out, want %d:\n%s", tc.stage, len(lines), len(tc.want), out.String())
		}
		for i, l := range lines {
			var got rejectionLine
			if err := json.Unmarshal([]byte(l), &got); err != nil {
				t.Fatal(err)
			}
			w := tc.want[i]
			if got.Line != i+1 || got.Reason != w.Reason || got.Category != w.Category || got.Stage != w.Stage ||
				(w.Error == "") != (got.Error == "") || !strings.Contains(got.Error, w.Error) {
				t.Errorf("-stage %q line %d: got %s, want %+v", tc.stage, i+1, l, w)
			}
		}
	}
}

func TestInspectRejectionFlagErrors(t *testing.T) {
	for _, args := range [][]string{{"-stage", "QUIT"}, {"-stage"}, {"-nope"}, {"extra"}} {
		if _, err := rejectionFlags(args, io.Discard); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
	var out, errOut bytes.Buffer
	if code := inspectCmd(context.Background(), []string{"rejection", "-stage", "QUIT", "-"}, &out, &errOut); code != exitUsage {
		t.Errorf("bad -stage: exit %d, want %d (%s)", code, exitUsage, errOut.String())
	}
	if code := inspectCmd(context.Background(), []string{"bounce", "-stage", "DATA", "-"}, &out, &errOut); code != exitUsage {
		t.Errorf("bounce takes no options: exit %d, want %d", code, exitUsage)
	}
}

// TestInspectRejectionStageFromFile runs the command line with -stage on a
// file, as the scoring does with standard input.
func TestInspectRejectionStageFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replies.txt")
	if err := os.WriteFile(path, []byte("550 5.1.1 User unknown\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := inspectCmd(context.Background(), []string{"rejection", "-stage", "DATA", path}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var got rejectionLine
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Reason != "filtered" || got.Stage != "data" {
		t.Errorf("got %+v", got)
	}
}

// FuzzInspectRejection: any input, plain or JSON lines, gives one JSON
// object per line and no error.
func FuzzInspectRejection(f *testing.F) {
	f.Add("550 5.1.1 User unknown\n")
	f.Add(`{"text": "550 5.1.1 User unknown", "command": "DATA"}` + "\n")
	f.Add(`{"text": 1, "command": ["x"]}` + "\n{\n{}\n")
	f.Fuzz(func(t *testing.T, in string) {
		var out bytes.Buffer
		if err := inspectRejectionStage(context.Background(), strings.NewReader(in), &out, "rcpt"); err != nil {
			t.Fatal(err)
		}
		want := strings.Count(in, "\n")
		if in != "" && !strings.HasSuffix(in, "\n") {
			want++
		}
		dec := json.NewDecoder(&out)
		n := 0
		for dec.More() {
			var l rejectionLine
			if err := dec.Decode(&l); err != nil {
				t.Fatalf("output object %d: %v", n+1, err)
			}
			n++
			if l.Line != n || l.Reason == "" || l.Category == "" {
				t.Fatalf("object %d: %+v", n, l)
			}
		}
		if n != want {
			t.Fatalf("%d objects for %d lines", n, want)
		}
	})
}

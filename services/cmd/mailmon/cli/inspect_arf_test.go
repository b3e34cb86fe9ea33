package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInspectARFCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	file := filepath.Join("..", "..", "..", "internal", "arf", "testdata", "abuse-tracked.eml")
	if code := Main(context.Background(), []string{"inspect", "arf", file}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	for k, want := range map[string]any{
		"is_arf": true, "feedback_type": "abuse", "user_agent": "ISPFeedback/2.1", "version": "1",
		"source_ip": "192.0.2.10", "original_mail_from": "<bounce-123@sender.example>",
		"arrival_date": "2024-06-10T11:58:12Z", "original_message_id": "<20240610115810.1234@sender.example>",
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if rd, _ := got["reported_domain"].([]any); len(rd) != 1 || rd[0] != "sender.example" {
		t.Errorf("reported_domain = %v", got["reported_domain"])
	}
	if rt, _ := got["original_rcpt_to"].([]any); len(rt) != 1 {
		t.Errorf("original_rcpt_to = %v", got["original_rcpt_to"])
	}
	trace, _ := got["trace"].(map[string]any)
	if h, _ := trace["tracking_header"].(string); !strings.HasPrefix(h, "v=1; k=2024-06; c=acme;") {
		t.Errorf("trace = %v", trace)
	}
}

func TestInspectBounceCommand(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "internal", "dsn", "testdata")
	tests := []struct {
		file  string
		lines int
	}{
		{"postfix-dsn.eml", 2},
		{"exim-text.eml", 2},
		{"vacation.eml", 0},      // an auto-reply prints nothing
		{"not-bounce.eml", 0},    // nor does a message that is no bounce
		{"delivered-dsn.eml", 0}, // nor a delivery report
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		if code := Main(context.Background(), []string{"inspect", "bounce", filepath.Join(dir, tt.file)}, &out, &errOut); code != exitOK {
			t.Fatalf("%s: exit %d: %s", tt.file, code, errOut.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if out.Len() == 0 {
			lines = nil
		}
		if len(lines) != tt.lines {
			t.Fatalf("%s: %d lines, want %d:\n%s", tt.file, len(lines), tt.lines, out.String())
		}
		for _, l := range lines {
			var v map[string]any
			if err := json.Unmarshal([]byte(l), &v); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"recipient", "reason", "category", "status", "reply_code", "diagnostic"} {
				if _, ok := v[k]; !ok {
					t.Errorf("%s: no %q in %s", tt.file, k, l)
				}
			}
		}
	}
}

// TestInspectMbox reads an mbox of several messages, one object (or none)
// per message, with quoted ">From " lines unquoted.
func TestInspectMbox(t *testing.T) {
	var mbox bytes.Buffer
	for _, f := range []string{"postfix-dsn.eml", "vacation.eml", "yahoo-text.eml"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "..", "internal", "dsn", "testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		mbox.WriteString("From MAILER-DAEMON Mon Jun 10 12:00:05 2024\n")
		mbox.Write(raw)
		mbox.WriteString("\n")
	}
	var out bytes.Buffer
	if err := inspectBounce(context.Background(), bytes.NewReader(mbox.Bytes()), &out); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 3 {
		t.Errorf("%d lines, want 3 (2 + 0 + 1):\n%s", n, out.String())
	}
	// A file is split only when it is named as an mbox.
	dir := t.TempDir()
	for name, want := range map[string]int{"folder.mbox": 3, "one.eml": 2} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, mbox.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		if code := Main(context.Background(), []string{"inspect", "bounce", path}, &out, &errOut); code != exitOK {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		if n := strings.Count(out.String(), "\n"); n != want {
			t.Errorf("%s: %d lines, want %d", name, n, want)
		}
	}

	msgs := splitMbox([]byte("From a@b Thu Apr 29 16:51:04 2007\nSubject: one\n\n>From here\n>>From there\nFrom the text\n\n" +
		"From x Fri Apr 30 01:02:03 2007\nSubject: two\n\nbody\n"))
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2: %q", len(msgs), msgs)
	}
	if want := "Subject: one\n\nFrom here\n>From there\nFrom the text\n\n"; string(msgs[0]) != want {
		t.Errorf("message 1 = %q, want %q", msgs[0], want)
	}
	if one := splitMbox([]byte("Subject: not an mbox\n\nFrom a@b Thu Apr 29 16:51:04 2007\n")); len(one) != 1 {
		t.Errorf("a single message split into %d", len(one))
	}
}

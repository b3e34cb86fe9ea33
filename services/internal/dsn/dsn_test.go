package dsn

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailmon/mailmon/services/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func parseFile(t *testing.T, name string) *Bounce {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

// goldenView is what a golden file holds: the kind and format of the message
// and the views `mailmon inspect bounce` prints.
type goldenView struct {
	Kind   string `json:"kind"`
	Format string `json:"format"`
	Views  []View `json:"views"`
}

// TestGolden compares every testdata/*.eml with its .golden.json (go test
// -run Golden -update rewrites them).
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			b := parseFile(t, name)
			got := golden.JSON(t, goldenView{b.Kind, b.Format, b.Views()})
			golden.Check(t, strings.TrimSuffix(f, ".eml")+".golden.json", got, *update)
		})
	}
}

// TestBounces checks kind, recipients, reasons and trace keys of each
// testdata message, so the golden files are not the only guard.
func TestBounces(t *testing.T) {
	type rcpt struct{ addr, action, reason, status, command string }
	tests := []struct {
		file     string
		kind     string
		format   string
		failed   []rcpt
		tracking string
		msgID    string
	}{
		{"postfix-dsn.eml", KindBounce, FormatRFC3464, []rcpt{
			{"nobody@mail.example.net", ActionFailed, "userunknown", "5.1.1", "RCPT"},
			{"full@mail.example.net", ActionFailed, "mailboxfull", "5.2.2", "RCPT"}},
			"v=1; k=2024-06; c=acme", "msg-1001@sender.example"},
		{"exim-text.eml", KindBounce, FormatText, []rcpt{
			{"old-user@retired.example", ActionFailed, "expired", "", ""},
			{"listed@strict.example", ActionFailed, "blocked", "5.7.1", "RCPT"}},
			"", "offers-11@sender.example"},
		{"qmail-text.eml", KindBounce, FormatText, []rcpt{
			{"ghost@qmail.example", ActionFailed, "userunknown", "5.1.1", "RCPT"},
			{"someone@no-such-domain.example", ActionFailed, "hostunknown", "5.1.2", ""}},
			"", "hello-12@sender.example"},
		{"sendmail-transcript.eml", KindBounce, FormatRFC3464, []rcpt{
			// "Unknown user" after DATA with status 5.2.0: a filter.
			{"filtered@carrier.example", ActionFailed, "filtered", "5.2.0", "DATA"}},
			"", "test-12@sender.example"},
		{"office365-dsn.eml", KindBounce, FormatRFC3464, []rcpt{
			{"former.employee@tenant.example", ActionFailed, "userunknown", "5.1.10", ""}},
			"", "q2-2024@sender.example"},
		{"gmail-text.eml", KindBounce, FormatText, []rcpt{
			{"target@gmail.example", ActionFailed, "authfailure", "5.7.26", ""}},
			"", "hi-14@sender.example"},
		{"delayed-dsn.eml", KindBounce, FormatRFC3464, []rcpt{
			{"slow@slow.example", ActionDelayed, "expired", "4.4.1", ""}}, "", ""},
		{"delivered-dsn.eml", KindDelivered, FormatRFC3464, nil, "", ""},
		{"vacation.eml", KindAutoReply, "", nil, "", ""},
		{"ses-bounce.eml", KindBounce, FormatSES, []rcpt{
			{"gone@ses.example", ActionFailed, "userunknown", "5.1.1", ""}},
			"v=1; k=2024-06; c=hooli", "ses-18@sender.example"},
		{"ses-complaint.eml", KindFeedback, FormatSES, nil, "", ""},
		{"not-bounce.eml", KindNone, "", nil, "", ""},
		{"nested-bounce.eml", KindBounce, FormatRFC3464, []rcpt{
			{"blocked@inner.example", ActionFailed, "blocked", "5.7.1", ""}}, "", ""},
		{"html-only.eml", KindBounce, FormatText, []rcpt{
			{"disabled@webmail.example", ActionFailed, "suspend", "5.2.1", ""}}, "", ""},
		{"labelled-text.eml", KindBounce, FormatText, []rcpt{
			{"stuffed@hosting.example", ActionFailed, "mailboxfull", "", ""}}, "", "sale-22@sender.example"},
		{"yahoo-text.eml", KindBounce, FormatText, []rcpt{
			{"closed@yahoo.example", ActionFailed, "userunknown", "", "RCPT"}}, "", "hi-23@sender.example"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b := parseFile(t, tt.file)
			if b.Kind != tt.kind || b.Format != tt.format {
				t.Errorf("Kind, Format = %q, %q; want %q, %q", b.Kind, b.Format, tt.kind, tt.format)
			}
			failed := b.Failed()
			if len(failed) != len(tt.failed) {
				t.Fatalf("%d failed recipients, want %d: %+v", len(failed), len(tt.failed), failed)
			}
			for i, w := range tt.failed {
				r := failed[i]
				got := rcpt{r.Recipient, r.Action, r.Reason, r.Status, r.Command}
				if got != w {
					t.Errorf("recipient %d = %+v, want %+v (diagnostic %q)", i, got, w, r.Diagnostic)
				}
				if r.Category == "" || r.Diagnostic == "" {
					t.Errorf("recipient %d: empty category or diagnostic: %+v", i, r)
				}
			}
			tr := b.Trace()
			if !strings.HasPrefix(tr.TrackingHeader, tt.tracking) || (tt.tracking == "") != (tr.TrackingHeader == "") {
				t.Errorf("tracking header = %q, want prefix %q", tr.TrackingHeader, tt.tracking)
			}
			if tt.msgID != "" && tr.MessageID != tt.msgID {
				t.Errorf("original Message-ID = %q, want %q", tr.MessageID, tt.msgID)
			}
			if views := b.Views(); (len(views) > 0) != (tt.kind == KindBounce) {
				t.Errorf("%d views for a %s", len(views), b.Kind)
			}
		})
	}
}

func TestLeadAddress(t *testing.T) {
	tests := []struct {
		line, addr, rest string
	}{
		{"<user@example.com>: host mx[192.0.2.1] said: 550 no", "user@example.com", "host mx[192.0.2.1] said: 550 no"},
		{"  user@example.com", "user@example.com", ""},
		{"user@example.com on Thu, 29 Apr 2007 16:51:51 -0500", "user@example.com", "on Thu, 29 Apr 2007 16:51:51 -0500"},
		{"<a.b+tag@sub.example.org>... User unknown", "a.b+tag@sub.example.org", "User unknown"},
		{"Recipient: <r@example.net>", "r@example.net", ""},
		{"Final-Recipient: rfc822; r@example.net", "r@example.net", ""},
		{"Unknown user: kijitora@example.com", "kijitora@example.com", "Unknown user"},
		{"554 <k@example.edu>... Remote protocol error", "k@example.edu", "554 Remote protocol error"},
		{"550 5.1.1 <k@example.edu>... User unknown", "k@example.edu", "550 5.1.1 User unknown"},
		{"* bullet@example.com (reason: full)", "bullet@example.com", "(reason: full)"},
		{"r@example.net [User unknown]", "r@example.net", "[User unknown]"},
	}
	for _, tt := range tests {
		addr, rest, _, ok := leadAddress(tt.line)
		if !ok || addr != tt.addr || rest != tt.rest {
			t.Errorf("leadAddress(%q) = %q, %q, %v; want %q, %q", tt.line, addr, rest, ok, tt.addr, tt.rest)
		}
	}
	for _, line := range []string{
		"There was an error delivering your mail to <x@example.com>.",
		"From: sender@example.com",
		"Reply-To: sender@example.com",
		"mailto:x@example.com",
		"no address here",
		"user@", "@example.com",
	} {
		if addr, _, _, ok := leadAddress(line); ok {
			t.Errorf("leadAddress(%q) = %q, want none", line, addr)
		}
	}
}

func TestCommandOf(t *testing.T) {
	tests := map[string]string{
		"550 5.1.1 <a@b>: User unknown (in reply to RCPT TO command)":        "RCPT",
		"(in reply to\n    end of DATA command)":                             "DATA",
		"SMTP error from remote mail server after MAIL FROM:<x@y> SIZE=1234": "MAIL",
		"SMTP error from remote mail server after initial connection:":       "CONN",
		">>> RCPT To:<a@b>\n<<< 550 No such user":                            "RCPT",
		"192.0.2.1 does not like recipient.":                                 "RCPT",
		"mx.example.com [192.0.2.1] did not like our final DATA: 554 spam":   "DATA",
		"Remote host said: 554 Not a valid recipient [RCPT_TO]":              "RCPT",
		"host refused to talk to me: 421 greeting failed":                    "CONN",
		"550 5.7.1 Client host rejected: cannot find your hostname":          "",
		"SMTP error from remote mail server after end of data:":              "DATA",
		"SMTP error from remote mail server after pipelined RCPT TO:<a@b>:":  "RCPT",
		"192.0.2.1 failed after I sent the message.":                         "DATA",
		"192.0.2.1 failed on DATA command.":                                  "DATA",
		"Connected to 192.0.2.1 but sender was rejected.":                    "MAIL",
		"Connected to 192.0.2.1 but my name was rejected.":                   "HELO",
		"lost connection with mx[192.0.2.1] while sending RCPT TO":           "RCPT",
		"please send mail with the data attached":                            "",
	}
	for in, want := range tests {
		if got := commandOf(in); got != want {
			t.Errorf("commandOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFindStatus(t *testing.T) {
	tests := map[string]string{
		"5.1.1":                     "5.1.1",
		"5.0.0 (undefined status)":  "5.0.0",
		"smtp; 550 5.1.10 RESOLVER": "5.1.10",
		"version 1.5.2.1 of 4.4.7":  "4.4.7",
		"ip 192.168.1.1":            "",
		"2.0.0 Ok":                  "2.0.0",
		"nothing":                   "",
		"5.7.26":                    "5.7.26",
	}
	for in, want := range tests {
		if got := findStatus(in); got != want {
			t.Errorf("findStatus(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCutOriginal(t *testing.T) {
	tests := []struct{ name, text, notice string }{
		{"exim separator", "error text\n------ This is a copy of the message, including all the headers. ------\nFrom: a@b\n", "error text"},
		{"qmail separator", "x\n--- Below this line is a copy of the message.\n\nReturn-Path: <a@b>", "x"},
		{"dashed noun", "x\n----- Original message -----\nSubject: s", "x"},
		{"header block", "error\n\nReceived: from x by y\nFrom: a@b\nSubject: s\nDate: today\n\nbody", "error\n\n"},
		{"sendmail prose is not a separator", "The original message was received at Thu\nfrom host\n", "The original message was received at Thu\nfrom host\n"},
		{"no original", "only the error\n", "only the error\n"},
	}
	for _, tt := range tests {
		notice, _ := cutOriginal(tt.text)
		if notice != tt.notice {
			t.Errorf("%s: notice = %q, want %q", tt.name, notice, tt.notice)
		}
	}
}

func TestNormAction(t *testing.T) {
	for in, want := range map[string]string{
		"failed": ActionFailed, "Failed (permanent)": ActionFailed, "delayed": ActionDelayed,
		"DELIVERED": ActionDelivered, "relayed": ActionRelayed, "expanded": ActionExpanded,
		"expired": actionExpired, "deferred": ActionDelayed, "bounced": ActionFailed, "": ActionFailed,
	} {
		if got := normAction(in); got != want {
			t.Errorf("normAction(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHasCode(t *testing.T) {
	for in, want := range map[string]bool{
		"550 5.1.1 User unknown": true, "said: 421 try later": true, "status 5.7.1": true,
		"250 2.0.0 Ok": false, "Size (in bytes): 222 Number": false, "port 4500": false,
		"id 1234 5.5": false, "v4.4.1x": false,
	} {
		if got := hasCode(in); got != want {
			t.Errorf("hasCode(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestHTMLToText(t *testing.T) {
	in := "<html><head><style>p{x:1}</style><script>alert(1)</script></head><body><p>Line&nbsp;one &amp; two</p><br>x&lt;y<td>cell</td></body></html>"
	want := "\nLine one & two\n\nx<y cell"
	if got := htmlToText(in); got != want {
		t.Errorf("htmlToText = %q, want %q", got, want)
	}
}

func TestRemoteHostOf(t *testing.T) {
	tests := map[string]string{
		"host mx1.example.net[198.51.100.20] said: 550 5.1.1 no":                                        "mx1.example.net",
		"SMTP error from remote mail server after RCPT TO:<a@b>: host mx.example.jp [192.0.2.153]: 550": "mx.example.jp",
		"... while talking to mx.carrier.example.:":                                                     "mx.carrier.example",
		"Remote Server at student.example.edu (10.1.1.3) returned '550'":                                "student.example.edu",
		"192.0.2.153 does not like recipient. Remote host said: 550":                                    "192.0.2.153",
		"550 5.1.1 user unknown": "",
		"the host said no":       "",
	}
	for in, want := range tests {
		if got := remoteHostOf(in); got != want {
			t.Errorf("remoteHostOf(%q) = %q, want %q", in, got, want)
		}
	}
}

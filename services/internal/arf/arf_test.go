package arf

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/services/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func parseFile(t *testing.T, name string) *Report {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

// TestGolden compares the JSON view of every testdata/*.eml with its
// .golden.json (go test -run Golden -update rewrites them).
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			got := golden.JSON(t, parseFile(t, name).View())
			golden.Check(t, strings.TrimSuffix(f, ".eml")+".golden.json", got, *update)
		})
	}
}

// TestReports checks the fields that matter of each testdata report, so
// the golden files are not the only guard.
func TestReports(t *testing.T) {
	tests := []struct {
		file       string
		isARF      bool
		format     string
		feedback   string // EffectiveFeedbackType
		sourceIP   string // Trace().SourceIP
		arrival    string // RFC 3339, "" for none
		rcpts      int
		domains    []string
		msgID      string // Trace().MessageID
		dkim       string
		tracking   string // prefix of TrackingHeader()
		headerOnly bool
		noOriginal bool
	}{
		{file: "abuse-tracked.eml", isARF: true, format: FormatARF, feedback: TypeAbuse, sourceIP: "192.0.2.10",
			arrival: "2024-06-10T11:58:12Z", rcpts: 1, domains: []string{"sender.example"},
			msgID: "20240610115810.1234@sender.example", dkim: "sender.example", tracking: "v=1; k=2024-06; c=acme; s=192.0.2.10; m=0190f0c2"},
		{file: "base64-headers-only.eml", isARF: true, format: FormatARF, feedback: TypeAbuse, sourceIP: "2001:db8::25",
			arrival: "2024-06-11T11:59:10Z", rcpts: 2, domains: []string{"sender.example", "track.sender.example"},
			msgID: "offers-2024-24@sender.example", tracking: "v=1; k=2024-06; c=globex", headerOnly: true},
		{file: "auth-failure-no-original.eml", isARF: true, format: FormatARF, feedback: TypeAuthFailure, sourceIP: "203.0.113.99",
			arrival: "2024-06-12T10:14:00Z", domains: []string{"sender.example"}, dkim: "sender.example", noOriginal: true},
		{file: "jmrp.eml", format: FormatJMRP, feedback: TypeAbuse, sourceIP: "192.0.2.44", msgID: "deals-99@sender.example",
			tracking: "v=1; k=2024-06; c=initech"},
		{file: "apple-unsubscribe.eml", format: FormatAppleUnsubscribe, feedback: TypeOptOut, noOriginal: true},
		{file: "dmarc-text.eml", format: FormatDMARCText, feedback: TypeAuthFailure, sourceIP: "203.0.113.5",
			msgID: "phish-7@sender.example", headerOnly: true},
		{file: "forwarded-report.eml", isARF: true, format: FormatARF, feedback: TypeFraud, sourceIP: "192.0.2.77",
			arrival: "2024-06-16T05:59:00Z", msgID: "fraud-1@sender.example"},
		{file: "not-spam-mixed.eml", isARF: true, format: FormatARF, feedback: TypeNotSpam, sourceIP: "192.0.2.12",
			arrival: "2024-06-17T11:30:00Z", noOriginal: true},
		{file: "yahoo-cfl-legacy.eml", format: FormatYahooCFL, feedback: TypeAbuse, msgID: "savings-24@sender.example",
			tracking: "v=1; k=2024-06; c=umbrella"},
		{file: "plain-message.eml", format: FormatNone, noOriginal: true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r := parseFile(t, tt.file)
			tr := r.Trace()
			if r.IsARF != tt.isARF || r.Format != tt.format {
				t.Errorf("IsARF, Format = %v, %q; want %v, %q", r.IsARF, r.Format, tt.isARF, tt.format)
			}
			if got := r.EffectiveFeedbackType(); got != tt.feedback {
				t.Errorf("EffectiveFeedbackType = %q, want %q", got, tt.feedback)
			}
			if tr.SourceIP != tt.sourceIP {
				t.Errorf("Trace.SourceIP = %q, want %q", tr.SourceIP, tt.sourceIP)
			}
			arrival := ""
			if !r.ArrivalDate.IsZero() {
				arrival = r.ArrivalDate.Format(time.RFC3339)
			}
			if arrival != tt.arrival {
				t.Errorf("ArrivalDate = %q, want %q (raw %q)", arrival, tt.arrival, r.ArrivalDateRaw)
			}
			if len(r.OriginalRcptTo) != tt.rcpts {
				t.Errorf("OriginalRcptTo = %q, want %d", r.OriginalRcptTo, tt.rcpts)
			}
			if strings.Join(r.ReportedDomain, ",") != strings.Join(tt.domains, ",") {
				t.Errorf("ReportedDomain = %q, want %q", r.ReportedDomain, tt.domains)
			}
			if tr.MessageID != tt.msgID {
				t.Errorf("Trace.MessageID = %q, want %q", tr.MessageID, tt.msgID)
			}
			if tr.DKIMDomain != tt.dkim {
				t.Errorf("Trace.DKIMDomain = %q, want %q", tr.DKIMDomain, tt.dkim)
			}
			if !strings.HasPrefix(r.TrackingHeader(), tt.tracking) || (tt.tracking == "") != (r.TrackingHeader() == "") {
				t.Errorf("TrackingHeader = %q, want prefix %q", r.TrackingHeader(), tt.tracking)
			}
			if (r.Original == nil) != tt.noOriginal {
				t.Errorf("Original = %v, want none: %v", r.Original, tt.noOriginal)
			} else if r.Original != nil && r.Original.HeadersOnly != tt.headerOnly {
				t.Errorf("Original.HeadersOnly = %v, want %v", r.Original.HeadersOnly, tt.headerOnly)
			}
		})
	}
}

func TestSourceAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{" 192.0.2.1 (mail.example)", "192.0.2.1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"IPv6:2001:db8::2", "2001:db8::2"},
		{"::ffff:192.0.2.9", "192.0.2.9"},
		{"192.0.2.1;", "192.0.2.1"},
		{"mail.example", ""},
		{"", ""},
		{"999.1.1.1", ""},
	}
	for _, tt := range tests {
		got := ""
		if a, ok := SourceAddr(tt.in); ok {
			got = a.String()
		}
		if got != tt.want {
			t.Errorf("SourceAddr(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDKIMTag(t *testing.T) {
	sig := "v=1; a=rsa-sha256; d=Example.COM ; s=sel;\n h=from:to; b=abc\n def"
	for tag, want := range map[string]string{"d": "Example.COM", "s": "sel", "b": "abcdef", "x": ""} {
		if got := DKIMTag(sig, tag); got != want {
			t.Errorf("DKIMTag(%q) = %q, want %q", tag, got, want)
		}
	}
}

func TestIncidentCount(t *testing.T) {
	for in, want := range map[string]int{"": 1, "7": 7, " 12 ": 12, "x": 1, "0": 1, "-3": 1} {
		if got := (&Report{Incidents: in}).IncidentCount(); got != want {
			t.Errorf("IncidentCount(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestTrackingHeaderUnfolded checks that a folded tracking header comes
// back as one line, the form schemas/tracking verifies.
func TestTrackingHeaderUnfolded(t *testing.T) {
	v := parseFile(t, "abuse-tracked.eml").TrackingHeader()
	if strings.ContainsAny(v, "\r\n\t") || !strings.HasSuffix(v, "h=yyuwjiq8lNIJW_VlgQeDDJWNP-xEVI_OFkVIyWoYL8M") {
		t.Errorf("TrackingHeader = %q", v)
	}
}

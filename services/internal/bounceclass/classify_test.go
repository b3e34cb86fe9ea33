package bounceclass

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		in        Input
		reason    string
		signature string
		rule      string // "" = no text rule
		permanent bool
	}{
		{
			name:   "text decides over a deferral status (Postfix banner-time 554 as dsn=4.0.0)",
			in:     Input{Text: "host mx.example.net[192.0.2.1] refused to talk to me: 554 mx.example.net Your message was rejected because of the sending MTA's poor reputation.", Status: "4.0.0"},
			reason: ReasonBadReputation, signature: "talos", rule: "ironport-reputation", permanent: true,
		},
		{
			name:   "text decides over a specific status",
			in:     Input{Text: "550 5.1.1 Service unavailable; client [192.0.2.9] blocked using b.barracudacentral.org", ReplyCode: 550, Status: "5.1.1"},
			reason: ReasonBlocked, signature: "barracuda", rule: "dnsbl-named", permanent: true,
		},
		{
			name:   "status decides when no rule matches",
			in:     Input{Text: "<ann@example.com>... zzz", ReplyCode: 550, Status: "5.1.1"},
			reason: ReasonUserUnknown, permanent: true,
		},
		{
			name:   "vendor status detail falls back to its subject",
			in:     Input{Text: "zzz", Status: "5.7.950"},
			reason: ReasonSecurityError, permanent: true,
		},
		{
			name:   "a provider-documented status detail decides",
			in:     Input{Text: "zzz", Status: "5.7.606"},
			reason: ReasonBlocked, permanent: true,
		},
		{
			name:   "a decisive status overrules the wording",
			in:     Input{Text: "550 5.2.2 Requested action not taken: mailbox unavailable"},
			reason: ReasonMailboxFull, permanent: true,
		},
		{
			name:   "reply code decides when the status tells nothing",
			in:     Input{Text: "zzz", ReplyCode: 552, Status: "5.0.0"},
			reason: ReasonMailboxFull, permanent: true,
		},
		{
			name:   "words but no cause",
			in:     Input{Text: "zzz", ReplyCode: 554},
			reason: ReasonOnHold, permanent: true,
		},
		{
			name:   "nothing known",
			in:     Input{Text: "554 5.0.0", ReplyCode: 554},
			reason: ReasonUndefined, permanent: true,
		},
		{
			name:   "codes found in the text when Input has none",
			in:     Input{Text: "host mx[192.0.2.1] said: 452 4.2.2 zzz (in reply to RCPT TO command)"},
			reason: ReasonMailboxFull, permanent: false,
		},
		{
			name:   "no code at all: permanence from the reason",
			in:     Input{Text: "User unknown"},
			reason: ReasonUserUnknown, rule: "user-unknown", permanent: true,
		},
		{
			name:   "reply code wins over the status for permanence",
			in:     Input{Text: "Mailbox full", ReplyCode: 452, Status: "5.2.2"},
			reason: ReasonMailboxFull, rule: "mailbox-full", permanent: false,
		},
		{
			name:   "user unknown after DATA is a filter",
			in:     Input{Text: "host mx[192.0.2.1] said: 550 Unknown user ann@example.com (in reply to end of DATA command)"},
			reason: ReasonFiltered, rule: "user-unknown", permanent: true,
		},
		{
			name:   "user unknown in reply to MAIL FROM is about the sender",
			in:     Input{Text: "host mx[192.0.2.1] said: 550 5.1.1 <bounce@example.com>... User unknown (in reply to MAIL FROM command)"},
			reason: ReasonRejected, rule: "user-unknown", permanent: true,
		},
		{
			name:   "size with 5.2.3 is the administrative limit",
			in:     Input{Text: "Message size exceeds fixed maximum message size", ReplyCode: 552, Status: "5.2.3"},
			reason: ReasonExceedLimit, rule: "too-big", permanent: true,
		},
		{
			name:   "Gmail signature carries the status",
			in:     Input{Text: "Gmail has detected an unusual rate of mail originating from your IP address. - gsmtp", ReplyCode: 421, Status: "4.7.28"},
			reason: ReasonBlocked, signature: "gmail-4.7.28", rule: "gmail-unusual-rate",
		},
		{
			name:   "Outlook S3150",
			in:     Input{Text: "550 5.7.1 Unfortunately, messages from [192.0.2.5] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150)."},
			reason: ReasonBlocked, signature: "outlook-S3150", rule: "outlook-network-blocklist", permanent: true,
		},
		{
			name:   "continuation prefixes do not split phrases",
			in:     Input{Text: "550-5.7.1 [192.0.2.5] Our system has detected that this message is\n550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\n550 5.7.1 this message has been blocked. - gsmtp"},
			reason: ReasonSpamDetected, signature: "gmail-5.7.1", rule: "gmail-suspicious-content", permanent: true,
		},
		{
			name:   "typographic apostrophe",
			in:     Input{Text: "550 5.7.1 Unfortunately, messages from [192.0.2.5] weren\u2019t sent. Please contact your Internet service provider."},
			reason: ReasonBlocked, signature: "outlook-5.7.1", rule: "outlook-network-blocklist", permanent: true,
		},
		{
			name:   "greylisting is known but no failure",
			in:     Input{Text: "450 4.7.1 <ann@example.com>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.com.html"},
			reason: ReasonUndefined, rule: "greylisted",
		},
		{
			name:   "delivered: no text read",
			in:     Input{Text: "250 2.0.0 OK 1700000000 x1si123 - gsmtp", ReplyCode: 250, Status: "2.0.0"},
			reason: ReasonDelivered,
		},
		{
			name:   "empty",
			in:     Input{},
			reason: ReasonUndefined,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Classify(tt.in)
			if r.Reason != tt.reason || r.Signature != tt.signature || r.Rule != tt.rule || r.Permanent != tt.permanent {
				t.Errorf("got reason=%s signature=%q rule=%q permanent=%v, want %s %q %q %v",
					r.Reason, r.Signature, r.Rule, r.Permanent, tt.reason, tt.signature, tt.rule, tt.permanent)
			}
			if r.Matched != (r.Rule != "") {
				t.Errorf("Matched=%v with rule %q", r.Matched, r.Rule)
			}
			if r.Category != CategoryOf(r.Reason) {
				t.Errorf("category %s for reason %s", r.Category, r.Reason)
			}
		})
	}
}

func TestParseReply(t *testing.T) {
	tests := []struct {
		in, status, text string
		code             int
	}{
		{"smtp; 550 5.1.1 <a@b>: Recipient address rejected: User unknown", "5.1.1", "<a@b>: Recipient address rejected: User unknown", 550},
		{"SMTP;550 5.1.1 <a@b>... User unknown", "5.1.1", "<a@b>... User unknown", 550},
		{"X-Postfix; Host or domain name not found", "", "Host or domain name not found", 0},
		{"550-5.7.26 This mail is unauthenticated. 550-5.7.26 Gmail requires all senders 550 5.7.26 to authenticate.", "5.7.26", "This mail is unauthenticated. Gmail requires all senders to authenticate.", 550},
		{"421 Service not available", "", "Service not available", 421},
		{"550:5.2.2 Mailbox full", "5.2.2", "Mailbox full", 550},
		{"5.1.1 <a@b>... User unknown", "5.1.1", "<a@b>... User unknown", 0},
		{"host mx[192.0.2.1] said: 550 5.1.1 <a@b>: User unknown (in reply to RCPT TO command)", "5.1.1", "host mx[192.0.2.1] said: 550 5.1.1 <a@b>: User unknown (in reply to RCPT TO command)", 550},
		{"host mx[192.0.2.1] said: 550-5.7.1 blocked", "5.7.1", "host mx[192.0.2.1] said: 550-5.7.1 blocked", 550},
		{"Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)", "4.4.1", "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)", 0},
		{"connect to mx.example.com[192.0.2.1]:25: Connection refused", "", "connect to mx.example.com[192.0.2.1]:25: Connection refused", 0},
		{"", "", "", 0},
		{"  550  ", "", "", 550},
		{"2024-06-24 5501 is not a code", "", "2024-06-24 5501 is not a code", 0},
	}
	for _, tt := range tests {
		code, status, text := ParseReply(tt.in)
		if code != tt.code || status != tt.status || text != tt.text {
			t.Errorf("ParseReply(%q) = %d %q %q, want %d %q %q", tt.in, code, status, text, tt.code, tt.status, tt.text)
		}
	}
}

func TestStatusReason(t *testing.T) {
	tests := map[string]string{
		"5.1.1": ReasonUserUnknown, "4.2.2": ReasonMailboxFull, "5.2.2": ReasonMailboxFull,
		"5.1.2": ReasonHostUnknown, "5.4.4": ReasonHostUnknown, "4.4.4": ReasonNetworkError,
		"5.7.1": ReasonSecurityError, "5.7.26": ReasonAuthFailure, "5.7.25": ReasonRequirePTR,
		"4.4.7": ReasonExpired, "5.3.4": ReasonMesgTooBig, "5.2.3": ReasonExceedLimit,
		"5.7.606": ReasonSecurityError, "4.4.316": ReasonNetworkError, "5.6.9": ReasonContentError,
		"5.0.0": "", "4.0.0": "", "5.5.0": "", "2.0.0": ReasonDelivered, "": "", "5.x.1": "",
		"5.1": "", "9.1.1": "", "5.1.10": ReasonNotAccept, "5.7.13": ReasonSuspend,
	}
	for in, want := range tests {
		if got := StatusReason(in); got != want {
			t.Errorf("StatusReason(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCategories(t *testing.T) {
	for _, r := range Reasons {
		c := CategoryOf(r)
		found := false
		for _, k := range Categories {
			found = found || k == c
		}
		if !found {
			t.Errorf("reason %s maps to unknown category %q", r, c)
		}
	}
	if CategoryOf("nonsense") != CategoryOther {
		t.Error("unknown reason is not other")
	}
	for _, r := range Rules {
		if CategoryOf(r.Reason) == "" {
			t.Errorf("rule %s: no category", r.ID)
		}
		for _, alt := range r.IfStatus {
			if _, ok := reasonCategory[alt]; !ok {
				t.Errorf("rule %s: IfStatus reason %q unknown", r.ID, alt)
			}
		}
		for ph, alt := range r.IfPhase {
			if _, ok := reasonCategory[alt]; !ok {
				t.Errorf("rule %s: IfPhase reason %q unknown", r.ID, alt)
			}
			known := false
			for _, p := range Phases {
				known = known || p.Phase == ph
			}
			if !known {
				t.Errorf("rule %s: unknown phase %q", r.ID, ph)
			}
		}
	}
}

// TestRulePatternsReachable checks each pattern of each rule on its own:
// the text made of the pattern (with the rule's first With pattern) must be
// decided by that rule or an earlier one, never by a later one, and a
// pattern that an earlier rule always takes is reported.
func TestRulePatternsReachable(t *testing.T) {
	index := map[string]int{}
	for i, r := range Rules {
		index[r.ID] = i
	}
	shadowed := 0
	for i, r := range Rules {
		for _, p := range r.Any {
			text := p
			if len(r.With) > 0 {
				text += " " + r.With[0]
			}
			got := Classify(Input{Text: text})
			switch {
			case got.Rule == "":
				// Without patterns of the rule itself may veto a pattern alone.
				if !anyContains(text, r.Without) {
					t.Errorf("rule %s pattern %q: no rule matches it", r.ID, p)
				}
			case index[got.Rule] > i:
				if !anyContains(text, r.Without) {
					t.Errorf("rule %s pattern %q: decided by later rule %s", r.ID, p, got.Rule)
				}
			case index[got.Rule] < i:
				shadowed++
				t.Logf("rule %s pattern %q alone is taken by earlier rule %s", r.ID, p, got.Rule)
			}
		}
	}
	t.Logf("%d patterns are taken by an earlier rule when alone", shadowed)
}

func anyContains(text string, pats []string) bool {
	text = normalizePattern(text)
	for _, p := range pats {
		if strings.Contains(" "+text+" ", normalizePattern(p)) {
			return true
		}
	}
	return false
}

func TestMatcherAgainstNaive(t *testing.T) {
	texts := []string{
		"550 5.1.1 <a@b>: Recipient address rejected: User unknown in virtual mailbox table",
		"554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
		"421-4.7.0 [192.0.2.1 15] Our system has detected an unusual rate of\r\n421-4.7.0 unsolicited mail originating from your IP address.",
		"", "x", "   ", "ÄÖÜ unicode \u2019 stuff \x00 nul",
	}
	for _, text := range texts {
		var got matchSet
		compiledTable().m.scan(text, &got)
		norm := " " + normalizePattern(text) + " "
		for id, p := range compiledTable().m.patterns {
			want := strings.Contains(norm, p)
			if got.has(int32(id)) != want {
				t.Errorf("text %q pattern %q: automaton %v, strings.Contains %v", text, p, got.has(int32(id)), want)
			}
		}
	}
}

func FuzzClassify(f *testing.F) {
	for _, s := range []string{
		"smtp; 550 5.1.1 <a@b>: Recipient address rejected: User unknown",
		"550-5.7.26 This mail is unauthenticated. 550-5.7.26 Gmail requires",
		"host mx[192.0.2.1] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command)",
		"(#4.4.1)", "5.", "550-", "5.1.", "\u2019", "\xe2\x80", "250 2.0.0 ok",
	} {
		f.Add(s, 0, "")
	}
	f.Add("blocked", 554, "5.7.1")
	f.Add("zzz", 452, "4.2.2")
	f.Fuzz(func(t *testing.T, text string, code int, status string) {
		r := Classify(Input{Text: text, ReplyCode: code, Status: status})
		if r.Reason == "" || r.Category != CategoryOf(r.Reason) {
			t.Fatalf("reason %q category %q", r.Reason, r.Category)
		}
		if _, ok := reasonCategory[r.Reason]; !ok {
			t.Fatalf("reason %q not in the vocabulary", r.Reason)
		}
		if r.Matched != (r.Rule != "") {
			t.Fatalf("Matched %v rule %q", r.Matched, r.Rule)
		}
		c, st, rest := ParseReply(text)
		if c != 0 && (c < 200 || c > 559) {
			t.Fatalf("code %d", c)
		}
		if st != "" && StatusReason(st) == "" && !strings.Contains(st, ".0.") && !strings.HasPrefix(st, "2.") {
			// Only class 2/4/5 statuses are returned; subject 0 and 5 may map to nothing.
			if st[0] != '4' && st[0] != '5' {
				t.Fatalf("status %q", st)
			}
		}
		if utf8.ValidString(text) && !utf8.ValidString(rest) {
			t.Fatalf("ParseReply broke UTF-8: %q -> %q", text, rest)
		}
		fc, fs := FindCodes(text)
		if fc != 0 && (fc < 200 || fc > 559) || fs != "" && !strings.Contains(text, fs) {
			t.Fatalf("FindCodes(%q) = %d %q", text, fc, fs)
		}
	})
}

var benchTexts = []string{
	"host mx.example.com[192.0.2.1] said: 550 5.1.1 <ann@example.com>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)",
	"host gmail-smtp-in.l.google.com[142.250.1.26] said: 550-5.7.26 This mail has been blocked because the sender is unauthenticated. 550-5.7.26 Gmail requires all senders to authenticate with either SPF or DKIM. 550-5.7.26  550-5.7.26  Authentication results: 550-5.7.26  DKIM = did not pass 550-5.7.26  SPF [example.com] with ip: [192.0.2.4] = did not pass 550-5.7.26  550-5.7.26  For instructions on setting up authentication, go to 550 5.7.26  https://support.google.com/mail/answer/81126#authentication x1-20020a.123 - gsmtp (in reply to end of DATA command)",
	"host mx1.example.net[192.0.2.9] refused to talk to me: 554 5.7.1 Service unavailable; Client host [192.0.2.4] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.4",
	"host mta7.am0.yahoodns.net[67.195.204.77] said: 421 4.7.0 [TSS04] Messages from 192.0.2.4 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes (in reply to MAIL FROM command)",
	"connect to mx.example.org[192.0.2.7]:25: Connection timed out",
	"zzz nothing a rule knows about in this text at all",
}

// BenchmarkClassify measures one classification over a mix of typical log
// texts (reported per text; bytes/s over the text lengths).
func BenchmarkClassify(b *testing.B) {
	n := 0
	for _, s := range benchTexts {
		n += len(s)
	}
	b.SetBytes(int64(n / len(benchTexts)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = Classify(Input{Text: benchTexts[i%len(benchTexts)]})
	}
}

func BenchmarkParseReply(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_, _, _ = ParseReply(benchTexts[i%len(benchTexts)])
	}
}

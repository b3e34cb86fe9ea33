package mailhdr

import (
	"reflect"
	"testing"
	"time"
)

func TestParseAuthResults(t *testing.T) {
	cases := []struct {
		name, in  string
		servID    string
		want      map[string]string // method -> result
		dkimD     string
		dmarcPol  string
		compauthR string
	}{
		{
			name:     "gmail",
			in:       "mx.google.com;\r\n       dkim=pass header.i=@sender.test header.s=probe header.b=AbCd;\r\n       spf=pass (google.com: domain of probe@sender.test designates 192.0.2.10 as permitted sender) smtp.mailfrom=probe@sender.test;\r\n       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=sender.test; arc=pass (i=1)",
			servID:   "mx.google.com",
			want:     map[string]string{"dkim": "pass", "spf": "pass", "dmarc": "pass", "arc": "pass"},
			dkimD:    "sender.test",
			dmarcPol: "none",
		},
		{
			name:      "microsoft, no authserv-id",
			in:        "spf=pass (sender IP is 192.0.2.10) smtp.mailfrom=sender.test; dkim=pass (signature was verified) header.d=sender.test;dmarc=pass action=none header.from=sender.test;compauth=pass reason=100",
			want:      map[string]string{"spf": "pass", "dkim": "pass", "dmarc": "pass", "compauth": "pass"},
			dkimD:     "sender.test",
			dmarcPol:  "none",
			compauthR: "100",
		},
		{
			name:     "yahoo with policy.dmarc and versioned dkim",
			in:       "atlas-production.v2.mail.yahoo.com 1; dkim/1=pass header.i=@sender.test header.s=probe; spf=softfail smtp.mailfrom=sender.test; dmarc=fail(p=REJECT) header.from=sender.test;",
			servID:   "atlas-production.v2.mail.yahoo.com",
			want:     map[string]string{"dkim": "pass", "spf": "softfail", "dmarc": "fail"},
			dkimD:    "sender.test",
			dmarcPol: "reject",
		},
		{name: "none", in: "mx.example.org; none", servID: "mx.example.org", want: map[string]string{}},
		{name: "spaces around equals and quotes", in: `mx.test; spf = neutral smtp.mailfrom = "a;b@x.test"`, servID: "mx.test", want: map[string]string{"spf": "neutral"}},
		{name: "garbage", in: ";;(((=;==", want: map[string]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ar := ParseAuthResults(tc.in)
			if ar.AuthServID != tc.servID {
				t.Errorf("authserv-id %q, want %q", ar.AuthServID, tc.servID)
			}
			got := map[string]string{}
			for _, m := range ar.Methods {
				if _, dup := got[m.Name]; !dup {
					got[m.Name] = m.Result
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("methods %v, want %v", got, tc.want)
			}
			if d, ok := ar.First("dkim"); ok && d.DKIMDomain() != tc.dkimD {
				t.Errorf("dkim domain %q, want %q", d.DKIMDomain(), tc.dkimD)
			}
			if d, ok := ar.First("dmarc"); ok && d.DMARCPolicy() != tc.dmarcPol {
				t.Errorf("dmarc policy %q, want %q", d.DMARCPolicy(), tc.dmarcPol)
			}
			if c, ok := ar.First("compauth"); ok && c.Prop("reason") != tc.compauthR {
				t.Errorf("compauth reason %q", c.Prop("reason"))
			}
		})
	}
	if m, _ := ParseAuthResults(`mx.test; spf = neutral smtp.mailfrom = "a;b@x.test"`).First("spf"); m.Prop("smtp.mailfrom") != "a;b@x.test" {
		t.Errorf("quoted value: %q", m.Prop("smtp.mailfrom"))
	}
}

func TestParseHeader(t *testing.T) {
	msg := "Received: from a.test by b.test;\r\n\tMon, 2 Jun 2025 10:00:05 +0000\r\n" +
		"not a header line\r\n" +
		"Received: from c.test by a.test; Mon, 2 Jun 2025 10:00:01 +0000 (UTC)\r\n" +
		"Message-ID: <abc@sender.test>\r\n" +
		"X-Mailmon-Track: v=1; k=x;\r\n c=y\r\n" +
		"\r\nBody: not a header\r\n"
	h := Parse([]byte(msg))
	if h.ReceivedHops() != 2 {
		t.Fatalf("hops %d", h.ReceivedHops())
	}
	if h.MessageID() != "abc@sender.test" {
		t.Errorf("message id %q", h.MessageID())
	}
	if h.Get("x-mailmon-track") != "v=1; k=x; c=y" {
		t.Errorf("unfolded %q", h.Get("x-mailmon-track"))
	}
	if h.Get("Body") != "" {
		t.Error("read into the body")
	}
	top, ok := ReceivedTime(h.Values("Received")[0])
	if !ok || !top.Equal(time.Date(2025, 6, 2, 10, 0, 5, 0, time.UTC)) {
		t.Errorf("top received %v %v", top, ok)
	}
	if second, ok := ReceivedTime(h.Values("Received")[1]); !ok || second.Second() != 1 {
		t.Errorf("zone comment: %v %v", second, ok)
	}
	if _, ok := ReceivedTime("from x by y"); ok {
		t.Error("a Received without a date parsed")
	}
}

func FuzzParseAuthResults(f *testing.F) {
	for _, s := range []string{
		"mx.google.com; dkim=pass header.i=@a.test; spf=pass (x) smtp.mailfrom=a.test",
		"spf=pass (sender IP is 1.2.3.4) smtp.mailfrom=a.test;compauth=pass reason=100",
		`x; a="b\"c"; (((`, "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ar := ParseAuthResults(s)
		for _, m := range ar.Methods {
			_ = m.DKIMDomain()
			_ = m.DMARCPolicy()
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("A: b\r\n c\r\nReceived: x; Mon, 2 Jun 2025 10:00:05 +0000\r\n\r\nbody"))
	f.Add([]byte(":\r\n\t\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h := Parse(b)
		for _, v := range h.Values("Received") {
			ReceivedTime(v)
		}
		_ = h.MessageID()
	})
}

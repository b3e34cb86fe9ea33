package postfixlog

import (
	"strings"
	"testing"

	"github.com/mailmon/mailmon/services/internal/lineartest"
)

const syslogHead = "Mar 10 09:00:00 mx1 postfix/smtp[4711]: 3F1A22C0A1: "

// Hostile Postfix and Exim lines of about size bytes: long replies, many
// key=value pairs, values that start like an address and never end.
var lineCases = []struct {
	name string
	line func(size int) string
}{
	{"delivery with a long reply", func(n int) string {
		return string(lineartest.Repeat(syslogHead+"to=<a@example.org>, relay=mx.example.org[192.0.2.7]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=5.7.1, status=bounced (host mx.example.org[192.0.2.7] said: 550 5.7.1 ",
			"blocked using zen.spamhaus.org; ", "(in reply to RCPT TO command))", n))
	}},
	{"delivery with many key=value pairs", func(n int) string {
		return string(lineartest.Repeat(syslogHead+"to=<a@example.org>, ", "conn_use=1, ", "status=sent (250 ok)", n))
	}},
	{"delivery with unterminated addresses", func(n int) string {
		return string(lineartest.Repeat(syslogHead+"to=<a>", "x=<a>y", "", n))
	}},
	{"qmgr with unterminated addresses", func(n int) string {
		return string(lineartest.Repeat("Mar 10 09:00:00 mx1 postfix/qmgr[1]: 3F1A22C0A1: from=<a>", "x=<a>y", "", n))
	}},
	{"client with unterminated addresses", func(n int) string {
		return string(lineartest.Repeat("Mar 10 09:00:00 mx1 postfix/smtpd[1]: 3F1A22C0A1: client=<a>", "x=<a>y", "", n))
	}},
	{"reject with many key=value pairs", func(n int) string {
		return string(lineartest.Repeat("Mar 10 09:00:00 mx1 postfix/smtpd[1]: NOQUEUE: reject: RCPT from h[192.0.2.1]: 554 5.7.1 <r@example.org>: Relay access denied;",
			" from=<s@example.com> to=<r@example.org>", " proto=ESMTP helo=<h>", n))
	}},
	{"reject with angle brackets", func(n int) string {
		return string(lineartest.Repeat("Mar 10 09:00:00 mx1 postfix/smtpd[1]: NOQUEUE: reject: RCPT from h[192.0.2.1]: 554 5.7.1 denied; from=<",
			"a>b", ">", n))
	}},
	{"header warning", func(n int) string {
		return string(lineartest.Repeat("Mar 10 09:00:00 mx1 postfix/cleanup[1]: 3F1A22C0A1: warning: header X-Mailmon-Track: ",
			"v=1; ", " from h[192.0.2.1]; from=<s@example.com> to=<r@example.org> proto=ESMTP helo=<h>", n))
	}},
	{"remote reply", func(n int) string {
		return string(lineartest.Repeat("Mar 10 09:00:00 mx1 postfix/smtp[1]: 3F1A22C0A1: host mx.example.org[192.0.2.7] said: 451 ",
			"try again later ", "(in reply to end of DATA command)", n))
	}},
	{"exim delivery failure", func(n int) string {
		return string(lineartest.Repeat("2024-01-02 03:04:06 1rABCD-000123-AB ** r3@example.net R=dnslookup T=remote_smtp H=mx.example.net ",
			"(helo) ", "[192.0.2.8]: SMTP error from remote mail server after RCPT TO:<r3@example.net>: 550 5.1.1 unknown", n))
	}},
	{"exim quoted fields", func(n int) string {
		return string(lineartest.Repeat("2024-01-02 03:04:06 1rABCD-000123-AB => r@example.org R=dnslookup T=remote_smtp ",
			"C=\"250 \\\" ok\" ", "H=mx [192.0.2.7]", n))
	}},
	{"no structure", func(n int) string {
		return string(lineartest.Repeat(syslogHead, "=<>, :(", "", n))
	}},
}

// TestParseLinear feeds ~100 KB and ~1 MB lines of each hostile shape to
// the parser and the joiner and fails when the larger takes more than 15
// times as long.
func TestParseLinear(t *testing.T) {
	for _, lc := range lineCases {
		t.Run(lc.name, func(t *testing.T) {
			lineartest.Run(t, lineartest.Case{
				Name:  lc.name,
				Build: func(size int) []byte { return []byte(lc.line(size)) },
				Parse: func(raw []byte) error {
					p := &Parser{Ref: ref}
					j := NewJoiner(JoinerConfig{})
					var l Line
					if p.Parse(lineartest.String(raw), 1, &l) {
						j.Add(&l)
					}
					return nil
				},
			})
		})
	}
}

// TestJoinLinear feeds ~100 KB and ~1 MB of many short lines of one
// message (its context lines, then a delivery per recipient): the joiner's
// work per line must not grow with the lines before it.
func TestJoinLinear(t *testing.T) {
	lineartest.Run(t, lineartest.Case{
		Name: "one message with many recipients",
		Build: func(size int) []byte {
			return lineartest.Repeat("Mar 10 09:00:00 mx1 postfix/smtpd[1]: 3F1A22C0A1: client=h[192.0.2.1]\n"+
				"Mar 10 09:00:00 mx1 postfix/qmgr[1]: 3F1A22C0A1: from=<s@example.com>, size=10, nrcpt=100000 (queue active)\n",
				syslogHead+"to=<r@example.org>, relay=mx[192.0.2.7]:25, delay=1, delays=0/0/0/1, dsn=4.7.1, status=deferred (host mx[192.0.2.7] said: 451 4.7.1 later)\n",
				"", size)
		},
		Parse: func(raw []byte) error {
			p := &Parser{Ref: ref}
			j := NewJoiner(JoinerConfig{})
			var l Line
			for i, s := range strings.Split(lineartest.String(raw), "\n") {
				if p.Parse(s, int64(i), &l) {
					j.Add(&l)
				}
			}
			return nil
		},
	})
}

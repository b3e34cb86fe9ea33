package postfixlog

import (
	"testing"
	"time"
)

var ref = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

func mustParse(t *testing.T, line string) Line {
	t.Helper()
	p := &Parser{Ref: ref}
	var l Line
	if !p.Parse(line, 7, &l) {
		t.Fatalf("not parsed: %q", line)
	}
	if l.Pos != 7 {
		t.Fatalf("Pos = %d", l.Pos)
	}
	return l
}

func TestTimestamps(t *testing.T) {
	plus1 := time.FixedZone("", 3600)
	minus5 := time.FixedZone("", -5*3600)
	cases := []struct {
		name, line string
		ref        time.Time
		loc        *time.Location
		want       time.Time
		raw        string
	}{
		{name: "3164 padded day", line: "Mar  2 03:04:05 mx1 postfix/qmgr[12]: 4B2A1C3D9E: removed",
			ref: ref, want: time.Date(2025, 3, 2, 3, 4, 5, 0, time.UTC), raw: "Mar  2 03:04:05"},
		{name: "3164 two-digit day", line: "Feb 28 23:59:59 mx1 postfix/qmgr[12]: 4B2A1C3D9E: removed",
			ref: ref, want: time.Date(2025, 2, 28, 23, 59, 59, 0, time.UTC), raw: "Feb 28 23:59:59"},
		{name: "3164 unpadded day", line: "Mar 7 07:14:19 mx1 postfix/qmgr[12]: 4B2A1C3D9E: removed",
			ref: ref, want: time.Date(2025, 3, 7, 7, 14, 19, 0, time.UTC), raw: "Mar 7 07:14:19"},
		{name: "3164 december read in january is last year", line: "Dec 31 23:00:00 mx1 postfix/qmgr[12]: 4B2A1C3D9E: removed",
			ref: time.Date(2025, 1, 1, 0, 5, 0, 0, time.UTC), want: time.Date(2024, 12, 31, 23, 0, 0, 0, time.UTC)},
		{name: "3164 a little after ref is this year", line: "Jan  2 00:00:00 mx1 postfix/qmgr[12]: 4B2A1C3D9E: removed",
			ref: time.Date(2025, 1, 1, 0, 5, 0, 0, time.UTC), want: time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)},
		{name: "3164 a week after ref is last year", line: "Jan  8 00:00:00 mx1 postfix/qmgr[12]: 4B2A1C3D9E: removed",
			ref: time.Date(2025, 1, 1, 0, 5, 0, 0, time.UTC), want: time.Date(2024, 1, 8, 0, 0, 0, 0, time.UTC)},
		{name: "3164 far after ref is last year", line: "Nov  3 00:00:00 mx1 postfix/qmgr[12]: 4B2A1C3D9E: removed",
			ref: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), want: time.Date(2024, 11, 3, 0, 0, 0, 0, time.UTC)},
		{name: "3164 in a zone", line: "Jul  4 10:00:00 mx1 postfix/qmgr[12]: 4B2A1C3D9E: removed",
			ref: ref, loc: minus5, want: time.Date(2024, 7, 4, 15, 0, 0, 0, time.UTC)},
		{name: "3164 fraction", line: "Mar  2 03:04:05.250 mx1 postfix/qmgr[12]: 4B2A1C3D9E: removed",
			ref: ref, want: time.Date(2025, 3, 2, 3, 4, 5, 250e6, time.UTC), raw: "Mar  2 03:04:05.250"},
		{name: "iso offset with colon", line: "2025-03-09T21:15:02.417233+01:00 mx1 postfix/qmgr[12]: 4B2A1C3D9E: removed",
			ref: ref, want: time.Date(2025, 3, 9, 21, 15, 2, 417233000, plus1), raw: "2025-03-09T21:15:02.417233+01:00"},
		{name: "iso offset without colon", line: "2025-03-09T21:15:02+0100 mx1 postfix/qmgr[12]: 4B2A1C3D9E: removed",
			ref: ref, want: time.Date(2025, 3, 9, 20, 15, 2, 0, time.UTC), raw: "2025-03-09T21:15:02+0100"},
		{name: "iso zulu", line: "2025-03-09T21:15:02Z mx1 postfix/qmgr[12]: 4B2A1C3D9E: removed",
			ref: ref, want: time.Date(2025, 3, 9, 21, 15, 2, 0, time.UTC), raw: "2025-03-09T21:15:02Z"},
		{name: "iso no zone", line: "2025-03-09T21:15:02 mx1 postfix/qmgr[12]: 4B2A1C3D9E: removed",
			ref: ref, loc: minus5, want: time.Date(2025, 3, 10, 2, 15, 2, 0, time.UTC), raw: "2025-03-09T21:15:02"},
		{name: "rfc 5424", line: "<22>1 2025-03-09T21:15:02.5-05:00 mx1 postfix/qmgr 12 - - 4B2A1C3D9E: removed",
			ref: ref, want: time.Date(2025, 3, 10, 2, 15, 2, 500e6, time.UTC), raw: "2025-03-09T21:15:02.5-05:00"},
		{name: "rfc 3164 with pri", line: "<22>Mar  2 03:04:05 mx1 postfix/qmgr[12]: 4B2A1C3D9E: removed",
			ref: ref, want: time.Date(2025, 3, 2, 3, 4, 5, 0, time.UTC)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &Parser{Ref: c.ref, Location: c.loc}
			var l Line
			if !p.Parse(c.line, 0, &l) {
				t.Fatalf("not parsed")
			}
			if !l.Time.Equal(c.want) {
				t.Errorf("Time = %v, want %v", l.Time, c.want)
			}
			if c.raw != "" && l.RawTime != c.raw {
				t.Errorf("RawTime = %q, want %q", l.RawTime, c.raw)
			}
			if l.Kind != KindRemoved || l.QueueID != "4B2A1C3D9E" || l.Host != "mx1" || l.PID != 12 || l.Service != "qmgr" {
				t.Errorf("line = %+v", l)
			}
		})
	}
}

func TestZeroRefLeavesYearZero(t *testing.T) {
	var p Parser
	var l Line
	if !p.Parse("Mar  2 03:04:05 mx1 postfix/qmgr[12]: 4B2A1C3D9E: removed", 0, &l) {
		t.Fatal("not parsed")
	}
	if l.Time.Year() != 0 || l.Time.Month() != 3 || l.Time.Day() != 2 {
		t.Errorf("Time = %v", l.Time)
	}
}

func TestTags(t *testing.T) {
	cases := []struct {
		tag, instance, service string
		pid                    int
	}{
		{tag: "postfix/smtp[4711]", instance: "postfix", service: "smtp", pid: 4711},
		{tag: "postfix-10.1.2.3/smtp[4711]", instance: "postfix-10.1.2.3", service: "smtp", pid: 4711},
		{tag: "postfix/submission/smtpd[9]", instance: "postfix", service: "smtpd", pid: 9},
		{tag: "postfix-out/amavis/smtp[9]", instance: "postfix-out", service: "smtp", pid: 9},
		{tag: "postfix/smtp", instance: "postfix", service: "smtp", pid: -1},
	}
	for _, c := range cases {
		l := mustParse(t, "Mar  2 03:04:05 mx1 "+c.tag+": 4B2A1C3D9E: removed")
		if l.Instance != c.instance || l.Service != c.service || l.PID != c.pid || l.Kind != KindRemoved {
			t.Errorf("%s: instance %q service %q pid %d kind %v", c.tag, l.Instance, l.Service, l.PID, l.Kind)
		}
	}
}

func TestQueueIDs(t *testing.T) {
	cases := []struct{ msg, qid string }{
		{msg: "4B2A1C3D9E: removed", qid: "4B2A1C3D9E"},
		{msg: "7D1E0C: removed", qid: "7D1E0C"},
		{msg: "3Kx9GqN7wbz1pQv: removed", qid: "3Kx9GqN7wbz1pQv"},
		{msg: "NOQUEUE: reject: RCPT from a.example[192.0.2.1]: 554 5.7.1 no; from=<> to=<b@example.org> proto=ESMTP helo=<a>", qid: ""},
		{msg: "warning: something odd", qid: ""},
		{msg: "statistics: max connection rate 1/60s for (smtp:192.0.2.1) at Mar  2 03:04:05", qid: ""},
		{msg: "connect from a.example[192.0.2.1]", qid: ""},
	}
	for _, c := range cases {
		l := mustParse(t, "Mar  2 03:04:05 mx1 postfix/qmgr[1]: "+c.msg)
		if l.QueueID != c.qid {
			t.Errorf("%q: QueueID %q, want %q", c.msg, l.QueueID, c.qid)
		}
	}
}

func TestDeliveryLines(t *testing.T) {
	type want struct {
		service, to, origTo, relay, host, ip, path string
		port, connUse                              int
		delay                                      float64
		delays                                     [4]float64
		dsn, status, reply, tls                    string
		truncated                                  bool
	}
	none := [4]float64{-1, -1, -1, -1}
	cases := []struct {
		name, line string
		w          want
	}{
		{name: "smtp sent", line: "Mar  2 03:04:05 mx1 postfix/smtp[31]: 9C0FFEE1: to=<ann@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=1.4, delays=0.11/0.02/0.6/0.67, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 44AB)",
			w: want{service: "smtp", to: "ann@example.org", relay: "mx.example.org[198.51.100.7]:25", host: "mx.example.org", ip: "198.51.100.7", port: 25, connUse: -1, delay: 1.4, delays: [4]float64{0.11, 0.02, 0.6, 0.67}, dsn: "2.0.0", status: "sent", reply: "250 2.0.0 Ok: queued as 44AB"}},
		{name: "smtp deferred with nested parens, conn_use, ipv6", line: "Mar  2 03:04:05 mx1 postfix-out/smtp[31]: 9C0FFEE1: to=<bob@example.net>, orig_to=<robert@example.com>, relay=mx2.example.net[2001:db8::25]:2525, conn_use=3, delay=300, delays=290/0.01/5/5, dsn=4.7.0, status=deferred (host mx2.example.net[2001:db8::25] said: 421 4.7.0 Try again later (rate limited) (in reply to end of DATA command))",
			w: want{service: "smtp", to: "bob@example.net", origTo: "robert@example.com", relay: "mx2.example.net[2001:db8::25]:2525", host: "mx2.example.net", ip: "2001:db8::25", port: 2525, connUse: 3, delay: 300, delays: [4]float64{290, 0.01, 5, 5}, dsn: "4.7.0", status: "deferred", reply: "host mx2.example.net[2001:db8::25] said: 421 4.7.0 Try again later (rate limited) (in reply to end of DATA command)"}},
		{name: "smtp bounced relay none", line: "Mar  2 03:04:05 mx1 postfix/smtp[31]: 9C0FFEE1: to=<x@nowhere.invalid>, relay=none, delay=0.2, delays=0.1/0/0.1/0, dsn=5.4.4, status=bounced (Host or domain name not found. Name service error for name=nowhere.invalid type=A: Host not found)",
			w: want{service: "smtp", to: "x@nowhere.invalid", relay: "none", host: "none", connUse: -1, delay: 0.2, delays: [4]float64{0.1, 0, 0.1, 0}, dsn: "5.4.4", status: "bounced", reply: "Host or domain name not found. Name service error for name=nowhere.invalid type=A: Host not found"}},
		{name: "lmtp over a unix socket", line: "Mar  2 03:04:05 mx1 postfix/lmtp[31]: 9C0FFEE1: to=<carl@example.com>, relay=store1.example.com[private/dovecot-lmtp], delay=0.05, delays=0.01/0/0.01/0.03, dsn=2.0.0, status=sent (250 2.0.0 <carl@example.com> Kx2 Saved)",
			w: want{service: "lmtp", to: "carl@example.com", relay: "store1.example.com[private/dovecot-lmtp]", host: "store1.example.com", path: "private/dovecot-lmtp", connUse: -1, delay: 0.05, delays: [4]float64{0.01, 0, 0.01, 0.03}, dsn: "2.0.0", status: "sent", reply: "250 2.0.0 <carl@example.com> Kx2 Saved"}},
		{name: "local", line: "Mar  2 03:04:05 mx1 postfix/local[31]: 9C0FFEE1: to=<dora@mx1.example.com>, orig_to=<postmaster>, relay=local, delay=0.03, delays=0.02/0/0/0.01, dsn=2.0.0, status=sent (delivered to mailbox)",
			w: want{service: "local", to: "dora@mx1.example.com", origTo: "postmaster", relay: "local", host: "local", connUse: -1, delay: 0.03, delays: [4]float64{0.02, 0, 0, 0.01}, dsn: "2.0.0", status: "sent", reply: "delivered to mailbox"}},
		{name: "old local without brackets", line: "Mar  2 03:04:05 mx1 postfix/local[31]: 9C0FFEE1: to=dora@mx1.example.com, orig_to=root@localhost, relay=local, delay=0.03, status=sent (delivered to command: /usr/bin/procmail)",
			w: want{service: "local", to: "dora@mx1.example.com", origTo: "root@localhost", relay: "local", host: "local", connUse: -1, delay: 0.03, delays: none, status: "sent", reply: "delivered to command: /usr/bin/procmail"}},
		{name: "virtual", line: "Mar  2 03:04:05 mx1 postfix/virtual[31]: 9C0FFEE1: to=<eve@example.com>, relay=virtual, delay=0.1, delays=0.09/0/0/0.01, dsn=2.0.0, status=sent (delivered to maildir)",
			w: want{service: "virtual", to: "eve@example.com", relay: "virtual", host: "virtual", connUse: -1, delay: 0.1, delays: [4]float64{0.09, 0, 0, 0.01}, dsn: "2.0.0", status: "sent", reply: "delivered to maildir"}},
		{name: "pipe", line: "Mar  2 03:04:05 mx1 postfix/pipe[31]: 9C0FFEE1: to=<fay@example.com>, relay=dovecot, delay=0.3, delays=0.1/0/0/0.2, dsn=5.1.1, status=bounced (user unknown)",
			w: want{service: "pipe", to: "fay@example.com", relay: "dovecot", host: "dovecot", connUse: -1, delay: 0.3, delays: [4]float64{0.1, 0, 0, 0.2}, dsn: "5.1.1", status: "bounced", reply: "user unknown"}},
		{name: "error", line: "Mar  2 03:04:05 mx1 postfix/error[31]: 9C0FFEE1: to=<gus@example.net>, relay=none, delay=9000, delays=8999/1/0/0, dsn=4.4.1, status=deferred (delivery temporarily suspended: connect to mx.example.net[203.0.113.4]:25: Connection timed out)",
			w: want{service: "error", to: "gus@example.net", relay: "none", host: "none", connUse: -1, delay: 9000, delays: [4]float64{8999, 1, 0, 0}, dsn: "4.4.1", status: "deferred", reply: "delivery temporarily suspended: connect to mx.example.net[203.0.113.4]:25: Connection timed out"}},
		{name: "retry", line: "Mar  2 03:04:05 mx1 postfix/retry[31]: 9C0FFEE1: to=<hal@example.net>, relay=none, delay=60, delays=60/0/0/0, dsn=4.3.0, status=deferred (mail transport unavailable)",
			w: want{service: "retry", to: "hal@example.net", relay: "none", host: "none", connUse: -1, delay: 60, delays: [4]float64{60, 0, 0, 0}, dsn: "4.3.0", status: "deferred", reply: "mail transport unavailable"}},
		{name: "discard", line: "Mar  2 03:04:05 mx1 postfix/discard[31]: 9C0FFEE1: to=<ida@sink.example>, relay=none, delay=0.01, delays=0.01/0/0/0, dsn=2.0.0, status=sent (sink.example)",
			w: want{service: "discard", to: "ida@sink.example", relay: "none", host: "none", connUse: -1, delay: 0.01, delays: [4]float64{0.01, 0, 0, 0}, dsn: "2.0.0", status: "sent", reply: "sink.example"}},
		{name: "tls feature note", line: "Mar  2 03:04:05 mx1 postfix/smtp[31]: 9C0FFEE1: to=<jo@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=1, delays=0.1/0/0.4/0.5, tls=dane/requiretls, dsn=2.0.0, status=sent (250 ok)",
			w: want{service: "smtp", to: "jo@example.org", relay: "mx.example.org[198.51.100.7]:25", host: "mx.example.org", ip: "198.51.100.7", port: 25, connUse: -1, delay: 1, delays: [4]float64{0.1, 0, 0.4, 0.5}, dsn: "2.0.0", status: "sent", reply: "250 ok", tls: "dane/requiretls"}},
		{name: "cut off by syslog", line: "Mar  2 03:04:05 mx1 postfix/smtp[31]: 9C0FFEE1: to=<kim@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=5.7.1, status=bounced (host mx.example.org[198.51.100.7] said: 550 5.7.1 Message rejected because",
			w: want{service: "smtp", to: "kim@example.org", relay: "mx.example.org[198.51.100.7]:25", host: "mx.example.org", ip: "198.51.100.7", port: 25, connUse: -1, delay: 1, delays: [4]float64{0.1, 0, 0.4, 0.5}, dsn: "5.7.1", status: "bounced", reply: "host mx.example.org[198.51.100.7] said: 550 5.7.1 Message rejected because", truncated: true}},
		{name: "address with comma in quotes", line: "Mar  2 03:04:05 mx1 postfix/smtp[31]: 9C0FFEE1: to=<\"lee, jr\"@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)",
			w: want{service: "smtp", to: "\"lee, jr\"@example.org", relay: "mx.example.org[198.51.100.7]:25", host: "mx.example.org", ip: "198.51.100.7", port: 25, connUse: -1, delay: 1, delays: [4]float64{0.1, 0, 0.4, 0.5}, dsn: "2.0.0", status: "sent", reply: "250 ok"}},
		{name: "address verification probe", line: "Mar  2 03:04:05 mx1 postfix/smtp[31]: 9C0FFEE1: to=<max@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.1.5, status=deliverable (250 2.1.5 Ok)",
			w: want{service: "smtp", to: "max@example.org", relay: "mx.example.org[198.51.100.7]:25", host: "mx.example.org", ip: "198.51.100.7", port: 25, connUse: -1, delay: 1, delays: [4]float64{0.1, 0, 0.4, 0.5}, dsn: "2.1.5", status: "deliverable", reply: "250 2.1.5 Ok"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := mustParse(t, c.line)
			got := want{
				service: l.Service, to: l.To, origTo: l.OrigTo, relay: l.Relay,
				host: l.RelayHost, ip: l.RelayIP, path: l.RelayPath, port: l.RelayPort,
				connUse: l.ConnUse, delay: l.Delay, delays: l.Delays, dsn: l.DSN,
				status: l.Status, reply: l.Reply, tls: l.TLS, truncated: l.Truncated,
			}
			if l.Kind != KindDelivery || l.QueueID != "9C0FFEE1" || l.MTA != "postfix" {
				t.Errorf("kind %v qid %q mta %q", l.Kind, l.QueueID, l.MTA)
			}
			if got != c.w {
				t.Errorf("got  %+v\nwant %+v", got, c.w)
			}
		})
	}
}

func TestQueueLifecycleLines(t *testing.T) {
	pre := "Mar  2 03:04:05 mx1 "
	l := mustParse(t, pre+"postfix/submission/smtpd[20]: 5EED0A1B2: client=app7.example.com[192.0.2.44]:40112, sasl_method=PLAIN, sasl_username=newsletter@example.com")
	if l.Kind != KindClient || l.ClientHost != "app7.example.com" || l.ClientIP != "192.0.2.44" || l.ClientPort != 40112 || l.SASLMethod != "PLAIN" || l.SASLUsername != "newsletter@example.com" {
		t.Errorf("client: %+v", l)
	}
	l = mustParse(t, pre+"postfix/smtpd[20]: 5EED0A1B2: client=localhost[127.0.0.1], orig_queue_id=4B2A1C3D9E, orig_client=app7.example.com[192.0.2.44]")
	if l.Kind != KindClient || l.OrigQueueID != "4B2A1C3D9E" || l.OrigClient != "app7.example.com[192.0.2.44]" || l.ClientIP != "127.0.0.1" {
		t.Errorf("xforward client: %+v", l)
	}
	l = mustParse(t, pre+"postfix/pickup[21]: 5EED0A1B2: uid=1001 from=<cron@mx1.example.com>")
	if l.Kind != KindPickup || l.UID != 1001 || l.From != "cron@mx1.example.com" || !l.FromSet {
		t.Errorf("pickup: %+v", l)
	}
	for msg, want := range map[string]string{
		"message-id=<20250302.abc@app7.example.com>": "20250302.abc@app7.example.com",
		"message-id=<>":                     "",
		"message-id=bare-id@example.com":    "bare-id@example.com",
		"message-id=<a b c@broken.example>": "a b c@broken.example",
	} {
		l = mustParse(t, pre+"postfix/cleanup[22]: 5EED0A1B2: "+msg)
		if l.Kind != KindMessageID || l.MessageID != want {
			t.Errorf("%s: kind %v id %q", msg, l.Kind, l.MessageID)
		}
	}
	l = mustParse(t, pre+"postfix/qmgr[23]: 5EED0A1B2: from=<bounces+77@example.com>, size=48213, nrcpt=3 (queue active)")
	if l.Kind != KindQueued || l.From != "bounces+77@example.com" || l.Size != 48213 || l.Nrcpt != 3 {
		t.Errorf("queued: %+v", l)
	}
	l = mustParse(t, pre+"postfix/qmgr[23]: 5EED0A1B2: from=<>, size=2001, nrcpt=1 (queue active)")
	if l.Kind != KindQueued || l.From != "" || !l.FromSet || l.Size != 2001 || l.Nrcpt != 1 {
		t.Errorf("null sender queued: %+v", l)
	}
	l = mustParse(t, pre+"postfix/qmgr[23]: 5EED0A1B2: from=<bounces+77@example.com>, status=expired, returned to sender")
	if l.Kind != KindExpired || l.Status != "expired" || l.From != "bounces+77@example.com" || l.Reply != "returned to sender" {
		t.Errorf("expired: %+v", l)
	}
	l = mustParse(t, pre+"postfix/qmgr[23]: 5EED0A1B2: removed")
	if l.Kind != KindRemoved {
		t.Errorf("removed: %+v", l)
	}
}

func TestHeaderLines(t *testing.T) {
	pre := "Mar  2 03:04:05 mx1 postfix/cleanup[22]: 5EED0A1B2: "
	l := mustParse(t, pre+"warning: header X-Mailmon-Track: v=1; k=k1; c=shop%20one; s=192.0.2.10; m=ord-991; t=1740884645; h=AbC_dEf-123 from app7.example.com[192.0.2.44]; from=<news@example.com> to=<ann@example.org> proto=ESMTP helo=<app7.example.com>: tracked")
	if l.Kind != KindHeader || l.HeaderAction != "warning" || l.HeaderName != "X-Mailmon-Track" ||
		l.HeaderValue != "v=1; k=k1; c=shop%20one; s=192.0.2.10; m=ord-991; t=1740884645; h=AbC_dEf-123" ||
		l.ClientHost != "app7.example.com" || l.ClientIP != "192.0.2.44" || l.From != "news@example.com" ||
		l.To != "ann@example.org" || l.Proto != "ESMTP" || l.Helo != "app7.example.com" {
		t.Errorf("header: %+v", l)
	}
	// Local submission, a value containing " from ", no text.
	l = mustParse(t, pre+"info: header Subject: Hello from the team from local; from=<cron@mx1.example.com> to=<ops@example.com>")
	if l.Kind != KindHeader || l.HeaderAction != "info" || l.HeaderName != "Subject" || l.HeaderValue != "Hello from the team" || l.ClientHost != "local" || l.From != "cron@mx1.example.com" {
		t.Errorf("local header: %+v", l)
	}
	// A header_checks REJECT is a reject.
	l = mustParse(t, pre+"reject: header Subject: Win big now from bad.example[203.0.113.9]; from=<x@bad.example> to=<ann@example.org> proto=SMTP helo=<bad.example>: 5.7.1 No lotteries")
	if l.Kind != KindReject || l.Action != "reject" || l.Stage != "header" || l.DSN != "5.7.1" || l.Reply != "5.7.1 No lotteries" || l.ClientIP != "203.0.113.9" {
		t.Errorf("header reject: %+v", l)
	}
}

func TestRejectLines(t *testing.T) {
	pre := "Mar  2 03:04:05 mx1 "
	type want struct {
		queueID, action, stage, clientHost, clientIP string
		clientPort, replyCode                        int
		dsn, reply, from, to, proto, helo            string
	}
	cases := []struct {
		line string
		w    want
	}{
		{line: pre + "postfix/smtpd[40]: NOQUEUE: reject: RCPT from spam.example[203.0.113.9]: 554 5.7.1 <ann@example.org>: Relay access denied; from=<x@spam.example> to=<ann@example.org> proto=ESMTP helo=<spam.example>",
			w: want{action: "reject", stage: "RCPT", clientHost: "spam.example", clientIP: "203.0.113.9", replyCode: 554, dsn: "5.7.1", reply: "554 5.7.1 <ann@example.org>: Relay access denied", from: "x@spam.example", to: "ann@example.org", proto: "ESMTP", helo: "spam.example"}},
		{line: pre + "postfix/postscreen[41]: NOQUEUE: reject: RCPT from [203.0.113.10]:51515: 550 5.7.1 Service unavailable; client [203.0.113.10] blocked using zen.spamhaus.org; from=<x@spam.example>, to=<ann@example.org>, proto=ESMTP, helo=<spam.example>",
			w: want{action: "reject", stage: "RCPT", clientIP: "203.0.113.10", clientPort: 51515, replyCode: 550, dsn: "5.7.1", reply: "550 5.7.1 Service unavailable; client [203.0.113.10] blocked using zen.spamhaus.org", from: "x@spam.example", to: "ann@example.org", proto: "ESMTP", helo: "spam.example"}},
		{line: pre + "postfix/smtpd[40]: 5EED0A1B2: reject: RCPT from app7.example.com[192.0.2.44]: 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in virtual mailbox table; from=<news@example.com> to=<nobody@example.com> proto=ESMTP helo=<app7.example.com>",
			w: want{queueID: "5EED0A1B2", action: "reject", stage: "RCPT", clientHost: "app7.example.com", clientIP: "192.0.2.44", replyCode: 550, dsn: "5.1.1", reply: "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in virtual mailbox table", from: "news@example.com", to: "nobody@example.com", proto: "ESMTP", helo: "app7.example.com"}},
		{line: pre + "postfix/cleanup[22]: 5EED0A1B2: milter-reject: END-OF-MESSAGE from app7.example.com[192.0.2.44]: 5.7.1 Spam message rejected; from=<news@example.com> to=<ann@example.org> proto=ESMTP helo=<app7.example.com>",
			w: want{queueID: "5EED0A1B2", action: "milter-reject", stage: "END-OF-MESSAGE", clientHost: "app7.example.com", clientIP: "192.0.2.44", dsn: "5.7.1", reply: "5.7.1 Spam message rejected", from: "news@example.com", to: "ann@example.org", proto: "ESMTP", helo: "app7.example.com"}},
		{line: pre + "postfix/smtpd[40]: NOQUEUE: reject: CONNECT from unknown[198.51.100.99]: 554 5.7.1 <unknown[198.51.100.99]>: Client host rejected: Access denied; proto=SMTP",
			w: want{action: "reject", stage: "CONNECT", clientHost: "unknown", clientIP: "198.51.100.99", replyCode: 554, dsn: "5.7.1", reply: "554 5.7.1 <unknown[198.51.100.99]>: Client host rejected: Access denied", proto: "SMTP"}},
		{line: pre + "postfix/postscreen[41]: NOQUEUE: reject: CONNECT from [198.51.100.99]:4242: too many connections",
			w: want{action: "reject", stage: "CONNECT", clientIP: "198.51.100.99", clientPort: 4242, reply: "too many connections"}},
	}
	for _, c := range cases {
		l := mustParse(t, c.line)
		got := want{
			queueID: l.QueueID, action: l.Action, stage: l.Stage,
			clientHost: l.ClientHost, clientIP: l.ClientIP, clientPort: l.ClientPort,
			replyCode: l.ReplyCode, dsn: l.DSN, reply: l.Reply,
			from: l.From, to: l.To, proto: l.Proto, helo: l.Helo,
		}
		if l.Kind != KindReject {
			t.Errorf("%s\n kind %v, want reject", c.line, l.Kind)
		}
		if got != c.w {
			t.Errorf("%s\n got  %+v\n want %+v", c.line, got, c.w)
		}
	}
}

func TestRemoteNotes(t *testing.T) {
	pre := "Mar  2 03:04:05 mx1 postfix/smtp[31]: "
	l := mustParse(t, pre+"9C0FFEE1: host mx.example.org[198.51.100.7] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command)")
	if l.Kind != KindRemote || l.RelayHost != "mx.example.org" || l.RelayIP != "198.51.100.7" || l.Reply != "452 4.2.2 Mailbox full" || l.Stage != "RCPT TO" || l.ReplyCode != 452 || l.DSN != "4.2.2" {
		t.Errorf("said: %+v", l)
	}
	l = mustParse(t, pre+"connect to mx.example.org[198.51.100.7]:25: Connection refused")
	if l.Kind != KindRemote || l.RelayPort != 25 || l.Reply != "Connection refused" {
		t.Errorf("connect: %+v", l)
	}
	l = mustParse(t, pre+"9C0FFEE1: host mx.example.org[198.51.100.7] refused to talk to me: 554 5.7.1 Banned for poor reputation")
	if l.Kind != KindRemote || l.ReplyCode != 554 || l.Reply != "554 5.7.1 Banned for poor reputation" {
		t.Errorf("refused: %+v", l)
	}
}

func TestRemoteReply(t *testing.T) {
	cases := []struct{ in, text, cmd string }{
		{in: "host mx.example.org[198.51.100.7] said: 550 5.1.1 <a@example.org>: no such user (in reply to RCPT TO command)", text: "550 5.1.1 <a@example.org>: no such user", cmd: "RCPT TO"},
		{in: "host mx.example.org[198.51.100.7] said: 250 ok (in reply to end of DATA command)", text: "250 ok", cmd: "end of DATA"},
		{in: "host mx.example.org[198.51.100.7] refused to talk to me: 554 go away", text: "554 go away"},
		{in: "connect to mx.example.org[198.51.100.7]:25: Connection timed out", text: "connect to mx.example.org[198.51.100.7]:25: Connection timed out"},
		{in: "250 2.0.0 Ok: queued as 44AB", text: "250 2.0.0 Ok: queued as 44AB"},
	}
	for _, c := range cases {
		text, cmd := RemoteReply(c.in)
		if text != c.text || cmd != c.cmd {
			t.Errorf("RemoteReply(%q) = %q, %q", c.in, text, cmd)
		}
	}
}

func TestEximLines(t *testing.T) {
	l := mustParse(t, "2025-03-02 03:04:05 1tAbCd-0001Xy-Qz <= news@example.com H=app7.example.com (app7) [192.0.2.44]:40112 P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no A=plain:newsletter S=48213 id=20250302.abc@app7.example.com")
	if l.Kind != KindArrival || l.MTA != "exim" || l.QueueID != "1tAbCd-0001Xy-Qz" || l.From != "news@example.com" || l.ClientHost != "app7.example.com" ||
		l.ClientIP != "192.0.2.44" || l.ClientPort != 40112 || l.Size != 48213 || l.MessageID != "20250302.abc@app7.example.com" || l.SASLUsername != "newsletter" {
		t.Errorf("arrival: %+v", l)
	}
	l = mustParse(t, "2025-03-02 03:04:06 1tAbCd-0001Xy-Qz => ann@example.org R=dnslookup T=remote_smtp H=mx.example.org [198.51.100.7]:25 X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes K C=\"250 2.0.0 OK id=\\\"x\\\" 1740884646 - gsmtp\" QT=1s DT=0.4s")
	if l.Kind != KindDelivery || l.Status != "sent" || l.To != "ann@example.org" || l.Router != "dnslookup" || l.Transport != "remote_smtp" ||
		l.RelayHost != "mx.example.org" || l.RelayIP != "198.51.100.7" || l.RelayPort != 25 || l.Reply != "250 2.0.0 OK id=\"x\" 1740884646 - gsmtp" ||
		l.DSN != "2.0.0" || l.ReplyCode != 250 || l.Delay != 1 || l.Delays[3] != 0.4 || l.Service != "remote_smtp" {
		t.Errorf("delivery: %+v", l)
	}
	l = mustParse(t, "2025-03-02 03:04:06 1tAbCd-0001Xy-Qz -> bob@example.org <robert@example.com> R=dnslookup T=remote_smtp H=mx.example.org [198.51.100.7] C=\"250 OK\"")
	if l.Kind != KindDelivery || l.Status != "sent" || l.To != "bob@example.org" || l.OrigTo != "robert@example.com" || l.RelayIP != "198.51.100.7" {
		t.Errorf("->: %+v", l)
	}
	l = mustParse(t, "2025-03-02 03:04:06 1tAbCd-0001Xy-Qz ** cid@example.net R=dnslookup T=remote_smtp H=mx.example.net [203.0.113.8]: SMTP error from remote mail server after RCPT TO:<cid@example.net>: 554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using Barracuda Reputation")
	if l.Kind != KindDelivery || l.Status != "bounced" || l.To != "cid@example.net" || l.RelayHost != "mx.example.net" || l.RelayIP != "203.0.113.8" ||
		l.Reply != "SMTP error from remote mail server after RCPT TO:<cid@example.net>: 554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using Barracuda Reputation" ||
		l.ReplyCode != 554 || l.DSN != "5.7.1" {
		t.Errorf("**: %+v", l)
	}
	l = mustParse(t, "2025-03-02 03:04:06 1tAbCd-0001Xy-Qz == dee@example.com R=dnslookup T=remote_smtp defer (-44) H=mx.example.com [203.0.113.9]: SMTP error from remote mail server after pipelined RCPT TO:<dee@example.com>: 451 4.7.1 Greylisted, come back later")
	if l.Kind != KindDelivery || l.Status != "deferred" || l.To != "dee@example.com" || l.RelayIP != "203.0.113.9" || l.ReplyCode != 451 || l.DSN != "4.7.1" {
		t.Errorf("==: %+v", l)
	}
	l = mustParse(t, "2025-03-02 03:04:06 1tAbCd-0001Xy-Qz ** nobody@nowhere.invalid: Unrouteable address")
	if l.Kind != KindDelivery || l.Status != "bounced" || l.To != "nobody@nowhere.invalid" || l.Reply != "Unrouteable address" {
		t.Errorf("** unrouteable: %+v", l)
	}
	l = mustParse(t, "2025-03-02 03:04:07.123 +0100 [4242] 1tAbCd-0001Xy-Qz Completed")
	if l.Kind != KindRemoved || l.PID != 4242 || !l.Time.Equal(time.Date(2025, 3, 2, 2, 4, 7, 123e6, time.UTC)) {
		t.Errorf("completed: %+v", l)
	}
	// Exim through syslog, with its own timestamp kept in the message;
	// the 4.97 id format.
	l = mustParse(t, "Mar  2 03:04:06 mx2 exim[4242]: 2025-03-02 03:04:06 1tAbCd-00000001XyZ-Qz0A => ann@example.org R=dnslookup T=remote_smtp H=mx.example.org [198.51.100.7] C=\"250 OK\"")
	if l.Kind != KindDelivery || l.QueueID != "1tAbCd-00000001XyZ-Qz0A" || l.Host != "mx2" || l.Status != "sent" {
		t.Errorf("syslog exim: %+v", l)
	}
	l = mustParse(t, "2025-03-02 03:04:06 H=spam.example (helo.spam.example) [203.0.113.9] F=<x@spam.example> rejected RCPT <ann@example.org>: relay not permitted")
	if l.Kind != KindReject || l.Action != "rejected" || l.Stage != "RCPT" || l.To != "ann@example.org" || l.From != "x@spam.example" ||
		l.ClientHost != "spam.example" || l.ClientIP != "203.0.113.9" || l.Helo != "helo.spam.example" || l.Reply != "relay not permitted" {
		t.Errorf("exim reject: %+v", l)
	}
}

func TestNotLogLines(t *testing.T) {
	for _, s := range []string{
		"",
		"hello world",
		"Mar  2 03:04:05",
		"Mar 32 03:04:05 mx1 postfix/smtp[1]: x",
		"Mar  2 25:04:05 mx1 postfix/smtp[1]: x",
		"Mar  2 03:04:05 mx1 postfix/smtp[1 x",
		"Mar  2 03:04:05 mx1",
		"2025-13-02T03:04:05Z mx1 postfix/smtp[1]: x",
		"<22>1 - mx1 postfix/smtp 1 - - x",
	} {
		var p Parser
		var l Line
		if p.Parse(s, 0, &l) {
			t.Errorf("parsed %q: %+v", s, l)
		}
	}
}

func TestAtof(t *testing.T) {
	for s, want := range map[string]float64{"0": 0, "0.19": 0.19, "6.8": 6.8, "138": 138, "0.01": 0.01, "1e3": 1000, "x": -1, "": -1, "1.2.3": -1} {
		if got := atof(s); got != want {
			t.Errorf("atof(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestInReplyToEdges(t *testing.T) {
	for _, s := range []string{"x (in reply to command)", " (in reply to  command)", "(in reply to command)", "host a[1.2.3.4] said: 5 (in reply to command)"} {
		RemoteReply(s) // must not panic
		mustParse(t, "Mar  2 03:04:05 mx1 postfix/smtp[1]: 1A2B3C4D5: host a[192.0.2.1] said: "+s)
	}
	if text, cmd := RemoteReply("host a[192.0.2.1] said: 550 no (in reply to  command)"); text != "550 no" || cmd != "" {
		t.Errorf("got %q %q", text, cmd)
	}
}

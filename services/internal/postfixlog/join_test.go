package postfixlog

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// feed parses and joins lines and returns the records.
func feed(t *testing.T, j *Joiner, lines ...string) []Record {
	t.Helper()
	p := &Parser{Ref: ref}
	var out []Record
	for i, s := range lines {
		var l Line
		if !p.Parse(s, int64(i+1), &l) {
			t.Fatalf("not parsed: %q", s)
		}
		if r := j.Add(&l); r != nil {
			out = append(out, r)
		}
	}
	return out
}

func deliveries(recs []Record) []*Delivery {
	var ds []*Delivery
	for _, r := range recs {
		if d, ok := r.(*Delivery); ok {
			ds = append(ds, d)
		}
	}
	return ds
}

const trackValue = "v=1; k=k1; c=shop; s=192.0.2.10; m=ord-991; t=1740884645; h=AbC_dEf-123"

// A message's whole life: client, cleanup, tracking header, qmgr, three
// attempts (one sent, one deferred then bounced), removed.
var lifecycle = []string{
	"Mar  2 03:04:00 mx1 postfix/submission/smtpd[20]: 5EED0A1B2: client=app7.example.com[192.0.2.44], sasl_method=PLAIN, sasl_username=news",
	"Mar  2 03:04:00 mx1 postfix/cleanup[22]: 5EED0A1B2: message-id=<ord-991@app7.example.com>",
	"Mar  2 03:04:00 mx1 postfix/cleanup[22]: 5EED0A1B2: warning: header X-Mailmon-Track: " + trackValue + " from app7.example.com[192.0.2.44]; from=<news@example.com> to=<ann@example.org> proto=ESMTP helo=<app7>",
	"Mar  2 03:04:00 mx1 postfix/qmgr[23]: 5EED0A1B2: from=<news@example.com>, size=48213, nrcpt=2 (queue active)",
	"Mar  2 03:04:01 mx1 postfix/smtp[31]: 5EED0A1B2: to=<ann@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=1.4, delays=0.1/0/0.6/0.7, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 44AB1234F)",
	"Mar  2 03:04:01 mx1 postfix/smtp[32]: 5EED0A1B2: to=<bob@example.net>, relay=mx.example.net[203.0.113.8]:25, delay=1.5, delays=0.1/0/1/0.4, dsn=4.7.0, status=deferred (host mx.example.net[203.0.113.8] said: 421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume or user complaints (in reply to MAIL FROM command))",
	"Mar  2 03:34:01 mx1 postfix/qmgr[23]: 5EED0A1B2: from=<news@example.com>, size=48213, nrcpt=2 (queue active)",
	"Mar  2 03:34:02 mx1 postfix/smtp[33]: 5EED0A1B2: to=<bob@example.net>, relay=mx.example.net[203.0.113.8]:25, delay=1802, delays=1800/0/1/1, dsn=5.7.1, status=bounced (host mx.example.net[203.0.113.8] said: 554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org (in reply to RCPT TO command))",
	"Mar  2 03:34:02 mx1 postfix/qmgr[23]: 5EED0A1B2: removed",
}

func TestJoinLifecycle(t *testing.T) {
	j := NewJoiner(JoinerConfig{})
	ds := deliveries(feed(t, j, lifecycle...))
	if len(ds) != 3 {
		t.Fatalf("%d deliveries, want 3", len(ds))
	}
	for _, d := range ds {
		if d.MessageID != "ord-991@app7.example.com" || d.TrackingHeader != trackValue || d.Sender != "news@example.com" ||
			d.Size != 48213 || d.Nrcpt != 2 || d.ClientHost != "app7.example.com" || d.ClientIP != "192.0.2.44" || d.SASLUsername != "news" {
			t.Errorf("context of %s: %+v", d.Recipient, d.MessageContext)
		}
		if d.QueueID != "5EED0A1B2" || d.Instance != "postfix" || d.Agent != "smtp" || d.Host != "mx1" {
			t.Errorf("ids: %+v", d)
		}
	}
	sent, deferred, bounced := ds[0], ds[1], ds[2]
	if sent.Status != "sent" || sent.Classification.Reason != "delivered" || sent.ReplyCode != 250 || sent.Pos != 5 || sent.RelayPort != 25 {
		t.Errorf("sent: %+v", sent)
	}
	if deferred.Status != "deferred" || deferred.ReplyCode != 421 || deferred.Command != "MAIL FROM" ||
		!strings.HasPrefix(deferred.RemoteReply, "421 4.7.0 [TSS04]") {
		t.Errorf("deferred: %+v", deferred)
	}
	if bounced.Status != "bounced" || bounced.ReplyCode != 554 || bounced.DSN != "5.7.1" || bounced.Command != "RCPT TO" {
		t.Errorf("bounced: %+v", bounced)
	}
	if bounced.Classification.Reason == "" || bounced.Classification.Category == "" {
		t.Errorf("bounced not classified: %+v", bounced.Classification)
	}
	if s := j.Stats(); s.Messages != 1 || s.Removed != 1 || s.Deliveries != 3 || s.Orphans != 0 {
		t.Errorf("stats %+v", s)
	}
}

// Two messages interleaved line by line keep their own context.
func TestJoinInterleaved(t *testing.T) {
	other := make([]string, len(lifecycle))
	for i, s := range lifecycle {
		s = strings.ReplaceAll(s, "5EED0A1B2", "6FACE0C3D")
		s = strings.ReplaceAll(s, "ord-991", "ord-992")
		s = strings.ReplaceAll(s, "news@example.com", "promo@example.com")
		other[i] = s
	}
	var mixed []string
	for i := range lifecycle {
		mixed = append(mixed, lifecycle[i], other[i])
	}
	ds := deliveries(feed(t, NewJoiner(JoinerConfig{}), mixed...))
	if len(ds) != 6 {
		t.Fatalf("%d deliveries", len(ds))
	}
	for _, d := range ds {
		want := map[string]string{"5EED0A1B2": "news@example.com", "6FACE0C3D": "promo@example.com"}[d.QueueID]
		if d.Sender != want || !strings.Contains(d.MessageID, map[string]string{"5EED0A1B2": "ord-991", "6FACE0C3D": "ord-992"}[d.QueueID]) {
			t.Errorf("%s got sender %q message-id %q", d.QueueID, d.Sender, d.MessageID)
		}
	}
}

// A short queue id is reused for a new message after "removed": the new
// message must not inherit the old one's context.
func TestJoinQueueIDReuse(t *testing.T) {
	j := NewJoiner(JoinerConfig{})
	feed(t, j, lifecycle...)
	ds := deliveries(feed(t, j,
		"Mar  2 05:00:00 mx1 postfix/pickup[21]: 5EED0A1B2: uid=1001 from=<cron@mx1.example.com>",
		"Mar  2 05:00:00 mx1 postfix/cleanup[22]: 5EED0A1B2: message-id=<cron-1@mx1.example.com>",
		"Mar  2 05:00:00 mx1 postfix/qmgr[23]: 5EED0A1B2: from=<cron@mx1.example.com>, size=900, nrcpt=1 (queue active)",
		"Mar  2 05:00:01 mx1 postfix/local[24]: 5EED0A1B2: to=<root@mx1.example.com>, relay=local, delay=0.1, delays=0.05/0/0/0.05, dsn=2.0.0, status=sent (delivered to mailbox)",
	))
	if len(ds) != 1 {
		t.Fatalf("%d deliveries", len(ds))
	}
	d := ds[0]
	if d.MessageID != "cron-1@mx1.example.com" || d.Sender != "cron@mx1.example.com" || d.TrackingHeader != "" || d.ClientHost != "local" || d.Size != 900 || d.SASLUsername != "" {
		t.Errorf("reused id carried old context: %+v", d.MessageContext)
	}
	if j.Stats().Reused != 1 {
		t.Errorf("stats %+v", j.Stats())
	}
	// Reuse without a "removed" line in between (the line was lost):
	// a new client= after delivery attempts starts a new message.
	j = NewJoiner(JoinerConfig{})
	feed(t, j, lifecycle[:5]...)
	ds = deliveries(feed(t, j,
		"Mar  3 09:00:00 mx1 postfix/smtpd[20]: 5EED0A1B2: client=other.example.com[192.0.2.99]",
		"Mar  3 09:00:01 mx1 postfix/smtp[31]: 5EED0A1B2: to=<zed@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)",
	))
	if d := ds[0]; d.ClientIP != "192.0.2.99" || d.MessageIDSet || d.TrackingHeader != "" {
		t.Errorf("reuse without removed: %+v", d.MessageContext)
	}
}

// Missing and out-of-order lines: a delivery with no context at all, a
// late cleanup line, and a delivery logged after "removed".
func TestJoinMissingAndOutOfOrder(t *testing.T) {
	j := NewJoiner(JoinerConfig{})
	ds := deliveries(feed(t, j,
		"Mar  2 03:04:01 mx1 postfix/smtp[31]: 7A7A7A7A7: to=<ann@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)",
	))
	if len(ds) != 1 || ds[0].MessageIDSet || ds[0].SenderSet || ds[0].Size != -1 || ds[0].Nrcpt != -1 {
		t.Fatalf("orphan delivery: %+v", ds)
	}
	if j.Stats().Orphans != 1 {
		t.Errorf("orphans %+v", j.Stats())
	}
	ds = deliveries(feed(t, j,
		"Mar  2 03:04:00 mx1 postfix/qmgr[23]: 8B8B8B8B8: from=<news@example.com>, size=10, nrcpt=2 (queue active)",
		"Mar  2 03:04:00 mx1 postfix/smtpd[20]: 8B8B8B8B8: client=app7.example.com[192.0.2.44]",
		"Mar  2 03:04:00 mx1 postfix/cleanup[22]: 8B8B8B8B8: message-id=<late@app7.example.com>",
		"Mar  2 03:04:01 mx1 postfix/qmgr[23]: 8B8B8B8B8: removed",
		"Mar  2 03:04:01 mx1 postfix/smtp[31]: 8B8B8B8B8: to=<ann@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)",
	))
	if len(ds) != 1 {
		t.Fatalf("%d deliveries", len(ds))
	}
	if d := ds[0]; d.MessageID != "late@app7.example.com" || d.Sender != "news@example.com" || d.ClientIP != "192.0.2.44" {
		t.Errorf("out of order: %+v", d.MessageContext)
	}
}

// An expiry names the recipients still deferred.
func TestJoinExpiry(t *testing.T) {
	j := NewJoiner(JoinerConfig{})
	recs := feed(t, j,
		"Feb 25 03:04:00 mx1 postfix/qmgr[23]: 9D9D9D9D9: from=<news@example.com>, size=10, nrcpt=2 (queue active)",
		"Feb 25 03:04:01 mx1 postfix/smtp[31]: 9D9D9D9D9: to=<ann@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=4.2.2, status=deferred (host mx.example.org[198.51.100.7] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command))",
		"Feb 25 03:04:01 mx1 postfix/smtp[31]: 9D9D9D9D9: to=<bob@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)",
		"Mar  2 03:04:01 mx1 postfix/smtp[31]: 9D9D9D9D9: to=<ann@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=432000, delays=431999/0/0.4/0.5, dsn=4.2.2, status=deferred (host mx.example.org[198.51.100.7] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command))",
		"Mar  2 03:05:00 mx1 postfix/qmgr[23]: 9D9D9D9D9: from=<news@example.com>, status=expired, returned to sender",
		"Mar  2 03:05:00 mx1 postfix/qmgr[23]: 9D9D9D9D9: removed",
	)
	ds := deliveries(recs)
	if len(ds) != 4 {
		t.Fatalf("%d deliveries", len(ds))
	}
	e := ds[3]
	if e.Status != "expired" || e.Agent != "qmgr" || e.Recipient != "ann@example.org" || len(e.Pending) != 1 ||
		e.Classification.Reason != "expired" || e.Sender != "news@example.com" || e.Reply != "returned to sender" {
		t.Errorf("expiry: %+v", e)
	}
	if ds[0].Classification.Reason != "mailboxfull" {
		t.Errorf("mailbox full classified as %+v", ds[0].Classification)
	}
}

// A content filter (amavis on 127.0.0.1:10024) re-injects the message under
// a new queue id; the re-injected copy's deliveries carry the original's
// context, whether the link comes from "queued as" or from XFORWARD.
func TestJoinContentFilterChain(t *testing.T) {
	j := NewJoiner(JoinerConfig{})
	ds := deliveries(feed(t, j,
		lifecycle[0], lifecycle[1], lifecycle[2], lifecycle[3],
		"Mar  2 03:04:01 mx1 postfix/smtpd[50]: C0C0C0C0C: client=localhost[127.0.0.1]",
		"Mar  2 03:04:01 mx1 postfix/cleanup[22]: C0C0C0C0C: message-id=<ord-991@app7.example.com>",
		"Mar  2 03:04:01 mx1 postfix/qmgr[23]: C0C0C0C0C: from=<news@example.com>, size=49000, nrcpt=1 (queue active)",
		"Mar  2 03:04:01 mx1 postfix/smtp[31]: 5EED0A1B2: to=<ann@example.org>, relay=127.0.0.1[127.0.0.1]:10024, delay=1, delays=0.1/0/0/0.9, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as C0C0C0C0C)",
		"Mar  2 03:04:01 mx1 postfix/qmgr[23]: 5EED0A1B2: removed",
		"Mar  2 03:04:02 mx1 postfix/smtp[33]: C0C0C0C0C: to=<ann@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=0.5, delays=0/0/0.2/0.3, dsn=2.0.0, status=sent (250 ok)",
	))
	if len(ds) != 2 {
		t.Fatalf("%d deliveries", len(ds))
	}
	if ds[0].QueuedAs != "C0C0C0C0C" {
		t.Errorf("QueuedAs %q", ds[0].QueuedAs)
	}
	d := ds[1]
	if d.TrackingHeader != trackValue || d.ClientIP != "192.0.2.44" || d.ParentQueueID != "5EED0A1B2" || d.Size != 49000 {
		t.Errorf("re-injected copy: %+v", d.MessageContext)
	}

	j = NewJoiner(JoinerConfig{})
	ds = deliveries(feed(t, j,
		lifecycle[0], lifecycle[1], lifecycle[2], lifecycle[3],
		"Mar  2 03:04:01 mx1 postfix-out/smtpd[50]: D0D0D0D0D: client=localhost[127.0.0.1], orig_queue_id=5EED0A1B2, orig_client=app7.example.com[192.0.2.44]",
		"Mar  2 03:04:02 mx1 postfix-out/smtp[33]: D0D0D0D0D: to=<ann@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=0.5, delays=0/0/0.2/0.3, dsn=2.0.0, status=sent (250 ok)",
	))
	if d := ds[0]; d.TrackingHeader != trackValue || d.ClientIP != "192.0.2.44" || d.ParentQueueID != "5EED0A1B2" || d.Instance != "postfix-out" {
		t.Errorf("xforward copy in another instance: %+v", d)
	}

	// A remote server's "queued as" is not ours: no link.
	j = NewJoiner(JoinerConfig{})
	feed(t, j, lifecycle[:5]...)
	if j.Stats().Messages != 1 {
		t.Errorf("a remote queue id was linked: %+v", j.Stats())
	}
}

// Two Postfix instances may use the same queue id at once.
func TestJoinInstancesApart(t *testing.T) {
	j := NewJoiner(JoinerConfig{})
	ds := deliveries(feed(t, j,
		"Mar  2 03:04:00 mx1 postfix-a/qmgr[1]: 1A1A1A1A1: from=<a@example.com>, size=1, nrcpt=1 (queue active)",
		"Mar  2 03:04:00 mx1 postfix-b/qmgr[2]: 1A1A1A1A1: from=<b@example.com>, size=2, nrcpt=1 (queue active)",
		"Mar  2 03:04:01 mx1 postfix-a/smtp[3]: 1A1A1A1A1: to=<x@example.org>, relay=none, delay=1, delays=1/0/0/0, dsn=5.4.4, status=bounced (Host or domain name not found)",
		"Mar  2 03:04:01 mx1 postfix-b/smtp[4]: 1A1A1A1A1: to=<y@example.org>, relay=none, delay=1, delays=1/0/0/0, dsn=5.4.4, status=bounced (Host or domain name not found)",
	))
	if ds[0].Sender != "a@example.com" || ds[1].Sender != "b@example.com" {
		t.Errorf("instances mixed: %q %q", ds[0].Sender, ds[1].Sender)
	}
}

func TestJoinRejects(t *testing.T) {
	j := NewJoiner(JoinerConfig{})
	recs := feed(t, j,
		"Mar  2 03:04:00 mx1 postfix/smtpd[40]: NOQUEUE: reject: RCPT from spam.example[203.0.113.9]: 554 5.7.1 Service unavailable; Client host [203.0.113.9] blocked using zen.spamhaus.org; from=<x@spam.example> to=<ann@example.org> proto=ESMTP helo=<spam.example>",
		"Mar  2 03:04:00 mx1 postfix/smtpd[40]: NOQUEUE: filter: RCPT from app7.example.com[192.0.2.44]: <news@example.com>: Sender address triggers FILTER smtp-amavis:[127.0.0.1]:10024; from=<news@example.com> to=<ann@example.org> proto=ESMTP helo=<app7>",
		lifecycle[0], lifecycle[1], lifecycle[2],
		"Mar  2 03:04:00 mx1 postfix/cleanup[22]: 5EED0A1B2: milter-reject: END-OF-MESSAGE from app7.example.com[192.0.2.44]: 5.7.1 Spam message rejected; from=<news@example.com> to=<ann@example.org> proto=ESMTP helo=<app7>",
	)
	if len(recs) != 2 {
		t.Fatalf("%d records: %+v", len(recs), recs)
	}
	r, ok := recs[0].(*Reject)
	if !ok || r.QueueID != "" || r.Action != "reject" || r.Stage != "RCPT" || r.ClientIP != "203.0.113.9" || r.ReplyCode != 554 || r.DSN != "5.7.1" ||
		r.Recipient != "ann@example.org" || r.Sender != "x@spam.example" || r.Classification.Signature == "" {
		t.Errorf("NOQUEUE reject: %+v", recs[0])
	}
	r, ok = recs[1].(*Reject)
	if !ok || r.QueueID != "5EED0A1B2" || r.Action != "milter-reject" || r.TrackingHeader != trackValue || r.MessageID != "ord-991@app7.example.com" {
		t.Errorf("milter reject: %+v", recs[1])
	}
}

func TestJoinExim(t *testing.T) {
	j := NewJoiner(JoinerConfig{})
	recs := feed(t, j,
		"2025-03-02 03:04:05 1tAbCd-0001Xy-Qz <= news@example.com H=app7.example.com [192.0.2.44] P=esmtpa A=plain:news S=48213 id=ord-991@app7.example.com",
		"2025-03-02 03:04:06 1tAbCd-0001Xy-Qz => ann@example.org R=dnslookup T=remote_smtp H=mx.example.org [198.51.100.7] C=\"250 2.0.0 OK\"",
		"2025-03-02 03:04:06 1tAbCd-0001Xy-Qz ** cid@example.net R=dnslookup T=remote_smtp H=mx.example.net [203.0.113.8]: SMTP error from remote mail server after RCPT TO:<cid@example.net>: 554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using Barracuda Reputation; http://www.barracudanetworks.com/reputation/?pr=1&ip=192.0.2.10",
		"2025-03-02 03:04:07 1tAbCd-0001Xy-Qz Completed",
	)
	ds := deliveries(recs)
	if len(ds) != 2 {
		t.Fatalf("%d deliveries", len(ds))
	}
	for _, d := range ds {
		if d.MTA != "exim" || d.MessageID != "ord-991@app7.example.com" || d.Sender != "news@example.com" || d.Size != 48213 || d.ClientIP != "192.0.2.44" || d.Agent != "remote_smtp" {
			t.Errorf("exim context: %+v", d)
		}
	}
	b := ds[1]
	if b.Status != "bounced" || b.ReplyCode != 554 || b.DSN != "5.7.1" || b.Command != "RCPT TO" || !strings.HasPrefix(b.RemoteReply, "554 5.7.1 Service unavailable") {
		t.Errorf("exim bounce: %+v", b)
	}
	if b.Classification.Category != "blocked_ip_or_blocklist" {
		t.Errorf("barracuda classified as %+v", b.Classification)
	}
}

// The joiner's memory stays bounded by count and by log time.
func TestJoinBounds(t *testing.T) {
	j := NewJoiner(JoinerConfig{MaxMessages: 100, MaxRemoved: 10, MaxAge: time.Hour, RemovedTTL: time.Minute})
	p := &Parser{Ref: ref}
	var l Line
	base := time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 5000; i++ {
		ts := base.Add(time.Duration(i) * time.Second).Format(time.RFC3339)
		qid := fmt.Sprintf("%09X", i+0x100000)
		for _, msg := range []string{
			"postfix/qmgr[1]: " + qid + ": from=<a@example.com>, size=1, nrcpt=1 (queue active)",
			"postfix/qmgr[1]: " + qid + ": removed",
		} {
			if !p.Parse(ts+" mx1 "+msg, 0, &l) {
				t.Fatal("not parsed")
			}
			j.Add(&l)
		}
		if i%3 == 0 { // never removed
			p.Parse(ts+" mx1 postfix/smtpd[2]: "+fmt.Sprintf("%09X", i+0x900000)+": client=a[192.0.2.1]", 0, &l)
			j.Add(&l)
		}
		if s := j.Stats(); s.Messages > 110 {
			t.Fatalf("at %d: %+v", i, s)
		}
	}
	s := j.Stats()
	if s.Evicted == 0 || s.Removed > 10 {
		t.Errorf("stats %+v", s)
	}
	// Eviction by age through the caller's clock.
	if n := j.Evict(base.Add(100 * 24 * time.Hour)); n == 0 || j.Stats().Messages != 0 {
		t.Errorf("Evict dropped %d, left %+v", n, j.Stats())
	}
}

func TestCleanHeader(t *testing.T) {
	for in, want := range map[string]string{
		"v=1; k=a":             "v=1; k=a",
		"v=1;#012#011k=a; c=x": "v=1;  k=a; c=x",
		"v=1;\n\tk=a":          "v=1;  k=a",
		"#1 ok":                "#1 ok",
	} {
		if got := cleanHeader(in); got != want {
			t.Errorf("cleanHeader(%q) = %q, want %q", in, got, want)
		}
	}
}

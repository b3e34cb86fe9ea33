package suppressor

import (
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/golden"
	"github.com/mailmon/mailmon/services/internal/suppression"
)

var update = flag.Bool("update", false, "rewrite testdata/rules.golden")

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// step is one event given to the rules; unless held, the plan's entries
// are then taken as stored.
type step struct {
	ev   schemas.Event
	held bool
}

func bounce(id string, mod func(*schemas.BounceReceived)) *schemas.BounceReceived {
	ev := &schemas.BounceReceived{
		Header:          schemas.Header{ID: id, Type: schemas.TypeBounceReceived, Time: t0},
		OutgoingMessage: schemas.OutgoingMessage{TrackingID: "trk-" + id, Customer: "acme", RecipientDomain: "example.org"},
		TraceMethod:     schemas.TraceTrackingHeader, ReceivedVia: schemas.ReceivedViaSMTP, Format: "rfc3464",
		Recipient: "gone.user@example.org", Action: "failed", Status: "5.1.1", ReplyCode: 550,
		Diagnostic: "550 5.1.1 <gone.user@example.org>: Recipient address rejected: User unknown",
		Reason:     "userunknown", Category: "user_unknown",
	}
	if mod != nil {
		mod(ev)
	}
	return ev
}

func delivery(id string, mod func(*schemas.DeliveryAttempted)) *schemas.DeliveryAttempted {
	ev := &schemas.DeliveryAttempted{
		Header:          schemas.Header{ID: id, Type: schemas.TypeDeliveryAttempted, Time: t0},
		OutgoingMessage: schemas.OutgoingMessage{TrackingID: "trk-" + id, Customer: "acme", RecipientDomain: "example.org"},
		TrackingStatus:  schemas.TrackingValid, MTA: schemas.MTAPostfix, MTAHost: "mta1", Agent: "smtp", QueueID: "4F1A2B3C",
		Recipient: "gone.user@example.org", Status: schemas.StatusBounced, DSN: "5.1.1", ReplyCode: 550,
		Reply:  "host mx.example.org[192.0.2.25] said: 550 5.1.1 <gone.user@example.org>: User unknown (in reply to RCPT TO command)",
		Reason: "userunknown", Category: "user_unknown",
	}
	if mod != nil {
		mod(ev)
	}
	return ev
}

func complaint(id string, mod func(*schemas.ComplaintReceived)) *schemas.ComplaintReceived {
	ev := &schemas.ComplaintReceived{
		Header:   schemas.Header{ID: id, Type: schemas.TypeComplaintReceived, Time: t0},
		Customer: "acme", Provider: "yahoo", TraceMethod: schemas.TraceTrackingHeader, Counted: true, Trusted: true,
		Trust: schemas.TrustOperatorDKIM, Format: "arf", ReceivedVia: schemas.ReceivedViaSMTP, FeedbackType: "abuse",
		OriginalRcptTo: []string{"<Complainer@Example.ORG>"},
	}
	if mod != nil {
		mod(ev)
	}
	return ev
}

func softConfig() suppression.Config {
	cfg := suppression.DefaultConfig()
	cfg.SoftBounces.Count = 3
	return cfg
}

func deferral(id string, at time.Time) *schemas.DeliveryAttempted {
	return delivery(id, func(d *schemas.DeliveryAttempted) {
		d.Time, d.Status, d.DSN, d.ReplyCode = at, schemas.StatusDeferred, "4.2.2", 452
		d.Reply = "host mx.example.org said: 452 4.2.2 Mailbox full (in reply to RCPT TO command)"
		d.Reason, d.Category = "mailboxfull", "mailbox_full"
	})
}

// TestRules runs each case's events through fresh rules and compares
// the plans with testdata/rules.golden (go test -update rewrites it).
func TestRules(t *testing.T) {
	day := 24 * time.Hour
	cases := []struct {
		name  string
		cfg   func() suppression.Config
		steps []step
	}{
		{name: "bounce: traced, permanent, user unknown: a 90-day hard bounce for the customer",
			steps: []step{{ev: bounce("b1", nil)}}},
		{name: "bounce: the address in another case and an IDN domain is the same entry as its normal form",
			steps: []step{{ev: bounce("b2", func(b *schemas.BounceReceived) { b.Recipient = "<gone.user@EXAMPLE.org>" })},
				{ev: bounce("b3", func(b *schemas.BounceReceived) { b.Recipient = "user@bücher.example" })}}},
		{name: "bounce: traced by DKIM only is untraced",
			steps: []step{{ev: bounce("b4", func(b *schemas.BounceReceived) { b.TraceMethod = schemas.TraceDKIM })}}},
		{name: "bounce: traced by nothing is untraced",
			steps: []step{{ev: bounce("b5", func(b *schemas.BounceReceived) { b.TraceMethod = schemas.TraceNone })}}},
		{name: "bounce: delayed is not a failure",
			steps: []step{{ev: bounce("b6", func(b *schemas.BounceReceived) { b.Action, b.Status = "delayed", "4.4.1" })}}},
		{name: "bounce: a 4xx is transient",
			steps: []step{{ev: bounce("b7", func(b *schemas.BounceReceived) { b.Status, b.ReplyCode = "4.4.7", 451 })}}},
		{name: "bounce: a 4.x.x status wins over a 5yz reply",
			steps: []step{{ev: bounce("b8", func(b *schemas.BounceReceived) { b.Status, b.ReplyCode = "4.2.2", 552 })}}},
		{name: "bounce: no status, a 550 reply is permanent",
			steps: []step{{ev: bounce("b9", func(b *schemas.BounceReceived) { b.Status = "" })}}},
		{name: "bounce: no status, no reply is not permanent",
			steps: []step{{ev: bounce("b10", func(b *schemas.BounceReceived) { b.Status, b.ReplyCode = "", 0 })}}},
		{name: "bounce: a blocklist block is about the sender",
			steps: []step{{ev: bounce("b11", func(b *schemas.BounceReceived) {
				b.Status, b.Reason, b.Category = "5.7.1", "blocked", "blocked_ip_or_blocklist"
			})}}},
		{name: "bounce: a policy rejection is about the sender",
			steps: []step{{ev: bounce("b12", func(b *schemas.BounceReceived) { b.Status, b.Category = "5.7.1", "policy" })}}},
		{name: "bounce: a category named like an expiry key is not one",
			steps: []step{{ev: bounce("b13", func(b *schemas.BounceReceived) { b.Status, b.Category = "5.0.0", "complaint" })}}},
		{name: "bounce: a recipient status decides over the stage's reason (unknown user after DATA reads filtered)",
			steps: []step{{ev: bounce("b13b", func(b *schemas.BounceReceived) { b.Reason, b.Category = "filtered", "filtered" })}}},
		{name: "bounce: mailbox disabled and domain unknown have their own expiries",
			steps: []step{{ev: bounce("b14", func(b *schemas.BounceReceived) { b.Status, b.Category = "5.2.1", "mailbox_disabled" })},
				{ev: bounce("b15", func(b *schemas.BounceReceived) {
					b.Recipient, b.Status, b.Category = "x@nowhere.example", "5.1.2", "domain_unknown"
				})}}},
		{name: "bounce: without a customer it goes to the global list",
			steps: []step{{ev: bounce("b16", func(b *schemas.BounceReceived) { b.Customer = "" })}}},
		{name: "bounce: scope global_recipient puts a customer's bounce on the global list",
			cfg: func() suppression.Config {
				c := suppression.DefaultConfig()
				c.Scope = schemas.SuppressGlobalRecipient
				return c
			},
			steps: []step{{ev: bounce("b17", nil)}}},
		{name: "bounce: an address that does not normalise",
			steps: []step{{ev: bounce("b18", func(b *schemas.BounceReceived) { b.Recipient = "no-at-sign" })},
				{ev: bounce("b19", func(b *schemas.BounceReceived) { b.Recipient = "a b@example.org" })},
				{ev: bounce("b20", func(b *schemas.BounceReceived) { b.Recipient = "x@" + strings.Repeat("a", 300) })}}},
		{name: "bounce: the reply is cut to 300 bytes",
			steps: []step{{ev: bounce("b21", func(b *schemas.BounceReceived) { b.Diagnostic = "550 5.1.1 " + strings.Repeat("z", 400) })}}},
		{name: "bounce: without a time",
			steps: []step{{ev: bounce("b22", func(b *schemas.BounceReceived) { b.Time = time.Time{} })}}},
		{name: "bounce: with a hash key the address is not kept",
			cfg: func() suppression.Config {
				c := suppression.DefaultConfig()
				c.HashKey = config.Secret("k3y")
				return c
			},
			steps: []step{{ev: bounce("b23", nil)},
				{ev: bounce("b24", func(b *schemas.BounceReceived) {
					b.Diagnostic = "550 5.1.1 User GONE.USER does not exist; mail for Gone.User@Example.org, see <https://mx.example.org/help>"
				})}}},

		{name: "delivery: 550 5.1.1 at RCPT, logged bounced",
			steps: []step{{ev: delivery("d1", nil)}}},
		{name: "delivery: 550 5.1.1 after DATA, logged bounced",
			steps: []step{{ev: delivery("d2", func(d *schemas.DeliveryAttempted) {
				d.Reply = "host mx.example.org said: 550 5.1.1 mailbox unavailable (in reply to end of DATA command)"
			})}}},
		{name: "delivery: our own MTA's rejection never suppresses",
			steps: []step{{ev: delivery("d3", func(d *schemas.DeliveryAttempted) {
				d.Status, d.Agent, d.QueueID = schemas.StatusRejected, "smtpd", ""
				d.Reply = "550 5.1.1 <gone.user@example.org>: Recipient address rejected"
			})}}},
		{name: "delivery: our probe to a seed is ignored",
			steps: []step{{ev: delivery("d4", func(d *schemas.DeliveryAttempted) { d.ProbeID = "p-1" })}}},
		{name: "delivery: a block is about the sender",
			steps: []step{{ev: delivery("d5", func(d *schemas.DeliveryAttempted) {
				d.DSN, d.Reason, d.Category = "5.7.1", "blocked", "blocked_ip_or_blocklist"
			})}}},
		{name: "delivery: a deferral is transient",
			steps: []step{{ev: delivery("d6", func(d *schemas.DeliveryAttempted) {
				d.Status, d.DSN, d.ReplyCode, d.Category = schemas.StatusDeferred, "4.7.1", 451, "rate_limited"
			})}}},
		{name: "delivery: expired in our queue is transient",
			steps: []step{{ev: delivery("d7", func(d *schemas.DeliveryAttempted) {
				d.Status, d.DSN, d.ReplyCode, d.Category = schemas.StatusExpired, "4.4.1", 0, "network"
			})}}},
		{name: "delivery: mailbox full bounced, soft bounces off: a category that never suppresses",
			steps: []step{{ev: delivery("d8", func(d *schemas.DeliveryAttempted) {
				d.DSN, d.ReplyCode, d.Reason, d.Category = "5.2.2", 552, "mailboxfull", "mailbox_full"
			})}}},
		{name: "delivery: sent clears the address's bounce entries",
			steps: []step{{ev: delivery("d9", func(d *schemas.DeliveryAttempted) {
				d.Time, d.Status, d.DSN, d.ReplyCode, d.Reason, d.Category = t0.Add(time.Hour), schemas.StatusSent, "2.0.0", 250, "delivered", ""
				d.Recipient = "<gone.user@Example.ORG>"
			})}}},
		{name: "delivery: sent with clear_on_delivery off",
			cfg: func() suppression.Config {
				c := suppression.DefaultConfig()
				c.ClearOnDelivery = false
				return c
			},
			steps: []step{{ev: delivery("d10", func(d *schemas.DeliveryAttempted) { d.Status, d.DSN = schemas.StatusSent, "2.0.0" })}}},

		{name: "complaint: counted and trusted: never expires",
			steps: []step{{ev: complaint("c1", nil)}}},
		{name: "complaint: untrusted",
			steps: []step{{ev: complaint("c2", func(c *schemas.ComplaintReceived) { c.Trusted, c.Trust = false, schemas.TrustUnverified })}}},
		{name: "complaint: not counted",
			steps: []step{{ev: complaint("c3", func(c *schemas.ComplaintReceived) { c.Counted, c.FeedbackType = false, "not-spam" })}}},
		{name: "complaint: redacted recipients are skipped, the others kept, each address once (the local part keeps its case)",
			steps: []step{{ev: complaint("c4", func(c *schemas.ComplaintReceived) {
				c.OriginalRcptTo = []string{"redacted@example.org", "xxxxxxxx@example.org", "a@example.org", "<a@EXAMPLE.org>", "A@example.org", "not an address"}
			})}}},
		{name: "complaint: no recipient",
			steps: []step{{ev: complaint("c5", func(c *schemas.ComplaintReceived) { c.OriginalRcptTo = nil })}}},
		{name: "complaint: without a customer it goes to the global list",
			steps: []step{{ev: complaint("c6", func(c *schemas.ComplaintReceived) { c.Customer = "" })}}},
		{name: "complaint: only the first ten recipients are used",
			steps: []step{{ev: complaint("c7", func(c *schemas.ComplaintReceived) {
				c.OriginalRcptTo = nil
				for i := range 12 {
					c.OriginalRcptTo = append(c.OriginalRcptTo, fmt.Sprintf("r%d@example.org", i))
				}
			})}}},

		{name: "soft: three mailbox-full deferrals within the window suppress; a redelivery counts once",
			cfg: softConfig,
			steps: []step{{ev: deferral("s1", t0)}, {ev: deferral("s1", t0)}, {ev: deferral("s2", t0.Add(day))},
				{ev: deferral("s3", t0.Add(2*day)), held: true},
				// Redelivered before its entry was stored: the same entry.
				{ev: deferral("s3", t0.Add(2*day))},
				// Stored: the counts start again.
				{ev: deferral("s4", t0.Add(3*day))}}},
		{name: "soft: failures older than the window do not count",
			cfg: softConfig,
			steps: []step{{ev: deferral("w1", t0)}, {ev: deferral("w2", t0.Add(6*day))}, {ev: deferral("w3", t0.Add(8*day))},
				{ev: deferral("w4", t0.Add(9*day))}}},
		{name: "soft: a successful delivery resets the count",
			cfg: softConfig,
			steps: []step{{ev: deferral("r1", t0)}, {ev: deferral("r2", t0.Add(time.Hour))},
				{ev: delivery("r3", func(d *schemas.DeliveryAttempted) {
					d.Time, d.Status, d.DSN, d.ReplyCode, d.Category = t0.Add(2*time.Hour), schemas.StatusSent, "2.0.0", 250, ""
				})},
				{ev: deferral("r4", t0.Add(3*time.Hour))}}},
		{name: "soft: a bounced mailbox-full counts too, a blocked deferral does not",
			cfg: softConfig,
			steps: []step{{ev: delivery("m1", func(d *schemas.DeliveryAttempted) {
				d.DSN, d.ReplyCode, d.Reason, d.Category = "5.2.2", 552, "mailboxfull", "mailbox_full"
			})},
				{ev: delivery("m2", func(d *schemas.DeliveryAttempted) {
					d.Status, d.DSN, d.ReplyCode, d.Category = schemas.StatusDeferred, "4.7.1", 421, "blocked_ip_or_blocklist"
				})}}},
	}
	var out strings.Builder
	for _, tc := range cases {
		cfg := suppression.DefaultConfig()
		if tc.cfg != nil {
			cfg = tc.cfg()
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		r := NewRules(cfg)
		fmt.Fprintf(&out, "== %s\n", tc.name)
		for _, s := range tc.steps {
			var p Plan
			switch ev := s.ev.(type) {
			case *schemas.BounceReceived:
				p = r.Bounce(ev)
			case *schemas.DeliveryAttempted:
				p = r.Delivery(ev)
			case *schemas.ComplaintReceived:
				p = r.Complaint(ev)
			}
			fmt.Fprintf(&out, "%s\n%s\n", s.ev.EventHeader().ID, renderPlan(p))
			if !s.held {
				r.Stored(p)
			}
		}
	}
	golden.Check(t, "testdata/rules.golden", []byte(out.String()), *update)
}

func renderPlan(p Plan) string {
	var b strings.Builder
	for _, why := range p.Ignored {
		fmt.Fprintf(&b, "\n  ignored %s", why)
	}
	for _, e := range p.Adds {
		expires := "never"
		if !e.Expires.IsZero() {
			expires = e.Expires.Format(time.RFC3339)
		}
		fmt.Fprintf(&b, "\n  add %s %s customer=%q recipient=%q hash=%s domain=%s created=%s expires=%s",
			e.Reason, e.Scope, e.Customer, e.Recipient, e.RecipientHash, e.RecipientDomain, e.Created.Format(time.RFC3339), expires)
		if e.BounceCategory != "" {
			fmt.Fprintf(&b, "\n    bounce=%s/%s status=%s reply(%d)=%.60q", e.BounceReason, e.BounceCategory, e.Status, len(e.Reply), e.Reply)
		}
		fmt.Fprintf(&b, "\n    key=%s sources=%v added_id=%s", e.Key, e.SourceEventIDs, e.AddedID)
	}
	if c := p.Clear; c != nil {
		fmt.Fprintf(&b, "\n  clear digest=%s before=%s event=%s", c.Digest, c.At.Format(time.RFC3339), c.EventID)
	}
	return strings.TrimPrefix(b.String(), "\n")
}

func TestReplaces(t *testing.T) {
	now := t0
	entry := func(reason string, expires time.Duration) suppression.Entry {
		e := suppression.Entry{Reason: reason, Created: now.Add(-time.Hour)}
		if expires != 0 {
			e.Expires = now.Add(expires)
		}
		return e
	}
	const day = 24 * time.Hour
	tests := []struct {
		name     string
		nw, old  suppression.Entry
		replaces bool
	}{
		{"longer bounce replaces a bounce", entry(schemas.SuppressHardBounce, 90*day), entry(schemas.SuppressHardBounce, 30*day), true},
		{"shorter bounce does not", entry(schemas.SuppressHardBounce, 30*day), entry(schemas.SuppressHardBounce, 90*day), false},
		{"as long does not", entry(schemas.SuppressHardBounce, 30*day), entry(schemas.SuppressHardBounce, 30*day), false},
		{"a complaint replaces a bounce", entry(schemas.SuppressComplaint, 0), entry(schemas.SuppressHardBounce, 90*day), true},
		{"a complaint does not replace a complaint", entry(schemas.SuppressComplaint, 0), entry(schemas.SuppressComplaint, 0), false},
		{"a bounce never replaces a complaint", entry(schemas.SuppressHardBounce, 0), entry(schemas.SuppressComplaint, day), false},
		{"a bounce never replaces a manual entry", entry(schemas.SuppressHardBounce, 90*day), entry(schemas.SuppressManual, day), false},
		{"a bounce never replaces an unsubscribe", entry(schemas.SuppressSoftBounces, 90*day), entry(schemas.SuppressUnsubscribe, day), false},
		{"hard replaces a shorter soft", entry(schemas.SuppressHardBounce, 90*day), entry(schemas.SuppressSoftBounces, 30*day), true},
		{"anything replaces an expired entry", entry(schemas.SuppressHardBounce, day), entry(schemas.SuppressManual, -time.Minute), true},
	}
	for _, tc := range tests {
		if got := Replaces(tc.nw, tc.old, now); got != tc.replaces {
			t.Errorf("%s: Replaces = %v, want %v", tc.name, got, tc.replaces)
		}
	}
}

func TestClearKeeps(t *testing.T) {
	c := Clear{At: t0}
	tests := []struct {
		reason  string
		created time.Time
		keeps   bool
	}{
		{schemas.SuppressHardBounce, t0.Add(-time.Second), false},
		{schemas.SuppressSoftBounces, t0.Add(-time.Second), false},
		{schemas.SuppressHardBounce, t0, false}, // one second of the log: the success came after
		{schemas.SuppressHardBounce, t0.Add(time.Second), true},
		{schemas.SuppressComplaint, t0.Add(-time.Hour), true},
		{schemas.SuppressManual, t0.Add(-time.Hour), true},
		{schemas.SuppressUnsubscribe, t0.Add(-time.Hour), true},
	}
	for _, tc := range tests {
		if got := c.Keeps(suppression.Entry{Reason: tc.reason, Created: tc.created}); got != tc.keeps {
			t.Errorf("%s created %s: Keeps = %v, want %v", tc.reason, tc.created.Sub(t0), got, tc.keeps)
		}
	}
}

// TestSoftMemoryBound: past the bound, a new address's soft failure is
// ignored, while addresses already tracked still count.
func TestSoftMemoryBound(t *testing.T) {
	r := NewRules(softConfig())
	r.maxKey = 2
	for i, want := range []string{WhySoftCounted, WhySoftCounted, WhySoftMemoryFull} {
		ev := deferral(fmt.Sprintf("e%d", i), t0)
		ev.Recipient = fmt.Sprintf("u%d@example.org", i)
		if p := r.Delivery(ev); len(p.Ignored) != 1 || p.Ignored[0] != want {
			t.Fatalf("address %d: %v, want %s", i, p.Ignored, want)
		}
	}
	ev := deferral("again", t0)
	ev.Recipient = "u0@example.org"
	if p := r.Delivery(ev); len(p.Ignored) != 1 || p.Ignored[0] != WhySoftCounted {
		t.Fatalf("tracked address: %v", p.Ignored)
	}
	r.Prune(t0.Add(8 * 24 * time.Hour))
	if n := r.SoftTracked(); n != 0 {
		t.Fatalf("after the window, %d addresses still tracked", n)
	}
}

// FuzzRules: no event content makes the rules panic, and every entry they
// plan has a key the policy service can parse.
func FuzzRules(f *testing.F) {
	f.Add("gone.user@example.org", "5.1.1", uint16(550), "user_unknown", "")
	f.Add("<x@[192.0.2.1]>", "", uint16(554), "domain_unknown", "acme")
	f.Add("a@b@c", "5.", uint16(0), "", "")
	f.Add("\x00@\xff", "4.4.7", uint16(999), "mailbox_full", "c")
	f.Fuzz(func(t *testing.T, rcpt, status string, code uint16, category, customer string) {
		r := NewRules(softConfig())
		plans := []Plan{
			r.Bounce(bounce("f1", func(b *schemas.BounceReceived) {
				b.Recipient, b.Status, b.ReplyCode, b.Category, b.Customer = rcpt, status, code, category, customer
			})),
			r.Delivery(delivery("f2", func(d *schemas.DeliveryAttempted) {
				d.Recipient, d.DSN, d.ReplyCode, d.Category, d.Customer = rcpt, status, code, category, customer
			})),
			r.Complaint(complaint("f3", func(c *schemas.ComplaintReceived) { c.OriginalRcptTo, c.Customer = []string{rcpt}, customer })),
		}
		for _, p := range plans {
			for _, e := range p.Adds {
				if _, _, _, ok := suppression.ParseKey(e.Key); !ok {
					t.Fatalf("planned key %q does not parse", e.Key)
				}
				if _, err := suppression.Unmarshal(e.Marshal()); err != nil {
					t.Fatalf("planned entry does not decode: %v", err)
				}
			}
		}
	})
}

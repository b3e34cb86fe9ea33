package complaintevaluator_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/services/internal/dkimtest"
	"github.com/mailmon/mailmon/services/internal/worker"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/schemas/tracking"
	"github.com/mailmon/mailmon/services/fblingester"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/enforcement"
	"github.com/mailmon/mailmon/services/internal/peertest"
	"github.com/mailmon/mailmon/services/internal/testwait"
	"github.com/mailmon/mailmon/services/peers"
)

// TestPostfixForgedReportsDecideNothingGenuineOnesCutOff is the loop from
// the outside in: feedback reports are submitted to Debian's Postfix, which
// relays them to the fbl-ingester's listener; the ingester publishes
// complaints, the evaluator judges them, the policy service answers
// Postfix. Customer B gets three forged reports (one unsigned, two validly
// DKIM-signed by attacker.example, each quoting a genuine tracking header
// of B's mail, as any recipient of it can): they are stored untrusted and
// nothing happens — no decision, no alert, B's mail still flows. Customer
// A gets the same number of reports signed by the configured operator
// domain: A is cut off and Postfix refuses its next message.
func TestPostfixForgedReportsDecideNothingGenuineOnesCutOff(t *testing.T) {
	if err := peers.CheckPostfix(); err != nil {
		peertest.Unavailable(t, "%v", err)
	}
	js, kv := newNATS(t)
	l := &loop{js: js, kv: kv, pub: nil, hook: newWebhook(t)}

	policy := startPolicyAndNotifier(t, l)
	startEvaluator(t, js, evaluatorConfig(time.Hour, schemas.ActionCutoff))

	// The DKIM keys of the operator and of the attacker, in a real DNS
	// server the ingester asks.
	zone := dkimtest.Start(t)
	operator := zone.NewSigner(t, "fbl.provider.test")
	attacker := zone.NewSigner(t, "attacker.example")

	ring := tracking.Keyring{Current: tracking.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}}
	fcfg := fblingester.DefaultConfig()
	fcfg.SMTP.Listen = "127.0.0.1:0"
	fcfg.SMTP.Addresses = []string{"fbl@reports.example"}
	fcfg.Trust.Operators = []fblingester.Operator{{DKIMDomain: "fbl.provider.test"}}
	fcfg.Trust.Resolver = zone.Addr
	fcfg.Trace.SourceNetworks = []string{"192.0.2.0/24"}
	fset := settings(t, js, fblingester.WorkerName)
	fset.Tracking = worker.Tracking{Keyring: &ring}
	ing, err := fblingester.New(fcfg, fset)
	if err != nil {
		t.Fatal(err)
	}
	runWorker(t, ing)
	ictx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	ingAddr := ing.Addr(ictx)
	cancel()
	if ingAddr == "" {
		t.Fatal("fbl-ingester listener did not start")
	}

	normal := startSink(t)
	pp, err := peers.StartPostfix(t.Context(), peers.PostfixConfig{Main: map[string]string{
		"smtpd_recipient_restrictions": fmt.Sprintf("check_policy_service inet:%s, permit_mynetworks, reject_unauth_destination", policy.Addr()),
		"relayhost":                    fmt.Sprintf("[127.0.0.1]:%d", normal.port),
		"transport_maps":               "inline:{ reports.example=smtp:[" + strings.Replace(ingAddr, ":", "]:", 1) + " }",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pp.Close(); err != nil {
			t.Log(err)
		}
	})
	pf := &postfix{pp}

	l.pub = bus.NewPublisher(js, bus.PublisherOptions{Worker: "test"})
	l.publish(t, traffic("cust-a", 200, time.Now().Add(-time.Minute))...)
	l.publish(t, traffic("cust-b", 200, time.Now().Add(-time.Minute))...)

	report := func(customer, id, from string) []byte {
		track, err := ring.Sign(tracking.Fields{Customer: customer, Source: "192.0.2.10", MessageID: id, Time: time.Now().Add(-time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return fblReport(id, from, track)
	}
	forged := [][]byte{
		report("cust-b", "b-1", "x@attacker.example"),
		attacker.Sign(t, report("cust-b", "b-2", "x@attacker.example")),
		attacker.Sign(t, report("cust-b", "b-3", "x@attacker.example")),
	}
	genuine := [][]byte{
		operator.Sign(t, report("cust-a", "a-1", "feedback@fbl.provider.test")),
		operator.Sign(t, report("cust-a", "a-2", "feedback@fbl.provider.test")),
		operator.Sign(t, report("cust-a", "a-3", "feedback@fbl.provider.test")),
	}
	submit := func(msg []byte) {
		t.Helper()
		if err := submitReport(pf.Addr(), msg); err != nil {
			t.Fatalf("submit a report to postfix: %v\n%s", err, pf.Log())
		}
	}
	for _, m := range forged {
		submit(m)
	}
	testwait.Eventually(t, 30*time.Second, "forged complaints stored", func() bool { return len(storedComplaints(t, js)) == len(forged) })
	for _, m := range genuine {
		submit(m)
	}
	testwait.Eventually(t, 30*time.Second, "cust-a cut off", func() bool {
		_, _, found, _ := enforcement.Get(context.Background(), kv, enforcement.Customer("cust-a"), time.Now())
		return found
	})

	testwait.Eventually(t, 30*time.Second, "every complaint stored", func() bool { return len(storedComplaints(t, js)) == len(forged)+len(genuine) })
	// Every report went through Postfix to the listener; B's are stored,
	// untrusted, and traced to B (only trust keeps them from counting).
	byCustomer := map[string][]*schemas.ComplaintReceived{}
	for _, ev := range storedComplaints(t, js) {
		byCustomer[ev.Customer] = append(byCustomer[ev.Customer], ev)
	}
	for _, ev := range byCustomer["cust-b"] {
		if ev.Trusted || !ev.Counted || ev.ReceivedVia != schemas.ReceivedViaSMTP {
			t.Errorf("forged report %s: trusted %v counted %v via %s", ev.ReportMessageID, ev.Trusted, ev.Counted, ev.ReceivedVia)
		}
	}
	for _, ev := range byCustomer["cust-a"] {
		if !ev.Trusted || ev.Trust != schemas.TrustOperatorDKIM {
			t.Errorf("operator-signed report %s: trusted %v (%s)", ev.ReportMessageID, ev.Trusted, ev.Trust)
		}
	}
	if len(byCustomer["cust-a"]) != 3 || len(byCustomer["cust-b"]) != 3 {
		t.Fatalf("complaints per customer: a %d, b %d; want 3 each", len(byCustomer["cust-a"]), len(byCustomer["cust-b"]))
	}

	// A is refused by Postfix; B's mail flows.
	err = pf.trySend("news@a.example", "three@remote.test", "a-during")
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 554 || !strings.Contains(se.Message, "Sending suspended for customer:cust-a") {
		t.Fatalf("A's message during the cut-off: %v, want 554 ... Sending suspended", err)
	}
	pf.waitLog(t, "Postfix refused A", "NOQUEUE: reject: RCPT from", "Sending suspended for customer:cust-a")
	pf.send(t, "news@b.example", "four@remote.test", "b-during")
	normal.waitFor(t, "b-during")
	if _, _, found, _ := enforcement.Get(context.Background(), kv, enforcement.Customer("cust-b"), time.Now()); found {
		t.Error("forged reports made a decision on cust-b")
	}
	// The evaluator read B's complaints before A's: A's alert reached the
	// webhook, and nothing about B did.
	testwait.Eventually(t, 10*time.Second, "A's alert at the notifier endpoint", func() bool { return len(l.hook.alerts("customer:cust-a")) > 0 })
	if as := l.hook.alerts("customer:cust-b"); len(as) != 0 {
		t.Errorf("forged reports raised %d alerts about cust-b: %+v", len(as), as[0])
	}
	for _, d := range decisionEvents(t, js) {
		if c, ok := d.(*schemas.DecisionCutoff); ok && strings.Contains(c.Subject, "cust-b") {
			t.Errorf("decision on cust-b: %+v", c)
		}
	}
}

// fblReport is an ARF abuse report about one of our customer's messages,
// whose header (with its tracking header) it quotes.
func fblReport(id, from, track string) []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	w("From: Feedback Loop <%s>", from)
	w("To: fbl@reports.example")
	w("Subject: abuse report")
	w("Date: %s", time.Now().UTC().Format(time.RFC1123Z))
	w("Message-ID: <report-%s@fbl.provider.test>", id)
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=feedback-report; boundary=\"BOUND\"")
	w("")
	w("--BOUND")
	w("Content-Type: text/plain")
	w("")
	w("This is an email abuse report.")
	w("")
	w("--BOUND")
	w("Content-Type: message/feedback-report")
	w("")
	w("Feedback-Type: abuse")
	w("User-Agent: ProviderFBL/1.0")
	w("Version: 1")
	w("Original-Rcpt-To: <reader-%s@provider.test>", id)
	w("Arrival-Date: %s", time.Now().Add(-30*time.Minute).UTC().Format(time.RFC1123Z))
	w("Source-IP: 192.0.2.10")
	w("")
	w("--BOUND")
	w("Content-Type: text/rfc822-headers")
	w("")
	w("X-Mailmon-Track: %s", track)
	w("From: news@%s.example", strings.SplitN(id, "-", 2)[0])
	w("To: reader-%s@provider.test", id)
	w("Subject: Winter sale")
	w("Message-ID: <orig-%s@mail.test>", id)
	w("")
	w("--BOUND--")
	return []byte(b.String())
}

// submitReport hands a report to Postfix for fbl@reports.example.
func submitReport(addr string, msg []byte) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("provider.test"); err != nil {
		return err
	}
	if err := c.SendMail("feedback@fbl.provider.test", []string{"fbl@reports.example"}, bytes.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}

// storedComplaints reads every complaint in the COMPLAINT stream.
func storedComplaints(t *testing.T, js jetstream.JetStream) []*schemas.ComplaintReceived {
	t.Helper()
	var out []*schemas.ComplaintReceived
	for _, ev := range streamEvents(t, js, "COMPLAINT") {
		if c, ok := ev.(*schemas.ComplaintReceived); ok {
			out = append(out, c)
		}
	}
	return out
}

package fblingester

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/dkimtest"
)

// trustConfig is testConfig with one feedback-loop operator
// (fbl.provider.test), DKIM keys fetched from the test DNS server, and
// customer acme signing as sender.example.
func trustConfig(d *dkimtest.Server) Config {
	cfg := testConfig()
	cfg.Trust.Operators = []Operator{{DKIMDomain: "fbl.provider.test"}}
	cfg.Trust.Resolver = d.Addr
	cfg.Trust.DNSTimeout = config.Duration(2 * time.Second)
	cfg.Trace.DKIMDomains = map[string]string{"sender.example": "acme"}
	cfg.UnmatchedAlert.MinComplaints = 2
	return cfg
}

// TestForgedReportsAreStoredUntrusted: reports anyone can send — unsigned,
// or DKIM-signed (validly) by a domain that is no configured operator —
// are stored with trusted=false, are not traced by what they claim (the
// d= of a quoted header, their Source-IP), and raise no alert however
// many of them trace to nothing.
func TestForgedReportsAreStoredUntrusted(t *testing.T) {
	d := dkimtest.Start(t)
	js := startNATS(t)
	r := startIngester(t, trustConfig(d), js)
	d.NewSigner(t, "fbl.provider.test")
	attacker := d.NewSigner(t, "attacker.example")
	dkimLine := "DKIM-Signature: v=1; a=rsa-sha256; d=sender.example; s=s1; h=from; bh=x; b=y"

	var sent []string
	for i := range 3 {
		base := reportSpec{reportID: fmt.Sprintf("forged-%d", i), from: "x@attacker.example", sourceIP: "192.0.2.10",
			origID: fmt.Sprintf("o-%d@sender.example", i), rcpt: "victim-reader@yahoo.com", origDKIM: dkimLine, headers: true}
		unsigned := base.build()
		base.reportID += "-signed"
		base.origID = "s" + base.origID
		signed := attacker.Sign(t, base.build())
		for _, msg := range [][]byte{unsigned, signed} {
			if err := send(r.addr, "x@attacker.example", []string{"fbl@sender.example"}, msg); err != nil {
				t.Fatalf("send: %v", err)
			}
			sent = append(sent, "ok")
		}
	}
	evs := decode[schemas.ComplaintReceived](t, storedMsgs(t, js, "COMPLAINT", schemas.SubjectComplaintReceived))
	if len(evs) != len(sent) {
		t.Fatalf("%d complaints stored, want %d", len(evs), len(sent))
	}
	for _, ev := range evs {
		if ev.Trusted || ev.Trust != schemas.TrustUnverified {
			t.Errorf("forged report %s: trusted %v trust %q, want false unverified", ev.ReportMessageID, ev.Trusted, ev.Trust)
		}
		if !ev.Counted {
			t.Errorf("forged abuse report %s: counted false (counted says what it is; trusted says whether it is evidence)", ev.ReportMessageID)
		}
		if ev.TraceMethod != schemas.TraceNone || ev.Customer != "" || ev.SourceIP != "" {
			t.Errorf("forged report %s traced by its own claims: trace %s customer %q ip %q", ev.ReportMessageID, ev.TraceMethod, ev.Customer, ev.SourceIP)
		}
	}
	if n := len(storedMsgs(t, js, "ALERT", "")); n != 0 {
		t.Errorf("%d alerts from forged reports, want none", n)
	}
	if got := counter(t, r.in.m.unmatched); got != 0 {
		t.Errorf("unmatched (trusted) complaints = %v, want 0", got)
	}
	if got := counter(t, r.in.m.complaints.WithLabelValues("abuse", "true", schemas.TraceNone, schemas.TrustUnverified)); got != 6 {
		t.Errorf("untrusted complaints counted %v, want 6", got)
	}
	// No DNS query was made for the attacker's key: only operators' keys
	// are looked up.
	if n := d.Queried("s2026._domainkey.attacker.example"); n != 0 {
		t.Errorf("the attacker's key was looked up %d times", n)
	}
}

// TestReplayedTrackingHeaderInForgedReportIsUntrusted: a recipient of a
// customer's genuine mail holds a valid tracking header. A report quoting
// it traces to the customer, but is not evidence unless its origin is.
func TestReplayedTrackingHeaderInForgedReportIsUntrusted(t *testing.T) {
	d := dkimtest.Start(t)
	js := startNATS(t)
	r := startIngester(t, trustConfig(d), js)
	msg := reportSpec{reportID: "replay", from: "x@attacker.example", sourceIP: "192.0.2.10", origID: "g1@sender.example",
		rcpt: "me@attacker.example", track: sign(t, "acme", "192.0.2.10", "m-replay"), headers: true}.build()
	if err := send(r.addr, "x@attacker.example", []string{"fbl@sender.example"}, msg); err != nil {
		t.Fatal(err)
	}
	evs := decode[schemas.ComplaintReceived](t, storedMsgs(t, js, "COMPLAINT", schemas.SubjectComplaintReceived))
	if len(evs) != 1 {
		t.Fatalf("%d complaints", len(evs))
	}
	if ev := evs[0]; ev.Customer != "acme" || ev.TraceMethod != schemas.TraceTrackingHeader || ev.Trusted {
		t.Errorf("customer %q trace %s trusted %v; want acme, tracking_header, untrusted", ev.Customer, ev.TraceMethod, ev.Trusted)
	}
}

// TestOperatorSignedReportIsTrusted: a report DKIM-signed by the configured
// operator is evidence, and its quoted header's d= traces it; with senders
// configured, the same signature on a report from another address is not
// enough. An operator's key that cannot be fetched now is a 451, not an
// untrusted report.
func TestOperatorSignedReportIsTrusted(t *testing.T) {
	d := dkimtest.Start(t)
	js := startNATS(t)
	cfg := trustConfig(d)
	cfg.Trust.Operators = append(cfg.Trust.Operators, Operator{DKIMDomain: "mail.provider.test", Senders: []string{"fbl@mail.provider.test"}})
	r := startIngester(t, cfg, js)
	operator := d.NewSigner(t, "fbl.provider.test")
	mailbox := d.NewSigner(t, "mail.provider.test")
	dkimLine := "DKIM-Signature: v=1; a=rsa-sha256; d=sender.example; s=s1; h=from; bh=x; b=y"

	genuine := operator.Sign(t, reportSpec{reportID: "g1", sourceIP: "192.0.2.10", origID: "o-g1@sender.example",
		rcpt: "reader@provider.test", origDKIM: dkimLine, headers: true}.build())
	if err := send(r.addr, "feedback@fbl.provider.test", []string{"fbl@sender.example"}, genuine); err != nil {
		t.Fatal(err)
	}
	// A user of the mailbox provider signs with the same d= as its FBL.
	user := mailbox.Sign(t, reportSpec{reportID: "u1", from: "someone@mail.provider.test", sourceIP: "192.0.2.10",
		origID: "o-u1@sender.example", rcpt: "reader@provider.test", origDKIM: dkimLine, headers: true}.build())
	if err := send(r.addr, "someone@mail.provider.test", []string{"fbl@sender.example"}, user); err != nil {
		t.Fatal(err)
	}
	fbl := mailbox.Sign(t, reportSpec{reportID: "f1", from: "fbl@mail.provider.test", sourceIP: "192.0.2.10",
		origID: "o-f1@sender.example", rcpt: "reader@provider.test", origDKIM: dkimLine, headers: true}.build())
	if err := send(r.addr, "fbl@mail.provider.test", []string{"fbl@sender.example"}, fbl); err != nil {
		t.Fatal(err)
	}
	byReport := map[string]*schemas.ComplaintReceived{}
	for _, ev := range decode[schemas.ComplaintReceived](t, storedMsgs(t, js, "COMPLAINT", schemas.SubjectComplaintReceived)) {
		byReport[ev.ReportMessageID] = ev
	}
	for id, want := range map[string]bool{"g1@fbl.provider.test": true, "u1@fbl.provider.test": false, "f1@fbl.provider.test": true} {
		ev := byReport[id]
		if ev == nil {
			t.Errorf("report %s not stored", id)
			continue
		}
		if ev.Trusted != want {
			t.Errorf("report %s: trusted %v (%s), want %v", id, ev.Trusted, ev.Trust, want)
		}
		if want && (ev.Trust != schemas.TrustOperatorDKIM || ev.Customer != "acme" || ev.TraceMethod != schemas.TraceDKIM || ev.SourceIP != "192.0.2.10") {
			t.Errorf("report %s: trust %s customer %q trace %s ip %q; want operator_dkim, acme by dkim, 192.0.2.10", id, ev.Trust, ev.Customer, ev.TraceMethod, ev.SourceIP)
		}
	}

	// The operator's DNS fails: the report is neither stored untrusted
	// nor lost, the sender is told to retry.
	d.FailFor(operator)
	again := operator.Sign(t, reportSpec{reportID: "g2", sourceIP: "192.0.2.10", origID: "o-g2@sender.example", rcpt: "r@provider.test", headers: true}.build())
	err := send(r.addr, "feedback@fbl.provider.test", []string{"fbl@sender.example"}, again)
	if code := smtpCode(err); code != 451 {
		t.Errorf("operator key lookup failing: %v, want 451", err)
	}
	if n := len(storedMsgs(t, js, "COMPLAINT", schemas.SubjectComplaintReceived)); n != 3 {
		t.Errorf("%d complaints after a failed key lookup, want 3", n)
	}
}

// TestOriginalDKIMTracesOnlyWhenItVerifies: when the original comes back
// in full, its d= traces only if its signature verifies (whoever sent the
// report); a made-up signature traces nothing.
func TestOriginalDKIMTracesOnlyWhenItVerifies(t *testing.T) {
	d := dkimtest.Start(t)
	js := startNATS(t)
	r := startIngester(t, trustConfig(d), js)
	customer := d.NewSigner(t, "sender.example")
	operator := d.NewSigner(t, "fbl.provider.test")

	signedOrig := customer.Sign(t, original("v1@sender.example", "reader@provider.test"))
	madeUp := append([]byte("DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=sender.example; s=s2026; h=from; bh=AAAA; b=AAAA\r\n"),
		original("v2@sender.example", "reader@provider.test")...)
	msgs := [][]byte{
		reportSpec{reportID: "body-ok", from: "x@attacker.example", sourceIP: "198.51.100.1", origFull: signedOrig, rcpt: "reader@provider.test"}.build(),
		operator.Sign(t, reportSpec{reportID: "body-bad", sourceIP: "198.51.100.1", origFull: madeUp, rcpt: "reader@provider.test"}.build()),
	}
	for _, m := range msgs {
		if err := send(r.addr, "x@example.test", []string{"fbl@sender.example"}, m); err != nil {
			t.Fatal(err)
		}
	}
	byReport := map[string]*schemas.ComplaintReceived{}
	for _, ev := range decode[schemas.ComplaintReceived](t, storedMsgs(t, js, "COMPLAINT", schemas.SubjectComplaintReceived)) {
		byReport[ev.ReportMessageID] = ev
	}
	if ev := byReport["body-ok@fbl.provider.test"]; ev == nil || ev.TraceMethod != schemas.TraceDKIM || ev.Customer != "acme" || ev.Trusted {
		t.Errorf("verified original in an untrusted report: %+v; want traced by dkim to acme, untrusted", ev)
	}
	if ev := byReport["body-bad@fbl.provider.test"]; ev == nil || ev.TraceMethod == schemas.TraceDKIM || !ev.Trusted {
		t.Errorf("made-up signature on the original of a trusted report: %+v; want trusted, not traced by dkim", ev)
	}
}

// TestReporterNetworkAndAuthenticatedUserAreTrusted: over SMTP, a report
// from a configured reporter network, or from a client that authenticated
// with AUTH PLAIN, is evidence; a wrong password is refused 535 and what
// the client then sends is not.
func TestReporterNetworkAndAuthenticatedUserAreTrusted(t *testing.T) {
	d := dkimtest.Start(t)
	js := startNATS(t)
	cfg := trustConfig(d)
	cfg.Trust.ReporterNetworks = []string{"127.0.0.0/8"}
	r := startIngester(t, cfg, js)
	msg := reportSpec{reportID: "net1", sourceIP: "192.0.2.10", origID: "n1@sender.example", rcpt: "a@provider.test", headers: true}.build()
	if err := send(r.addr, "a@provider.test", []string{"fbl@sender.example"}, msg); err != nil {
		t.Fatal(err)
	}
	evs := decode[schemas.ComplaintReceived](t, storedMsgs(t, js, "COMPLAINT", schemas.SubjectComplaintReceived))
	if len(evs) != 1 || !evs[0].Trusted || evs[0].Trust != schemas.TrustReporterNetwork {
		t.Fatalf("report from a reporter network: %+v", evs)
	}

	js2 := startNATS(t)
	cfg = trustConfig(d)
	cfg.Trust.SMTPUsers = []SMTPUser{{Username: "mx1", Password: "s3cret-pass"}}
	r2 := startIngester(t, cfg, js2)
	authSend := func(user, pass, id string) error {
		c, err := dialSMTP(r2.addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
			return err
		}
		if err := c.SendMail("a@provider.test", []string{"fbl@sender.example"}, bytes.NewReader(reportSpec{reportID: id, sourceIP: "192.0.2.10",
			origID: id + "@sender.example", rcpt: "a@provider.test", headers: true}.build())); err != nil {
			return err
		}
		return c.Quit()
	}
	if err := authSend("mx1", "wrong", "bad-auth"); smtpCode(err) != 535 {
		t.Errorf("wrong password: %v, want 535", err)
	}
	if err := authSend("mx1", "s3cret-pass", "good-auth"); err != nil {
		t.Fatalf("authenticated send: %v", err)
	}
	if err := send(r2.addr, "a@provider.test", []string{"fbl@sender.example"}, reportSpec{reportID: "anon", sourceIP: "192.0.2.10",
		origID: "anon@sender.example", rcpt: "a@provider.test", headers: true}.build()); err != nil {
		t.Fatal(err)
	}
	byReport := map[string]*schemas.ComplaintReceived{}
	for _, ev := range decode[schemas.ComplaintReceived](t, storedMsgs(t, js2, "COMPLAINT", schemas.SubjectComplaintReceived)) {
		byReport[ev.ReportMessageID] = ev
	}
	if len(byReport) != 2 {
		t.Errorf("%d complaints, want 2 (the failed login sent nothing)", len(byReport))
	}
	if ev := byReport["good-auth@fbl.provider.test"]; ev == nil || !ev.Trusted || ev.Trust != schemas.TrustSMTPAuth {
		t.Errorf("authenticated report: %+v", ev)
	}
	if ev := byReport["anon@fbl.provider.test"]; ev == nil || ev.Trusted {
		t.Errorf("unauthenticated report: %+v", ev)
	}
	if got := counter(t, r2.in.m.authFailed); got != 1 {
		t.Errorf("auth failures counted %v, want 1", got)
	}
}

// TestAuthNeedsTLSOffLoopback: users without TLS on a listener that is not
// on loopback are refused by Validate (the password would cross the
// network in clear).
func TestAuthNeedsTLSOffLoopback(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SMTP.Listen = "0.0.0.0:2525"
	cfg.Trust.SMTPUsers = []SMTPUser{{Username: "mx1", Password: "p"}}
	if err := cfg.Validate(); err == nil {
		t.Fatal("AUTH users on a public listener without TLS accepted")
	}
	cfg.SMTP.Listen = "127.0.0.1:2525"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("loopback listener with users: %v", err)
	}
}

// TestTrustedInputs: an IMAP account or directory marked trusted makes its
// reports evidence; an unmarked one does not.
func TestTrustedInputs(t *testing.T) {
	d := dkimtest.Start(t)
	js := startNATS(t)
	cfg := trustConfig(d)
	cfg.SMTP.Listen = ""
	r := startIngester(t, cfg, js)
	r.stop()
	for i, trusted := range []bool{false, true} {
		dir := t.TempDir()
		msg := reportSpec{reportID: fmt.Sprintf("dir-%d", i), sourceIP: "192.0.2.10", origID: fmt.Sprintf("d%d@sender.example", i), rcpt: "a@provider.test", headers: true}.build()
		if err := os.WriteFile(filepath.Join(dir, "1.eml"), msg, 0o640); err != nil {
			t.Fatal(err)
		}
		if n, err := r.in.ImportDir(context.Background(), dir, trusted); err != nil || n != 1 {
			t.Fatalf("import: %d, %v", n, err)
		}
	}
	addr, u := startIMAP(t)
	for i, trusted := range []bool{false, true} {
		deliver(t, u, reportSpec{reportID: fmt.Sprintf("imap-%d", i), sourceIP: "192.0.2.10", origID: fmt.Sprintf("i%d@sender.example", i), rcpt: "a@provider.test", headers: true}.build())
		acct := IMAPAccount{Name: "fbl", Addr: addr, TLS: tlsNone, Username: "fbl@sender.example", Password: "secret", Trusted: trusted}
		if n, err := r.in.pullIMAP(context.Background(), acct); err != nil || n != 1 {
			t.Fatalf("pull: %d, %v", n, err)
		}
	}
	want := map[string]bool{"dir-0@fbl.provider.test": false, "dir-1@fbl.provider.test": true, "imap-0@fbl.provider.test": false, "imap-1@fbl.provider.test": true}
	evs := decode[schemas.ComplaintReceived](t, storedMsgs(t, js, "COMPLAINT", schemas.SubjectComplaintReceived))
	if len(evs) != len(want) {
		t.Fatalf("%d complaints, want %d", len(evs), len(want))
	}
	for _, ev := range evs {
		if w, ok := want[ev.ReportMessageID]; !ok || ev.Trusted != w || (w && ev.Trust != schemas.TrustTrustedInput) {
			t.Errorf("%s via %s: trusted %v (%s), want %v", ev.ReportMessageID, ev.ReceivedVia, ev.Trusted, ev.Trust, w)
		}
	}
}

// TestSameComplaintTwiceIsOneEvent: one complaint (same original and
// recipient) reported twice, under two report Message-IDs and through two
// inputs, is one event; a forged report about the same message sent first
// does not take the genuine one's id.
func TestSameComplaintTwiceIsOneEvent(t *testing.T) {
	d := dkimtest.Start(t)
	js := startNATS(t)
	r := startIngester(t, trustConfig(d), js)
	operator := d.NewSigner(t, "fbl.provider.test")
	arrival := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	spec := reportSpec{sourceIP: "192.0.2.10", origID: "dup@sender.example", rcpt: "reader@provider.test", headers: true, arrival: arrival,
		origDKIM: "DKIM-Signature: v=1; a=rsa-sha256; d=sender.example; s=s1; h=from; bh=x; b=y"}

	forged := spec
	forged.reportID, forged.from = "forged-first", "x@attacker.example"
	if err := send(r.addr, "x@attacker.example", []string{"fbl@sender.example"}, forged.build()); err != nil {
		t.Fatal(err)
	}
	first := spec
	first.reportID = "first"
	if err := send(r.addr, "feedback@fbl.provider.test", []string{"fbl@sender.example"}, operator.Sign(t, first.build())); err != nil {
		t.Fatal(err)
	}
	second := spec
	second.reportID = "second"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "again.eml"), operator.Sign(t, second.build()), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := r.in.ImportFile(context.Background(), filepath.Join(dir, "again.eml"), false); err != nil {
		t.Fatal(err)
	}
	evs := decode[schemas.ComplaintReceived](t, storedMsgs(t, js, "COMPLAINT", schemas.SubjectComplaintReceived))
	var trusted []*schemas.ComplaintReceived
	for _, ev := range evs {
		if ev.Trusted {
			trusted = append(trusted, ev)
		}
	}
	if len(evs) != 2 || len(trusted) != 1 {
		t.Fatalf("%d complaints (%d trusted), want 2: the forged one and one genuine", len(evs), len(trusted))
	}
	if g := trusted[0]; g.ReportMessageID != "first@fbl.provider.test" || !g.Time.Equal(arrival) {
		t.Errorf("genuine complaint: report %s time %s; want the first report, at its Arrival-Date %s", g.ReportMessageID, g.Time, arrival)
	}
}

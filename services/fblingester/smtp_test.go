package fblingester

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/bus"
)

func TestComplaintTracedByVerifiedHeader(t *testing.T) {
	js := startNATS(t)
	r := startIngester(t, testConfig(), js)
	track := sign(t, "acme", "192.0.2.10", "m-0001")
	if err := send(r.addr, "feedback@arf.mail.yahoo.com", []string{"FBL@sender.example"}, arfReport("r1", "abuse", "192.0.2.10", track)); err != nil {
		t.Fatalf("send: %v", err)
	}
	// 250 came back, so the event must already be stored: no waiting.
	evs := decode[schemas.ComplaintReceived](t, storedMsgs(t, js, "COMPLAINT", schemas.SubjectComplaintReceived))
	if len(evs) != 1 {
		t.Fatalf("%d complaints stored right after 250, want 1", len(evs))
	}
	ev := evs[0]
	if ev.TraceMethod != schemas.TraceTrackingHeader || ev.Customer != "acme" || ev.SourceIP != "192.0.2.10" || ev.TrackingID != "m-0001" {
		t.Errorf("trace = %s customer %q ip %q tracking %q, want tracking_header acme 192.0.2.10 m-0001", ev.TraceMethod, ev.Customer, ev.SourceIP, ev.TrackingID)
	}
	if !ev.Counted || ev.FeedbackType != "abuse" || ev.Provider != "yahoo" || ev.ReceivedVia != schemas.ReceivedViaSMTP || ev.Format != "arf" {
		t.Errorf("counted %v type %q provider %q via %q format %q", ev.Counted, ev.FeedbackType, ev.Provider, ev.ReceivedVia, ev.Format)
	}
	if ev.OriginalMessageID != "orig-r1@sender.example" || !strings.Contains(ev.HeadersExcerpt, "X-Mailmon-Track:") || len(ev.HeadersExcerpt) > maxExcerpt {
		t.Errorf("original id %q, excerpt %q", ev.OriginalMessageID, ev.HeadersExcerpt)
	}
	if got := counter(t, r.in.m.tracking.WithLabelValues(trackValid)); got != 1 {
		t.Errorf("valid tracking headers = %v, want 1", got)
	}
}

func TestTamperedHeaderIsUntracedAndCounted(t *testing.T) {
	js := startNATS(t)
	cfg := testConfig()
	cfg.Trust.ReporterNetworks = []string{"127.0.0.0/8"} // the reports are evidence
	r := startIngester(t, cfg, js)
	track := sign(t, "acme", "192.0.2.10", "m-0002")
	tampered := strings.Replace(track, "acme", "evil", 1)
	if tampered == track {
		t.Fatal("test header does not name the customer")
	}
	// The Source-IP is not one of our networks, so nothing else traces it.
	if err := send(r.addr, "feedback@arf.mail.yahoo.com", []string{"fbl@sender.example"}, arfReport("r2", "abuse", "198.51.100.9", tampered)); err != nil {
		t.Fatalf("send: %v", err)
	}
	evs := decode[schemas.ComplaintReceived](t, storedMsgs(t, js, "COMPLAINT", schemas.SubjectComplaintReceived))
	if len(evs) != 1 {
		t.Fatalf("%d complaints, want 1", len(evs))
	}
	if ev := evs[0]; ev.TraceMethod != schemas.TraceNone || ev.Customer != "" || ev.TrackingID != "" || !ev.Counted {
		t.Errorf("tampered header: trace %s customer %q tracking %q counted %v; want none, nothing, counted", ev.TraceMethod, ev.Customer, ev.TrackingID, ev.Counted)
	}
	if got := counter(t, r.in.m.unmatched); got != 1 {
		t.Errorf("unmatched complaints = %v, want 1", got)
	}
	if got := counter(t, r.in.m.tracking.WithLabelValues(trackInvalid)); got != 1 {
		t.Errorf("invalid tracking headers = %v, want 1", got)
	}
	// A second untraced complaint reaches min_complaints (2) with a share
	// of 100 % > 50 %: one alert fires.
	if err := send(r.addr, "feedback@arf.mail.yahoo.com", []string{"fbl@sender.example"}, arfReport("r3", "abuse", "198.51.100.9", "")); err != nil {
		t.Fatalf("send: %v", err)
	}
	alerts := decode[schemas.AlertRaised](t, waitCount(t, js, "ALERT", schemas.SubjectAlertRaised, 1))
	if a := alerts[0]; a.Rule != alertRule || a.Status != schemas.AlertFiring {
		t.Errorf("alert %s %s, want %s firing", a.Rule, a.Status, alertRule)
	}
	// Traced complaints bring the share to 2/4 = 50 %, not above: resolved.
	for _, id := range []string{"r4", "r5"} {
		if err := send(r.addr, "feedback@arf.mail.yahoo.com", []string{"fbl@sender.example"}, arfReport(id, "abuse", "192.0.2.10", sign(t, "acme", "192.0.2.10", id))); err != nil {
			t.Fatal(err)
		}
	}
	alerts = decode[schemas.AlertRaised](t, waitCount(t, js, "ALERT", schemas.SubjectAlertRaised, 2))
	if alerts[1].Status != schemas.AlertResolved {
		t.Errorf("second alert %s, want resolved", alerts[1].Status)
	}
}

func TestFeedbackTypes(t *testing.T) {
	js := startNATS(t)
	r := startIngester(t, testConfig(), js)
	track := sign(t, "acme", "192.0.2.10", "m-3")
	for _, ft := range []string{"not-spam", "opt-out", "fraud", "auth-failure"} {
		if err := send(r.addr, "x@yahoo.com", []string{"fbl@sender.example"}, arfReport("t-"+ft, ft, "192.0.2.10", track)); err != nil {
			t.Fatalf("%s: %v", ft, err)
		}
	}
	evs := decode[schemas.ComplaintReceived](t, storedMsgs(t, js, "COMPLAINT", schemas.SubjectComplaintReceived))
	if len(evs) != 3 {
		t.Fatalf("%d complaint events, want 3 (auth-failure is not a complaint)", len(evs))
	}
	for _, ev := range evs {
		if ev.Counted {
			t.Errorf("%s counted as a complaint (count_fraud is off)", ev.FeedbackType)
		}
	}
	afs := decode[schemas.AuthFailureReceived](t, storedMsgs(t, js, "AUTHFAILURE", schemas.SubjectAuthFailureReceived))
	if len(afs) != 1 {
		t.Fatalf("%d auth-failure events, want 1", len(afs))
	}
	if af := afs[0]; af.AuthFailure != "dkim" || af.DeliveryResult != "spam" || af.DKIMSelector != "s2024" || af.Customer != "acme" {
		t.Errorf("auth failure event %+v", af)
	}
}

func TestDSNOneBouncePerFailedRecipient(t *testing.T) {
	js := startNATS(t)
	r := startIngester(t, testConfig(), js)
	msg := dsnBounce("b1", sign(t, "acme", "192.0.2.11", "m-b1"))
	if err := send(r.addr, "", []string{"bounce-1@bounces.sender.example"}, msg); err != nil {
		t.Fatalf("send: %v", err)
	}
	evs := decode[schemas.BounceReceived](t, storedMsgs(t, js, "BOUNCE", schemas.SubjectBounceReceived))
	if len(evs) != 2 {
		t.Fatalf("%d bounces, want 2", len(evs))
	}
	want := map[string]struct{ status, category, provider string }{
		"gone@gmail.com":    {"5.1.1", "user_unknown", "gmail"},
		"someone@yahoo.com": {"5.7.9", "", "yahoo"},
	}
	for _, ev := range evs {
		w, ok := want[ev.Recipient]
		if !ok {
			t.Errorf("unexpected recipient %q", ev.Recipient)
			continue
		}
		if ev.Reason == "" || ev.Category == "" || ev.Action != "failed" {
			t.Errorf("%s: reason %q category %q action %q", ev.Recipient, ev.Reason, ev.Category, ev.Action)
		}
		if w.category != "" && ev.Category != w.category {
			t.Errorf("%s: category %q, want %q", ev.Recipient, ev.Category, w.category)
		}
		if ev.Provider != w.provider || ev.Customer != "acme" || ev.SourceIP != "192.0.2.11" || ev.TraceMethod != schemas.TraceTrackingHeader {
			t.Errorf("%s: provider %q customer %q ip %q trace %s", ev.Recipient, ev.Provider, ev.Customer, ev.SourceIP, ev.TraceMethod)
		}
		t.Logf("%s: status %s reason %s category %s reply %d", ev.Recipient, ev.Status, ev.Reason, ev.Category, ev.ReplyCode)
	}
	if evs[0].ID == evs[1].ID {
		t.Error("two recipients share an event id")
	}
}

func TestAutoReplyPublishesNothing(t *testing.T) {
	js := startNATS(t)
	r := startIngester(t, testConfig(), js)
	msg := []byte("From: alice@example.org\r\nTo: bounce-1@bounces.sender.example\r\nSubject: Out of office: Summer sale\r\n" +
		"Auto-Submitted: auto-replied\r\nMessage-ID: <ooo1@example.org>\r\nDate: Mon, 10 Jun 2024 12:00:00 +0000\r\n\r\n" +
		"I am out of the office until Monday and will read your message when I return.\r\n")
	if err := send(r.addr, "", []string{"bounce-1@bounces.sender.example"}, msg); err != nil {
		t.Fatalf("send: %v", err)
	}
	for _, s := range []string{"COMPLAINT", "BOUNCE", "AUTHFAILURE", "DLQ"} {
		if n := len(storedMsgs(t, js, s, "")); n != 0 {
			t.Errorf("%s holds %d messages after an auto-reply", s, n)
		}
	}
	if got := counter(t, r.in.m.messages.WithLabelValues(schemas.ReceivedViaSMTP, outcomeAutoReply)); got != 1 {
		t.Errorf("auto replies counted %v, want 1", got)
	}
}

func TestGarbageIsDeadLetteredAnd250(t *testing.T) {
	js := startNATS(t)
	r := startIngester(t, testConfig(), js)
	msg := []byte("From: someone@example.org\r\nTo: fbl@sender.example\r\nSubject: hello\r\nMessage-ID: <g1@example.org>\r\n\r\nJust a note, nothing automatic here.\r\n")
	if err := send(r.addr, "someone@example.org", []string{"fbl@sender.example"}, msg); err != nil {
		t.Fatalf("send: %v (a message no parser understands is still accepted)", err)
	}
	dl := storedMsgs(t, js, "DLQ", bus.DeadLetterSubject(WorkerName))
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	if !bytes.Equal(dl[0].Data, msg) {
		t.Error("dead letter is not the message as received")
	}
	if reason := dl[0].Header.Get(bus.HeaderDeadLetterReason); !strings.Contains(reason, "neither a feedback report") {
		t.Errorf("reason %q", reason)
	}
	if got := counter(t, r.in.m.deadLettered.WithLabelValues(schemas.ReceivedViaSMTP)); got != 1 {
		t.Errorf("dead letters counted %v, want 1", got)
	}
}

func TestRelayRefused(t *testing.T) {
	js := startNATS(t)
	r := startIngester(t, testConfig(), js)
	for _, rcpt := range []string{"victim@example.com", "fbl@sender.example.evil.test", "fbl@sub.bounces.sender.example"} {
		err := send(r.addr, "spammer@example.com", []string{rcpt}, arfReport("x", "abuse", "192.0.2.1", ""))
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 1}) {
			t.Errorf("RCPT %s: %v, want 550 5.7.1", rcpt, err)
		}
	}
	if n := len(storedMsgs(t, js, "COMPLAINT", "")); n != 0 {
		t.Errorf("%d complaints stored from relay attempts", n)
	}
}

func TestLimits(t *testing.T) {
	js := startNATS(t)
	r := startIngester(t, testConfig(), js)
	big := append(arfReport("big", "abuse", "192.0.2.1", ""), bytes.Repeat([]byte("filler line of the oversized report\r\n"), 2000)...)
	err := send(r.addr, "a@yahoo.com", []string{"fbl@sender.example"}, big)
	if code := smtpCode(err); code != 552 {
		t.Errorf("oversized message: %v (code %d), want 552", err, code)
	}
	err = send(r.addr, "a@yahoo.com", []string{"a@bounces.sender.example", "b@bounces.sender.example", "c@bounces.sender.example", "d@bounces.sender.example"}, arfReport("many", "abuse", "192.0.2.1", ""))
	if code := smtpCode(err); code != 452 {
		t.Errorf("4 recipients with max_recipients 3: %v, want 452", err)
	}
	if n := len(storedMsgs(t, js, "COMPLAINT", "")); n != 0 {
		t.Errorf("%d complaints stored past the limits", n)
	}
}

func TestConnectionLimit(t *testing.T) {
	js := startNATS(t)
	cfg := testConfig()
	cfg.SMTP.MaxConnections = 1
	r := startIngester(t, cfg, js)
	first, err := dialSMTP(r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := dialSMTP(r.addr)
	if err == nil {
		second.Close()
		t.Fatal("a second connection over max_connections 1 was served")
	}
	if smtpCode(err) != 421 {
		t.Errorf("second connection: %v, want 421", err)
	}
}

package fblingester

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mailmon/mailmon/pipelines"
	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/schemas/tracking"
	"github.com/mailmon/mailmon/services/internal/bus"
	"github.com/mailmon/mailmon/services/internal/natstest"
	"github.com/mailmon/mailmon/services/internal/worker"
)

var testRing = tracking.Keyring{Current: tracking.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}}

func applyTopology(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	top, err := pipelines.Default()
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Apply(context.Background(), js, pipelines.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
}

func startNATS(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, _, js := natstest.Start(t)
	applyTopology(t, js)
	return js
}

// testConfig listens on a free loopback port for fbl@sender.example and
// any address at bounces.sender.example.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.SMTP.Listen = "127.0.0.1:0"
	cfg.SMTP.Addresses = []string{"fbl@sender.example"}
	cfg.SMTP.Domains = []string{"bounces.sender.example"}
	cfg.SMTP.MaxRecipients = 3
	cfg.MaxMessageBytes = 64 << 10
	cfg.PublishTimeout = 10e9
	cfg.DrainTimeout = 5e9
	cfg.Trace.SourceNetworks = []string{"192.0.2.0/24"}
	cfg.UnmatchedAlert.MinComplaints = 2
	cfg.UnmatchedAlert.Threshold = 0.5
	return cfg
}

type running struct {
	in   *Ingester
	reg  *prometheus.Registry
	addr string
	stop func()
}

// startIngester builds and runs an ingester; stop cancels it and checks
// Run returned nil.
func startIngester(t *testing.T, cfg Config, js jetstream.JetStream) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	in, err := New(cfg, worker.Settings{JetStream: js, Metrics: reg, Source: schemas.Source{Worker: WorkerName, Host: "test"}, Tracking: worker.Tracking{Keyring: &testRing}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	addr := in.Addr(wctx)
	r := &running{in: in, reg: reg, addr: addr}
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}
	t.Cleanup(r.stop)
	return r
}

// send delivers one message over SMTP and returns the server's answer to
// the first command that failed, or nil when DATA was accepted.
func send(addr, from string, rcpts []string, msg []byte) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func smtpCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// storedMsgs returns every message of a stream on a subject.
func storedMsgs(t *testing.T, js jetstream.JetStream, stream, subject string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		if subject == "" || m.Subject == subject {
			out = append(out, m)
		}
	}
	return out
}

func decode[E any](t *testing.T, msgs []*jetstream.RawStreamMsg) []*E {
	t.Helper()
	var out []*E
	for _, m := range msgs {
		ev := new(E)
		if err := json.Unmarshal(m.Data, ev); err != nil {
			t.Fatalf("decode %s: %v", m.Subject, err)
		}
		if err := schemas.Validate(any(ev).(schemas.Event)); err != nil {
			t.Errorf("stored event does not follow the contract: %v", err)
		}
		out = append(out, ev)
	}
	return out
}

// waitCount polls until n messages are on subject.
func waitCount(t *testing.T, js jetstream.JetStream, stream, subject string, n int) []*jetstream.RawStreamMsg {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := storedMsgs(t, js, stream, subject)
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				t.Fatalf("%s: %d messages, want %d", subject, len(got), n)
			}
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// counter reads the value of a single counter or gauge.
func counter(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// sign returns a valid tracking header value.
func sign(t *testing.T, customer, source, id string) string {
	t.Helper()
	v, err := testRing.Sign(tracking.Fields{Customer: customer, Source: source, MessageID: id, Time: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// arfReport builds an ARF report about one of our messages, as a provider
// sends it; track is the X-Mailmon-Track value in the original ("" for
// none).
func arfReport(reportID, feedbackType, sourceIP, track string) []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	w("From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>")
	w("To: fbl@sender.example")
	w("Subject: FW: Summer sale")
	w("Date: Mon, 10 Jun 2024 12:04:59 +0000")
	w("Message-ID: <%s@arf.mail.yahoo.com>", reportID)
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=feedback-report; boundary=\"BOUND\"")
	w("")
	w("--BOUND")
	w("Content-Type: text/plain")
	w("")
	w("This is an email abuse report for an email message received from IP %s.", sourceIP)
	w("")
	w("--BOUND")
	w("Content-Type: message/feedback-report")
	w("")
	w("Feedback-Type: %s", feedbackType)
	w("User-Agent: Yahoo!-Mail-Feedback/2.0")
	w("Version: 1")
	w("Original-Mail-From: <bounce-123@sender.example>")
	w("Original-Rcpt-To: <redacted@yahoo.com>")
	w("Arrival-Date: Mon, 10 Jun 2024 11:58:12 +0000")
	w("Reporting-MTA: dns; mta1012.mail.yahoo.com")
	w("Source-IP: %s", sourceIP)
	w("Reported-Domain: sender.example")
	if feedbackType == "auth-failure" {
		w("Auth-Failure: dkim")
		w("Delivery-Result: spam")
		w("DKIM-Domain: sender.example")
		w("DKIM-Selector: s2024")
	}
	w("")
	w("--BOUND")
	w("Content-Type: message/rfc822")
	w("")
	w("Received: from out1.sender.example ([%s]) by mta1012.mail.yahoo.com; Mon, 10 Jun 2024 11:58:12 +0000", sourceIP)
	w("DKIM-Signature: v=1; a=rsa-sha256; d=other.example; s=s1; h=from; bh=x; b=y")
	if track != "" {
		w("X-Mailmon-Track: %s", track)
	}
	w("From: \"Acme Shop\" <news@sender.example>")
	w("To: redacted@yahoo.com")
	w("Subject: Summer sale")
	w("Date: Mon, 10 Jun 2024 11:58:10 +0000")
	w("Message-ID: <orig-%s@sender.example>", reportID)
	w("")
	w("Everything must go.")
	w("--BOUND--")
	return []byte(b.String())
}

// dsnBounce is a Postfix DSN for two failed recipients of one of our
// messages.
func dsnBounce(id, track string) []byte {
	return []byte("From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n" +
		"To: bounce-1@bounces.sender.example\r\n" +
		"Subject: Undelivered Mail Returned to Sender\r\n" +
		"Date: Mon, 10 Jun 2024 12:00:00 +0000\r\n" +
		"Message-ID: <" + id + "@mx.example.org>\r\n" +
		"Auto-Submitted: auto-replied\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B1\"\r\n" +
		"\r\n--B1\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients.\r\n" +
		"\r\n--B1\r\nContent-Type: message/delivery-status\r\n\r\n" +
		"Reporting-MTA: dns; mx.example.org\r\nArrival-Date: Mon, 10 Jun 2024 11:59:58 +0000\r\n\r\n" +
		"Final-Recipient: rfc822; gone@gmail.com\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; gmail-smtp-in.l.google.com\r\n" +
		"Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does not exist.\r\n\r\n" +
		"Final-Recipient: rfc822; someone@yahoo.com\r\nAction: failed\r\nStatus: 5.7.1\r\nRemote-MTA: dns; mta5.am0.yahoodns.net\r\n" +
		"Diagnostic-Code: smtp; 554 5.7.9 Message not accepted for policy reasons. See https://postmaster.yahooinc.com/error-codes\r\n" +
		"\r\n--B1\r\nContent-Type: text/rfc822-headers\r\n\r\n" +
		"From: news@sender.example\r\nTo: gone@gmail.com\r\nSubject: Summer sale\r\nMessage-ID: <m1@sender.example>\r\n" +
		"X-Mailmon-Track: " + track + "\r\n" +
		"\r\n--B1--\r\n")
}

var _ = bus.DeadLetterSubject

func dialSMTP(addr string) (*smtp.Client, error) {
	c, err := smtp.Dial(addr)
	if err != nil {
		return nil, err
	}
	if err := c.Hello("client.test"); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

package mtalogtailer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/schemas/tracking"
	"github.com/mailmon/mailmon/services/internal/peertest"
	"github.com/mailmon/mailmon/services/internal/testwait"
	"github.com/mailmon/mailmon/services/mtalogtailer"
	"github.com/mailmon/mailmon/services/peers"
)

// TestRealPostfix runs Debian's Postfix, logging to its own file
// (maillog_file) and relaying everything to a go-smtp server that answers
// like the big providers do, and follows Postfix's log with the tailer.
// Halfway the tailer is killed without draining, and the log is rotated
// twice (postfix logrotate, then copytruncate) while it is down and after
// it restarted. Every delivery attempt Postfix logged must be in the
// stream exactly once, classified.
func TestRealPostfix(t *testing.T) {
	if err := peers.CheckPostfix(); err != nil {
		peertest.Unavailable(t, "%v", err)
	}
	mx := startFakeMX(t)
	pf := startPostfix(t, mx.port)
	js := startBus(t)

	cfg := testConfig(pf.Maillog)
	cfg.Files[0].RotatedGlobs = []string{pf.Maillog + ".*"}
	cfg.TimeZone = "Local" // postlogd writes local time
	cfg.TrackingHeader = tracking.HeaderName
	run := startTailer(t, js, cfg, mtalogtailer.SimulateCrashes)

	// Each recipient's local part tells the fake MX how to answer.
	sent := map[string]string{} // recipient → expected final status
	send := func(round int) {
		for _, r := range []struct{ local, domain, status string }{
			{"ok", "gmail.com", "sent"},
			{"rate", "gmail.com", "deferred"},
			{"block", "example.net", "bounced"},
			{"unknown", "outlook.com", "bounced"},
		} {
			rcpt := fmt.Sprintf("%s-%d@%s", r.local, round, r.domain)
			pf.send(t, rcpt, fmt.Sprintf("m-%d-%s", round, r.local))
			sent[rcpt] = r.status
		}
	}
	for round := range 3 {
		send(round)
	}
	testwait.Eventually(t, 30*time.Second, "the first rounds' events", func() bool { return streamCount(t, js, "DELIVERY") >= 12 })
	// A first start has no checkpoint and treats rotated files as history;
	// the crash below must come after the first checkpoint, as it would in
	// production after the first commit interval.
	offsets, err := js.KeyValue(context.Background(), mtalogtailer.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, 30*time.Second, "the first checkpoint", func() bool {
		keys, err := offsets.Keys(context.Background())
		return err == nil && len(keys) > 0
	})

	// Killed, and the log rotated while it is down.
	run.stop(t)
	for round := 3; round < 5; round++ {
		send(round)
	}
	pf.waitLog(t, "status=", 20)
	pf.logrotate(t)
	// The follower knows a file by its first line. Postfix stamps lines to
	// the second, an idle smtpd even with the time of its previous event,
	// so the log refilled after the copytruncate below can start with the
	// very line this one would start with ("connect from localhost" by the
	// same smtpd, same stamp), and both would be one file. In production a
	// log is truncated hours after it began; here it begins with a line of
	// its own.
	pf.logLine(t, fmt.Sprintf("log begun %d", time.Now().UnixNano()))
	send(5)
	run = startTailer(t, js, cfg)
	pf.waitLog(t, "status=", 24)
	pf.copytruncate(t)
	send(6)
	pf.waitLog(t, "status=", 28)
	// The counts above include Postfix's retries of the deferred
	// recipients, so on a slow machine they can be reached before the last
	// round is logged: wait for every recipient's own attempt too.
	for rcpt := range sent {
		pf.waitLog(t, "to=<"+rcpt+">", 1)
	}

	// Stop Postfix, so no retry adds attempts while we count.
	pf.stop(t)
	want := pf.deliveryLines(t)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got := streamCount(t, js, "DELIVERY")
		if got >= uint64(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %d of the %d delivery attempts in Postfix's logs (%v) reached the stream", got, want, pf.logFiles(t))
		}
	}
	run.stop(t)

	events := streamEvents(t, js)
	byID := map[string]bool{}
	final := map[string]*schemas.DeliveryAttempted{}
	for _, ev := range events {
		if byID[ev.ID] {
			t.Errorf("event %s stored twice", ev.ID)
		}
		byID[ev.ID] = true
		if prev := final[ev.Recipient]; prev == nil || ev.Status != schemas.StatusDeferred {
			final[ev.Recipient] = ev
		}
	}
	if len(events) != want {
		t.Errorf("%d events stored, Postfix logged %d delivery attempts", len(events), want)
	}
	for rcpt, status := range sent {
		ev := final[rcpt]
		if ev == nil {
			t.Errorf("no event for %s", rcpt)
			continue
		}
		local := rcpt[:strings.IndexByte(rcpt, '-')]
		var reason, category, signature, provider string
		switch local {
		case "ok":
			reason, provider = "delivered", "gmail"
		case "rate":
			reason, category, signature, provider = "blocked", "blocked_ip_or_blocklist", "gmail-4.7.28", "gmail"
		case "block":
			reason, category, signature = "blocked", "blocked_ip_or_blocklist", "spamhaus"
		case "unknown":
			reason, category, provider = "userunknown", "user_unknown", "outlook"
		}
		if ev.Status != status || ev.Reason != reason || (category != "" && ev.Category != category) || ev.Signature != signature || ev.Provider != provider {
			t.Errorf("%s: status %s reason %s category %s signature %q provider %q; want %s %s %s %q %q (reply %q)",
				rcpt, ev.Status, ev.Reason, ev.Category, ev.Signature, ev.Provider, status, reason, category, signature, provider, ev.Reply)
		}
		if ev.TrackingStatus != schemas.TrackingValid || ev.Customer != "acme" || ev.SourceIP != "192.0.2.9" || ev.RelayIP != "127.0.0.1" ||
			ev.MTA != "postfix" || ev.MTAInstance != "postfix-192.0.2.9/smtp" || ev.QueueID == "" || ev.MessageID == "" || ev.DelayMs < 0 {
			t.Errorf("%s: tracking %s customer %q source ip %q relay %q instance %q queue %q message-id %q delay %d",
				rcpt, ev.TrackingStatus, ev.Customer, ev.SourceIP, ev.RelayIP, ev.MTAInstance, ev.QueueID, ev.MessageID, ev.DelayMs)
		}
	}
	t.Logf("%d delivery attempts logged by Postfix across %d files, %d events stored", want, len(pf.logFiles(t)), len(events))
}

// fakeMX answers RCPT by the recipient's local part: "rate-" with Gmail's
// rate limit, "block-" with a Spamhaus listing, "unknown-" with a user
// unknown; anything else is accepted.
type fakeMX struct {
	port int
}

func startFakeMX(t *testing.T) *fakeMX {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(mxBackend{})
	srv.Domain = "mx.provider.test"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &fakeMX{port: ln.Addr().(*net.TCPAddr).Port}
}

type mxBackend struct{}

func (mxBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &mxSession{}, nil }

type mxSession struct{ accepted int }

func (*mxSession) Reset()                               {}
func (*mxSession) Logout() error                        { return nil }
func (*mxSession) Mail(string, *smtp.MailOptions) error { return nil }

func (s *mxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	switch {
	case strings.HasPrefix(to, "rate-"):
		return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 7, 28},
			Message: "Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. a1si1234 - gsmtp"}
	case strings.HasPrefix(to, "block-"):
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
			Message: "Service unavailable; Client host [127.0.0.1] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/127.0.0.1"}
	case strings.HasPrefix(to, "unknown-"):
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message: "Requested action not taken: mailbox unavailable (S2017062302)."}
	}
	s.accepted++
	return nil
}

func (*mxSession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// postfix is a private Postfix instance (services/peers) with the test's
// ways to send through it and to rotate and count its log.
type postfix struct{ *peers.Postfix }

// startPostfix runs Postfix relaying everything to the fake MX at
// relayPort, logging under the syslog_name of a multi-instance host (the
// tailer derives the MTA instance from it), warning in the log about each
// message's tracking header, and rotating its log by `postfix logrotate`
// into files that stay readable (the compressor does nothing).
func startPostfix(t *testing.T, relayPort int) *postfix {
	t.Helper()
	pp, err := peers.StartPostfix(t.Context(), peers.PostfixConfig{
		Main: map[string]string{
			"maillog_file_compressor":    "/bin/true",
			"maillog_file_rotate_suffix": "%Y%m%d-%H%M%S",
			"syslog_name":                "postfix-192.0.2.9",
			"relayhost":                  fmt.Sprintf("[127.0.0.1]:%d", relayPort),
			"header_checks":              "regexp:$config_directory/header_checks",
		},
		Files: map[string]string{"header_checks": "/^" + tracking.HeaderName + ":/ WARN\n"},
	})
	if err != nil {
		t.Fatal(err)
	}
	pf := &postfix{pp}
	t.Cleanup(func() {
		pf.stop(t)
		_ = pf.Close()
	})
	return pf
}

// stop stops Postfix by its master's pid; the first call does it, so the
// test may stop it before its cleanup does.
func (p *postfix) stop(t *testing.T) {
	if err := p.Stop(); err != nil {
		t.Error(err)
	}
}

// send submits one message from the null sender (no bounce messages to
// follow) with a signed tracking header.
func (p *postfix) send(t *testing.T, rcpt, msgID string) {
	t.Helper()
	header, err := testKeyring.Sign(tracking.Fields{Customer: "acme", Source: "pool-a", MessageID: msgID, Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	msg := fmt.Sprintf("From: app@example.test\r\nTo: %s\r\nSubject: test\r\nMessage-ID: <%s@app.example.test>\r\n%s: %s\r\n\r\nhello\r\n",
		rcpt, msgID, tracking.HeaderName, header)
	c, err := smtp.Dial(p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("app.example.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		t.Fatal(err)
	}
	wc, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(wc, msg); err != nil {
		t.Fatal(err)
	}
	if err := wc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

// logFiles lists the current log and its rotated files.
func (p *postfix) logFiles(t *testing.T) []string {
	t.Helper()
	m, err := filepath.Glob(p.Maillog + "*")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// count counts the lines containing s across the log files.
func (p *postfix) count(t *testing.T, s string) int {
	n := 0
	for _, f := range p.logFiles(t) {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		n += strings.Count(string(data), s)
	}
	return n
}

// deliveryLines counts the delivery attempts Postfix logged.
func (p *postfix) deliveryLines(t *testing.T) int {
	return p.count(t, ", status=")
}

// waitLog waits until the log files hold n lines containing s.
func (p *postfix) waitLog(t *testing.T, s string, n int) {
	t.Helper()
	testwait.Eventually(t, 30*time.Second, fmt.Sprintf("%d %q lines in the Postfix log", n, s), func() bool { return p.count(t, s) >= n })
}

// logrotate renames the log the way Postfix's own "postfix logrotate"
// does (and makes postlogd reopen it).
func (p *postfix) logrotate(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(peers.PostfixBin, "-c", p.ConfigDir, "logrotate").CombinedOutput(); err != nil {
		t.Fatalf("postfix logrotate: %v\n%s", err, out)
	}
}

// logLine writes text to the log through postlogd (postlog) and waits
// for it to be there.
func (p *postfix) logLine(t *testing.T, text string) {
	t.Helper()
	if out, err := exec.Command("/usr/sbin/postlog", "-c", p.ConfigDir, "-t", "mailmon-test", text).CombinedOutput(); err != nil {
		t.Fatalf("postlog: %v\n%s", err, out)
	}
	p.waitLog(t, text, 1)
}

// copytruncate copies the log aside and truncates it, as logrotate's
// copytruncate does.
func (p *postfix) copytruncate(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile(p.Maillog)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.Maillog+".copy", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p.Maillog, 0); err != nil {
		t.Fatal(err)
	}
}

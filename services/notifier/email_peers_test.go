package notifier

import (
	"bytes"
	"errors"
	"io"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/peertest"
	"github.com/mailmon/mailmon/services/internal/testwait"
	"github.com/mailmon/mailmon/services/peers"
)

// TestEmailReachesAMailboxThroughPostfix sends alerts the way an operator
// would receive them: the notifier's email route hands them to Debian's
// Postfix over STARTTLS (the relay's certificate signed by a private CA,
// checked through tls_ca_file), Postfix delivers them over LMTP into a
// Dovecot mailbox, and the test reads the mailbox's files back: the firing
// and the resolved message, each once, with their subject, evidence and a
// shared thread.
func TestEmailReachesAMailboxThroughPostfix(t *testing.T) {
	for _, check := range []func() error{peers.CheckPostfix, peers.CheckDovecot} {
		if err := check(); err != nil {
			peertest.Unavailable(t, "%v", err)
		}
	}
	pki := newTestPKI(t)
	dv, err := peers.StartDovecot(t.Context(), peers.DovecotConfig{Users: []string{"ops"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeMailPeer(t, "dovecot.log", dv) })
	pf, err := peers.StartPostfix(t.Context(), peers.PostfixConfig{
		Dovecot: dv,
		Main: map[string]string{
			"smtpd_tls_security_level": "may",
			"smtpd_tls_cert_file":      "$config_directory/relay.crt",
			"smtpd_tls_key_file":       "$config_directory/relay.key",
			// The Received header says whether the message came over TLS.
			"smtpd_tls_received_header": "yes",
			// Two recipients the relay refuses, for good and for now.
			"smtpd_recipient_restrictions": "check_recipient_access texthash:$config_directory/recipients, permit_mynetworks, reject_unauth_destination",
		},
		Files: map[string]string{"relay.crt": string(pki.certPEM), "relay.key": string(pki.keyPEM),
			"recipients": "gone@" + dv.Domain + " 550 5.1.1 no such user\nlater@" + dv.Domain + " 450 4.2.1 mailbox busy\n"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeMailPeer(t, "postfix maillog", pf) })

	route := Route{Name: "ops-mail", Kind: KindEmail, SMTPAddr: pf.Addr(), TLS: EmailTLSStartTLS, TLSCAFile: pki.caFile,
		From: "mailmon <alerts@mailmon.test>", To: []string{"ops@" + dv.Domain}, HeloName: "notifier.mailmon.test"}
	e := run(t, testConfig(route))
	inbox := filepath.Join(dv.Dir, "mail", dv.Domain, "ops", "Maildir")

	firing := richAlert(schemas.AlertFiring, schemas.AlertCritical)
	schemas.Stamp(firing, firing.Source, time.Now())
	e.publish(t, firing)
	testwait.Eventually(t, 60*time.Second, "the firing message in the mailbox", func() bool { return len(maildirMessages(t, inbox)) >= 1 })
	resolved := richAlert(schemas.AlertResolved, schemas.AlertCritical)
	schemas.Stamp(resolved, resolved.Source, time.Now())
	e.publish(t, resolved)
	testwait.Eventually(t, 60*time.Second, "the resolved message in the mailbox", func() bool { return len(maildirMessages(t, inbox)) >= 2 })
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive right behind
	got := maildirMessages(t, inbox)
	if len(got) != 2 {
		t.Fatalf("%d messages in the mailbox, want 2", len(got))
	}

	var subjects []string
	var threads []string
	for _, raw := range got {
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("stored message: %v", err)
		}
		subjects = append(subjects, decodedSubject(t, msg))
		threads = append(threads, msg.Header.Get("References"))
		if msg.Header.Get("Auto-Submitted") != "auto-generated" {
			t.Errorf("Auto-Submitted %q", msg.Header.Get("Auto-Submitted"))
		}
		if received := strings.Join(msg.Header["Received"], "\n"); !strings.Contains(received, "notifier.mailmon.test") || !strings.Contains(received, "using TLS") {
			t.Errorf("the relay did not record our EHLO name over TLS:\n%s", received)
		}
		body := readBody(t, msg)
		for _, want := range []string{"reply_text=550 5.7.1 blocked by Spamhaus", "Sample events (10 of 12):",
			"explain it with: mailmon enforcement explain 0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "Customer:         acme"} {
			if !strings.Contains(body, want) {
				t.Errorf("stored body lacks %q:\n%s", want, body)
			}
		}
	}
	slices.Sort(subjects)
	if want := []string{"[FIRING critical] complaint_rate: customer:acme", "[RESOLVED critical] complaint_rate: customer:acme"}; !slices.Equal(subjects, want) {
		t.Errorf("subjects %q, want %q", subjects, want)
	}
	if threads[0] == "" || threads[0] != threads[1] {
		t.Errorf("threads %q", threads)
	}

	// Postfix's own refusals come back as errors quoting its reply; the
	// route's other recipient gets no copy either.
	for _, c := range []struct {
		rcpt      string
		reply     string
		temporary bool
	}{
		{"gone@", "550 5.1.1 ", false},
		{"later@", "450 4.2.1 ", true},
	} {
		r := route
		r.To = []string{"ops@" + dv.Domain, c.rcpt + dv.Domain}
		s := &sender{route: r, client: &http.Client{Timeout: 30 * time.Second}, now: time.Now}
		err := s.send(t.Context(), Notification{Receiver: "ops-mail", GroupKey: "customer:acme", Status: schemas.AlertFiring,
			Alerts: []*schemas.AlertRaised{richAlert(schemas.AlertFiring, schemas.AlertCritical)}})
		var re *RelayError
		if !errors.As(err, &re) || re.Step != "rcpt "+c.rcpt+dv.Domain || re.Temporary() != c.temporary || !strings.Contains(err.Error(), c.reply) {
			t.Errorf("to %s: %v", c.rcpt, err)
		}
	}
	time.Sleep(time.Second) // a copy would be delivered by now
	if n := len(maildirMessages(t, inbox)); n != 2 {
		t.Errorf("%d messages in the mailbox after the refusals, want still 2", n)
	}
}

// maildirMessages reads every message delivered to a Maildir's INBOX.
func maildirMessages(t *testing.T, maildir string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, sub := range []string{"new", "cur"} {
		entries, _ := os.ReadDir(filepath.Join(maildir, sub))
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(maildir, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, data)
		}
	}
	return out
}

func readBody(t *testing.T, msg *mail.Message) string {
	t.Helper()
	if msg.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
		t.Fatalf("Content-Transfer-Encoding %q", msg.Header.Get("Content-Transfer-Encoding"))
	}
	var b strings.Builder
	if _, err := io.Copy(&b, quotedprintable.NewReader(msg.Body)); err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(b.String(), "\r\n", "\n")
}

// mailPeer is a *peers.Postfix or a *peers.Dovecot.
type mailPeer interface {
	Stop() error
	LogTail(n int) string
	Close() error
}

// closeMailPeer stops p, shows the end of its log when the test failed,
// and removes its directory.
func closeMailPeer(t *testing.T, logName string, p mailPeer) {
	if err := p.Stop(); err != nil {
		t.Log(err)
	}
	if t.Failed() {
		t.Logf("%s:\n%s", logName, p.LogTail(40))
	}
	_ = p.Close()
}

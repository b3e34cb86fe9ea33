package notifier

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/lineartest"
	"github.com/mailmon/mailmon/services/internal/testwait"
)

// An in-process SMTP relay (go-smtp's server on 127.0.0.1:0) that records
// what it was given and answers as a test tells it to.

type relayed struct {
	helo, user string
	tls        bool
	from       string
	to         []string
	data       []byte
}

type testRelay struct {
	addr string

	mu       sync.Mutex
	messages []relayed
	// user and pass, when set, make AUTH PLAIN required (offered over TLS
	// only, as go-smtp does).
	user, pass string
	// rcptReply refuses a recipient with this reply; dataReply refuses the
	// message.
	rcptReply map[string]*smtp.SMTPError
	dataReply *smtp.SMTPError
}

// startRelay serves SMTP on loopback: STARTTLS when starttls is set,
// TLS from the first byte when implicit is set.
func startRelay(t *testing.T, starttls, implicit *tls.Config) *testRelay {
	t.Helper()
	r := &testRelay{rcptReply: map[string]*smtp.SMTPError{}}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &relaySession{relay: r, conn: c}, nil
	}))
	srv.Domain = "relay.test"
	srv.TLSConfig = starttls
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if implicit != nil {
		ln = tls.NewListener(ln, implicit)
	}
	r.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

func (r *testRelay) got() []relayed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.messages)
}

type relaySession struct {
	relay *testRelay
	conn  *smtp.Conn
	user  string
	from  string
	to    []string
}

func (s *relaySession) AuthMechanisms() []string {
	if s.relay.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *relaySession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != s.relay.user || password != s.relay.pass {
			return smtp.ErrAuthFailed
		}
		s.user = username
		return nil
	}), nil
}

func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error {
	if s.relay.user != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.relay.mu.Lock()
	defer s.relay.mu.Unlock()
	if e := s.relay.rcptReply[to]; e != nil {
		return e
	}
	s.to = append(s.to, to)
	return nil
}

func (s *relaySession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.relay.mu.Lock()
	defer s.relay.mu.Unlock()
	if s.relay.dataReply != nil {
		return s.relay.dataReply
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.relay.messages = append(s.relay.messages, relayed{helo: s.conn.Hostname(), user: s.user, tls: isTLS,
		from: s.from, to: slices.Clone(s.to), data: data})
	return nil
}

func (s *relaySession) Reset()        { s.from, s.to = "", nil }
func (s *relaySession) Logout() error { return nil }

// testPKI is a CA and a relay certificate it signed, for relay.test and
// 127.0.0.1.
type testPKI struct {
	caFile string
	server *tls.Config
	// certPEM and keyPEM are the relay's, for a real relay's config.
	certPEM, keyPEM []byte
}

func newTestPKI(t testing.TB) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailmon test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "relay.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"relay.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return testPKI{caFile: caFile, server: &tls.Config{Certificates: []tls.Certificate{pair}}, certPEM: certPEM, keyPEM: keyPEM}
}

var emailClock = time.Date(2026, 12, 7, 16, 30, 0, 0, time.UTC)

func emailRoute(addr string) Route {
	return Route{Name: "ops-mail", Kind: KindEmail, SMTPAddr: addr, TLS: EmailTLSNone,
		From: "mailmon <alerts@mailmon.test>", To: []string{"ops@example.test", "oncall@example.test"},
		HeloName: "notifier.mailmon.test", Timeout: config.Duration(5 * time.Second)}
}

func emailSender(r Route) *sender {
	return &sender{route: r, client: &http.Client{Timeout: 5 * time.Second}, now: func() time.Time { return emailClock }}
}

// richAlert has every field the body shows.
func richAlert(status, severity string) *schemas.AlertRaised {
	a := &schemas.AlertRaised{Rule: "complaint_rate", Status: status, Severity: severity,
		Subject: "customer:acme", Summary: "acme: complaint rate 0.42 % to gmail over 24h (limit 0.3 %)",
		DedupeKey: "complaint_rate/customer:acme/gmail", Customer: "acme", Provider: "gmail",
		SourceIP: "192.0.2.10", RecipientDomain: "gmail.com", DecisionID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
		EvidenceNames:  []string{"rate", "complaints", "window", "reply_text", "delist_url"},
		EvidenceValues: []string{"0.0042", "42", "24h", "550 5.7.1 blocked by Spamhaus", "https://check.spamhaus.example/remove?ip=192.0.2.10"}}
	for i := range 12 {
		a.EventIDs = append(a.EventIDs, fmt.Sprintf("complaint-%02d", i))
	}
	schemas.Stamp(a, schemas.Source{Worker: "complaint-evaluator", Host: "test"}, emailClock.Add(-time.Minute))
	return a
}

// readEmail parses a message as a mail client would and checks its shape:
// CRLF header lines of printable ASCII within 998 octets, exactly the
// headers mailmon writes, each once, and a quoted-printable body.
func readEmail(t testing.TB, data []byte) (*mail.Message, string) {
	t.Helper()
	head, _, ok := bytes.Cut(data, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("no blank line after the header:\n%q", data)
	}
	for _, line := range strings.Split(string(head), "\r\n") {
		if len(line) > 998 {
			t.Errorf("header line of %d octets", len(line))
		}
		for _, c := range []byte(line) {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("header line with byte %#x: %q", c, line)
			}
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a message: %v", err)
	}
	want := []string{"Date", "From", "To", "Subject", "Message-Id", "In-Reply-To", "References", "Auto-Submitted",
		"X-Auto-Response-Suppress", "Mime-Version", "Content-Type", "Content-Transfer-Encoding"}
	var got []string
	for k, v := range msg.Header {
		got = append(got, k)
		if len(v) != 1 {
			t.Errorf("header %s %d times", k, len(v))
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("headers %q, want %q", got, want)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatalf("body is not quoted-printable: %v", err)
	}
	return msg, strings.ReplaceAll(string(body), "\r\n", "\n")
}

func decodedSubject(t testing.TB, msg *mail.Message) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("subject %q: %v", msg.Header.Get("Subject"), err)
	}
	return s
}

func TestEmailMessageCarriesTheEvidence(t *testing.T) {
	relay := startRelay(t, nil, nil)
	s := emailSender(emailRoute(relay.addr))
	firing := richAlert(schemas.AlertFiring, schemas.AlertCritical)
	second := richAlert(schemas.AlertFiring, schemas.AlertWarning)
	second.Rule, second.DedupeKey, second.DecisionID = "complaint_count", "complaint_count/customer:acme", ""
	if err := s.send(t.Context(), Notification{Receiver: "ops-mail", GroupKey: "customer:acme", Status: schemas.AlertFiring,
		Alerts: []*schemas.AlertRaised{firing, second}}); err != nil {
		t.Fatal(err)
	}
	got := relay.got()
	if len(got) != 1 {
		t.Fatalf("%d messages relayed, want 1", len(got))
	}
	m := got[0]
	if m.from != "alerts@mailmon.test" || !slices.Equal(m.to, []string{"ops@example.test", "oncall@example.test"}) || m.helo != "notifier.mailmon.test" {
		t.Errorf("envelope from %q to %q helo %q", m.from, m.to, m.helo)
	}
	msg, body := readEmail(t, m.data)
	if subj := decodedSubject(t, msg); subj != "[FIRING critical] complaint_rate: customer:acme (+1 more)" {
		t.Errorf("subject %q", subj)
	}
	if d, err := msg.Header.Date(); err != nil || !d.Equal(emailClock) {
		t.Errorf("date %v (%v), want the notifier's clock %v", d, err, emailClock)
	}
	from, _ := mail.ParseAddress(msg.Header.Get("From"))
	to, _ := msg.Header.AddressList("To")
	if from == nil || from.Address != "alerts@mailmon.test" || from.Name != "mailmon" || len(to) != 2 {
		t.Errorf("from %q to %q", msg.Header.Get("From"), msg.Header.Get("To"))
	}
	if msg.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("Auto-Submitted %q", msg.Header.Get("Auto-Submitted"))
	}
	if id := msg.Header.Get("Message-Id"); !strings.HasPrefix(id, "<mailmon.") || !strings.HasSuffix(id, "@mailmon.test>") {
		t.Errorf("Message-ID %q", id)
	}
	for _, want := range []string{
		"2 alerts about customer:acme.",
		"--- 1. acme: complaint rate 0.42 % to gmail over 24h (limit 0.3 %)",
		"Status:           firing",
		"Severity:         critical",
		"Rule:             complaint_rate",
		"Subject:          customer:acme",
		"Customer:         acme",
		"Provider:         gmail",
		"Source IP:        192.0.2.10",
		"Recipient domain: gmail.com",
		"Time:             " + firing.Time.Format(time.RFC3339),
		"  rate=0.0042\n  complaints=42\n  window=24h\n  reply_text=550 5.7.1 blocked by Spamhaus\n",
		"  delist_url=https://check.spamhaus.example/remove?ip=192.0.2.10\n",
		"Sample events (10 of 12):\n  complaint-00\n",
		"  complaint-09\n",
		"Decision:         0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\n  explain it with: mailmon enforcement explain 0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\n",
		"Alert id:         " + firing.ID,
		"--- 2. ",
		"Rule:             complaint_count",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "complaint-10") {
		t.Errorf("body shows more than 10 sample events")
	}
	if strings.Count(body, "enforcement explain") != 1 {
		t.Errorf("the explain command should appear once, for the alert with a decision:\n%s", body)
	}
}

// The firing and the resolved message of one condition share a thread id
// (In-Reply-To, References), so a mail client shows them together; another
// condition has another.
func TestEmailThreadsFiringAndResolvedByDedupeKey(t *testing.T) {
	relay := startRelay(t, nil, nil)
	s := emailSender(emailRoute(relay.addr))
	firing := richAlert(schemas.AlertFiring, schemas.AlertCritical)
	resolved := richAlert(schemas.AlertResolved, schemas.AlertCritical)
	other := richAlert(schemas.AlertFiring, schemas.AlertCritical)
	other.DedupeKey = "complaint_rate/customer:other/gmail"
	for _, a := range []*schemas.AlertRaised{firing, resolved, other} {
		if err := s.send(t.Context(), Notification{Receiver: "ops-mail", GroupKey: a.Subject, Status: a.Status, Alerts: []*schemas.AlertRaised{a}}); err != nil {
			t.Fatal(err)
		}
	}
	got := relay.got()
	if len(got) != 3 {
		t.Fatalf("%d messages", len(got))
	}
	var msgs []*mail.Message
	for _, m := range got {
		msg, _ := readEmail(t, m.data)
		msgs = append(msgs, msg)
	}
	if s := decodedSubject(t, msgs[1]); s != "[RESOLVED critical] complaint_rate: customer:acme" {
		t.Errorf("resolved subject %q", s)
	}
	thread := msgs[0].Header.Get("References")
	if !strings.HasPrefix(thread, "<mailmon-thread.") || msgs[0].Header.Get("In-Reply-To") != thread {
		t.Errorf("firing References %q In-Reply-To %q", thread, msgs[0].Header.Get("In-Reply-To"))
	}
	if msgs[1].Header.Get("References") != thread || msgs[1].Header.Get("In-Reply-To") != thread {
		t.Errorf("resolved message is in thread %q, the firing one in %q", msgs[1].Header.Get("References"), thread)
	}
	if msgs[2].Header.Get("References") == thread {
		t.Errorf("another condition shares the thread %q", thread)
	}
	if msgs[0].Header.Get("Message-Id") == msgs[1].Header.Get("Message-Id") {
		t.Errorf("two notifications share a Message-ID")
	}
}

// Every header value taken from an alert is hostile: CR/LF cannot start a
// header of their own (a Bcc to someone else), nor end the header early;
// control and bidi characters are dropped; lengths are bounded; non-ASCII
// text is an encoded-word that decodes back.
func TestEmailHeaderInjection(t *testing.T) {
	relay := startRelay(t, nil, nil)
	s := emailSender(emailRoute(relay.addr))
	a := richAlert(schemas.AlertFiring, schemas.AlertCritical)
	a.Rule = "rule\r\nBcc: victim@evil.test"
	a.Subject = "customer:x\n\nforged body\r\n.\r\nMAIL FROM:<x@evil.test>"
	a.Summary = "summary\rX-Injected: yes\x00\u2028Reply-To: evil@evil.test\u202e"
	a.DecisionID = "id; rm -rf ~\nBcc: victim@evil.test"
	a.EvidenceNames = []string{"name\r\nBcc: victim@evil.test"}
	a.EvidenceValues = []string{strings.Repeat("v", 100_000) + "\xff\xfe"}
	if err := s.send(t.Context(), Notification{Receiver: "ops-mail", GroupKey: a.Subject, Status: a.Status, Alerts: []*schemas.AlertRaised{a}}); err != nil {
		t.Fatal(err)
	}
	got := relay.got()
	if len(got) != 1 || len(got[0].to) != 2 {
		t.Fatalf("relayed %+v, want one message to the two configured recipients", got)
	}
	msg, body := readEmail(t, got[0].data) // fails on any header but mailmon's own
	subj := decodedSubject(t, msg)
	if strings.ContainsAny(subj, "\r\n\x00") || len([]rune(subj)) > maxSubjectRunes+1 {
		t.Errorf("subject %q", subj)
	}
	if !strings.Contains(subj, "rule Bcc: victim@evil.test") {
		t.Errorf("subject %q should keep the text on one line", subj)
	}
	for _, line := range strings.Split(body, "\n") {
		for _, forged := range []string{"Bcc:", "X-Injected:", "Reply-To:", "forged body", ".", "MAIL FROM"} {
			if strings.HasPrefix(strings.TrimSpace(line), forged) && !strings.HasPrefix(line, "Subject:") {
				t.Errorf("body line starts with injected %q: %q", forged, line)
			}
		}
		if len([]rune(line)) > 600 {
			t.Errorf("body line of %d characters", len([]rune(line)))
		}
	}
	if strings.ContainsRune(body, '\u202e') || strings.ContainsRune(body, 0) {
		t.Errorf("body keeps a control or bidi character")
	}
	if !strings.Contains(body, "explain it with: mailmon enforcement explain 'id; rm -rf ~ Bcc: victim@evil.test'") {
		t.Errorf("a hostile decision id should be quoted for the shell:\n%s", body)
	}

	// Non-ASCII text is encoded and comes back as written.
	a = richAlert(schemas.AlertFiring, schemas.AlertWarning)
	a.Subject = "customer:Müller & Søn — 日本"
	if err := s.send(t.Context(), Notification{Receiver: "ops-mail", GroupKey: a.Subject, Status: a.Status, Alerts: []*schemas.AlertRaised{a}}); err != nil {
		t.Fatal(err)
	}
	msg, body = readEmail(t, relay.got()[1].data)
	if raw := msg.Header.Get("Subject"); !strings.Contains(raw, "=?utf-8?q?") {
		t.Errorf("raw subject %q is not an encoded-word", raw)
	}
	if s := decodedSubject(t, msg); s != "[FIRING warning] complaint_rate: customer:Müller & Søn — 日本" {
		t.Errorf("subject %q", s)
	}
	if !strings.Contains(body, "Subject:          customer:Müller & Søn — 日本\n") {
		t.Errorf("body:\n%s", body)
	}
}

// The relay's certificate is checked against tls_ca_file; AUTH PLAIN goes
// over TLS only (go-smtp's server offers it only there); the relay sees
// helo_name after STARTTLS.
func TestEmailStartTLSWithAuth(t *testing.T) {
	pki := newTestPKI(t)
	relay := startRelay(t, pki.server, nil)
	relay.user, relay.pass = "mailmon", "relay-s3cret"
	r := emailRoute(relay.addr)
	r.TLS, r.TLSCAFile, r.TLSServerName = EmailTLSStartTLS, pki.caFile, "relay.test"
	r.Username, r.Password = "mailmon", "relay-s3cret"
	if err := emailSender(r).send(t.Context(), Notification{Receiver: "ops-mail", GroupKey: "customer:acme", Status: schemas.AlertFiring,
		Alerts: []*schemas.AlertRaised{richAlert(schemas.AlertFiring, schemas.AlertCritical)}}); err != nil {
		t.Fatal(err)
	}
	got := relay.got()
	if len(got) != 1 || !got[0].tls || got[0].user != "mailmon" || got[0].helo != "notifier.mailmon.test" {
		t.Fatalf("relayed %+v, want one message over TLS from user mailmon", got)
	}

	// A wrong password is refused with the relay's reply, which the error
	// quotes; the password itself never appears.
	r.Password = "wrong-s3cret"
	err := emailSender(r).send(t.Context(), Notification{Receiver: "ops-mail", GroupKey: "customer:acme", Status: schemas.AlertFiring,
		Alerts: []*schemas.AlertRaised{richAlert(schemas.AlertFiring, schemas.AlertCritical)}})
	var re *RelayError
	if !errors.As(err, &re) || re.Step != "auth" || re.Code != 535 || re.Temporary() {
		t.Fatalf("wrong password: %v (%#v)", err, re)
	}
	if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "535 5.7.8 Authentication failed") {
		t.Errorf("error %q", err)
	}

	// Without the private CA the certificate is not trusted: nothing is sent.
	r.Password, r.TLSCAFile = "relay-s3cret", ""
	err = emailSender(r).send(t.Context(), Notification{Receiver: "ops-mail", GroupKey: "customer:acme", Status: schemas.AlertFiring,
		Alerts: []*schemas.AlertRaised{richAlert(schemas.AlertFiring, schemas.AlertCritical)}})
	if !errors.As(err, &re) || re.Step != "tls" || !re.Temporary() {
		t.Errorf("untrusted certificate: %v", err)
	}
	// Nor when the name does not match.
	r.TLSCAFile, r.TLSServerName = pki.caFile, "other.test"
	err = emailSender(r).send(t.Context(), Notification{Receiver: "ops-mail", GroupKey: "customer:acme", Status: schemas.AlertFiring,
		Alerts: []*schemas.AlertRaised{richAlert(schemas.AlertFiring, schemas.AlertCritical)}})
	if !errors.As(err, &re) || re.Step != "tls" {
		t.Errorf("certificate for another name: %v", err)
	}
	if n := len(relay.got()); n != 1 {
		t.Errorf("%d messages relayed, want still 1", n)
	}
}

func TestEmailImplicitTLS(t *testing.T) {
	pki := newTestPKI(t)
	relay := startRelay(t, nil, pki.server)
	relay.user, relay.pass = "mailmon", "relay-s3cret"
	r := emailRoute(relay.addr)
	r.TLS, r.TLSCAFile = EmailTLSImplicit, pki.caFile // checked against 127.0.0.1
	r.Username, r.Password = "mailmon", "relay-s3cret"
	if err := emailSender(r).send(t.Context(), Notification{Receiver: "ops-mail", GroupKey: "customer:acme", Status: schemas.AlertFiring,
		Alerts: []*schemas.AlertRaised{richAlert(schemas.AlertFiring, schemas.AlertCritical)}}); err != nil {
		t.Fatal(err)
	}
	if got := relay.got(); len(got) != 1 || !got[0].tls || got[0].user != "mailmon" {
		t.Fatalf("relayed %+v", got)
	}
}

// A relay that does not offer STARTTLS gets nothing: tls starttls is never
// silently downgraded to clear text.
func TestEmailRefusesARelayWithoutStartTLS(t *testing.T) {
	relay := startRelay(t, nil, nil)
	r := emailRoute(relay.addr)
	r.TLS = EmailTLSStartTLS
	err := emailSender(r).send(t.Context(), Notification{Receiver: "ops-mail", GroupKey: "customer:acme", Status: schemas.AlertFiring,
		Alerts: []*schemas.AlertRaised{richAlert(schemas.AlertFiring, schemas.AlertCritical)}})
	var re *RelayError
	if !errors.As(err, &re) || re.Step != "starttls" {
		t.Fatalf("error %v, want a starttls failure", err)
	}
	if n := len(relay.got()); n != 0 {
		t.Errorf("%d messages sent in clear", n)
	}
}

// 4xx and 5xx replies and a relay that is down are errors that name the
// step and quote the reply; 4xx and no reply are temporary. One refused
// recipient aborts the transaction, so no recipient gets a copy that a
// retry would repeat.
func TestEmailRelayRefusals(t *testing.T) {
	relay := startRelay(t, nil, nil)
	notification := Notification{Receiver: "ops-mail", GroupKey: "customer:acme", Status: schemas.AlertFiring,
		Alerts: []*schemas.AlertRaised{richAlert(schemas.AlertFiring, schemas.AlertCritical)}}
	cases := []struct {
		name      string
		setup     func()
		step      string
		code      int
		text      string
		temporary bool
	}{
		{"greylisted recipient", func() {
			relay.rcptReply["oncall@example.test"] = &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "greylisted, try later"}
		}, "rcpt oncall@example.test", 450, "4.2.0 greylisted, try later", true},
		{"unknown recipient", func() {
			relay.rcptReply["oncall@example.test"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}, "rcpt oncall@example.test", 550, "5.1.1 no such user", false},
		{"queue full", func() {
			relay.dataReply = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "insufficient storage"}
		}, "data", 452, "4.3.1 insufficient storage", true},
		{"content refused", func() {
			relay.dataReply = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "message refused\r\nX-Evil: injected"}
		}, "data", 554, "message refused", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			relay.mu.Lock()
			clear(relay.rcptReply)
			relay.dataReply = nil
			c.setup()
			relay.mu.Unlock()
			err := emailSender(emailRoute(relay.addr)).send(t.Context(), notification)
			var re *RelayError
			if !errors.As(err, &re) {
				t.Fatalf("error %v, want a *RelayError", err)
			}
			if re.Step != c.step || re.Code != c.code || !strings.Contains(re.Text, c.text) || strings.ContainsAny(re.Text, "\r\n") || re.Temporary() != c.temporary {
				t.Errorf("got step %q code %d text %q temporary %v", re.Step, re.Code, re.Text, re.Temporary())
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%d %s", c.code, re.Text)) {
				t.Errorf("error %q does not quote the reply", err)
			}
			if n := len(relay.got()); n != 0 {
				t.Errorf("%d messages relayed", n)
			}
		})
	}

	// Nothing listens: a temporary connect failure.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	err := emailSender(emailRoute(addr)).send(t.Context(), notification)
	var re *RelayError
	if !errors.As(err, &re) || re.Step != "connect" || re.Code != 0 || !re.Temporary() {
		t.Errorf("relay down: %v", err)
	}
}

// fakeRelay serves one connection with a script: it reads a line before
// each reply that follows a command, as a relay that misbehaves on purpose.
func fakeRelay(t *testing.T, serve func(c net.Conn, r *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c, bufio.NewReader(c))
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

// A relay that answers STARTTLS and, in the same packet, a line meant to be
// read after the handshake (STARTTLS command injection) is refused.
func TestEmailRefusesDataInjectedBeforeTLS(t *testing.T) {
	pki := newTestPKI(t)
	addr := fakeRelay(t, func(c net.Conn, r *bufio.Reader) {
		io.WriteString(c, "220 relay.test ESMTP\r\n")
		r.ReadString('\n')
		io.WriteString(c, "250-relay.test\r\n250 STARTTLS\r\n")
		r.ReadString('\n')
		io.WriteString(c, "220 go ahead\r\n250 AUTH PLAIN\r\n")
		r.ReadString('\n')
	})
	r := emailRoute(addr)
	r.TLS, r.TLSCAFile = EmailTLSStartTLS, pki.caFile
	err := emailSender(r).send(t.Context(), Notification{Receiver: "ops-mail", GroupKey: "customer:acme", Status: schemas.AlertFiring,
		Alerts: []*schemas.AlertRaised{richAlert(schemas.AlertFiring, schemas.AlertCritical)}})
	var re *RelayError
	if !errors.As(err, &re) || re.Step != "starttls" || !strings.Contains(err.Error(), "before TLS") {
		t.Fatalf("error %v, want the injection refused", err)
	}
}

// A relay that never stops replying, or never replies, ends the exchange
// with an error within the route's limits instead of holding memory or the
// route forever.
func TestEmailBoundsTheRelay(t *testing.T) {
	endless := fakeRelay(t, func(c net.Conn, r *bufio.Reader) {
		io.WriteString(c, "220 relay.test ESMTP\r\n")
		r.ReadString('\n')
		line := "250-" + strings.Repeat("X", 500) + "\r\n"
		for {
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	})
	err := emailSender(emailRoute(endless)).send(t.Context(), Notification{Receiver: "ops-mail", GroupKey: "customer:acme", Status: schemas.AlertFiring,
		Alerts: []*schemas.AlertRaised{richAlert(schemas.AlertFiring, schemas.AlertCritical)}})
	if !errors.Is(err, errRelayTooTalkative) {
		t.Errorf("endless EHLO reply: %v", err)
	}

	silent := fakeRelay(t, func(c net.Conn, r *bufio.Reader) {
		io.Copy(io.Discard, r) // never greets
	})
	r := emailRoute(silent)
	r.Timeout = config.Duration(200 * time.Millisecond)
	err = emailSender(r).send(t.Context(), Notification{Receiver: "ops-mail", GroupKey: "customer:acme", Status: schemas.AlertFiring,
		Alerts: []*schemas.AlertRaised{richAlert(schemas.AlertFiring, schemas.AlertCritical)}})
	var re *RelayError
	if !errors.As(err, &re) || !re.Temporary() {
		t.Errorf("silent relay: %v", err)
	}
}

func TestEmailRouteValidate(t *testing.T) {
	pki := newTestPKI(t)
	good := emailRoute("127.0.0.1:25")
	good.Username, good.Password = "u", "pw-s3cret"
	remote := emailRoute("smtp.example.net:587")
	remote.TLS, remote.TLSCAFile = "", pki.caFile
	for _, r := range []Route{good, remote} {
		cfg := DefaultConfig()
		cfg.Routes = []Route{r}
		if err := cfg.Validate(); err != nil {
			t.Errorf("route %+v: %v", r, err)
		}
	}

	badFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(badFile, []byte("not a certificate"), 0o644)
	cases := []struct {
		key  string
		edit func(r *Route)
	}{
		{"smtp_addr", func(r *Route) { r.SMTPAddr = "" }},
		{"smtp_addr", func(r *Route) { r.SMTPAddr = "smtp.example.net" }},
		{"smtp_addr", func(r *Route) { r.SMTPAddr = "smtp.example.net:99999" }},
		{"tls", func(r *Route) { r.SMTPAddr, r.TLS = "smtp.example.net:25", EmailTLSNone }},
		{"tls", func(r *Route) { r.TLS = "ssl" }},
		{"tls_ca_file", func(r *Route) { r.TLSCAFile = filepath.Join(t.TempDir(), "missing.pem") }},
		{"tls_ca_file", func(r *Route) { r.TLSCAFile = badFile }},
		{"from", func(r *Route) { r.From = "" }},
		{"from", func(r *Route) { r.From = "alerts@mailmon.test\r\nBcc: x@evil.test" }},
		{"from", func(r *Route) { r.From = "alerts@müller.test" }},
		{"to", func(r *Route) { r.To = nil }},
		{"to[1]", func(r *Route) { r.To = []string{"ops@example.test", "not an address"} }},
		{"to", func(r *Route) { r.To = slices.Repeat([]string{"ops@example.test"}, maxEmailRecipients+1) }},
		{"helo_name", func(r *Route) { r.HeloName = "bad name\r\nMAIL FROM:<x>" }},
		{"timeout", func(r *Route) { r.Timeout = -1 }},
		{"url", func(r *Route) { r.URL = "https://hooks.example/x" }},
		{"token", func(r *Route) { r.Token = "t" }},
		{"password", func(r *Route) { r.Password = "" }},
	}
	for _, c := range cases {
		r := good
		r.To = slices.Clone(good.To)
		c.edit(&r)
		cfg := DefaultConfig()
		cfg.Routes = []Route{r}
		err := cfg.Validate()
		var ps config.Problems
		if !errors.As(err, &ps) {
			t.Errorf("%s: no problems (%v)", c.key, err)
			continue
		}
		found := false
		for _, p := range ps {
			found = found || p.Path == "routes[0]."+c.key
		}
		if !found {
			t.Errorf("%s: problems %v", c.key, err)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: problems quote the password: %v", c.key, err)
		}
	}
}

// Through the worker: an email route takes the alerts of mailmon.alert.>
// like any route, firing then resolved, and the two messages share a
// thread.
func TestEmailRouteThroughTheNotifier(t *testing.T) {
	pki := newTestPKI(t)
	relay := startRelay(t, pki.server, nil)
	relay.user, relay.pass = "mailmon", "relay-s3cret"
	r := emailRoute(relay.addr)
	r.TLS, r.TLSCAFile, r.TLSServerName = EmailTLSStartTLS, pki.caFile, "relay.test"
	r.Username, r.Password = "mailmon", "relay-s3cret"
	e := run(t, testConfig(r))
	firing := richAlert(schemas.AlertFiring, schemas.AlertCritical)
	schemas.Stamp(firing, firing.Source, time.Now())
	e.publish(t, firing)
	testwait.Eventually(t, 10*time.Second, "the firing message", func() bool { return len(relay.got()) >= 1 })
	resolved := richAlert(schemas.AlertResolved, schemas.AlertCritical)
	schemas.Stamp(resolved, resolved.Source, time.Now())
	e.publish(t, resolved)
	testwait.Eventually(t, 10*time.Second, "the resolved message", func() bool { return len(relay.got()) >= 2 })
	got := relay.got()
	first, _ := readEmail(t, got[0].data)
	second, body := readEmail(t, got[1].data)
	if s := decodedSubject(t, first); s != "[FIRING critical] complaint_rate: customer:acme" {
		t.Errorf("first subject %q", s)
	}
	if s := decodedSubject(t, second); s != "[RESOLVED critical] complaint_rate: customer:acme" {
		t.Errorf("second subject %q", s)
	}
	if first.Header.Get("References") != second.Header.Get("References") {
		t.Errorf("threads %q and %q", first.Header.Get("References"), second.Header.Get("References"))
	}
	if !strings.Contains(body, "Alert id:         "+resolved.ID) || !got[1].tls || got[1].user != "mailmon" {
		t.Errorf("second message over TLS %v by %q:\n%s", got[1].tls, got[1].user, body)
	}
	if strings.Contains(e.logString(), "relay-s3cret") {
		t.Errorf("the log shows the relay password")
	}
}

// FuzzEmailMessage: whatever an alert holds, the message has exactly
// mailmon's headers, in printable ASCII lines within 998 octets, and a body
// that decodes.
func FuzzEmailMessage(f *testing.F) {
	f.Add("customer:acme", "complaint_rate", "acme: rate 0.4 %", "rate", "0.004", "0193a1b2")
	f.Add("x\r\nBcc: v@evil.test", "r\n\n.", "\x00\u2028\u202e", "n\r\n", strings.Repeat("ü", 2000), "'; rm -rf /")
	f.Add("=?utf-8?q?=0D=0ABcc:_x?=", "\xff\xfe", "日本語の件名", "", "", "")
	from, _ := parseEmailAddress("mailmon <alerts@mailmon.test>")
	to, _ := parseEmailAddress("ops@example.test")
	f.Fuzz(func(t *testing.T, subject, rule, summary, evName, evValue, decision string) {
		a := &schemas.AlertRaised{Rule: rule, Status: schemas.AlertFiring, Severity: schemas.AlertCritical, Subject: subject,
			Summary: summary, DedupeKey: rule + subject, Customer: subject, DecisionID: decision,
			EvidenceNames: []string{evName}, EvidenceValues: []string{evValue}, EventIDs: []string{summary}}
		n := Notification{Receiver: "ops-mail", GroupKey: subject, Status: schemas.AlertFiring, Alerts: []*schemas.AlertRaised{a}}
		msg, _ := readEmail(t, emailMessage(from, []*mail.Address{to}, n, emailClock))
		if s := decodedSubject(t, msg); strings.ContainsAny(s, "\r\n") {
			t.Errorf("subject %q", s)
		}
	})
}

// TestEmailMessageLinear: an alert of any size makes a bounded message, in
// time that does not grow with the alert's text (each field is read up to
// its bound).
func TestEmailMessageLinear(t *testing.T) {
	from, _ := parseEmailAddress("mailmon <alerts@mailmon.test>")
	to, _ := parseEmailAddress("ops@example.test")
	for _, unit := range []string{" \r\n", "ü\u202e", "a", "\xff"} {
		lineartest.Run(t, lineartest.Case{
			Name:  fmt.Sprintf("fields of %q", unit),
			Build: func(size int) []byte { return lineartest.Repeat("", unit, "", size) },
			Parse: func(raw []byte) error {
				s := lineartest.String(raw)
				a := &schemas.AlertRaised{Rule: s, Status: schemas.AlertFiring, Severity: schemas.AlertCritical, Subject: s,
					Summary: s, Customer: s, DecisionID: s, EvidenceNames: []string{s, s}, EvidenceValues: []string{s, s},
					// The dedupe key is only hashed (SHA-256, linear by
					// construction): kept short so the ratio measures the text.
					DedupeKey: "k"}
				msg := emailMessage(from, []*mail.Address{to}, Notification{Receiver: "r", GroupKey: s, Status: a.Status,
					Alerts: []*schemas.AlertRaised{a}}, emailClock)
				if len(msg) > 64<<10 {
					return fmt.Errorf("a message of %d bytes", len(msg))
				}
				return nil
			},
		})
	}
}

// A group of many large alerts still makes a message of bounded size that
// says what it left out.
func TestEmailMessageSizeIsBounded(t *testing.T) {
	from, _ := parseEmailAddress("mailmon <alerts@mailmon.test>")
	to, _ := parseEmailAddress("ops@example.test")
	big := strings.Repeat("ü", 2*maxFieldRunes)
	n := Notification{Receiver: "ops-mail", GroupKey: "customer:acme", Status: schemas.AlertFiring}
	for range 64 {
		a := richAlert(schemas.AlertFiring, schemas.AlertCritical)
		a.Summary = big
		a.EvidenceNames, a.EvidenceValues = nil, nil
		for range 100 {
			a.EvidenceNames = append(a.EvidenceNames, big)
			a.EvidenceValues = append(a.EvidenceValues, big)
		}
		n.Alerts = append(n.Alerts, a)
	}
	data := emailMessage(from, []*mail.Address{to}, n, emailClock)
	if len(data) > 3*(maxBodyBytes+16<<10) { // quoted-printable triples at most
		t.Errorf("a message of %d bytes", len(data))
	}
	_, body := readEmail(t, data)
	if !strings.Contains(body, "more alerts about customer:acme, not shown.") {
		t.Errorf("the body does not say what it left out")
	}
	t.Logf("64 alerts of 100 evidence pairs: %d bytes, body %d bytes", len(data), len(body))
}

package probesender

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/schemas/tracking"
	"github.com/mailmon/mailmon/services/internal/config"
	"github.com/mailmon/mailmon/services/internal/natstest"
)

const config10s = config.Duration(10 * time.Second)

var seed = Target{Name: "gmail-1", Provider: "gmail", Address: "seed@inbox.test"}

func newSender(t *testing.T, cfg Config) *Sender {
	t.Helper()
	_, _, js := natstest.Start(t)
	s, err := New(cfg, testSettings(js))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAcceptedProbeIsWellFormedAndTimed(t *testing.T) {
	mx := startMX(t, nil, nil)
	src := Source{Name: "relay-1", Type: SourceSMTP, Addr: mx.addr, TLS: TLSNone, HeloName: "out1.sender.test", SourceIP: "192.0.2.10"}
	s := newSender(t, testConfig([]Source{src}, []Target{seed}))
	ev := s.Probe(context.Background(), src, seed, VariantListUnsubscribe)
	if ev == nil {
		t.Fatal("no event")
	}
	if err := schemas.Validate(ev); err != nil {
		t.Fatalf("event breaks the contract: %v", err)
	}
	if ev.Outcome != schemas.OutcomeAccepted || ev.ReplyCode != 250 || ev.FailedPhase != "" {
		t.Fatalf("outcome %q code %d phase %q (error %q)", ev.Outcome, ev.ReplyCode, ev.FailedPhase, ev.Error)
	}
	for name, v := range map[string]int32{"connect": ev.ConnectMs, "banner": ev.BannerMs, "ehlo": ev.EhloMs, "mail": ev.MailMs, "rcpt": ev.RcptMs, "data": ev.DataMs, "total": ev.TotalMs} {
		if v < 0 {
			t.Errorf("%s_ms = %d, want a measurement", name, v)
		}
	}
	if ev.StarttlsMs != -1 || ev.AuthMs != -1 {
		t.Errorf("starttls_ms %d auth_ms %d, want -1 (not used)", ev.StarttlsMs, ev.AuthMs)
	}
	if ev.Route != "relay-1" || ev.SourceIP != "192.0.2.10" || ev.Provider != "gmail" || ev.RecipientDomain != "inbox.test" || ev.HeloName != "out1.sender.test" {
		t.Errorf("route fields: %+v", ev.ProbeRoute)
	}
	got := mx.got()
	if len(got) != 1 {
		t.Fatalf("relay got %d messages", len(got))
	}
	if got[0].From != "probe@sender.test" || got[0].To != "seed@inbox.test" {
		t.Errorf("envelope %s -> %s", got[0].From, got[0].To)
	}
	if int(ev.SizeBytes) != len(got[0].Data) {
		t.Errorf("size_bytes %d, relay got %d", ev.SizeBytes, len(got[0].Data))
	}
	m, err := mail.ReadMessage(bytes.NewReader(got[0].Data))
	if err != nil {
		t.Fatalf("not a mail message: %v", err)
	}
	for _, h := range []string{"Date", "From", "To", "Subject", "Message-Id", "Mime-Version", "List-Unsubscribe"} {
		if m.Header.Get(h) == "" {
			t.Errorf("header %s missing", h)
		}
	}
	if _, err := m.Header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	if !strings.Contains(m.Header.Get("Subject"), ev.ProbeID) {
		t.Errorf("Subject %q lacks the probe id", m.Header.Get("Subject"))
	}
	if m.Header.Get("Message-Id") != "<"+ev.MessageID+">" {
		t.Errorf("Message-ID %q, event says %q", m.Header.Get("Message-Id"), ev.MessageID)
	}
	f, err := testRing().Verify(m.Header.Get(tracking.HeaderName), time.Now(), 0)
	if err != nil {
		t.Fatalf("tracking header does not verify: %v", err)
	}
	if f.MessageID != ev.ProbeID || f.Customer != DefaultCustomer || f.Source != "192.0.2.10" {
		t.Errorf("tracking fields %+v", f)
	}
	for _, line := range strings.Split(string(got[0].Data), "\r\n") {
		if len(line) > 998 {
			t.Errorf("line longer than 998: %q", line[:80])
		}
	}
}

func TestRefusalsAreClassified(t *testing.T) {
	cases := []struct {
		name      string
		cmd       string
		reply     *smtp.SMTPError
		outcome   string
		phase     string
		code      uint16
		enhanced  string
		wantInTxt string
	}{
		{"rcpt 550", "rcpt", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}, schemas.OutcomeRefused, "rcpt", 550, "5.1.1", "no such user"},
		{"mail 451 greylist", "mail", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted, try later"}, schemas.OutcomeTempfail, "mail", 451, "4.7.1", "greylisted"},
		{"data 554 reputation", "data", &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "poor reputation"}, schemas.OutcomeRefused, "data", 554, "5.7.1", "poor reputation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mx := startMX(t, nil, nil)
			mx.setReject(tc.cmd, tc.reply)
			src := Source{Name: "r", Type: SourceSMTP, Addr: mx.addr, TLS: TLSNone}
			ev := newSender(t, testConfig([]Source{src}, []Target{seed})).Probe(context.Background(), src, seed, VariantPlain)
			if ev.Outcome != tc.outcome || ev.FailedPhase != tc.phase || ev.ReplyCode != tc.code || ev.EnhancedStatus != tc.enhanced || !strings.Contains(ev.ReplyText, tc.wantInTxt) {
				t.Fatalf("got outcome %q phase %q code %d enhanced %q text %q", ev.Outcome, ev.FailedPhase, ev.ReplyCode, ev.EnhancedStatus, ev.ReplyText)
			}
			if err := schemas.Validate(ev); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A relay that greets with 554 refuses at the banner; a closed port is an
// error at connect.
func TestBannerRefusalAndConnectError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("554 5.7.1 mta.example: Service unavailable; client host blocked using Barracuda Reputation\r\n"))
			time.Sleep(100 * time.Millisecond)
			c.Close()
		}
	}()
	src := Source{Name: "r", Type: SourceSMTP, Addr: ln.Addr().String(), TLS: TLSNone}
	s := newSender(t, testConfig([]Source{src}, []Target{seed}))
	ev := s.Probe(context.Background(), src, seed, VariantPlain)
	if ev.Outcome != schemas.OutcomeRefused || ev.FailedPhase != "banner" || ev.ReplyCode != 554 || ev.EnhancedStatus != "5.7.1" || !strings.Contains(ev.ReplyText, "Barracuda") {
		t.Errorf("banner: %q %q %d %q %q", ev.Outcome, ev.FailedPhase, ev.ReplyCode, ev.EnhancedStatus, ev.ReplyText)
	}
	if ev.Reason == "" || ev.Category == "" {
		t.Errorf("a Barracuda block has no reason/category: %q %q", ev.Reason, ev.Category)
	}
	t.Logf("banner refusal classified %s / %s", ev.Reason, ev.Category)
	if ev.EhloMs != -1 || ev.BannerMs < 0 {
		t.Errorf("banner_ms %d ehlo_ms %d", ev.BannerMs, ev.EhloMs)
	}

	closed := Source{Name: "c", Type: SourceSMTP, Addr: freeAddr(t), TLS: TLSNone}
	ev = s.Probe(context.Background(), closed, seed, VariantPlain)
	if ev.Outcome != schemas.OutcomeError || ev.FailedPhase != "connect" || ev.Error == "" || ev.ReplyCode != 0 {
		t.Errorf("connect: %q %q %q", ev.Outcome, ev.FailedPhase, ev.Error)
	}
	if err := schemas.Validate(ev); err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// STARTTLS verifies the certificate by default: an unknown CA fails in the
// starttls phase; with the CA trusted, the session is encrypted, AUTH works
// with both mechanisms and never leaks the password.
func TestStartTLSVerificationAndAuth(t *testing.T) {
	srvTLS, caFile := selfSigned(t)
	mx := startMX(t, srvTLS, func(s *smtp.Server) { s.AllowInsecureAuth = false })
	mx.authUser, mx.authPass = "probe-user", "s3cret-pass"

	untrusted := Source{Name: "u", Type: SourceSMTP, Addr: mx.addr, TLS: TLSStartTLS, Username: "probe-user", Password: "s3cret-pass"}
	s := newSender(t, testConfig([]Source{untrusted}, []Target{seed}))
	ev := s.Probe(context.Background(), untrusted, seed, VariantPlain)
	if ev.Outcome != schemas.OutcomeError || ev.FailedPhase != "starttls" {
		t.Fatalf("untrusted certificate: outcome %q phase %q error %q", ev.Outcome, ev.FailedPhase, ev.Error)
	}

	for _, mech := range []string{"plain", "login"} {
		src := Source{Name: "t-" + mech, Type: SourceSMTP, Addr: mx.addr, TLS: TLSStartTLS, TLSCAFile: caFile,
			Username: "probe-user", Password: "s3cret-pass", AuthMechanism: mech, HeloName: "out.sender.test"}
		s := newSender(t, testConfig([]Source{src}, []Target{seed}))
		ev := s.Probe(context.Background(), src, seed, VariantHTML)
		if ev.Outcome != schemas.OutcomeAccepted {
			t.Fatalf("%s: outcome %q phase %q error %q reply %q", mech, ev.Outcome, ev.FailedPhase, ev.Error, ev.ReplyText)
		}
		if !strings.HasPrefix(ev.TLSVersion, "TLS1.") || ev.TLSCipher == "" || ev.StarttlsMs < 0 || ev.AuthMs < 0 || ev.AuthMechanism != strings.ToUpper(mech) {
			t.Errorf("%s: tls %q %q starttls_ms %d auth_ms %d mech %q", mech, ev.TLSVersion, ev.TLSCipher, ev.StarttlsMs, ev.AuthMs, ev.AuthMechanism)
		}
	}
	got := mx.got()
	if len(got) != 2 || !got[0].TLS || got[0].Auth != "PLAIN" || got[1].Auth != "LOGIN" {
		t.Fatalf("relay saw %+v", got)
	}

	bad := Source{Name: "b", Type: SourceSMTP, Addr: mx.addr, TLS: TLSStartTLS, TLSCAFile: caFile, Username: "probe-user", Password: "wrong-password"}
	ev = newSender(t, testConfig([]Source{bad}, []Target{seed})).Probe(context.Background(), bad, seed, VariantPlain)
	if ev.Outcome != schemas.OutcomeRefused || ev.FailedPhase != "auth" || ev.ReplyCode != 535 {
		t.Errorf("bad password: %q %q %d", ev.Outcome, ev.FailedPhase, ev.ReplyCode)
	}
	if strings.Contains(ev.ReplyText+ev.Error, "wrong-password") {
		t.Error("the password leaked into the event")
	}
}

func TestImplicitTLS(t *testing.T) {
	srvTLS, caFile := selfSigned(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mx := &fakeMX{reject: map[string]*smtp.SMTPError{}}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &mxSession{mx: mx, conn: c}, nil }))
	srv.Domain = "mx.test"
	go srv.Serve(tls.NewListener(inner, srvTLS))
	t.Cleanup(func() { srv.Close() })
	src := Source{Name: "i", Type: SourceSMTP, Addr: inner.Addr().String(), TLS: TLSImplicit, TLSCAFile: caFile}
	ev := newSender(t, testConfig([]Source{src}, []Target{seed})).Probe(context.Background(), src, seed, VariantPlain)
	if ev.Outcome != schemas.OutcomeAccepted || ev.TLSVersion == "" || ev.StarttlsMs < 0 {
		t.Fatalf("implicit TLS: %q %q %q tls %q", ev.Outcome, ev.FailedPhase, ev.Error, ev.TLSVersion)
	}
	if got := mx.got(); len(got) != 1 || !got[0].TLS {
		t.Fatalf("the relay got %+v", got)
	}
}

func TestDKIMSignatureVerifies(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	mx := startMX(t, nil, nil)
	src := Source{Name: "r", Type: SourceSMTP, Addr: mx.addr, TLS: TLSNone}
	cfg := testConfig([]Source{src}, []Target{seed})
	cfg.DKIM = DKIMConfig{Domain: "sender.test", Selector: "probe", PrivateKey: config.Secret(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))}
	ev := newSender(t, cfg).Probe(context.Background(), src, seed, VariantPlain)
	if ev.Outcome != schemas.OutcomeAccepted || ev.DKIMDomain != "sender.test" || ev.DKIMSelector != "probe" {
		t.Fatalf("%+v", ev)
	}
	record := "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(mx.got()[0].Data), &dkim.VerifyOptions{
		LookupTXT: func(domain string) ([]string, error) {
			if domain != "probe._domainkey.sender.test" {
				t.Errorf("lookup of %s", domain)
			}
			return []string{record}, nil
		},
	})
	if err != nil || len(verifs) != 1 || verifs[0].Err != nil {
		t.Fatalf("dkim verify: %v %+v", err, verifs)
	}
	if !strings.Contains(strings.ToLower(strings.Join(verifs[0].HeaderKeys, ",")), strings.ToLower(tracking.HeaderName)) {
		t.Errorf("the signature does not cover the tracking header: %v", verifs[0].HeaderKeys)
	}
}

func TestRateCapPerProvider(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newLimiter(0, map[string]int{"gmail": 2}, func() time.Time { return now })
	if l.reserve("gmail") != 0 || l.reserve("gmail") != 0 {
		t.Fatal("the first two are within the cap")
	}
	if w := l.reserve("gmail"); w != 30*time.Second {
		t.Fatalf("third waits %s, want 30s", w)
	}
	if l.reserve("outlook") != 0 {
		t.Fatal("other providers are not capped (default 0)")
	}
	now = now.Add(90 * time.Second)
	if w := l.reserve("gmail"); w != 0 {
		t.Fatalf("after 90s: wait %s", w)
	}
}

func TestVariantsRotateByRound(t *testing.T) {
	tgt := Target{Variants: []string{VariantPlain, VariantHTML}}
	if variantFor(tgt, 0) != VariantPlain || variantFor(tgt, 1) != VariantHTML || variantFor(tgt, 2) != VariantPlain {
		t.Fatal("variants do not rotate")
	}
	if variantFor(Target{}, 5) != VariantPlain {
		t.Fatal("default variant")
	}
}

func TestConfigValidation(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Sources = []Source{
		{Name: "a", Type: SourceSMTP, Addr: "relay.example.net:587", TLS: TLSNone, Username: "u", Password: "p"},
		{Name: "a", Type: "carrier-pigeon"},
	}
	cfg.Targets = []Target{{Name: "t", Provider: "gmail", Address: "not an address", Variants: []string{"rich"}, Headers: map[string]string{"From": "x"}}}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no problems found")
	}
	for _, want := range []string{"from", "sources[0].tls", "sources[1].name", "sources[1].type", "targets[0].address", "targets[0].variants", "targets[0].headers"} {
		if !strings.Contains(err.Error(), want+":") {
			t.Errorf("no problem at %s in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), `"p"`) {
		t.Error("a password appears in the problems")
	}
}

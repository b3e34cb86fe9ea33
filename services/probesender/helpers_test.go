package probesender

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/schemas/tracking"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// fakeMX is an in-process go-smtp server that records what it receives
// and answers each command as the test says.
type fakeMX struct {
	addr string
	srv  *smtp.Server

	mu       sync.Mutex
	messages []received
	authUser string
	authPass string
	// reject, when set, is returned from the named command ("mail",
	// "rcpt", "data").
	reject map[string]*smtp.SMTPError
}

type received struct {
	From, To string
	Data     []byte
	TLS      bool
	Auth     string
	Helo     string
	At       time.Time
}

func startMX(t *testing.T, tlsCfg *tls.Config, configure func(*smtp.Server)) *fakeMX {
	t.Helper()
	mx := &fakeMX{reject: map[string]*smtp.SMTPError{}}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &mxSession{mx: mx, tls: isTLS, conn: c}, nil
	}))
	srv.Domain = "mx.test"
	srv.AllowInsecureAuth = true
	srv.TLSConfig = tlsCfg
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	if configure != nil {
		configure(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	mx.addr = ln.Addr().String()
	mx.srv = srv
	return mx
}

func (mx *fakeMX) setReject(cmd string, e *smtp.SMTPError) {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	mx.reject[cmd] = e
}

func (mx *fakeMX) got() []received {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	return append([]received(nil), mx.messages...)
}

type mxSession struct {
	mx       *fakeMX
	tls      bool
	conn     *smtp.Conn
	from, to string
	auth     string
}

func (s *mxSession) rejectFor(cmd string) error {
	s.mx.mu.Lock()
	defer s.mx.mu.Unlock()
	if e := s.mx.reject[cmd]; e != nil {
		return e
	}
	return nil
}

func (s *mxSession) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

func (s *mxSession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		s.mx.mu.Lock()
		defer s.mx.mu.Unlock()
		if user != s.mx.authUser || pass != s.mx.authPass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.auth = mech
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, errors.New("unsupported")
}

func (s *mxSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return s.rejectFor("mail")
}

func (s *mxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = to
	return s.rejectFor("rcpt")
}

func (s *mxSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := s.rejectFor("data"); err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.mx.mu.Lock()
	s.mx.messages = append(s.mx.messages, received{From: s.from, To: s.to, Data: data, TLS: isTLS, Auth: s.auth, Helo: s.conn.Hostname(), At: time.Now()})
	s.mx.mu.Unlock()
	return nil
}

func (s *mxSession) Reset()        {}
func (s *mxSession) Logout() error { return nil }

// loginServer is the server side of AUTH LOGIN (go-sasl has only the
// client).
type loginServer struct {
	step  int
	user  string
	check func(user, pass string) error
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if resp != nil {
			l.user = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(resp)
		l.step++
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

// selfSigned returns a server TLS config for 127.0.0.1 and the PEM file of
// its certificate, to trust through tls_ca_file.
func selfSigned(t *testing.T) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "relay.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		DNSNames:              []string{"relay.test"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}, path
}

// testSettings are a sender's settings on js with the test keyring.
func testSettings(js jetstream.JetStream) worker.Settings {
	ring := testRing()
	return worker.Settings{JetStream: js, Source: testSource, Tracking: worker.Tracking{Keyring: &ring}}
}

func testRing() tracking.Keyring {
	return tracking.Keyring{Current: tracking.Key{ID: "test", Secret: []byte("0123456789abcdef0123456789abcdef")}}
}

func testConfig(sources []Source, targets []Target) Config {
	cfg := DefaultConfig()
	cfg.From = "probe@sender.test"
	cfg.Timeout = config10s
	cfg.Sources = sources
	cfg.Targets = targets
	return cfg
}

var testSource = schemas.Source{Worker: WorkerName, Host: "test"}

package fblingester

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailmon/mailmon/schemas"
)

func (in *Ingester) newSMTPServer() *smtp.Server {
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{in: in, fromNetwork: in.trust.fromNetwork(c.Conn().RemoteAddr())}, nil
	}))
	s.Domain = in.cfg.SMTP.Hostname
	s.MaxMessageBytes = in.cfg.MaxMessageBytes.Int64()
	s.MaxRecipients = in.cfg.SMTP.MaxRecipients
	s.ReadTimeout = in.cfg.SMTP.ReadTimeout.Std()
	s.WriteTimeout = in.cfg.SMTP.WriteTimeout.Std()
	s.TLSConfig = in.tls // STARTTLS is offered only with a certificate
	// AUTH PLAIN sends the password as it is: over TLS only, except on a
	// loopback listener, where nothing crosses a network.
	s.AllowInsecureAuth = listensOnLoopback(in.cfg.SMTP.Listen)
	s.ErrorLog = discardLogger{}
	return s
}

// accepts says whether a recipient is one of ours: a configured address,
// or any address at a configured domain. Everything else is relaying.
func (in *Ingester) accepts(rcpt string) bool {
	rcpt = strings.ToLower(strings.Trim(strings.TrimSpace(rcpt), "<>"))
	if in.addrs[rcpt] {
		return true
	}
	i := strings.LastIndexByte(rcpt, '@')
	return i > 0 && in.domains[strings.TrimRight(rcpt[i+1:], ".")]
}

var (
	errRelay = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
		Message: "relaying denied: this server accepts feedback reports and bounces for its own addresses only"}
	errRetry = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "report not stored, try again later"}
	errTooBigToStore = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
		Message: "report cannot be stored (too big or invalid once read); kept for the operator, do not resend"}
	errAuthFailed = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8},
		Message: "authentication credentials invalid"}
)

// session is one SMTP transaction at a time on one connection.
type session struct {
	in    *Ingester
	rcpts int
	// fromNetwork: the client is in trust.reporter_networks; user: the
	// name it authenticated as. Both last for the connection.
	fromNetwork bool
	user        string
}

func (s *session) Reset()        { s.rcpts = 0 }
func (s *session) Logout() error { return nil }

// AuthMechanisms offers PLAIN when users are configured (go-smtp offers
// AUTH only over TLS unless AllowInsecureAuth).
func (s *session) AuthMechanisms() []string {
	if len(s.in.trust.users) == 0 {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || len(s.in.trust.users) == 0 {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if (identity != "" && identity != username) || !s.in.trust.checkUser(username, password) {
			s.in.m.authFailed.Inc()
			// The user name may be a mistyped password: not logged.
			s.in.log.Warn("smtp authentication failed")
			return errAuthFailed
		}
		s.user = username
		return nil
	}), nil
}

// origin says how far the input vouches for what this session delivers.
func (s *session) origin() origin {
	o := origin{via: schemas.ReceivedViaSMTP}
	switch {
	case s.user != "":
		o.trust = schemas.TrustSMTPAuth
	case s.fromNetwork:
		o.trust = schemas.TrustReporterNetwork
	}
	return o
}

// Mail accepts any sender, the null sender of bounces included.
func (s *session) Mail(string, *smtp.MailOptions) error { return nil }

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !s.in.accepts(to) {
		s.in.m.smtpRefused.WithLabelValues("relay").Inc()
		return errRelay
	}
	s.rcpts++
	return nil
}

// Data answers 250 only once the message's events (or its dead-letter
// copy) are stored by JetStream; a failure to store is 451 so the sender
// retries, and the retry publishes the same event ids. A message whose
// events can never be stored is dead-lettered and refused with 552: a
// retry could only fail again.
func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		if errors.Is(err, smtp.ErrDataTooLarge) {
			s.in.m.smtpRefused.WithLabelValues("too_large").Inc()
		}
		return err // go-smtp answers 552 for a too large message
	}
	// Processing is not cut by the worker's shutdown: the server's drain
	// waits for it, bounded by publish_timeout.
	res, err := s.in.handle(context.Background(), raw, s.origin())
	if err != nil {
		s.in.m.smtpRefused.WithLabelValues("retry").Inc()
		s.in.log.Warn("report not stored; answered 451", "error", err)
		return errRetry
	}
	if res.unstorable {
		s.in.m.smtpRefused.WithLabelValues("unstorable").Inc()
		return errTooBigToStore
	}
	return nil
}

// limitListener bounds the connections open at once, and how long each
// may last. A connection over the limit is told 421 and closed at once
// rather than left waiting, so the sender retries later instead of timing
// out.
type limitListener struct {
	net.Listener
	sem        chan struct{}
	onRefuse   func()
	session    time.Duration
	onDeadline func()
}

func newLimitListener(l net.Listener, n int, session time.Duration, onRefuse, onDeadline func()) *limitListener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n), session: session, onRefuse: onRefuse, onDeadline: onDeadline}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.sem <- struct{}{}:
			lc := &limitConn{Conn: c, release: sync.OnceFunc(func() { <-l.sem }), end: time.Now().Add(l.session),
				onDeadline: sync.OnceFunc(l.onDeadline)}
			_ = lc.SetDeadline(time.Time{})
			return lc, nil
		default:
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(c, "421 4.7.0 too many connections, try again later\r\n")
			_ = c.Close()
			l.onRefuse()
		}
	}
}

// limitConn is one accepted connection. Every deadline go-smtp sets (per
// command) is cut to the end of the session: a client that keeps sending
// NOOPs inside read_timeout is still closed at session_timeout. Writes get
// a short grace past it, so the 421 go-smtp sends on a read timeout can
// leave.
type limitConn struct {
	net.Conn
	release    func()
	end        time.Time
	onDeadline func()
}

// sessionWriteGrace is how long past the session's end a write may take.
const sessionWriteGrace = 5 * time.Second

func (c *limitConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *limitConn) SetReadDeadline(t time.Time) error {
	if t.IsZero() || t.After(c.end) {
		t = c.end
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *limitConn) SetWriteDeadline(t time.Time) error {
	if end := c.end.Add(sessionWriteGrace); t.IsZero() || t.After(end) {
		t = end
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *limitConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(c.end) {
		c.onDeadline()
	}
	return n, err
}

func (c *limitConn) Close() error {
	c.release()
	return c.Conn.Close()
}

// discardLogger silences go-smtp's per-connection error log (client
// disconnects, timeouts): outcomes are counted in metrics instead.
type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

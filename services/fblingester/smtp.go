package fblingester

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailmon/mailmon/schemas"
)

func (in *Ingester) newSMTPServer() *smtp.Server {
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &session{in: in}, nil
	}))
	s.Domain = in.cfg.SMTP.Hostname
	s.MaxMessageBytes = in.cfg.MaxMessageBytes.Int64()
	s.MaxRecipients = in.cfg.SMTP.MaxRecipients
	s.ReadTimeout = in.cfg.SMTP.ReadTimeout.Std()
	s.WriteTimeout = in.cfg.SMTP.WriteTimeout.Std()
	s.TLSConfig = in.tls // STARTTLS is offered only with a certificate
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
)

// session is one SMTP transaction at a time on one connection.
type session struct {
	in    *Ingester
	rcpts int
}

func (s *session) Reset()        { s.rcpts = 0 }
func (s *session) Logout() error { return nil }

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
// copy) are stored by JetStream; anything else is 451 so the sender
// retries, and the retry publishes the same event ids.
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
	if _, err := s.in.handle(context.Background(), raw, schemas.ReceivedViaSMTP); err != nil {
		s.in.m.smtpRefused.WithLabelValues("retry").Inc()
		s.in.log.Warn("report not stored; answered 451", "err", err)
		return errRetry
	}
	return nil
}

// limitListener bounds the connections open at once. A connection over
// the limit is told 421 and closed at once rather than left waiting, so
// the sender retries later instead of timing out.
type limitListener struct {
	net.Listener
	sem      chan struct{}
	onRefuse func()
}

func newLimitListener(l net.Listener, n int, onRefuse func()) *limitListener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n), onRefuse: onRefuse}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.sem <- struct{}{}:
			return &limitConn{Conn: c, release: sync.OnceFunc(func() { <-l.sem })}, nil
		default:
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(c, "421 4.7.0 too many connections, try again later\r\n")
			_ = c.Close()
			l.onRefuse()
		}
	}
}

type limitConn struct {
	net.Conn
	release func()
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

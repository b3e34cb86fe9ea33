package notifier

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// maxRelayReplyBytes bounds what one SMTP exchange reads from the relay
// (banner, EHLO list, replies; TLS records included): replies are a few
// hundred bytes, so a relay sending more is broken or hostile and the
// exchange ends instead of filling memory.
const maxRelayReplyBytes = 256 << 10

// maxReplyTextRunes bounds the relay's reply text quoted in an error.
const maxReplyTextRunes = 300

// RelayError is a failed SMTP exchange of an email route: the step that
// failed and, when the relay answered, its reply. A 4xx reply or no reply
// at all (connection refused, timeout, TLS failure) may succeed later; a
// 5xx reply will not until the relay or the route changes. Either way the
// notification is not delivered, and the notifier retries it.
type RelayError struct {
	// Step is connect, tls, greeting, ehlo, starttls, auth, mail, rcpt or
	// data.
	Step string
	// Code is the relay's reply code; 0 when it sent none.
	Code int
	// Text is the relay's reply text (with its enhanced status code),
	// one line, bounded.
	Text string
	// Err is the cause.
	Err error
}

func (e *RelayError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("smtp %s: the relay replied %d %s", e.Step, e.Code, e.Text)
	}
	return fmt.Sprintf("smtp %s: %v", e.Step, e.Err)
}

func (e *RelayError) Unwrap() error { return e.Err }

// Temporary reports whether the failure may go away by itself: anything
// but a 5xx reply.
func (e *RelayError) Temporary() bool { return e.Code/100 != 5 }

// relayFailure wraps err from step into a *RelayError, taking the reply
// code and text from the relay's answer when there was one. When ctx ended
// (the route's timeout, or the notifier stopping), that is the cause: the
// connection was closed under the exchange.
func relayFailure(ctx context.Context, step string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return &RelayError{Step: step, Err: fmt.Errorf("%w (%v)", ctxErr, err)}
	}
	e := &RelayError{Step: step, Err: err}
	var se *smtp.SMTPError
	var te *textproto.Error
	switch {
	case errors.As(err, &se):
		e.Code, e.Text = se.Code, se.Message
		if se.EnhancedCode != smtp.EnhancedCodeNotSet && se.EnhancedCode != smtp.NoEnhancedCode {
			e.Text = fmt.Sprintf("%d.%d.%d %s", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
		}
	case errors.As(err, &te):
		e.Code, e.Text = te.Code, te.Msg
	}
	e.Text = oneLine(e.Text, maxReplyTextRunes)
	return e
}

// sendEmail delivers one notification as one message to every recipient
// of the route, or returns why not.
func (s *sender) sendEmail(ctx context.Context, n Notification) error {
	now := s.now()
	return s.sendMail(ctx, func(from *mail.Address, to []*mail.Address) []byte { return emailMessage(from, to, n, now) })
}

// sendMail sends the message built for the route's sender and recipients
// through its relay. All recipients take it in one SMTP transaction: a
// recipient refused aborts it, so a retry never sends a second copy to
// those that took the first.
func (s *sender) sendMail(ctx context.Context, message func(from *mail.Address, to []*mail.Address) []byte) error {
	r := s.route
	from, err := parseEmailAddress(r.From)
	if err != nil {
		return err
	}
	to := make([]*mail.Address, 0, len(r.To))
	for _, t := range r.To {
		a, err := parseEmailAddress(t)
		if err != nil {
			return err
		}
		to = append(to, a)
	}
	timeout := r.Timeout.Std()
	if timeout <= 0 {
		timeout = s.client.Timeout
	}
	return sendSMTP(ctx, r, timeout, from, to, message(from, to))
}

// sendSMTP runs one SMTP exchange with the route's relay, bounded by
// timeout as a whole: connect, TLS, EHLO, AUTH, MAIL, RCPT, DATA.
func sendSMTP(ctx context.Context, r Route, timeout time.Duration, from *mail.Address, to []*mail.Address, msg []byte) error {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	mode := r.TLS
	if mode == "" {
		mode = EmailTLSStartTLS
	}
	var tlsCfg *tls.Config
	if mode != EmailTLSNone {
		var err error
		if tlsCfg, err = emailTLSConfig(r); err != nil {
			return &RelayError{Step: "tls", Err: err}
		}
	}
	helo := r.HeloName
	if helo == "" {
		helo = defaultHeloName()
	}

	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", r.SMTPAddr)
	if err != nil {
		return relayFailure(ctx, "connect", err)
	}
	defer raw.Close()
	// go-smtp sets a deadline per command and clears it after; closing the
	// socket when ctx ends bounds the whole exchange, writes included.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	var conn net.Conn = &budgetConn{Conn: raw, left: maxRelayReplyBytes}

	switch mode {
	case EmailTLSImplicit:
		tc := tls.Client(conn, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return relayFailure(ctx, "tls", err)
		}
		conn = tc
	case EmailTLSStartTLS:
		tc, err := startTLS(ctx, conn, tlsCfg, helo, timeout)
		if err != nil {
			return err
		}
		// go-smtp reads a greeting before its EHLO; the relay sends none
		// after STARTTLS, so the client is handed the one it already gave.
		conn = &greetedConn{Conn: tc, greeting: strings.NewReader("220 TLS established\r\n")}
	}

	c := smtp.NewClient(conn)
	c.CommandTimeout = timeout
	c.SubmissionTimeout = timeout
	defer c.Close()
	if err := c.Hello(helo); err != nil {
		return relayFailure(ctx, "ehlo", err)
	}
	if r.Username != "" {
		if err := authenticate(c, r); err != nil {
			return relayFailure(ctx, "auth", err)
		}
	}
	if err := c.Mail(from.Address, nil); err != nil {
		return relayFailure(ctx, "mail", err)
	}
	for _, a := range to {
		if err := c.Rcpt(a.Address, nil); err != nil {
			return relayFailure(ctx, "rcpt "+a.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return relayFailure(ctx, "data", err)
	}
	if _, err := w.Write(msg); err != nil {
		return relayFailure(ctx, "data", err)
	}
	if err := w.Close(); err != nil {
		return relayFailure(ctx, "data", err)
	}
	_ = c.Quit() // the relay took the message; a failed QUIT changes nothing
	return nil
}

// authenticate logs in with PLAIN, or LOGIN when the relay offers only
// that. A relay that offers no AUTH at all is an error rather than a
// reason to send without logging in: the route asked for it.
func authenticate(c *smtp.Client, r Route) error {
	ok, mechs := c.Extension("AUTH")
	if !ok {
		return errors.New("the relay offers no AUTH")
	}
	offered := strings.Fields(strings.ToUpper(mechs))
	switch {
	case slices.Contains(offered, "PLAIN"):
		return c.Auth(sasl.NewPlainClient("", r.Username, r.Password.Reveal()))
	case slices.Contains(offered, "LOGIN"):
		return c.Auth(sasl.NewLoginClient(r.Username, r.Password.Reveal()))
	default:
		return fmt.Errorf("the relay offers AUTH %s, neither PLAIN nor LOGIN", oneLine(mechs, 100))
	}
}

// startTLS reads the greeting, says EHLO as helo (go-smtp's own STARTTLS
// would greet as "localhost" first), sends STARTTLS and completes the TLS
// handshake.
func startTLS(ctx context.Context, conn net.Conn, cfg *tls.Config, helo string, timeout time.Duration) (*tls.Conn, error) {
	_ = conn.SetDeadline(time.Now().Add(timeout))
	br := bufio.NewReader(conn)
	tp := textproto.NewReader(br)
	if _, _, err := tp.ReadResponse(220); err != nil {
		return nil, relayFailure(ctx, "greeting", err)
	}
	if _, err := fmt.Fprintf(conn, "EHLO %s\r\n", helo); err != nil {
		return nil, relayFailure(ctx, "ehlo", err)
	}
	_, ext, err := tp.ReadResponse(250)
	if err != nil {
		return nil, relayFailure(ctx, "ehlo", err)
	}
	offered := false
	for _, line := range strings.Split(ext, "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 && strings.EqualFold(f[0], "STARTTLS") {
			offered = true
		}
	}
	if !offered {
		return nil, &RelayError{Step: "starttls", Err: errors.New("the relay does not offer STARTTLS (tls: starttls)")}
	}
	if _, err := io.WriteString(conn, "STARTTLS\r\n"); err != nil {
		return nil, relayFailure(ctx, "starttls", err)
	}
	if _, _, err := tp.ReadResponse(220); err != nil {
		return nil, relayFailure(ctx, "starttls", err)
	}
	// Anything the relay sent after its 220 arrived in clear but would be
	// read as if it came over TLS (the STARTTLS injection of CVE-2011-0411).
	if br.Buffered() > 0 {
		return nil, &RelayError{Step: "starttls", Err: errors.New("the relay sent data after its STARTTLS reply, before TLS")}
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, relayFailure(ctx, "tls", err)
	}
	_ = conn.SetDeadline(time.Time{})
	return tc, nil
}

// greetedConn replays a greeting before what the connection reads.
type greetedConn struct {
	net.Conn
	greeting io.Reader
}

func (g *greetedConn) Read(p []byte) (int, error) {
	if g.greeting != nil {
		n, err := g.greeting.Read(p)
		if err == io.EOF {
			g.greeting = nil
			err = nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
	return g.Conn.Read(p)
}

// budgetConn fails reads once left bytes were read.
type budgetConn struct {
	net.Conn
	left int
}

var errRelayTooTalkative = fmt.Errorf("the relay sent more than %d KiB of replies", maxRelayReplyBytes>>10)

func (b *budgetConn) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errRelayTooTalkative
	}
	if len(p) > b.left {
		p = p[:b.left]
	}
	n, err := b.Conn.Read(p)
	b.left -= n
	return n, err
}

// defaultHeloName is this machine's host name when it is one EHLO takes,
// else "localhost".
func defaultHeloName() string {
	if h, err := os.Hostname(); err == nil && validHeloName(h) {
		return h
	}
	return "localhost"
}

package probesender

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailmon/mailmon/schemas"
)

// Phases of a submission, the failed_phase values of probe.sent.
const (
	phaseConnect  = "connect"
	phaseBanner   = "banner"
	phaseEHLO     = "ehlo"
	phaseStartTLS = "starttls"
	phaseAuth     = "auth"
	phaseMail     = "mail"
	phaseRcpt     = "rcpt"
	phaseData     = "data"
	phaseSubmit   = "submit"
)

// result is the transaction as the sender saw it. Durations are -1 when
// the phase did not happen.
type result struct {
	Outcome                                                        string
	FailedPhase                                                    string
	ReplyCode                                                      int
	EnhancedStatus                                                 string
	ReplyText                                                      string
	QueueID                                                        string
	Error                                                          string
	TLSVersion                                                     string
	TLSCipher                                                      string
	AuthMechanism                                                  string
	Connect, Banner, EHLO, StartTLS, Auth, Mail, Rcpt, Data, Total time.Duration
	// Done is when the final reply came back (or the failure happened).
	Done time.Time
}

func newResult() result {
	return result{Connect: -1, Banner: -1, EHLO: -1, StartTLS: -1, Auth: -1, Mail: -1, Rcpt: -1, Data: -1, Total: -1}
}

// fail records a failure in phase: an SMTP reply is classified by its
// class (4xx tempfail, 5xx refused); anything else is an error.
func (r *result) fail(phase string, err error) {
	r.FailedPhase = phase
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 200 && se.Code < 600 {
		r.ReplyCode = se.Code
		r.ReplyText = oneLine(se.Message)
		if se.EnhancedCode[0] > 0 {
			r.EnhancedStatus = fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
		switch se.Code / 100 {
		case 4:
			r.Outcome = schemas.OutcomeTempfail
		case 5:
			r.Outcome = schemas.OutcomeRefused
		default:
			r.Outcome = schemas.OutcomeError
			r.Error = "unexpected reply " + fmt.Sprint(se.Code)
		}
		return
	}
	var pe *textproto.Error
	if errors.As(err, &pe) {
		r.fail(phase, &smtp.SMTPError{Code: pe.Code, Message: pe.Msg, EnhancedCode: parseEnhanced(pe.Msg)})
		return
	}
	r.Outcome = schemas.OutcomeError
	r.Error = oneLine(err.Error())
}

var enhancedRE = regexp.MustCompile(`^([245])\.(\d{1,3})\.(\d{1,3})\b`)

func parseEnhanced(text string) smtp.EnhancedCode {
	m := enhancedRE.FindStringSubmatch(text)
	if m == nil {
		return smtp.EnhancedCode{}
	}
	var c smtp.EnhancedCode
	fmt.Sscan(m[1], &c[0])
	fmt.Sscan(m[2], &c[1])
	fmt.Sscan(m[3], &c[2])
	return c
}

var queuedAsRE = regexp.MustCompile(`(?i)queued as ([0-9A-Za-z]+)`)

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 1024 {
		s = s[:1024]
	}
	return s
}

// timedConn notes when the client first wrote: with go-smtp reading the
// greeting before sending EHLO, that is the end of the banner phase.
type timedConn struct {
	net.Conn
	mu         sync.Mutex
	firstWrite time.Time
}

func (c *timedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.firstWrite.IsZero() {
		c.firstWrite = time.Now()
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *timedConn) wrote() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.firstWrite
}

// replayConn serves prefix to the reader before the connection's own
// bytes: after our own STARTTLS exchange, it hands go-smtp the greeting it
// expects on a new connection.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// submitSMTP hands msg to an SMTP relay and times every phase.
//
// r is a named result so that the deferred function sets Done and Total
// on the value returned, whichever return ends the exchange.
func submitSMTP(ctx context.Context, src Source, tlsCfg *tls.Config, heloName, from, to string, msg []byte, timeout time.Duration) (r result) {
	r = newResult()
	start := time.Now()
	defer func() {
		// Done is the final reply when there was one (QUIT comes after).
		if r.Done.IsZero() {
			r.Done = time.Now()
		}
		r.Total = r.Done.Sub(start)
	}()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	d := net.Dialer{}
	if src.LocalAddr != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src.LocalAddr)}
	}
	raw, err := d.DialContext(ctx, "tcp", src.Addr)
	r.Connect = time.Since(start)
	if err != nil {
		r.fail(phaseConnect, err)
		return r
	}
	defer raw.Close()
	deadline, _ := ctx.Deadline()
	_ = raw.SetDeadline(deadline)
	// The whole exchange is bounded by ctx: close the socket when it ends.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()

	var conn net.Conn = raw
	var tlsConn *tls.Conn
	mark := time.Now()
	switch src.TLS {
	case TLSImplicit:
		tc := tls.Client(raw, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			r.StartTLS = time.Since(mark)
			r.fail(phaseStartTLS, err)
			return r
		}
		r.StartTLS = time.Since(mark)
		conn, tlsConn = tc, tc
	case TLSStartTLS:
		tc, err := startTLS(ctx, raw, tlsCfg, heloName, &r)
		if err != nil {
			return r // r has the failure
		}
		tlsConn = tc
		conn = &replayConn{Conn: tc, r: io.MultiReader(strings.NewReader("220 tls\r\n"), tc)}
	}

	tconn := &timedConn{Conn: conn}
	c := smtp.NewClient(tconn)
	c.CommandTimeout = timeout
	c.SubmissionTimeout = timeout
	defer c.Close()
	mark = time.Now()
	if err := c.Hello(heloName); err != nil {
		if src.TLS != TLSStartTLS {
			w := tconn.wrote()
			if w.IsZero() {
				r.Banner = time.Since(mark)
				r.fail(phaseBanner, err)
				return r
			}
			r.Banner = w.Sub(mark)
			r.EHLO = time.Since(w)
		} else {
			r.EHLO += time.Since(mark)
		}
		r.fail(phaseEHLO, err)
		return r
	}
	if src.TLS != TLSStartTLS {
		w := tconn.wrote()
		r.Banner = w.Sub(mark)
		r.EHLO = time.Since(w)
	} else {
		r.EHLO += time.Since(mark) // the EHLO after STARTTLS
	}
	if tlsConn != nil {
		st := tlsConn.ConnectionState()
		r.TLSVersion = strings.ReplaceAll(tls.VersionName(st.Version), " ", "")
		r.TLSCipher = tls.CipherSuiteName(st.CipherSuite)
	}

	if src.Username != "" {
		var client sasl.Client
		mech := strings.ToUpper(src.AuthMechanism)
		if mech == "LOGIN" {
			client = sasl.NewLoginClient(src.Username, src.Password.Reveal())
		} else {
			mech = "PLAIN"
			client = sasl.NewPlainClient("", src.Username, src.Password.Reveal())
		}
		r.AuthMechanism = mech
		mark = time.Now()
		err := c.Auth(client)
		r.Auth = time.Since(mark)
		if err != nil {
			r.fail(phaseAuth, err)
			return r
		}
	}
	mark = time.Now()
	err = c.Mail(from, nil)
	r.Mail = time.Since(mark)
	if err != nil {
		r.fail(phaseMail, err)
		return r
	}
	mark = time.Now()
	err = c.Rcpt(to, nil)
	r.Rcpt = time.Since(mark)
	if err != nil {
		r.fail(phaseRcpt, err)
		return r
	}
	mark = time.Now()
	w, err := c.Data()
	if err != nil {
		r.Data = time.Since(mark)
		r.fail(phaseData, err)
		return r
	}
	if _, err := w.Write(msg); err != nil {
		r.Data = time.Since(mark)
		r.fail(phaseData, err)
		return r
	}
	resp, err := w.CloseWithResponse()
	r.Data = time.Since(mark)
	if err != nil {
		r.fail(phaseData, err)
		return r
	}
	r.Outcome = schemas.OutcomeAccepted
	r.ReplyCode = 250
	text := oneLine(resp.StatusText)
	if ec := parseEnhanced(text); ec[0] > 0 {
		r.EnhancedStatus = fmt.Sprintf("%d.%d.%d", ec[0], ec[1], ec[2])
		text = strings.TrimSpace(strings.TrimPrefix(text, r.EnhancedStatus))
	}
	r.ReplyText = text
	if m := queuedAsRE.FindStringSubmatch(text); m != nil {
		r.QueueID = m[1]
	}
	r.Done = time.Now()
	_ = c.Quit() // the probe is queued; a failed QUIT changes nothing
	return r
}

// startTLS reads the banner, says EHLO with our name, and upgrades the
// connection. go-smtp's own STARTTLS would say EHLO as "localhost" first.
func startTLS(ctx context.Context, conn net.Conn, cfg *tls.Config, heloName string, r *result) (*tls.Conn, error) {
	tp := textproto.NewReader(bufio.NewReader(conn))
	w := bufio.NewWriter(conn)
	mark := time.Now()
	if _, _, err := tp.ReadResponse(220); err != nil {
		r.Banner = time.Since(mark)
		r.fail(phaseBanner, err)
		return nil, err
	}
	r.Banner = time.Since(mark)
	mark = time.Now()
	fmt.Fprintf(w, "EHLO %s\r\n", heloName)
	if err := w.Flush(); err != nil {
		r.fail(phaseEHLO, err)
		return nil, err
	}
	_, ext, err := tp.ReadResponse(250)
	r.EHLO = time.Since(mark)
	if err != nil {
		r.fail(phaseEHLO, err)
		return nil, err
	}
	if !hasExtension(ext, "STARTTLS") {
		err := errors.New("the relay does not offer STARTTLS")
		r.fail(phaseStartTLS, err)
		return nil, err
	}
	mark = time.Now()
	fmt.Fprintf(w, "STARTTLS\r\n")
	if err := w.Flush(); err != nil {
		r.fail(phaseStartTLS, err)
		return nil, err
	}
	if _, _, err := tp.ReadResponse(220); err != nil {
		r.StartTLS = time.Since(mark)
		r.fail(phaseStartTLS, err)
		return nil, err
	}
	tc := tls.Client(conn, cfg)
	err = tc.HandshakeContext(ctx)
	r.StartTLS = time.Since(mark)
	if err != nil {
		r.fail(phaseStartTLS, err)
		return nil, err
	}
	return tc, nil
}

func hasExtension(ehlo, name string) bool {
	for _, line := range strings.Split(ehlo, "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 && strings.EqualFold(f[0], name) {
			return true
		}
	}
	return false
}

// submitSendmail pipes msg to the local sendmail command. Exit status 75
// (EX_TEMPFAIL) is a tempfail; any other failure is an error.
func submitSendmail(ctx context.Context, command []string, from, to string, msg []byte, timeout time.Duration) result {
	r := newResult()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := append(append([]string(nil), command[1:]...), "-f", from, "--", to)
	cmd := exec.CommandContext(ctx, command[0], args...)
	// sendmail reads local text: LF line ends.
	cmd.Stdin = bytes.NewReader(bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n")))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	r.Done = time.Now()
	r.Total = r.Done.Sub(start)
	if err == nil {
		r.Outcome = schemas.OutcomeAccepted
		return r
	}
	r.FailedPhase = phaseSubmit
	r.Outcome = schemas.OutcomeError
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 75 {
		r.Outcome = schemas.OutcomeTempfail
	}
	r.Error = oneLine(fmt.Sprintf("%s: %v: %s", command[0], err, out.String()))
	return r
}

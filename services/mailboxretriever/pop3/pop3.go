// Package pop3 is a small POP3 client (RFC 1939, with STLS from RFC 2595
// and AUTH from RFC 5034): just what reading a seed mailbox needs. No POP3
// module is available from the module proxy, and the protocol is small.
//
// Every command answers "+OK ..." or "-ERR ..."; a -ERR is returned as an
// *Error. Multi-line answers end with a line holding a single "."; lines
// starting with "." are dot-stuffed, which net/textproto undoes. Deletions
// (DELE) take effect only when QUIT succeeds: a session that breaks off
// deletes nothing.
package pop3

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
)

// Error is a -ERR answer.
type Error struct{ Text string }

func (e *Error) Error() string { return "pop3: -ERR " + e.Text }

// Client is one POP3 session. It is not safe for concurrent use.
type Client struct {
	conn    net.Conn
	text    *textproto.Conn
	timeout time.Duration
	// Greeting is the text of the server's +OK greeting.
	Greeting string
}

// NewClient reads the greeting on conn. timeout bounds each command.
func NewClient(conn net.Conn, timeout time.Duration) (*Client, error) {
	c := &Client{conn: conn, text: textproto.NewConn(conn), timeout: timeout}
	c.deadline()
	line, err := c.status()
	if err != nil {
		conn.Close()
		return nil, err
	}
	c.Greeting = line
	return c, nil
}

func (c *Client) deadline() {
	if c.timeout > 0 {
		_ = c.conn.SetDeadline(time.Now().Add(c.timeout))
	}
}

// status reads one status line.
func (c *Client) status() (string, error) {
	line, err := c.text.ReadLine()
	if err != nil {
		return "", err
	}
	return parseStatus(line)
}

func parseStatus(line string) (string, error) {
	switch {
	case line == "+OK" || strings.HasPrefix(line, "+OK "):
		return strings.TrimPrefix(strings.TrimPrefix(line, "+OK"), " "), nil
	case line == "-ERR" || strings.HasPrefix(line, "-ERR "):
		return "", &Error{Text: strings.TrimPrefix(strings.TrimPrefix(line, "-ERR"), " ")}
	default:
		return "", fmt.Errorf("pop3: bad status line %q", clip(line))
	}
}

// cmd sends one command and reads its status line.
func (c *Client) cmd(format string, args ...any) (string, error) {
	c.deadline()
	if err := c.text.PrintfLine(format, args...); err != nil {
		return "", err
	}
	return c.status()
}

// multi sends a command with a multi-line answer.
func (c *Client) multi(format string, args ...any) ([]byte, error) {
	if _, err := c.cmd(format, args...); err != nil {
		return nil, err
	}
	return c.text.ReadDotBytes()
}

// StartTLS upgrades the session with STLS.
func (c *Client) StartTLS(cfg *tls.Config) error {
	if _, err := c.cmd("STLS"); err != nil {
		return err
	}
	tc := tls.Client(c.conn, cfg)
	c.deadline()
	if err := tc.Handshake(); err != nil {
		return err
	}
	c.conn = tc
	c.text = textproto.NewConn(tc)
	return nil
}

// Login authenticates with USER and PASS. The password never appears in
// an error.
func (c *Client) Login(user, pass string) error {
	if strings.ContainsAny(user, "\r\n") || strings.ContainsAny(pass, "\r\n") {
		return errors.New("pop3: user or password holds a line break")
	}
	if _, err := c.cmd("USER %s", user); err != nil {
		return err
	}
	_, err := c.cmd("PASS %s", pass)
	return err
}

// Auth authenticates with AUTH and a SASL mechanism (XOAUTH2, PLAIN),
// sending the initial response on the command line.
func (c *Client) Auth(a sasl.Client) error {
	mech, ir, err := a.Start()
	if err != nil {
		return err
	}
	line := "AUTH " + mech
	if ir != nil {
		enc := base64.StdEncoding.EncodeToString(ir)
		if enc == "" {
			enc = "="
		}
		line += " " + enc
	}
	c.deadline()
	if err := c.text.PrintfLine("%s", line); err != nil {
		return err
	}
	for {
		l, err := c.text.ReadLine()
		if err != nil {
			return err
		}
		if !strings.HasPrefix(l, "+ ") && l != "+" {
			_, err := parseStatus(l)
			return err
		}
		challenge, err := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.TrimPrefix(l, "+")))
		if err != nil {
			return fmt.Errorf("pop3: bad AUTH challenge: %w", err)
		}
		resp, err := a.Next(challenge)
		if err != nil {
			// XOAUTH2 answers a failure with an error challenge; the
			// client replies empty and the server then sends -ERR.
			resp = nil
		}
		c.deadline()
		if err := c.text.PrintfLine("%s", base64.StdEncoding.EncodeToString(resp)); err != nil {
			return err
		}
	}
}

// Stat returns the message count and the mailbox size in octets.
func (c *Client) Stat() (count int, size int64, err error) {
	line, err := c.cmd("STAT")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("pop3: bad STAT answer %q", clip(line))
	}
	count, err1 := strconv.Atoi(f[0])
	size, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || count < 0 || size < 0 {
		return 0, 0, fmt.Errorf("pop3: bad STAT answer %q", clip(line))
	}
	return count, size, nil
}

// MessageUID is one line of UIDL: the message number in this session and
// its unique id, stable across sessions.
type MessageUID struct {
	Num int
	UID string
}

// UIDL lists every message with its unique id.
func (c *Client) UIDL() ([]MessageUID, error) {
	data, err := c.multi("UIDL")
	if err != nil {
		return nil, err
	}
	return ParseUIDL(data)
}

// ParseUIDL reads the lines of a UIDL answer.
func ParseUIDL(data []byte) ([]MessageUID, error) {
	var out []MessageUID
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("pop3: bad UIDL line %q", clip(line))
		}
		n, err := strconv.Atoi(f[0])
		if err != nil || n < 1 {
			return nil, fmt.Errorf("pop3: bad UIDL line %q", clip(line))
		}
		out = append(out, MessageUID{Num: n, UID: f[1]})
	}
	return out, nil
}

// Top returns the header of message n and the first lines of its body.
func (c *Client) Top(n, lines int) ([]byte, error) { return c.multi("TOP %d %d", n, lines) }

// Retr returns message n.
func (c *Client) Retr(n int) ([]byte, error) { return c.multi("RETR %d", n) }

// Dele marks message n for deletion at QUIT.
func (c *Client) Dele(n int) error {
	_, err := c.cmd("DELE %d", n)
	return err
}

// Noop keeps the session alive.
func (c *Client) Noop() error {
	_, err := c.cmd("NOOP")
	return err
}

// Quit ends the session, committing deletions, and closes the connection.
func (c *Client) Quit() error {
	_, err := c.cmd("QUIT")
	c.conn.Close()
	return err
}

// Close drops the connection without QUIT: marked deletions are undone.
func (c *Client) Close() error { return c.conn.Close() }

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

package dnssweeper

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/mailmon/mailmon/services/internal/dnsbl"
)

// ednsSize is the UDP payload size advertised for TXT and audit queries,
// the DNS Flag Day 2020 value that avoids IP fragmentation.
const ednsSize = 1232

// QueryError is a query that got no usable reply; Cause classifies it the
// way dnsbl.error events do.
type QueryError struct {
	Cause dnsbl.Cause
	Err   error
}

func (e *QueryError) Error() string { return string(e.Cause) + ": " + e.Err.Error() }

func (e *QueryError) Unwrap() error { return e.Err }

// Client sends DNS queries to one server. It keeps idle UDP sockets for
// reuse (one per concurrent query at most), checks that every reply
// answers the question that was asked, retries timeouts and network
// errors, and repeats a truncated UDP reply over TCP. It is safe for
// concurrent use.
type Client struct {
	addr        string
	timeout     time.Duration
	attempts    int
	tcpFallback bool
	idle        chan *dns.Conn
	closed      atomic.Bool
}

// ClientOptions configure a Client.
type ClientOptions struct {
	// Timeout bounds one attempt.
	Timeout time.Duration
	// Retries are extra attempts after a timeout, a network error or
	// SERVFAIL.
	Retries int
	// TCPFallback repeats a truncated reply's query over TCP.
	TCPFallback bool
	// MaxIdle is how many UDP sockets are kept open for reuse.
	MaxIdle int
}

// NewClient returns a client for the server at addr (host:port).
func NewClient(addr string, opts ClientOptions) *Client {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.MaxIdle <= 0 {
		opts.MaxIdle = 16
	}
	return &Client{
		addr:        addr,
		timeout:     opts.Timeout,
		attempts:    1 + max(opts.Retries, 0),
		tcpFallback: opts.TCPFallback,
		idle:        make(chan *dns.Conn, opts.MaxIdle),
	}
}

// Close closes the idle sockets; sockets in use are closed when returned.
func (c *Client) Close() {
	c.closed.Store(true)
	for {
		select {
		case co := <-c.idle:
			co.Close()
		default:
			return
		}
	}
}

// Exchange asks for name (fully qualified, with the trailing dot) and
// qtype with recursion desired, and returns the reply, which may carry any
// rcode. edns adds an EDNS0 OPT record advertising 1232 bytes (for TXT
// answers that would not fit in 512). It also returns the number of
// packets sent (retries and a TCP repeat included). The error is a
// *QueryError.
func (c *Client) Exchange(ctx context.Context, name string, qtype uint16, edns bool) (*dns.Msg, int, error) {
	return c.ExchangePaced(ctx, name, qtype, edns, nil)
}

// ExchangePaced is Exchange with pace called before every retry, so that
// retries keep to a rate limit too.
func (c *Client) ExchangePaced(ctx context.Context, name string, qtype uint16, edns bool, pace func(context.Context) error) (*dns.Msg, int, error) {
	sent := 0
	r, err := c.exchange(ctx, name, qtype, edns, pace, &sent)
	return r, sent, err
}

func (c *Client) exchange(ctx context.Context, name string, qtype uint16, edns bool, pace func(context.Context) error, sent *int) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns {
		m.SetEdns0(ednsSize, false)
	}
	var last error
	var servfail *dns.Msg
	for attempt := 0; attempt < c.attempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, &QueryError{Cause: dnsbl.CauseTimeout, Err: err}
		}
		if attempt > 0 {
			if pace != nil {
				if err := pace(ctx); err != nil {
					return nil, &QueryError{Cause: dnsbl.CauseTimeout, Err: err}
				}
			}
			m.Id = dns.Id()
		}
		*sent++
		r, err := c.exchangeUDP(ctx, m)
		if err != nil {
			last = err
			var qe *QueryError
			if errors.As(err, &qe) && qe.Cause == dnsbl.CauseBadAnswer {
				return nil, err
			}
			continue
		}
		if r.Truncated {
			*sent++
			return c.exchangeTCP(ctx, m)
		}
		if r.Rcode == dns.RcodeServerFailure {
			servfail = r // a recursive resolver's SERVFAIL is often passing: try again
			continue
		}
		return r, nil
	}
	if servfail != nil {
		return servfail, nil
	}
	return nil, last
}

func (c *Client) get() (*dns.Conn, error) {
	select {
	case co := <-c.idle:
		return co, nil
	default:
	}
	conn, err := net.DialTimeout("udp", c.addr, c.timeout)
	if err != nil {
		return nil, err
	}
	return &dns.Conn{Conn: conn, UDPSize: ednsSize}, nil
}

func (c *Client) put(co *dns.Conn) {
	if c.closed.Load() {
		co.Close()
		return
	}
	select {
	case c.idle <- co:
	default:
		co.Close()
	}
}

// exchangeUDP sends m once over a pooled socket and reads until the reply
// to this very question arrives. Replies with another id or question (late
// answers to earlier queries that timed out on this socket) are skipped.
func (c *Client) exchangeUDP(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	co, err := c.get()
	if err != nil {
		return nil, &QueryError{Cause: dnsbl.CauseNetwork, Err: fmt.Errorf("dial %s: %w", c.addr, err)}
	}
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	co.SetDeadline(deadline)
	if err := co.WriteMsg(m); err != nil {
		co.Close()
		return nil, &QueryError{Cause: dnsbl.CauseNetwork, Err: fmt.Errorf("send to %s: %w", c.addr, err)}
	}
	var malformed error
	for {
		r, err := co.ReadMsg()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
				c.put(co) // the socket is fine; a late reply is skipped by id
				if malformed != nil {
					return nil, &QueryError{Cause: dnsbl.CauseBadAnswer, Err: malformed}
				}
				if ctx.Err() != nil {
					return nil, &QueryError{Cause: dnsbl.CauseTimeout, Err: ctx.Err()}
				}
				return nil, &QueryError{Cause: dnsbl.CauseTimeout, Err: fmt.Errorf("no reply from %s within %s", c.addr, c.timeout)}
			}
			if r != nil && r.Id == m.Id {
				// A reply that does not unpack: keep listening for a good
				// one until the deadline, in case this one was forged.
				malformed = fmt.Errorf("malformed reply from %s: %w", c.addr, err)
				continue
			}
			if r != nil {
				continue // garbage with another id
			}
			co.Close()
			return nil, &QueryError{Cause: dnsbl.CauseNetwork, Err: fmt.Errorf("read from %s: %w", c.addr, err)}
		}
		if answers(r, m) {
			c.put(co)
			return r, nil
		}
	}
}

// answers reports whether r is the reply to query m: same id, a response,
// and the same question.
func answers(r, m *dns.Msg) bool {
	if r.Id != m.Id || !r.Response || len(r.Question) != 1 {
		return false
	}
	q, a := m.Question[0], r.Question[0]
	return a.Qtype == q.Qtype && a.Qclass == q.Qclass && strings.EqualFold(a.Name, q.Name)
}

func (c *Client) exchangeTCP(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	if !c.tcpFallback {
		return nil, &QueryError{Cause: dnsbl.CauseTruncated, Err: errors.New("reply truncated over UDP and TCP fallback is off")}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cl := &dns.Client{Net: "tcp", Timeout: c.timeout}
	m.Id = dns.Id()
	r, _, err := cl.ExchangeContext(ctx, m, c.addr)
	if err != nil {
		return nil, &QueryError{Cause: dnsbl.CauseTruncated, Err: fmt.Errorf("reply truncated over UDP, and TCP to %s failed: %w", c.addr, err)}
	}
	if !answers(r, m) || r.Truncated {
		return nil, &QueryError{Cause: dnsbl.CauseTruncated, Err: fmt.Errorf("reply truncated over UDP, and the TCP reply from %s does not answer the question", c.addr)}
	}
	return r, nil
}

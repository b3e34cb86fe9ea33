package fblingester

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/arf"
	"github.com/mailmon/mailmon/services/internal/rawmail"
)

// maxSignatures bounds the DKIM signatures verified on one message: each
// costs a key lookup and a pass over the body, and a message can carry
// any number of them.
const maxSignatures = 4

// origin is how a message reached us: the input, and the trust reason when
// the input itself vouches for it ("" when it does not: a report is then
// trusted only by an operator's DKIM signature).
type origin struct {
	via   string
	trust string // schemas.TrustReporterNetwork, TrustSMTPAuth, TrustTrustedInput or ""
}

// errDNSTemporary marks a DKIM key lookup that failed for now (timeout,
// SERVFAIL): the report is not stored untrusted but tried again later.
var errDNSTemporary = errors.New("DKIM key lookup failed temporarily")

// trustPolicy decides whether a report is evidence.
type trustPolicy struct {
	operators map[string][]string // DKIM d= → allowed senders (nil: any)
	networks  []netip.Prefix
	users     map[string][32]byte // username → SHA-256 of the password
	lookup    func(ctx context.Context, name string) ([]string, error)
	timeout   time.Duration
}

func newTrustPolicy(cfg TrustConfig) *trustPolicy {
	p := &trustPolicy{operators: map[string][]string{}, users: map[string][32]byte{}, timeout: cfg.DNSTimeout.Std()}
	for _, o := range cfg.Operators {
		var senders []string
		for _, s := range o.Senders {
			senders = append(senders, strings.ToLower(strings.TrimSpace(s)))
		}
		p.operators[normDomain(o.DKIMDomain)] = senders
	}
	for _, n := range cfg.ReporterNetworks {
		if pfx, err := parseNetwork(n); err == nil { // checked by Validate
			p.networks = append(p.networks, pfx)
		}
	}
	for _, u := range cfg.SMTPUsers {
		p.users[u.Username] = sha256.Sum256([]byte(u.Password.Reveal()))
	}
	r := net.DefaultResolver
	if cfg.Resolver != "" {
		var d net.Dialer
		r = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, cfg.Resolver)
		}}
	}
	p.lookup = r.LookupTXT
	return p
}

// fromNetwork says whether an SMTP client address is a reporter network.
func (p *trustPolicy) fromNetwork(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return false
	}
	a, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, n := range p.networks {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// checkUser compares in constant time (per user) so a wrong password
// tells nothing about the right one.
func (p *trustPolicy) checkUser(username, password string) bool {
	want, ok := p.users[username]
	got := sha256.Sum256([]byte(password))
	return ok && subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// reportTrust says whether a report is evidence and why. A report that
// came through a vouching input is trusted for that; else its own DKIM
// signatures are verified, but only those made by a configured operator
// (no lookup is made for any other domain, so a forger cannot make us
// query its DNS). The error is errDNSTemporary when an operator's key could
// not be fetched now.
func (p *trustPolicy) reportTrust(ctx context.Context, raw []byte, rep *arf.Report, o origin) (string, error) {
	if o.trust != "" {
		return o.trust, nil
	}
	if len(p.operators) == 0 {
		return schemas.TrustUnverified, nil
	}
	domains, err := p.verifyDKIM(ctx, raw, func(d string) bool { _, ok := p.operators[d]; return ok })
	for _, d := range domains {
		if p.senderAllowed(d, rep.ReportFrom) {
			return schemas.TrustOperatorDKIM, nil
		}
	}
	if err != nil {
		return "", err
	}
	return schemas.TrustUnverified, nil
}

// senderAllowed checks the report's From against an operator's senders.
func (p *trustPolicy) senderAllowed(domain, from string) bool {
	senders := p.operators[domain]
	if len(senders) == 0 {
		return true
	}
	addr := addrOf(from)
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return false
	}
	for _, s := range senders {
		if s == addr || (strings.HasPrefix(s, "@") && s[1:] == addr[at+1:]) {
			return true
		}
	}
	return false
}

// verifyDKIM verifies msg's DKIM signatures whose d= passes allowed and
// returns the domains of those that verify. Signatures of other domains
// are not looked up and fail at once. err is errDNSTemporary when an
// allowed domain's key lookup failed temporarily.
func (p *trustPolicy) verifyDKIM(ctx context.Context, msg []byte, allowed func(string) bool) ([]string, error) {
	lookup := func(name string) ([]string, error) {
		name = strings.ToLower(strings.TrimSuffix(name, "."))
		i := strings.LastIndex(name, "._domainkey.")
		if i < 0 || !allowed(name[i+len("._domainkey."):]) {
			// Not an operator's key: refused without a query. A *net.DNSError
			// that is not temporary is a permanent DKIM failure.
			return nil, &net.DNSError{Err: "not a domain whose signatures mailmon verifies", Name: name, IsNotFound: true}
		}
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout)
		defer cancel()
		txt, err := p.lookup(lctx, name)
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			return nil, dnsErr // dkim checks net.Error for Temporary
		}
		return txt, err
	}
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{LookupTXT: lookup, MaxVerifications: maxSignatures})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		// The header could not be read as a message at all.
		return nil, nil
	}
	var ok []string
	temporary := false
	for _, v := range verifs {
		d := normDomain(v.Domain)
		if !allowed(d) {
			continue
		}
		switch {
		case v.Err == nil:
			ok = append(ok, d)
		case dkim.IsTempFail(v.Err):
			temporary = true
		}
	}
	if temporary && len(ok) == 0 {
		return nil, errDNSTemporary
	}
	return ok, nil
}

// attachedOriginal returns the raw bytes of the message a report returns
// in full (a message/rfc822 or message/global part), nil when it returns
// only a header or nothing.
func attachedOriginal(raw []byte) []byte {
	var out []byte
	rawmail.ParseShallow(raw).Walk(func(p *rawmail.Part) bool {
		if out != nil {
			return false
		}
		if (p.MediaType == "message/rfc822" || p.MediaType == "message/global") && p.Message != nil {
			out = p.Message.Body
			return false
		}
		return true
	})
	return out
}

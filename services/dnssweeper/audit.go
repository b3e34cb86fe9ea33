package dnssweeper

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/dnssweeper/hygiene"
	"github.com/mailmon/mailmon/services/internal/dnsbl"
)

// dnsResolver answers the audit's questions through a Client, caching
// every answer for one audit pass (SPF evaluations of several IPs ask the
// same names again).
type dnsResolver struct {
	client *Client
	mu     sync.Mutex
	cache  map[string]cached
}

type cached struct {
	msg *dns.Msg
	err error
}

func newDNSResolver(c *Client) *dnsResolver {
	return &dnsResolver{client: c, cache: map[string]cached{}}
}

// query returns the records of qtype at name, hygiene.ErrNotFound for
// NXDOMAIN or NODATA, or an error.
func (r *dnsResolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	fqdn := dns.Fqdn(strings.ToLower(name))
	key := fmt.Sprintf("%d/%s", qtype, fqdn)
	r.mu.Lock()
	c, ok := r.cache[key]
	r.mu.Unlock()
	if !ok {
		msg, _, err := r.client.Exchange(ctx, fqdn, qtype, true)
		c = cached{msg: msg, err: err}
		r.mu.Lock()
		r.cache[key] = c
		r.mu.Unlock()
	}
	if c.err != nil {
		return nil, c.err
	}
	switch c.msg.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, fmt.Errorf("%s: NXDOMAIN: %w", strings.TrimSuffix(fqdn, "."), hygiene.ErrNotFound)
	default:
		return nil, fmt.Errorf("%s: %s", strings.TrimSuffix(fqdn, "."), dns.RcodeToString[c.msg.Rcode])
	}
	var out []dns.RR
	for _, rr := range c.msg.Answer {
		if rr.Header().Rrtype == qtype {
			out = append(out, rr)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no %s records: %w", strings.TrimSuffix(fqdn, "."), dns.TypeToString[qtype], hygiene.ErrNotFound)
	}
	return out, nil
}

func (r *dnsResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := r.query(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return out, nil
}

func (r *dnsResolver) LookupIP(ctx context.Context, name string, ip6 bool) ([]netip.Addr, error) {
	qtype := dns.TypeA
	if ip6 {
		qtype = dns.TypeAAAA
	}
	rrs, err := r.query(ctx, name, qtype)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, rr := range rrs {
		var ip []byte
		switch v := rr.(type) {
		case *dns.A:
			ip = v.A
		case *dns.AAAA:
			ip = v.AAAA
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a.Unmap())
		}
	}
	return out, nil
}

func (r *dnsResolver) LookupMX(ctx context.Context, name string) ([]hygiene.MX, error) {
	rrs, err := r.query(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	out := make([]hygiene.MX, 0, len(rrs))
	for _, rr := range rrs {
		mx := rr.(*dns.MX)
		out = append(out, hygiene.MX{Pref: mx.Preference, Host: strings.TrimSuffix(strings.ToLower(mx.Mx), ".")})
	}
	return out, nil
}

func (r *dnsResolver) LookupPTR(ctx context.Context, addr netip.Addr) ([]string, error) {
	name, err := dns.ReverseAddr(addr.String())
	if err != nil {
		return nil, err
	}
	rrs, err := r.query(ctx, name, dns.TypePTR)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, strings.TrimSuffix(strings.ToLower(rr.(*dns.PTR).Ptr), "."))
	}
	return out, nil
}

// Audit runs one DNS hygiene pass: a dns.audit event for every sending IP
// (configured IPs and seen ones; not every address of the CIDRs) and every
// configured domain.
func (s *Sweeper) Audit(ctx context.Context) error {
	if err := s.load(ctx); err != nil {
		return err
	}
	auditID := schemas.NewID()
	r := newDNSResolver(s.auditCli)
	var ips []netip.Addr
	var domains []string
	for _, t := range s.static {
		if t.Kind == dnsbl.KindDomain {
			domains = append(domains, t.Domain)
		}
	}
	for _, ipText := range s.cfg.IPs {
		if a, err := netip.ParseAddr(strings.TrimSpace(ipText)); err == nil {
			ips = append(ips, a.Unmap())
		}
	}
	targets, _ := s.targets(time.Now())
	for _, t := range targets {
		if t.Kind == dnsbl.KindIP && !slices.Contains(ips, t.IP) && s.isSeen(t.IP) {
			ips = append(ips, t.IP)
		}
	}
	published := 0
	for _, ip := range ips {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		a := hygiene.AuditIP(ctx, r, ip)
		ev := &schemas.DNSAudit{AuditID: auditID, Target: ip.String(), TargetKind: schemas.TargetIP, SourceIP: ip.String(), PTRNames: a.PTRNames}
		if err := s.publishAudit(ctx, ev, a.Findings); err != nil {
			return err
		}
		published++
	}
	for _, d := range domains {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		a := hygiene.AuditDomain(ctx, r, d, s.cfg.Audit.DKIMSelectors, ips)
		ev := &schemas.DNSAudit{AuditID: auditID, Target: d, TargetKind: schemas.TargetDomain,
			SPFRecord: a.SPFRecord, DMARCRecord: a.DMARCRecord, DMARCPolicy: a.DMARCPolicy,
			DKIMSelectors: a.DKIMSelectors, MXHosts: a.MXHosts}
		if err := s.publishAudit(ctx, ev, a.Findings); err != nil {
			return err
		}
		published++
	}
	if err := s.pub.Flush(ctx); err != nil {
		return fmt.Errorf("audit %s: %w", auditID, err)
	}
	s.log.Info("audit done", "audit_id", auditID, "ips", len(ips), "domains", len(domains), "events", published)
	return nil
}

func (s *Sweeper) publishAudit(ctx context.Context, ev *schemas.DNSAudit, findings []hygiene.Finding) error {
	for _, f := range findings {
		ev.FindingChecks = append(ev.FindingChecks, f.Check)
		ev.FindingSeverities = append(ev.FindingSeverities, f.Severity)
		ev.FindingMessages = append(ev.FindingMessages, f.Message)
		s.metrics.findings.WithLabelValues(f.Check, f.Severity).Inc()
	}
	ev.WorstSeverity = hygiene.Worst(findings)
	if err := schemas.Stamp(ev, s.set.Source, time.Now()); err != nil {
		return err
	}
	if err := s.pub.PublishAsync(ctx, ev); err != nil {
		return fmt.Errorf("publish audit of %s: %w", ev.Target, err)
	}
	s.metrics.audits.Inc()
	return nil
}

func (s *Sweeper) isSeen(ip netip.Addr) bool {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	return s.seen[seenKey(ip.String())] != nil
}

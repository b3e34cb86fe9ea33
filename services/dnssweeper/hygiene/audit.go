package hygiene

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/mailmon/mailmon/schemas"
)

// Severities, mildest first, as the dns.audit event spells them.
const (
	OK       = schemas.SeverityOK
	Info     = schemas.SeverityInfo
	Warning  = schemas.SeverityWarning
	Critical = schemas.SeverityCritical
)

var severityRank = map[string]int{OK: 0, Info: 1, Warning: 2, Critical: 3}

// Finding is the result of one check.
type Finding struct {
	// Check names it: ptr, fcrdns, spf, spf_authorizes_ip, dkim, dmarc, mx.
	Check    string `json:"check"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

// Worst returns the most severe severity among findings, "ok" for none.
func Worst(findings []Finding) string {
	worst := OK
	for _, f := range findings {
		if severityRank[f.Severity] > severityRank[worst] {
			worst = f.Severity
		}
	}
	return worst
}

// IPAudit is the audit of one sending IP.
type IPAudit struct {
	IP       netip.Addr
	PTRNames []string
	Findings []Finding
}

// genericWords mark PTR names that look like end-user or unnamed ranges.
var genericWords = []string{"dynamic", "dyn-", "dhcp", "dsl", "pool", "cable", "ppp", "dialup", "static-ip", "unassigned", "host-", "ip-"}

// AuditIP checks that ip has a PTR record and that one of its names
// resolves back to ip (forward-confirmed reverse DNS).
func AuditIP(ctx context.Context, r Resolver, ip netip.Addr) IPAudit {
	ip = ip.Unmap()
	a := IPAudit{IP: ip}
	add := func(check, sev, format string, args ...any) {
		a.Findings = append(a.Findings, Finding{Check: check, Severity: sev, Message: fmt.Sprintf(format, args...)})
	}
	names, err := r.LookupPTR(ctx, ip)
	switch {
	case notFound(err) || (err == nil && len(names) == 0):
		add("ptr", Critical, "%s has no PTR record: Gmail, Outlook and most large receivers reject or junk mail from IPs without reverse DNS", ip)
		return a
	case err != nil:
		add("ptr", Warning, "PTR lookup for %s failed: %v", ip, err)
		return a
	}
	a.PTRNames = names
	switch {
	case len(names) > 1:
		add("ptr", Info, "%s has %d PTR records (%s); receivers use whichever comes first, so publish one", ip, len(names), strings.Join(names, ", "))
	case looksGeneric(names[0], ip):
		add("ptr", Warning, "PTR %s looks like a generic or end-user name; use a name in your own domain, e.g. mta1.example.com", names[0])
	default:
		add("ptr", OK, "PTR %s", names[0])
	}
	var confirmed []string
	var failures []string
	for i, n := range names {
		if i >= maxMXOrPTR {
			break
		}
		addrs, err := r.LookupIP(ctx, n, ip.Is6())
		switch {
		case err != nil && !notFound(err):
			failures = append(failures, fmt.Sprintf("%s: %v", n, err))
		case slices.Contains(addrs, ip):
			confirmed = append(confirmed, n)
		}
	}
	switch {
	case len(confirmed) > 0:
		add("fcrdns", OK, "forward-confirmed: %s resolves back to %s", confirmed[0], ip)
	case len(failures) > 0:
		add("fcrdns", Warning, "could not confirm reverse DNS: %s", strings.Join(failures, "; "))
	default:
		add("fcrdns", Critical, "not forward-confirmed: no PTR name of %s (%s) resolves back to it", ip, strings.Join(names, ", "))
	}
	return a
}

func looksGeneric(name string, ip netip.Addr) bool {
	if ip.Is4() {
		b := ip.As4()
		for _, sep := range []string{"-", ".", "_", ""} {
			fwd := fmt.Sprintf("%d%s%d%s%d%s%d", b[0], sep, b[1], sep, b[2], sep, b[3])
			rev := fmt.Sprintf("%d%s%d%s%d%s%d", b[3], sep, b[2], sep, b[1], sep, b[0])
			if strings.Contains(name, fwd) || (sep != "" && strings.Contains(name, rev)) {
				return true
			}
		}
	}
	for _, w := range genericWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// DomainAudit is the audit of one sending domain.
type DomainAudit struct {
	Domain        string
	SPFRecord     string
	DMARCRecord   string
	DMARCPolicy   string
	DKIMSelectors []string
	MXHosts       []string
	Findings      []Finding
}

// AuditDomain checks domain's SPF record (and that it authorises each of
// sendingIPs), the DKIM keys at selectors, its DMARC record and its MX.
func AuditDomain(ctx context.Context, r Resolver, domain string, selectors []string, sendingIPs []netip.Addr) DomainAudit {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	a := DomainAudit{Domain: domain, DKIMSelectors: selectors}
	add := func(check, sev, format string, args ...any) {
		a.Findings = append(a.Findings, Finding{Check: check, Severity: sev, Message: fmt.Sprintf(format, args...)})
	}
	a.auditSPF(ctx, r, sendingIPs, add)
	a.auditDKIM(ctx, r, selectors, add)
	a.auditDMARC(ctx, r, add)
	a.auditMX(ctx, r, add)
	return a
}

type addFunc func(check, sev, format string, args ...any)

func (a *DomainAudit) auditSPF(ctx context.Context, r Resolver, sendingIPs []netip.Addr, add addFunc) {
	spf := AnalyzeSPF(ctx, r, a.Domain)
	a.SPFRecord = spf.Record
	switch spf.Result {
	case SPFNone:
		add("spf", Critical, "no SPF record at %s: receivers cannot tell which IPs may send for it (Gmail and Yahoo require SPF from bulk senders)", a.Domain)
		return
	case SPFTemperror:
		add("spf", Warning, "SPF lookup failed: %s", spf.Reason)
		return
	case SPFPermerror:
		add("spf", Critical, "SPF record is invalid (permerror, receivers treat it as a failure): %s", spf.Reason)
		if spf.Record == "" {
			return
		}
	default:
		add("spf", OK, "SPF record present and valid (%d DNS lookups of %d)", spf.Lookups, MaxLookups)
		if spf.Lookups >= MaxLookups-1 {
			add("spf", Warning, "SPF uses %d of the %d DNS lookups allowed; one more include breaks it", spf.Lookups, MaxLookups)
		}
	}
	switch spf.AllQualifier {
	case '+':
		add("spf", Critical, "SPF ends in +all: it authorises every host on the internet to send as %s", a.Domain)
	case '?':
		add("spf", Warning, "SPF ends in ?all: unlisted senders get neutral, which protects nothing")
	}
	for _, n := range spf.Notes {
		add("spf", Info, "SPF %s", n)
	}
	checker := Checker{Resolver: r}
	for _, ip := range sendingIPs {
		out := checker.CheckHost(ctx, ip, a.Domain, "", "")
		if out.Result == SPFPass {
			add("spf_authorizes_ip", OK, "SPF authorises sending IP %s (%s)", ip, out.Reason)
			continue
		}
		msg := fmt.Sprintf("SPF does not authorise sending IP %s (result: %s)", ip, out.Result)
		if out.Result == SPFPermerror || out.Result == SPFTemperror {
			msg += ": " + out.Reason
		}
		add("spf_authorizes_ip", Warning, "%s", msg)
	}
}

func (a *DomainAudit) auditDKIM(ctx context.Context, r Resolver, selectors []string, add addFunc) {
	if len(selectors) == 0 {
		add("dkim", Info, "no DKIM selectors configured for %s, so DKIM keys were not checked", a.Domain)
		return
	}
	type missing struct{ sel, why string }
	var absent []missing
	valid := 0
	for _, sel := range selectors {
		name := sel + "._domainkey." + a.Domain
		txts, err := r.LookupTXT(ctx, name)
		if err != nil && !notFound(err) {
			add("dkim", Warning, "selector %s: lookup of %s failed: %v", sel, name, err)
			continue
		}
		if len(txts) == 0 {
			absent = append(absent, missing{sel, "has no DKIM record"})
			continue
		}
		if len(txts) > 1 {
			add("dkim", Warning, "selector %s: %d TXT records at %s; publish exactly one key", sel, len(txts), name)
		}
		k, err := ParseDKIMKey(txts[0])
		switch {
		case err != nil:
			add("dkim", Critical, "selector %s: invalid key record: %v", sel, err)
		case k.Revoked:
			absent = append(absent, missing{sel, "is revoked (empty p=)"})
		case k.KeyType == "rsa" && k.Bits < 1024:
			add("dkim", Critical, "selector %s publishes a %d-bit RSA key; receivers ignore keys under 1024 bits", sel, k.Bits)
		case k.KeyType == "rsa" && k.Bits < 2048:
			valid++
			add("dkim", Warning, "selector %s publishes a %d-bit RSA key; use 2048 bits", sel, k.Bits)
		default:
			valid++
			what := fmt.Sprintf("%d-bit RSA", k.Bits)
			if k.KeyType == "ed25519" {
				what = "Ed25519"
			}
			add("dkim", OK, "selector %s publishes a %s key", sel, what)
			if k.Testing {
				add("dkim", Info, "selector %s is in test mode (t=y): receivers may ignore failures", sel)
			}
		}
	}
	for _, m := range absent {
		if valid > 0 {
			add("dkim", Info, "selector %s %s; remove it from the configuration if it was retired", m.sel, m.why)
		} else {
			add("dkim", Critical, "selector %s %s, and no configured selector has a usable key", m.sel, m.why)
		}
	}
}

func (a *DomainAudit) auditDMARC(ctx context.Context, r Resolver, add addFunc) {
	name := "_dmarc." + a.Domain
	txts, err := r.LookupTXT(ctx, name)
	if err != nil && !notFound(err) {
		add("dmarc", Warning, "DMARC lookup of %s failed: %v", name, err)
		return
	}
	var recs []string
	for _, t := range txts {
		if IsDMARC(t) {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		add("dmarc", Critical, "no DMARC record at %s: Gmail and Yahoo require one from bulk senders (p=none is enough to start)", name)
		return
	case 1:
	default:
		add("dmarc", Critical, "%d DMARC records at %s: receivers ignore them all; publish one", len(recs), name)
		return
	}
	a.DMARCRecord = recs[0]
	d, err := ParseDMARC(recs[0])
	if err != nil {
		add("dmarc", Critical, "DMARC record is invalid: %v", err)
		return
	}
	a.DMARCPolicy = d.Policy
	reports := "with aggregate reports"
	if len(d.RUA) == 0 {
		reports = "without aggregate reports (no rua=)"
	}
	switch d.Policy {
	case "none":
		add("dmarc", Info, "DMARC policy none (monitoring only) %s", reports)
	default:
		sev := OK
		if len(d.RUA) == 0 {
			sev = Info
		}
		add("dmarc", sev, "DMARC policy %s %s", d.Policy, reports)
	}
	if d.Pct < 100 {
		add("dmarc", Info, "DMARC pct=%d: the policy applies to %d%% of failing mail only", d.Pct, d.Pct)
	}
}

func (a *DomainAudit) auditMX(ctx context.Context, r Resolver, add addFunc) {
	mxs, err := r.LookupMX(ctx, a.Domain)
	switch {
	case notFound(err) || (err == nil && len(mxs) == 0):
		add("mx", Warning, "%s has no MX record: bounces and replies fall back to its A record, and some receivers distrust senders whose domain takes no mail", a.Domain)
		return
	case err != nil:
		add("mx", Warning, "MX lookup failed: %v", err)
		return
	}
	slices.SortStableFunc(mxs, func(x, y MX) int { return int(x.Pref) - int(y.Pref) })
	if len(mxs) == 1 && mxs[0].Host == "" {
		add("mx", Warning, "%s publishes a null MX (RFC 7505): it accepts no mail, and receivers may reject mail that claims to come from it", a.Domain)
		return
	}
	var dead []string
	for _, mx := range mxs {
		if mx.Host == "" {
			continue
		}
		a.MXHosts = append(a.MXHosts, mx.Host)
		v4, err4 := r.LookupIP(ctx, mx.Host, false)
		v6, err6 := r.LookupIP(ctx, mx.Host, true)
		if len(v4)+len(v6) == 0 {
			why := "no A or AAAA record"
			for _, e := range []error{err4, err6} {
				if e != nil && !notFound(e) {
					why = e.Error()
				}
			}
			dead = append(dead, mx.Host+" ("+why+")")
		}
	}
	switch {
	case len(dead) == len(a.MXHosts):
		add("mx", Critical, "no MX host of %s resolves: %s", a.Domain, strings.Join(dead, ", "))
	case len(dead) > 0:
		add("mx", Warning, "%d of %d MX hosts resolve; not: %s", len(a.MXHosts)-len(dead), len(a.MXHosts), strings.Join(dead, ", "))
	default:
		add("mx", OK, "%d MX hosts resolve", len(a.MXHosts))
	}
}

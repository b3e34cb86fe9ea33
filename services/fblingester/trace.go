package fblingester

import (
	"maps"
	"net/netip"
	"strings"
	"time"

	"github.com/mailmon/mailmon/schemas"
	"github.com/mailmon/mailmon/services/internal/arf"
	"github.com/mailmon/mailmon/services/internal/provider"
	"github.com/mailmon/mailmon/services/internal/worker"
)

// Tracking header verdicts, as counted in metrics.
const (
	trackValid   = "valid"
	trackMissing = "missing"
	trackInvalid = "invalid"
)

// keys are what a report or bounce can be traced by.
type keys struct {
	trackingHeader string // raw, unverified
	dkimDomain     string // d= of the original's first signature, unverified
	messageID      string
	sourceIP       string // reported, as an address
	// claimsTrusted says the report's own claims (the d= and Message-ID
	// written in a quoted header, its Source-IP) may be taken as said:
	// the report is trusted. Otherwise only what verifies by itself
	// traces: our tracking header, or the original's DKIM signature.
	claimsTrusted bool
	// originalBody says the report returned the original in full; its
	// DKIM d= then traces only when its signature verifies, and
	// verifiedDKIM are the domains whose signature did.
	originalBody bool
	verifiedDKIM []string
}

// traced is the outcome of tracing.
type traced struct {
	method     string // schemas.Trace*
	customer   string
	sourceIP   string
	trackingID string
	headerVerd string // trackValid, trackMissing or trackInvalid
}

// signsFor says whether a DKIM d= is one a customer signs with, so its
// signature on a returned original is worth verifying.
func (t *tracer) signsFor(d string) bool { return provider.Match(t.dkim, d) != "" }

// tracer ties reports to customers and IPs.
type tracer struct {
	track    worker.Tracking
	dkim     map[string]string
	msgID    map[string]string
	from     map[string]string
	networks []netip.Prefix
	now      func() time.Time
}

func newTracer(cfg TraceConfig, track worker.Tracking, now func() time.Time) *tracer {
	t := &tracer{track: track, dkim: lowerKeys(cfg.DKIMDomains), msgID: lowerKeys(cfg.MessageIDDomains),
		from: lowerKeys(cfg.FromDomains), now: now}
	for _, n := range cfg.SourceNetworks {
		if p, err := parseNetwork(n); err == nil { // checked by Validate
			t.networks = append(t.networks, p)
		}
	}
	return t
}

// trace tries the keys best first: our verified tracking header, then a
// DKIM domain or Message-ID domain we know, then a reported source IP of
// ours. Recipients are never used: providers redact them. A DKIM d= counts
// only when the original's signature verified (original returned in full)
// or, when only its header was returned, when the report is trusted; the
// Message-ID domain and Source-IP only when the report is trusted.
func (t *tracer) trace(k keys) traced {
	out := traced{method: schemas.TraceNone, headerVerd: trackMissing}
	ourIP := ""
	if k.claimsTrusted {
		ourIP = t.ourIP(k.sourceIP)
	}
	if strings.TrimSpace(k.trackingHeader) != "" {
		out.headerVerd = trackInvalid
		if f, err := t.track.Verify(k.trackingHeader, t.now()); err == nil {
			out.headerVerd = trackValid
			out.method = schemas.TraceTrackingHeader
			out.customer = f.Customer
			out.trackingID = f.MessageID
			out.sourceIP = ourIP
			if a, err := netip.ParseAddr(f.Source); err == nil {
				out.sourceIP = a.Unmap().String()
			}
			return out
		}
	}
	dkimDomains := k.verifiedDKIM
	if !k.originalBody && k.claimsTrusted && k.dkimDomain != "" {
		dkimDomains = []string{k.dkimDomain}
	}
	for _, d := range dkimDomains {
		if c := provider.Match(t.dkim, d); c != "" {
			out.method, out.customer, out.sourceIP = schemas.TraceDKIM, c, ourIP
			return out
		}
	}
	if !k.claimsTrusted {
		return out
	}
	if _, dom, ok := strings.Cut(k.messageID, "@"); ok {
		if c := provider.Match(t.msgID, dom); c != "" {
			out.method, out.customer, out.sourceIP = schemas.TraceMessageID, c, ourIP
			return out
		}
	}
	if ourIP != "" {
		out.method, out.sourceIP = schemas.TraceSourceIP, ourIP
	}
	return out
}

// ourIP returns the reported source IP when it is one of ours (any IP when
// no networks are configured), "" otherwise.
func (t *tracer) ourIP(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return ""
	}
	if len(t.networks) == 0 || t.ourNetwork(a) {
		return a.Unmap().String()
	}
	return ""
}

// ourNetwork says whether a is inside trace.source_networks (false when
// none are configured: a report is about anyone's mail under our domains,
// so no address is ours by default).
func (t *tracer) ourNetwork(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range t.networks {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func lowerKeys(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.Trim(strings.ToLower(k), ". ")] = v
	}
	return out
}

// fblOperators are report senders that are not mailbox domains: the
// feedback-loop services reporting for several providers, and provider
// domains seen only in reports.
var fblOperators = map[string]string{
	"microsoft.com": "outlook", "yahoo.net": "yahoo", "yahooinc.com": "yahoo", "apple.com": "icloud",
	"returnpath.net": "validity", "validity.com": "validity",
	"amazonses.com": "amazon_ses",
}

// userAgentProviders recognise a provider by its ARF User-Agent when the
// report's domains say nothing (a white-label FBL service).
var userAgentProviders = []struct{ substr, provider string }{
	{"yahoo", "yahoo"}, {"aol", "aol"}, {"hotmail", "outlook"}, {"jmrp", "outlook"}, {"microsoft", "outlook"},
	{"comcast", "comcast"}, {"returnpath", "validity"}, {"validity", "validity"}, {"mail.ru", "mailru"},
	{"yandex", "yandex"}, {"gmail", "gmail"}, {"google", "gmail"},
}

// providers names providers by domain: the configured table over the
// built-in one.
type providers struct{ table map[string]string }

func newProviders(extra map[string]string) *providers {
	// Mailbox domains, MX hosts and report senders share one name space:
	// a report's Reporting-MTA or sender domain is usually one of them.
	t := provider.Domains()
	maps.Copy(t, provider.MXSuffixes())
	maps.Copy(t, fblOperators)
	for k, v := range lowerKeys(extra) {
		t[k] = v
	}
	return &providers{table: t}
}

// byDomain returns the provider of a domain or address, "" when unknown.
func (p *providers) byDomain(s string) string {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	return provider.Match(p.table, s)
}

// ofReport names the provider that sent a feedback report: by its
// Reporting-MTA, its sender's domain, its User-Agent, else the sender's
// domain itself, else "unknown".
func (p *providers) ofReport(r *arf.Report) string {
	if v := p.byDomain(firstWord(r.ReportingMTA)); v != "" {
		return v
	}
	from := addrOf(r.ReportFrom)
	if v := p.byDomain(from); v != "" {
		return v
	}
	ua := strings.ToLower(r.UserAgent)
	for _, e := range userAgentProviders {
		if ua != "" && strings.Contains(ua, e.substr) {
			return e.provider
		}
	}
	if r.Format == arf.FormatJMRP {
		return "outlook"
	}
	if r.Format == arf.FormatYahooCFL {
		return "yahoo"
	}
	if _, dom, ok := strings.Cut(from, "@"); ok && dom != "" {
		return strings.ToLower(dom)
	}
	return "unknown"
}

// firstWord cuts a Reporting-MTA such as "dns; mx.example.org (comment)"
// to the host name.
func firstWord(s string) string {
	if _, rest, ok := strings.Cut(s, ";"); ok {
		s = rest
	}
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// addrOf extracts the address of a From value ("Name <a@b>" or "a@b").
func addrOf(s string) string {
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		s = s[i+1:]
		if j := strings.IndexByte(s, '>'); j >= 0 {
			s = s[:j]
		}
	}
	return strings.ToLower(strings.TrimSpace(s))
}

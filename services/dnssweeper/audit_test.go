package dnssweeper

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mailmon/mailmon/schemas"
)

// The audit asks a real DNS server and publishes one dns.audit per sending
// IP and per domain.
func TestAudit(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	f := startDNS(t)
	f.set("25.2.0.192.in-addr.arpa", dns.TypePTR, behaviour{rrs: []string{"25.2.0.192.in-addr.arpa. 60 IN PTR mta1.example.com."}})
	f.set("mta1.example.com", dns.TypeA, behaviour{a: []string{"192.0.2.25"}})
	f.set("26.2.0.192.in-addr.arpa", dns.TypePTR, behaviour{rrs: []string{"26.2.0.192.in-addr.arpa. 60 IN PTR mta2.example.com."}})
	f.set("example.com", dns.TypeTXT, behaviour{txt: []string{"google-site-verification=x", "v=spf1 ip4:192.0.2.24/30 include:_spf.example.net -all"}})
	f.set("_spf.example.net", dns.TypeTXT, behaviour{txt: []string{"v=spf1 ip4:203.0.113.0/24 ~all"}})
	f.set("_dmarc.example.com", dns.TypeTXT, behaviour{txt: []string{"v=DMARC1; p=reject; rua=mailto:dmarc@example.com"}})
	f.set("s1._domainkey.example.com", dns.TypeTXT, behaviour{txt: []string{"v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)}})
	f.set("example.com", dns.TypeMX, behaviour{rrs: []string{"example.com. 60 IN MX 10 mx1.example.com."}})
	f.set("mx1.example.com", dns.TypeA, behaviour{a: []string{"192.0.2.30"}})

	b := startBus(t)
	cfg := testConfig(f.addr)
	cfg.IPs = []string{"192.0.2.25", "192.0.2.26"}
	cfg.Domains = []string{"example.com"}
	cfg.Audit.Enabled = true
	cfg.Audit.DKIMSelectors = []string{"s1"}
	s := newSweeper(t, cfg, b)
	if err := s.Audit(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	evs := byType(b.events(t))[schemas.TypeDNSAudit]
	if len(evs) != 3 {
		t.Fatalf("%d audit events, want 3", len(evs))
	}
	got := map[string]*schemas.DNSAudit{}
	for _, ev := range evs {
		a := ev.(*schemas.DNSAudit)
		got[a.Target] = a
		if a.AuditID != evs[0].(*schemas.DNSAudit).AuditID {
			t.Error("events of one pass have different audit ids")
		}
	}
	ip := got["192.0.2.25"]
	if ip == nil || ip.WorstSeverity != "ok" || ip.SourceIP != "192.0.2.25" || !slices.Equal(ip.PTRNames, []string{"mta1.example.com"}) ||
		!slices.Equal(ip.FindingChecks, []string{"ptr", "fcrdns"}) {
		t.Errorf("ip audit %+v", ip)
	}
	if bad := got["192.0.2.26"]; bad == nil || bad.WorstSeverity != "critical" || !strings.Contains(strings.Join(bad.FindingMessages, "|"), "not forward-confirmed") {
		t.Errorf("unconfirmed ip audit %+v", bad)
	}
	d := got["example.com"]
	if d == nil || d.TargetKind != "domain" || d.DMARCPolicy != "reject" || !strings.HasPrefix(d.SPFRecord, "v=spf1") ||
		!slices.Equal(d.MXHosts, []string{"mx1.example.com"}) || !slices.Equal(d.DKIMSelectors, []string{"s1"}) {
		t.Fatalf("domain audit %+v", d)
	}
	want := []string{
		"spf ok SPF record present and valid (1 DNS lookups of 10)",
		"spf_authorizes_ip ok SPF authorises sending IP 192.0.2.25 (example.com matched ip4:192.0.2.24/30)",
		"spf_authorizes_ip ok SPF authorises sending IP 192.0.2.26 (example.com matched ip4:192.0.2.24/30)",
		"dkim ok selector s1 publishes a 2048-bit RSA key",
		"dmarc ok DMARC policy reject with aggregate reports",
		"mx ok 1 MX hosts resolve",
	}
	var lines []string
	for i := range d.FindingChecks {
		lines = append(lines, d.FindingChecks[i]+" "+d.FindingSeverities[i]+" "+d.FindingMessages[i])
	}
	if !slices.Equal(lines, want) || d.WorstSeverity != "ok" {
		t.Errorf("domain findings (worst %s):\n%s\nwant\n%s", d.WorstSeverity, strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

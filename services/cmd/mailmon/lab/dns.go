package lab

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/mailmon/mailmon/services/peers"
	"github.com/miekg/dns"
)

// zoneData is what the lab publishes: the sending domains with MX, SPF
// (all three lab IPs), DMARC and a DKIM key under selector "lab"; the
// providers' MX; forward-confirmed PTRs for the sending IPs; and the
// feedback-loop operator's DKIM key, whose private half signs its reports.
func zoneData(operatorKey ed25519.PublicKey) (map[string][]dns.RR, error) {
	recs := map[string][]dns.RR{}
	add := func(s string) error {
		rr, err := dns.NewRR(s)
		if err != nil {
			return fmt.Errorf("lab dns record %q: %w", s, err)
		}
		name := strings.ToLower(rr.Header().Name)
		recs[name] = append(recs[name], rr)
		return nil
	}
	var lines []string
	for _, d := range sendingDomains() {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		lines = append(lines,
			d+". 300 IN MX 10 mx.mailmon.lab.",
			d+`. 300 IN TXT "v=spf1 ip4:`+ipOut2+` ip4:`+ipOut3+` ip4:`+ipNDR+` -all"`,
			"_dmarc."+d+`. 300 IN TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@mailmon.lab"`,
			dkimSelector+"._domainkey."+d+`. 300 IN TXT "v=DKIM1; k=ed25519; p=`+base64.StdEncoding.EncodeToString(pub)+`"`,
		)
	}
	for _, p := range labProviders {
		lines = append(lines, p.domain+". 300 IN MX 10 mx."+p.domain+".", "mx."+p.domain+". 300 IN A 127.0.0.1")
	}
	lines = append(lines,
		"ops.lab. 300 IN MX 10 mx.ops.lab.", "mx.ops.lab. 300 IN A 127.0.0.1",
		"mx.mailmon.lab. 300 IN A 127.0.0.1",
		operatorSelector+"._domainkey."+operatorDomain+`. 300 IN TXT "v=DKIM1; k=ed25519; p=`+base64.StdEncoding.EncodeToString(operatorKey)+`"`,
	)
	for _, ip := range []struct{ addr, host string }{{ipOut2, "out2"}, {ipOut3, "out3"}, {ipNDR, "ndr"}} {
		rev, err := dns.ReverseAddr(ip.addr)
		if err != nil {
			return nil, err
		}
		host := ip.host + ".mailmon.lab."
		lines = append(lines, rev+" 300 IN PTR "+host, host+" 300 IN A "+ip.addr)
	}
	for _, l := range lines {
		if err := add(l); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// startDNS serves records on addr (UDP and TCP) until Stop: the lab's
// authoritative server for every lab domain, which the dns-sweeper's audit
// and the fbl-ingester's DKIM verifier ask.
func startDNS(addr string, records map[string][]dns.RR) (*peers.DNS, error) {
	d, err := peers.StartDNS(addr)
	if err != nil {
		return nil, fmt.Errorf("lab dns (dns_sweeper.audit.resolver): %w", err)
	}
	for _, rrs := range records {
		d.Add(rrs...)
	}
	return d, nil
}

package app

import (
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mailmon/mailmon/services/internal/peertest"
	"github.com/mailmon/mailmon/services/internal/testwait"
	"github.com/mailmon/mailmon/services/peers"
)

// e2eDNS is the test's authoritative DNS server for our sending IPs and
// domain (the dns-sweeper's audit resolver), on a loopback port. Its
// records change while it runs: a name without records answers NXDOMAIN.
type e2eDNS struct{ *peers.DNS }

func startE2EDNS(t *testing.T) *e2eDNS {
	t.Helper()
	d, err := peers.StartDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	return &e2eDNS{d}
}

func (d *e2eDNS) hdr(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: dns.Fqdn(name), Rrtype: rrtype, Class: dns.ClassINET, Ttl: 60}
}

// setPTR publishes ip's PTR record; an empty name removes it.
func (d *e2eDNS) setPTR(ip, name string) {
	rev, err := dns.ReverseAddr(ip)
	if err != nil {
		panic(err) // the test's own constants
	}
	if name == "" {
		d.Set(rev, dns.TypePTR)
		return
	}
	d.Set(rev, dns.TypePTR, &dns.PTR{Hdr: d.hdr(rev, dns.TypePTR), Ptr: dns.Fqdn(name)})
}

func (d *e2eDNS) setA(name, ip string) {
	d.Set(name, dns.TypeA, &dns.A{Hdr: d.hdr(name, dns.TypeA), A: net.ParseIP(ip)})
}

func (d *e2eDNS) setTXT(name, text string) {
	d.Set(name, dns.TypeTXT, &dns.TXT{Hdr: d.hdr(name, dns.TypeTXT), Txt: []string{text}})
}

// e2eRbldnsd is a real rbldnsd serving two zones on a loopback UDP port:
// bl.test (ip4set, bl.zone) and dbl.test (dnset, dbl.zone), each with its
// RFC 5782 test entry, so the dns-sweeper's self-test passes.
type e2eRbldnsd struct {
	*peers.Rbldnsd

	mu     sync.Mutex
	listed map[string][]string // zone file → listed entries
}

// The zone files' heads: the default answer and TXT, then the test entry.
var e2eZoneHeads = map[string]string{
	"bl.zone":  ":127.0.0.2:Listed in the e2e blocklist: $\n127.0.0.2\n",
	"dbl.zone": ":127.0.1.2:Domain listed in the e2e DBL: $\ntest\n",
}

func startE2ERbldnsd(t *testing.T, dir string) *e2eRbldnsd {
	t.Helper()
	rbl, err := peers.StartRbldnsd(t.Context(), peers.RbldnsdConfig{Dir: dir, Files: e2eZoneHeads,
		Zones: []string{"bl.test:ip4set:bl.zone", "dbl.test:dnset:dbl.zone"}, Ready: "2.0.0.127.bl.test"})
	if err != nil {
		peertest.Unavailable(t, "rbldnsd: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("rbldnsd output:\n%s", rbl.Log())
		}
	})
	t.Cleanup(func() { rbl.Stop() })
	return &e2eRbldnsd{Rbldnsd: rbl, listed: map[string][]string{}}
}

// setListed adds target to a zone file or removes it, makes rbldnsd
// reload, and waits until it answers accordingly.
func (r *e2eRbldnsd) setListed(t *testing.T, file, target string, listed bool) {
	t.Helper()
	r.mu.Lock()
	r.listed[file] = slices.DeleteFunc(r.listed[file], func(e string) bool { return e == target })
	if listed {
		r.listed[file] = append(r.listed[file], target)
	}
	err := r.Rewrite(file, e2eZoneHeads[file]+strings.Join(r.listed[file], "\n")+"\n")
	r.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	query := target + ".dbl.test"
	if file == "bl.zone" {
		rev, err := dns.ReverseAddr(target)
		if err != nil {
			t.Fatal(err)
		}
		query = strings.TrimSuffix(rev, "in-addr.arpa.") + "bl.test"
	}
	testwait.Eventually(t, 15*time.Second, "rbldnsd to reload "+file, func() bool { return r.Answers(query) == listed })
}

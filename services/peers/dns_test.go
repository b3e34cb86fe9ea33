package peers

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestDNSAnswersWhatItHolds(t *testing.T) {
	d, err := StartDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	hdr := dns.RR_Header{Name: "mx.example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}
	d.Add(&dns.A{Hdr: hdr, A: net.ParseIP("192.0.2.1")})
	ask := func(network, name string, qtype uint16) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		resp, _, err := (&dns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(m, d.Addr)
		if err != nil {
			t.Fatalf("%s %s: %v", network, name, err)
		}
		return resp
	}
	for _, network := range []string{"udp", "tcp"} {
		if r := ask(network, "MX.example.test.", dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Errorf("%s: A of a held name: %v", network, r)
		}
	}
	if r := ask("udp", "mx.example.test.", dns.TypeTXT); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("another type of a held name: want NOERROR and no records, got %v", r)
	}
	if r := ask("udp", "other.example.test.", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("a name it holds nothing for: want NXDOMAIN, got %v", r)
	}
	d.Set("mx.example.test", dns.TypeA)
	if r := ask("udp", "mx.example.test.", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("a name whose last records were removed: want NXDOMAIN, got %v", r)
	}
}

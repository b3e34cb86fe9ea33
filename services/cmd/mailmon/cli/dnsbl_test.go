package cli

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// startBlocklist serves bl.test on 127.0.0.1:0: the RFC 5782 test entry,
// 192.0.2.99 listed with a TXT reason, 192.0.2.77 answered with an error
// code; everything else NXDOMAIN.
func startBlocklist(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	answers := map[string]string{
		"2.0.0.127.bl.test.":  "127.0.0.2",
		"99.2.0.192.bl.test.": "127.0.0.4",
		"77.2.0.192.bl.test.": "127.255.255.254",
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		a, ok := answers[q.Name]
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA:
			rr, _ := dns.NewRR(q.Name + " 60 IN A " + a)
			m.Answer = append(m.Answer, rr)
		case q.Qtype == dns.TypeTXT:
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{"spam source"}})
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

func TestDNSBLCheck(t *testing.T) {
	addr := startBlocklist(t)
	path := writeConfig(t, fmt.Sprintf(`
dns_sweeper:
  resolver: %s
  zones: [bl.test, dbl.test]
  custom_zones:
    - name: bl.test
      kind: ip
      weight: 2
      delist_url: https://bl.test/remove/{target}
      codes:
        127.0.0.4: {class: listed, meaning: spam source}
        127.255.255.254: {class: error, meaning: query via public/open resolver}
    - {name: dbl.test, kind: domain}
  timeout: 500ms
`, addr))
	tests := []struct {
		target string
		want   map[string]string // zone → status
		detail string
	}{
		{"192.0.2.99", map[string]string{"bl.test": "listed", "dbl.test": "not_applicable"}, "spam source"},
		{"192.0.2.1", map[string]string{"bl.test": "not_listed", "dbl.test": "not_applicable"}, ""},
		{"192.0.2.77", map[string]string{"bl.test": "error", "dbl.test": "not_applicable"}, "public/open resolver"},
		// dbl.test has no test entry on this server: unknown, never clean.
		{"example.com", map[string]string{"bl.test": "not_applicable", "dbl.test": "unknown"}, "self-test"},
	}
	for _, tt := range tests {
		code, out, errOut := runMain(t, "dnsbl", "check", tt.target, "-config", path)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", tt.target, code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		got := map[string]string{}
		for _, l := range lines {
			var r zoneReport
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("%s: not a JSON line: %q", tt.target, l)
			}
			got[r.Zone] = r.Status
			if r.Status == "listed" && (r.TXT != "spam source" || r.DelistURL != "https://bl.test/remove/"+tt.target) {
				t.Errorf("%s: listing %+v", tt.target, r)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) || !strings.Contains(out, tt.detail) {
			t.Errorf("%s: %v, want %v with %q\n%s", tt.target, got, tt.want, tt.detail, out)
		}
	}
	code, out, _ := runMain(t, "dnsbl", "check", "-format", "table", "-config", path, "192.0.2.99")
	if code != 0 || !strings.HasPrefix(out, "ZONE") || !strings.Contains(out, "listed") {
		t.Errorf("table: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"dnsbl"}, {"dnsbl", "check"}, {"dnsbl", "check", "not an ip!"}, {"dnsbl", "check", "192.0.2.1", "-format", "xml", "-config", path},
		{"dnsbl", "check", "192.0.2.1", "-zones", "nope.example", "-config", path}} {
		if code, _, _ := runMain(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

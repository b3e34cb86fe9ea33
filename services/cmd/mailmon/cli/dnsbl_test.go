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
// code; and low.test: its test entry and 192.0.2.55 listed; everything
// else NXDOMAIN.
func startBlocklist(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	answers := map[string]string{
		"2.0.0.127.bl.test.":   "127.0.0.2",
		"99.2.0.192.bl.test.":  "127.0.0.4",
		"77.2.0.192.bl.test.":  "127.255.255.254",
		"2.0.0.127.low.test.":  "127.0.0.2",
		"55.2.0.192.low.test.": "127.0.0.2",
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
		// The exit status is the Nagios state in every format.
		wantCode := map[string]int{"listed": 2, "not_listed": 0, "error": 3, "unknown": 3}[tt.want["bl.test"]]
		if tt.want["bl.test"] == "not_applicable" {
			wantCode = 3 // dbl.test failed its self-test
		}
		if code != wantCode {
			t.Fatalf("%s: exit %d, want %d: %s", tt.target, code, wantCode, errOut)
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
	if code != 2 || !strings.HasPrefix(out, "ZONE") || !strings.Contains(out, "listed") {
		t.Errorf("table: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"dnsbl"}, {"dnsbl", "check"}, {"dnsbl", "check", "not an ip!"}, {"dnsbl", "check", "192.0.2.1", "-format", "xml", "-config", path},
		{"dnsbl", "check", "192.0.2.1", "-zones", "nope.example", "-config", path}} {
		// Usage and config problems are UNKNOWN to a Nagios caller.
		if code, _, _ := runMain(t, args...); code != 3 {
			t.Errorf("%v: exit %d, want 3", args, code)
		}
	}
}

// -format nagios: one plugin line (state, message, performance data), a
// line per listing or unknown zone, and the exit status of the state.
func TestDNSBLCheckAsANagiosPlugin(t *testing.T) {
	addr := startBlocklist(t)
	path := writeConfig(t, fmt.Sprintf(`
dns_sweeper:
  resolver: %s
  zones: [bl.test, low.test, dbl.test]
  custom_zones:
    - name: bl.test
      kind: ip
      weight: 2
      delist_url: https://bl.test/remove/{target}
      codes:
        127.0.0.4: {class: listed, meaning: spam source}
        127.255.255.254: {class: error, meaning: query via public/open resolver}
    - {name: low.test, kind: ip, weight: 0.5}
    - {name: dbl.test, kind: domain}
    - {name: dead.test, kind: ip, weight: 1}
  timeout: 500ms
`, addr))
	// dead.test has no test entry on the server: it fails its self-test.
	withDead := "bl.test,low.test,dead.test"
	tests := []struct {
		name string
		args []string
		code int
		line string // the first line, exactly
		long []string
	}{
		{"listed nowhere", []string{"192.0.2.1"}, 0,
			"DNSBL OK - 192.0.2.1 listed on 0 of 2 zones | listed=0;;1;0;2 unknown=0;;;0;2 zones=2;;;0;", nil},
		{"listed on a heavy zone", []string{"192.0.2.99"}, 2,
			"DNSBL CRITICAL - 192.0.2.99 listed on 1 of 2 zones (bl.test) | listed=1;;1;0;2 unknown=0;;;0;2 zones=2;;;0;",
			[]string{"CRITICAL: listed on bl.test (bl.test, weight 2) 127.0.0.4: spam source - delist: https://bl.test/remove/192.0.2.99"}},
		{"listed on a light zone only", []string{"192.0.2.55"}, 1,
			"DNSBL WARNING - 192.0.2.55 listed on 1 of 2 zones (low.test) | listed=1;;1;0;2 unknown=0;;;0;2 zones=2;;;0;", nil},
		{"a light listing under -warning-weight is OK", []string{"192.0.2.55", "-warning-weight", "0.6"}, 0,
			"DNSBL OK - 192.0.2.55 listed on 1 of 2 zones (low.test) | listed=1;;1;0;2 unknown=0;;;0;2 zones=2;;;0;", nil},
		{"-critical-weight lowered", []string{"192.0.2.55", "-critical-weight", "0.5"}, 2,
			"DNSBL CRITICAL - 192.0.2.55 listed on 1 of 2 zones (low.test) | listed=1;;1;0;2 unknown=0;;;0;2 zones=2;;;0;", nil},
		{"an error answer and nothing listed", []string{"192.0.2.77"}, 3,
			"DNSBL UNKNOWN - 192.0.2.77 not listed on 1 of 2 zones; 1 could not be checked (bl.test) | listed=0;;1;0;2 unknown=1;;;0;2 zones=2;;;0;",
			[]string{"UNKNOWN: bl.test could not be checked (error)"}},
		{"a failed self-test and nothing listed", []string{"192.0.2.1", "-zones", withDead}, 3,
			"DNSBL UNKNOWN - 192.0.2.1 not listed on 2 of 3 zones; 1 could not be checked (dead.test) | listed=0;;1;0;3 unknown=1;;;0;3 zones=3;;;0;", nil},
		{"listed beats unknown", []string{"192.0.2.99", "-zones", withDead}, 2,
			"DNSBL CRITICAL - 192.0.2.99 listed on 1 of 3 zones (bl.test); 1 could not be checked | listed=1;;1;0;3 unknown=1;;;0;3 zones=3;;;0;", nil},
		{"a bad target is UNKNOWN on the plugin line", []string{"not an ip!"}, 3, "DNSBL UNKNOWN - ", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"dnsbl", "check"}, tt.args...)
			args = append(args, "-format", "nagios", "-config", path)
			code, out, errOut := runMain(t, args...)
			first, rest, _ := strings.Cut(out, "\n")
			if code != tt.code || !strings.HasPrefix(first, tt.line) || (strings.HasSuffix(tt.line, ";") && first != tt.line) {
				t.Fatalf("exit %d, first line\n  %s\nwant exit %d,\n  %s\nstderr: %s", code, first, tt.code, tt.line, errOut)
			}
			for _, l := range tt.long {
				if !strings.Contains(rest, l) {
					t.Errorf("long output lacks %q:\n%s", l, rest)
				}
			}
		})
	}
}

func TestPluginTextKeepsTheLineIntact(t *testing.T) {
	r := pluginResult{service: "DNSBL", state: stateCritical, message: "listed | perf=1\nFAKE OK",
		long: []string{"txt: spam|source\r\nOK - all good"}, perf: []perfValue{perfInt("listed", 1, "", "1", 2)}}
	var b strings.Builder
	if code := r.write(&b); code != 2 {
		t.Errorf("exit %d", code)
	}
	want := "DNSBL CRITICAL - listed / perf=1 FAKE OK | listed=1;;1;0;2\ntxt: spam/source  OK - all good\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

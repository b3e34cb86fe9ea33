package dnssweeper

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mailmon/mailmon/services/internal/dnsbl"
)

func newTestChecker(t *testing.T, f *fakeDNS, opts ClientOptions) *Checker {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 300 * time.Millisecond
	}
	c := NewClient(f.addr, opts)
	t.Cleanup(c.Close)
	ch, err := NewChecker(c, testZones(), "", 0, true)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func target(t *testing.T, s string) dnsbl.Target {
	t.Helper()
	tg, err := dnsbl.ParseTarget(s)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// The answers a blocklist (or a resolver in front of it) can give, and
// what the checker makes of each, against a real DNS server.
func TestCheckAnswers(t *testing.T) {
	f := startDNS(t)
	f.list("192.0.2.1", "bl.test", "127.0.0.2")
	f.list("192.0.2.2", "bl.test", "127.0.0.4", "127.0.0.2")
	f.set("3.2.0.192.bl.test", dns.TypeA, behaviour{a: []string{"127.255.255.254"}})
	f.set("4.2.0.192.bl.test", dns.TypeA, behaviour{a: []string{"198.51.100.80"}}) // NXDOMAIN rewritten
	f.set("5.2.0.192.bl.test", dns.TypeA, behaviour{drop: true})
	f.set("6.2.0.192.bl.test", dns.TypeA, behaviour{servfailFirst: 99})
	f.set("7.2.0.192.bl.test", dns.TypeA, behaviour{servfailFirst: 1, a: []string{"127.0.0.2"}})
	f.set("8.2.0.192.bl.test", dns.TypeA, behaviour{truncate: true, a: []string{"127.0.0.2"}})
	f.set("9.2.0.192.bl.test", dns.TypeA, behaviour{spoofFirst: true, rcode: dns.RcodeNameError})
	f.set("10.2.0.192.bl.test", dns.TypeA, behaviour{garbage: true})
	f.set("11.2.0.192.bl.test", dns.TypeA, behaviour{a: []string{"127.0.0.1"}})
	f.set("12.2.0.192.bl.test", dns.TypeA, behaviour{rcode: dns.RcodeRefused})
	f.set("13.2.0.192.bl.test", dns.TypeA, behaviour{rrs: []string{"13.2.0.192.bl.test. 60 IN CNAME 13.2.0.192.key.dq.test.", "13.2.0.192.key.dq.test. 60 IN A 127.0.0.4"}})
	f.set("14.2.0.192.bl.test", dns.TypeTXT, behaviour{txt: []string{"only a TXT record"}}) // NODATA for A
	f.list("spammy.example", "dbl.test", "127.0.1.2")
	f.set("192.0.2.1.dbl.test", dns.TypeA, behaviour{a: []string{"127.0.1.255"}})

	ch := newTestChecker(t, f, ClientOptions{Retries: 2, TCPFallback: true})
	tests := []struct {
		target  string
		zone    int
		status  dnsbl.Status
		cause   dnsbl.Cause
		codes   string
		queries int
	}{
		{"192.0.2.1", 0, dnsbl.Listed, "", "127.0.0.2", 2},                        // A + TXT
		{"192.0.2.2", 0, dnsbl.Listed, "", "127.0.0.4,127.0.0.2", 2},              // several codes
		{"192.0.2.99", 0, dnsbl.NotListed, "", "", 1},                             // NXDOMAIN
		{"192.0.2.3", 0, dnsbl.Error, dnsbl.CauseErrorCode, "127.255.255.254", 1}, // Spamhaus-style refusal
		{"192.0.2.4", 0, dnsbl.Error, dnsbl.CauseNXDomainRewrite, "198.51.100.80", 1},
		{"192.0.2.5", 0, dnsbl.Error, dnsbl.CauseTimeout, "", 3}, // 1 + 2 retries
		{"192.0.2.6", 0, dnsbl.Error, dnsbl.CauseServfail, "", 3},
		{"192.0.2.7", 0, dnsbl.Listed, "", "127.0.0.2", 3}, // SERVFAIL, then the answer; + TXT
		{"192.0.2.8", 0, dnsbl.Listed, "", "127.0.0.2", 3}, // UDP truncated, TCP answer; + TXT
		{"192.0.2.9", 0, dnsbl.NotListed, "", "", 1},       // a spoofed listing for another question is ignored
		{"192.0.2.10", 0, dnsbl.Error, dnsbl.CauseBadAnswer, "", 1},
		{"192.0.2.11", 0, dnsbl.Error, dnsbl.CauseBadAnswer, "127.0.0.1", 1},
		{"192.0.2.12", 0, dnsbl.Error, dnsbl.CauseRefused, "", 1},
		{"192.0.2.13", 0, dnsbl.Listed, "", "127.0.0.4", 2}, // through a CNAME (DQS-style forwarding)
		{"192.0.2.14", 0, dnsbl.NotListed, "", "", 1},       // NODATA
		{"spammy.example", 1, dnsbl.Listed, "", "127.0.1.2", 2},
		{"clean.example", 1, dnsbl.NotListed, "", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			c := ch.CheckTarget(testCtx(t), tt.zone, target(t, tt.target))
			r := c.Result
			if r.Status != tt.status || r.Cause != tt.cause || strings.Join(r.Codes, ",") != tt.codes || c.Queries != tt.queries {
				t.Fatalf("CheckTarget = %+v, %d queries; want %s %q codes %q, %d queries", r, c.Queries, tt.status, tt.cause, tt.codes, tt.queries)
			}
			if r.Status == dnsbl.Error && r.Detail == "" {
				t.Error("error without detail")
			}
			if tt.target == "192.0.2.1" && c.TXT != "listed 192.0.2.1 in bl.test" {
				t.Errorf("TXT = %q", c.TXT)
			}
		})
	}
	// An IP asked of the domain list (the checker never does this itself).
	b := ch.Zones()[1]
	r, _ := ch.lookupA(testCtx(t), 1, dnsbl.Query{Name: "192.0.2.1.dbl.test.", Display: "192.0.2.1.dbl.test"}, false)
	if r.Status != dnsbl.Error || r.Cause != dnsbl.CauseErrorCode || r.ErrorCode != "127.0.1.255" {
		t.Errorf("%s asked about an IP: %+v", b.Name(), r)
	}
	if f.tcp != 1 {
		t.Errorf("%d queries over TCP, want 1 (the truncated one)", f.tcp)
	}
}

func TestTruncatedWithoutTCP(t *testing.T) {
	f := startDNS(t)
	f.set("8.2.0.192.bl.test", dns.TypeA, behaviour{truncate: true, a: []string{"127.0.0.2"}})
	off := newTestChecker(t, f, ClientOptions{TCPFallback: false})
	if r := off.CheckTarget(testCtx(t), 0, target(t, "192.0.2.8")).Result; r.Status != dnsbl.Error || r.Cause != dnsbl.CauseTruncated {
		t.Errorf("TCP fallback off: %+v", r)
	}
	if f.tcp != 0 {
		t.Errorf("%d TCP queries with the fallback off", f.tcp)
	}
}

func TestTruncatedAndTCPRefused(t *testing.T) {
	// A UDP-only server (like rbldnsd) that truncates: TCP is refused.
	f := startDNSWith(t, false)
	f.set("8.2.0.192.bl.test", dns.TypeA, behaviour{truncate: true, a: []string{"127.0.0.2"}})
	ch := newTestChecker(t, f, ClientOptions{TCPFallback: true})
	if r := ch.CheckTarget(testCtx(t), 0, target(t, "192.0.2.8")).Result; r.Status != dnsbl.Error || r.Cause != dnsbl.CauseTruncated {
		t.Errorf("TCP refused: %+v", r)
	}
}

func TestNoServer(t *testing.T) {
	// Nothing listens on the port: ICMP port unreachable (or a timeout).
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	ch := newTestChecker(t, &fakeDNS{addr: addr}, ClientOptions{Retries: 1})
	c := ch.CheckTarget(testCtx(t), 0, target(t, "192.0.2.1"))
	if r := c.Result; r.Status != dnsbl.Error || (r.Cause != dnsbl.CauseNetwork && r.Cause != dnsbl.CauseTimeout) || c.Queries != 2 {
		t.Errorf("no server: %+v, %d queries", r, c.Queries)
	}
}

func TestSocketsAreReused(t *testing.T) {
	f := startDNS(t)
	c := NewClient(f.addr, ClientOptions{Timeout: time.Second, MaxIdle: 2})
	defer c.Close()
	for range 50 {
		if _, _, err := c.Exchange(testCtx(t), "x.bl.test.", dns.TypeA, false); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.idle); n != 1 {
		t.Errorf("%d idle sockets after 50 sequential queries, want 1 reused", n)
	}
}

func TestSelfTest(t *testing.T) {
	f := startDNS(t)
	ch := newTestChecker(t, f, ClientOptions{})
	// Nothing listed at all: the zone is dead (or the name is wrong).
	if r, n := ch.SelfTest(testCtx(t), 0); r == nil || r.Cause != dnsbl.CauseSelfTest || n != 2 || !strings.Contains(r.Detail, "127.0.0.2 must be listed") {
		t.Errorf("dead zone: %+v, %d queries", r, n)
	}
	f.healthy("bl.test")
	if r, _ := ch.SelfTest(testCtx(t), 0); r != nil {
		t.Errorf("healthy zone: %+v", r)
	}
	// A resolver that rewrites NXDOMAIN makes 127.0.0.1 look listed.
	f.set("1.0.0.127.bl.test", dns.TypeA, behaviour{a: []string{"198.51.100.80"}})
	if r, _ := ch.SelfTest(testCtx(t), 0); r == nil || !strings.Contains(r.Detail, "127.0.0.1 must not be listed") {
		t.Errorf("rewriting resolver: %+v", r)
	}
	f.del("1.0.0.127.bl.test", dns.TypeA)
	// Spamhaus through a public resolver.
	f.set("2.0.0.127.bl.test", dns.TypeA, behaviour{a: []string{"127.255.255.254"}})
	if r, _ := ch.SelfTest(testCtx(t), 0); r == nil || r.ErrorCode != "127.255.255.254" || !strings.Contains(r.Detail, "public/open resolver") {
		t.Errorf("public resolver: %+v", r)
	}
	// Domain zones test with "test" and "invalid".
	f.set("test.dbl.test", dns.TypeA, behaviour{a: []string{"127.0.1.2"}})
	if r, _ := ch.SelfTest(testCtx(t), 1); r != nil {
		t.Errorf("domain zone: %+v", r)
	}
}

// Each zone gets at most zone_rate queries per second (after a burst of
// one second's worth), self-tests and TXT lookups included.
func TestZoneRateLimit(t *testing.T) {
	f := startDNS(t)
	f.healthy("bl.test")
	f.list("192.0.2.1", "bl.test", "127.0.0.2")
	c := NewClient(f.addr, ClientOptions{Timeout: time.Second})
	defer c.Close()
	ch, err := NewChecker(c, testZones()[:1], "", 10, true)
	if err != nil {
		t.Fatal(err)
	}
	var targets []dnsbl.Target
	for i := 1; i <= 20; i++ {
		targets = append(targets, target(t, "192.0.2."+strconv.Itoa(i)))
	}
	start := time.Now()
	queries := 0
	res, err := ch.Sweep(testCtx(t), targets, 8, func(c Check) { queries += c.Queries })
	elapsed := time.Since(start)
	if err != nil || res.ZoneFailure[0] != nil {
		t.Fatalf("Sweep: %v %+v", err, res.ZoneFailure[0])
	}
	if total := res.ZoneQueries[0]; total != 2+20+1 || queries != 21 {
		t.Errorf("%d queries, want 23 (2 self-test, 20 A, 1 TXT)", total)
	}
	// 23 queries at 10/s with a burst of 10: at least 1.3 s.
	if elapsed < 1200*time.Millisecond {
		t.Errorf("23 queries in %s at 10/s", elapsed)
	}
}

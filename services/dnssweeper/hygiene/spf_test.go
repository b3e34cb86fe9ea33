package hygiene

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func TestParseSPF(t *testing.T) {
	tests := []struct {
		record string
		want   string // directives written back, space separated; "" with bad
		bad    string // substring of the error
	}{
		{record: "v=spf1 -all", want: "-all"},
		{record: "V=SPF1 ip4:192.0.2.0/24 IP6:2001:DB8::/32 ~ALL", want: "ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all"},
		{record: "v=spf1 a mx/24 a:mail.example.com/28//64 mx//96 ?all", want: "a mx/24 a:mail.example.com/28//64 mx//96 ?all"},
		{record: "v=spf1 include:_spf.example.net exists:%{i}._spf.%{d} redirect=_spf.example.org", want: "include:_spf.example.net exists:%{i}._spf.%{d}"},
		{record: "v=spf1 ip4:192.0.2.7 ptr:example.com unknown-mod=x -all", want: "ip4:192.0.2.7/32 ptr:example.com -all"},
		{record: "v=spf1", want: ""},
		{record: "v=spf1   ip4:192.0.2.1   -all  ", want: "ip4:192.0.2.1/32 -all"},
		{record: "v=spf10 -all", bad: "not an SPF record"},
		{record: "spf1 -all", bad: "not an SPF record"},
		{record: "v=spf1 ip4:192.0.2.0/33", bad: "prefix length"},
		{record: "v=spf1 ip4:2001:db8::1", bad: "invalid address"},
		{record: "v=spf1 ip6:192.0.2.1", bad: "invalid address"},
		{record: "v=spf1 ip4:192.0.2.1/024", bad: "prefix length"},
		{record: "v=spf1 include", bad: "needs a domain"},
		{record: "v=spf1 include:", bad: "needs a domain"},
		{record: "v=spf1 all:example.com", bad: "no argument"},
		{record: "v=spf1 a:", bad: "empty domain"},
		{record: "v=spf1 foo:bar", bad: "unknown mechanism"},
		{record: "v=spf1 redirect=a.example redirect=b.example", bad: "twice"},
		{record: "v=spf1 exists:%{q}.example", bad: "macro letter"},
		{record: "v=spf1 exists:%{i.example", bad: "unterminated"},
		{record: "v=spf1 include:example.com%", bad: "lone %"},
		{record: "v=spf1 a//129", bad: "ip6 prefix"},
	}
	for _, tt := range tests {
		rec, err := ParseSPF(tt.record)
		if tt.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tt.bad) {
				t.Errorf("ParseSPF(%q) = %v, %v; want an error about %q", tt.record, rec, err, tt.bad)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSPF(%q): %v", tt.record, err)
			continue
		}
		var parts []string
		for _, d := range rec.Directives {
			parts = append(parts, d.String())
		}
		if got := strings.Join(parts, " "); got != tt.want {
			t.Errorf("ParseSPF(%q) = %q, want %q", tt.record, got, tt.want)
		}
	}
}

// The examples of RFC 7208 section 7.4.
func TestMacroExpansion(t *testing.T) {
	env := macroEnv{ip: netip.MustParseAddr("192.0.2.3"), sender: "strong-bad@email.example.com", domain: "email.example.com", helo: "mx.example.org"}
	tests := map[string]string{
		"%{s}":                              "strong-bad@email.example.com",
		"%{o}":                              "email.example.com",
		"%{d}":                              "email.example.com",
		"%{d4}":                             "email.example.com",
		"%{d3}":                             "email.example.com",
		"%{d2}":                             "example.com",
		"%{d1}":                             "com",
		"%{dr}":                             "com.example.email",
		"%{d2r}":                            "example.email",
		"%{l}":                              "strong-bad",
		"%{l-}":                             "strong.bad",
		"%{lr}":                             "strong-bad",
		"%{lr-}":                            "bad.strong",
		"%{l1r-}":                           "strong",
		"%{ir}.%{v}._spf.%{d2}":             "3.2.0.192.in-addr._spf.example.com",
		"%{lr-}.lp._spf.%{d2}":              "bad.strong.lp._spf.example.com",
		"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}":   "bad.strong.lp.3.2.0.192.in-addr._spf.example.com",
		"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}":  "3.2.0.192.in-addr.strong.lp._spf.example.com",
		"%{d2}.trusted-domains.example.net": "example.com.trusted-domains.example.net",
		"%{h}.%%.%_.%-":                     "mx.example.org.%. .%20",
		"%{S}":                              "strong-bad%40email.example.com",
	}
	for in, want := range tests {
		got, err := env.expand(in)
		if err != nil || got != want {
			t.Errorf("expand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	env.ip = netip.MustParseAddr("2001:db8::cb01")
	got, err := env.expand("%{ir}.%{v}._spf.%{d2}")
	if want := "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"; err != nil || got != want {
		t.Errorf("ipv6 %%{ir} = %q, %v; want %q", got, err, want)
	}
}

// spfZone holds a small world of SPF records (after RFC 7208 appendix A).
func spfZone() *zone {
	z := newZone()
	z.txt["example.com"] = []string{"some other text", "v=spf1 ip4:192.0.2.0/27 a:mail.example.com mx include:_spf.example.net -all"}
	z.a["mail.example.com"] = []string{"198.51.100.10"}
	z.mx["example.com"] = []MX{{10, "mx1.example.com"}, {20, "mx2.example.com"}}
	z.a["mx1.example.com"] = []string{"198.51.100.20"}
	z.a["mx2.example.com"] = []string{"198.51.100.21"}
	z.aaaa["mx2.example.com"] = []string{"2001:db8::21"}
	z.txt["_spf.example.net"] = []string{"v=spf1 ip4:203.0.113.0/24 ip6:2001:db8:1::/48 ~all"}
	// redirect and exists with macros
	z.txt["redir.example"] = []string{"v=spf1 redirect=example.com"}
	z.txt["macro.example"] = []string{"v=spf1 exists:%{ir}.allow.macro.example -all"}
	z.a["7.2.0.192.allow.macro.example"] = []string{"127.0.0.2"}
	// broken ones
	z.txt["twice.example"] = []string{"v=spf1 -all", "v=spf1 +all"}
	z.txt["badinclude.example"] = []string{"v=spf1 include:nothing.example -all"}
	z.txt["broken.example"] = []string{"v=spf1 ip4:300.1.1.1 -all"}
	z.txt["softfail.example"] = []string{"v=spf1 ?include:_spf.example.net ~all"}
	z.txt["temp.example"] = []string{"v=spf1 include:down.example -all"}
	z.fail["down.example"] = true
	z.txt["voids.example"] = []string{"v=spf1 a:v1.example a:v2.example a:v3.example -all"}
	z.txt["ptr.example"] = []string{"v=spf1 ptr -all"}
	z.ptr["192.0.2.77"] = []string{"host.ptr.example"}
	z.a["host.ptr.example"] = []string{"192.0.2.77"}
	z.txt["loop.example"] = []string{"v=spf1 include:loop.example -all"}
	z.txt["redirnone.example"] = []string{"v=spf1 redirect=nothing.example"}
	// eleven includes: one over the limit
	var incs []string
	for i := range 11 {
		name := fmt.Sprintf("i%d.many.example", i)
		incs = append(incs, "include:"+name)
		z.txt[name] = []string{"v=spf1 ip4:10.0.0." + fmt.Sprint(i) + " -all"}
	}
	z.txt["many.example"] = []string{"v=spf1 " + strings.Join(incs, " ") + " -all"}
	return z
}

func TestCheckHost(t *testing.T) {
	z := spfZone()
	c := Checker{Resolver: z}
	tests := []struct {
		ip, domain string
		want       SPFResult
		reason     string
	}{
		{"192.0.2.5", "example.com", SPFPass, "ip4:192.0.2.0/27"},
		{"192.0.2.40", "example.com", SPFFail, "-all"},
		{"198.51.100.10", "example.com", SPFPass, "a:mail.example.com"},
		{"198.51.100.21", "example.com", SPFPass, "matched mx"},
		{"2001:db8::21", "example.com", SPFPass, "matched mx"},
		{"203.0.113.9", "example.com", SPFPass, "include:_spf.example.net"},
		{"2001:db8:1::5", "EXAMPLE.COM.", SPFPass, "include"},
		{"203.0.113.9", "redir.example", SPFPass, "include"},
		{"192.0.2.99", "redir.example", SPFFail, "-all"},
		{"192.0.2.7", "macro.example", SPFPass, "exists"},
		{"192.0.2.8", "macro.example", SPFFail, ""},
		{"192.0.2.8", "nothing.example", SPFNone, "no SPF record"},
		{"192.0.2.8", "twice.example", SPFPermerror, "exactly one"},
		{"192.0.2.8", "badinclude.example", SPFPermerror, "no SPF record"},
		{"192.0.2.8", "broken.example", SPFPermerror, "invalid address"},
		{"203.0.113.9", "softfail.example", SPFNeutral, "?include"},
		{"192.0.2.8", "softfail.example", SPFSoftfail, "~all"},
		{"192.0.2.8", "temp.example", SPFTemperror, "SERVFAIL"},
		{"192.0.2.8", "voids.example", SPFPermerror, "void lookups"},
		{"192.0.2.77", "ptr.example", SPFPass, "ptr"},
		{"192.0.2.78", "ptr.example", SPFFail, ""},
		{"192.0.2.8", "loop.example", SPFPermerror, ""},
		{"192.0.2.8", "redirnone.example", SPFPermerror, "no SPF record"},
		{"10.0.0.9", "many.example", SPFPass, ""},
		{"10.0.0.10", "many.example", SPFPermerror, "more than 10"},
	}
	for _, tt := range tests {
		out := c.CheckHost(context.Background(), netip.MustParseAddr(tt.ip), tt.domain, "", "")
		if out.Result != tt.want || !strings.Contains(out.Reason, tt.reason) {
			t.Errorf("CheckHost(%s, %s) = %s (%s, %d lookups); want %s with %q", tt.ip, tt.domain, out.Result, out.Reason, out.Lookups, tt.want, tt.reason)
		}
	}
}

func TestAnalyzeSPF(t *testing.T) {
	z := spfZone()
	ctx := context.Background()
	a := AnalyzeSPF(ctx, z, "example.com")
	if a.Result != "" || a.Lookups != 3 || a.AllQualifier != '-' || len(a.Notes) != 0 {
		t.Errorf("example.com: %+v", a)
	}
	if a := AnalyzeSPF(ctx, z, "many.example"); a.Result != SPFPermerror || a.Lookups != 11 {
		t.Errorf("many.example: %+v", a)
	}
	if a := AnalyzeSPF(ctx, z, "ptr.example"); a.Result != "" || len(a.Notes) != 1 || !strings.Contains(a.Notes[0], "ptr") {
		t.Errorf("ptr.example: %+v", a)
	}
	if a := AnalyzeSPF(ctx, z, "badinclude.example"); a.Result != SPFPermerror {
		t.Errorf("badinclude.example: %+v", a)
	}
	if a := AnalyzeSPF(ctx, z, "temp.example"); a.Result != SPFTemperror {
		t.Errorf("temp.example: %+v", a)
	}
	if a := AnalyzeSPF(ctx, z, "loop.example"); a.Result != SPFPermerror || !strings.Contains(a.Reason, "loops") {
		t.Errorf("loop.example: %+v", a)
	}
	if a := AnalyzeSPF(ctx, z, "nothing.example"); a.Result != SPFNone {
		t.Errorf("nothing.example: %+v", a)
	}
}

func FuzzParseSPF(f *testing.F) {
	for _, s := range []string{"v=spf1 -all", "v=spf1 ip4:192.0.2.0/24 a/24//64 mx:%{d2} include:x redirect=%{ir}.y exp=z",
		"v=spf1 exists:%{l1r-}.%{S}", "v=spf1 ip6:::/0", "v=spf1 a://0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rec, err := ParseSPF(s)
		if err != nil {
			return
		}
		// What parsed writes back to a record that parses the same.
		parts := []string{"v=spf1"}
		for _, d := range rec.Directives {
			parts = append(parts, d.String())
		}
		again, err := ParseSPF(strings.Join(parts, " "))
		if err != nil || len(again.Directives) != len(rec.Directives) {
			t.Fatalf("%q → %q: %v", s, strings.Join(parts, " "), err)
		}
		for i := range rec.Directives {
			if again.Directives[i] != rec.Directives[i] {
				t.Fatalf("%q: directive %d %+v became %+v", s, i, rec.Directives[i], again.Directives[i])
			}
		}
		env := macroEnv{ip: netip.MustParseAddr("192.0.2.3"), sender: "a@b.example", domain: "b.example", helo: "h"}
		for _, d := range rec.Directives {
			env.expand(d.Domain)
		}
	})
}

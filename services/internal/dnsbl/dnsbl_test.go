package dnsbl

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func mustCompile(t testing.TB, name string) *Blocklist {
	t.Helper()
	z, ok := Default().Lookup(name)
	if !ok {
		t.Fatalf("zone %s not in the default catalogue", name)
	}
	b, err := z.Compile("")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestDefaultCatalogue(t *testing.T) {
	c := Default()
	for _, z := range c.Zones {
		if _, err := z.Compile(""); err != nil {
			t.Errorf("%s: %v", z.Name, err)
		}
	}
	zones, warnings, err := c.Select(nil)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("Select(nil) = %v, %v", warnings, err)
	}
	var names []string
	for _, z := range zones {
		names = append(names, z.Name)
		if z.Retired != "" {
			t.Errorf("retired zone %s selected by default", z.Name)
		}
	}
	for _, want := range []string{"zen.spamhaus.org", "dbl.spamhaus.org", "b.barracudacentral.org", "bl.spamcop.net",
		"bl.mailspike.net", "psbl.surriel.com", "dnsbl-1.uceprotect.net", "dnsbl-2.uceprotect.net", "dnsbl-3.uceprotect.net"} {
		if !slices.Contains(names, want) {
			t.Errorf("default zones %v lack %s", names, want)
		}
	}
	for _, z := range zones {
		if strings.HasPrefix(z.Name, "dnsbl-") && z.Weight >= 1 {
			t.Errorf("%s has weight %g; UCEPROTECT levels weigh little", z.Name, z.Weight)
		}
	}
}

func TestSelect(t *testing.T) {
	c := Default()
	zones, warnings, err := c.Select([]string{"bl.spamcop.net", "DNSBL.SORBS.NET", "bl.spamcop.net"})
	if err != nil {
		t.Fatal(err)
	}
	if len(zones) != 2 || zones[1].Name != "dnsbl.sorbs.net" {
		t.Errorf("zones = %v", zones)
	}
	if len(warnings) != 2 || !strings.Contains(warnings[1], "twice") || !strings.Contains(warnings[0], "retired") || !strings.Contains(warnings[0], "2024") {
		t.Errorf("warnings = %q", warnings)
	}
	if _, _, err := c.Select([]string{"nope.example"}); err == nil || !strings.Contains(err.Error(), "nope.example") {
		t.Errorf("unknown zone: err = %v", err)
	}
	custom := c.With([]Zone{{Name: "bl.test", Kind: KindIP, Weight: 1}, {Name: "bl.spamcop.net", Kind: KindIP, Weight: 9}})
	if z, _ := custom.Lookup("bl.spamcop.net"); z.Weight != 9 {
		t.Errorf("custom zone did not replace the built-in one: %+v", z)
	}
	if _, ok := custom.Lookup("bl.test"); !ok {
		t.Error("custom zone missing")
	}
	if _, ok := c.Lookup("bl.test"); ok {
		t.Error("With changed the original catalogue")
	}
}

func TestZoneValidate(t *testing.T) {
	ok := Zone{Name: "bl.test", Kind: KindIP}
	tests := []struct {
		name string
		edit func(*Zone)
		want string // substring of the error; "" for valid
	}{
		{"minimal ip zone", func(*Zone) {}, ""},
		{"domain zone with RFC test names", func(z *Zone) { z.Kind = KindDomain }, ""},
		{"bad kind", func(z *Zone) { z.Kind = "url" }, "kind"},
		{"bad name", func(z *Zone) { z.Name = "bl..test" }, "name"},
		{"ipv6 domain zone", func(z *Zone) { z.Kind, z.IPv6 = KindDomain, true }, "ipv6"},
		{"negative weight", func(z *Zone) { z.Weight = -1 }, "weight"},
		{"code outside 127/8", func(z *Zone) { z.Codes = map[string]Code{"10.0.0.2": {ClassListed, "x"}} }, "127.0.0.0/8"},
		{"127.0.0.1 as a listing", func(z *Zone) { z.Codes = map[string]Code{"127.0.0.0/30": {ClassListed, "x"}} }, "127.0.0.1"},
		{"127.0.0.1 as an error is fine", func(z *Zone) { z.Codes = map[string]Code{"127.0.0.1": {ClassError, "x"}} }, ""},
		{"prefix with host bits", func(z *Zone) { z.Codes = map[string]Code{"127.0.0.5/30": {ClassListed, "x"}} }, "host bits"},
		{"bad class", func(z *Zone) { z.Codes = map[string]Code{"127.0.0.2": {"maybe", "x"}} }, "class"},
		{"missing meaning", func(z *Zone) { z.Codes = map[string]Code{"127.0.0.2": {ClassListed, ""}} }, "meaning"},
		{"bad other_codes", func(z *Zone) { z.OtherCodes = "clean" }, "other_codes"},
		{"domain test entry in ip zone", func(z *Zone) { z.Test = TestEntries{Listed: []string{"test"}} }, "test entry"},
		{"no listed test entry", func(z *Zone) { z.Test = TestEntries{NotListed: []string{"127.0.0.1"}} }, "test.listed"},
		{"bad delist url", func(z *Zone) { z.DelistURL = "javascript:alert(1)" }, "delist_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := ok
			tt.edit(&z)
			err := z.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error about %q", err, tt.want)
			}
		})
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in, want string
		kind     Kind
		bad      bool
	}{
		{in: "192.0.2.1", want: "192.0.2.1", kind: KindIP},
		{in: " 2001:DB8::1 ", want: "2001:db8::1", kind: KindIP},
		{in: "::ffff:192.0.2.1", want: "192.0.2.1", kind: KindIP},
		{in: "Example.COM.", want: "example.com", kind: KindDomain},
		{in: "_dmarc.example.com", want: "_dmarc.example.com", kind: KindDomain},
		{in: "test", want: "test", kind: KindDomain},
		{in: "xn--bcher-kva.example", want: "xn--bcher-kva.example", kind: KindDomain},
		{in: "", bad: true},
		{in: "bücher.example", bad: true},
		{in: "a..b", bad: true},
		{in: "192.0.2", bad: true},
		{in: "0..", bad: true},
		{in: "-a.example", bad: true},
		{in: "fe80::1%eth0", bad: true},
		{in: strings.Repeat("a", 64) + ".example", bad: true},
		{in: strings.Repeat("abcdefgh.", 29) + "example", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseTarget(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got.String() != tt.want || got.Kind != tt.kind {
			t.Errorf("ParseTarget(%q) = %v (%s), %v; want %s (%s)", tt.in, got, got.Kind, err, tt.want, tt.kind)
		}
	}
}

func TestQueryName(t *testing.T) {
	zen := mustCompile(t, "zen.spamhaus.org")
	dbl := mustCompile(t, "dbl.spamhaus.org")
	spamcop := mustCompile(t, "bl.spamcop.net")
	tests := []struct {
		b      *Blocklist
		target string
		want   string
		err    error
	}{
		{zen, "192.0.2.99", "99.2.0.192.zen.spamhaus.org.", nil},
		{zen, "127.0.0.2", "2.0.0.127.zen.spamhaus.org.", nil},
		{zen, "::ffff:10.1.2.3", "3.2.1.10.zen.spamhaus.org.", nil},
		// RFC 5782 section 2.4's example.
		{zen, "2001:db8:1:2:3:4:567:89ab", "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.zen.spamhaus.org.", nil},
		{spamcop, "2001:db8::1", "", ErrNoIPv6},
		{dbl, "Spammy.Example", "spammy.example.dbl.spamhaus.org.", nil},
		{dbl, "192.0.2.1", "", ErrKindMismatch},
		{zen, "example.com", "", ErrKindMismatch},
		{dbl, strings.Repeat("abcdefghi.", 23) + "example", "", ErrNameTooLong},
	}
	for _, tt := range tests {
		target, err := ParseTarget(tt.target)
		if err != nil {
			t.Fatal(err)
		}
		q, err := tt.b.QueryName(target)
		if err != tt.err || q.Name != tt.want {
			t.Errorf("%s.QueryName(%s) = %q, %v; want %q, %v", tt.b.Name(), tt.target, q.Name, err, tt.want, tt.err)
		}
		if err == nil && q.Display != strings.TrimSuffix(q.Name, ".") {
			t.Errorf("Display %q, want %q", q.Display, strings.TrimSuffix(q.Name, "."))
		}
	}
}

func TestDQSKey(t *testing.T) {
	z, _ := Default().Lookup("zen.spamhaus.org")
	const key = "abcdefghij0123456789klmnop"
	b, err := z.Compile(key)
	if err != nil {
		t.Fatal(err)
	}
	q, err := b.QueryName(IPTarget(netip.MustParseAddr("192.0.2.1")))
	if err != nil {
		t.Fatal(err)
	}
	if q.Name != "1.2.0.192."+key+".zen.dq.spamhaus.net." {
		t.Errorf("Name = %q", q.Name)
	}
	if strings.Contains(q.Display, key) || q.Display != "1.2.0.192.[REDACTED].zen.dq.spamhaus.net" {
		t.Errorf("Display = %q", q.Display)
	}
	if b.Name() != "zen.spamhaus.org" || !b.UsesDQS() {
		t.Errorf("Name %q UsesDQS %v", b.Name(), b.UsesDQS())
	}
	if got := b.Redact("see https://x/" + strings.ToUpper(key) + "/a and " + key); got != "see https://x/[REDACTED]/a and [REDACTED]" {
		t.Errorf("Redact = %q", got)
	}
	if _, err := z.Compile("not a.label"); err == nil || strings.Contains(err.Error(), "not a.label") {
		t.Errorf("bad key: err = %v (must not quote the key)", err)
	}
	// A zone without a DQS zone ignores the key.
	sc, _ := Default().Lookup("bl.spamcop.net")
	b2, err := sc.Compile(key)
	if err != nil || b2.UsesDQS() {
		t.Fatalf("spamcop with key: %v, UsesDQS %v", err, b2.UsesDQS())
	}
}

func TestExpandPrefix(t *testing.T) {
	got, err := ExpandPrefix(netip.MustParsePrefix("192.0.2.5/30"), 256)
	if err != nil {
		t.Fatal(err)
	}
	want := addrs("192.0.2.4", "192.0.2.5", "192.0.2.6", "192.0.2.7")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	got, err = ExpandPrefix(netip.MustParsePrefix("2001:db8::/126"), 4)
	if err != nil || len(got) != 4 || got[3].String() != "2001:db8::3" {
		t.Errorf("v6: %v, %v", got, err)
	}
	if got, err := ExpandPrefix(netip.MustParsePrefix("198.51.100.7/32"), 1); err != nil || len(got) != 1 {
		t.Errorf("/32: %v, %v", got, err)
	}
	for _, p := range []string{"10.0.0.0/8", "2001:db8::/64", "::/0"} {
		if _, err := ExpandPrefix(netip.MustParsePrefix(p), 65536); err == nil {
			t.Errorf("%s expanded past the limit", p)
		}
	}
	if got, err := ExpandPrefix(netip.MustParsePrefix("10.0.0.0/16"), 65536); err != nil || len(got) != 65536 {
		t.Errorf("/16: %d, %v", len(got), err)
	}
	if PrefixSize(netip.MustParsePrefix("::/0")) != 1<<62 || PrefixSize(netip.MustParsePrefix("10.0.0.0/24")) != 256 {
		t.Error("PrefixSize")
	}
}

func TestInterpret(t *testing.T) {
	zen := mustCompile(t, "zen.spamhaus.org")
	dbl := mustCompile(t, "dbl.spamhaus.org")
	spamcop := mustCompile(t, "bl.spamcop.net")
	tests := []struct {
		name    string
		b       *Blocklist
		rcode   int
		answers []netip.Addr
		status  Status
		cause   Cause
		code    string // ErrorCode
		meaning string // substring of the first meaning (listed) or Meaning (error)
	}{
		{"nxdomain is not listed", zen, RcodeNameError, nil, NotListed, "", "", ""},
		{"nodata is not listed", zen, RcodeSuccess, nil, NotListed, "", "", ""},
		{"sbl listing", zen, RcodeSuccess, addrs("127.0.0.2"), Listed, "", "", "SBL"},
		{"test entry answers three codes", zen, RcodeSuccess, addrs("127.0.0.2", "127.0.0.4", "127.0.0.10"), Listed, "", "", "SBL"},
		{"xbl by prefix", zen, RcodeSuccess, addrs("127.0.0.7"), Listed, "", "", "XBL"},
		{"unknown 127 code is a listing (RFC 5782)", zen, RcodeSuccess, addrs("127.0.0.42"), Listed, "", "", "not in the catalogue"},
		{"typing error", zen, RcodeSuccess, addrs("127.255.255.252"), Error, CauseErrorCode, "127.255.255.252", "typing error"},
		{"public resolver", zen, RcodeSuccess, addrs("127.255.255.254"), Error, CauseErrorCode, "127.255.255.254", "public/open resolver"},
		{"rate limited", zen, RcodeSuccess, addrs("127.255.255.255"), Error, CauseErrorCode, "127.255.255.255", "excessive"},
		{"unknown spamhaus error code", zen, RcodeSuccess, addrs("127.255.255.250"), Error, CauseErrorCode, "127.255.255.250", "error code"},
		{"ip asked of the DBL", dbl, RcodeSuccess, addrs("127.0.1.255"), Error, CauseErrorCode, "127.0.1.255", "IP queries prohibited"},
		{"dbl listing", dbl, RcodeSuccess, addrs("127.0.1.2"), Listed, "", "", "spam domain"},
		{"error code beside a listing taints the answer", zen, RcodeSuccess, addrs("127.0.0.2", "127.255.255.254"), Error, CauseErrorCode, "127.255.255.254", "public"},
		{"127.0.0.1 is never valid", spamcop, RcodeSuccess, addrs("127.0.0.1"), Error, CauseBadAnswer, "127.0.0.1", "never"},
		{"nxdomain rewriting", spamcop, RcodeSuccess, addrs("198.51.100.80"), Error, CauseNXDomainRewrite, "198.51.100.80", "outside"},
		{"rewrite among listings", spamcop, RcodeSuccess, addrs("127.0.0.2", "203.0.113.9"), Error, CauseNXDomainRewrite, "203.0.113.9", "outside"},
		{"ipv6 in an A answer", spamcop, RcodeSuccess, addrs("::1"), Error, CauseNXDomainRewrite, "::1", "outside"},
		{"mapped 127.0.0.2", spamcop, RcodeSuccess, addrs("::ffff:127.0.0.2"), Listed, "", "", "SpamCop"},
		{"servfail", zen, RcodeServerFailure, nil, Error, CauseServfail, "", ""},
		{"refused", zen, RcodeRefused, nil, Error, CauseRefused, "", ""},
		{"formerr", zen, RcodeFormatError, nil, Error, CauseBadAnswer, "", ""},
		{"nxdomain with records", zen, RcodeNameError, addrs("127.0.0.2"), Error, CauseBadAnswer, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.b.Interpret(tt.rcode, tt.answers)
			if r.Status != tt.status || r.Cause != tt.cause || r.ErrorCode != tt.code {
				t.Fatalf("Interpret = %+v; want status %s cause %q code %q", r, tt.status, tt.cause, tt.code)
			}
			if len(r.Codes) != len(r.Meanings) {
				t.Errorf("%d codes, %d meanings", len(r.Codes), len(r.Meanings))
			}
			switch tt.status {
			case Listed:
				if len(r.Codes) != len(tt.answers) || !strings.Contains(r.Meanings[0], tt.meaning) && !strings.Contains(tt.b.Zone().ListName(), tt.meaning) {
					t.Errorf("codes %v meanings %q, want %q", r.Codes, r.Meanings, tt.meaning)
				}
			case Error:
				if !strings.Contains(r.Meaning, tt.meaning) || r.Detail == "" {
					t.Errorf("meaning %q detail %q, want %q", r.Meaning, r.Detail, tt.meaning)
				}
			}
		})
	}
}

func TestPublicResolverHint(t *testing.T) {
	zen := mustCompile(t, "zen.spamhaus.org")
	r := zen.Interpret(RcodeSuccess, addrs("127.255.255.254"))
	if !strings.Contains(r.Detail, "DQS key") {
		t.Errorf("detail %q gives no hint", r.Detail)
	}
	if PublicResolver(netip.MustParseAddr("8.8.8.8")) == "" || PublicResolver(netip.MustParseAddr("::ffff:1.1.1.1")) == "" {
		t.Error("well-known public resolvers not recognised")
	}
	if PublicResolver(netip.MustParseAddr("127.0.0.1")) != "" {
		t.Error("loopback taken for a public resolver")
	}
}

func TestSelfTest(t *testing.T) {
	zen := mustCompile(t, "zen.spamhaus.org")
	listed, notListed := zen.TestTargets()
	if len(listed) != 1 || listed[0].String() != "127.0.0.2" || len(notListed) != 1 || notListed[0].String() != "127.0.0.1" {
		t.Fatalf("test targets %v / %v", listed, notListed)
	}
	dbl := mustCompile(t, "dbl.spamhaus.org")
	if l, n := dbl.TestTargets(); l[0].String() != "dbltest.com" || n[0].String() != "invalid" {
		t.Errorf("dbl test targets %v / %v", l, n)
	}
	good := []TestOutcome{
		{Target: listed[0], WantListed: true, Result: zen.Interpret(RcodeSuccess, addrs("127.0.0.2", "127.0.0.10"))},
		{Target: notListed[0], Result: zen.Interpret(RcodeNameError, nil)},
	}
	if r := SelfTest("zen.spamhaus.org", good); r != nil {
		t.Errorf("healthy zone failed: %+v", r)
	}
	tests := []struct {
		name     string
		outcomes []TestOutcome
		want     string
	}{
		{"none", nil, "no self-test"},
		{"public resolver", []TestOutcome{{Target: listed[0], WantListed: true, Result: zen.Interpret(RcodeSuccess, addrs("127.255.255.254"))}, good[1]},
			"must be listed but was an error"},
		{"dead zone answers nxdomain for everything", []TestOutcome{{Target: listed[0], WantListed: true, Result: zen.Interpret(RcodeNameError, nil)}, good[1]},
			"must be listed but was not_listed"},
		{"lists everything", []TestOutcome{good[0], {Target: notListed[0], Result: zen.Interpret(RcodeSuccess, addrs("127.0.0.2"))}},
			"must not be listed but was listed (127.0.0.2)"},
		{"rewriting resolver", []TestOutcome{good[0], {Target: notListed[0], Result: zen.Interpret(RcodeSuccess, addrs("192.0.2.80"))}},
			"outside 127.0.0.0/8"},
	}
	for _, tt := range tests {
		r := SelfTest("zen.spamhaus.org", tt.outcomes)
		if r == nil || r.Status != Error || r.Cause != CauseSelfTest || !strings.Contains(r.Detail, tt.want) {
			t.Errorf("%s: SelfTest = %+v, want a selftest_failed error with %q", tt.name, r, tt.want)
		}
	}
}

func TestDelistURL(t *testing.T) {
	b := mustCompile(t, "b.barracudacentral.org")
	if got := b.DelistURL(IPTarget(netip.MustParseAddr("192.0.2.25"))); got != "https://www.barracudacentral.org/rbl/removal-request/192.0.2.25" {
		t.Errorf("DelistURL = %q", got)
	}
}

func TestParseCatalogueStrict(t *testing.T) {
	if _, err := ParseCatalogue([]byte("zones:\n  - name: bl.test\n    kind: ip\n    wieght: 2\n")); err == nil {
		t.Error("unknown key accepted")
	}
	if _, err := ParseCatalogue([]byte("zones:\n  - {name: bl.test, kind: ip}\n  - {name: BL.test, kind: ip}\n")); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate zone: %v", err)
	}
}

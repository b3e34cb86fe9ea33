package dnsbl

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzInterpret: whatever a resolver sends back, Interpret never panics,
// gives one meaning per code, and calls an answer Listed only when every
// record is a 127.0.0.0/8 listing code other than 127.0.0.1 in a NOERROR
// reply: no error code, no rewritten NXDOMAIN, ever becomes a listing.
func FuzzInterpret(f *testing.F) {
	f.Add(byte(0), []byte{127, 0, 0, 2})
	f.Add(byte(0), []byte{127, 0, 0, 2, 127, 0, 0, 4, 127, 0, 0, 10})
	f.Add(byte(0), []byte{127, 255, 255, 254})
	f.Add(byte(0), []byte{127, 0, 1, 255})
	f.Add(byte(0), []byte{127, 0, 0, 1})
	f.Add(byte(0), []byte{192, 0, 2, 80})
	f.Add(byte(3), []byte{})
	f.Add(byte(2), []byte{127, 0, 0, 2})
	f.Add(byte(0), []byte{127, 0, 0})
	zones := []*Blocklist{mustCompile(f, "zen.spamhaus.org"), mustCompile(f, "dbl.spamhaus.org"), mustCompile(f, "bl.spamcop.net")}
	f.Fuzz(func(t *testing.T, rcode byte, raw []byte) {
		var answers []netip.Addr
		for i := 0; i+4 <= len(raw); i += 4 {
			answers = append(answers, netip.AddrFrom4([4]byte(raw[i:i+4])))
		}
		if len(raw)%4 != 0 && len(raw) >= 16 {
			answers = append(answers, netip.AddrFrom16([16]byte(raw[len(raw)-16:])))
		}
		for _, b := range zones {
			r := b.Interpret(int(rcode%16), answers)
			if len(r.Codes) != len(r.Meanings) {
				t.Fatalf("%d codes, %d meanings", len(r.Codes), len(r.Meanings))
			}
			switch r.Status {
			case Listed:
				if rcode%16 != RcodeSuccess || len(answers) == 0 {
					t.Fatalf("listed with rcode %d and %d answers", rcode%16, len(answers))
				}
				for _, a := range answers {
					a = a.Unmap()
					if !a.Is4() || a.As4()[0] != 127 || a == never || b.Lookup(a).Class != ClassListed {
						t.Fatalf("%s: %v counted as a listing", b.Name(), answers)
					}
				}
			case NotListed:
				if len(answers) > 0 {
					t.Fatalf("not listed with answers %v", answers)
				}
			case Error:
				if r.Cause == "" || r.Detail == "" {
					t.Fatalf("error without cause or detail: %+v", r)
				}
			default:
				t.Fatalf("status %q", r.Status)
			}
		}
	})
}

// FuzzParseTarget: a target that parses builds a query name that parses
// back to the same target, and never panics.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "2001:db8::1", "example.com", "Example.COM.", "a..b", "_x.y", "::ffff:1.2.3.4", ""} {
		f.Add(s)
	}
	zen := mustCompile(f, "zen.spamhaus.org")
	dbl := mustCompile(f, "dbl.spamhaus.org")
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			return
		}
		again, err := ParseTarget(tg.String())
		if err != nil || again != tg {
			t.Fatalf("%q → %v → %v, %v", s, tg, again, err)
		}
		for _, b := range []*Blocklist{zen, dbl} {
			q, err := b.QueryName(tg)
			if err != nil {
				continue
			}
			if len(q.Name) > 254 || q.Name[len(q.Name)-1] != '.' {
				t.Fatalf("query name %q", q.Name)
			}
		}
	})
}

// FuzzRedact: whatever a zone echoes, the DQS key never survives.
func FuzzRedact(f *testing.F) {
	f.Add("listed; see https://x/abcdefghij0123456789klmnop.zen.dq.spamhaus.net")
	f.Add("ABCDEFGHIJ0123456789KLMNOP\xff\xfe")
	z, _ := Default().Lookup("zen.spamhaus.org")
	const key = "abcdefghij0123456789klmnop"
	b, err := z.Compile(key)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := b.Redact(s)
		if strings.Contains(string(bytesLowerASCII([]byte(got))), key) {
			t.Fatalf("Redact(%q) = %q", s, got)
		}
	})
}

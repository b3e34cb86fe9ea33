package enforcement

import (
	"testing"
)

func TestSubjectsRoundTrip(t *testing.T) {
	tests := []struct {
		text, key string
	}{
		{"customer:acme", "customer.acme"},
		{"ip:192.0.2.10", "source_ip.192=2E0=2E2=2E10"},
		{"ip:2001:db8::1", "source_ip.2001=3Adb8=3A=3A1"},
		{"customer:acme retail/provider:gmail", "customer_provider.acme=20retail.gmail"},
		{"customer:a.b/provider:x/y", "customer_provider.a=2Eb.x=2Fy"},
	}
	for _, tc := range tests {
		s, err := ParseSubject(tc.text)
		if err != nil {
			t.Fatalf("%s: %v", tc.text, err)
		}
		if s.String() != tc.text {
			t.Errorf("%s reads back as %s", tc.text, s)
		}
		if s.Key() != tc.key {
			t.Errorf("%s: key %s, want %s", tc.text, s.Key(), tc.key)
		}
		back, err := SubjectFromKey(s.Key())
		if err != nil || back != s {
			t.Errorf("key %s decodes to %+v (%v), want %+v", s.Key(), back, err, s)
		}
	}
	for _, bad := range []string{"", "customer:", "ip:", "host:x", "customer:/provider:gmail", "customer:a/provider:"} {
		if _, err := ParseSubject(bad); err == nil {
			t.Errorf("ParseSubject(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"customer", "customer.", "customer.a=2", "customer.a=ZZ", "customer.=61", "source_ip.a.b", "other.x"} {
		if _, err := SubjectFromKey(bad); err == nil {
			t.Errorf("SubjectFromKey(%q) accepted", bad)
		}
	}
}

func FuzzSubjectKey(f *testing.F) {
	f.Add("customer", "acme", "gmail")
	f.Add("source_ip", "192.0.2.1", "")
	f.Fuzz(func(t *testing.T, scope, a, b string) {
		var s Subject
		switch scope {
		case "customer":
			s = Customer(a)
		case "source_ip":
			s = SourceIP(a)
		default:
			s = CustomerProvider(a, b)
		}
		if !s.Valid() {
			return
		}
		back, err := SubjectFromKey(s.Key())
		if err != nil || back != s {
			t.Fatalf("%+v: key %q decodes to %+v, %v", s, s.Key(), back, err)
		}
		if p, err := ParseSubject(s.String()); err == nil && p.Valid() && p.Key() != s.Key() && p.String() == s.String() {
			t.Fatalf("one text, two keys: %q", s.String())
		}
	})
}

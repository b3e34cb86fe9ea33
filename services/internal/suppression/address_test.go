package suppression

import (
	"hash/fnv"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailmon/mailmon/schemas"
)

func TestNormalizeAddress(t *testing.T) {
	n := Normalizer{IgnoreDots: []string{"gmail.com"}, StripSubaddress: []string{"gmail.com", "fastmail.com"}}
	for _, tc := range []struct{ in, want, domain, err string }{
		{in: "Gone.User@EXAMPLE.org", want: "Gone.User@example.org", domain: "example.org"},
		{in: " <gone.user@example.org.> ", want: "gone.user@example.org", domain: "example.org"},
		{in: "Jo.Ann+news@Gmail.com", want: "joann@gmail.com", domain: "gmail.com"},
		{in: "jo.ann+news@fastmail.com", want: "jo.ann@fastmail.com", domain: "fastmail.com"},
		{in: "jo.ann+news@example.org", want: "jo.ann+news@example.org", domain: "example.org"},
		{in: "user@Bücher.Example", want: "user@xn--bcher-kva.example", domain: "xn--bcher-kva.example"},
		{in: "user@[192.0.2.1]", want: "user@[192.0.2.1]", domain: "[192.0.2.1]"},
		{in: "a\"b@c.example", want: "a\"b@c.example", domain: "c.example"},
		{in: "no-at-sign", err: "not an address"},
		{in: "@example.org", err: "not an address"},
		{in: "user@", err: "not an address"},
		{in: "us er@example.org", err: "local part"},
		{in: "user@exa mple.org", err: "domain"},
		{in: strings.Repeat("a", 400) + "@example.org", err: "longer than"},
		{in: "...@gmail.com", err: "not an address"},
	} {
		got, domain, err := n.Address(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want || domain != tc.domain {
			t.Errorf("%q: got %q %q %v, want %q %q", tc.in, got, domain, err, tc.want, tc.domain)
		}
	}
}

func TestKeys(t *testing.T) {
	var n Normalizer
	plain, keyed := NewHasher(""), NewHasher("k1")
	tg, err := n.TargetFor(schemas.SuppressCustomerRecipient, "acme", "Gone@Example.ORG")
	if err != nil {
		t.Fatal(err)
	}
	k := plain.Key(tg)
	kind, owner, digest, ok := ParseKey(k)
	if !ok || kind != "r" || owner != Owner("acme") || digest != plain.Digest("Gone@example.org") {
		t.Fatalf("key %s parsed as %s %s %s %v", k, kind, owner, digest, ok)
	}
	if keyed.Key(tg) == k || NewHasher("k2").Key(tg) == keyed.Key(tg) {
		t.Error("a hash key must change every key")
	}
	other, _ := n.TargetFor(schemas.SuppressCustomerRecipient, "globex", "gone@example.org")
	if plain.Key(other) == k {
		t.Error("two customers share a key")
	}
	global, _ := n.TargetFor(schemas.SuppressGlobalRecipient, "acme", "Gone@example.org")
	domain, _ := n.TargetFor(schemas.SuppressCustomerDomain, "acme", "x@Example.org")
	keys := plain.RequestKeys("acme", "Gone@example.org", "example.org")
	wantKeys := []RequestKey{
		{schemas.SuppressCustomerRecipient, k},
		{schemas.SuppressCustomerDomain, plain.Key(domain)},
		{schemas.SuppressGlobalRecipient, plain.Key(global)},
	}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("request keys %v, want %v", keys, wantKeys)
	}
	for _, want := range []string{k, plain.Key(global), plain.Key(domain)} {
		if _, _, _, ok := ParseKey(want); !ok {
			t.Errorf("ParseKey(%s) refused its own key", want)
		}
	}
	if got := plain.RequestKeys("", "Gone@example.org", "example.org"); len(got) != 1 || got[0].Key != plain.Key(global) || got[0].Scope != schemas.SuppressGlobalRecipient {
		t.Errorf("without a customer only the global key applies, got %v", got)
	}
	for _, bad := range []string{"", "r.all", "x.all.0123456789abcdef0123456789abcdef", "r.ALL.0123456789abcdef0123456789abcdef", "r.all.0123", "r.all.0123456789abcdef0123456789abcdeg"} {
		if _, _, _, ok := ParseKey(bad); ok {
			t.Errorf("ParseKey(%q) accepted it", bad)
		}
	}
	e := NewEntry(keyed, tg, schemas.SuppressHardBounce, time.Time{}, time.Time{})
	if e.Recipient != "" || e.RecipientHash == "" {
		t.Errorf("a keyed entry keeps the address in clear: %+v", e)
	}
	back, err := Unmarshal(e.Marshal())
	if err != nil || back.Key != e.Key {
		t.Errorf("round trip: %+v %v", back, err)
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.Expiry["blocked_ip_or_blocklist"] = 0
	c.RejectText = "4.1.1 try later"
	c.SoftBounces.Count = 3
	c.SoftBounces.Categories = nil
	err := c.Validate()
	for _, want := range []string{"expiry.blocked_ip_or_blocklist", "reject_text", "soft_bounces.categories"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want a problem with %s", err, want)
		}
	}
}

func TestSetKeyIsFNV1a(t *testing.T) {
	for _, key := range []string{"", "r.all.0123456789abcdef0123456789abcdef", "d.6f1d3c0a9b2e4d51.0c8e7a5b3f2d1e4c9a6b8d7f5e3c2a1b"} {
		f := fnv.New64a()
		f.Write([]byte(key))
		if got, want := SetKey(key), f.Sum64(); got != want {
			t.Errorf("SetKey(%q) = %x, want FNV-1a %x", key, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { SetKey("r.all.0123456789abcdef0123456789abcdef") }); n != 0 {
		t.Errorf("SetKey allocates %v times", n)
	}
}

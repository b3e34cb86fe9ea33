package tracking

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

var (
	secretA = []byte("0123456789abcdef0123456789abcdef")          // 32 bytes
	secretB = []byte("another-secret-of-enough-length!-and-more") // 41 bytes
	secretC = []byte("a third secret that nobody here holds......")
	signed  = time.Date(2024, 6, 10, 12, 0, 0, 0, time.UTC)
)

func ring() Keyring {
	return Keyring{Current: Key{ID: "k2", Secret: secretB}, Previous: []Key{{ID: "k1", Secret: secretA}}}
}

func fields() Fields {
	return Fields{Customer: "acme", Source: "192.0.2.10", MessageID: "0190f0c2-7b1e-7c3a-9d2e-4f5a6b7c8d9e", Time: signed}
}

func mustSign(t *testing.T, k Keyring, f Fields) string {
	t.Helper()
	v, err := k.Sign(f)
	if err != nil {
		t.Fatalf("Sign(%+v): %v", f, err)
	}
	return v
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		f    Fields
	}{
		{"plain", fields()},
		{"ipv6 source", Fields{Customer: "c-1", Source: "2001:db8::25", MessageID: "m", Time: signed}},
		{"named source", Fields{Customer: "acme", Source: "relay-eu.pool_2", MessageID: "probe/42", Time: signed}},
		{"header syntax in values", Fields{Customer: "a; k=evil; h=x", Source: "s=1;t=2", MessageID: "100%=done", Time: signed}},
		{"spaces and quotes", Fields{Customer: `Acme "Mail" (EU)`, Source: "relay 1", MessageID: "<abc@mail.example>", Time: signed}},
		{"unicode", Fields{Customer: "Müller & Söhne", Source: "mx.bücher.example", MessageID: "日本語", Time: signed}},
		{"sub-second time is cut to seconds", Fields{Customer: "a", Source: "b", MessageID: "c", Time: signed.Add(999 * time.Millisecond)}},
		{"time in another zone", Fields{Customer: "a", Source: "b", MessageID: "c", Time: signed.In(time.FixedZone("X", 5*3600))}},
		{"longest values", Fields{Customer: strings.Repeat("é", MaxCustomerLen/2), Source: strings.Repeat(";", MaxSourceLen), MessageID: strings.Repeat("\u00a0", MaxMessageIDLen/2), Time: time.Unix(maxUnix, 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			value := mustSign(t, ring(), tt.f)
			if len(value) > 998 {
				t.Errorf("header value is %d bytes, longer than a header line may be", len(value))
			}
			for i := 0; i < len(value); i++ {
				if value[i] < 0x20 || value[i] > 0x7e {
					t.Fatalf("header value has byte %#x: %q", value[i], value)
				}
			}
			now := tt.f.Time.Add(time.Minute)
			got, err := ring().Verify(value, now, 0)
			if err != nil {
				t.Fatalf("Verify(%q): %v", value, err)
			}
			want := tt.f
			want.Time = time.Unix(tt.f.Time.Unix(), 0).UTC()
			if got != want {
				t.Errorf("Verify gave %+v, want %+v", got, want)
			}
			parsed, keyID, err := Parse(value)
			if err != nil || parsed != want || keyID != "k2" {
				t.Errorf("Parse gave %+v, %q, %v", parsed, keyID, err)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	old := Keyring{Current: Key{ID: "k1", Secret: secretA}}
	signedWithOld := mustSign(t, old, fields())
	signedWithNew := mustSign(t, ring(), fields())
	if !strings.Contains(signedWithNew, "k=k2") {
		t.Errorf("the rotated ring did not sign with its current key: %s", signedWithNew)
	}
	tests := []struct {
		name  string
		ring  Keyring
		value string
		want  error
	}{
		{"old header, old key still previous", ring(), signedWithOld, nil},
		{"new header, current key", ring(), signedWithNew, nil},
		{"new header, verifier not rotated yet", old, signedWithNew, ErrUnknownKey},
		{"old header, old key dropped", Keyring{Current: ring().Current}, signedWithOld, ErrUnknownKey},
		{"same id, different secret", Keyring{Current: Key{ID: "k1", Secret: secretC}}, signedWithOld, ErrTampered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.ring.Verify(tt.value, signed, 0)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	good := mustSign(t, ring(), fields())
	mac := good[strings.Index(good, "h=")+2:]
	replace := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("%q not in %q", old, good)
		}
		return strings.Replace(good, old, new, 1)
	}
	tests := []struct {
		name   string
		value  string
		now    time.Time
		maxAge time.Duration
		want   error
	}{
		{"tampered customer", replace("c=acme", "c=acmf"), signed, 0, ErrTampered},
		{"tampered source", replace("s=192.0.2.10", "s=192.0.2.11"), signed, 0, ErrTampered},
		{"tampered message id", replace("m=0190", "m=0191"), signed, 0, ErrTampered},
		{"tampered time", replace("t=1718020800", "t=1718020801"), signed, 0, ErrTampered},
		{"key id swapped to another known key", replace("k=k2", "k=k1"), signed, 0, ErrTampered},
		{"flipped MAC", replace("h="+mac, "h="+flipFirst(mac)), signed, 0, ErrTampered},
		{"truncated MAC", replace("h="+mac, "h="+mac[:22]), signed, 0, ErrTruncatedMAC},
		{"empty MAC", replace("h="+mac, "h="), signed, 0, ErrTruncatedMAC},
		{"MAC too long", good + "AAAA", signed, 0, ErrMalformed},
		{"MAC with non-canonical last character", replace("h="+mac, "h="+mac[:len(mac)-1]+nonCanonicalLast(mac)), signed, 0, ErrMalformed},
		{"MAC padded", good + "=", signed, 0, ErrMalformed},
		{"MAC not base64url", replace("h="+mac, "h="+strings.Repeat("*", len(mac))), signed, 0, ErrMalformed},
		{"unknown key id", replace("k=k2", "k=k9"), signed, 0, ErrUnknownKey},
		{"version 2", replace("v=1", "v=2"), signed, 0, ErrVersion},
		{"version 2 in a future format", "v=2; x=whatever", signed, 0, ErrVersion},
		{"empty", "", signed, 0, ErrMalformed},
		{"foreign header", "dkim-like; a=rsa-sha256", signed, 0, ErrMalformed},
		{"field missing", replace("; s=192.0.2.10", ""), signed, 0, ErrMalformed},
		{"fields reordered", replace("c=acme; s=192.0.2.10", "s=192.0.2.10; c=acme"), signed, 0, ErrMalformed},
		{"field repeated", replace("; m=", "; c=evil; m="), signed, 0, ErrMalformed},
		{"extra field", good + "; x=1", signed, 0, ErrMalformed},
		{"trailing separator", good + ";", signed, 0, ErrMalformed},
		{"upper-case tag", replace("c=", "C="), signed, 0, ErrMalformed},
		{"raw semicolon smuggled", replace("c=acme", "c=ac;me"), signed, 0, ErrMalformed},
		{"lower-case escape", replace("c=acme", "c=ac%3bme"), signed, 0, ErrMalformed},
		{"needless escape", replace("c=acme", "c=%61cme"), signed, 0, ErrMalformed},
		{"incomplete escape", replace("c=acme", "c=acme%4"), signed, 0, ErrMalformed},
		{"escaped control character", replace("c=acme", "c=ac%0Ame"), signed, 0, ErrMalformed},
		{"escaped invalid UTF-8", replace("c=acme", "c=ac%FFme"), signed, 0, ErrMalformed},
		{"empty customer", replace("c=acme", "c="), signed, 0, ErrMalformed},
		{"customer too long", replace("c=acme", "c="+strings.Repeat("a", MaxCustomerLen+1)), signed, 0, ErrMalformed},
		{"bad key id", replace("k=k2", "k=k%32"), signed, 0, ErrMalformed},
		{"time not a number", replace("t=1718020800", "t=soon"), signed, 0, ErrMalformed},
		{"time with leading zero", replace("t=1718020800", "t=01718020800"), signed, 0, ErrMalformed},
		{"time zero", replace("t=1718020800", "t=0"), signed, 0, ErrMalformed},
		{"time negative", replace("t=1718020800", "t=-5"), signed, 0, ErrMalformed},
		{"time past year 9999", replace("t=1718020800", "t=999999999999"), signed, 0, ErrMalformed},
		{"non-ASCII byte", replace("c=acme", "c=acmé"), signed, 0, ErrMalformed},
		{"too long overall", good + strings.Repeat(" ", maxInputLen), signed, 0, ErrMalformed},
		{"from the future", good, signed.Add(-MaxClockSkew - time.Second), 0, ErrFuture},
		{"too old", good, signed.Add(30*24*time.Hour + time.Second), 30 * 24 * time.Hour, ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ring().Verify(tt.value, tt.now, tt.maxAge)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify(%q): %v, want %v", tt.value, err, tt.want)
			}
			if got != (Fields{}) {
				t.Errorf("a rejected header returned fields %+v", got)
			}
			for _, other := range []error{ErrMalformed, ErrVersion, ErrUnknownKey, ErrTruncatedMAC, ErrTampered, ErrFuture, ErrExpired} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("error %v is also %v", err, other)
				}
			}
		})
	}
}

// nonCanonicalLast returns a last character for mac that sets one of the
// unused low bits, which strict base64 decoding refuses.
func nonCanonicalLast(mac string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, mac[len(mac)-1])
	return string(alphabet[i|1])
}

func flipFirst(mac string) string {
	if mac[0] == 'A' {
		return "B" + mac[1:]
	}
	return "A" + mac[1:]
}

func TestVerifyAcceptsAtTheLimits(t *testing.T) {
	good := mustSign(t, ring(), fields())
	tests := []struct {
		name   string
		now    time.Time
		maxAge time.Duration
	}{
		{"clock skew at the limit", signed.Add(-MaxClockSkew), 0},
		{"age at the limit", signed.Add(time.Hour), time.Hour},
		{"no age limit", signed.Add(10 * 365 * 24 * time.Hour), 0},
	}
	for _, tt := range tests {
		if _, err := ring().Verify(good, tt.now, tt.maxAge); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

func TestVerifyToleratesFolding(t *testing.T) {
	good := mustSign(t, ring(), fields())
	tests := []struct{ name, value string }{
		{"folded at every separator", strings.ReplaceAll(good, "; ", ";\r\n\t")},
		{"folded inside the MAC", good[:len(good)-10] + "\r\n " + good[len(good)-10:]},
		{"whitespace collapsed", strings.ReplaceAll(good, " ", "")},
		{"leading and trailing space", "  " + good + " \r\n"},
		{"extra spaces around =", strings.ReplaceAll(good, "=", " = ")},
		{"unfolded but CRLF kept", strings.ReplaceAll(good, "; ", ";\r\n ")},
	}
	for _, tt := range tests {
		got, err := ring().Verify(tt.value, signed, 0)
		if err != nil || got.Customer != "acme" {
			t.Errorf("%s: Verify(%q) = %+v, %v", tt.name, tt.value, got, err)
		}
	}
}

func TestSignRejects(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	withField := func(change func(*Fields)) Fields {
		f := fields()
		change(&f)
		return f
	}
	tests := []struct {
		name string
		ring Keyring
		f    Fields
		want error
	}{
		{"short secret", Keyring{Current: Key{ID: "k", Secret: secretA[:31]}}, fields(), ErrInvalidKey},
		{"no key", Keyring{}, fields(), ErrInvalidKey},
		{"key id with a space", Keyring{Current: Key{ID: "k 1", Secret: secretA}}, fields(), ErrInvalidKey},
		{"key id with a semicolon", Keyring{Current: Key{ID: "k;1", Secret: secretA}}, fields(), ErrInvalidKey},
		{"key id too long", Keyring{Current: Key{ID: long(MaxKeyIDLen + 1), Secret: secretA}}, fields(), ErrInvalidKey},
		{"empty customer", ring(), withField(func(f *Fields) { f.Customer = "" }), ErrInvalidField},
		{"empty source", ring(), withField(func(f *Fields) { f.Source = "" }), ErrInvalidField},
		{"empty message id", ring(), withField(func(f *Fields) { f.MessageID = "" }), ErrInvalidField},
		{"customer too long", ring(), withField(func(f *Fields) { f.Customer = long(MaxCustomerLen + 1) }), ErrInvalidField},
		{"source too long", ring(), withField(func(f *Fields) { f.Source = long(MaxSourceLen + 1) }), ErrInvalidField},
		{"message id too long", ring(), withField(func(f *Fields) { f.MessageID = long(MaxMessageIDLen + 1) }), ErrInvalidField},
		{"CRLF injection", ring(), withField(func(f *Fields) { f.Customer = "acme\r\nBcc: victim@example.com" }), ErrInvalidField},
		{"NUL", ring(), withField(func(f *Fields) { f.Source = "a\x00b" }), ErrInvalidField},
		{"invalid UTF-8", ring(), withField(func(f *Fields) { f.MessageID = "\xff\xfe" }), ErrInvalidField},
		{"zero time", ring(), withField(func(f *Fields) { f.Time = time.Time{} }), ErrInvalidField},
		{"time before 1970", ring(), withField(func(f *Fields) { f.Time = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) }), ErrInvalidField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			value, err := tt.ring.Sign(tt.f)
			if !errors.Is(err, tt.want) || value != "" {
				t.Errorf("Sign = %q, %v; want %v", value, err, tt.want)
			}
		})
	}
}

func TestVerifyWithAShortKeyInTheRing(t *testing.T) {
	value := mustSign(t, ring(), fields())
	weak := Keyring{Current: Key{ID: "k2", Secret: []byte("short")}}
	if _, err := weak.Verify(value, signed, 0); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Verify with a short key: %v, want ErrInvalidKey", err)
	}
}

func TestKeyringValidate(t *testing.T) {
	tests := []struct {
		name string
		ring Keyring
		ok   bool
	}{
		{"good", ring(), true},
		{"short previous", Keyring{Current: ring().Current, Previous: []Key{{ID: "k0", Secret: []byte("x")}}}, false},
		{"duplicate id", Keyring{Current: ring().Current, Previous: []Key{{ID: "k2", Secret: secretA}}}, false},
		{"empty", Keyring{}, false},
	}
	for _, tt := range tests {
		err := tt.ring.Validate()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidKey)) {
			t.Errorf("%s: Validate() = %v", tt.name, err)
		}
	}
}

func TestParseIsUnverified(t *testing.T) {
	value := mustSign(t, ring(), fields())
	forged := strings.Replace(value, "c=acme", "c=victim", 1)
	f, keyID, err := Parse(forged)
	if err != nil || f.Customer != "victim" || keyID != "k2" {
		t.Errorf("Parse(forged) = %+v, %q, %v; want it read without checking", f, keyID, err)
	}
	if _, err := ring().Verify(forged, signed, 0); !errors.Is(err, ErrTampered) {
		t.Errorf("Verify(forged) = %v, want ErrTampered", err)
	}
	if _, _, err := Parse("v=1; k=k2"); !errors.Is(err, ErrMalformed) {
		t.Errorf("Parse of a short header: %v", err)
	}
}

func TestKeysNeverPrint(t *testing.T) {
	k := Keyring{Current: Key{ID: "k2", Secret: secretB}, Previous: []Key{{ID: "k1", Secret: secretA}}}
	type holder struct {
		Ring Keyring
		Key  Key
		Ptr  *Keyring
	}
	h := holder{Ring: k, Key: k.Current, Ptr: &k}
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		outputs = append(outputs, fmt.Sprintf(verb, h), fmt.Sprintf(verb, k), fmt.Sprintf(verb, k.Current), fmt.Sprintf(verb, &k))
	}
	for _, newHandler := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(newHandler(&buf)).Info("keys", "ring", k, "key", k.Current, "holder", h)
		outputs = append(outputs, buf.String())
	}
	js, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(js))
	for _, out := range outputs {
		for _, secret := range [][]byte{secretA, secretB} {
			if strings.Contains(out, string(secret[:12])) || strings.Contains(out, fmt.Sprintf("%x", secret[:8])) ||
				strings.Contains(out, fmt.Sprint(secret[:4])[1:8]) {
				t.Errorf("output shows a secret: %s", out)
			}
		}
		if !strings.Contains(out, "k2") {
			t.Errorf("output does not name the key id: %s", out)
		}
	}
}

package tracking

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzVerify: no input panics, every refusal is one of the documented
// reasons, and anything that verifies re-signs to the same text, so there
// is one spelling per set of fields and no field can be smuggled past the
// MAC.
func FuzzVerify(f *testing.F) {
	k := Keyring{Current: Key{ID: "k2", Secret: secretB}}
	for _, fl := range []Fields{
		fields(),
		{Customer: "Müller; h=x", Source: "2001:db8::1", MessageID: "<a b@c>", Time: time.Unix(1, 0)},
		{Customer: "%", Source: "=", MessageID: ";", Time: time.Unix(maxUnix, 0)},
	} {
		value, err := k.Sign(fl)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(value)
		f.Add(strings.ReplaceAll(value, "; ", ";\r\n\t"))
		f.Add(value[:len(value)-5])
	}
	f.Add("")
	f.Add("v=2")
	f.Add("v=1;k=;c=;s=;m=;t=;h=")
	f.Add("v=1; k=k2; c=%zz; s=a; m=b; t=1; h=AAAA")

	reasons := []error{ErrMalformed, ErrVersion, ErrUnknownKey, ErrTruncatedMAC, ErrTampered, ErrFuture, ErrExpired}
	now := time.Unix(maxUnix, 0)
	f.Fuzz(func(t *testing.T, value string) {
		parsedFields, keyID, parseErr := Parse(value)
		got, err := k.Verify(value, now, 0)
		if err != nil {
			known := false
			for _, reason := range reasons {
				known = known || errors.Is(err, reason)
			}
			if !known {
				t.Fatalf("Verify(%q): %v is none of the documented reasons", value, err)
			}
			if got != (Fields{}) {
				t.Fatalf("Verify(%q) failed but returned %+v", value, got)
			}
			return
		}
		if parseErr != nil || parsedFields != got || keyID != "k2" {
			t.Fatalf("Verify accepted %q but Parse gave %+v, %q, %v", value, parsedFields, keyID, parseErr)
		}
		again, err := k.Sign(got)
		if err != nil {
			t.Fatalf("Sign(%+v) of verified fields: %v", got, err)
		}
		if removeWhitespace(again) != removeWhitespace(value) {
			t.Fatalf("verified %q but it re-signs as %q", value, again)
		}
	})
}

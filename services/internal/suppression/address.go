package suppression

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/net/idna"
)

// maxAddressBytes is the longest address accepted: RFC 5321 4.5.3.1 allows
// a 64-byte local part and a 255-byte domain.
const maxAddressBytes = 64 + 1 + 255

// Normalizer turns an address into the form entries are keyed by.
type Normalizer struct {
	// IgnoreDots lists domains whose mailboxes ignore dots in the local
	// part (Gmail: "gone.user" and "goneuser" are one mailbox).
	IgnoreDots []string `yaml:"ignore_dots"`
	// StripSubaddress lists domains that deliver "user+tag" to "user"
	// (RFC 5233 sub-addressing), so an entry for one tag covers them all.
	StripSubaddress []string `yaml:"strip_subaddress"`
}

var errNoAddress = errors.New("not an address: no @ with a local part and a domain")

// Address returns the normalised address and its domain: the domain in
// lower-case ASCII (IDNA), the local part as sent, but for the configured
// provider rules. Angle brackets and surrounding spaces are dropped.
func (n Normalizer) Address(addr string) (normalized, domain string, err error) {
	addr = strings.TrimSpace(addr)
	addr = strings.TrimSuffix(strings.TrimPrefix(addr, "<"), ">")
	if len(addr) > maxAddressBytes {
		return "", "", fmt.Errorf("address longer than %d bytes", maxAddressBytes)
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return "", "", errNoAddress
	}
	local := addr[:at]
	domain, err = n.Domain(addr[at+1:])
	if err != nil {
		return "", "", err
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; c <= ' ' || c == 0x7f {
			return "", "", fmt.Errorf("local part holds byte 0x%02x", c)
		}
	}
	if slices.Contains(n.StripSubaddress, domain) {
		if plus := strings.IndexByte(local, '+'); plus > 0 {
			local = local[:plus]
		}
	}
	if slices.Contains(n.IgnoreDots, domain) {
		local = strings.ReplaceAll(local, ".", "")
		// Gmail also ignores case in the local part; any provider that
		// ignores dots compares mailboxes case-insensitively too.
		local = strings.ToLower(local)
		if local == "" {
			return "", "", errNoAddress
		}
	}
	return local + "@" + domain, domain, nil
}

// Domain returns a domain in lower-case ASCII (IDNA 2008 lookup profile),
// without a trailing dot.
func (Normalizer) Domain(d string) (string, error) {
	d = strings.TrimSuffix(strings.TrimSpace(d), ".")
	if d == "" || len(d) > 255 {
		return "", fmt.Errorf("domain %q: empty or longer than 255 bytes", short(d))
	}
	if strings.HasPrefix(d, "[") {
		// An address literal (RFC 5321 4.1.3): kept, lower-cased.
		return strings.ToLower(d), nil
	}
	ascii, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return "", fmt.Errorf("domain %q: %v", short(d), err)
	}
	return strings.ToLower(ascii), nil
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
